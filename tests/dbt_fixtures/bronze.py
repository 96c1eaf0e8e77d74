"""Fill bronze from the seed-format sample files plus a few hand-made defects (what the dbt tests use).

Ingestion has its own tests; these helpers write bronze directly with DuckDB so that the dbt
project is tested against exactly the seed's formats without depending on the ingest code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bankpipe.warehouse import Warehouse

LOADED_AT = datetime(2025, 12, 26, 1, 0, tzinfo=UTC)  # first load; later loads are later

STREAM_COLUMNS = (
    "id",
    "date",
    "timestamp",
    "account_id",
    "jumlah_transaksi",
    "tipe_transaksi",
    "akun_tujuan",
    "status",
    "mata_uang",
    "channel",
    "location_id",
)


@dataclass(frozen=True)
class Defect:
    """A hand-made bronze transaction and the rule silver must reject it with (None: must pass)."""

    record: dict[str, str | None]
    rule: str | None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_seed_transactions(wh: Warehouse, files: list[Path], loaded_at: datetime = LOADED_AT) -> int:
    """Append seed-format stream files to bronze.raw_transactions (one batch per file)."""
    total = 0
    for i, path in enumerate(sorted(files)):
        wh.execute(
            """insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)
                select ?, ?, ?, ?, json
                from read_json_objects(?, format = 'array')""",
            [f"stream-{path.stem}", loaded_at.replace(second=i), path.name, _sha256(path), str(path)],
        )
        row = wh.fetchone("select count(*) from bronze.raw_transactions where _source = ?", [path.name])
        total += row[0] if row else 0
    return total


def load_seed_masters(wh: Warehouse, seed_dir: Path, loaded_at: datetime = LOADED_AT) -> None:
    """Append the seed's batch files to the bronze master tables (one version each)."""
    batch = seed_dir / "batch_source"
    lineage = "'batch-seed', ?::timestamptz, ?, false, ?::timestamptz, ?::timestamptz"
    csvs = {
        "raw_locations": ("location.txt", "|", "id, kota, provinsi"),
        "raw_banks": ("bank_info.txt", "|", "bank_id, nama_bank, singkatan, kantor_pusat, jenis_bank"),
        "raw_customers": ("customer.csv", ",", "id, nama_depan, nama_belakang, email, segmen, location_id, bank_id"),
    }
    for table, (name, delim, cols) in csvs.items():
        wh.execute(
            f"""insert into bronze.{table}
                    (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at, {cols})
                select {lineage}, {cols}
                from read_csv(?, delim = ?, header = true, all_varchar = true)""",
            [loaded_at, name, loaded_at, loaded_at, str(batch / name), delim],
        )
    wh.execute(
        f"""insert into bronze.raw_accounts (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,
                id, customer_id, tipe_akun, saldo)
            select {lineage}, json ->> 'id', json ->> 'customer_id', json ->> 'tipe_akun', json ->> 'saldo'
            from read_json_objects(?, format = 'array')""",
        [loaded_at, "account.json", loaded_at, loaded_at, str(batch / "account.json")],
    )


def insert_transactions(
    wh: Warehouse,
    records: list[dict[str, str | None]],
    batch_id: str,
    loaded_at: datetime,
    source: str = "handmade.json",
) -> None:
    """Append hand-made transaction records (field name → text) as one bronze batch."""
    import json

    for rec in records:
        # The bronze.raw_transactions view extracts the fields from the record, as for loaded files.
        wh.execute(
            """insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)
                values (?, ?, ?, ?, ?)""",
            [batch_id, loaded_at, source, "0" * 64, json.dumps(rec)],
        )


def insert_master_version(
    wh: Warehouse,
    table: str,
    values: dict[str, str | None],
    updated_at: datetime,
    *,
    deleted: bool = False,
    batch_id: str = "batch-handmade",
) -> None:
    """Append one version of a master row (a change, or a tombstone with deleted=True)."""
    cols = list(values)
    wh.execute(
        f"""insert into bronze.{table} (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,
                {", ".join(cols)})
            values (?, ?, 'handmade', ?, ?, ?, {", ".join("?" for _ in cols)})""",
        [batch_id, updated_at, deleted, updated_at, updated_at, *values.values()],
    )


def insert_rates(wh: Warehouse, rates: list[tuple[str, str, str]], source: str = "test_api") -> None:
    """Append USD-based rates as (date, quote currency, units of quote per USD)."""
    for rate_date, quote, rate in rates:
        wh.execute(
            """insert into bronze.raw_exchange_rates
               (_batch_id, _loaded_at, _source, rate_date, base, quote, rate, source, fetched_at)
               values ('fx-test', ?, 'fx-api', ?, 'USD', ?, ?, ?, ?)""",
            [LOADED_AT, rate_date, quote, rate, source, LOADED_AT],
        )
