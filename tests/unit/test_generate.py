"""The generator: seed formats, determinism, id widths, planted fraud and defects (exactly where recorded)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bankpipe.generate import DefectConfig, FraudConfig, GenerateConfig, GenerateConfigError, generate
from bankpipe.generate.ids import capacity, id_width, parse_id
from bankpipe.generate.reference import BANKS, CHANNELS, CURRENCIES, cities
from bankpipe.source.schema import COLUMNS

# The seed's formats (shared/seed-dataset), also checked against the sample files when present.
SEED_HEADERS = {
    "location.txt": ("|", ["id", "kota", "provinsi"]),
    "bank_info.txt": ("|", ["bank_id", "nama_bank", "singkatan", "kantor_pusat", "jenis_bank"]),
    "customer.csv": (",", ["id", "nama_depan", "nama_belakang", "email", "segmen", "location_id", "bank_id"]),
}
ACCOUNT_KEYS = ["id", "customer_id", "tipe_akun", "saldo"]
TX_KEYS = ["id", "date", "timestamp", "account_id", "jumlah_transaksi", "tipe_transaksi", "akun_tujuan", "status"]
EXT_KEYS = ["mata_uang", "channel", "location_id"]
FILE_NAME = re.compile(r"^transaction_(\d{8})_(\d{6})\.json$")
DEFECTS = DefectConfig(
    duplicate_records=0.01,
    missing_fields=0.005,
    malformed_values=0.005,
    orphan_accounts=0.01,
    duplicate_files=0.05,
    late_files=0.05,
    truncated_files=2,
)


def small_config(out: Path, **changes: object) -> GenerateConfig:
    base = GenerateConfig(
        customers=300, transactions=20_000, days=31, seed=7, out=out, records_per_file=200, defects=DEFECTS
    )
    return base.with_(**changes)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("gen")
    config = small_config(out)
    return config, generate(config)


def read_delimited(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=delimiter))
    return rows[0], rows[1:]


def stream_records(directory: Path) -> dict[str, list[dict] | None]:
    """Every stream file's records (None for a file that does not parse)."""
    out: dict[str, list[dict] | None] = {}
    for path in sorted(directory.glob("transaction_*.json")):
        try:
            out[path.name] = json.loads(path.read_bytes())
        except ValueError:
            out[path.name] = None
    return out


def truth(run, name: str) -> list[dict]:
    config, _ = run
    return pq.read_table(config.truth_dir / name).to_pylist()


# --- formats ------------------------------------------------------------------------------------


def test_batch_files_have_the_seed_headers_and_parse_like_the_samples(run, seed_dir):
    config, summary = run
    for name, (delimiter, header) in SEED_HEADERS.items():
        got_header, rows = read_delimited(config.batch_dir / name, delimiter)
        seed_header, seed_rows = read_delimited(seed_dir / "batch_source" / name, delimiter)
        assert got_header == header == seed_header, name
        assert all(len(r) == len(header) for r in rows), name
        assert all(len(r) == len(header) for r in seed_rows), name
    accounts = json.loads((config.batch_dir / "account.json").read_bytes())
    seed_accounts = json.loads((seed_dir / "batch_source" / "account.json").read_bytes())
    assert [list(a) for a in accounts] == [ACCOUNT_KEYS] * len(accounts)
    assert list(seed_accounts[0]) == ACCOUNT_KEYS
    header, _ = read_delimited(config.batch_dir / "fraud_case.csv", ",")
    assert header == COLUMNS["fraud_case"] == ["transaction_id", "confirmed_fraud", "reported_at"]
    assert len(accounts) == summary.accounts


@pytest.mark.parametrize("name", ["account.json", "stream"])
def test_json_files_are_byte_for_byte_what_json_dump_indent_4_writes(run, seed_dir, name):
    config, _ = run
    # The seed's own files are json.dump(records, indent=4): no trailing newline.
    sample = (seed_dir / "batch_source" / "account.json").read_text()
    assert json.dumps(json.loads(sample), indent=4) == sample
    paths = [config.batch_dir / name] if name != "stream" else sorted(config.stream_dir.glob("*.json"))
    checked = 0
    for path in paths:
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError:
            continue  # the planted truncated files
        assert json.dumps(data, indent=4) == text, path.name
        checked += 1
    assert checked >= len(paths) - DEFECTS.truncated_files


