"""Every query the dashboard runs: read-only, one short connection per batch, cached with a TTL.

Loaders take `_settings` (not hashed by Streamlit) and a `Source` (hashed): the Source carries the
warehouse file's modification time, so a pipeline write invalidates cached results at once and the
TTL only bounds how stale a Snowflake warehouse (no file) can get. Each loader returns None when
the tables it needs are missing or empty, and the page then shows the empty state. No business
rules live here: the SQL filters and aggregates gold for display, nothing more.

Every query goes through the Warehouse interface and is written once for DuckDB and Snowflake
(`?` placeholders, `group by all`, `datediff('unit', …)`, `max_by`, `qualify`); results come back
as Arrow and are turned into the same pandas dtypes whichever warehouse answered.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import streamlit as st

from bankpipe.dashboard.filters import Filters
from bankpipe.errors import WarehouseBusyError
from bankpipe.redact import redact
from bankpipe.settings import Settings
from bankpipe.warehouse import Warehouse, connect

log = logging.getLogger(__name__)

CACHE_TTL_S = 60
FACT = "gold.fact_transaction_enriched"
Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
# Bins of the score histogram and of the ROC/PR curves (scores are probabilities in [0, 1]).
SCORE_BINS = 1000


@dataclass(frozen=True)
class Source:
    """What the cached results depend on besides the filters: where the data is and its version."""

    warehouse: str  # the DuckDB file, or snowflake://account/database
    version: int  # the warehouse file's mtime_ns (0 when there is no file)
    mlflow_uri: str
    mlflow_version: int  # the SQLite registry's mtime_ns (0 when it is not a file or does not exist)


def _mtime(path: Path | None) -> int:
    try:
        return path.stat().st_mtime_ns if path else 0
    except FileNotFoundError:
        return 0


def source(settings: Settings) -> Source:
    """The current Source of the configured warehouse and registry."""
    uri = settings.mlflow_tracking_uri
    # Snowflake has no file whose mtime changes on a write: version 0, so the TTL alone refreshes results.
    version = 0 if settings.warehouse == "snowflake" else _mtime(settings.warehouse_file)
    return Source(
        warehouse=settings.warehouse_location,
        version=version,
        mlflow_uri=uri,
        mlflow_version=_mtime(_sqlite_path(uri)),
    )


@contextmanager
def _open(settings: Settings) -> Iterator[Warehouse | None]:
    """A read-only connection for one batch of queries, or None when there is no warehouse yet.

    Closed right after the batch: DuckDB lets no writer in while a reader holds the file, and the
    pipeline must not wait for a dashboard that is only being looked at. Snowflake always has a
    warehouse (a missing schema or table shows as the empty state, like an empty DuckDB file).
    """
    if settings.warehouse == "duckdb" and not settings.warehouse_file.exists():
        yield None
        return
    # DuckDB refuses readers while a pipeline step writes: wait briefly, once per page run (the
    # viewer is waiting too), then the loaders fall back to their last results (see keep_last).
    wait = 0.0 if busy().seen else BUSY_WAIT_S
    with connect(settings, read_only=True, lock_wait_s=wait) as wh:
        yield wh


# --- a busy warehouse ---------------------------------------------------------------------------------

BUSY_WAIT_S = 2.0
# Last results kept for a busy warehouse, per server process, least recently used dropped first.
# Unlike st.cache_data's entries they never expire, so they are few: a page holds 2-4 loaders.
_KEEP_LAST = 128


@dataclass
class Busy:
    """What one page run met: whether the warehouse was busy, and the age of the results shown instead."""

    seen: bool = False
    as_of: datetime | None = None  # the oldest fallback result served in this run
    reason: str = ""


_BUSY: ContextVar[Busy | None] = ContextVar("bankpipe_dashboard_busy", default=None)
_last: OrderedDict[tuple[Any, ...], tuple[datetime, Any]] = OrderedDict()
_last_lock = threading.Lock()


def begin_run() -> Busy:
    """Start a page run with a clean busy state (app.py calls it first)."""
    state = Busy()
    _BUSY.set(state)
    return state


def busy() -> Busy:
    """The busy state of the current page run."""
    state = _BUSY.get()
    return state if state is not None else begin_run()


P = ParamSpec("P")
R = TypeVar("R")


def keep_last(fn: Callable[P, R]) -> Callable[P, R]:
    """Serve a loader's last result when the warehouse is busy; raise WarehouseBusyError if there is none.

    Keyed by the loader and its arguments except the Source, whose version changes with every write.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        key = (fn.__name__, *(a.warehouse if isinstance(a, Source) else repr(a) for a in args[1:]), repr(kwargs))
        try:
            result = fn(*args, **kwargs)
        except WarehouseBusyError as exc:
            state = busy()
            state.seen, state.reason = True, str(exc)
            with _last_lock:
                kept = _last.get(key)
            if kept is None:
                raise
            log.info("warehouse busy: %s served from %s", fn.__name__, kept[0].isoformat(timespec="seconds"))
            state.as_of = min(state.as_of or kept[0], kept[0])
            return kept[1]
        with _last_lock:
            _last[key] = (datetime.now().astimezone(), result)
            _last.move_to_end(key)
            while len(_last) > _KEEP_LAST:
                _last.popitem(last=False)
        return result

    return wrapper


