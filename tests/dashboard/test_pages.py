"""Every page through Streamlit's AppTest: on empty warehouses (empty state, no exception) and on a small real one."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest

from bankpipe.dashboard import filters, ui
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dashboard.apptest import PAGES, chart_titles, charts, open_page, problems, texts, values


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect(settings, read_only=True) as wh:
        return wh.fetchall(sql, params)


def metric(at: Any, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r} on the page (have {[m.label for m in at.metric]})"
    return values[0]


def default_window(settings: Settings) -> tuple[Any, Any]:
    (last,) = query(settings, "select max(transaction_date) from gold.fact_transaction_enriched")[0]
    return last - timedelta(days=filters.DEFAULT_DAYS - 1), last


# --- empty warehouses -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_shows_the_empty_state(empty_app: Settings, page: str) -> None:
    at = open_page(page)
    assert not problems(at), problems(at)
    assert ui.EMPTY in texts(at)
    assert not charts(at)


def test_sidebar_without_data_offers_no_filters(empty_app: Settings) -> None:
    at = open_page("overview")
    assert not at.sidebar.date_input
    assert "Filters appear once the warehouse has gold data" in " ".join(c.value for c in at.sidebar.caption)


# --- a small real warehouse -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.integration
@pytest.mark.slow
def test_page_renders_charts_without_errors(small_app: Settings, page: str) -> None:
    at = open_page(page)
    assert not problems(at), problems(at)
    specs = charts(at)
    assert specs, f"{page}: no chart"
    for spec, title in zip(specs, chart_titles(at), strict=True):
        assert spec.get("data"), f"{page}: chart {title!r} has no traces"
    assert ui.EMPTY not in texts(at)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.integration
@pytest.mark.slow
def test_every_page_takes_every_filter(small_app: Settings, page: str) -> None:
    (bank,) = query(small_app, "select bank_key from gold.fact_transaction_enriched group by 1 order by count(*) desc")[
        0
    ]
    (province,) = query(
        small_app,
        "select l.province from gold.fact_transaction_enriched f join gold.dim_locations l using (location_key)"
        " group by 1 order by count(*) desc",
    )[0]
    at = open_page(page)
    # Set on the page itself: AppTest reruns a page file without app.py, so widget state does not
    # follow a switch_page the way it follows a page change in the browser (the e2e test checks that).
    at.session_state[filters.KEY_BANKS] = [bank]
    at.session_state[filters.KEY_SEGMENTS] = ["Gold", "Silver", "Standard", "Priority"]
    at.session_state[filters.KEY_PROVINCES] = [province]
    at.run()
    assert not problems(at), problems(at)
    assert f"bank: {bank}" in texts(at)  # the header names the active filters


@pytest.mark.integration
@pytest.mark.slow
def test_overview_kpis_match_gold_and_follow_the_bank_filter(small_app: Settings) -> None:
    start, end = default_window(small_app)
    at = open_page("overview")
    (n,) = query(
        small_app,
        "select count(*) from gold.fact_transaction_enriched where transaction_date between ? and ?",
        [start, end],
    )[0]
    assert metric(at, "Transactions") == f"{n:,}"
    assert metric(at, "Transactions") != "–"
    assert any(m.delta for m in at.metric), "no change against the previous period"

    (bank,) = query(small_app, "select bank_key from gold.dim_banks where bank_key <> '-1' order by 1 limit 1")[0]
    at.session_state[filters.KEY_BANKS] = [bank]
    at.run()
    (n_bank,) = query(
        small_app,
        "select count(*) from gold.fact_transaction_enriched where transaction_date between ? and ? and bank_key = ?",
        [start, end, bank],
    )[0]
    assert metric(at, "Transactions") == f"{n_bank:,}"
    assert n_bank < n


@pytest.mark.integration
@pytest.mark.slow
def test_overview_grain_changes_the_series(small_app: Settings) -> None:
    at = open_page("overview")
    at.session_state[filters.KEY_DATES] = query(
        small_app, "select min(transaction_date), max(transaction_date) from gold.fact_transaction_enriched"
    )[0]
    at.run()
    at.radio(key="ov_grain").set_value("month").run()
    count_chart = charts(at)[0]
    (months,) = query(
        small_app, "select count(distinct date_trunc('month', transaction_date)) from gold.fact_transaction_enriched"
    )[0]
    assert len(count_chart["data"][0]["x"]) == months
    assert "per month" in chart_titles(at)[0]


@pytest.mark.integration
@pytest.mark.slow
def test_geography_draws_an_offline_map_and_drills_into_a_province(small_app: Settings) -> None:
    at = open_page("geography")
    spec = charts(at)[0]
    geo = spec["layout"]["geo"]
    # Plotly fetches its base layers from a CDN: all of them must be off, the coast drawn as traces.
    for layer in ("showland", "showocean", "showcoastlines", "showcountries", "showlakes", "showrivers"):
        assert geo.get(layer) is False, layer
    assert all("locationmode" not in trace for trace in spec["data"])
    assert [t["type"] for t in spec["data"]] == ["scattergeo"] * 3
    bubbles = spec["data"][2]
    (located,) = query(small_app, "select count(*) from gold.dim_locations where latitude is not null")[0]
    assert 10 < len(values(bubbles["lon"])) <= located

    province = at.selectbox(key="geo_province").options[1]
    at.selectbox(key="geo_province").set_value(province).run()
    assert not problems(at)
    drilled = charts(at)
    assert province in chart_titles(at)[0]
    lon_range = drilled[0]["layout"]["geo"]["lonaxis"]["range"]
    assert lon_range[1] - lon_range[0] < 48  # zoomed in from the whole archipelago
    assert any("per day" in t for t in chart_titles(at))

    at.radio(key="geo_measure").set_value("Anomaly rate").run()
    assert not problems(at)
    assert "Anomaly rate" in chart_titles(at)[0]


@pytest.mark.integration
@pytest.mark.slow
def test_customers_masks_names_and_shows_segment_movement(small_app: Settings) -> None:
    at = open_page("customers")
    names = {r[0] for r in query(small_app, "select full_name from silver_pii.customers where full_name is not null")}
    masks = dict(query(small_app, "select customer_id, full_name_masked from silver.stg_customers"))
    top = at.dataframe[0].value
    assert len(top) > 0
    assert not set(top["full_name"]) & names
    assert [masks[c] for c in top["customer_id"]] == list(top["full_name"])  # gold's masked form, as is
    assert all(e.split("@")[0].endswith("***") for e in top["email"])
    assert "Segment changes in the period" in chart_titles(at)
    sankey = next(s for s in charts(at) if s["data"][0]["type"] == "sankey")
    assert sum(sankey["data"][0]["link"]["value"]) == 6


@pytest.mark.integration
@pytest.mark.slow
def test_risk_links_an_alert_to_its_transaction_history(small_app: Settings) -> None:
    start, end = default_window(small_app)
    (alert,) = query(
        small_app,
        "select a.transaction_id from gold.fraud_alerts a join gold.fact_transaction_enriched f using (transaction_id)"
        " where f.transaction_date between ? and ? order by a.score limit 1",
        [start, end],
    )[0]
    (account,) = query(
        small_app, "select account_id from gold.fact_transaction_enriched where transaction_id = ?", [alert]
    )[0]
    at = open_page("risk", transaction=alert)
    assert not problems(at), problems(at)
    assert at.selectbox(key="risk_alert").value == alert
    assert f"**{alert}**" in texts(at)
    assert any(f"Account {account}" in t for t in chart_titles(at))
    table = at.dataframe[0].value
    assert set(table["history"]) >= {f"?transaction={alert}"}


@pytest.mark.integration
@pytest.mark.slow
def test_model_page_reads_the_registry(small_app: Settings) -> None:
    at = open_page("model")
    versions = at.dataframe[0].value
    assert sorted(versions["version"]) == ["1", "2"]
    assert (versions["aliases"] == "champion").sum() == 1
    titles = chart_titles(at)
    assert any("champion vs challenger" in t for t in titles)
    assert "ROC (matured labels)" in titles
    assert any("Score distribution" in t for t in titles)


@pytest.mark.integration
@pytest.mark.slow
def test_data_quality_shows_rejects_and_reconciliation(small_app: Settings) -> None:
    at = open_page("quality")
    partial = {r[0] for r in query(small_app, "select file_name from ops.ingested_files where status = 'partial'")}
    assert partial, "the generator plants a truncated file; ingest must have recorded it as partial"
    shown = [df.value for df in at.dataframe if "detail" in df.value.columns]
    assert shown and set(shown[0]["file_name"]) == partial
    assert all("truncated JSON array" in d for d in shown[0]["detail"])
    assert any("reconcile" in s.value for s in at.success)
    assert {m.label for m in at.metric} >= {"postgres", "stream", "fx"}


@pytest.mark.integration
def test_data_quality_shows_partial_files_and_rejected_lines(tmp_path, use_state) -> None:
    """Stream ingest only (no dbt): rejected, partial and rejected-line sections show what ops recorded."""
    import json

    from bankpipe.ingest import stream

    settings = use_state(tmp_path / "state")
    landing = settings.transactions_landing
    landing.mkdir(parents=True)
    rec = {"id": "TRX-000001", "date": "2025-12-24", "timestamp": "10:00:00", "account_id": "ACC-00001"}
    (landing / "lines_[red]x.jsonl").write_text(json.dumps(rec) + "\n{broken\n" + json.dumps(rec | {"id": "T2"}) + "\n")
    whole = json.dumps([rec, rec | {"id": "T3"}])
    (landing / "cut.json").write_text(whole[: len(whole) - 30])
    (landing / "empty.json").write_text("")
    for f in landing.iterdir():  # complete since long ago: no settle wait
        os.utime(f, (1, 1))
    result = stream.run(settings)
    assert result.partial and result.rejected_lines and result.rejected
    at = open_page("quality")
    assert not problems(at), problems(at)
    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    partial = next(v for k, v in frames.items() if "detail" in k)
    assert list(partial["file_name"]) == ["cut.json"]
    lines = next(v for k, v in frames.items() if "line_number" in k)
    assert list(zip(lines["file_name"], lines["line_number"], strict=True)) == [("lines_[red]x.jsonl", 2)]
    assert "column" in lines["reason"][0]
    rejected = next(v for k, v in frames.items() if "quarantine_path" in k)
    assert list(rejected["reason"]) == ["empty file"]
    assert any("1 JSON Lines line(s) rejected" in w.value for w in at.warning)