def test_stream_records_have_the_seed_keys_plus_extensions(run, seed_dir):
    config, _ = run
    for records in stream_records(seed_dir / "stream_source").values():
        assert records is not None and all(list(r) == TX_KEYS for r in records)
    defective = {(d["file"], d["position"]) for d in truth(run, "defects.parquet") if d["defect"] == "missing_field"}
    files = stream_records(config.stream_dir)
    assert files and all(FILE_NAME.match(name) for name in files)
    for name, records in files.items():
        for i, rec in enumerate(records or []):
            if (name, i) not in defective:
                assert list(rec) == TX_KEYS + EXT_KEYS, (name, i)


def test_extensions_off_gives_exactly_seed_shaped_files(tmp_path):
    config = small_config(tmp_path, transactions=2_000, extensions=(), defects=DefectConfig.none())
    generate(config)
    files = stream_records(config.stream_dir)
    assert all(records is not None for records in files.values())
    records = [r for recs in files.values() for r in recs or []]
    assert len(records) == 2_000
    assert all(list(r) == TX_KEYS for r in records)
    # Without the currency field every amount is IDR.
    amounts = pq.read_table(config.truth_dir / "transactions.parquet", columns=["mata_uang"]).column(0).to_pylist()
    assert set(amounts) == {"IDR"}


def test_master_data_is_real_indonesian_reference_data(run):
    config, _ = run
    _, banks = read_delimited(config.batch_dir / "bank_info.txt", "|")
    assert len(banks) == 15 == len(BANKS)
    seed_banks = [
        "BANK-001|Bank Rakyat Indonesia|BRI|Jakarta|BUMN",
        "BANK-003|Bank Central Asia|BCA|Jakarta|Swasta",
        "BANK-010|Bank Mega|Mega|Jakarta|Swasta",
    ]
    lines = {"|".join(b) for b in banks}
    assert set(seed_banks) <= lines
    assert {b[4] for b in banks} == {"BUMN", "Swasta", "Syariah"}
    _, locations = read_delimited(config.batch_dir / "location.txt", "|")
    ref = cities()
    assert len(locations) == len(ref) >= 80
    assert len(set(ref.provinsi)) == 38  # every province, including the 2022 Papua splits
    assert ("Kota Bandung", "Jawa Barat") in {(r[1], r[2]) for r in locations}
    assert np.all((ref.latitude > -11.5) & (ref.latitude < 6.5) & (ref.longitude > 94) & (ref.longitude < 141.5))
    _, customers = read_delimited(config.batch_dir / "customer.csv", ",")
    assert {c[4] for c in customers} == {"Gold", "Silver", "Platinum", "Priority", "Standard"}
    assert len({c[3] for c in customers}) == len(customers)  # unique emails
    accounts = json.loads((config.batch_dir / "account.json").read_bytes())
    per_customer = Counter(a["customer_id"] for a in accounts)
    assert set(per_customer.values()) <= {1, 2, 3} and len(per_customer) == len(customers)
    assert {a["tipe_akun"] for a in accounts} == {"Savings", "Checking", "Deposit", "Loan"}
    median = {t: np.median([a["saldo"] for a in accounts if a["tipe_akun"] == t]) for t in ("Savings", "Deposit")}
    assert median["Deposit"] > 3 * median["Savings"]  # balances by account type


# --- determinism and ids ------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    a = _tree_of(small_config(tmp_path / "a", transactions=5_000))
    b = _tree_of(small_config(tmp_path / "b", transactions=5_000))
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    assert any(k.startswith("ground_truth/") and k.endswith(".parquet") for k in a)
    c = _tree_of(small_config(tmp_path / "c", transactions=5_000, seed=8))
    assert a["batch_source/customer.csv"] != c["batch_source/customer.csv"]


def _tree_of(config: GenerateConfig) -> dict[str, bytes]:
    generate(config)
    return _tree(config.out)


def test_stream_out_puts_stream_files_elsewhere_with_the_same_bytes(tmp_path):
    plain = small_config(tmp_path / "plain", transactions=1_000)
    moved = small_config(tmp_path / "moved", transactions=1_000, stream_out=tmp_path / "landing")
    generate(plain)
    generate(moved)
    assert not (moved.out / "stream_source").exists() or not any((moved.out / "stream_source").iterdir())
    assert _tree(plain.stream_dir) == _tree(tmp_path / "landing")


