"""FX ingestion against a real HTTP server on 127.0.0.1 standing in for Frankfurter / exchangerate-api."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.ingest import fx
from bankpipe.settings import Settings
from bankpipe.warehouse import connect as wh_connect

pytestmark = pytest.mark.integration

D = date.fromisoformat
JAN = (D("2024-01-01"), D("2024-01-12"))  # 9 ECB business days (1 Jan is a holiday); 10 weekdays
BASE_RATES = {
    "IDR": Decimal("15500.1234567891"),
    "SGD": Decimal("1.3251"),
    "EUR": Decimal("0.9123"),
    "JPY": Decimal("141.77"),
    "AUD": Decimal("1.4912"),
    "MYR": Decimal("4.6021"),
    "GBP": Decimal("0.7855"),
    "CNY": Decimal("7.1234"),
    "THB": Decimal("34.55"),
    "XAU": Decimal("0.00049"),
}


def _json(obj: Any) -> str:
    """JSON with Decimals written as bare numbers, every digit kept (what a real API sends)."""
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, Decimal):
        return str(obj)
    return json.dumps(obj)


def _weekdays(start: date, end: date) -> list[date]:
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


@dataclass(frozen=True)
class Tamper:
    """A 200 answer made from the normal body by `edit` (a garbage body, a wrong rate), sent as `content_type`."""

    edit: Callable[[str], str]
    content_type: str = "application/json"


@dataclass
class FakeApi:
    """Answers like Frankfurter (`/latest`, `/{a}..{b}`) and exchangerate-api v4 (`/latest/USD`).

    `script` is consumed one entry per request before normal answers: an int is an HTTP status,
    "garbage" a 200 with broken JSON, "slow" a normal answer after `sleep_s`, a Tamper a 200 whose
    body it rewrites from the normal one. `always` applies to every request once the script is used up.
    """

    script: list[int | str | Tamper | None] = field(default_factory=list)  # None: the normal answer
    always: int | str | Tamper | None = None
    sleep_s: float = 0.0
    rates: dict[str, Decimal] = field(default_factory=lambda: dict(BASE_RATES))
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def rate(self, quote: str, day: date) -> Decimal:
        # Varies by day so that each day is a distinct, checkable value.
        return self.rates[quote] + Decimal(day.toordinal() % 97) / 10_000

    def latest_day(self) -> date:
        day = ops.now().date()
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day

    def answer(self, target: str) -> tuple[int, str]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        quotes = query.get("to", [""])[0].split(",") if "to" in query else list(self.rates)
        quotes = [q for q in quotes if q in self.rates]
        if parts.path == "/latest/USD":
            day = self.latest_day()
            return 200, _json(
                {
                    "base": "USD",
                    "date": day.isoformat(),
                    "time_last_updated": 1,
                    "rates": {"USD": 1, **{q: self.rate(q, day) for q in self.rates}},
                }
            )
        if query.get("from") != ["USD"]:
            return 422, '{"message": "from must be USD here"}'
        if parts.path == "/latest":
            day = self.latest_day()
            return 200, _json(
                {
                    "amount": Decimal("1.0"),
                    "base": "USD",
                    "date": day.isoformat(),
                    "rates": {q: self.rate(q, day) for q in quotes},
                }
            )
        if ".." in parts.path:
            lo, hi = (D(x) for x in parts.path.strip("/").split(".."))
            days = _weekdays(lo, hi)
            return 200, _json(
                {
                    "amount": Decimal("1.0"),
                    "base": "USD",
                    "start_date": lo.isoformat(),
                    "end_date": hi.isoformat(),
                    "rates": {d.isoformat(): {q: self.rate(q, d) for q in quotes} for d in days},
                }
            )
        return 404, '{"message": "not found"}'


class _Handler(BaseHTTPRequestHandler):
    api: FakeApi

    def do_GET(self) -> None:
        api = self.server.api  # type: ignore[attr-defined]
        api.requests.append(self.path)
        action = api.script.pop(0) if api.script else api.always
        if action == "slow":
            time.sleep(api.sleep_s)
        content_type = "application/json"
        if isinstance(action, int):
            status, body = action, '{"message": "scripted failure"}'
        elif isinstance(action, Tamper):
            status, body = api.answer(self.path)
            body, content_type = action.edit(body), action.content_type
        elif action == "garbage":
            status, body = 200, '{"amount": 1.0, "base": "USD", "rates": {"2024-01-02": {"IDR": 155'
        else:
            status, body = api.answer(self.path)
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False  # a handler still sleeping for the timeout test must not hold teardown
    fake = FakeApi()
    server.api = fake  # type: ignore[attr-defined]
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fx, "BACKOFF_S", 0.001)


def make_settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    kw = {"fx_timeout_s": 0.5, "fx_retries": 2, **kw}
    return Settings(state_dir=tmp_path, warehouse_path=tmp_path / "warehouse.duckdb", fx_api_url=url, **kw)


def rows(settings: Settings, sql: str = "select rate_date, quote, rate, source from bronze.raw_exchange_rates"):
    with wh_connect(settings) as wh:
        return wh.fetchall(sql)


def last_run(settings: Settings) -> tuple[str, int, int, dict[str, Any]]:
    with wh_connect(settings) as wh:
        status, rows_in, rows_out, details = wh.fetchone(
            "select status, rows_in, rows_out, details from ops.run_log where step = 'ingest.fx'"
            " order by started_at desc limit 1"
        )
    return status, rows_in, rows_out, json.loads(details)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fx_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == fx.__name__ and r.levelno >= logging.WARNING]


# --- normal answers -------------------------------------------------------------------------------


def test_frankfurter_history(tmp_path: Path, api: FakeApi, caplog: pytest.LogCaptureFixture) -> None:
    s = make_settings(tmp_path, api.url)
    result = fx.run(s, *JAN)
    quotes = ",".join(sorted(fx.DEFAULT_QUOTES))
    assert api.requests == [f"/2024-01-01..2024-01-12?from=USD&to={quotes}"]
    assert result.fallback_reason is None and result.source == "frankfurter"
    assert result.inserted == result.fetched == 10 * 8
    got = rows(s)
    assert {r[3] for r in got} == {"frankfurter"}
    assert {r[0] for r in got} == set(_weekdays(*JAN))
    idr = {r[0]: r[2] for r in got if r[1] == "IDR"}
    assert idr[D("2024-01-02")] == api.rate("IDR", D("2024-01-02"))
    assert fx_warnings(caplog) == []
    status, rows_in, rows_out, details = last_run(s)
    assert (status, rows_in, rows_out) == ("success", 80, 80)
    assert details["source"] == "frankfurter" and details["fallback"] is False
    lineage = rows(s, "select distinct _batch_id, _source from bronze.raw_exchange_rates")
    assert lineage == [(result.batch_id, f"{api.url}/2024-01-01..2024-01-12?from=USD&to={quotes}")]


def test_frankfurter_latest(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    today = ops.now().date()
    result = fx.run(s, today, today)
    assert len(api.requests) == 1 and api.requests[0].startswith("/latest?from=USD&to=")
    assert result.inserted == 8
    assert {(r[0], r[3]) for r in rows(s)} == {(api.latest_day(), "frankfurter")}


def test_frankfurter_history_is_fetched_a_year_at_a_time(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    result = fx.run(s, D("2022-01-01"), D("2024-06-30"))
    assert [p.split("?")[0] for p in api.requests] == [
        "/2022-01-01..2022-12-31",
        "/2023-01-01..2023-12-31",
        "/2024-01-01..2024-06-30",
    ]
    assert result.inserted == len(_weekdays(D("2022-01-01"), D("2024-06-30"))) * 8


def test_exchangerate_api_latest(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url, fx_api_style="exchangerate-api")
    today = ops.now().date()
    result = fx.run(s, today, today)
    assert api.requests == ["/latest/USD"]
    assert result.source == "exchangerate-api" and not result.used_snapshot
    got = rows(s)
    assert {r[1] for r in got} == set(fx.DEFAULT_QUOTES)  # XAU and USD in the answer are not kept
    assert {r[3] for r in got} == {"exchangerate-api"}


def test_exchangerate_api_history_comes_from_the_snapshot(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url, fx_api_style="exchangerate-api")
    result = fx.run(s, *JAN)
    assert api.requests == []  # v4 has no history endpoint
    assert result.fallback_reason is None
    assert "latest day only" in (result.snapshot_reason or "")
    assert result.source == "exchangerate-api+ecb_snapshot"
    got = rows(s)
    assert {r[3] for r in got} == {"ecb_snapshot"}
    assert len({r[0] for r in got}) == 9  # ECB business days only
    assert last_run(s)[3]["snapshot_reason"] == "exchangerate-api serves the latest day only"


# --- failures -------------------------------------------------------------------------------------


def test_server_errors_then_success_are_retried(tmp_path: Path, api: FakeApi, caplog) -> None:
    api.script = [500, 503]
    s = make_settings(tmp_path, api.url, fx_retries=2)
    result = fx.run(s, *JAN)
    assert len(api.requests) == 3
    assert result.fallback_reason is None and result.inserted == 80
    assert {r[3] for r in rows(s)} == {"frankfurter"}
    assert fx_warnings(caplog) == []


def test_persistent_server_error_falls_back_to_the_snapshot(tmp_path: Path, api: FakeApi, caplog) -> None:
    api.always = 500
    s = make_settings(tmp_path, api.url, fx_retries=2)
    result = fx.run(s, *JAN)
    assert len(api.requests) == 3  # one try and two retries, then no more hammering
    assert result.source == "ecb_snapshot" and result.used_snapshot
    assert "HTTP 500 after 3 attempts" in (result.fallback_reason or "")
    assert {r[3] for r in rows(s)} == {"ecb_snapshot"}
    assert result.inserted == 9 * 8
    (warning,) = fx_warnings(caplog)  # exactly one line, naming the failure and the fallback
    assert "HTTP 500" in warning and "ecb_snapshot" in warning
    status, _, rows_out, details = last_run(s)
    assert status == "success" and rows_out == 72
    assert details["fallback"] is True and "HTTP 500" in details["fallback_reason"]
    assert details["source"] == "ecb_snapshot" and details["snapshot_last_date"] >= "2026-01-01"


def test_client_errors_are_not_retried(tmp_path: Path, api: FakeApi) -> None:
    api.always = 404
    s = make_settings(tmp_path, api.url, fx_retries=3)
    result = fx.run(s, *JAN)
    assert len(api.requests) == 1
    assert "HTTP 404" in (result.fallback_reason or "") and "attempts" not in (result.fallback_reason or "")
    assert result.source == "ecb_snapshot"


def test_timeouts_fall_back(tmp_path: Path, api: FakeApi, caplog) -> None:
    api.always, api.sleep_s = "slow", 1.0
    s = make_settings(tmp_path, api.url, fx_timeout_s=0.2, fx_retries=1)
    started = time.monotonic()
    result = fx.run(s, *JAN)
    assert time.monotonic() - started < 3
    assert len(api.requests) == 2
    assert "timed out" in (result.fallback_reason or "")
    assert {r[3] for r in rows(s)} == {"ecb_snapshot"}
    assert len(fx_warnings(caplog)) == 1


def test_a_slow_answer_then_a_fast_one_is_retried(tmp_path: Path, api: FakeApi) -> None:
    api.script, api.sleep_s = ["slow"], 1.0
    s = make_settings(tmp_path, api.url, fx_timeout_s=0.2, fx_retries=1)
    result = fx.run(s, *JAN)
    assert result.fallback_reason is None and result.source == "frankfurter"


@pytest.mark.parametrize("style", ["frankfurter", "exchangerate-api"])
def test_malformed_json_falls_back(tmp_path: Path, api: FakeApi, style: str, caplog) -> None:
    api.always = "garbage"
    s = make_settings(tmp_path, api.url, fx_api_style=style)
    today = ops.now().date()
    result = fx.run(s, today - timedelta(days=3), today)
    assert len(api.requests) == 1  # a broken body is not a transient failure
    assert "malformed JSON" in (result.fallback_reason or "")
    assert result.source == "ecb_snapshot"
    assert len(fx_warnings(caplog)) == 1


def test_wrong_shape_falls_back(tmp_path: Path, api: FakeApi) -> None:
    api.rates = {"SGD": Decimal("1.3")}  # fine JSON, but days without IDR, the bank's own currency
    s = make_settings(tmp_path, api.url)
    result = fx.run(s, *JAN)
    assert "no IDR rate for 2024-01-01" in (result.fallback_reason or "") and result.inserted == 72
    assert {r[3] for r in rows(s)} == {"ecb_snapshot"}
    api.always = 422  # "from must be …": an API that does not accept the request
    result = fx.run(s, *JAN)
    assert "HTTP 422" in (result.fallback_reason or "") and result.inserted == 0  # the snapshot rows are in


def _set_rate(day: str, quote: str, value: Any) -> Tamper:
    """An answer whose rate for `quote` on `day` is replaced by `value` (written as JSON as it is)."""

    def edit(body: str) -> str:
        payload = fx.loads_decimal(body)
        payload["rates"][day][quote] = value
        return _json(payload)

    return Tamper(edit)


def _drop_rate(day: str, quote: str) -> Tamper:
    def edit(body: str) -> str:
        payload = fx.loads_decimal(body)
        del payload["rates"][day][quote]
        return _json(payload)

    return Tamper(edit)


GARBAGE = {
    "html": (Tamper(lambda _: "<html><body>502 Bad Gateway</body></html>", "text/html"), "malformed JSON"),
    "truncated": (Tamper(lambda body: body[: len(body) // 2]), "malformed JSON"),
    "empty body": (Tamper(lambda _: ""), "malformed JSON"),
    "wrong shape": (Tamper(lambda _: '[{"IDR": 15500}]'), "no 'rates' object"),
    "wrong base": (Tamper(lambda body: body.replace('"base":"USD"', '"base":"EUR"')), "base is 'EUR'"),
    "missing IDR": (_drop_rate("2024-01-03", "IDR"), "no IDR rate for 2024-01-03"),
    "rate as text": (_set_rate("2024-01-03", "IDR", "abc"), "2024-01-03 IDR: rate 'abc' is not a number"),
    "rate 0": (_set_rate("2024-01-03", "IDR", Decimal(0)), "2024-01-03 IDR: rate 0 is out of range"),
    "negative rate": (_set_rate("2024-01-03", "IDR", Decimal("-15500")), "2024-01-03 IDR: rate -15500 is out"),
    "NaN": (_set_rate("2024-01-03", "IDR", Decimal("NaN")), "2024-01-03 IDR: rate nan is not a number"),
    "absurd rate": (_set_rate("2024-01-03", "IDR", Decimal("1E+30")), "2024-01-03 IDR: rate 1E+30 is out of range"),
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_garbage_is_rejected_with_evidence_and_the_next_run_completes(
    tmp_path: Path, api: FakeApi, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    tamper, reason = GARBAGE[kind]
    api.script = [tamper]
    s = make_settings(tmp_path, api.url)
    result = fx.run(s, *JAN)
    assert len(api.requests) == 1  # garbage is not retried: the same server would send it again
    # Evidence: which answer (its URL) and, for a bad rate, which day and currency.
    assert reason in (result.fallback_reason or "")
    assert f"{api.url}/2024-01-01..2024-01-12" in (result.fallback_reason or "")
    # Nothing of the rejected answer reaches bronze, not even its good days: the run is all snapshot.
    assert {r[3] for r in rows(s)} == {"ecb_snapshot"} and result.inserted == 72
    assert rows(s, "select count(*) from bronze.raw_exchange_rates where not (rate > 0)") == [(0,)]
    (warning,) = fx_warnings(caplog)
    assert reason in warning and "\n" not in warning
    status, _, _, details = last_run(s)
    assert status == "success" and details["fallback"] is True and reason in details["fallback_reason"]
    # The API answers properly again: the next run completes from it, for the whole window.
    again = fx.run(s, *JAN)
    assert again.fallback_reason is None and again.inserted_by_source == {"frankfurter": 80}


def test_a_failure_mid_run_drops_the_answers_before_it(tmp_path: Path, api: FakeApi) -> None:
    api.script, api.always = [None], 500  # the first year answers, the second fails
    s = make_settings(tmp_path, api.url, fx_retries=1)
    result = fx.run(s, D("2022-06-01"), D("2024-01-12"))
    assert [p.split("?")[0] for p in api.requests] == ["/2022-06-01..2023-05-31"] + ["/2023-06-01..2024-01-12"] * 2
    assert result.source == "ecb_snapshot" and result.inserted_by_source.keys() == {"ecb_snapshot"}
    assert {r[3] for r in rows(s)} == {"ecb_snapshot"}  # one decision per run: all snapshot, no mix
    api.always = None
    again = fx.run(s, D("2022-06-01"), D("2024-01-12"))
    assert again.fallback_reason is None
    assert again.inserted_by_source == {"frankfurter": len(_weekdays(D("2022-06-01"), D("2024-01-12"))) * 8}


@pytest.mark.parametrize(
    ("style", "path", "secret"),
    [
        ("frankfurter", "", "S3cretPassw0rd"),  # in the URL's user:password
        ("exchangerate-api", "/v6/0123456789abcdef01234567", "0123456789abcdef01234567"),  # v6: key in the path
    ],
)
def test_api_keys_never_reach_logs_errors_or_bronze(
    tmp_path: Path, api: FakeApi, caplog: pytest.LogCaptureFixture, style: str, path: str, secret: str
) -> None:
    caplog.set_level(logging.DEBUG)
    api.always = 500
    host = api.url.replace("http://", f"http://bankpipe:{secret}@") if not path else api.url
    s = make_settings(tmp_path, host + path, fx_api_style=style, fx_retries=1)
    today = ops.now().date()
    result = fx.run(s, today - timedelta(days=10), today)
    assert "HTTP 500" in (result.fallback_reason or "")
    assert secret not in (result.fallback_reason or "")
    assert secret not in caplog.text
    with wh_connect(s) as wh:
        stored = wh.fetchall("select details, error from ops.run_log") + wh.fetchall(
            "select distinct _source from bronze.raw_exchange_rates"
        )
    assert secret not in repr(stored)


def test_an_offline_machine_falls_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A name that does not resolve is not retried (issue 17: offline, retries cost ~11 s a run)."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolver(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "fx.bankpipe.invalid":  # the resolver of an offline machine, without asking a DNS server
            lookups.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(fx, "BACKOFF_S", 5.0)  # one retry would cost seconds: the assertion on time would see it
    s = make_settings(tmp_path, "https://fx.bankpipe.invalid/v1", fx_retries=3)
    started = time.monotonic()
    result = fx.run(s, *JAN)
    assert time.monotonic() - started < 4
    assert lookups == ["fx.bankpipe.invalid"]
    assert "does not resolve" in (result.fallback_reason or "") and result.source == "ecb_snapshot"
    assert result.inserted == 72 and len(fx_warnings(caplog)) == 1


def test_a_name_that_cannot_resolve_is_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The real resolver, on a name that never resolves (RFC 6761 `.invalid`): one lookup, no retry."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def counting(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "bankpipe-no-such-host.invalid":
            lookups.append(host)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    s = make_settings(tmp_path, "http://bankpipe-no-such-host.invalid/", fx_retries=3)
    with caplog.at_level(logging.INFO, logger=fx.__name__):
        result = fx.run(s, *JAN)
    assert lookups == ["bankpipe-no-such-host.invalid"]  # one attempt of the four fx_retries=3 allows
    assert not [r for r in caplog.records if "attempt" in r.getMessage()]  # no "retrying in" line
    assert "does not resolve" in (result.fallback_reason or "") and "attempts" not in (result.fallback_reason or "")
    assert result.source == "ecb_snapshot" and result.inserted == 72


def test_a_transient_503_is_retried_and_the_run_stays_live(tmp_path: Path, api: FakeApi) -> None:
    api.script = [503]
    s = make_settings(tmp_path, api.url, fx_retries=3)
    result = fx.run(s, *JAN)
    assert len(api.requests) == 2 and result.fallback_reason is None and result.source == "frankfurter"


def test_one_offline_decision_per_run(tmp_path: Path, api: FakeApi, caplog: pytest.LogCaptureFixture) -> None:
    """Within offline_once() (`bankpipe run`), an API found failing is not asked again; outside, it is."""
    api.always = 503
    s = make_settings(tmp_path, api.url, fx_retries=2)
    with fx.offline_once():
        first = fx.run(s, *JAN)
        asked = len(api.requests)
        second = fx.run(s, D("2024-02-01"), D("2024-02-09"))
    assert asked == 3 and len(api.requests) == asked  # the second call made no request at all
    assert first.source == second.source == "ecb_snapshot" and second.inserted > 0
    assert "earlier in this run" in (second.fallback_reason or "") and "HTTP 503" in (second.fallback_reason or "")
    api.always = None  # the API is back: the next run (outside the decision) asks it and goes live
    third = fx.run(s, D("2024-03-01"), D("2024-03-08"))
    assert len(api.requests) == asked + 1 and third.source == "frankfurter"


def test_unreachable_host_falls_back_to_real_ecb_rates(tmp_path: Path, caplog) -> None:
    s = make_settings(tmp_path, f"http://127.0.0.1:{closed_port()}")
    result = fx.run(s, *JAN)
    assert result.source == "ecb_snapshot"
    assert "ConnectError" in (result.fallback_reason or "")
    got = rows(s)
    assert {r[3] for r in got} == {"ecb_snapshot"}
    assert all(r[0].weekday() < 5 for r in got)
    idr = {r[0]: r[2] for r in got if r[1] == "IDR"}
    (expected,) = fx.EcbSnapshotClient().history(D("2024-01-02"), D("2024-01-02"), ["IDR"])
    assert idr[D("2024-01-02")] == expected.rates[0].rate
    assert len(fx_warnings(caplog)) == 1


def test_unreadable_snapshot_fails_the_step(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK not really")
    s = make_settings(tmp_path, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(BankpipeError, match="unreadable"):
        fx.run(s, *JAN, snapshot=fx.EcbSnapshotClient(bad))
    status, *_ = last_run(s)
    assert status == "failed"
    assert rows(s, "select count(*) from bronze.raw_exchange_rates") == [(0,)]  # a failed step commits nothing


# --- idempotency, precision, currencies, incremental windows ----------------------------------------


def test_running_twice_adds_nothing(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    first = fx.run(s, *JAN)
    second = fx.run(s, *JAN)
    assert first.inserted == 80 and second.fetched == 80 and second.inserted == 0
    assert len(rows(s)) == 80
    # The same days from the snapshot are a different source: stored once each, never twice.
    api.always = 500
    fx.run(s, *JAN)
    fx.run(s, *JAN)
    assert len(rows(s)) == 80 + 72
    dupes = rows(
        s,
        "select rate_date, base, quote, source, count(*) from bronze.raw_exchange_rates"
        " group by all having count(*) > 1",
    )
    assert dupes == []


def test_decimal_precision_is_kept(tmp_path: Path, api: FakeApi) -> None:
    api.rates = {"IDR": Decimal("123456789012.3456789012"), "JPY": Decimal("0.000064516129032258")}
    s = make_settings(tmp_path, api.url)
    fx.run(s, D("2024-01-02"), D("2024-01-02"))
    got = {r[1]: r[2] for r in rows(s)}
    offset = Decimal(D("2024-01-02").toordinal() % 97) / 10_000
    assert got["IDR"] == Decimal("123456789012.3456789012") + offset  # more digits than a float holds
    assert got["JPY"] == (Decimal("0.000064516129032258") + offset).quantize(Decimal("1e-10"))
    assert all(isinstance(v, Decimal) for v in got.values())
    assert rows(s, "select typeof(rate) from bronze.raw_exchange_rates limit 1") == [("DECIMAL(24,10)",)]


def _add_transactions(s: Settings, records: list[tuple[str, str | None]]) -> None:
    with wh_connect(s) as wh:
        for i, (day, code) in enumerate(records):
            wh.execute(
                "insert into bronze.raw_transaction_records (_batch_id, _loaded_at, _source, _file_sha256, _record)"
                " values ('b1', now(), 'transaction_20240305_000000.json', 'sha',"
                " json_object('id', ?, 'date', ?, 'mata_uang', ?))",
                [f"TRX-{i:06d}", day, code],
            )


def test_currencies_come_from_transactions(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    _add_transactions(s, [("2024-01-03", "THB"), ("2024-01-04", None), ("2024-01-05", "idr")])
    result = fx.run(s, *JAN)
    assert "THB" in result.quotes
    assert "THB" in parse_to(api.requests[0])
    assert {r[1] for r in rows(s)} == set(fx.DEFAULT_QUOTES) | {"THB"}


def test_a_currency_nobody_publishes_is_reported(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    _add_transactions(s, [("2024-01-03", "XYZ")])
    result = fx.run(s, *JAN)  # the fake ignores what it does not know, like Frankfurter's list filter
    assert result.missing_quotes == ("XYZ",)
    assert last_run(s)[3]["missing_quotes"] == ["XYZ"]


def parse_to(path: str) -> list[str]:
    return parse_qs(urlsplit(path).query)["to"][0].split(",")


def test_incremental_windows(tmp_path: Path, api: FakeApi) -> None:
    s = make_settings(tmp_path, api.url)
    today = ops.now().date()
    _add_transactions(s, [(str(today - timedelta(days=20)), "IDR"), ("not a date", "IDR")])
    first = fx.run(s)
    assert first.windows and first.windows[0].start == today - timedelta(days=27)  # a week before the first one
    assert api.requests[0].startswith(f"/{today - timedelta(days=27)}..{today}?")
    loaded = len(rows(s))
    api.requests.clear()
    second = fx.run(s)
    assert second.inserted == 0 and len(rows(s)) == loaded
    last = max(r[0] for r in rows(s))
    # Only days after the last loaded rate are asked for (none at all when today is already in).
    assert all(w.start == last + timedelta(days=1) for w in second.windows)
    assert len(api.requests) == len(second.windows)
    # A new currency in the transactions gets its whole history; the others stay incremental.
    _add_transactions(s, [(str(today - timedelta(days=20)), "THB")])
    api.requests.clear()
    third = fx.run(s)
    thb = [w for w in third.windows if "THB" in w.quotes]
    assert thb == [fx.Window(today - timedelta(days=27), today, ("THB",))]
    assert any(parse_to(p) == ["THB"] for p in api.requests)


def test_exchangerate_api_incremental_run_mixes_latest_and_snapshot(tmp_path: Path, api: FakeApi, caplog) -> None:
    s = make_settings(tmp_path, api.url, fx_api_style="exchangerate-api")
    _add_transactions(s, [("2026-06-01", "IDR")])  # inside the snapshot's range whatever day the test runs
    result = fx.run(s)
    assert api.requests == ["/latest/USD"]  # one call, however many windows reach today
    assert result.inserted_by_source["exchangerate-api"] == 8
    assert result.inserted_by_source["ecb_snapshot"] > 8 * 100
    assert result.snapshot_windows[0].start == D("2026-05-25")
    assert fx_warnings(caplog) == []  # nothing failed: the snapshot only fills what v4 cannot serve
    by_source = dict(rows(s, "select source, max(rate_date) from bronze.raw_exchange_rates group by source"))
    assert by_source["exchangerate-api"] == api.latest_day()
    assert by_source["ecb_snapshot"] <= fx.EcbSnapshotClient().last_date()
