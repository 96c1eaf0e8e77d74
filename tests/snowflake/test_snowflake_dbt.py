"""`dbt build` with dbt-snowflake against fakesnow in server mode gives the same gold as DuckDB.

Bronze is filled by bankpipe's own loaders on both warehouses from the same input (seed batch
files through PostgreSQL, seed stream files through the landing folder, a few USD rates); then
the same dbt project is built on each and the gold row counts and money totals are compared
(tests/snowflake/gold.py builds the pair once for this package).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from bankpipe import transform
from bankpipe.settings import Settings
from bankpipe.warehouse import connect as wh_connect

from .gold import CLUSTERED, Built, gold_facts

pytestmark = [pytest.mark.snowflake_emulated, pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("dbt.adapters.snowflake")


def test_dbt_build_on_fakesnow_matches_duckdb_gold(on_emulator: Built) -> None:
    res = on_emulator.result
    failed = [
        f"{r.node.name}: {str(r.message).splitlines()[0] if r.message else r.status}"
        for r in (res.result.results if res.result else [])
        if str(r.status) in ("error", "fail", "runtime error")
    ]
    assert res.exception is None, res.exception
    if failed:  # quote the reconciliation's numbers, as `bankpipe transform` does
        with wh_connect(on_emulator.snowflake) as wh:
            failed += [str(r) for r in wh.fetchall("select * from audit.reconciliation_transactions")]
    assert not failed, failed
    assert res.success
    expected = gold_facts(on_emulator.duckdb)
    got = gold_facts(on_emulator.snowflake)
    assert got == expected
    # Python steps read gold as Arrow through the real connector's result path (server mode).
    with wh_connect(on_emulator.snowflake) as wh:
        enriched = wh.fetch_arrow("select transaction_id, amount_usd from gold.fact_transaction_enriched")
    assert enriched.num_rows == 60 and enriched.column_names == ["transaction_id", "amount_usd"]
    assert expected["gold.fact_transaction_enriched"] == 60


def test_big_facts_are_created_with_a_clustering_key_on_the_emulator(on_emulator: Built) -> None:
    # dbt-snowflake's cluster_by: CTAS ordered by the key, then `alter table … cluster by (…)`;
    # fakesnow accepts (and ignores) the statement, so the SQL a real account gets was really sent.
    log = on_emulator.dbt_log.read_text()
    for model in CLUSTERED:
        altered = re.findall(rf"alter table \S*{model}\"? cluster by \(transaction_date\)", log, re.IGNORECASE)
        assert altered, f"no clustering key sent for {model}"
    assert not re.search(r"alter table \S*(dim_|mart_|stg_)\S* cluster by", log, re.IGNORECASE)


def test_a_real_account_target_configures_clustering_on_the_big_facts_only(tmp_path: Path) -> None:
    # The profile bankpipe writes for production (not the emulator's): parsing needs no connection.
    settings = Settings(state_dir=tmp_path / "state").model_copy(
        update={
            "warehouse": "snowflake",
            "snowflake_account": "xy12345.ap-southeast-1",
            "snowflake_user": "bankpipe_loader",
            "snowflake_password": SecretStr("never-used"),
            "snowflake_warehouse": "BANKPIPE_WH",
            "snowflake_role": "BANKPIPE_ROLE",
        }
    )
    transform.invoke(settings, ["parse"])
    manifest = json.loads((transform.dbt_state_dir(settings) / "target" / "manifest.json").read_text())
    cluster_by = {
        node["name"]: node["config"].get("cluster_by")
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    assert {name: key for name, key in cluster_by.items() if key} == {m: ["transaction_date"] for m in CLUSTERED}


def test_customer_masks_and_pseudonyms_on_the_emulator_match_duckdb(on_emulator: Built) -> None:
    # Same key on both builds (tests/snowflake/conftest.py): sha2() on Snowflake and sha256() on DuckDB
    # must give the same pseudonym, and both regexp dialects the same masks.
    sql = (
        "select customer_id, full_name_masked, email_masked, name_pseudonym, email_pseudonym"
        " from gold.dim_customers where customer_id is not null order by customer_id, valid_from"
    )
    with wh_connect(on_emulator.duckdb) as wh:
        expected = wh.fetchall(sql)
    with wh_connect(on_emulator.snowflake) as wh:
        got = wh.fetchall(sql)
        clear = wh.fetchall("select count(*), count(email) from silver_pii.customers")
    assert got == expected and len(expected) > 10
    assert all(r[1].count("*****") >= 1 and "***@" in r[2] and len(r[3]) == 64 for r in got)
    assert clear[0][0] == len({r[0] for r in expected}) and clear[0][1] > 0


def _dbt_on_emulator(on_emulator: Built, args: list[str]) -> tuple[bool, str]:
    """Run a dbt command against the emulator with the profile the build wrote; (success, new dbt.log text)."""
    from dbt.cli.main import dbtRunner

    before = on_emulator.dbt_log.stat().st_size
    res = dbtRunner().invoke([*args, *transform._common_flags(on_emulator.snowflake)])
    with on_emulator.dbt_log.open("rb") as f:
        f.seek(before)
        return bool(res.success), f.read().decode("utf-8", "replace")


def test_governance_ddl_is_sent_to_snowflake_and_the_emulator_lacks_it(on_emulator: Built) -> None:
    # With the project's default (snowflake_governance: true) the masking policy and the grants are sent;
    # fakesnow cannot parse masking policies, GRANT or REVOKE, so the run fails at the first statement of
    # each hook: what is verified is the SQL a real account receives, not its effect.
    ok, log = _dbt_on_emulator(on_emulator, ["run", "--select", "customers"])
    assert not ok
    assert re.search(r"create masking policy if not exists BANKING_DB\.silver_pii\.pii_clear_text", log, re.I)
    assert "is_role_in_session('BANKPIPE_PII_READER')" in log
    assert re.search(r"syntax error at or near \"masking\"", log)  # the emulator's gap, not the project's
    hooks = on_emulator.snowflake.state / "dbt" / "target" / "compiled" / "bankpipe" / "dbt_project.yml" / "hooks"
    grants = (hooks / "bankpipe-on-run-end-0.sql").read_text()
    for schema in ("silver", "gold"):
        assert f"grant select on all tables in schema BANKING_DB.{schema} to role BANKPIPE_ANALYST;" in grants
    for schema in ("silver_pii", "bronze"):
        assert f"revoke usage on schema BANKING_DB.{schema} from role BANKPIPE_ANALYST;" in grants
    assert "grant select on all tables in schema BANKING_DB.silver_pii to role BANKPIPE_PII_READER;" in grants
    assert "silver_pii to role BANKPIPE_ANALYST" not in grants