@pytest.mark.parametrize(
    ("entity", "count", "digits"),
    [
        ("customer", 15, 4),
        ("customer", 1_000, 4),
        ("customer", 1_000_000, 7),
        ("account", 15, 5),
        ("transaction", 60, 6),
    ],
)
def test_id_width_keeps_the_seed_width_and_grows_on_overflow(entity, count, digits):
    assert id_width(entity, capacity(count)) == digits


def test_every_file_uses_one_width_per_entity(tmp_path):
    # 9,500 customers need 5 digits with the run's headroom: wider than the seed's CUST-0001.
    config = small_config(tmp_path, customers=9_500, transactions=3_000)
    summary = generate(config)
    assert summary.id_widths["customer"] == 5
    seen: dict[str, set[int]] = {}

    def note(value: str) -> None:
        prefix, _, width = parse_id(value)
        seen.setdefault(prefix, set()).add(width)

    for _, rows in (read_delimited(config.batch_dir / n, d) for n, (d, _) in SEED_HEADERS.items()):
        for row in rows:
            for value in row:
                if re.match(r"^[A-Z]+-\d+$", value):
                    note(value)
    for a in json.loads((config.batch_dir / "account.json").read_bytes()):
        note(a["id"])
        note(a["customer_id"])
    for _, rows in [read_delimited(config.batch_dir / "fraud_case.csv", ",")]:
        for row in rows:
            note(row[0])
    for records in stream_records(config.stream_dir).values():
        for r in records or []:
            for key in ("id", "account_id", "akun_tujuan", "location_id"):
                if isinstance(r.get(key), str):
                    note(r[key])
    assert seen == {
        "LOC": {summary.id_widths["location"]},
        "BANK": {summary.id_widths["bank"]},
        "CUST": {5},
        "ACC": {summary.id_widths["account"]},
        "TRX": {summary.id_widths["transaction"]},
    }


# --- planted defects ----------------------------------------------------------------------------


def test_record_defect_rates_match_the_settings(run):
    _config, summary = run
    n = summary.transactions
    defects = truth(run, "defects.parquet")
    counts = Counter(d["defect"] for d in defects if d["position"] is not None and d["copy_of"] is None)
    for name, rate in DEFECTS.record_rates().items():
        assert counts[name] == pytest.approx(rate * n, rel=0.02, abs=1), name
        assert summary.defects[name] == counts[name]
    # The same defective records inside duplicate files are listed too, pointing at the original.
    copies = [d for d in defects if d["copy_of"] is not None]
    assert copies and all(d["file"] > d["copy_of"] for d in copies)
    n_files = sum(1 for f in truth(run, "files.parquet") if f["kind"] != "duplicate")
    assert summary.defects["late_file"] == pytest.approx(DEFECTS.late_files * n_files, abs=1)
    assert summary.defects["duplicate_file"] == pytest.approx(DEFECTS.duplicate_files * n_files, abs=1)
    assert summary.defects["truncated_file"] == DEFECTS.truncated_files


def test_every_recorded_defect_is_in_the_files_where_recorded(run):
    config, _ = run
    files = stream_records(config.stream_dir)
    account_ids = {a["id"] for a in json.loads((config.batch_dir / "account.json").read_bytes())}
    defects = truth(run, "defects.parquet")
    by_kind = Counter()
    for d in defects:
        by_kind[d["defect"]] += 1
        name, pos = d["file"], d["position"]
        if d["defect"] == "truncated_file":
            assert files[name] is None
            continue
        if pos is None or files[name] is None:
            continue  # file-level defect, or a record inside a truncated file
        rec = files[name][pos]
        if d["defect"] == "missing_field":
            if d["detail"] == "absent":
                assert d["field"] not in rec
            else:
                assert rec[d["field"]] is None
        elif d["defect"] == "malformed_value":
            value = rec[d["field"]]
            assert json.dumps(value) == d["detail"].split(": ", 1)[1]
        elif d["defect"] == "orphan_account":
            assert rec["account_id"] == d["detail"] and rec["account_id"] not in account_ids
        elif d["defect"] == "duplicate_record":
            source, at = re.match(r"copy of (\S+)\[(\d+)\]", d["detail"]).groups()
            assert files[source] is None or files[source][int(at)] == rec
        if d["defect"] != "missing_field" or d["field"] != "id":
            assert rec.get("id") == d["record_id"]
    assert set(by_kind) == {
        "duplicate_record", "missing_field", "malformed_value", "orphan_account",
        "duplicate_file", "late_file", "truncated_file",
    }  # fmt: skip
    # Malformed values cover every kind in a run of this size.
    kinds = {d["detail"].split(":")[0] for d in defects if d["defect"] == "malformed_value"}
    assert kinds == {"amount_text", "amount_negative", "bad_date", "bad_time", "unknown_status", "unknown_type"}