def frame(wh: Warehouse, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    """Run a query through the warehouse's Arrow fetch and return a DataFrame."""
    return to_pandas(wh.fetch_arrow(sql, params or None))


# Nullable integer and boolean columns become pandas' nullable dtypes (not float / object), as
# DuckDB's own `.df()` does: the pages were written against those.
_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as a DataFrame with the same dtypes whichever warehouse produced it."""
    columns: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = col.type
        # Snowflake sends NUMBER(p,s) as decimals and small integers in the narrowest int type;
        # DuckDB sums of DECIMAL are decimals too. Charts and arithmetic want floats and int64.
        if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
            col = col.cast(pa.float64())
        elif pa.types.is_integer(kind):
            col = col.cast(pa.int64())
        elif pa.types.is_date(kind):
            col = col.cast(pa.timestamp("us"))
        elif pa.types.is_timestamp(kind) and kind.unit != "us":
            col = col.cast(pa.timestamp("us", kind.tz), safe=False)
        columns[name] = col.to_pandas(types_mapper=_NULLABLE.get if col.null_count else None)
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def tables(wh: Warehouse) -> set[str]:
    """Names (`schema.table`, lower-case) of the tables and views in the schemas the dashboard reads."""
    # Only these schemas: Snowflake's information_schema also lists its own views.
    rows = wh.fetchall(
        "select table_schema, table_name from information_schema.tables"
        " where lower(table_schema) in ('gold', 'silver', 'silver_pii', 'ops', 'audit')"
    )
    # Snowflake stores unquoted names upper-case; the queries name tables as dbt and DuckDB write them.
    return {f"{schema}.{name}".lower() for schema, name in rows}


def _scalar(wh: Warehouse, sql: str, params: list[Any] | None = None) -> Any:
    row = wh.fetchone(sql, params)
    return row[0] if row else None


# --- readiness and filter options -----------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """Whether there is anything to show: the warehouse file, the gold fact, and rows in it."""

    warehouse: bool
    gold: bool
    rows: int

    @property
    def ready(self) -> bool:
        return self.warehouse and self.gold and self.rows > 0


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def readiness(_settings: Settings, src: Source) -> Readiness:
    """Is there a warehouse with a non-empty gold fact table?"""
    with _open(_settings) as wh:
        if wh is None:
            return Readiness(False, False, 0)
        if FACT not in tables(wh):
            return Readiness(True, False, 0)
        return Readiness(True, True, int(_scalar(wh, f"select count(*) from {FACT}") or 0))


@dataclass(frozen=True)
class Options:
    """What the sidebar filters offer."""

    first_date: Any
    last_date: Any
    banks: dict[str, str]  # bank key → display name
    segments: list[str]
    provinces: list[str]


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def options(_settings: Settings, src: Source) -> Options | None:
    """Date bounds, banks, segments and provinces present in gold (None before the first transform)."""
    with _open(_settings) as wh:
        if wh is None or not {FACT, "gold.dim_banks", "gold.dim_customers", "gold.dim_locations"} <= tables(wh):
            return None
        first, last = wh.fetchone(f"select min(transaction_date), max(transaction_date) from {FACT}") or (None, None)
        if first is None:
            return None
        banks = {
            key: f"{short} — {name}" if short else name
            for key, name, short in wh.fetchall(
                "select bank_key, bank_name, bank_short_name from gold.dim_banks"
                " order by case when bank_key = '-1' then 1 else 0 end, bank_name"
            )
        }
        segments = [
            r[0] for r in wh.fetchall("select distinct segment from gold.dim_customers where is_current order by 1")
        ]
        # Grouped, not DISTINCT: standard SQL sorts a DISTINCT only by what it selects.
        provinces = [
            r[0]
            for r in wh.fetchall(
                "select province from gold.dim_locations group by province"
                " order by case when province = 'Unknown' then 1 else 0 end, province"
            )
        ]
        return Options(first, last, banks, segments, provinces)


# --- overview ---------------------------------------------------------------------------------------

_KPI_SQL = """
    select
        count(*) as transactions,
        sum(case when f.status = 'Success' then f.amount_idr end) as value_idr,
        sum(case when f.status = 'Success' then f.amount_usd end) as value_usd,
        avg(case when f.status = 'Success' then 1.0 else 0.0 end) as success_rate,
        count(distinct f.account_key) as active_accounts,
        avg(case when f.anomaly_count > 0 then 1.0 else 0.0 end) as anomalous_share
    from gold.fact_transaction_enriched f
    where {where}
"""


def _period(grain: Grain, column: str = "f.transaction_date") -> str:
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}")
    return f"cast(date_trunc('{grain}', {column}) as date)"


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def overview(_settings: Settings, src: Source, flt: Filters, grain: Grain) -> dict[str, pd.DataFrame] | None:
    """KPIs for the period and the previous one, and counts/values per period × type × status × channel."""
    with _open(_settings) as wh:
        if wh is None or FACT not in tables(wh):
            return None
        where, params = flt.transactions()
        series = frame(
            wh,
            f"""select {_period(grain)} as period, f.transaction_type, f.status,
                       coalesce(f.channel, 'unknown') as channel,
                       count(*) as transactions,
                       sum(case when f.status = 'Success' then f.amount_idr else 0 end) as value_idr,
                       sum(case when f.status = 'Success' then f.amount_usd else 0 end) as value_usd
                from {FACT} f where {where}
                group by all order by period""",
            params,
        )
        kpis = frame(wh, _KPI_SQL.format(where=where), params)
        prev_where, prev_params = flt.previous().transactions()
        previous = frame(wh, _KPI_SQL.format(where=prev_where), prev_params) if flt.days else kpis.iloc[0:0]
    return {"series": series, "kpis": kpis, "previous": previous}


# --- customers --------------------------------------------------------------------------------------


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def customers(
    _settings: Settings, src: Source, flt: Filters, top_n: int = 20, show_pii: bool = False
) -> dict[str, pd.DataFrame] | None:
    """RFM segment sizes and value, segment movement (SCD2 history), and the top customers by value.

    Names and e-mails are gold's masked forms; only with `show_pii` (BANKPIPE_DASHBOARD_SHOW_PII, part
    of the cache key so a masked result is never served unmasked or back) are the clear values read
    from silver_pii.customers, and that read is logged (bankpipe.pii.record_unmasking).
    """
    with _open(_settings) as wh:
        if wh is None or not {FACT, "gold.dim_customers", "gold.mart_customer_rfm"} <= tables(wh):
            return None
        cwhere, cparams = flt.customers("c")
        segments = frame(
            wh,
            f"""select r.rfm_segment, r.customer_segment, count(*) as customers,
                       sum(r.monetary_idr) as monetary_idr, avg(r.recency_days) as avg_recency_days,
                       avg(r.frequency) as avg_frequency, max(r.as_of_date) as as_of_date
                from gold.mart_customer_rfm r
                join gold.dim_customers c on c.customer_key = r.customer_key and c.is_current
                where {cwhere}
                group by all""",
            cparams,
        )
        where, params = flt.transactions("f")
        value = frame(
            wh,
            f"""select coalesce(r.rfm_segment, 'Unscored') as rfm_segment,
                       count(distinct f.customer_key) as customers, count(*) as transactions,
                       sum(case when f.status = 'Success' then f.amount_idr else 0 end) as value_idr
                from {FACT} f
                left join gold.mart_customer_rfm r on r.customer_key = f.customer_key
                where {where} and f.customer_key <> '-1'
                group by all""",
            params,
        )
        dwhere, dparams = flt.dates("cast(v.valid_from as date)")
        movement = frame(
            wh,
            f"""with versions as (
                    select customer_key, segment, valid_from,
                           lag(segment) over (partition by customer_key order by valid_from) as previous_segment
                    from gold.dim_customers where customer_key <> '-1'
                )
                select v.previous_segment as from_segment, v.segment as to_segment, count(*) as customers
                from versions v
                join gold.dim_customers c on c.customer_key = v.customer_key and c.is_current
                where v.previous_segment is not null and v.previous_segment <> v.segment
                  and {dwhere} and {cwhere}
                group by all order by customers desc""",
            dparams + cparams,
        )
        # The one place the dashboard may read clear PII: silver_pii, and only when the switch is on.
        unmask = show_pii and "silver_pii.customers" in tables(wh)
        if unmask:
            names = "p.full_name, p.email"
            pii_join = "left join silver_pii.customers p on p.customer_id = ranked.customer_key"
        else:
            names, pii_join = "c.full_name_masked as full_name, c.email_masked as email", ""
        # Rank on the fact alone, then look up names for the few winners: joining first would carry
        # every transaction's name and e-mail through the aggregation.
        top = frame(
            wh,
            f"""with ranked as (
                    select f.customer_key, count(*) as transactions,
                           sum(case when f.status = 'Success' then f.amount_idr else 0 end) as value_idr,
                           sum(case when f.status = 'Success' then f.amount_usd else 0 end) as value_usd,
                           max(f.transaction_date) as last_transaction
                    from {FACT} f
                    where {where} and f.customer_key <> '-1'
                    group by 1 order by value_idr desc, f.customer_key limit {int(top_n)}
                )
                select ranked.customer_key as customer_id, {names}, c.segment,
                       r.rfm_segment, r.rfm_code, ranked.transactions, ranked.value_idr, ranked.value_usd,
                       ranked.last_transaction
                from ranked
                left join gold.dim_customers c on c.customer_key = ranked.customer_key and c.is_current
                left join gold.mart_customer_rfm r on r.customer_key = ranked.customer_key
                {pii_join}
                order by ranked.value_idr desc, customer_id""",
            params,
        )
    # The unmasking is recorded by the page on every display, not here: a cached result is shown
    # to other sessions (and as the busy fallback) without running this function again.
    return {"segments": segments, "value": value, "movement": movement, "top": top, "unmasked": unmask}


# --- FX exposure ------------------------------------------------------------------------------------


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def fx(_settings: Settings, src: Source, flt: Filters) -> dict[str, pd.DataFrame] | None:
    """Net positions per currency (mart), rate history with source, staleness, and the slice's FX flows."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or not {"gold.mart_fx_exposure", "gold.dim_exchange_rates", FACT} <= present:
            return None
        dwhere, dparams = flt.dates("transaction_date")
        exposure = frame(
            wh,
            f"""select transaction_date, currency, transaction_count, inflow_amount, outflow_amount,
                       net_amount, net_amount_usd, position_amount, position_usd, fx_rate
                from gold.mart_fx_exposure
                where currency <> 'IDR' and {dwhere}
                order by transaction_date, currency""",
            dparams,
        )
        rwhere, rparams = flt.dates("rate_date")
        rates = frame(
            wh,
            f"""select rate_date, currency, currency_name, units_per_usd, rate_source
                from gold.dim_exchange_rates where {rwhere} order by currency, rate_date""",
            rparams,
        )
        where, params = flt.transactions("f")
        staleness = frame(
            wh,
            f"""with latest as (
                    select currency, max(rate_date) as last_rate_date,
                           max_by(rate_source, rate_date) as last_source, count(*) as rate_days
                    from gold.dim_exchange_rates
                    where currency <> 'USD'  -- the base: 1 USD = 1 USD needs no publication
                    group by currency
                ),
                priced as (
                    select f.currency, count(*) as transactions,
                           sum(case when f.is_fx_rate_stale then 1 else 0 end) as stale_transactions,
                           sum(case when f.amount_usd is null then 1 else 0 end) as unpriced_transactions,
                           max(f.fx_rate_age_days) as max_rate_age_days
                    from {FACT} f where {where} group by f.currency
                )
                select coalesce(latest.currency, priced.currency) as currency, latest.last_rate_date,
                       coalesce(latest.last_source, case when priced.currency = 'USD' then 'base currency' end)
                           as last_source,
                       latest.rate_days,
                       datediff('day', latest.last_rate_date, current_date) as age_days,
                       coalesce(priced.transactions, 0) as transactions,
                       coalesce(priced.stale_transactions, 0) as stale_transactions,
                       coalesce(priced.unpriced_transactions, 0) as unpriced_transactions,
                       priced.max_rate_age_days
                from latest full join priced on priced.currency = latest.currency
                order by transactions desc, currency""",
            params,
        )
        flows = frame(
            wh,
            f"""select f.transaction_date, f.currency, f.transaction_type, count(*) as transactions,
                       sum(f.amount) as amount, sum(f.amount_usd) as amount_usd
                from {FACT} f
                where {where} and f.currency <> 'IDR' and f.status = 'Success'
                group by all order by 1""",
            params,
        )
    return {"exposure": exposure, "rates": rates, "staleness": staleness, "flows": flows}


