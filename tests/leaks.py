"""Known secrets and where to look for them: files (raw bytes), DuckDB tables, SQLite tables, captured text."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# A password with the characters naive patterns trip on: `@` (URL userinfo end), `'` (conninfo quote).
SOURCE_PASSWORD = "Pw-S3cret@with'quote"
SNOWFLAKE_PASSPHRASE = "Sn0w-Pass phrase#91"
FX_PATH_KEY = "pk7Hq2Lx9Zr4Tn6Wm8Vb3Yc5"  # exchangerate-api v6 style: a key as a path segment
FX_QUERY_KEY = "qk-5Gd8Jf2Ks7Lp"  # exchangerate.host style: ?apikey=
FX_USER_KEY = "uk9Pw4Rt6Qz"  # basic-auth userinfo


def forms() -> dict[str, str]:
    """Each secret in every spelling it could be written in (raw, percent-encoded), and its telling pieces."""
    out: dict[str, str] = {}
    for name, secret in {
        "source password": SOURCE_PASSWORD,
        "snowflake passphrase": SNOWFLAKE_PASSPHRASE,
        "fx path key": FX_PATH_KEY,
        "fx query key": FX_QUERY_KEY,
        "fx userinfo key": FX_USER_KEY,
    }.items():
        for form in {secret, quote(secret, safe=""), quote(secret), quote(secret, safe="").replace("%20", "+")}:
            out[form] = name
    # The halves a broken mask leaks: before the `@` and after it (the old pattern's `*** word'` case).
    for piece in ("Pw-S3cret", "with'quote", "with%27quote", "Sn0w-Pass", "phrase#91"):
        out[piece] = "piece of a secret"
    return out


@dataclass
class Finding:
    secret: str
    where: str
    context: str

    def __str__(self) -> str:
        return f"{self.secret!r} in {self.where}: …{self.context}…"


def in_text(text: str, where: str) -> list[Finding]:
    found = []
    for form in forms():
        i = text.find(form)
        if i >= 0:
            found.append(Finding(form, where, text[max(0, i - 80) : i + len(form) + 40]))
    return found


def in_tree(root: Path) -> list[Finding]:
    """Every file under `root`, as bytes (logs, dbt target/, MLflow artifacts, SQLite, spools)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        found += in_text(data, str(path))
    return found


def duckdb_text(path: Path) -> dict[str, str]:
    """Every table of the DuckDB file rendered as text, table by table (every column, every row)."""
    import duckdb

    out = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()
        for schema, table in tables:
            rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()
            out[f"{schema}.{table}"] = "\n".join(repr(r) for r in rows)
    return out


def sqlite_text(path: Path) -> dict[str, str]:
    """Every table of a SQLite file (MLflow's store) rendered as text."""
    out = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
            rows = con.execute(f'select * from "{table}"').fetchall()
            out[table] = "\n".join(repr(r) for r in rows)
    return out