def test_duplicate_late_and_truncated_files(run):
    config, _ = run
    files = {f["file"]: f for f in truth(run, "files.parquet")}
    on_disk = {p.name for p in config.stream_dir.glob("transaction_*.json")}
    assert set(files) == on_disk
    for f in files.values():
        data = (config.stream_dir / f["file"]).read_bytes()
        assert len(data) == f["bytes"]
        if f["kind"] == "duplicate":
            assert data == (config.stream_dir / f["duplicate_of"]).read_bytes()
            assert f["file"] > f["duplicate_of"]
        if f["kind"] == "late":
            stamp = datetime.strptime(f["file"], "transaction_%Y%m%d_%H%M%S.json")
            assert stamp - f["max_ts"] >= timedelta(hours=2)
        if f["kind"] == "regular":
            # A regular file is named after its newest record (or one second later, to stay unique).
            stamp = datetime.strptime(f["file"], "transaction_%Y%m%d_%H%M%S.json")
            assert timedelta(0) <= stamp - f["max_ts"] < timedelta(hours=1)


# --- transactions, fraud, labels ----------------------------------------------------------------


def test_transactions_are_realistic(run):
    config, summary = run
    tx = pq.read_table(config.truth_dir / "transactions.parquet").to_pandas()
    assert len(tx) == summary.transactions == 20_000
    assert list(tx.transaction_id) == sorted(tx.transaction_id)  # ids follow time
    assert tx.ts.is_monotonic_increasing
    assert set(tx.tipe_transaksi) == {"Transfer", "Payment", "Withdrawal", "Deposit"}
    assert set(tx.status) == {"Success", "Pending", "Failed"}
    assert set(tx.channel) <= set(CHANNELS) and tx.channel.nunique() >= 5
    share = (tx.mata_uang != "IDR").mean()
    assert share == pytest.approx(config.foreign_currency_share, rel=0.1)
    assert set(tx.mata_uang) <= set(CURRENCIES) and tx.mata_uang.nunique() >= 6
    foreign = tx[tx.mata_uang == "USD"]
    assert (foreign.jumlah_transaksi < foreign.amount_idr / 1000).all()  # amounts in the currency itself
    hours = tx.ts.dt.hour.value_counts()
    assert hours.loc[list(range(9, 21))].min() > 3 * hours.loc[[1, 2, 3]].max()  # day vs night
    daily = tx.groupby(tx.ts.dt.date).size()
    sundays = daily[[d for d in daily.index if d.weekday() == 6]].mean()
    assert daily[date(2025, 12, 31)] > 1.3 * sundays  # month-end payday
    # Transfers go to a stable set of counterparties: most pairs recur.
    transfers = tx[(tx.tipe_transaksi == "Transfer") & ~tx.is_fraud]
    assert (~transfers.is_new_counterparty).mean() > 0.8
    # Per-account habits: amounts vary less within an account than across accounts.
    log_amount = np.log(tx.amount_idr)
    assert log_amount.groupby(tx.account_id).std().median() < log_amount.std()


def test_fraud_scenarios_are_planted_at_the_configured_rate(run):
    config, _summary = run
    tx = pq.read_table(config.truth_dir / "transactions.parquet").to_pandas()
    assert tx.is_fraud.mean() == pytest.approx(config.fraud.rate, rel=0.15)
    mix = config.fraud.mix()
    for scenario, share in mix.items():
        assert (tx.fraud_scenario == scenario).sum() == pytest.approx(
            share * len(tx) * config.fraud.rate, rel=0.2, abs=3
        )
    takeover = tx[tx.fraud_scenario == "account_takeover"]
    assert (takeover.tipe_transaksi == "Transfer").all()
    assert takeover.groupby("fraud_incident").size().between(1, 8).all()
    accounts = pq.read_table(config.truth_dir / "accounts.parquet").to_pandas().set_index("account_id")
    large = tx[tx.fraud_scenario == "large_amount"]
    # At least 2x the habit of the day; the habit drifts by at most a few tens of percent a month.
    assert (large.amount_idr >= 1.4 * accounts.loc[large.account_id, "habit_median_idr"].to_numpy()).all()
    testing = tx[tx.fraud_scenario == "card_testing"]
    assert (testing.tipe_transaksi == "Payment").all() and len(testing) > 0
    points = json.loads((config.truth_dir / "summary.json").read_text())["compromised_points"]
    assert points
    for p in points:
        at_point = tx[(tx.location_id == p["location_id"]) & (tx.channel == p["channel"])]
        day = at_point.ts.dt.date.astype(str)
        inside = at_point[(day >= p["first_day"]) & (day <= p["last_day"])]
        outside = at_point[(day < p["first_day"]) | (day > p["last_day"])]
        assert (inside.fraud_scenario == "compromised_point").sum() == p["fraudulent"]
        assert not (outside.fraud_scenario == "compromised_point").any()


