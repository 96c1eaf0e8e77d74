"""Land the whole corpus in one warehouse, run ingest and transform once, and read back what happened.

Used by the corpus tests and by `python -m tests.corpus` (which prints the docs table).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bankpipe.settings import Settings
from tests.corpus.cases import Case, build, write_batch_files

OLD = time.time() - 600  # an mtime well past any settle time
_ENV = {
    # no FX API here: an address that refuses at once, so the ECB snapshot is used
    "BANKPIPE_FX_API_URL": "http://127.0.0.1:9/v1",
    # a young file is left for the next pass at once, so "still being written" is seen as such
    "BANKPIPE_STREAM_SETTLE_WAIT_S": "0",
}


@dataclass
class Observed:
    """What the pipeline did with the corpus."""

    cases: list[Case]
    # file name -> (status, reason) from the file ledger, after all passes
    ledger: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # file name -> (status, reason) after the pass that ran while the late files were still young
    ledger_while_writing: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # transaction id -> times it appears in silver.stg_transactions / gold.fact_transaction_enriched
    silver: dict[str, int] = field(default_factory=dict)
    gold: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, Any] = field(default_factory=dict)
    gold_usd_missing: set[str] = field(default_factory=set)
    # transaction id -> rules it is kept under in silver.rejected_records
    rejected: dict[str, set[str]] = field(default_factory=dict)
    bronze_ids: dict[str, int] = field(default_factory=dict)
    bad_lines: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, message)
    status: dict[str, Any] = field(default_factory=dict)
    transform_ok: bool = False
    replaced_versions: int = 0
    masters: dict[str, dict[str, Any]] = field(default_factory=dict)


REPLACED = "transaction_20251224_100099.json"
# master rows with an enumeration value the pipeline has never seen: key -> (gold table, key column)
MASTERS = {
    "CUST-0099": ("dim_customers", "customer_id"),
    "ACC-00099": ("dim_accounts", "account_id"),
    "BANK-099": ("dim_banks", "bank_id"),
}


def _write(landing: Path, name: str, data: bytes, mtime: float | None) -> None:
    path = landing / name
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _ledger(wh: Any) -> dict[str, tuple[str, str | None]]:
    """Latest word of the ledger per file name (rejections and refusals included)."""
    out: dict[str, tuple[str, str | None]] = {}
    for name, status, reason in wh.fetchall(
        "select file_name, status, reason from ("
        " select file_name, status, detail as reason, ingested_at as ts from ops.ingested_files"
        " union all select file_name, 'rejected', reason, rejected_at from ops.rejected_files"
        ") order by ts"
    ):
        out[name] = (status, reason)
    return out


@contextmanager
def corpus_settings(state: Path, source_url: str) -> Iterator[Settings]:
    """Settings for a corpus run: `state` as the state dir, `source_url` as the source, no network."""
    keep = {k: os.environ.get(k) for k in (*_ENV, "BANKPIPE_LANDING_DIR", "BANKPIPE_WAREHOUSE_PATH")}
    os.environ.pop("BANKPIPE_LANDING_DIR", None)
    os.environ.pop("BANKPIPE_WAREHOUSE_PATH", None)
    os.environ.update({"BANKPIPE_STATE_DIR": str(state), "BANKPIPE_SOURCE_URL": source_url, **_ENV})
    try:
        yield Settings()
    finally:
        for key, value in keep.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def land_and_build(settings: Settings) -> Observed:
    """Run the corpus through source → ingest batch/stream/fx → transform and observe the result."""
    from bankpipe import ops, transform
    from bankpipe.ingest import fx, postgres, stream
    from bankpipe.source.db import connect as source_connect
    from bankpipe.source.load import load_files
    from bankpipe.warehouse import connect

    cases = build()
    obs = Observed(cases)
    batch = write_batch_files(settings.state / "corpus-batch")
    with source_connect(settings) as conn:
        load_files(conn, batch)
    postgres.run(settings, "full")

    landing = settings.transactions_landing
    landing.mkdir(parents=True, exist_ok=True)
    for c in cases:
        if c.setup:
            c.setup(landing)
        if not c.late:
            for name, data in c.files.items():
                _write(landing, name, data, OLD)
    # a same-named file whose content changes between passes (a producer re-sending a corrected file)
    from tests.corpus.cases import array, txn

    _write(landing, REPLACED, array(txn("TRX-990001")), OLD)
    stream.run(settings)

    _write(landing, REPLACED, array(txn("TRX-990001"), txn("TRX-990002")), OLD + 1)
    for c in cases:
        if c.late:
            for name, data in c.files.items():
                _write(landing, name, data, None)  # mtime now: still being written
    stream.run(settings)
    with connect(settings, read_only=True) as wh:
        obs.ledger_while_writing = _ledger(wh)
    for c in cases:
        if c.late:
            for name in c.files:
                os.utime(landing / name, (OLD + 2, OLD + 2))
    stream.run(settings)

    fx.run(settings)
    try:
        transform.run(settings)
        obs.transform_ok = True
    except Exception as exc:  # the corpus reports the failure as an outcome; the tests assert on it
        obs.status["transform_error"] = str(exc)

    with connect(settings, read_only=True) as wh:
        obs.ledger = _ledger(wh)
        obs.replaced_versions = wh.fetchone(
            "select count(*) from ops.ingested_files where file_name = ? and status = 'loaded'", [REPLACED]
        )[0]
        obs.bad_lines = wh.fetchall("select file_name, line_number, reason from ops.rejected_lines order by 1, 2")
        obs.bronze_ids = dict(wh.fetchall("select id, count(*) from bronze.raw_transactions group by 1"))
        if obs.transform_ok:
            obs.silver = dict(wh.fetchall("select transaction_id, count(*) from silver.stg_transactions group by 1"))
            obs.amounts = dict(wh.fetchall("select transaction_id, amount from silver.stg_transactions"))
            obs.gold = dict(
                wh.fetchall("select transaction_id, count(*) from gold.fact_transaction_enriched group by 1")
            )
            obs.gold_usd_missing = {
                r[0]
                for r in wh.fetchall(
                    "select transaction_id from gold.fact_transaction_enriched where amount_usd is null"
                )
            }
            for key, rule in wh.fetchall(
                "select record_key, rule from silver.rejected_records where entity = 'transaction'"
            ):
                obs.rejected.setdefault(key, set()).add(rule)
            for key, (table, column) in MASTERS.items():
                cols = [d[0] for d in wh.fetchall(f"describe gold.{table}")]
                row = wh.fetchall(f"select * from gold.{table} where {column} = ?", [key])
                obs.masters[key] = dict(zip(cols, row[0], strict=True)) if row else {}
        obs.status |= ops.status(wh)
    return obs
