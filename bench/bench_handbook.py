"""The Fraud Detection Handbook's baseline protocol on its own simulator, reproduced and run through bankpipe.

    python bench/bench_handbook.py [--customers 5000 --terminals 10000 --days 136] [--bootstrap 200]

1. `generate --profile handbook` (bankpipe.generate.handbook) into a private state dir: stream files
   in the landing folder, batch files loaded into a fresh database on the PostgreSQL at 127.0.0.1:5432
   (or the embedded one when none answers).
2. The handbook's baseline (chapter 3.4), in pandas, on the simulated frame (the ground truth, in
   handbook units): TX_AMOUNT, TX_DURING_WEEKEND, TX_DURING_NIGHT, the customer's NB_TX and
   AVG_AMOUNT over 1/7/30 days, the terminal's NB_TX and RISK over 1/7/30 days before a 7-day delay;
   one training week from 2018-07-25, one delay week, one test week; test days drop the cards already
   known compromised (get_train_test_set); scikit-learn's plain LogisticRegression on standardised
   features.
3. bankpipe on the same data: ingest batch, ingest stream, ingest fx (offline snapshot), transform
   (dbt) — the real stages — then `bankpipe.ml.features.compute()` for the same windows, bankpipe's own
   LR pipeline (`bankpipe.ml.train.make_lr`) on its fraud features, the same training labels (every
   train-week label is known once the delay week is over) and exactly the same test transactions.
4. Metrics: ROC AUC and AP over the test transactions; the handbook's CP@100 (per day a card's score
   is its highest, top 100 cards, cards found compromised on an earlier test day removed, mean over
   days), and bankpipe.ml.metrics.card_precision_at_k (the same without the removal). 95 % intervals
   by a Poisson bootstrap over cards.
5. Which handbook features bankpipe lacks: bankpipe's LR refitted with each handbook feature group
   added to its frame, and bankpipe's pipeline on the handbook features alone.

The published LR figures (AUC 0.871, AP 0.606, CP@100 0.291) are a floor to pass, not a target: the
simulator and the models are not tuned to them. --days defaults to 136, the last day the protocol
reads (the handbook simulates 183; later days change nothing before them but the random draws).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bankpipe.generate import handbook
from bankpipe.settings import Settings

log = logging.getLogger("bench_handbook")

PUBLISHED_LR = {"auc": 0.871, "ap": 0.606, "cp100": 0.291}
TRAIN_START = date(2018, 7, 25)
DELTA_TRAIN = DELTA_DELAY = DELTA_TEST = 7
WINDOWS = (1, 7, 30)
DELAY = 7
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

CUSTOMER_FEATURES = [f"CUSTOMER_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "AVG_AMOUNT")]
TERMINAL_FEATURES = [f"TERMINAL_ID_{k}_{w}DAY_WINDOW" for w in WINDOWS for k in ("NB_TX", "RISK")]
HANDBOOK_FEATURES = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT", *CUSTOMER_FEATURES, *TERMINAL_FEATURES]


# --- the handbook's side -------------------------------------------------------------------------


def load_frame(truth_dir: Path) -> pd.DataFrame:
    """The simulated transactions in the handbook's column names (amounts in handbook units)."""
    t = pq.read_table(
        truth_dir / "transactions.parquet",
        columns=["transaction_id", "ts", "customer_index", "terminal_index", "amount_units", "is_fraud", "scenario"],
    ).to_pandas()
    df = pd.DataFrame(
        {
            "TRANSACTION_ID": t["transaction_id"].astype(str),
            "TX_DATETIME": pd.to_datetime(t["ts"]),
            "CUSTOMER_ID": t["customer_index"].to_numpy(),
            "TERMINAL_ID": t["terminal_index"].to_numpy(),
            "TX_AMOUNT": t["amount_units"].to_numpy(),
            "TX_FRAUD": t["is_fraud"].astype(int).to_numpy(),
            "TX_FRAUD_SCENARIO": t["scenario"].astype(str).to_numpy(),
        }
    )
    start = df["TX_DATETIME"].min().normalize()
    df["TX_TIME_DAYS"] = ((df["TX_DATETIME"] - start) // pd.Timedelta(days=1)).astype(int)
    return df


def _window_bounds(group: np.ndarray, seconds: np.ndarray, span_s: int) -> np.ndarray:
    """For rows sorted by (group, time): the first row of the same group in (t - span, t] (pandas' '{n}d')."""
    offset = seconds - seconds.min() if len(seconds) else seconds
    key = group.astype(np.int64) * int(offset.max() + span_s + 1 if len(seconds) else 1) + offset
    return np.searchsorted(key, key - span_s, side="right")


def _rolling(group: np.ndarray, seconds: np.ndarray, values: np.ndarray, span_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum of `values` over (t - span, t] within the group, current row included."""
    lo = _window_bounds(group, seconds, span_s)
    idx = np.arange(len(group))
    csum = np.r_[0.0, np.cumsum(values)]
    return (idx - lo + 1).astype(float), csum[idx + 1] - csum[lo]


def handbook_features(df: pd.DataFrame) -> pd.DataFrame:
    """The handbook's feature transformation (chapter 3.3), vectorised; same values as its rolling windows."""
    out = df.copy()
    out["TX_DURING_WEEKEND"] = (out["TX_DATETIME"].dt.day_of_week >= 5).astype(int)
    out["TX_DURING_NIGHT"] = (out["TX_DATETIME"].dt.hour <= 6).astype(int)
    seconds = out["TX_DATETIME"].to_numpy().astype("datetime64[s]").astype(np.int64)

    order = np.lexsort((np.arange(len(out)), seconds, out["CUSTOMER_ID"].to_numpy()))
    g, s, amount = out["CUSTOMER_ID"].to_numpy()[order], seconds[order], out["TX_AMOUNT"].to_numpy()[order]
    for w in WINDOWS:
        n, total = _rolling(g, s, amount, w * 86_400)
        nb = np.empty(len(out))
        avg = np.empty(len(out))
        nb[order], avg[order] = n, total / n
        out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = nb
        out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = avg

    order = np.lexsort((np.arange(len(out)), seconds, out["TERMINAL_ID"].to_numpy()))
    g, s, fraud = out["TERMINAL_ID"].to_numpy()[order], seconds[order], out["TX_FRAUD"].to_numpy()[order]
    n_delay, f_delay = _rolling(g, s, fraud.astype(float), DELAY * 86_400)
    for w in WINDOWS:
        n_all, f_all = _rolling(g, s, fraud.astype(float), (DELAY + w) * 86_400)
        n_win, f_win = n_all - n_delay, f_all - f_delay
        with np.errstate(invalid="ignore", divide="ignore"):
            risk = np.where(n_win > 0, f_win / np.where(n_win > 0, n_win, 1), 0.0)
        nb = np.empty(len(out))
        rk = np.empty(len(out))
        nb[order], rk[order] = n_win, risk
        out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = nb
        out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = rk
    return out


def get_train_test_set(df: pd.DataFrame, start: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The handbook's split: a training week, a delay week, a test week without already-known compromised cards."""
    t0 = pd.Timestamp(start)
    train = df[(df["TX_DATETIME"] >= t0) & (df["TX_DATETIME"] < t0 + pd.Timedelta(days=DELTA_TRAIN))]
    known = set(train.loc[train["TX_FRAUD"] == 1, "CUSTOMER_ID"])
    first_day = int(train["TX_TIME_DAYS"].min())
    parts = []
    for day in range(DELTA_TEST):
        test_day = df[df["TX_TIME_DAYS"] == first_day + DELTA_TRAIN + DELTA_DELAY + day]
        # A fraud of the delay week is known (7-day label delay) once that day is a week old.
        seen = df[df["TX_TIME_DAYS"] == first_day + DELTA_TRAIN + day - 1]
        known |= set(seen.loc[seen["TX_FRAUD"] == 1, "CUSTOMER_ID"])
        parts.append(test_day[~test_day["CUSTOMER_ID"].isin(known)])
    return train.sort_values("TRANSACTION_ID"), pd.concat(parts).sort_values("TRANSACTION_ID")


def card_precision_top_k(
    day: np.ndarray, card: np.ndarray, score: np.ndarray, y: np.ndarray, k: int = 100, weight: np.ndarray | None = None
) -> float:
    """The handbook's CP@k: per day a card's max score; top k cards; cards found on a day leave later days.

    `weight` (copies of each card, for the bootstrap) makes a card count that many times.
    """
    frame = pd.DataFrame({"day": day, "card": card, "score": score, "y": y})
    frame["w"] = 1 if weight is None else weight
    frame = frame[frame["w"] > 0]
    per = frame.groupby(["day", "card"], sort=True).agg(score=("score", "max"), y=("y", "max"), w=("w", "first"))
    detected: set[Any] = set()
    values = []
    for _, cards in per.groupby(level=0, sort=True):
        cards = cards.droplevel(0)
        cards = cards[~cards.index.isin(detected)].sort_values("score", ascending=False, kind="stable")
        taken = np.minimum(cards["w"].to_numpy(), np.maximum(k - np.r_[0, np.cumsum(cards["w"].to_numpy())[:-1]], 0))
        top = cards[taken > 0]
        values.append(float((taken[taken > 0] * top["y"].to_numpy()).sum()) / k)
        detected |= set(top.index[top["y"].to_numpy() == 1])
    return float(np.mean(values)) if values else float("nan")


def scores_report(test: pd.DataFrame, score: np.ndarray, boot: int, seed: int) -> dict[str, Any]:
    """AUC, AP, the handbook's CP@100 and bankpipe's, with Poisson-bootstrap 95 % intervals over cards."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from bankpipe.ml import metrics

    y = test["TX_FRAUD"].to_numpy()
    day = test["TX_TIME_DAYS"].to_numpy()
    card = test["CUSTOMER_ID"].to_numpy()
    bp_frame = pd.DataFrame({"transaction_date": day, "account_id": card, "score": score, "y": y})
    out: dict[str, Any] = {
        "auc": float(roc_auc_score(y, score)),
        "ap": float(average_precision_score(y, score)),
        "cp100": card_precision_top_k(day, card, score, y),
        "cp100_bankpipe": metrics.card_precision_at_k(bp_frame, 100),
    }
    if boot:
        rng = np.random.default_rng(seed)
        cards, inverse = np.unique(card, return_inverse=True)
        draws: dict[str, list[float]] = {"auc": [], "ap": [], "cp100": []}
        for _ in range(boot):
            w = rng.poisson(1.0, len(cards))[inverse]
            keep = w > 0
            if y[keep].min() == y[keep].max():
                continue
            draws["auc"].append(roc_auc_score(y[keep], score[keep], sample_weight=w[keep]))
            draws["ap"].append(average_precision_score(y[keep], score[keep], sample_weight=w[keep]))
            draws["cp100"].append(card_precision_top_k(day, card, score, y, weight=w))
        out["ci"] = {m: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for m, v in draws.items()}
    return out


def handbook_lr(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The handbook's baseline model: StandardScaler fitted on train, LogisticRegression(random_state=0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[columns])
    model = LogisticRegression(random_state=0).fit(scaler.transform(train[columns]), train["TX_FRAUD"])
    return model.predict_proba(scaler.transform(test[columns]))[:, 1]


# --- bankpipe's side -----------------------------------------------------------------------------


@contextmanager
def source_database() -> Iterator[str | None]:
    """A fresh database with the source schema on 127.0.0.1 (dropped afterwards), or None for the embedded one."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"bankpipe_bench_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'create database "{name}"')
    params = conninfo_to_dict(ADMIN_URL)
    params["dbname"] = name
    url = make_conninfo(**params)
    try:
        from bankpipe.source.schema import create_schema

        with psycopg.connect(url, autocommit=True) as dba:
            create_schema(dba)  # as a DBA does from `bankpipe source ddl`
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def run_pipeline(settings: Settings, cfg: handbook.HandbookConfig) -> tuple[Any, dict[str, float]]:
    """Generate into the landing folder and the source database, then the real ingest and transform stages."""
    from bankpipe import transform
    from bankpipe.ingest import fx, postgres, stream
    from bankpipe.source.db import connect
    from bankpipe.source.load import load_files

    timings: dict[str, float] = {}
    t = time.perf_counter()
    summary = handbook.generate(cfg)
    with connect(settings, use="write") as conn:
        load_files(conn, cfg.batch_dir)
    timings["generate + load source"] = time.perf_counter() - t
    for name, step in (
        ("ingest batch", lambda: postgres.run(settings, "full")),
        ("ingest stream", lambda: stream.run(settings)),
        (
            "ingest fx",
            lambda: fx.run(settings, cfg.start_date - timedelta(days=10), cfg.start_date + timedelta(days=cfg.days)),
        ),
        ("transform", lambda: transform.run(settings)),
    ):
        t = time.perf_counter()
        step()
        timings[name] = time.perf_counter() - t
        log.info("%s: %.1f s", name, timings[name])
    return summary, timings


def bankpipe_features(settings: Settings, train_start: date) -> pd.DataFrame:
    """bankpipe's fraud features of the train and test weeks (computed in the warehouse, as training does)."""
    from bankpipe.ml import features
    from bankpipe.warehouse import connect

    train_end = train_start + timedelta(days=DELTA_TRAIN)
    test_start = train_end + timedelta(days=DELTA_DELAY)
    test_end = test_start + timedelta(days=DELTA_TEST)
    with connect(settings) as wh:
        return features.compute(
            wh,
            "(transaction_date >= ? and transaction_date < ?) or (transaction_date >= ? and transaction_date < ?)",
            [train_start, train_end, test_start, test_end],
        )


def bankpipe_lr(train: pd.DataFrame, test: pd.DataFrame, numeric: list[str], categorical: list[str]) -> np.ndarray:
    """bankpipe's own LR pipeline (imputation, scaling, one-hot, class-weighted LR) as `ml train` builds it.

    Test rows silver rejected (no feature row) get the lowest score: bankpipe never scored them.
    """
    from bankpipe.ml import train as ml_train

    model = ml_train.make_lr(numeric, categorical, ml_train.TrainConfig())
    model.fit(train[numeric + categorical], train["TX_FRAUD"])
    seen = test["account_id"].notna().to_numpy()
    score = np.zeros(len(test))
    score[seen] = model.predict_proba(test.loc[seen, numeric + categorical])[:, 1]
    return score


def own_evaluation(settings: Settings) -> list[str]:
    """`bankpipe ml train --target fraud` on the same warehouse: its own split, evaluation and report lines."""
    from bankpipe.errors import BankpipeError
    from bankpipe.ml import train as ml_train

    try:
        return ml_train.run(settings, "fraud").headline()
    except BankpipeError as exc:
        return [f"ml train failed: {exc}"]


# --- the run -------------------------------------------------------------------------------------


def _fmt(r: dict[str, Any], key: str) -> str:
    value = r.get(key)
    if value is None:
        return "—"
    ci = r.get("ci", {}).get(key)
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--terminals", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=136, help="simulated days from 2018-04-01 (the protocol reads 136)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates for the intervals (0: none)")
    ap.add_argument("--state", type=Path, help="state dir to use (default: a temporary one, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state dir")
    ap.add_argument("--reuse", action="store_true", help="with --state: use the warehouse an earlier run built there")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--ml-train",
        action="store_true",
        help="also run `bankpipe ml train --target fraud` (bankpipe's own split and evaluation) on the data",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("bankpipe", "dbt", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    test_last = TRAIN_START + timedelta(days=DELTA_TRAIN + DELTA_DELAY + DELTA_TEST - 1)
    start = date(2018, 4, 1)
    if start + timedelta(days=args.days - 1) < test_last:
        raise SystemExit(f"--days must reach {test_last} (at least {(test_last - start).days + 1})")
    state = args.state or Path(tempfile.mkdtemp(prefix="bench_handbook_"))
    t_all = time.perf_counter()
    results: dict[str, Any] = {}
    try:
        with source_database() as url:
            settings = Settings(
                state_dir=state,
                source_url=url,
                mlflow_uri=f"sqlite:///{state / 'mlflow.db'}",
                fx_api_url="http://127.0.0.1:9",  # nothing listens: the offline ECB snapshot prices IDR
                fx_retries=0,
            )
            cfg = handbook.HandbookConfig(
                customers=args.customers,
                terminals=args.terminals,
                days=args.days,
                seed=args.seed,
                out=state / "handbook",
                stream_out=settings.transactions_landing,
            )
            if args.reuse and (cfg.truth_dir / "summary.json").is_file():
                # The warehouse of an earlier run of this state dir (e.g. after a change of the
                # feature code only): no new data, no stages.
                n = json.loads((cfg.truth_dir / "summary.json").read_text())["counts"]["transactions"]
                summary, timings = argparse.Namespace(transactions=n), {}
            else:
                summary, timings = run_pipeline(settings, cfg)
            log.info("generated: %s", summary)

            t = time.perf_counter()
            frame = handbook_features(load_frame(cfg.truth_dir))
            train, test = get_train_test_set(frame, TRAIN_START)
            timings["handbook features"] = time.perf_counter() - t
            log.info(
                "train %d tx (%d fraud), test %d tx (%d fraud)",
                len(train),
                train.TX_FRAUD.sum(),
                len(test),
                test.TX_FRAUD.sum(),
            )
            t = time.perf_counter()
            bp = bankpipe_features(settings, TRAIN_START)
            timings["bankpipe features"] = time.perf_counter() - t
            own = own_evaluation(settings) if args.ml_train else []
            if args.ml_train:
                timings["ml train (own evaluation)"] = time.perf_counter() - t - timings["bankpipe features"]
        from bankpipe.ml import features

        numeric, categorical = features.feature_columns("fraud")
        # The decision point is authorisation: the outcome (status) is never an input.
        categorical = [c for c in categorical if c != "status"]
        numeric = [c for c in numeric if c != "status"]
        keep = ["TRANSACTION_ID", "TX_FRAUD", "TX_TIME_DAYS", "CUSTOMER_ID", *HANDBOOK_FEATURES]
        bp = bp.rename(columns={"transaction_id": "TRANSACTION_ID"})
        bp_train = train[keep].merge(bp, on="TRANSACTION_ID", how="left", validate="one_to_one")
        bp_test = test[keep].merge(bp, on="TRANSACTION_ID", how="left", validate="one_to_one")
        # Silver rejects what a bank must not take (a handbook amount that rounds to 0.00 breaks the
        # IDR minimum): bankpipe never scores such a row. It stays in the test set with the lowest
        # score, so both models answer for the same transactions; training skips it.
        rejected = {
            "train": bp_train.loc[bp_train["account_id"].isna(), "TRANSACTION_ID"].tolist(),
            "test": bp_test.loc[bp_test["account_id"].isna(), "TRANSACTION_ID"].tolist(),
        }
        bp_train = bp_train[bp_train["account_id"].notna()]
        log.info("protocol rows without a bankpipe feature row (rejected by silver): %s", rejected)

        t = time.perf_counter()
        runs = {
            "handbook LR (reproduced, 15 features)": lambda: handbook_lr(train, test, HANDBOOK_FEATURES),
            "bankpipe LR (bankpipe features, make_lr)": lambda: bankpipe_lr(bp_train, bp_test, numeric, categorical),
            "  + handbook terminal NB_TX/RISK": lambda: bankpipe_lr(
                bp_train, bp_test, numeric + TERMINAL_FEATURES, categorical
            ),
            "  + handbook customer NB_TX/AVG_AMOUNT": lambda: bankpipe_lr(
                bp_train, bp_test, numeric + CUSTOMER_FEATURES, categorical
            ),
            "  + all 15 handbook features": lambda: bankpipe_lr(
                bp_train, bp_test, list(dict.fromkeys(numeric + HANDBOOK_FEATURES)), categorical
            ),
            "make_lr on the 15 handbook features only": lambda: bankpipe_lr(bp_train, bp_test, HANDBOOK_FEATURES, []),
        }
        for name, fit in runs.items():
            results[name] = scores_report(test if "handbook LR" in name else bp_test, fit(), args.bootstrap, 7)
            log.info("%s: %s", name, {k: v for k, v in results[name].items() if k != "ci"})
        timings["models + bootstrap"] = time.perf_counter() - t
        ceiling = card_precision_top_k(
            test["TX_TIME_DAYS"].to_numpy(),
            test["CUSTOMER_ID"].to_numpy(),
            test["TX_FRAUD"].to_numpy(),
            test["TX_FRAUD"].to_numpy(),
        )
    finally:
        if args.state is None and not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    timings["total"] = time.perf_counter() - t_all

    print(
        f"\nhandbook protocol: train {TRAIN_START}..+7 d, delay 7 d, test 7 d; {summary.transactions:,} transactions "
        f"({args.customers:,} customers, {args.terminals:,} terminals, {args.days} days, seed {args.seed}); "
        f"train {len(train):,} tx / {int(train.TX_FRAUD.sum())} fraud, test {len(test):,} tx / "
        f"{int(test.TX_FRAUD.sum())} fraud; CP@100 ceiling {ceiling:.3f}; bootstrap {args.bootstrap}; "
        f"rows silver rejected (scored lowest for bankpipe): {len(rejected['test'])} test, "
        f"{len(rejected['train'])} train"
    )
    print("| model | ROC AUC | AP | CP@100 (handbook) | CP@100 (bankpipe.ml.metrics) |")
    print("|---|---|---|---|---|")
    print(f"| handbook's published LR | {PUBLISHED_LR['auc']} | {PUBLISHED_LR['ap']} | {PUBLISHED_LR['cp100']} | — |")
    for name, r in results.items():
        print(f"| {name} | {_fmt(r, 'auc')} | {_fmt(r, 'ap')} | {_fmt(r, 'cp100')} | {_fmt(r, 'cp100_bankpipe')} |")
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if own:
        print("\nbankpipe's own evaluation (`ml train --target fraud`) on the same data:")
        print("\n".join(own))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": vars(args) | {"state": str(args.state), "json": str(args.json)},
                    "transactions": summary.transactions,
                    "ceiling_cp100": ceiling,
                    "published": PUBLISHED_LR,
                    "results": results,
                    "rejected_by_silver": rejected,
                    "ml_train": own,
                    "timings_s": timings,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