def test_fraud_cases_arrive_late_and_only_within_the_period(run):
    config, _ = run
    end = datetime.combine(config.start_date + timedelta(days=config.days), datetime.min.time())
    _header, rows = read_delimited(config.batch_dir / "fraud_case.csv", ",")
    in_file = {r[0]: (r[1], datetime.fromisoformat(r[2]).replace(tzinfo=None)) for r in rows}
    cases = pq.read_table(config.truth_dir / "fraud_cases.parquet").to_pandas()
    tx = pq.read_table(config.truth_dir / "transactions.parquet").to_pandas().set_index("transaction_id")
    assert len(in_file) == len(rows) == cases.in_fraud_case.sum() > 0
    assert (cases.reported_at[~cases.in_fraud_case] >= end).all() and (~cases.in_fraud_case).any()
    for case in cases[cases.in_fraud_case].itertuples():
        confirmed, reported = in_file[case.transaction_id]
        assert confirmed == ("true" if case.confirmed_fraud else "false")
        assert reported == case.reported_at < end
        assert reported > tx.loc[case.transaction_id, "ts"]  # never before the transaction
        assert case.confirmed_fraud == tx.loc[case.transaction_id, "is_fraud"]
    assert (~cases.confirmed_fraud).sum() >= 1  # a few false reports
    delay = (cases.reported_at - tx.loc[cases.transaction_id, "ts"].to_numpy()).dt.total_seconds() / 86400
    assert 0.5 < delay.median() < 15


def test_a_compromised_point_is_reported_while_it_is_still_compromised(run):
    """Each victim reports on its own within days: the bank can see a point while it is active."""
    config, _ = run
    tx = pq.read_table(config.truth_dir / "transactions.parquet").to_pandas()
    points = json.loads((config.truth_dir / "summary.json").read_text())["compromised_points"]
    assert points
    for p in points:
        first, last = date.fromisoformat(p["first_day"]), date.fromisoformat(p["last_day"])
        assert (last - first).days + 1 >= min(14, config.days)
        victims = tx[tx.fraud_incident == p["fraud_incident"]]
        assert (victims.fraud_scenario == "compromised_point").all() and len(victims) == p["fraudulent"]
        reported = victims.reported_at.dropna()
        # One report per victim transaction, each at its own time, not one for the whole incident.
        assert len(reported) == pytest.approx(0.9 * len(victims), rel=0.2, abs=3)
        if len(reported) >= 5:
            assert reported.nunique() > len(reported) // 2
        end_of_window = datetime.combine(last + timedelta(days=1), datetime.min.time())
        if p["fraudulent"] >= 10:
            assert (reported < end_of_window).any(), p
    delay = (tx.reported_at - tx.ts).dt.total_seconds() / 86400
    assert 1 < delay[tx.fraud_scenario == "compromised_point"].median() < 5


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"days": 0}, "days"),
        ({"extensions": ("mata_uang", "colour")}, "colour"),
        ({"fraud": FraudConfig(rate=0.5)}, "fraud rate"),
        ({"defects": DefectConfig(duplicate_records=0.5)}, "duplicate_record"),
    ],
)
def test_bad_settings_fail_with_one_clear_line(tmp_path, changes, message):
    with pytest.raises(GenerateConfigError, match=message) as info:
        small_config(tmp_path, **changes)
    assert "\n" not in str(info.value)


