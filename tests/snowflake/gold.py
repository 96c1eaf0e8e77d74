"""Build the same silver and gold twice from one input: on DuckDB, and on fakesnow (server mode) with dbt-snowflake.

Bronze is filled by bankpipe's own loaders on both warehouses (seed batch files through PostgreSQL,
seed stream files through the landing folder, a few USD rates); then the same dbt project is built
on each. Built once per test package: the dbt test compares gold, the dashboard test its queries.
"""

from __future__ import annotations

import dataclasses
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from bankpipe import pii, transform
from bankpipe.ingest import postgres, stream
from bankpipe.settings import Settings
from bankpipe.warehouse import connect as wh_connect
from bankpipe.warehouse import snowflake as sf
from tests.dbt_fixtures import bronze

RATES = [("2025-12-23", "IDR", "16750.50"), ("2025-12-24", "IDR", "16800.25"), ("2025-12-26", "IDR", "16820.00")]
GOLD_TABLES = (
    "dim_accounts",
    "dim_banks",
    "dim_customers",
    "dim_date",
    "dim_exchange_rates",
    "dim_locations",
    "fact_transaction",
    "fact_transaction_enriched",
    "mart_customer_rfm",
    "mart_fx_exposure",
    "mart_geo_activity",
    "mart_risk_indicators",
)
SILVER_TABLES = ("stg_transactions", "stg_customers", "stg_accounts", "rejected_records")
# The facts dbt-snowflake must create with a clustering key (config cluster_by in their models).
CLUSTERED = ("fact_transaction", "fact_transaction_enriched")


@dataclasses.dataclass
class Built:
    """Both warehouses built from the same input, and what the dbt-snowflake build returned."""

    duckdb: Settings
    snowflake: Settings
    server: dict[str, Any]
    result: Any  # dbtRunnerResult of `dbt build` on the emulator
    dbt_log: Path


def point_at_emulator(server: dict[str, Any], mp: pytest.MonkeyPatch) -> None:
    """Point SnowflakeWarehouse at the emulator's HTTP endpoint and keep its money sums exact (undone with `mp`)."""
    # Settings carry account/user/password only; the emulator also needs host, port and protocol.
    original = sf.SnowflakeConfig.from_settings.__func__  # type: ignore[attr-defined]

    def from_settings(cls: type, settings: Settings) -> sf.SnowflakeConfig:
        return dataclasses.replace(
            original(cls, settings),
            host=server["host"],
            port=server["port"],
            protocol=server["protocol"],
            login_timeout_s=10,
            network_timeout_s=30,
        )

    mp.setattr(sf.SnowflakeConfig, "from_settings", classmethod(from_settings))
    # fakesnow wraps every SUM/AVG argument in TRY_CAST(… AS DOUBLE) (to mimic Snowflake's implicit
    # text-to-number cast), which turns exact NUMBER(18,2) money sums into floats, so control totals
    # that balance on Snowflake differ in the last digit. The models and the dashboard never
    # aggregate text (they run on strict DuckDB too), so the emulator keeps the argument types.
    import fakesnow.transforms

    mp.setattr(fakesnow.transforms, "numeric_agg_implicit_cast", lambda expression: expression)


def fill_bronze(settings: Settings, seed_dir: Path) -> None:
    """Seed masters from PostgreSQL (full load), the seed's stream files, three USD rates."""
    postgres.run(settings, "full")
    landing = settings.transactions_landing
    landing.mkdir(parents=True, exist_ok=True)
    for f in sorted((seed_dir / "stream_source").iterdir()):
        shutil.copy(f, landing)
    assert stream.run(settings).rows == 60
    with wh_connect(settings) as wh:
        bronze.insert_rates(wh, RATES)


def emulate_missing_functions() -> None:
    """Give the emulator the Snowflake functions it lacks, defined as the DuckDB models define them.

    fakesnow 0.12 has no one-argument TRY_TO_TIMESTAMP_NTZ (bankpipe.parse_timestamp on Snowflake)
    nor TRY_TO_TIMESTAMP_TZ (bankpipe.parse_timestamp_tz); the DuckDB macros mirror
    default__parse_timestamp and default__parse_timestamp_tz, so both runs parse the same way. This
    is the emulator's gap, so it is filled in the emulator, not in the project.
    """
    import fakesnow.server

    fakesnow.server.shared_fs.duck_conn.execute(
        "create or replace macro BANKING_DB.main.try_to_timestamp_ntz(x) as try_cast(x as timestamp)"
    )
    fakesnow.server.shared_fs.duck_conn.execute(
        "create or replace macro BANKING_DB.main.try_to_timestamp_tz(x) as try_cast(x as timestamptz)"
    )


