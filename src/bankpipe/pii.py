"""Customer PII by design: the pseudonymisation key, the masks, and the record of every unmasking.

Clear names and e-mails live only in bronze (the loader's) and `silver_pii` (the PII reader's);
every analyst-facing model carries keyed pseudonyms and masked forms (dbt/macros/pii.sql). The key
comes from Settings (`BANKPIPE_PII_KEY`); on the embedded DuckDB shape, when it is unset, a random
key is generated once and kept in the state dir (0600), so pseudonyms stay stable across runs.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bankpipe.errors import BankpipeError

if TYPE_CHECKING:
    from bankpipe.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "pii.key"
KEY_TABLE = "silver_pii.pseudonym_key"
ACCESS_TABLE = "ops.pii_access"
# A word is a run of non-blanks, as in dbt's mask_name (the same pattern on both sides).
_WORD = re.compile(r"([^ ])[^ ]*")
MIN_KEY_CHARS = 16
# Values people paste from examples: a key anyone can guess makes every pseudonym reversible by a
# dictionary of names and e-mails, so these are refused like a missing key (STYLE.md habit 6).
PLACEHOLDERS = frozenset({"changeme", "change-me", "secret", "password", "example", "test", "default", "xxx"})


def _check(value: str, where: str = "BANKPIPE_PII_KEY") -> str:
    """The key itself, or a one-line error naming `where` when it is too short or a placeholder."""
    text = value.strip()
    lowered = text.lower()
    if len(text) < MIN_KEY_CHARS or any(lowered.startswith(p) for p in PLACEHOLDERS) or len(set(text)) < 6:
        raise BankpipeError(
            f"{where} looks like a placeholder (at least {MIN_KEY_CHARS} characters of real randomness"
            " needed): generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return text


def key(settings: Settings) -> str:
    """The pseudonymisation key: BANKPIPE_PII_KEY, else (DuckDB only) the one generated in the state dir."""
    configured = getattr(settings, "pii_key", None)
    if configured is not None and configured.get_secret_value().strip():
        return _check(configured.get_secret_value())
    if settings.warehouse != "duckdb":
        # A shared warehouse outlives any one machine's state dir: a key generated here would change
        # every pseudonym when the pipeline moves to another worker.
        raise BankpipeError(
            f"BANKPIPE_PII_KEY is not set (required with BANKPIPE_WAREHOUSE={settings.warehouse}: the key of"
            " every customer pseudonym; keep it in the secret store beside the warehouse credentials)"
        )
    path = settings.state / KEY_FILE
    if path.is_file():
        return _check(path.read_text(encoding="utf-8"), f"the key file {path}")
    value = secrets.token_hex(32)
    # O_EXCL + 0600: two first runs at once keep one key, and no other local user can read it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _check(path.read_text(encoding="utf-8"), f"the key file {path}")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    log.info("generated the customer pseudonymisation key in %s (set BANKPIPE_PII_KEY to choose it)", path)
    return value


ACCESS_DDL = (
    f"create table if not exists {ACCESS_TABLE} (accessed_at timestamp with time zone,"
    " viewer varchar, page varchar, clear_rows integer, setting varchar)"
)


def install_key(settings: Settings) -> None:
    """Write the key into silver_pii.pseudonym_key (only when it changed), where the dbt models read it.

    Also creates ops.pii_access, so that on Snowflake the dashboard's role needs only INSERT on it.
    """
    from bankpipe.warehouse import connect

    value = key(settings)
    with connect(settings) as wh:
        wh.execute("create schema if not exists silver_pii")
        wh.execute(f"create table if not exists {KEY_TABLE} (pii_key varchar)")
        wh.execute(ACCESS_DDL)
        rows = wh.fetchall(f"select pii_key from {KEY_TABLE}")
        if rows == [(value,)]:
            return
        # Bound, never spliced into the statement: the key stays out of the warehouse's query history.
        with wh.transaction():
            wh.execute(f"delete from {KEY_TABLE}")
            wh.execute(f"insert into {KEY_TABLE} (pii_key) values (?)", [value])
        if rows:
            log.warning("the pseudonymisation key changed: every customer pseudonym changes with the next full build")


def mask_name(name: Any) -> str | None:
    """`Gilang Dewanto` -> `G***** D*****`, as dbt's mask_name (idempotent on a masked name)."""
    if not isinstance(name, str) or not name.strip():
        return None
    return _WORD.sub(r"\1*****", name)


def mask_email(email: Any) -> str | None:
    """`gilang.d@example.com` -> `g***@example.com`, as dbt's mask_email (idempotent)."""
    if not isinstance(email, str) or not email:
        return None
    at = email.find("@")
    return f"{email[0]}***{email[at:]}" if at > 0 else "***"


def viewer() -> str:
    """Who is looking: the dashboard's signed-in user when Streamlit knows one, else the OS account."""
    try:
        import streamlit as st

        user = getattr(st, "user", None)
        email = user.get("email") if user is not None and hasattr(user, "get") else None
        if email:
            return str(email)
    except Exception:  # no Streamlit session (CLI, tests): the OS account says who
        pass
    return getpass.getuser()


def record_unmasking(settings: Settings, page: str, rows: int) -> None:
    """Log one WARNING and append a row to ops.pii_access: clear PII was read for display."""
    who = viewer()
    log.warning(
        "PII unmasked: %s read %d clear customer name(s)/e-mail(s) from silver_pii for the %s page"
        " (BANKPIPE_DASHBOARD_SHOW_PII=true)",
        who,
        rows,
        page,
    )
    from bankpipe.warehouse import connect

    try:
        # A short wait: the audit row must not hold the page up behind a running pipeline step.
        with connect(settings, lock_wait_s=5.0) as wh:
            wh.execute(ACCESS_DDL)
            wh.execute(
                f"insert into {ACCESS_TABLE} (accessed_at, viewer, page, clear_rows, setting) values (?, ?, ?, ?, ?)",
                [datetime.now(UTC).isoformat(), who, page, rows, "BANKPIPE_DASHBOARD_SHOW_PII"],
            )
    except Exception as exc:  # the WARNING above is the record of last resort
        log.warning("could not record the unmasking in %s: %s", ACCESS_TABLE, exc)


__all__ = ["install_key", "key", "mask_email", "mask_name", "record_unmasking"]
