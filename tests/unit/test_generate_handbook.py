"""The handbook profile: determinism, seed formats through bankpipe's own ingest, the three scenarios, the protocol."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bankpipe.cli import app
from bankpipe.generate import handbook
from bankpipe.generate.handbook import CARD, LARGE, TERMINAL, HandbookConfig, simulate
from bankpipe.generate.transactions import DAY
from bankpipe.settings import Settings, get_settings
from bankpipe.source.load import FILES, _check_header

SMALL = {"customers": 200, "terminals": 400, "days": 45, "seed": 3}
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_handbook.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_handbook", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_handbook"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    cfg = HandbookConfig(**SMALL, out=tmp_path_factory.mktemp("hb"), records_per_file=500)
    return cfg, handbook.generate(cfg)


@pytest.fixture(scope="module")
def sim():
    return simulate(HandbookConfig(**SMALL))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_data(run, tmp_path):
    cfg, _ = run
    again = cfg.with_(out=tmp_path / "again")
    handbook.generate(again)
    first = {k: v for k, v in _files(cfg.out).items() if not k.endswith(".parquet")}
    assert first == {k: v for k, v in _files(again.out).items() if not k.endswith(".parquet")}
    assert pq.read_table(cfg.truth_dir / "transactions.parquet").equals(
        pq.read_table(again.truth_dir / "transactions.parquet")
    )
    other = simulate(HandbookConfig(**{**SMALL, "seed": 4}))
    assert not np.array_equal(other.amount_cents[:100], simulate(HandbookConfig(**SMALL)).amount_cents[:100])


def test_profiles_follow_the_handbook(sim):
    assert sim.cust_xy.min() >= 0 and sim.cust_xy.max() <= 100 and sim.term_xy.max() <= 100
    assert sim.mean_amount.min() >= 5 and sim.mean_amount.max() <= 100
    assert np.allclose(sim.std_amount, sim.mean_amount / 2)
    assert sim.mean_nb_tx_per_day.min() >= 0 and sim.mean_nb_tx_per_day.max() <= 4
    # Each transaction's terminal lies within the radius of its customer; times stay inside the day.
    d = np.linalg.norm(sim.cust_xy[sim.customer] - sim.term_xy[sim.terminal], axis=1)
    assert d.max() < 5.0
    secs = sim.ts % DAY
    assert secs.min() > 0 and np.all(np.diff(sim.ts) >= 0)
    assert sim.amount_cents.min() >= 0


def test_every_amount_over_220_is_fraud(sim):
    over = sim.amount_cents > 22_000
    assert over.any()
    assert sim.is_fraud[over].all()
    assert (sim.amount_cents[sim.scenario == LARGE] > 22_000).all()


def test_compromised_terminals_make_28_days_of_fraud(sim):
    day = sim.day
    explained = np.zeros(len(sim.ts), bool)
    for d, terminals in sim.compromised_terminals:
        rows = np.isin(sim.terminal, terminals) & (day >= d) & (day < d + 28)
        assert sim.is_fraud[rows].all()  # scenario 3 may relabel some, but all stay fraud
        explained |= rows
    assert len(sim.compromised_terminals) == int(day.max())  # every day but the last
    assert all(len(t) == 2 for _, t in sim.compromised_terminals)
    assert (sim.scenario == TERMINAL).any()
    assert explained[sim.scenario == TERMINAL].all()


def test_compromised_cards_have_a_third_of_14_days_inflated_five_times(sim):
    base = simulate(HandbookConfig(**SMALL, card_fraud_share=0.0))  # the same draws without scenario 3
    card = sim.scenario == CARD
    assert card.any()
    assert np.array_equal(sim.amount_cents[~card], base.amount_cents[~card])
    ratio = sim.amount_cents[card] / np.maximum(base.amount_cents[card], 1)
    picked = base.amount_cents[card] > 0
    assert np.all(np.isin(np.round(ratio[picked], 6), [5.0, 25.0, 125.0]))
    explained = np.zeros(len(sim.ts), bool)
    for d, customers in sim.compromised_cards:
        rows = np.isin(sim.customer, customers) & (sim.day >= d) & (sim.day < d + 14)
        explained |= rows
        assert (sim.scenario[rows] == CARD).sum() >= int(rows.sum() / 3)  # scenario 3 writes last
    assert explained[card].all()


def test_seed_formats_and_labels_known_seven_days_later(run):
    cfg, summary = run
    for spec in FILES:
        if spec.kind == "delimited":
            _check_header(cfg.batch_dir / spec.name, spec)  # what the source loader checks first
    accounts = json.loads((cfg.batch_dir / "account.json").read_text())
    assert len(accounts) == cfg.customers + cfg.terminals
    holders = {a["id"] for a in accounts[: cfg.customers]}
    merchants = {a["id"] for a in accounts[cfg.customers :]}
    assert {a["tipe_akun"] for a in accounts[: cfg.customers]} == {"Savings"}
    records = [r for p in sorted(cfg.stream_dir.glob("transaction_*.json")) for r in json.loads(p.read_text())]
    assert len(records) == summary.transactions
    assert {r["account_id"] for r in records} <= holders and {r["akun_tujuan"] for r in records} <= merchants
    assert {(r["tipe_transaksi"], r["status"], r["channel"], r["mata_uang"]) for r in records} == {
        ("Payment", "Success", "edc", "IDR")
    }
    truth = pq.read_table(cfg.truth_dir / "transactions.parquet").to_pandas()
    # IDR = handbook units x 15,000, exactly.
    by_id = {r["id"]: r["jumlah_transaksi"] for r in records[:500]}
    sample = truth[truth["transaction_id"].isin(by_id)]
    assert np.allclose(sample["transaction_id"].map(by_id), sample["amount_units"] * 15_000)
    with (cfg.batch_dir / "fraud_case.csv").open() as fh:
        cases = list(csv.DictReader(fh))
    end = datetime.combine(cfg.start_date, datetime.min.time()) + timedelta(days=cfg.days)
    ts = dict(zip(truth["transaction_id"], truth["ts"], strict=True))
    expected = set(truth.loc[truth["is_fraud"] & (truth["ts"] + timedelta(days=7) < end), "transaction_id"])
    assert {c["transaction_id"] for c in cases} == expected
    for c in cases:
        reported = datetime.fromisoformat(c["reported_at"]).replace(tzinfo=None)
        assert c["confirmed_fraud"] == "true" and reported - ts[c["transaction_id"]] == timedelta(days=7)
    assert set(truth["scenario"].astype(str)) == {"none", "large_amount", "compromised_terminal", "compromised_card"}


def test_stream_files_load_through_bankpipes_stream_ingest(run, tmp_path):
    from bankpipe.ingest import stream
    from bankpipe.warehouse import connect

    cfg, summary = run
    settings = Settings(state_dir=tmp_path / "state", stream_settle_s=0)
    shutil.copytree(cfg.stream_dir, settings.transactions_landing)
    result = stream.run(settings)
    assert not result.rejected and not result.partial and not result.rejected_lines
    assert result.rows == summary.transactions
    with connect(settings, read_only=True) as wh:
        assert wh.fetchone("select count(distinct id) from bronze.raw_transactions")[0] == summary.transactions


def test_batch_files_load_into_the_source_and_through_bankpipes_batch_ingest(run, settings):
    from bankpipe.ingest import postgres
    from bankpipe.source.db import connect
    from bankpipe.source.load import load_files
    from bankpipe.warehouse import connect as warehouse

    cfg, summary = run
    with connect(settings, use="write") as conn:
        loaded = {r.table: r.rows for r in load_files(conn, cfg.batch_dir)}
    assert loaded["customer"] == loaded["account"] == cfg.customers + cfg.terminals
    assert loaded["fraud_case"] == summary.fraud_cases
    postgres.run(settings, "full")
    with warehouse(settings, read_only=True) as wh:
        assert wh.fetchone("select count(distinct id) from bronze.raw_accounts")[0] == cfg.customers + cfg.terminals
        assert wh.fetchone("select count(*) from bronze.raw_fraud_cases")[0] == summary.fraud_cases
    # The source rows carry the simulation's timeline (customers exist before the period), not the load time.
    with connect(settings) as conn:
        latest = conn.execute("select max(created_at) from customer").fetchone()[0]
    assert latest.date() < cfg.start_date


def test_cli_profile_handbook_and_options_that_do_not_apply(tmp_path, monkeypatch):
    monkeypatch.setenv("BANKPIPE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    runner = CliRunner()
    out = tmp_path / "hb"
    ok = runner.invoke(
        app,
        [
            "generate",
            "--profile",
            "handbook",
            "--customers",
            "30",
            "--terminals",
            "60",
            "--days",
            "10",
            "--out",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    summary = json.loads((out / "ground_truth" / "summary.json").read_text())
    assert summary["settings"]["start_date"] == "2018-04-01" and summary["settings"]["radius"] == 5.0
    refused = runner.invoke(app, ["generate", "--profile", "handbook", "--transactions", "9", "--out", str(out)])
    assert refused.exit_code == 1 and "--transactions" in refused.output
    refused = runner.invoke(app, ["generate", "--terminals", "9", "--out", str(out)])
    assert refused.exit_code == 1 and "--terminals" in refused.output
    get_settings.cache_clear()


def test_protocol_drops_known_compromised_cards_from_test_days():
    bench = _bench()
    start = date(2018, 7, 25)
    t0 = pd.Timestamp(start)
    rows = []
    # Card 1: fraud in the training week -> never in the test week. Card 2: fraud on the third delay
    # day -> known from the fourth test day on. Card 3: clean, every day.
    for day in range(21):
        for card in (1, 2, 3):
            fraud = int((card == 1 and day == 2) or (card == 2 and day == 9))
            rows.append(
                (f"TRX-{day:03d}{card}", t0 + pd.Timedelta(days=day, hours=12), card, 1, 10.0, fraud, 115 + day)
            )
    df = pd.DataFrame(
        rows,
        columns=[
            "TRANSACTION_ID",
            "TX_DATETIME",
            "CUSTOMER_ID",
            "TERMINAL_ID",
            "TX_AMOUNT",
            "TX_FRAUD",
            "TX_TIME_DAYS",
        ],
    )
    train, test = bench.get_train_test_set(df, start)
    assert len(train) == 21 and train["TX_TIME_DAYS"].between(115, 121).all()
    assert set(test["TX_TIME_DAYS"]) == set(range(129, 136))
    assert 1 not in set(test["CUSTOMER_ID"])
    assert sorted(test.loc[test["CUSTOMER_ID"] == 2, "TX_TIME_DAYS"]) == [129, 130, 131]
    assert len(test[test["CUSTOMER_ID"] == 3]) == 7


def test_handbook_card_precision_removes_cards_found_on_earlier_days():
    bench = _bench()
    # Day 0: cards a (fraud) and b ranked; k=1 -> a found. Day 1: a again ranked first, but removed.
    day = np.array([0, 0, 1, 1])
    card = np.array(["a", "b", "a", "b"])
    score = np.array([0.9, 0.1, 0.9, 0.5])
    y = np.array([1, 0, 1, 1])
    assert bench.card_precision_top_k(day, card, score, y, k=1) == pytest.approx(1.0)  # day 1 takes b
    y2 = np.array([1, 0, 1, 0])
    assert bench.card_precision_top_k(day, card, score, y2, k=1) == pytest.approx(0.5)
    assert bench.card_precision_top_k(day, card, score, y2, k=2) == pytest.approx(0.25)  # k divides always
