"""`dbt build` with dbt-snowflake against fakesnow in server mode gives the same gold as DuckDB.

Bronze is filled by bankpipe's own loaders on both warehouses from the same input (seed batch
files through PostgreSQL, seed stream files through the landing folder, a few USD rates); then
the same dbt project is built on each and the gold row counts and money totals are compared.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bankpipe import transform
from bankpipe.ingest import postgres, stream
from bankpipe.settings import Settings
from bankpipe.source.db import connect as source_connect
from bankpipe.source.load import load_files
from bankpipe.warehouse import connect as wh_connect
from bankpipe.warehouse import snowflake as sf
from tests.dbt_fixtures import bronze

from .conftest import snowflake_settings

pytestmark = [pytest.mark.snowflake_emulated, pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("dbt.adapters.snowflake")

RATES = [("2025-12-23", "IDR", "16750.50"), ("2025-12-24", "IDR", "16800.25"), ("2025-12-26", "IDR", "16820.00")]
# What dbt_project.yml must say for the fakesnow shims (dbt/macros/snowflake/) to take effect.
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


def _fill_bronze(settings: Settings, seed_dir: Path) -> None:
    postgres.run(settings, "full")
    landing = settings.transactions_landing
    landing.mkdir(parents=True, exist_ok=True)
    for f in sorted((seed_dir / "stream_source").iterdir()):
        shutil.copy(f, landing)
    assert stream.run(settings).rows == 60
    with wh_connect(settings) as wh:
        bronze.insert_rates(wh, RATES)


def _emulate_missing_functions() -> None:
    """Give the emulator the Snowflake functions it lacks, defined as the DuckDB models define them.

    fakesnow 0.12 has no one-argument TRY_TO_TIMESTAMP_NTZ (bankpipe.parse_timestamp on Snowflake);
    the DuckDB macro mirrors default__parse_timestamp, so both runs parse the same way. This is the
    emulator's gap, so it is filled in the emulator, not in the project.
    """
    import fakesnow.server

    fakesnow.server.shared_fs.duck_conn.execute(
        "create or replace macro BANKING_DB.main.try_to_timestamp_ntz(x) as try_cast(x as timestamp)"
    )


def _dbt_build_on_fakesnow(settings: Settings, server: dict[str, Any], project: Path) -> Any:
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
    args = [
        "build",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(state),
        "--target-path",
        str(state / "target"),
        "--log-path",
        str(state / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
        "--log-level",
        "none",
        "--log-level-file",
        "debug",
    ]
    return dbtRunner(callbacks=[transform._on_event]).invoke(args)


def _gold_facts(settings: Settings) -> dict[str, Any]:
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


@pytest.fixture
def server(emulator_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # Point the loader at the emulator's HTTP endpoint (settings carry account/user/password only).
    original = sf.SnowflakeConfig.from_settings.__func__  # type: ignore[attr-defined]

    def from_settings(cls: type, settings: Settings) -> sf.SnowflakeConfig:
        return dataclasses.replace(
            original(cls, settings),
            host=emulator_server["host"],
            port=emulator_server["port"],
            protocol=emulator_server["protocol"],
            login_timeout_s=10,
            network_timeout_s=30,
        )

    monkeypatch.setattr(sf.SnowflakeConfig, "from_settings", classmethod(from_settings))
    return emulator_server


@pytest.fixture
def emulator_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    # fakesnow wraps every SUM/AVG argument in TRY_CAST(… AS DOUBLE) (to mimic Snowflake's implicit
    # text-to-number cast), which turns exact NUMBER(18,2) money sums into floats, so control totals
    # that balance on Snowflake differ in the last digit. The models never aggregate text (they run
    # on strict DuckDB too), so the emulator keeps the argument types as they are.
    import fakesnow.transforms

    monkeypatch.setattr(fakesnow.transforms, "numeric_agg_implicit_cast", lambda expression: expression)
    with fakesnow.server() as conn_kwargs:
        yield conn_kwargs


def test_dbt_build_on_fakesnow_matches_duckdb_gold(settings, seed_dir, server, tmp_path):
    with source_connect(settings) as conn:
        load_files(conn, seed_dir / "batch_source")
    _fill_bronze(settings, seed_dir)
    duck_result = transform.run(settings)
    assert duck_result.success
    expected = _gold_facts(settings)

    sf_settings = snowflake_settings(settings)
    _fill_bronze(sf_settings, seed_dir)
    _emulate_missing_functions()
    res = _dbt_build_on_fakesnow(sf_settings, server, transform.project_dir())
    failed = [
        f"{r.node.name}: {str(r.message).splitlines()[0] if r.message else r.status}"
        for r in (res.result.results if res.result else [])
        if str(r.status) in ("error", "fail", "runtime error")
    ]
    assert res.exception is None, res.exception
    if failed:  # quote the reconciliation's numbers, as `bankpipe transform` does
        with wh_connect(sf_settings) as wh:
            failed += [str(r) for r in wh.fetchall("select * from audit.reconciliation_transactions")]
    assert not failed, failed
    assert res.success
    got = _gold_facts(sf_settings)
    assert got == expected
    # Python steps read gold as Arrow through the real connector's result path (server mode).
    with wh_connect(sf_settings) as wh:
        enriched = wh.fetch_arrow("select transaction_id, amount_usd from gold.fact_transaction_enriched")
    assert enriched.num_rows == 60 and enriched.column_names == ["transaction_id", "amount_usd"]
    assert expected["gold.fact_transaction_enriched"] == 60