def dbt_build_on_fakesnow(settings: Settings, server: dict[str, Any], project: Path) -> Any:
    """`dbt build` of the project with dbt-snowflake against the emulator; the dbtRunnerResult."""
    from dbt.cli.main import dbtRunner

    state = settings.state / "dbt"
    state.mkdir(parents=True, exist_ok=True)
    output = {
        "type": "snowflake",
        "account": "fakesnow",  # the shims in dbt/macros/snowflake/ key on this account name
        "user": server["user"],
        "password": server["password"],
        "host": server["host"],
        "port": server["port"],
        "protocol": server["protocol"],
        "database": "BANKING_DB",
        "warehouse": "BANKPIPE_WH",
        "schema": "PUBLIC",
        "threads": 1,
        # An emulator error is an HTTP 500, which the connector would retry for minutes.
        "connect_timeout": 10,
        "connect_retries": 0,
        "reuse_connections": True,
    }
    (state / "profiles.yml").write_text(
        yaml.safe_dump({transform.PROFILE: {"target": "fakesnow", "outputs": {"fakesnow": output}}})
    )
    # The same flags `bankpipe transform` passes (state dir, logs, no telemetry), this profile.
    assert project == transform.project_dir()
    # What `bankpipe transform` does before dbt: the pseudonym key into silver_pii (bound, never in SQL text).
    pii.install_key(settings)
    # fakesnow has no masking policies, GRANT or REVOKE: the governance DDL (dbt/macros/snowflake/
    # governance.sql) is verified on a real account only, and switched off here by its project var.
    args = ["build", *transform._common_flags(settings), "--vars", "{snowflake_governance: false}"]
    return dbtRunner(callbacks=[transform._on_event]).invoke(args)


def gold_facts(settings: Settings) -> dict[str, Any]:
    """Row counts of every gold table and the key silver ones, money totals, rejects per rule."""
    with wh_connect(settings) as wh:
        facts: dict[str, Any] = {}
        for t in GOLD_TABLES:
            facts[f"gold.{t}"] = wh.fetchone(f"select count(*) from gold.{t}")[0]
        for t in SILVER_TABLES:
            facts[f"silver.{t}"] = wh.fetchone(f"select count(*) from silver.{t}")[0]
        amount_idr, amount_usd, priced = wh.fetchone(
            "select sum(amount_idr), sum(amount_usd), count(amount_usd) from gold.fact_transaction_enriched"
        )
        facts["sum(amount_idr)"] = Decimal(str(amount_idr))
        facts["sum(amount_usd)"] = Decimal(str(amount_usd))
        facts["count(amount_usd)"] = priced
        facts["rejected rules"] = sorted(
            wh.fetchall("select rule, count(*) from silver.rejected_records group by rule")
        )
    return facts


def build(root: Path, seed_dir: Path, pg_url: str, server: dict[str, Any]) -> Built:
    """Load the seed into PostgreSQL, fill both bronzes, run `bankpipe transform` on DuckDB and dbt on fakesnow."""
    from bankpipe.source.db import connect as source_connect
    from bankpipe.source.load import load_files
    from tests.snowflake.conftest import PII_KEY, snowflake_settings

    with pytest.MonkeyPatch.context() as mp:
        # As tests/conftest.py's `settings` does, for the duration of the build only.
        mp.setenv("BANKPIPE_STATE_DIR", str(root / "state"))
        mp.setenv("BANKPIPE_SOURCE_URL", pg_url)
        mp.setenv("BANKPIPE_PII_KEY", PII_KEY)
        for name in ("BANKPIPE_LANDING_DIR", "BANKPIPE_WAREHOUSE_PATH", "BANKPIPE_WAREHOUSE"):
            mp.delenv(name, raising=False)
        settings = Settings()
        with source_connect(settings) as conn:
            load_files(conn, seed_dir / "batch_source")
        fill_bronze(settings, seed_dir)
        assert transform.run(settings).success
        sf_settings = snowflake_settings(settings)
        point_at_emulator(server, mp)
        fill_bronze(sf_settings, seed_dir)
        emulate_missing_functions()
        result = dbt_build_on_fakesnow(sf_settings, server, transform.project_dir())
    return Built(settings, sf_settings, server, result, sf_settings.state / "dbt" / "logs" / "dbt.log")


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """A result frame with lower-case columns and one dtype per kind, whichever warehouse produced it.

    Numbers become float64, booleans pandas' nullable boolean, timestamps naive UTC microseconds,
    everything else objects with None for missing.
    """
    out = df.rename(columns=str.lower).copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("boolean")
        elif pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float64")
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.astype("datetime64[us]")
        else:
            out[col] = s.astype("object").where(s.notna(), None)
    return out
