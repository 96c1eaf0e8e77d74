"""The source database: embedded server lifecycle, schema, and loading the seed's batch files."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `connect` pulls in psycopg; stages that only need the schema constants should not pay for it.
    if name in ("connect", "source_conninfo"):
        from bankpipe.source import db

        return getattr(db, name)
    raise AttributeError(name)
