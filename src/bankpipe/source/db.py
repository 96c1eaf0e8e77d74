"""Connections to the source database, embedded or external, chosen by Settings."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bankpipe.errors import SourceError
from bankpipe.settings import Settings
from bankpipe.source import embedded
from bankpipe.source.schema import create_schema

log = logging.getLogger(__name__)


def redact(conninfo: str) -> str:
    """A conninfo/URL with any password replaced by `***`, for messages and logs."""
    out = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", conninfo)
    return re.sub(r"(password=)\S+", r"\1***", out)


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


@contextmanager
def connect(settings: Settings, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection to the source with its schema in place."""
    conninfo = source_conninfo(settings)
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise SourceError(f"cannot connect to the source database {redact(conninfo)}: {exc}".strip()) from exc
    with conn:
        create_schema(conn)
        if not autocommit:
            conn.commit()
        yield conn