# --- alerts and scores -----------------------------------------------------------------------------


def _current_alerts(present: set[str]) -> str | None:
    """The relation of current fraud alerts (one per transaction and model), or None when there are none.

    `gold.fraud_alerts` keeps every alert ever raised (a rescore adds its own); the view keeps
    those whose score is still current. A warehouse not scored since the view was added holds
    one alert per transaction and model anyway.
    """
    if "gold.current_fraud_alerts" in present:
        return "gold.current_fraud_alerts"
    return "gold.fraud_alerts" if "gold.fraud_alerts" in present else None


def _served_scores(present: set[str]) -> str | None:
    """The relation of served scores (the first batch/real-time score per transaction and version)."""
    if "gold.ml_served_scores" in present:
        return "gold.ml_served_scores"
    return "gold.ml_transaction_scores" if "gold.ml_transaction_scores" in present else None


# --- geography --------------------------------------------------------------------------------------


def _placed_sql(where: str, present: set[str]) -> str:
    """Filtered transactions with the location they count at and their fraud markers."""
    current = _current_alerts(present)
    alerts = (
        f"left join (select distinct transaction_id from {current}) a on a.transaction_id = f.transaction_id"
        if current
        else "left join (select cast(null as varchar) as transaction_id) a on false"
    )
    cases = (
        "left join (select distinct transaction_id from silver.stg_fraud_cases where is_confirmed_fraud) fc"
        " on fc.transaction_id = f.transaction_id"
        if "silver.stg_fraud_cases" in present
        else "left join (select cast(null as varchar) as transaction_id) fc on false"
    )
    return f"""
        select f.*,
               case when f.location_key <> '-1' then f.location_key else coalesce(h.location_key, '-1') end
                   as activity_location_key,
               a.transaction_id is not null as has_alert,
               fc.transaction_id is not null as is_confirmed_fraud
        from {FACT} f
        left join (select customer_key, location_key from gold.dim_customers where is_current) h
            on h.customer_key = f.customer_key
        {alerts}
        {cases}
        where {where}"""


