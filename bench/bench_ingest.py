"""Ingest benchmark: bankpipe's bronze loaders against the raw engine and against naive pandas.

    python bench/bench_ingest.py [--transactions 1000000] [--files 100] [--accounts 1000000]

Every variant runs in its own child process (peak RSS is the child's own); the ratios compare
variants measured in the same run, since this machine is shared and noisy. Needs PostgreSQL at
BANKPIPE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres) for the batch part.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ADMIN_URL = os.environ.get("BANKPIPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STREAM_COLUMNS = {
    "id": "VARCHAR",
    "date": "VARCHAR",
    "timestamp": "VARCHAR",
    "account_id": "VARCHAR",
    "jumlah_transaksi": "VARCHAR",
    "tipe_transaksi": "VARCHAR",
    "akun_tujuan": "VARCHAR",
    "status": "VARCHAR",
}
TEMPLATE = (
    '    {{\n        "id": "TRX-{i:07d}",\n        "date": "2025-12-{d:02d}",\n'
    '        "timestamp": "{h:02d}:{m:02d}:00",\n'
    '        "account_id": "ACC-{a:06d}",\n        "jumlah_transaksi": {amt:.2f},\n        "tipe_transaksi": "{t}",\n'
    '        "akun_tujuan": "ACC-{b:06d}",\n        "status": "{s}"\n    }}'
)


def make_stream_files(folder: Path, total: int, files: int) -> None:
    rng = np.random.default_rng(1)
    per = total // files
    types = np.array(["Transfer", "Payment", "Withdrawal", "Deposit"])
    statuses = np.array(["Success", "Pending", "Failed"])
    for f in range(files):
        ids = np.arange(f * per + 1, (f + 1) * per + 1)
        amt = rng.lognormal(13, 1.2, per)
        t, s = types[rng.integers(0, 4, per)], statuses[rng.integers(0, 3, per)]
        a, b = rng.integers(1, 300_000, per), rng.integers(1, 300_000, per)
        d, h, m = rng.integers(1, 29, per), rng.integers(0, 24, per), rng.integers(0, 60, per)
        body = ",\n".join(
            TEMPLATE.format(i=ids[k], d=d[k], h=h[k], m=m[k], a=a[k], amt=amt[k], t=t[k], b=b[k], s=s[k])
            for k in range(per)
        )
        (folder / f"transaction_20251201_{f:06d}.json").write_text("[\n" + body + "\n]")


def fill_postgres(url: str, accounts: int) -> None:
    import psycopg

    from bankpipe.source.schema import create_schema

    with psycopg.connect(url) as conn:
        create_schema(conn)
        conn.execute(
            "insert into account select 'ACC-' || lpad(i::text, 8, '0'), 'CUST-' || lpad((i / 2)::text, 7, '0'),"
            " (array['Savings','Checking','Deposit','Loan'])[1 + i %% 4], (random() * 1e8)::numeric(18,2)"
            " from generate_series(1, %s) i",
            (accounts,),
        )


# --- variants (run in a child process) -------------------------------------------------------------


def v_stream_bankpipe(work: Path) -> int:
    from bankpipe.ingest import stream
    from bankpipe.settings import Settings

    settings = Settings(state_dir=work / "state", landing_dir=work / "landing")
    return stream.run(settings).rows


def v_stream_duckdb_raw(work: Path) -> int:
    import duckdb

    con = duckdb.connect(str(work / "raw.duckdb"))
    con.execute(
        "create table t as select * from read_json(?, format = 'array', columns = ?)",
        [str(work / "landing" / "transactions" / "*.json"), STREAM_COLUMNS],
    )
    return con.execute("select count(*) from t").fetchone()[0]


def v_stream_pandas(work: Path) -> int:
    import duckdb
    import pandas as pd

    frames = []
    for path in sorted((work / "landing" / "transactions").glob("*.json")):
        with path.open() as fh:
            frames.append(pd.DataFrame(json.load(fh)))
    df = pd.concat(frames, ignore_index=True)
    con = duckdb.connect(str(work / "pandas.duckdb"))
    con.register("df", df)
    con.execute("create table t as select * from df")
    return con.execute("select count(*) from t").fetchone()[0]


def v_batch_bankpipe(work: Path) -> int:
    from bankpipe.ingest import postgres
    from bankpipe.settings import Settings

    settings = Settings(state_dir=work / "state-batch", source_url=os.environ["BENCH_PG_URL"])
    result = postgres.run(settings, "full", tables=("account",))
    return result.tables[0].extracted


def v_batch_copy_raw(work: Path) -> int:
    import psycopg

    n = 0
    with (
        psycopg.connect(os.environ["BENCH_PG_URL"]) as conn,
        conn.cursor().copy(
            "copy (select id, customer_id, tipe_akun, saldo::text, created_at, updated_at from account)"
            " to stdout (format csv)"
        ) as cp,
    ):
        for chunk in cp:
            n += bytes(chunk).count(b"\n")
    return n


def v_batch_pandas(work: Path) -> int:
    import duckdb
    import pandas as pd
    import sqlalchemy

    url = os.environ["BENCH_PG_URL"].replace("postgresql://", "postgresql+psycopg://")
    df = pd.read_sql("select * from account", sqlalchemy.create_engine(url))
    con = duckdb.connect(str(work / "pandas-batch.duckdb"))
    con.register("df", df)
    con.execute("create table t as select * from df")
    return con.execute("select count(*) from t").fetchone()[0]


VARIANTS = {name[2:]: fn for name, fn in globals().items() if name.startswith("v_")}


def child(variant: str, work: Path) -> None:
    t0 = time.perf_counter()
    rows = VARIANTS[variant](work)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"variant": variant, "rows": rows, "seconds": seconds, "rss_mb": rss_mb}))


def measure(variant: str, work: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--work", str(work)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transactions", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--child")
    ap.add_argument("--work", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.work)
        return

    import psycopg

    work = Path(tempfile.mkdtemp(prefix="bankpipe-bench-"))
    env = dict(os.environ)
    results = []
    try:
        landing = work / "landing" / "transactions"
        landing.mkdir(parents=True)
        t0 = time.perf_counter()
        make_stream_files(landing, args.transactions, args.files)
        print(f"wrote {args.transactions:,} transactions in {args.files} files ({time.perf_counter() - t0:.1f}s)")
        for v in ("stream_duckdb_raw", "stream_bankpipe", "stream_pandas"):
            results.append(measure(v, work, env))
            print(results[-1])

        db = f"bankpipe_bench_{os.getpid()}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"create database {db}")
        env["BENCH_PG_URL"] = ADMIN_URL.rsplit("/", 1)[0] + "/" + db
        try:
            fill_postgres(env["BENCH_PG_URL"], args.accounts)
            for v in ("batch_copy_raw", "batch_bankpipe", "batch_pandas"):
                results.append(measure(v, work, env))
                print(results[-1])
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"drop database if exists {db} with (force)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by = {r["variant"]: r for r in results}
    rate = {k: r["rows"] / r["seconds"] for k, r in by.items()}
    print("\n| variant | rows | seconds | rows/s | peak RSS (MB) |\n|---|---|---|---|---|")
    for k, r in by.items():
        print(f"| {k} | {r['rows']:,} | {r['seconds']:.2f} | {rate[k]:,.0f} | {r['rss_mb']:.0f} |")
    print(
        f"\nstream: bankpipe / raw DuckDB read_json = {rate['stream_bankpipe'] / rate['stream_duckdb_raw']:.2f}x; "
        f"bankpipe / json.load+pandas = {rate['stream_bankpipe'] / rate['stream_pandas']:.2f}x"
    )
    print(
        f"batch: bankpipe / raw COPY = {rate['batch_bankpipe'] / rate['batch_copy_raw']:.2f}x; "
        f"bankpipe / pandas.read_sql = {rate['batch_bankpipe'] / rate['batch_pandas']:.2f}x"
    )


if __name__ == "__main__":
    main()
