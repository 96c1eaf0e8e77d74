"""FX ingestion, pure parts: answer parsing, ECB conversion, window planning, retry classification."""

from __future__ import annotations

import csv
import errno
import io
import itertools
import socket
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bankpipe.errors import BankpipeError
from bankpipe.ingest import fx
from bankpipe.ingest.fx import FxApiError, Rate, Window
from bankpipe.settings import Settings
from bankpipe.warehouse import connect as wh_connect

D = date.fromisoformat
QUOTES = {"IDR", "SGD", "EUR"}


# --- parsing ------------------------------------------------------------------------------------


def test_loads_decimal_keeps_every_digit() -> None:
    payload = fx.loads_decimal('{"a": 123456789012.3456789012, "b": 15500, "c": 0.1}')
    assert payload == {"a": Decimal("123456789012.3456789012"), "b": 15500, "c": Decimal("0.1")}
    assert isinstance(payload["a"], Decimal)


def test_parse_frankfurter_history() -> None:
    payload = fx.loads_decimal(
        '{"amount": 1.0, "base": "USD", "start_date": "2024-01-02", "end_date": "2024-01-03",'
        ' "rates": {"2024-01-02": {"IDR": 15500.5, "SGD": 1.3251, "THB": 34.1},'
        '           "2024-01-03": {"IDR": 15510, "SGD": 1.33}}}'
    )
    rates = list(fx.parse_frankfurter(payload, QUOTES))
    assert rates == [
        Rate(D("2024-01-02"), "USD", "IDR", Decimal("15500.5")),
        Rate(D("2024-01-02"), "USD", "SGD", Decimal("1.3251")),
        Rate(D("2024-01-03"), "USD", "IDR", Decimal("15510")),
        Rate(D("2024-01-03"), "USD", "SGD", Decimal("1.33")),
    ]  # THB was not asked for
    assert all(isinstance(r.rate, Decimal) for r in rates)


def test_parse_frankfurter_latest() -> None:
    payload = fx.loads_decimal('{"amount": 1.0, "base": "USD", "date": "2024-01-02", "rates": {"IDR": 15500}}')
    assert list(fx.parse_frankfurter(payload, QUOTES)) == [Rate(D("2024-01-02"), "USD", "IDR", Decimal("15500"))]


def test_a_day_without_idr_is_only_required_when_idr_was_asked_for() -> None:
    payload = fx.loads_decimal('{"amount": 1.0, "base": "USD", "date": "2024-01-02", "rates": {"EUR": 0.91}}')
    with pytest.raises(FxApiError, match="no IDR rate for 2024-01-02"):
        list(fx.parse_frankfurter(payload, QUOTES))
    # A window for another currency alone (e.g. a new one found in the transactions) needs no IDR.
    assert list(fx.parse_frankfurter(payload, {"EUR"})) == [Rate(D("2024-01-02"), "USD", "EUR", Decimal("0.91"))]


def test_parse_frankfurter_divides_by_amount() -> None:
    payload = fx.loads_decimal('{"amount": 10, "base": "USD", "date": "2024-01-02", "rates": {"IDR": 155000.1}}')
    assert next(fx.parse_frankfurter(payload, QUOTES)).rate == Decimal("15500.01")


def test_parse_exchangerate_api() -> None:
    payload = fx.loads_decimal(
        '{"provider": "x", "base": "USD", "date": "2024-01-02", "time_last_updated": 1704153601,'
        ' "rates": {"USD": 1, "IDR": 15488.123, "SGD": 1.32, "XAU": 0.0005}}'
    )
    assert list(fx.parse_exchangerate_api(payload, QUOTES)) == [
        Rate(D("2024-01-02"), "USD", "IDR", Decimal("15488.123")),
        Rate(D("2024-01-02"), "USD", "SGD", Decimal("1.32")),
    ]