_GEO_MEASURES = """
    count(*) as transactions,
    sum(case when t.status = 'Success' then t.amount_idr else 0 end) as value_idr,
    sum(case when t.anomaly_count > 0 then 1 else 0 end) as anomalous,
    sum(case when t.has_alert then 1 else 0 end) as alerts,
    sum(case when t.is_confirmed_fraud then 1 else 0 end) as confirmed_fraud,
    count(distinct t.account_key) as accounts
"""


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def geography(_settings: Settings, src: Source, flt: Filters) -> pd.DataFrame | None:
    """Activity per province and city with coordinates (placed like mart_geo_activity), filtered."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or not {FACT, "gold.dim_locations", "gold.dim_customers"} <= present:
            return None
        where, params = flt.transactions("f")
        df = frame(
            wh,
            f"""with t as ({_placed_sql(where, present)})
                select l.province, l.city_name as city, avg(l.latitude) as latitude,
                       avg(l.longitude) as longitude, {_GEO_MEASURES}
                from t join gold.dim_locations l on l.location_key = t.activity_location_key
                group by all""",
            params,
        )
    return _rates(df)


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def province_trend(_settings: Settings, src: Source, flt: Filters, province: str) -> pd.DataFrame | None:
    """Daily activity of one province (the drill-down), filtered."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or not {FACT, "gold.dim_locations", "gold.dim_customers"} <= present:
            return None
        where, params = flt.transactions("f")
        df = frame(
            wh,
            f"""with t as ({_placed_sql(where, present)})
                select t.transaction_date, {_GEO_MEASURES}
                from t join gold.dim_locations l on l.location_key = t.activity_location_key
                where l.province = ?
                group by all order by 1""",
            [*params, province],
        )
    return _rates(df)