def test_stream_files_setting_spreads_records_over_that_many_files(tmp_path):
    config = small_config(
        tmp_path, transactions=1_000, records_per_file=None, stream_files=7, defects=DefectConfig.none()
    )
    summary = generate(config)
    assert summary.stream_files == 7
    assert GenerateConfig(transactions=10_000_000).resolved_records_per_file() == 20_000
    assert GenerateConfig(transactions=60).resolved_records_per_file() == 20


@pytest.mark.parametrize(("customers", "transactions"), [(1, 0), (1, 300), (2, 300), (15, 60)])
def test_tiny_and_empty_runs_still_write_every_file(tmp_path, customers, transactions):
    config = GenerateConfig(
        customers=customers, accounts_per_customer=1, transactions=transactions, days=2, seed=1, out=tmp_path
    )
    summary = generate(config)
    assert summary.transactions == transactions
    assert {p.name for p in config.batch_dir.iterdir()} == {
        "location.txt", "bank_info.txt", "customer.csv", "account.json", "fraud_case.csv",
    }  # fmt: skip
    records = [r for recs in stream_records(config.stream_dir).values() for r in recs or []]
    assert len({r.get("id") for r in records}) <= transactions
    assert (config.truth_dir / "transactions.parquet").is_file()


def test_every_generated_currency_can_be_priced_offline():
    """The ECB snapshot is the offline FX source: a currency it lacks would leave amount_usd empty."""
    from datetime import date

    from bankpipe.generate.reference import CURRENCIES
    from bankpipe.ingest.fx import EcbSnapshotClient

    snap = EcbSnapshotClient()
    day = snap.last_date()
    quoted = {r.quote for batch in snap.history(date(day.year - 1, 1, 1), day, CURRENCIES) for r in batch.rates}
    assert set(CURRENCIES) - {"USD"} <= quoted, set(CURRENCIES) - {"USD"} - quoted


# --- no scenario is a fixed rule; legitimate look-alikes; drift ---------------------------------


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory):
    """A larger clean run (enough fraud for shares), with everything the checks below join."""
    out = tmp_path_factory.mktemp("wide")
    config = GenerateConfig(
        customers=1_500, transactions=120_000, days=60, seed=5, out=out, defects=DefectConfig.none()
    )
    generate(config)
    tx = pq.read_table(config.truth_dir / "transactions.parquet").to_pandas()
    for column in ("account_id", "akun_tujuan", "location_id", "tipe_transaksi", "status", "fraud_scenario"):
        tx[column] = tx[column].astype(str)
    accounts = pq.read_table(config.truth_dir / "accounts.parquet").to_pandas().set_index("account_id")
    _header, customers = read_delimited(config.batch_dir / "customer.csv", ",")
    home = {c[0]: c[5] for c in customers}
    tx["home"] = tx.account_id.map(accounts.customer_id).map(home)
    tx["habit"] = tx.account_id.map(accounts.habit_median_idr)
    return config, tx, accounts


def test_takeovers_are_not_a_fixed_rule(wide):
    _config, tx, _accounts = wide
    takeover = tx[tx.fraud_scenario == "account_takeover"]
    assert len(takeover) > 100
    night = (takeover.ts.dt.hour < 5).mean()
    assert 0.2 < night < 0.8  # a share in daytime, not always at night
    assert 0.05 < (~takeover.is_new_counterparty).mean() < 0.6  # sometimes a payee the victim had
    assert 0.1 < (takeover.location_id == takeover.home).mean() < 0.7  # sometimes from home
    near = takeover.amount_idr < 5 * takeover.habit
    assert 0.1 < near.mean() < 0.7  # some move amounts near the habit, others drain


def test_large_amounts_are_sometimes_near_the_habit(wide):
    _config, tx, _accounts = wide
    large = tx[tx.fraud_scenario == "large_amount"]
    ratio = large.amount_idr / large.habit
    assert (ratio < 5).mean() > 0.15 and (ratio > 10).mean() > 0.2


def test_compromised_point_victims_amounts_vary(wide):
    _config, tx, _accounts = wide
    victims = tx[tx.fraud_scenario == "compromised_point"]
    ratio = np.log(victims.amount_idr / victims.habit)
    assert ratio.std() > 0.5 and (ratio < 0).any() and (ratio > np.log(3)).any()


