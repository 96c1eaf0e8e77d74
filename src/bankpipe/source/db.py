"""Connections to the source database, embedded or external, chosen by Settings."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bankpipe.errors import SourceError
from bankpipe.redact import redact
from bankpipe.settings import Settings
from bankpipe.source import embedded
from bankpipe.source.schema import check_schema, create_schema

log = logging.getLogger(__name__)


def _ensure_database(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            log.info("creating database %s", name)
            conn.execute(f'create database "{name}"')


def source_conninfo(settings: Settings, *, start: bool = True) -> str:
    """The source database's conninfo: `BANKPIPE_SOURCE_URL`, else the embedded server's `source_bank`.

    The embedded server is started if needed (unless `start=False`), and the database and the
    source schema are created if missing, so every command can simply ask for a connection.
    """
    if settings.source_url is not None:
        return settings.source_url.get_secret_value()
    if not start and not embedded.status(settings.pgdata).running:
        raise SourceError("the embedded source database is not running (start it: bankpipe source up)")
    admin = embedded.start(settings.pgdata)
    _ensure_database(admin, settings.source_database)
    params = conninfo_to_dict(admin)
    params["dbname"] = settings.source_database
    return make_conninfo(**params)


# FATAL errors that a server gives while it starts, stops or is full: worth waiting for. Any other
# FATAL (unknown role or database, bad password, no pg_hba entry) will not change by retrying.
_TRANSIENT = re.compile(r"starting up|shutting down|in recovery|too many clients|not yet accepting", re.I)


def _transient(exc: BaseException) -> bool:
    """Whether a failed connection attempt may succeed later (network, refused, server restarting)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    text = str(exc)
    return "FATAL:" not in text or bool(_TRANSIENT.search(text))


# Defaults that the URL may override. Without TCP keepalives a source host that vanishes mid-COPY
# (powered off, network cut: no RST) leaves the extract waiting for the kernel's 2-hour default.
_CONN_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def _open(settings: Settings, conninfo: str, autocommit: bool) -> psycopg.Connection:
    """psycopg.connect, retried with exponential backoff while the failure looks transient."""
    retrying = Retrying(
        stop=stop_after_attempt(settings.source_connect_attempts),
        wait=wait_exponential(multiplier=settings.source_retry_backoff_s, max=30),
        retry=retry_if_exception(_transient),
        before_sleep=lambda state: log.warning(
            "source database %s: connection attempt %d failed (%s); retrying",
            redact(conninfo),
            state.attempt_number,
            redact(str(state.outcome.exception()).strip().splitlines()[0]) if state.outcome else "",
        ),
        reraise=True,
    )
    try:
        params = _CONN_DEFAULTS | conninfo_to_dict(conninfo)
    except psycopg.Error as exc:  # libpq quotes the piece it could not parse: it may be a password
        raise SourceError(f"the source database URL cannot be parsed: {redact(str(exc).strip())}") from None
    try:
        return retrying(psycopg.connect, make_conninfo(**params), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        n = retrying.statistics.get("attempt_number", 1)
        tries = f" (after {n} attempts)" if n > 1 else ""
        # One line: libpq adds a hint line ("Is the server running…?") that the log keeps.
        first = redact(str(exc).strip().splitlines()[0])
        raise SourceError(f"cannot connect to the source database {redact(conninfo)}{tries}: {first}") from exc


def _not_ready(settings: Settings, problems: list[str]) -> SourceError:
    url = redact(settings.source_url.get_secret_value()) if settings.source_url else "(embedded)"
    return SourceError(
        f"source database {url}: {'; '.join(problems)}"
        " (bankpipe never changes an external source's schema: a DBA runs the output of `bankpipe source ddl` once)"
    )


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False, use: str = "read") -> Iterator[psycopg.Connection]:
    """A psycopg connection to the source with its schema in place.

    The embedded source gets its schema created here. An external one (`BANKPIPE_SOURCE_URL`) is
    the bank's system of record: bankpipe only checks it — tables, columns, triggers and the
    privileges `use` ("read", or "write" for test-data loaders) needs — and names everything missing.
    """
    conninfo = source_conninfo(settings)
    conn = _open(settings, conninfo, autocommit)
    with conn:
        if settings.source_url is None:
            create_schema(conn)
        else:
            problems = check_schema(conn, use)
            if problems:
                raise _not_ready(settings, problems)
        if not autocommit:
            conn.commit()
        yield conn