def _rates(df: pd.DataFrame) -> pd.DataFrame:
    n = df["transactions"].where(df["transactions"] > 0)
    return df.assign(
        anomaly_rate=df["anomalous"] / n,
        alert_rate=df["alerts"] / n,
        fraud_rate=df["confirmed_fraud"] / n,
    )


# --- risk and fraud ---------------------------------------------------------------------------------

FLAGS = (
    "is_amount_outlier",
    "is_velocity_burst",
    "is_night_large_transfer",
    "is_first_transfer_to_counterparty",
    "is_round_amount",
    "is_far_from_home",
)


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def risk(_settings: Settings, src: Source, flt: Filters, grain: Grain) -> dict[str, pd.DataFrame] | None:
    """Anomaly flags per period, fraud alerts with their transactions, and the riskiest accounts."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or FACT not in present:
            return None
        where, params = flt.transactions("f")
        flag_sums = ", ".join(f"sum(case when f.{c} then 1 else 0 end) as {c}" for c in FLAGS)
        flags = frame(
            wh,
            f"""select {_period(grain)} as period, count(*) as transactions, {flag_sums},
                       sum(case when f.anomaly_count > 0 then 1 else 0 end) as anomalous
                from {FACT} f where {where} group by all order by period""",
            params,
        )
        current = _current_alerts(present)
        has_alerts = current is not None
        alerts = (
            frame(
                wh,
                f"""select a.transaction_id, a.account_id, a.score, a.threshold, a.model_name, a.model_version,
                           a.raised_by, a.alerted_at, f.transaction_at, f.transaction_date, f.transaction_type,
                           f.status, f.channel, f.amount_idr, f.anomaly_count
                    from {current} a join {FACT} f on f.transaction_id = a.transaction_id
                    where {where}
                    qualify row_number() over (partition by a.transaction_id order by a.score desc) = 1
                    order by a.score desc, a.transaction_id""",
                params,
            )
            if has_alerts
            else None
        )
        alert_join = (
            f"left join (select transaction_id, max(score) as score from {current} group by 1) a"
            " on a.transaction_id = f.transaction_id"
            if has_alerts
            else "left join (select cast(null as varchar) as transaction_id, cast(null as double) as score) a on false"
        )
        high_risk = (
            "left join (select entity_key, is_high_risk from gold.mart_risk_indicators where entity_type = 'account')"
            " r on r.entity_key = f.account_key"
            if "gold.mart_risk_indicators" in present
            else "left join (select cast(null as varchar) as entity_key, cast(null as boolean) as is_high_risk) r"
            " on false"
        )
        accounts = frame(
            wh,
            f"""select f.account_key as account_id, any_value(f.customer_key) as customer_id,
                       count(*) as transactions,
                       sum(case when f.anomaly_count > 0 then 1 else 0 end) as anomalous,
                       avg(case when f.anomaly_count > 0 then 1.0 else 0.0 end) as anomaly_rate,
                       count(a.transaction_id) as alerts, max(a.score) as max_score,
                       sum(case when f.status = 'Success' then f.amount_idr else 0 end) as value_idr,
                       max(case when r.is_high_risk then 1 else 0 end) = 1 as is_high_risk
                from {FACT} f {alert_join} {high_risk}
                where {where} and f.account_key <> '-1'
                group by 1
                order by alerts desc, anomaly_rate desc, transactions desc, account_id
                limit 25""",
            params,
        )
    return {"flags": flags, "alerts": alerts, "accounts": accounts}


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def transaction_history(
    _settings: Settings, src: Source, transaction_id: str, days: int = 14
) -> dict[str, pd.DataFrame] | None:
    """One transaction and its account's transactions `days` either side of it (with alert scores)."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or FACT not in present:
            return None
        # A join, not a correlated subquery per row: the portable form of "its highest alert score".
        current = _current_alerts(present)
        scores = (
            f"left join (select transaction_id, max(score) as alert_score from {current} group by 1) a"
            " on a.transaction_id = f.transaction_id"
            if current
            else "left join (select cast(null as varchar) as transaction_id, cast(null as double) as alert_score) a"
            " on false"
        )
        flags = ", ".join(f"f.{c}" for c in FLAGS)
        anchor = frame(
            wh,
            f"""select f.transaction_id, f.account_id, f.transaction_at, f.transaction_date, f.transaction_type,
                       f.status, f.channel, f.currency, f.amount, f.amount_idr, f.amount_usd,
                       f.counterparty_account_id, f.location_id, f.anomaly_count, {flags}, a.alert_score
                from {FACT} f {scores} where f.transaction_id = ?""",
            [transaction_id],
        )
        if anchor.empty:
            return {"anchor": anchor, "history": anchor}
        history = frame(
            wh,
            f"""select f.transaction_id, f.transaction_at, f.transaction_type, f.status, f.channel, f.currency,
                       f.amount_idr, f.counterparty_account_id, f.anomaly_count, a.alert_score
                from {FACT} f {scores}
                where f.account_id = ? and f.transaction_date between ? and ?
                order by f.transaction_at""",
            [
                anchor["account_id"].iloc[0],
                (pd.Timestamp(anchor["transaction_date"].iloc[0]) - pd.Timedelta(days=days)).date(),
                (pd.Timestamp(anchor["transaction_date"].iloc[0]) + pd.Timedelta(days=days)).date(),
            ],
        )
    return {"anchor": anchor, "history": history}