def test_rates_are_rounded_to_the_column_scale() -> None:
    payload = fx.loads_decimal('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": 0.000064516129032258}}')
    assert next(fx.parse_exchangerate_api(payload, QUOTES)).rate == Decimal("0.0000645161")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[]", "no 'rates'"),
        ('{"base": "USD"}', "no 'rates'"),
        ('{"base": "EUR", "date": "2024-01-02", "rates": {"IDR": 1}}', "base is 'EUR'"),
        ('{"base": "USD", "date": "02/01/2024", "rates": {"IDR": 1}}', "not a YYYY-MM-DD date"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": "15500"}}', "not a number"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": true}}', "not a number"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": -1.5}}', "out of range"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": 0}}', "out of range"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": 1e20}}', "out of range"),
        ('{"base": "USD", "rates": {"2024-01-02": [1, 2]}}', "not an object"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": "abc"}}', "rate 'abc' is not a number"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": NaN}}', "not a number"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": Infinity}}', "not a number"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": 1e30}}', "out of range"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": 0.0}}', "2024-01-02 IDR: rate 0.0 is out of range"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"SGD": 1.3}}', "no IDR rate for 2024-01-02"),
        ('{"base": "USD", "date": "2024-01-02", "rates": {"IDR": null}}', "not a number"),
    ],
)
def test_unexpected_answers_are_api_errors(body: str, message: str) -> None:
    with pytest.raises(FxApiError, match=message):
        list(fx.parse_frankfurter(fx.loads_decimal(body), QUOTES))


# --- ECB snapshot -------------------------------------------------------------------------------

ECB_CSV = """Date,USD,JPY,IDR,CYP,SGD,
2024-01-03,1.0919,155.52,16965.5,N/A,1.4480,
2024-01-02,1.0956,155.80,17011.63,N/A,1.4526,
1999-01-04,1.1789,133.73,N/A,0.58231,N/A,
"""


def test_read_ecb_csv_converts_eur_base_to_usd_base() -> None:
    rates = {(r.rate_date, r.quote): r.rate for r in fx.read_ecb_csv(ECB_CSV, D("1999-01-01"), D("2024-12-31"), QUOTES)}
    assert rates[(D("2024-01-02"), "IDR")] == (Decimal("17011.63") / Decimal("1.0956")).quantize(Decimal("1e-10"))
    assert rates[(D("2024-01-02"), "EUR")] == (1 / Decimal("1.0956")).quantize(Decimal("1e-10"))
    assert rates[(D("2024-01-03"), "SGD")] == Decimal("1.3261287664")
    assert (D("1999-01-04"), "IDR") not in rates  # N/A: not published then
    assert (D("1999-01-04"), "EUR") in rates
    assert {q for _, q in rates} == {"IDR", "SGD", "EUR"}  # JPY not asked for


def test_read_ecb_csv_keeps_the_window() -> None:
    rates = list(fx.read_ecb_csv(ECB_CSV, D("2024-01-03"), D("2024-01-03"), {"IDR"}))
    assert [r.rate_date for r in rates] == [D("2024-01-03")]


def test_real_snapshot_has_idr_on_business_days_only() -> None:
    snap = fx.EcbSnapshotClient()
    (batch,) = snap.history(D("2024-01-01"), D("2024-01-14"), ["IDR", "EUR"])
    assert batch.source == "ecb_snapshot"
    assert "eurofxref-hist.zip" in batch.origin
    days = sorted({r.rate_date for r in batch.rates})
    assert days and all(d.weekday() < 5 for d in days)
    assert D("2024-01-01") not in days  # New Year: ECB does not publish
    # Cross-check one value against the CSV inside the wheel, independently of read_ecb_csv.
    with zipfile.ZipFile(snap.path) as zf:
        rows = {r["Date"]: r for r in csv.DictReader(io.StringIO(zf.read("eurofxref-hist.csv").decode()))}
    expected = (Decimal(rows["2024-01-02"]["IDR"]) / Decimal(rows["2024-01-02"]["USD"])).quantize(Decimal("1e-10"))
    idr = {r.rate_date: r.rate for r in batch.rates if r.quote == "IDR"}
    assert idr[D("2024-01-02")] == expected
    assert 14_000 < expected < 17_000
    assert snap.last_date() >= D("2026-01-01")


def test_unreadable_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "eurofxref-hist.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BankpipeError, match=r"ECB snapshot .* is unreadable"):
        list(fx.EcbSnapshotClient(bad).history(D("2024-01-01"), D("2024-01-02"), ["IDR"]))


# --- planning -----------------------------------------------------------------------------------