def test_every_fraud_rule_has_legitimate_look_alikes(wide):
    _config, tx, _accounts = wide
    legit = tx[~tx.is_fraud]
    pattern = legit.legit_pattern.astype(str)
    assert tx[tx.is_fraud].legit_pattern.isna().all()
    # Travel: days far from home, several transactions per trip.
    travel = legit[pattern == "travel"]
    assert (travel.location_id != travel.home).all() and len(travel) > 100
    assert travel.groupby("account_id").ts.agg(lambda t: t.dt.date.nunique()).max() >= 2
    # One-off big purchases, well above the habit.
    big = legit[pattern == "one_off_large"]
    assert len(big) > 50 and (big.amount_idr >= 2 * big.habit).all()
    # New payees at night.
    night = legit[pattern == "night_new_payee"]
    assert len(night) > 50 and night.is_new_counterparty.all() and (night.ts.dt.hour < 6).all()
    # The rules now flag legitimate rows too: night transfers to new payees are not all fraud.
    rule = (tx.tipe_transaksi == "Transfer") & tx.is_new_counterparty & (tx.ts.dt.hour < 5)
    assert 0.05 < tx[rule].is_fraud.mean() < 0.9


def test_mules_have_legitimate_inflows(wide):
    config, tx, _accounts = wide
    mules = {format_mule(a, tx) for a in json.loads((config.truth_dir / "summary.json").read_text())["mule_accounts"]}
    into = tx[tx.akun_tujuan.isin(mules) & (tx.tipe_transaksi == "Transfer")]
    legit = into[~into.is_fraud]
    assert len(legit) > 10 and into.is_fraud.any()
    assert (legit.legit_pattern.astype(str) == "mule_inflow").mean() > 0.8  # the rest: trips, big buys
    assert legit.akun_tujuan.nunique() >= 0.5 * len(mules)


def format_mule(number: int, tx) -> str:
    width = len(tx.account_id.iloc[0]) - len("ACC-")
    return f"ACC-{number:0{width}d}"


def test_card_testing_starts_part_way_through_the_period(wide):
    config, tx, _accounts = wide
    start = date.fromisoformat(json.loads((config.truth_dir / "summary.json").read_text())["card_testing_from"])
    assert start == config.start_date + timedelta(days=36)  # 60 % of 60 days
    testing = tx[tx.fraud_scenario == "card_testing"]
    assert len(testing) > 50 and (testing.ts.dt.date >= start).all()
    assert not (tx[tx.ts.dt.date < start].fraud_scenario == "card_testing").any()
    # Small tests, then one large payment per burst.
    for _incident, burst in list(testing.groupby("fraud_incident"))[:20]:
        if len(burst) >= 3:
            assert (burst.amount_idr.iloc[:-1] <= 75_000).all() and burst.amount_idr.iloc[-1] > 75_000


def test_balances_follow_the_transactions(wide):
    config, tx, accounts = wide
    saldo = {a["id"]: a["saldo"] for a in json.loads((config.batch_dir / "account.json").read_bytes())}
    # account.json is extracted at the end of the period: the closing balances.
    assert saldo == pytest.approx(accounts.saldo_closing.to_dict(), abs=0.01)
    moved = tx[tx.status != "Failed"]
    out = moved.groupby("account_id").amount_idr.sum() - 2 * moved[moved.tipe_transaksi == "Deposit"].groupby(
        "account_id"
    ).amount_idr.sum().reindex(moved.account_id.unique(), fill_value=0)
    into = moved[moved.tipe_transaksi.isin(["Transfer", "Payment"]) & (moved.akun_tujuan != moved.account_id)]
    net = into.groupby("akun_tujuan").amount_idr.sum().sub(out, fill_value=0).reindex(accounts.index, fill_value=0)
    assert (accounts.saldo_closing - accounts.saldo_opening).to_numpy() == pytest.approx(net.to_numpy(), abs=0.05)
    assert (accounts.saldo_closing != accounts.saldo_opening).mean() > 0.9
    assert (accounts.saldo_closing >= 0).all()


def test_spending_habits_drift(wide):
    config, tx, accounts = wide
    assert accounts.habit_trend_per_30d.std() > 0.03
    ratio = np.log(tx.amount_idr / tx.habit)
    day = (tx.ts.dt.normalize() - np.datetime64(config.start_date.isoformat())).dt.days
    by_day = ratio.groupby(day).median()
    # The year-end bump (around 24 December) against early December and mid-January.
    assert by_day.loc[20:27].mean() > by_day.loc[[*range(0, 7), *range(42, 49)]].mean() + 0.08
