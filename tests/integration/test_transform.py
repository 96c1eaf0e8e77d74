"""`bankpipe transform` end to end: seed-format bronze + hand-made defects → dbt build → silver/gold.

dbt runs four times in the whole module (build, re-run, new transactions, reconciliation gate):
each run costs seconds of parsing and per-node overhead, so the fixture is module-scoped and the
tests that write to bronze come last, in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bankpipe import transform
from bankpipe.errors import BankpipeError
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dbt_fixtures import bronze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEFECTS_AT = bronze.LOADED_AT + timedelta(hours=1)


def _txn(tid: str | None, **overrides: str | None) -> dict[str, str | None]:
    rec: dict[str, str | None] = {
        "id": tid,
        "date": "2025-12-24",
        "timestamp": "12:00:00",
        "account_id": "ACC-00003",
        "jumlah_transaksi": "150000.00",
        "tipe_transaksi": "Payment",
        "akun_tujuan": "ACC-00004",
        "status": "Success",
    }
    rec.update(overrides)
    return rec


# Hand-made transactions and what silver must make of them (rule None = valid).
DEFECTS: list[bronze.Defect] = [
    bronze.Defect(_txn("TRX-900001", jumlah_transaksi="-5000"), "non_positive_amount"),
    bronze.Defect(_txn("TRX-900002", date="2025-13-45"), "invalid_date"),
    bronze.Defect(_txn("TRX-900003", status="Refunded"), "unknown_status"),
    bronze.Defect(_txn("TRX-900004", account_id=None), "missing_account_id"),
    bronze.Defect(_txn("TRX-900005", mata_uang="XYZ"), "unknown_currency"),
    bronze.Defect(_txn("TRX-900006", date="2030-01-01"), "future_date"),
    bronze.Defect(_txn("TRX-900007", jumlah_transaksi="Rp 12.500"), "invalid_amount"),
    # valid ones: an orphan account, a USD payment and an IDR transfer on a Saturday (no rate that day)
    bronze.Defect(_txn("TRX-900010", account_id="ACC-99999"), None),
    bronze.Defect(_txn("TRX-900011", date="2025-12-27", mata_uang="USD", jumlah_transaksi="25.00"), None),
    bronze.Defect(_txn("TRX-900012", date="2025-12-27", tipe_transaksi="transfer", status=" success "), None),
]

# USD-based rates: Tue, Wed, (Christmas: none), Fri, (weekend: none) — and one bronze row that breaks a rule.
RATES = [("2025-12-23", "IDR", "16750.50"), ("2025-12-24", "IDR", "16800.25"), ("2025-12-26", "IDR", "16820.00")]


@dataclass
class Built:
    settings: Settings
    result: transform.TransformResult
    seed_ids: set[str]
    conflict_id: str


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect(settings, read_only=True) as wh:
        return wh.fetchall(sql, params)


def _fill_bronze(settings: Settings, sample_dir: Path) -> tuple[set[str], str]:
    files = sorted((sample_dir / "stream_source").glob("*.json"))
    with connect(settings) as wh:
        bronze.load_seed_masters(wh, sample_dir)
        bronze.load_seed_transactions(wh, files)
        seed_ids = {r[0] for r in wh.fetchall("select id from bronze.raw_transactions")}
        # An exact re-send of a seed record (collapses) and a conflicting record reusing a seed id.
        first = wh.fetchone(
            "select id, date, timestamp, account_id, jumlah_transaksi, tipe_transaksi, akun_tujuan, status"
            " from bronze.raw_transactions order by id limit 1"
        )
        assert first is not None
        resend = dict(zip(bronze.STREAM_COLUMNS, first, strict=False))
        conflict = dict(resend, jumlah_transaksi="1.00")
        conflict_id = str(resend["id"])
        bronze.insert_transactions(wh, [d.record for d in DEFECTS] + [resend, conflict], "stream-handmade", DEFECTS_AT)
        bronze.insert_rates(wh, RATES)
        wh.execute(
            """insert into bronze.raw_exchange_rates
               (_batch_id, _loaded_at, _source, rate_date, base, quote, rate, source, fetched_at)
               values ('fx-test', ?, 'fx-api', '2025-12-22', 'EUR', 'IDR', 19000, 'test_api', ?)""",
            [bronze.LOADED_AT, bronze.LOADED_AT],
        )
        # Master-data history: a segment change, a deleted customer, an account with a type silver does not
        # know (kept and flagged, not rejected).
        later = DEFECTS_AT
        bronze.insert_master_version(
            wh,
            "raw_customers",
            {
                "id": "CUST-0001",
                "nama_depan": "Hari",
                "nama_belakang": "Napitupulu",
                "email": "hari.napitupulu@example.com",
                "segmen": "Gold",
                "location_id": "LOC-069",
                "bank_id": "BANK-006",
            },
            later,
        )
        bronze.insert_master_version(wh, "raw_customers", {"id": "CUST-0015"}, later, deleted=True)
        bronze.insert_master_version(
            wh,
            "raw_accounts",
            {"id": "ACC-00099", "customer_id": "CUST-0002", "tipe_akun": "Gold card", "saldo": "10"},
            later,
        )
    return seed_ids, conflict_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[Built]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("transform") / "state", warehouse_path=None)
    seed_ids, conflict_id = _fill_bronze(settings, sample_dir)
    result = transform.run(settings, unit_tests=True)
    yield Built(settings, result, seed_ids, conflict_id)


def test_build_succeeds_with_models_tests_and_unit_tests(built: Built) -> None:
    r = built.result
    assert r.success and not r.failed
    assert r.count("model", "success") >= 30
    assert r.count("test", "pass") >= 100
    assert r.count("unit_test", "pass") >= 10
    state = built.settings.state / "dbt"
    assert (state / "profiles.yml").is_file() and (state / "target" / "manifest.json").is_file()
    assert not (transform.project_dir() / "target").exists(), "dbt wrote into the repository"
    assert not (transform.project_dir() / "logs").exists(), "dbt wrote into the repository"


def test_schemas_are_exactly_silver_and_gold(built: Built) -> None:
    schemas = {r[0] for r in query(built.settings, "select distinct table_schema from information_schema.tables")}
    assert {"silver", "gold"} <= schemas
    assert not {s for s in schemas if s.startswith("main_")}


def test_rejects_hold_exactly_the_defective_rows(built: Built) -> None:
    rows = query(built.settings, "select entity, record_key, rule from silver.rejected_records")
    expected = {("transaction", d.record["id"] or "<missing>", d.rule) for d in DEFECTS if d.rule}
    expected |= {
        ("transaction", built.conflict_id, "duplicate_transaction_id"),
        ("exchange_rate", "IDR@2025-12-22", "unsupported_base"),
    }
    assert set(rows) == expected
    assert len(rows) == len(expected)
    raw = query(built.settings, "select raw_record from silver.rejected_records where record_key = 'TRX-900001'")
    assert '"-5000"' in raw[0][0]
    flagged = query(built.settings, "select flag, value from silver.flagged_records where record_key = 'ACC-00099'")
    assert flagged == [("unknown_account_type", "Gold card")]


def test_silver_is_typed_deduplicated_and_flags_orphans(built: Built) -> None:
    s = built.settings
    n_valid = len(built.seed_ids) + sum(1 for d in DEFECTS if d.rule is None)
    assert query(s, "select count(*), count(distinct transaction_id) from silver.stg_transactions") == [
        (n_valid, n_valid)
    ]
    types = dict(
        query(
            s,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'silver' and table_name = 'stg_transactions'",
        )
    )
    assert types["amount"] == "DECIMAL(18,2)" and types["transaction_at"] == "TIMESTAMP"
    assert query(s, "select is_orphan from silver.stg_transactions where transaction_id = 'TRX-900010'") == [(True,)]
    assert query(
        s, "select transaction_type, status from silver.stg_transactions where transaction_id = 'TRX-900012'"
    ) == [("Transfer", "Success")]
    # the first valid copy of the re-used id wins; the conflicting copy is the reject above
    assert query(
        s, "select amount <> 1.00 from silver.stg_transactions where transaction_id = ?", [built.conflict_id]
    ) == [(True,)]


def test_seed_transactions_reach_gold_with_usd_amounts(built: Built) -> None:
    rows = query(built.settings, "select transaction_id, amount_usd from gold.fact_transaction_enriched")
    usd = dict(rows)
    assert built.seed_ids <= set(usd)
    assert all(usd[t] is not None for t in built.seed_ids)
    assert query(
        built.settings, "select account_key, is_orphan from gold.fact_transaction where transaction_id = 'TRX-900010'"
    ) == [("-1", True)]


def test_asof_join_takes_the_last_published_rate(built: Built) -> None:
    rows = dict(
        (r[0], r[1:])
        for r in query(
            built.settings,
            "select transaction_id, cast(fx_rate_date as varchar), amount_idr, amount_usd, fx_rate_source"
            " from gold.fact_transaction_enriched where transaction_id in ('TRX-000041', 'TRX-900011', 'TRX-900012')",
        )
    )
    # Christmas (no rate) takes Wednesday's; Saturday takes Friday's
    assert rows["TRX-000041"][0] == "2025-12-24"
    assert rows["TRX-900012"][0] == "2025-12-26"
    _, amount_idr, amount_usd, _ = rows["TRX-900011"]
    assert str(amount_usd) == "25.00" and str(amount_idr) == "420500.00"  # 25 × 16 820
    assert str(rows["TRX-900012"][1]) == "150000.00" and str(rows["TRX-900012"][2]) == "8.92"


def test_customer_segment_history_is_kept(built: Built) -> None:
    rows = query(
        built.settings,
        "select segment, is_current from gold.dim_customers where customer_id = 'CUST-0001' order by valid_from",
    )
    assert rows == [("Platinum", False), ("Gold", True)]
    assert query(built.settings, "select count(*) from silver.stg_customers where customer_id = 'CUST-0015'") == [(0,)]


def test_dimensions_have_unknown_members_and_coordinates(built: Built) -> None:
    for table, key in (
        ("dim_accounts", "account_key"),
        ("dim_customers", "customer_key"),
        ("dim_locations", "location_key"),
        ("dim_banks", "bank_key"),
    ):
        assert query(built.settings, f"select count(*) from gold.{table} where {key} = '-1'") == [(1,)], table
    missing = query(
        built.settings, "select count(*) from gold.dim_locations where location_key <> '-1' and latitude is null"
    )
    assert missing == [(0,)]


def test_run_is_logged(built: Built) -> None:
    rows = query(built.settings, "select status, rows_out from ops.run_log where step = 'transform'")
    assert rows and rows[0][0] == "success" and rows[0][1] >= 30


def _checksums(settings: Settings) -> dict[str, tuple[Any, ...]]:
    tables = query(
        settings,
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('silver', 'gold') order by all",
    )
    return {
        f"{s}.{t}": query(settings, f"select count(*), sum(hash(t)::hugeint) from {s}.{t} as t")[0] for s, t in tables
    }


def test_rerun_without_new_data_changes_nothing(built: Built) -> None:
    before = _checksums(built.settings)
    idle = transform.run(built.settings)
    assert idle.success and not idle.nodes and "nothing new" in idle.scope, "no new bronze must mean no dbt run"
    again = transform.run(built.settings, everything=True)
    assert again.success and again.scope == "everything, as asked"
    # a production build leaves the unit tests (static fixtures) to development and CI
    assert again.count("unit_test") == 0 and again.count("test", "pass") == built.result.count("test", "pass")
    assert _checksums(built.settings) == before


def _built_models(result: transform.TransformResult) -> set[str]:
    return {n.name for n in result.nodes if n.resource_type == "model"}


def test_new_transactions_build_only_what_they_reach(built: Built) -> None:
    # USD, so that the IDR control totals the reconciliation test below counts stay as they are
    new = _txn("TRX-960001", date="2025-12-26", mata_uang="USD", jumlah_transaksi="40.00")
    with connect(built.settings) as wh:
        bronze.insert_transactions(wh, [new], "stream-new", bronze.LOADED_AT + timedelta(days=1))
        # An old row that breaks a test: a stream-only build tests the rows it adds, not this one.
        old = wh.fetchone("select transaction_id, channel from silver.base_transactions where rejection_rule is null")
        wh.execute("update silver.base_transactions set channel = null where transaction_id = ?", [old[0]])
        # A group the new transaction does not touch, marked: merging the new rows leaves it as it is.
        marked = wh.fetchone(
            "select account_key, location_key from gold.agg_account_activity"
            " where account_key <> (select account_key from gold.dim_accounts where account_id = 'ACC-00003')"
            " order by all limit 1"
        )
        wh.execute(_MARK, [1000, *marked])
    scope = transform.plan(built.settings)
    assert scope.select == ["source:bronze.raw_transactions+"] and scope.test_window
    try:
        result = transform.run(built.settings)
    finally:
        with connect(built.settings) as wh:
            wh.execute("update silver.base_transactions set channel = ? where transaction_id = ?", [old[1], old[0]])
            assert not wh.table_exists("audit", "test_window"), "the window must not outlive its build"
            survived = wh.fetchone(_MARKED, marked)
            wh.execute(_MARK, [-1000, *marked])
    assert survived == (True,), "a build of new stream files merges new rows, it does not recompute the aggregates"
    assert "not_null_stg_transactions_channel" in {n.name for n in result.nodes if n.status == "pass"}
    # the project is unchanged, so dbt keeps the manifest it wrote; run_results.json is this build's
    target = built.settings.state / "dbt" / "target"
    results = json.loads((target / "run_results.json").read_text())["results"]
    assert {r["unique_id"] for r in results} == {n.unique_id for n in result.nodes}
    assert (target / "manifest.json").is_file()
    models = _built_models(result)
    assert {"base_transactions", "fact_transaction_enriched", "reconciliation_transactions"} <= models
    # master data did not change: its models and their tests are not rebuilt, nor the seeds
    assert not models & {"stg_accounts", "dim_accounts", "dim_customers", "int_customer_versions"}
    assert result.count("seed") == 0 and 0 < result.count("test", "pass") < built.result.count("test", "pass")
    usd = query(
        built.settings, "select amount_usd from gold.fact_transaction_enriched where transaction_id = 'TRX-960001'"
    )
    assert usd == [(40,)]
    assert not transform.run(built.settings).nodes, "the same bronze twice must build nothing the second time"
    # (the marts were built from the marked group: only the aggregates can match a rebuild here)
    _assert_aggregates_match_a_rebuild(built.settings, _AGGREGATES)


# Marks a group of agg_account_activity in a way the fact cannot explain (its row count stays right).
_WHERE = "where account_key = ? and location_key = ?"
_GROUP = f"from gold.agg_account_activity {_WHERE}"
_MARK = f"update gold.agg_account_activity set orphan_count = orphan_count + ? {_WHERE}"
_MARKED = f"select orphan_count >= 1000 {_GROUP}"
_AGGREGATES = ["agg_account_activity", "agg_currency_daily_flows"]
_MARTS = ["mart_risk_indicators", "mart_geo_activity", "mart_customer_rfm", "mart_fx_exposure"]


def _assert_aggregates_match_a_rebuild(settings: Settings, tables: list[str]) -> None:
    """The incrementally kept aggregates (and marts) equal what a full rebuild of them makes."""

    def sums() -> dict[str, tuple[Any, ...]]:
        every = _checksums(settings)
        return {t: every[f"gold.{t}"] for t in tables}

    before = sums()
    rebuilt = transform.run(settings, select=[f"{t}+" for t in _AGGREGATES], full_refresh=True)
    assert {"agg_account_activity", "mart_risk_indicators"} <= _built_models(rebuilt)
    assert sums() == before


def test_an_aggregate_out_of_step_is_recomputed(built: Built) -> None:
    # A group lost from the aggregate and one the fact cannot explain: the counts no longer add up
    # to the fact's rows, so the next build of new stream files must recompute the aggregate rather
    # than merge into it — emptying it first, or the unexplained group would survive.
    with connect(built.settings) as wh:
        lost = wh.fetchone("select account_key, location_key from gold.agg_account_activity order by all limit 1")
        wh.execute(f"delete {_GROUP}", lost)
        wh.execute(
            "insert into gold.agg_account_activity by name"
            " select 'GHOST' as account_key, * exclude (account_key) from gold.agg_account_activity limit 1"
        )
        new = _txn("TRX-960002", date="2025-12-26", mata_uang="USD", jumlah_transaksi="41.00")
        bronze.insert_transactions(wh, [new], "stream-new-2", bronze.LOADED_AT + timedelta(days=2))
    result = transform.run(built.settings)
    assert {"agg_account_activity", "mart_risk_indicators"} <= _built_models(result)
    assert query(built.settings, f"select count(*) {_GROUP}", lost) == [(1,)]
    assert query(built.settings, "select count(*) from gold.agg_account_activity where account_key = 'GHOST'") == [(0,)]
    _assert_aggregates_match_a_rebuild(built.settings, _AGGREGATES + _MARTS)


def test_a_changed_project_rebuilds_everything(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    assert transform.plan(built.settings).select == []
    monkeypatch.setattr(transform, "project_fingerprint", lambda: "another version of the models")
    scope = transform.plan(built.settings)
    assert scope.select is None and "changed" in scope.reason
    assert transform.plan(built.settings, ["stg_banks"]).select == ["stg_banks"]


def test_reconciliation_gate_fails_when_bronze_and_silver_disagree(built: Built) -> None:
    # A batch committed with an _loaded_at older than the watermark: the incremental models never
    # see it, but the audit's bronze side reads by batch id, so bronze holds a record silver does
    # not — the gate must stop the build.
    with connect(built.settings) as wh:
        bronze.insert_transactions(wh, [_txn("TRX-950000", jumlah_transaksi="777.00")], "stream-late", bronze.LOADED_AT)
    # distinct IDR records in bronze: the seed's, the IDR defects, the conflicting copy and the late one
    idr_defects = sum(1 for d in DEFECTS if d.record.get("mata_uang") in (None, "IDR"))
    n_bronze = len(built.seed_ids) + idr_defects + 1 + 1
    with pytest.raises(BankpipeError) as err:
        transform.run(built.settings)
    msg = str(err.value)
    assert "\n" not in msg
    assert "assert_transaction_control_totals_balance" in msg and "do not reconcile" in msg
    assert f"bronze {n_bronze} records" in msg and f"silver {n_bronze - 1 - 7} " in msg
    status = query(
        built.settings,
        "select status, error from ops.run_log where step = 'transform' order by started_at desc limit 1",
    )
    assert status[0][0] == "failed" and "do not reconcile" in status[0][1]


def test_docs_generate_works(built: Built) -> None:
    target = transform.docs_generate(built.settings)
    assert (target / "index.html").is_file() and (target / "catalog.json").is_file()


def test_profiles_keep_secrets_out_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    duck = transform.profiles(Settings(state_dir=tmp_path))
    assert duck["bankpipe"]["outputs"]["duckdb"]["path"].endswith("warehouse.duckdb")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "hunter2")
    snow = Settings(state_dir=tmp_path, warehouse="snowflake")
    assert snow.snowflake_password is not None and snow.snowflake_password.get_secret_value() == "hunter2"
    profile = transform.profiles(snow)
    assert "hunter2" not in repr(profile) and "env_var('SNOWFLAKE_PASSWORD')" in repr(profile)
    assert profile["bankpipe"]["outputs"]["snowflake"]["database"] == "BANKING_DB"
