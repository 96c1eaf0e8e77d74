"""Build a small but complete warehouse for the dashboard tests, through the real pipeline stages.

generate (seed formats, planted fraud and defects) → stream ingest → bronze masters and fraud
cases (no PostgreSQL needed: written like tests/dbt_fixtures does) → FX from the offline ECB
snapshot → dbt build → two trained model versions, scores and monitoring. Every gold, silver,
audit and ops table the dashboard reads is then real.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dbt_fixtures import bronze

log = logging.getLogger(__name__)

# Nothing listens on port 9 (discard): the FX client fails at once and falls back to the snapshot.
OFFLINE_FX_URL = "http://127.0.0.1:9"


@dataclass
class Built:
    """The settings pointing at the warehouse, and what the build did."""

    settings: Settings
    transactions: int
    ml: bool
    seconds: float


def settings_for(state: Path) -> Settings:
    """Settings for a state dir, with the FX API unreachable so that the build never leaves the machine."""
    return Settings(state_dir=state, fx_api_url=OFFLINE_FX_URL, fx_retries=0, fx_timeout_s=1.0)


def build(
    root: Path,
    *,
    transactions: int = 12_000,
    customers: int = 250,
    days: int = 60,
    seed: int = 7,
    ml: bool = True,
) -> Built:
    """Generate, ingest, transform and (optionally) train/score into `root/state`."""
    from bankpipe import transform
    from bankpipe.generate import GenerateConfig, generate
    from bankpipe.ingest import fx, stream

    started = time.monotonic()
    settings = settings_for(root / "state")
    out = root / "generated"
    config = GenerateConfig(
        customers=customers,
        transactions=transactions,
        days=days,
        seed=seed,
        out=out,
        stream_out=settings.transactions_landing,
    )
    generate(config)
    # Inside the dashboard's default window (the last 30 days of data), so the movement chart has data.
    changed_at = datetime.combine(config.start_date + timedelta(days=days - 20), clock(9), UTC)
    stream.run(settings)
    with connect(settings) as wh:
        bronze.load_seed_masters(wh, out)
        _load_fraud_cases(wh, out / "batch_source" / "fraud_case.csv")
        _segment_changes(wh, out, changed_at)
    fx.run(settings)
    transform.run(settings)
    trained = _train(settings) if ml else False
    return Built(settings, transactions, trained, time.monotonic() - started)


def _load_fraud_cases(wh: object, path: Path) -> None:
    """Append the case-management labels as one bronze batch (what batch ingest does from PostgreSQL)."""
    wh.execute(  # type: ignore[attr-defined]
        """insert into bronze.raw_fraud_cases (_batch_id, _loaded_at, _source, _is_deleted, _created_at, _updated_at,
               transaction_id, confirmed_fraud, reported_at)
           select 'batch-fraud', ?::timestamptz, 'fraud_case', false, ?::timestamptz, ?::timestamptz,
                  transaction_id, confirmed_fraud, reported_at
           from read_csv(?, header = true, all_varchar = true)""",
        [bronze.LOADED_AT, bronze.LOADED_AT, bronze.LOADED_AT, str(path)],
    )


def _segment_changes(wh: object, out: Path, changed_at: datetime) -> None:
    """Give a few customers a later version with another segment, so dim_customers has movement."""
    rows = wh.fetchall(  # type: ignore[attr-defined]
        """select id, nama_depan, nama_belakang, email, segmen, location_id, bank_id
           from read_csv(?, header = true, all_varchar = true) order by id limit 6""",
        [str(out / "batch_source" / "customer.csv")],
    )
    cols = ("id", "nama_depan", "nama_belakang", "email", "segmen", "location_id", "bank_id")
    upgrades = {"Standard": "Silver", "Silver": "Gold", "Gold": "Platinum", "Platinum": "Priority", "Priority": "Gold"}
    for i, row in enumerate(rows):
        values = dict(zip(cols, row, strict=True))
        values["segmen"] = upgrades.get(values["segmen"], "Gold")
        bronze.insert_master_version(
            wh,  # type: ignore[arg-type]
            "raw_customers",
            values,
            changed_at + timedelta(minutes=i),
            batch_id="batch-segment-change",
        )


def _train(settings: Settings) -> bool:
    """Two fraud model versions (the second a challenger), batch scores and daily metrics."""
    try:
        from bankpipe.ml import monitor, score, train
    except ImportError as exc:  # the ML extras are not installed: the Model page shows its empty state
        log.warning("ML stages unavailable (%s): the test warehouse has no model", exc)
        return False
    # Few boosting rounds: the comparison tree only has to exist, not to be good.
    train.run(settings, "fraud", train.TrainConfig(tree_max_iter=20))
    train.run(settings, "fraud", train.TrainConfig(tree_max_iter=20, lr_c=0.05))
    score.run(settings)
    monitor.run(settings)
    return True