TODAY = D("2024-06-14")  # a Friday
Q = ("EUR", "IDR")


@pytest.mark.parametrize(
    ("loaded", "earliest_txn", "expected"),
    [
        pytest.param({}, None, [Window(D("2024-03-16"), TODAY, Q)], id="first-run-last-90-days"),
        pytest.param({}, D("2024-01-10"), [Window(D("2024-01-03"), TODAY, Q)], id="first-run-from-first-transaction"),
        pytest.param({}, D("1990-05-05"), [Window(D("1999-01-04"), TODAY, Q)], id="never-before-ecb-began"),
        pytest.param(
            {"EUR": (D("2024-01-02"), D("2024-06-10")), "IDR": (D("2024-01-02"), D("2024-06-10"))},
            D("2024-01-10"),
            [Window(D("2024-06-11"), TODAY, Q)],
            id="incremental",
        ),
        pytest.param(
            {"EUR": (D("2024-01-02"), TODAY), "IDR": (D("2024-01-02"), TODAY)},
            D("2024-01-10"),
            [],
            id="up-to-date",
        ),
        pytest.param(
            {"EUR": (D("2024-01-02"), D("2024-06-10"))},
            D("2024-01-10"),
            [Window(D("2024-01-03"), TODAY, ("IDR",)), Window(D("2024-06-11"), TODAY, ("EUR",))],
            id="new-currency-gets-full-history",
        ),
        pytest.param(
            {"EUR": (D("2024-03-01"), TODAY), "IDR": (D("2024-03-01"), TODAY)},
            D("2024-01-10"),
            [Window(D("2024-01-03"), D("2024-02-29"), Q)],
            id="older-transactions-backfill",
        ),
    ],
)
def test_plan_windows_incremental(loaded, earliest_txn, expected) -> None:
    assert fx.plan_windows(Q, loaded, today=TODAY, earliest_txn=earliest_txn) == expected


def test_plan_windows_explicit_window_ignores_what_is_loaded() -> None:
    loaded = {"EUR": (D("2024-01-02"), TODAY)}
    assert fx.plan_windows(Q, loaded, today=TODAY, start=D("2024-01-01"), end=D("2024-01-31")) == [
        Window(D("2024-01-01"), D("2024-01-31"), Q)
    ]
    assert fx.plan_windows(Q, loaded, today=TODAY, start=D("2024-06-01")) == [Window(D("2024-06-01"), TODAY, Q)]
    # An end in the future is capped at today (no rates exist yet).
    assert fx.plan_windows(Q, {}, today=TODAY, start=D("2024-06-10"), end=D("2025-01-01"))[0].end == TODAY
    assert fx.plan_windows(Q, {}, today=TODAY, end=D("2024-06-01"))[0].start == D("2024-06-01") - timedelta(days=90)


def test_plan_windows_rejects_an_empty_window() -> None:
    with pytest.raises(BankpipeError, match="empty FX window"):
        fx.plan_windows(Q, {}, today=TODAY, start=D("2024-02-01"), end=D("2024-01-01"))


@pytest.mark.parametrize(
    ("start", "end", "n"),
    [
        ("2024-01-01", "2024-01-01", 1),
        ("2024-01-01", "2024-12-30", 1),
        ("2024-01-01", "2024-12-31", 2),
        ("2019-01-01", "2024-06-30", 6),
    ],
)
def test_chunks_cover_the_range_in_at_most_a_year(start: str, end: str, n: int) -> None:
    parts = list(fx.chunks(D(start), D(end)))
    assert len(parts) == n
    assert parts[0][0] == D(start) and parts[-1][1] == D(end)
    assert all((hi - lo).days < 365 for lo, hi in parts)
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in itertools.pairwise(parts))


# --- retry classification and configuration -----------------------------------------------------


def _unresolved() -> httpx.ConnectError:
    """What httpx raises offline: a ConnectError whose cause is the resolver's socket.gaierror."""
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from exc
    except httpx.ConnectError as exc:
        return exc


def _connect_error(cause: OSError) -> httpx.ConnectError:
    """A ConnectError caused by an OS error, as httpcore raises it from the socket's."""
    try:
        try:
            raise cause
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as exc:
        return exc