# --- model ------------------------------------------------------------------------------------------


@keep_last
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def model_monitoring(_settings: Settings, src: Source, flt: Filters) -> dict[str, pd.DataFrame] | None:
    """Daily model metrics, and score bins (with matured fraud labels) for ROC/PR and distributions."""
    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or "gold.ml_model_metrics" not in present:
            return None
        dwhere, dparams = flt.dates("metric_date")
        metrics = frame(
            wh,
            f"select * from gold.ml_model_metrics where {dwhere} order by metric_date, model_name, model_version",
            dparams,
        )
        bins = None
        served = _served_scores(present)
        if served and FACT in present:
            where, params = flt.transactions("f")
            labels = (
                "left join (select distinct transaction_id from silver.stg_fraud_cases where is_confirmed_fraud) fc"
                " on fc.transaction_id = s.transaction_id"
                if "silver.stg_fraud_cases" in present
                else "left join (select cast(null as varchar) as transaction_id) fc on false"
            )
            in_sample = "coalesce(m.is_in_sample, false)" if "is_in_sample" in set(metrics.columns) else "false"
            # Binned in SQL: a million scores stay in the warehouse, a thousand bins come back. Each
            # version's served scores, as monitoring evaluates them (no rescored rows).
            bins = frame(
                wh,
                f"""select s.model_name, s.model_version, m.target,
                           least(floor(s.score * {SCORE_BINS}), {SCORE_BINS - 1}) / {SCORE_BINS} as score_bin,
                           coalesce(m.labels_matured, false) as labels_matured,
                           {in_sample} as is_in_sample,
                           count(*) as transactions,
                           sum(case when fc.transaction_id is not null then 1 else 0 end) as positives
                    from {served} s
                    join {FACT} f on f.transaction_id = s.transaction_id
                    left join gold.ml_model_metrics m
                        on m.model_name = s.model_name and m.model_version = s.model_version
                       and m.metric_date = f.transaction_date
                    {labels}
                    where {where}
                    group by all""",
                params,
            )
    return {"metrics": metrics, "bins": bins if bins is not None else pd.DataFrame()}


