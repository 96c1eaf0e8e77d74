"""Bronze and ops tables (the contracts of DESIGN.md); silver and gold belong to dbt."""

from __future__ import annotations

from bankpipe.source.schema import COLUMNS

# Bronze keeps what the source said, untyped (VARCHAR), plus lineage columns. Typing is silver's job,
# so a malformed value lands here as it came and silver can name the rule it breaks.
_LINEAGE = """
    _batch_id   varchar not null,
    _loaded_at  timestamptz not null,
    _source     varchar not null"""

STREAM_FIELDS = ("id", "date", "timestamp", "account_id", "jumlah_transaksi", "tipe_transaksi", "akun_tujuan", "status")
STREAM_EXTENSIONS = ("mata_uang", "channel", "location_id")

_EXTRACTED = ", ".join(f"_record ->> '{c}' as \"{c}\"" for c in STREAM_FIELDS + STREAM_EXTENSIONS)

# bronze table per source table
MASTER_TABLES: dict[str, str] = {
    "location": "raw_locations",
    "bank_info": "raw_banks",
    "customer": "raw_customers",
    "account": "raw_accounts",
    "fraud_case": "raw_fraud_cases",
}


def _master_ddl(source_table: str, bronze_table: str) -> str:
    cols = ",\n".join(f"    {c} varchar" for c in COLUMNS[source_table])
    return f"""create table if not exists bronze.{bronze_table} ({_LINEAGE},
    _is_deleted boolean not null default false,
    _created_at timestamptz,
    _updated_at timestamptz,
{cols}
)"""


DDL: list[str] = [
    *(_master_ddl(src, dst) for src, dst in MASTER_TABLES.items()),
    # Stream records are stored whole and only whole: extracting fields at load time costs more than
    # reading the files (bench/bench_ingest.py), and silver extracts them once anyway. The seed's
    # fields are served by the `raw_transactions` view below, under the contract's name.
    f"""create table if not exists bronze.raw_transaction_records ({_LINEAGE},
    _file_sha256 varchar not null,
    _record     json
)""",
    f"""create or replace view bronze.raw_transactions as
select _batch_id, _loaded_at, _source, _file_sha256, _record,
    {_EXTRACTED}
from bronze.raw_transaction_records""",
    f"""create table if not exists bronze.raw_exchange_rates ({_LINEAGE},
    rate_date   date not null,
    base        varchar not null,
    quote       varchar not null,
    rate        decimal(24, 10) not null,
    source      varchar not null,
    fetched_at  timestamptz not null
)""",
    """create table if not exists ops.ingested_files (
    file_name    varchar not null,
    sha256       varchar not null,
    size_bytes   bigint not null,
    mtime_ns     bigint,
    rows         bigint not null,
    version      integer not null,
    status       varchar not null,  -- loaded | duplicate (same bytes already loaded) | partial (truncated, not loaded)
    duplicate_of varchar,
    batch_id     varchar not null,
    ingested_at  timestamptz not null
)""",
    # Added by issue 13; ALTER for warehouses made before. `rejected_lines`: JSON Lines lines kept in
    # ops.rejected_lines instead of bronze; `detail`: why a file is `partial` (where it broke).
    "alter table ops.ingested_files add column if not exists rejected_lines bigint",
    "alter table ops.ingested_files add column if not exists detail varchar",
    # One row per line of a JSON Lines file that could not be loaded (the file's other lines were):
    # where it is, the parser's message, and the line as received (first 4 KiB; the file itself
    # stays in the landing folder).
    """create table if not exists ops.rejected_lines (
    file_name    varchar not null,
    sha256       varchar not null,
    line_number  bigint not null,
    byte_offset  bigint not null,
    reason       varchar not null,
    raw_line     varchar,
    line_bytes   bigint not null,
    batch_id     varchar not null,
    rejected_at  timestamptz not null
)""",
    """create table if not exists ops.rejected_files (
    file_name        varchar not null,
    sha256           varchar not null,
    size_bytes       bigint not null,
    reason           varchar not null,
    quarantine_path  varchar,  -- null: left where it was (unreadable, vanished, symlink, FIFO, ...)
    batch_id         varchar not null,
    rejected_at      timestamptz not null
)""",
    """create table if not exists ops.watermarks (
    source_table  varchar not null,
    updated_at    timestamptz,
    key_value     varchar,
    batch_id      varchar not null,
    advanced_at   timestamptz not null
)""",
    """create table if not exists ops.run_log (
    run_id      varchar not null,
    step        varchar not null,
    started_at  timestamptz not null,
    ended_at    timestamptz,
    rows_in     bigint,
    rows_out    bigint,
    status      varchar not null,
    error       varchar,
    details     json
)""",
]
