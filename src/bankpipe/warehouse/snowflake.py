"""Snowflake warehouse (the production shape): `BANKING_DB` with schemas BRONZE, SILVER, GOLD, OPS.

Bulk loads go through a named internal stage — `PUT` the file, then `COPY INTO` a single-column
landing table, then `INSERT … SELECT` into bronze with the lineage columns. That is the shape that
works on real Snowflake and on the fakesnow emulator alike: fakesnow supports neither COPY with a
transformation (`(select … from @stage)`), nor the user stage `@~`, nor `FILES = (…)` on an internal
stage, nor `STRIP_OUTER_ARRAY` — so each file gets its own stage path and JSON arrays are rewritten
as JSON Lines on the client before the PUT (which also keeps every VARIANT far below Snowflake's
16 MB limit, however large the file).

Credentials come from Settings only (password, or key-pair: an encrypted PKCS#8 PEM file and its
passphrase); they are handed to the driver and never formatted into a log line or an error.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bankpipe.errors import BankpipeError
from bankpipe.warehouse.base import SCHEMAS, JsonFile, JsonLine
from bankpipe.warehouse.ddl import DDL, STREAM_EXTENSIONS, STREAM_FIELDS

if TYPE_CHECKING:
    import pyarrow as pa

    from bankpipe.settings import Settings

log = logging.getLogger(__name__)

STAGE = "OPS.BANKPIPE_STAGE"
# Session-scoped landing tables: created once per connection, outside any transaction (in Snowflake a
# CREATE inside BEGIN … COMMIT would commit the open transaction).
_JSON_LANDING = "_BANKPIPE_JSON_LANDING"
_TYPES = {"varchar": "varchar", "timestamptz": "timestamp_tz"}
_APPEND_BATCH = 10_000


@dataclass(frozen=True, repr=False)
class SnowflakeConfig:
    """How to reach Snowflake; secrets stay SecretStr until the moment they are handed to the driver."""

    account: str
    user: str
    database: str = "BANKING_DB"
    warehouse: str | None = None
    role: str | None = None
    password: SecretStr | None = None
    private_key_path: Path | None = None
    private_key_passphrase: SecretStr | None = None
    # Only for an emulator or a proxy (fakesnow server mode: host 127.0.0.1, port, protocol http).
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    # Short by default: a Snowflake that does not answer should fail a step, not hang it for minutes.
    login_timeout_s: int = 30
    network_timeout_s: int = 120
    # Where stream files are re-written as JSON Lines before PUT: they hold transaction records, so the state
    # dir (0700), not /tmp. None (a config built by hand) falls back to the system temp dir.
    spool_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeConfig:
        """The config named by `SNOWFLAKE_*` settings; refuses an incomplete one with one clear line."""
        missing = [
            name
            for name, value in (
                ("SNOWFLAKE_ACCOUNT", settings.snowflake_account),
                ("SNOWFLAKE_USER", settings.snowflake_user),
            )
            if not value
        ]
        if missing:
            raise BankpipeError(f"{', '.join(missing)} not set (needed for BANKPIPE_WAREHOUSE=snowflake)")
        key_path = getattr(settings, "snowflake_private_key_path", None)
        return cls(
            account=str(settings.snowflake_account),
            user=str(settings.snowflake_user),
            database=settings.snowflake_database,
            warehouse=settings.snowflake_warehouse,
            role=settings.snowflake_role,
            password=settings.snowflake_password,
            private_key_path=Path(key_path) if key_path else None,
            private_key_passphrase=getattr(settings, "snowflake_private_key_passphrase", None),
            spool_dir=settings.state,
        )

    @property
    def auth(self) -> str:
        return "key-pair" if self.private_key_path else "password"

    def __repr__(self) -> str:
        return (
            f"SnowflakeConfig(account={self.account!r}, user={self.user!r}, database={self.database!r},"
            f" warehouse={self.warehouse!r}, role={self.role!r}, auth={self.auth!r})"
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for `snowflake.connector.connect` — they hold secrets: never log them."""
        kwargs: dict[str, Any] = {
            "account": self.account,
            "user": self.user,
            "database": self.database,
            "warehouse": self.warehouse,
            "role": self.role,
            # The stages use `?` placeholders, as with DuckDB.
            "paramstyle": "qmark",
            "login_timeout": self.login_timeout_s,
            "network_timeout": self.network_timeout_s,
            "client_session_keep_alive": False,
            # Timestamps are bound as ISO text with an offset and read back in UTC.
            "session_parameters": {"TIMEZONE": "UTC", "QUERY_TAG": "bankpipe"},
        }
        if self.private_key_path:
            kwargs["private_key"] = _load_private_key(self.private_key_path, self.private_key_passphrase)
        elif self.password:
            kwargs["password"] = self.password.get_secret_value()
        else:
            raise BankpipeError(
                "no Snowflake credentials: set SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH"
                " (and SNOWFLAKE_PRIVATE_KEY_PASSPHRASE for an encrypted key)"
            )
        for name in ("host", "port", "protocol"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return {k: v for k, v in kwargs.items() if v is not None}


def _load_private_key(path: Path, passphrase: SecretStr | None) -> bytes:
    """The PEM private key as unencrypted DER (PKCS#8), which is what the connector takes."""
    from cryptography.hazmat.primitives import serialization

    try:
        pem = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise BankpipeError(f"cannot read Snowflake private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(
            pem, password=passphrase.get_secret_value().encode() if passphrase else None
        )
    except (ValueError, TypeError) as exc:
        # The library's message names the problem (bad passphrase, not a key), never the key itself.
        raise BankpipeError(f"cannot load Snowflake private key {path}: {str(exc).splitlines()[0]}") from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def snowflake_ddl() -> list[str]:
    """ddl.DDL in Snowflake's dialect: TIMESTAMP_TZ, VARIANT records, the seed fields via `:` paths."""
    out = []
    for statement in DDL:
        if "create or replace view bronze.raw_transactions" in statement:
            continue
        stmt = statement.replace("timestamptz", "timestamp_tz").replace("_record     json", "_record     variant")
        # The run log's details are bound as JSON text by ops.step; Snowflake will not bind text to a
        # VARIANT column in an UPDATE, so they stay text (parse_json() reads them).
        stmt = stmt.replace("details     json", "details     varchar")
        # ROWS is a reserved word in Snowflake (not in DuckDB): quoted as Snowflake stores the
        # unquoted name, so `wh.ident("rows")` and positional inserts still find it.
        stmt = stmt.replace("    rows         bigint", '    "ROWS"       bigint')
        out.append(stmt)
    # Column names are upper-case, as Snowflake stores unquoted names (dbt's snowflake__bronze_column).
    extracted = ", ".join(f'_record:"{c}"::varchar as "{c.upper()}"' for c in STREAM_FIELDS + STREAM_EXTENSIONS)
    out.append(
        "create or replace view bronze.raw_transactions as"
        f" select _batch_id, _loaded_at, _source, _file_sha256, _record, {extracted}"
        " from bronze.raw_transaction_records"
    )
    return out


def _bind(params: Sequence[Any] | None) -> Sequence[Any] | None:
    # The connector binds every datetime as TIMESTAMP_NTZ (dropping the offset); ISO text with the
    # offset converts to TIMESTAMP_TZ exactly, on Snowflake and on the emulator.
    if params is None:
        return None
    return [p.isoformat() if isinstance(p, datetime) and p.tzinfo is not None else p for p in params]


def _ndjson(path: Path, fmt: str, out: Path) -> int:
    """Rewrite a landed file as compact JSON Lines (records whole, key order kept); return records.

    Raises ValueError naming what is wrong when the file is not valid JSON of the sniffed format
    (nesting too deep for Python's parser included).
    """
    try:
        if fmt == "array":
            records = json.loads(path.read_bytes().decode("utf-8-sig"))
            if not isinstance(records, list):
                raise ValueError("not a JSON array")
        elif fmt == "newline_delimited":
            records = []
            # Split on b"\n" only: str.splitlines() would also split at a raw U+2028 inside a string.
            for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
                line = raw[3:] if n == 1 and raw.startswith(b"\xef\xbb\xbf") else raw
                if line.strip():
                    try:
                        records.append(json.loads(line.decode("utf-8")))
                    except ValueError as exc:
                        raise ValueError(f"line {n}: {exc}") from None
        else:
            raise ValueError("not a JSON array or JSON Lines (first character is neither '[' nor '{')")
    except RecursionError:
        raise ValueError("nested too deeply for the JSON parser") from None
    with out.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
    return len(records)


class SnowflakeWarehouse:
    """One Snowflake session (autocommit, `?` placeholders, UTC); stages speak SQL through it."""

    dialect = "snowflake"

    def __init__(self, config: SnowflakeConfig) -> None:
        import snowflake.connector

        self.config = config
        self.errors: tuple[type[BaseException], ...] = (snowflake.connector.errors.Error, ValueError)
        # Connection and service errors: an outage, never a reason to set a file aside as bad.
        self.transient_errors: tuple[type[BaseException], ...] = (
            snowflake.connector.errors.OperationalError,
            snowflake.connector.errors.InterfaceError,
            snowflake.connector.errors.ServiceUnavailableError,
        )
        log.info(
            "connecting to Snowflake account %s as %s (%s auth), database %s",
            config.account,
            config.user,
            config.auth,
            config.database,
        )
        try:
            self.con = snowflake.connector.connect(**config.connect_kwargs())
        except snowflake.connector.errors.Error as exc:
            # The driver's message names the account and the reason, not the secret.
            first = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()
            raise BankpipeError(
                f"cannot connect to Snowflake account {config.account}: {first[0] if first else exc}"
            ) from None
        self._in_tx = False
        self._session_ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeWarehouse:
        return cls(SnowflakeConfig.from_settings(settings))

    @property
    def is_emulator(self) -> bool:
        """True on the fakesnow emulator (account `fakesnow`, as dbt's shims decide), for SQL it cannot parse."""
        return self.config.account.lower() == "fakesnow"

    # --- the Warehouse protocol -----------------------------------------------------------------

    def _cursor_execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        cur = self.con.cursor()
        cur.execute(sql, _bind(params))
        return cur

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._cursor_execute(sql, params).close()

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._cursor_execute(sql, params)
        try:
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        cur = self._cursor_execute(sql, params)
        try:
            row = cur.fetchone()
            return tuple(row) if row is not None else None
        finally:
            cur.close()

    def fetch_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The result as Arrow, straight from Snowflake's Arrow result batches (no Python rows)."""
        import pyarrow as pa

        cur = self._cursor_execute(sql, params)
        try:
            names = [d.name.lower() for d in cur.description or []]
            if not hasattr(cur, "fetch_arrow_all"):  # fakesnow's in-process cursor only
                rows = cur.fetchall()
                return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})
            table = cur.fetch_arrow_all()
            if table is None:  # the connector returns None for an empty result
                return pa.table({n: pa.array([], pa.null()) for n in names})
            # Snowflake reports unquoted names upper-case; the stages use DuckDB's lower-case names.
            return table.rename_columns([c.lower() for c in table.column_names])
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT. No DDL inside: Snowflake commits the open transaction on any DDL."""
        if self._in_tx:
            yield
            return
        self.execute("begin")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        else:
            self.execute("commit")
        finally:
            self._in_tx = False

    def append_arrow(self, table: str, data: pa.Table) -> int:
        cols = ", ".join(data.column_names)
        marks = ", ".join("?" for _ in data.column_names)
        sql = f"insert into {table} ({cols}) values ({marks})"
        rows = [list(_bind(list(r.values())) or []) for r in data.to_pylist()]
        cur = self.con.cursor()
        try:
            for start in range(0, len(rows), _APPEND_BATCH):
                cur.executemany(sql, rows[start : start + _APPEND_BATCH])
        finally:
            cur.close()
        return data.num_rows

    def table_exists(self, schema: str, table: str) -> bool:
        """Whether the table or view exists (information_schema.tables lists both on Snowflake)."""
        row = self.fetchone(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema.upper(), table.upper()],
        )
        if row and row[0]:
            return True
        if not self.is_emulator:
            return False
        # fakesnow's information_schema.tables leaves views out: ask the relation itself.
        try:
            self.execute(f"select 1 from {schema}.{table} limit 0")
        except self.errors:
            return False
        return True

    def ident(self, name: str) -> str:
        """A column name quoted as Snowflake stores an unquoted one (upper-case)."""
        return '"' + name.upper().replace('"', '""') + '"'

    def ensure_schemas(self) -> None:
        """Database, schemas, the internal stage, bronze and ops tables (idempotent)."""
        db = self.config.database
        try:
            self.execute(f"use database {db}")
        except self.errors[0]:
            # Production databases are created by an administrator (docs/deploy.md); this is for
            # a fresh account or the emulator, where the role may create one.
            self.execute(f"create database if not exists {db}")
            self.execute(f"use database {db}")
        for schema in SCHEMAS:
            self.execute(f"create schema if not exists {schema}")
        self.execute(f"create stage if not exists {STAGE} comment = 'bankpipe bulk loads (PUT then COPY INTO)'")
        for statement in snowflake_ddl():
            self.execute(statement)
        self._ensure_session()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SnowflakeWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- bulk loads -----------------------------------------------------------------------------

    def _ensure_session(self) -> None:
        if self._session_ready:
            return
        if self._in_tx:
            raise BankpipeError("internal: Snowflake session tables must be created outside a transaction")
        self.execute(f"create temporary table if not exists {_JSON_LANDING} (v variant)")
        self._session_ready = True

    def _put(self, path: Path, prefix: str) -> str:
        """Upload one file to a fresh stage folder; return the folder (`@stage/prefix/uuid/`)."""
        folder = f"{STAGE}/{prefix}/{uuid.uuid4().hex}/"
        # PUT is a file transfer, not DML: it neither needs nor disturbs the open transaction.
        self.execute(f"put 'file://{path.as_posix()}' @{folder} auto_compress = true overwrite = true")
        return folder

    def stage_csv(self, name: str, path: Path, columns: dict[str, str]) -> int:
        """Load a headerless PostgreSQL CSV into a session temp table `name`; return its row count.

        Call outside a transaction (it creates a table). NULL is an unquoted empty field and '' a
        quoted one, which is what `FIELD_OPTIONALLY_ENCLOSED_BY` + `EMPTY_FIELD_AS_NULL` read.
        """
        cols = ", ".join(f"{c} {_TYPES[t]}" for c, t in columns.items())
        self.execute(f"create or replace temporary table {name} ({cols})")
        if path.stat().st_size == 0:  # nothing changed at the source: no round trip to the stage
            return 0
        folder = self._put(path, "batch")
        self.execute(
            f"copy into {name} from @{folder}"
            " file_format = (type = csv field_delimiter = ',' field_optionally_enclosed_by = '\"'"
            " empty_field_as_null = true null_if = () escape_unenclosed_field = none)"
            " purge = true"
        )
        row = self.fetchone(f"select count(*) from {name}")
        return int(row[0]) if row else 0

    def json_file_error(self, path: Path, fmt: str) -> str | None:
        """Why this landed file cannot be loaded, or None if it can."""
        with tempfile.TemporaryDirectory(prefix="bankpipe-json-", dir=self.config.spool_dir) as tmp:
            try:
                _ndjson(path, fmt, Path(tmp) / "check.jsonl")
            except ValueError as exc:
                return str(exc).splitlines()[0]
        return None

    def load_json_files(self, files: Sequence[JsonFile], batch_id: str, loaded_at: datetime) -> dict[str, int]:
        """Append each file's records whole to bronze.raw_transaction_records; return rows per path.

        One PUT + COPY INTO + INSERT … SELECT per file, so every record carries its file's name and
        SHA-256 (fakesnow cannot COPY with METADATA$FILENAME). Runs inside the caller's transaction.
        """
        self._ensure_session()
        rows: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="bankpipe-json-", dir=self.config.spool_dir) as tmp:
            for i, f in enumerate(files):
                # A generated name: PUT reads its path as a pattern (`*`, `?`) and inside quotes.
                spool = Path(tmp) / f"{i:06d}.jsonl"
                _ndjson(f.path, f.fmt, spool)
                rows[str(f.path)] = self._copy_spool(spool, f, batch_id, loaded_at)
        self.execute(f"delete from {_JSON_LANDING}")
        return rows

    def _copy_spool(self, spool: Path, f: JsonFile, batch_id: str, loaded_at: datetime) -> int:
        """PUT one JSON Lines spool, COPY it into the landing table, append it to bronze; return rows."""
        folder = self._put(spool, f"stream/{batch_id}")
        self.execute(f"delete from {_JSON_LANDING}")
        self.execute(f"copy into {_JSON_LANDING} from @{folder} file_format = (type = json) purge = true")
        inserted = self.fetchone(
            "insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)"
            f" select ?, ?, ?, ?, v from {_JSON_LANDING}",
            [batch_id, loaded_at, f.name, f.sha256],
        )
        spool.unlink()
        return int(inserted[0]) if inserted else 0

    def load_json_lines(
        self, file: JsonFile, lines: Iterable[JsonLine], batch_id: str, loaded_at: datetime
    ) -> tuple[int, list[JsonLine]]:
        """The salvage path: the lines that parsed (in Python) through one spool, PUT and COPY.

        Nothing is refused here: Snowflake's COPY either takes every line Python parsed or fails the
        file, which the stream ingest then quarantines (fail safe: no line is loaded twice or lost).
        """
        self._ensure_session()
        with tempfile.TemporaryDirectory(prefix="bankpipe-json-", dir=self.config.spool_dir) as tmp:
            spool = Path(tmp) / "000000.jsonl"
            n = 0
            with spool.open("w", encoding="utf-8") as fh:
                for line in lines:
                    try:
                        record = json.loads(line.text)
                    except RecursionError:
                        raise ValueError(f"line {line.number}: nested too deeply for the JSON parser") from None
                    # Re-serialised compactly, as the fast path does, so both give the same VARIANT.
                    fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                    fh.write("\n")
                    n += 1
            rows = self._copy_spool(spool, file, batch_id, loaded_at) if n else 0
        self.execute(f"delete from {_JSON_LANDING}")
        return rows, []