@dataclass(frozen=True)
class Registry:
    """Model versions read from the MLflow registry, or why they could not be read."""

    versions: pd.DataFrame | None
    reason: str | None = None


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    return Path(unquote(uri[len("sqlite:///") :]))


_warmed = threading.Event()


def warm_registry(uri: str) -> None:
    """Import MLflow and open its store in a background thread, once per server process.

    Both take seconds the first time (the import, then the store's engine and schema check);
    started when the app starts, they are done by the time a viewer opens the Model page.
    """
    if _warmed.is_set():
        return
    _warmed.set()

    def load() -> None:
        try:
            from mlflow import MlflowClient
        except ImportError:  # the Model page says MLflow is missing
            return
        db = _sqlite_path(uri)
        if db is not None and not db.exists():
            return  # opening it would create it
        try:
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models(max_results=1)
        except Exception as exc:  # only a warm-up: the Model page reports a registry it cannot read
            log.debug("registry warm-up failed: %s", exc)

    threading.Thread(target=load, name="bankpipe-mlflow-warmup", daemon=True).start()


def registry(src: Source) -> Registry:
    """Every registered version with its aliases, tags and training-run metrics (through MLflow)."""
    # Keyed by the registry's own version: new warehouse data does not make the registry stale.
    return _registry(src.mlflow_uri, src.mlflow_version)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _registry(uri: str, version: int) -> Registry:
    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        # Opening a missing SQLite registry would create it: a read-only dashboard must not.
        return Registry(None, "no model registry yet — run `bankpipe ml train`")
    try:
        from mlflow import MlflowClient
    except ImportError:
        return Registry(None, "MLflow is not installed here, so registry versions cannot be shown")
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        rows = []
        for model in client.search_registered_models():
            aliases: dict[str, list[str]] = {}
            for alias, version in (model.aliases or {}).items():
                aliases.setdefault(str(version), []).append(alias)
            for mv in client.search_model_versions(f"name = '{model.name}'"):
                run_metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
                tags = dict(mv.tags or {})
                rows.append(
                    {
                        "model_name": model.name,
                        "version": str(mv.version),
                        "aliases": ", ".join(sorted(aliases.get(str(mv.version), []))),
                        "created_at": pd.to_datetime(mv.creation_timestamp, unit="ms", utc=True),
                        "target": tags.get("target"),
                        "promoted": tags.get("promoted"),
                        "primary_metric": tags.get("primary_metric"),
                        "threshold": pd.to_numeric(tags.get("threshold"), errors="coerce"),
                        "test_window": tags.get("test_window"),
                        "feature_version": tags.get("feature_version"),
                        "metrics": dict(run_metrics),
                    }
                )
    except Exception as exc:  # a registry we cannot read is shown as such, never as a crash
        log.warning("cannot read the model registry at %s: %s", uri, exc)
        # Shown on the page: an MLflow server's database URI in the error may carry its password.
        first = redact(str(exc)).splitlines()[0] if str(exc) else ""
        return Registry(None, f"cannot read the model registry: {type(exc).__name__}: {first}")
    if not rows:
        return Registry(None, "no model registered yet — run `bankpipe ml train`")
    df = pd.DataFrame(rows).sort_values(["model_name", "created_at"], ascending=[True, False]).reset_index(drop=True)
    return Registry(df)


