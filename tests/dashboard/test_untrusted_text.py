"""Values from records and file names are shown as text: never as markdown, links or rich markup.

A copy of the small real warehouse gets hostile values where records and files put them (a transaction's id,
channel and counterparty, a customer's name, a rejected file's name and reason, a run-log error, a
reconciliation message); every page is rendered with AppTest and `bankpipe status` with CliRunner.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.dashboard import ui
from bankpipe.settings import Settings
from bankpipe.warehouse import connect
from tests.dashboard.apptest import PAGES, charts, open_page, problems
from tests.dashboard.warehouse import Built

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LINK = "[click](http://evil.example)"
HOSTILE = f"{LINK} **bold** <b>x</b> [red]x[/red] www.evil.example :red[y] $x$"
HOSTILE_ID = "TRX-**bold**<b>x</b>[red]x[/red]"
FILE_NAME = "transaction_[red]x[/red][click](http://evil.example).json"
# Streamlit's markdown: CommonMark with raw HTML allowed here, the worst case (Streamlit itself drops it).
MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("strikethrough")
MARKDOWN_KINDS = ("markdown", "caption", "info", "success", "warning", "error", "title", "header", "subheader")


@pytest.fixture(scope="module")
def hostile_state(small_warehouse: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small warehouse copied, with hostile text in the places records and file names reach."""
    state = tmp_path_factory.mktemp("hostile") / "state"
    state.mkdir()
    src = small_warehouse.settings.state
    for name in ("warehouse.duckdb", "mlflow.db"):
        if (src / name).exists():
            shutil.copy2(src / name, state / name)
    settings = Settings(state_dir=state)
    with connect(settings) as wh:
        (alert,) = wh.fetchone(
            "select a.transaction_id from gold.fraud_alerts a join gold.fact_transaction_enriched f"
            " using (transaction_id) order by f.transaction_date desc, a.score desc limit 1"
        )
        for table in ("gold.fact_transaction_enriched", "gold.fraud_alerts", "gold.ml_transaction_scores"):
            wh.execute(f"update {table} set transaction_id = ? where transaction_id = ?", [HOSTILE_ID, alert])
        wh.execute(
            "update gold.fact_transaction_enriched set channel = ?, counterparty_account_id = ?"
            " where transaction_id = ?",
            [HOSTILE, HOSTILE, HOSTILE_ID],
        )
        wh.execute("update gold.dim_customers set full_name_masked = ?", [HOSTILE])
        wh.execute(
            "insert into ops.rejected_files"
            " (file_name, sha256, size_bytes, reason, quarantine_path, batch_id, rejected_at)"
            " values (?, 'sha', 1, ?, null, 'hostile', now())",
            [FILE_NAME, HOSTILE],
        )
        wh.execute(
            "insert into ops.run_log (run_id, step, started_at, ended_at, status, error)"
            " values ('hostile', 'ingest_stream', now(), now(), 'failed', ?)",
            [HOSTILE],
        )
        wh.execute("update audit.reconciliation_transactions set is_balanced = false, failure_message = ?", [HOSTILE])
    return state


@pytest.fixture
def hostile_app(hostile_state: Path, use_state: Any) -> Iterator[Settings]:
    yield use_state(hostile_state)


def markdown_sources(at: Any) -> list[str]:
    """The markdown source of every element Streamlit renders as markdown (main area and sidebar)."""
    return [str(el.value) for kind in MARKDOWN_KINDS for el in getattr(at, kind)]


def visible(source: str) -> tuple[str, str]:
    """(rendered HTML, the text a reader sees) for one markdown source."""
    rendered = MARKDOWN.render(source)
    return rendered, html.unescape(re.sub(r"<[^>]+>", "", rendered))