def _status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://x/latest")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(code, request=request))


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_status_error(500), True),
        (_status_error(503), True),
        (_status_error(429), True),
        (_status_error(404), False),
        (_status_error(422), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (ValueError("bad json"), False),
        (_unresolved(), False),
        # the resolver gave up (no DNS server answers: an offline machine after its own timeouts)
        (_connect_error(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")), False),
        (_connect_error(OSError(errno.ENETUNREACH, "Network is unreachable")), False),
        # a server restarting refuses for a few seconds: the backoff is sized for that
        (_connect_error(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")), True),
        (_connect_error(OSError(errno.EHOSTUNREACH, "No route to host")), True),
    ],
)
def test_what_is_retried(exc: BaseException, transient: bool) -> None:
    assert fx._is_transient(exc) is transient


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@h:8/v1/latest?from=USD&to=IDR,SGD", "http://h:8/v1/latest?from=USD&to=IDR,SGD"),
        ("https://h/latest?access_key=S3cr3t&from=USD", "https://h/latest?access_key=***&from=USD"),
        ("https://h/latest?from=USD&apikey=S3cr3t&app_id=S3cr3t", "https://h/latest?from=USD&apikey=***&app_id=***"),
        (
            "https://v6.exchangerate-api.com/v6/0123456789abcdef01234567/latest/USD",
            "https://v6.exchangerate-api.com/v6/***/latest/USD",
        ),
        ("https://h/v1/2024-01-01..2024-01-12?from=USD", "https://h/v1/2024-01-01..2024-01-12?from=USD"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert fx._safe_url(url) == shown


def test_live_client_follows_settings(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path, fx_api_url="http://127.0.0.1:1/", fx_api_style="exchangerate-api", fx_retries=4)
    client = fx.live_client(s)
    assert isinstance(client, fx.ExchangeRateApiClient)
    assert client.base_url == "http://127.0.0.1:1" and client.attempts == 5
    assert isinstance(fx.live_client(s.model_copy(update={"fx_api_style": "frankfurter"})), fx.FrankfurterClient)
    with pytest.raises(BankpipeError, match="must be an http"):
        fx.live_client(s.model_copy(update={"fx_api_url": "api.frankfurter.app"}))


# --- which currencies -----------------------------------------------------------------------------


def test_wanted_quotes_adds_transaction_currencies(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path, warehouse_path=tmp_path / "wh.duckdb")
    with wh_connect(s) as wh:
        assert fx.wanted_quotes(wh) == tuple(sorted(fx.DEFAULT_QUOTES))
        assert fx.earliest_transaction_date(wh) is None
        for i, (code, day) in enumerate(
            [
                ("THB", "2024-03-05"),
                (" vnd ", "2024-02-29"),
                (None, "not a date"),
                ("usd", "2024-04-01"),
                ("US$", "2024-04-02"),
                ("", "2024-04-03"),
            ]
        ):
            wh.execute(
                "insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)"
                " values ('b', now(), 'f.json', 'sha', json_object('id', ?, 'date', ?, 'mata_uang', ?))",
                [f"TRX-{i:06d}", day, code],
            )
        quotes = fx.wanted_quotes(wh)
        assert fx.earliest_transaction_date(wh) == D("2024-02-29")
    assert {"THB", "VND", "IDR"} <= set(quotes)
    assert "USD" not in quotes and "US$" not in quotes and "" not in quotes
    assert set(fx.DEFAULT_QUOTES) <= set(quotes)


@pytest.mark.parametrize("bad", [Decimal(0), Decimal("-1"), Decimal("NaN"), Decimal("Infinity")])
def test_no_client_can_hand_bronze_an_unusable_rate(bad: Decimal) -> None:
    """The last gate before the insert, whatever client (a broken snapshot too) produced the rates."""
    good = Rate(D("2024-01-02"), "USD", "IDR", Decimal("15500"))
    batch = fx.RateBatch("ecb_snapshot", "snapshot.zip", fx.ops.now(), (good, Rate(D("2024-01-03"), "USD", "IDR", bad)))
    with pytest.raises(BankpipeError, match=r"snapshot.zip: unusable rate .* for IDR on 2024-01-03"):
        fx._unique([batch], "b1", fx.ops.now())