# --- data quality -----------------------------------------------------------------------------------


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def data_quality(_settings: Settings, src: Source) -> dict[str, Any] | None:
    """Freshness per source, rejected files and records, reconciliation, stored test failures, runs."""
    from bankpipe import ops

    with _open(_settings) as wh:
        present = tables(wh) if wh is not None else set()
        if wh is None or not {"ops.run_log", "ops.rejected_files", "ops.ingested_files"} <= present:
            return None
        status = ops.status(wh)
        out: dict[str, Any] = {"status": status}
        out["rejected_files"] = frame(
            wh,
            """select rejected_at, file_name, reason, size_bytes, quarantine_path, batch_id
               from ops.rejected_files order by rejected_at desc limit 500""",
        )
        # Stream files not loaded whole: open partial files (from ops.status) and rejected lines.
        out["partial_files"] = pd.DataFrame(
            status["partial_files"], columns=["file_name", "detail", "size_bytes", "recorded_at"]
        )
        if "ops.rejected_lines" in present:
            out["rejected_lines"] = frame(
                wh,
                """select rejected_at, file_name, line_number, byte_offset, reason, raw_line, line_bytes, batch_id
                   from ops.rejected_lines order by rejected_at desc, file_name, line_number limit 500""",
            )
        rows = wh.ident("rows")  # ROWS is a reserved word in Snowflake
        out["ingested"] = frame(
            wh,
            f"""select cast(ingested_at as date) as day, status, count(*) as files, sum({rows}) as {rows}
               from ops.ingested_files group by all order by day""",
        )
        out["runs"] = frame(
            wh,
            """select step, status, started_at, ended_at, datediff('second', started_at, ended_at) as seconds,
                      rows_in, rows_out, error
               from ops.run_log order by started_at desc limit 50""",
        )
        if "silver.rejected_records" in present:
            out["rejects_by_rule"] = frame(
                wh,
                """select entity, rule, any_value(rule_description) as rule_description, count(*) as records,
                          sum(control_amount) as control_amount
                   from silver.rejected_records group by all order by records desc, entity, rule""",
            )
            out["rejects_sample"] = frame(
                wh,
                """select loaded_at, entity, record_key, rule, source, batch_id,
                          cast(raw_record as varchar) as raw_record
                   from silver.rejected_records order by loaded_at desc, entity, record_key limit 200""",
            )
        if "audit.reconciliation_transactions" in present:
            out["reconciliation"] = frame(wh, "select * from audit.reconciliation_transactions order by currency")
        tests = sorted(t for t in present if t.startswith("audit.") and t != "audit.reconciliation_transactions")
        if tests:
            counts = [
                (t.split(".", 1)[1], _scalar(wh, f"select count(*) from audit.{wh.ident(t.split('.', 1)[1])}"))
                for t in tests
            ]
            out["tests"] = pd.DataFrame(counts, columns=["test", "failing_rows"])
    return out