def assert_literal(at: Any) -> str:
    """No markdown element renders a link, bold, HTML or a directive from the data; return what is seen."""
    seen = []
    for source in markdown_sources(at):
        rendered, text = visible(source)
        assert "evil.example" not in "".join(re.findall(r'href="[^"]*"', rendered)), source
        assert "<strong>bold</strong>" not in rendered and "<b>x</b>" not in rendered, source
        # GFM would autolink these and Streamlit would read `:red[…]` as colour: escaped in the source.
        assert "http://evil" not in source and "www.evil" not in source and ":red[" not in source, source
        seen.append(text)
    return "\n".join(seen)


def assert_charts_literal(at: Any) -> str:
    """No Plotly figure carries a data value as Plotly's pseudo-HTML (tags, links); return the figures' JSON."""
    spec = json.dumps(charts(at))
    assert "<b>x</b>" not in spec and "<a " not in spec
    return spec


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_hostile_values_as_text(hostile_app: Settings, page: str) -> None:
    at = open_page(page)
    assert not problems(at) or page == "quality", problems(at)
    assert_literal(at)
    assert_charts_literal(at)


def test_risk_history_line_shows_the_values_literally(hostile_app: Settings) -> None:
    at = open_page("risk", transaction=HOSTILE_ID)
    assert not [str(e.value) for e in at.exception]
    assert at.selectbox(key="risk_alert").value == HOSTILE_ID
    seen = assert_literal(at)
    # The reader sees exactly what the record holds: the id, the channel and the counterparty.
    assert HOSTILE_ID in seen
    assert f"via {HOSTILE}" in seen and f"to {HOSTILE}" in seen
    # In the history chart (hover data, the title) the same values are entity-escaped: drawn, not obeyed.
    assert "&lt;b&gt;x&lt;/b&gt;" in assert_charts_literal(at)
    # The alert's history link is URL-encoded: it opens this id's history and nothing else.
    table = next(df.value for df in at.dataframe if "history" in df.value.columns)
    links = [h for h in table["history"] if "transaction=" in h and "bold" in h]
    assert links and all(re.fullmatch(r"\?transaction=[A-Za-z0-9%._~+-]+", h) for h in links), links


def test_an_unknown_id_from_the_url_is_text(hostile_app: Settings) -> None:
    at = open_page("risk", transaction=LINK)
    seen = assert_literal(at)
    assert f"Transaction {LINK} is not in" in seen


def test_quality_page_keeps_file_names_errors_and_messages_literal(hostile_app: Settings) -> None:
    at = open_page("quality")
    seen = assert_literal(at)
    # The reconciliation message is the one markdown box quoting data: shown as it is.
    assert HOSTILE in seen
    frames = [df.value for df in at.dataframe]
    cells = {str(v) for df in frames for col in df.columns for v in df[col].tolist()}
    assert FILE_NAME in cells and HOSTILE in cells  # dataframes show cells as plain text


def test_status_prints_markup_literally(hostile_app: Settings) -> None:
    result = CliRunner().invoke(app, ["status"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert FILE_NAME in shown
    assert "[red]x[/red]" in shown and LINK in shown  # the run-log error, as logged


def test_plotly_texts_are_entity_escaped() -> None:
    df = pd.DataFrame({"day": ["d1", "d2"], "n": [1, 2], "channel": [HOSTILE, "mobile"]})
    fig = ui.literal_text(px.bar(df, x="day", y="n", color="channel", title=f"Account {HOSTILE_ID}"))
    spec = fig.to_json()
    assert "<b>x</b>" not in spec
    names = [t.name for t in fig.data]
    assert HOSTILE.replace("<", "&lt;").replace(">", "&gt;") in names and "mobile" in names
    assert fig.layout.title.text == "Account TRX-**bold**&lt;b&gt;x&lt;/b&gt;[red]x[/red]"


def test_md_escape_keeps_plain_ids_and_escapes_markup() -> None:
    assert ui.md_escape("TRX-000123") == "TRX-000123"
    _, text = visible(ui.md_escape(HOSTILE + "\n# heading"))
    assert text.strip() == HOSTILE + " # heading"
