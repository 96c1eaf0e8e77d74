"""The one feature definition: DuckDB SQL over silver (plus the not-yet-transformed bronze tail).

Training, batch scoring and real-time scoring all call `compute()` with a different `where`
predicate choosing the target transactions; the SQL is the same, so there is no train/serve skew.
On Snowflake the same SQL is translated (`to_snowflake()`: sqlglot plus a few explicit rewrites)
and runs in the warehouse too; only the targets' feature rows come back.

Point in time: every window looks at `[t - window, t - 1 s]` of the transaction's own time `t`
(the source's clock has one-second resolution, so a transaction in the same second is neither
earlier nor later and is never seen). Fraud cases and master data count from `known_from` — when
bankpipe could have used them, max(source time, load), the initial backfill from its source time
(dbt/macros/point_in_time.sql) — in the version in force then (dbt's version views). Silver's
typing rules, the versions and `known_from` are dbt's; this module holds only the features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bankpipe.errors import BankpipeError
from bankpipe.warehouse import Warehouse

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlglot import exp

log = logging.getLogger(__name__)

# Bump when a feature changes meaning; stored with every model version, checked before scoring.
FEATURE_VERSION = "6"

WINDOWS_S: dict[str, int] = {"1h": 3_600, "1d": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
# The handbook's customer-spending and terminal-risk windows (days).
DAY_WINDOWS: dict[str, int] = {"1d": 1, "7d": 7, "30d": 30}
LOOKBACK_S = max(WINDOWS_S.values())
# Label maturity (days): the "matured" risk windows end this long before t, so every label in them
# has had time to arrive — the handbook's delay period and the literature's usual week. A design
# choice, not fitted to any data; a window ending at t is mostly unlabelled when reports take days.
# Only the fraud share is shifted: traffic is known at once, so the matured traffic is the share's
# denominator, not a feature (counterparty_txn_* already carry the traffic up to t).
LABEL_MATURITY_DAYS = 7
# How far back the counterparty and point traffic must reach: the longest matured window.
MATURED_LOOKBACK_DAYS = max(DAY_WINDOWS.values()) + LABEL_MATURITY_DAYS
NIGHT_HOURS = (0, 5)  # [start, end) local time, as the generator and the anomaly flags use
FAR_FROM_HOME_KM = 500.0

CATEGORICAL: tuple[str, ...] = (
    "transaction_type",
    "channel",
    "currency",
    "segment",
    "account_type",
    "hour_of_day",
    "day_of_week",
)
NUMERIC: tuple[str, ...] = (
    "log_amount_idr",
    *(f"log_amount_avg_{w}" for w in DAY_WINDOWS),
    *(f"log_amount_to_avg_{w}" for w in DAY_WINDOWS),
    "log_amount_to_balance",
    "log_balance_idr",
    "is_master_unknown",
    "is_weekend",
    "is_night",
    "is_foreign_currency",
    *(f"txn_count_{w}" for w in WINDOWS_S),
    *(f"log_amount_sum_{w}" for w in WINDOWS_S),
    "log_seconds_since_prev",
    "is_new_counterparty",
    "is_counterparty_internal",
    "is_interbank",
    "distance_from_home_km",
    "is_far_from_home",
    *(f"counterparty_txn_{w}" for w in DAY_WINDOWS),
    *(f"counterparty_risk_{w}" for w in DAY_WINDOWS),
    *(f"counterparty_matured_risk_{w}" for w in DAY_WINDOWS),
    "account_fraud_reports_30d",
    "location_fraud_reports_30d",
    "location_risk_30d",
    *(f"point_fraud_reports_{w}" for w in DAY_WINDOWS),
    *(f"point_risk_{w}" for w in DAY_WINDOWS),
    *(f"point_matured_risk_{w}" for w in DAY_WINDOWS),
)
# Decision point: fraud is scored at authorisation, before the bank's own outcome exists, so
# `status` (a blocked transaction ends Failed) is no input of either model. It stays in KEYS, so a
# one-off comparison "with status" can still add it.
EXTRA_FOR_FRAUD: tuple[str, ...] = ()
KEYS: tuple[str, ...] = ("transaction_id", "account_id", "transaction_at", "transaction_date", "status", "batch_id")

REQUIRED_SILVER = (
    "base_transactions",
    "base_transactions_tail",
    "stg_transactions",
    "int_account_versions",
    "int_customer_versions",
    "int_fraud_case_versions",
    "int_locations_geocoded",
    "int_exchange_rates",
)


def feature_columns(target: str) -> tuple[list[str], list[str]]:
    """(numeric, categorical) model inputs for a target (`fraud` or `status`)."""
    categorical = list(CATEGORICAL) + (list(EXTRA_FOR_FRAUD) if target == "fraud" else [])
    return list(NUMERIC), categorical


def check_silver(wh: Warehouse) -> None:
    """Raise a one-line error naming the silver relations that are missing."""
    # table_exists covers views too (stg_transactions is one)
    missing = [name for name in REQUIRED_SILVER if not wh.table_exists("silver", name)]
    if missing:
        raise BankpipeError(
            f"silver is not built yet (missing silver.{', silver.'.join(missing)}): run `bankpipe transform` first"
        )


_TXN_COLUMNS = (
    "transaction_id, account_id, counterparty_account_id, location_id, transaction_type, status, currency,"
    " channel, amount, transaction_date, transaction_at, batch_id, loaded_at"
)

# Transactions that bronze holds but dbt has not put in base_transactions yet (files landed since
# the last transform): dbt's view silver.base_transactions_tail types and checks them with
# base_transactions' own macro (dbt/macros/transactions.sql), so real time runs silver's rules, not
# a copy. Its valid rows go into a temp table per call, so the (usually small) tail is worked out
# once, not once per reference.
_TAIL = f"""
create or replace temp table _ml_tail as
select {_TXN_COLUMNS} from silver.base_transactions_tail where rejection_rule is null
"""


def prepare_tail(wh: Warehouse) -> int:
    """The bronze tail's valid rows (dbt's `base_transactions_tail`) in the temp table `_ml_tail`; its row count."""
    wh.execute(dialect_sql(wh, _TAIL))
    row = wh.fetchone("select count(*) from _ml_tail")
    return int(row[0]) if row else 0


# silver.stg_transactions is base_transactions' valid rows plus two account joins (orphan and
# internal-counterparty flags) that the features work out themselves; reading the base table
# directly skips those joins on every call, which is most of a real-time call's cost at 1M rows.
VALID_TRANSACTIONS = "silver.base_transactions where rejection_rule is null"


def transactions_sql() -> str:
    """Every known valid transaction: silver's valid base rows plus the typed bronze tail (`prepare_tail` first)."""
    return f"select {_TXN_COLUMNS} from {VALID_TRANSACTIONS}\nunion all\nselect {_TXN_COLUMNS} from _ml_tail"


def scope_sql() -> str:
    """`_ml_scope`: the targets' accounts from LOOKBACK before the earliest target up to the latest.

    These are all the rows any target's windows can reach, and nothing later; amounts are priced
    in IDR at the as-of rate and rounded to cents, as silver does, so window sums are exact decimals
    (the same digits in a batch of one file and in a backlog of millions).
    """
    return f"""
create or replace temp table _ml_scope as
with
rates as (select currency, rate_date, rate from silver.int_exchange_rates),
scope as (
    select t.transaction_id, t.account_id, t.currency, t.amount, t.transaction_date,
           cast(epoch(t.transaction_at) as bigint) as ts, g.transaction_id is not null as is_target
    from ({transactions_sql()}) as t
    left join _ml_targets as g on g.transaction_id = t.transaction_id
    where t.transaction_at >= $1 - interval {LOOKBACK_S} second and t.transaction_at <= $2
      and t.account_id in (select account_id from _ml_targets)
)
select
    scope.transaction_id, scope.account_id, scope.ts, scope.is_target,
    case
        when scope.currency = 'IDR' then scope.amount
        else cast(round(cast(scope.amount as decimal(24, 10)) * fx_idr.rate / fx_ccy.rate, 2) as decimal(18, 2))
    end as amount_idr
from scope
asof left join rates as fx_ccy
    on fx_ccy.currency = scope.currency and scope.transaction_date >= fx_ccy.rate_date
asof left join (select * from rates where currency = 'IDR') as fx_idr
    on scope.transaction_date >= fx_idr.rate_date
"""


def master_sql() -> str:
    """`_ml_master`: per target, its own account (`is_own`) and its counterparty as of the target's time.

    The versions come from dbt (`silver.int_account_versions`, `int_customer_versions`: views over
    bronze, so a change is seen as soon as it is loaded): the version in force at `t` is the one
    with `known_from <= t < known_until` — when bankpipe could use it, not only when the source
    says it changed. A transaction before an account's first known version finds none: the account's
    attributes are missing, never back-filled from a later version; only its holder (an immutable
    fact) links it to the customer's version in force from the account's opening on (known by the
    same rule as a version: `opened_known_from`).
    """
    return """
create or replace temp table _ml_master as
with

-- Each target's own account and its counterparty.
account_refs as (
    select transaction_id, transaction_at, account_id, true as is_own from _ml_targets
    union all
    select transaction_id, transaction_at, counterparty_account_id, false from _ml_targets
    where counterparty_account_id is not null
),

-- Who holds an account, and since when, are facts the source states once (customer_id, created_at)
-- and never changes: between the opening and the first known version they link the transaction to
-- its customer. The account's own attributes (type, balance) are known only from a version.
account_owner as (
    select account_id, customer_id, opened_known_from, known_from as first_known_from
    from silver.int_account_versions
    where account_id in (select account_id from account_refs)
    qualify row_number() over (partition by account_id order by known_from, valid_from) = 1
),

accounts_at as (
    select r.transaction_id, r.transaction_at, r.is_own, r.account_id,
           coalesce(a.customer_id, o.customer_id) as customer_id, a.account_type,
           cast(a.balance_idr as double) as balance_idr
    from account_refs as r
    left join silver.int_account_versions as a
        on a.account_id = r.account_id
       and a.known_from <= r.transaction_at and (a.known_until is null or r.transaction_at < a.known_until)
    left join account_owner as o
        on o.account_id = r.account_id and o.opened_known_from <= r.transaction_at
       and r.transaction_at < o.first_known_from
    where a.account_id is not null or o.account_id is not null
)

select a.transaction_id, a.is_own, a.account_id, a.account_type, a.balance_idr, c.segment, c.bank_id,
       c.customer_id is not null as is_customer_known,
       home.latitude as home_latitude, home.longitude as home_longitude
from accounts_at as a
left join silver.int_customer_versions as c
    on c.customer_id = a.customer_id
   and c.known_from <= a.transaction_at and (c.known_until is null or a.transaction_at < c.known_until)
left join silver.int_locations_geocoded as home on home.location_id = c.location_id
"""


def known_fraud_sql() -> str:
    """Confirmed fraud cases with the moment the bank could use each (`known_from`)."""
    return "select transaction_id, known_from, known_until from silver.int_fraud_case_versions where is_confirmed_fraud"


def counterparty_scope_sql() -> str:
    """`_ml_cp_scope`: transactions to the targets' counterparties from the longest matured window on.

    The counterparty account is the handbook's terminal: its recent traffic and the share of it
    known to be fraud mark a compromised (or mule) counterparty.
    """
    days = MATURED_LOOKBACK_DAYS
    return f"""
create or replace temp table _ml_cp_scope as
select t.transaction_id, t.counterparty_account_id, cast(epoch(t.transaction_at) as bigint) as ts,
       g.transaction_id is not null as is_target
from ({transactions_sql()}) as t
left join _ml_targets as g on g.transaction_id = t.transaction_id
where t.transaction_at >= $1 - interval {days} day and t.transaction_at <= $2
  and t.counterparty_account_id in (select counterparty_account_id from _ml_targets)
"""


def feature_sql() -> str:
    """The feature query over the temp tables `_ml_targets`, `_ml_scope`, `_ml_cp_scope`, `_ml_master` (`$1`, `$2`)."""
    night_lo, night_hi = NIGHT_HOURS
    max_days = max(DAY_WINDOWS.values())
    mature = LABEL_MATURITY_DAYS
    reach = MATURED_LOOKBACK_DAYS
    txn = f"({transactions_sql()})"
    windows = ",\n        ".join(
        f"w_{name} as (partition by account_id order by ts range between {seconds} preceding and 1 preceding)"
        for name, seconds in WINDOWS_S.items()
    )
    account_aggs = ",\n        ".join(
        f"count(*) over w_{w} as txn_count_{w},\n        coalesce(sum(amount_idr) over w_{w}, 0) as amount_sum_{w}"
        for w in WINDOWS_S
    )
    cp_windows = ",\n        ".join(
        f"count(*) over (partition by counterparty_account_id order by ts"
        f" range between {d * 86_400} preceding and 1 preceding) as cp_txn_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    # Matured: (t - maturity - w, t - maturity], whole seconds (the source's resolution).
    cp_windows += ",\n        " + ",\n        ".join(
        f"count(*) over (partition by counterparty_account_id order by ts"
        f" range between {(mature + d) * 86_400 - 1} preceding and {mature * 86_400} preceding) as cp_mtxn_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    cp_fraud = ",\n        ".join(
        [
            f"count(*) filter (where f.transaction_at >= g.transaction_at - interval {d} day"
            f" and f.transaction_at < g.transaction_at) as cp_fraud_{w}"
            for w, d in DAY_WINDOWS.items()
        ]
        + [
            f"count(*) filter (where f.transaction_at > g.transaction_at - interval {mature + d} day"
            f" and f.transaction_at <= g.transaction_at - interval {mature} day) as cp_mfraud_{w}"
            for w, d in DAY_WINDOWS.items()
        ]
    )
    # The point's matured windows in whole days, as its traffic: days [day - maturity - w, day - maturity - 1].
    point_mfraud = ",\n        ".join(
        f"count(*) filter (where r.transaction_date >= g.transaction_date - {mature + d}) as point_mfraud_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    point_reports = ",\n        ".join(
        f"count(*) filter (where r.channel = g.channel and r.known_from >= g.transaction_at - interval {d} day)"
        f" as point_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    point_traffic = ",\n           ".join(
        f"coalesce(sum(n) over (partition by location_id, channel order by day_no"
        f" range between {d} preceding and 1 preceding), 0) as point_txn_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    point_traffic += ",\n           " + ",\n           ".join(
        f"coalesce(sum(n) over (partition by location_id, channel order by day_no"
        f" range between {mature + d} preceding and {mature + 1} preceding), 0) as point_mtxn_{w}"
        for w, d in DAY_WINDOWS.items()
    )
    return f"""
with

-- Frames end 1 s before the transaction: same-second transactions are never "earlier".
account_windows as (
    select
        transaction_id,
        amount_idr,
        {account_aggs},
        ts - max(ts) over w_30d as seconds_since_prev
    from _ml_scope
    window
        {windows}
    qualify is_target
),

-- Traffic to each target's counterparty (the handbook's terminal), same frames.
counterparty_windows as (
    select
        transaction_id,
        {cp_windows}
    from _ml_cp_scope
    qualify is_target
),

-- Confirmed fraud counts only from the moment the bank could use it (the label delay).
known_fraud as (
    select f.known_from, f.known_until, t.transaction_id, t.transaction_at, t.transaction_date, t.account_id,
           t.counterparty_account_id, t.location_id, t.channel
    from (
        select transaction_id, known_from, known_until from ({known_fraud_sql()}) as k
        where known_from >= $1 - interval {reach} day and known_from < $2
          and (known_until is null or known_until >= $1)
    ) as f
    join {txn} as t on t.transaction_id = f.transaction_id
),

account_reports as (
    select g.transaction_id, count(*) as n
    from _ml_targets as g
    join known_fraud as r
        on r.account_id = g.account_id
       and r.known_from >= g.transaction_at - interval {LOOKBACK_S} second and r.known_from < g.transaction_at
       and (r.known_until is null or g.transaction_at <= r.known_until)
    group by g.transaction_id
),

-- Of the counterparty's transactions in a window before t, those known to be fraud by t.
counterparty_fraud as (
    select
        g.transaction_id,
        {cp_fraud}
    from _ml_targets as g
    join known_fraud as f
        on f.counterparty_account_id = g.counterparty_account_id
       and f.transaction_at > g.transaction_at - interval {reach} day and f.transaction_at < g.transaction_at
       and f.known_from < g.transaction_at and (f.known_until is null or g.transaction_at <= f.known_until)
    group by g.transaction_id
),

-- A "point" is a place and channel: the ATMs or EDC terminals of one city.
place_reports as (
    select
        g.transaction_id,
        count(*) as location_30d,
        {point_reports}
    from _ml_targets as g
    join known_fraud as r
        on r.location_id = g.location_id
       and r.known_from >= g.transaction_at - interval {LOOKBACK_S} second and r.known_from < g.transaction_at
       and (r.known_until is null or g.transaction_at <= r.known_until)
    group by g.transaction_id
),

-- Of the point's transactions on the whole days of a matured window, those known to be fraud by t.
point_matured_fraud as (
    select
        g.transaction_id,
        {point_mfraud}
    from _ml_targets as g
    join known_fraud as r
        on r.location_id = g.location_id and r.channel = g.channel
       and r.transaction_date >= g.transaction_date - {reach} and r.transaction_date < g.transaction_date - {mature}
       and r.known_from < g.transaction_at and (r.known_until is null or g.transaction_at <= r.known_until)
    group by g.transaction_id
),

-- Traffic at a place over the whole days before the transaction's day (whole days keep this cheap
-- for a whole backlog; only earlier days count, so it is still point in time).
place_days as (
    select location_id, channel, date_diff('day', date '1970-01-01', transaction_date) as day_no, count(*) as n
    from {txn}
    where transaction_date between cast($1 as date) - {reach} and cast($2 as date)
      and location_id in (select location_id from _ml_targets)
    group by all
),

point_traffic as (
    select location_id, channel, day_no,
           {point_traffic}
    from place_days
),

location_traffic as (
    select location_id, day_no,
           coalesce(sum(n) over (partition by location_id order by day_no
                                 range between {max_days} preceding and 1 preceding), 0) as location_txn_30d
    from (select location_id, day_no, sum(n) as n from place_days group by all)
),

-- First payment to a counterparty: no earlier transaction of the pair, over all history.
pair_first as (
    select t.account_id, t.counterparty_account_id, min(t.transaction_at) as first_at
    from {txn} as t
    semi join (select distinct account_id, counterparty_account_id from _ml_targets) as p
        on p.account_id = t.account_id and p.counterparty_account_id = t.counterparty_account_id
    group by all
),

joined as (
    select
        g.transaction_id, g.account_id, g.transaction_at, g.transaction_date, g.status, g.batch_id,
        g.transaction_type, g.channel, g.currency, g.counterparty_account_id,
        own.account_type, own.balance_idr, own.segment, not coalesce(own.is_customer_known, false) as is_master_unknown,
        own.bank_id is not null and cp.bank_id is not null and own.bank_id <> cp.bank_id as is_interbank,
        cp.account_id is not null as is_counterparty_internal,
        2 * 6371.0 * asin(sqrt(
            power(sin(radians(place.latitude - own.home_latitude) / 2), 2)
            + cos(radians(own.home_latitude)) * cos(radians(place.latitude))
              * power(sin(radians(place.longitude - own.home_longitude) / 2), 2)
        )) as distance_from_home_km,
        aw.* exclude (transaction_id),
        {", ".join(f"coalesce(cw.cp_txn_{w}, 0) as cp_txn_{w}" for w in DAY_WINDOWS)},
        {", ".join(f"coalesce(cf.cp_fraud_{w}, 0) as cp_fraud_{w}" for w in DAY_WINDOWS)},
        {", ".join(f"coalesce(cw.cp_mtxn_{w}, 0) as cp_mtxn_{w}" for w in DAY_WINDOWS)},
        {", ".join(f"coalesce(cf.cp_mfraud_{w}, 0) as cp_mfraud_{w}" for w in DAY_WINDOWS)},
        {", ".join(f"coalesce(pm.point_mfraud_{w}, 0) as point_mfraud_{w}" for w in DAY_WINDOWS)},
        coalesce(ar.n, 0) as account_fraud_reports_30d,
        coalesce(pr.location_30d, 0) as location_fraud_reports_30d,
        {", ".join(f"coalesce(pr.point_{w}, 0) as point_fraud_reports_{w}" for w in DAY_WINDOWS)},
        coalesce(lt.location_txn_30d, 0) as location_txn_30d,
        {", ".join(f"coalesce(pt.point_txn_{w}, 0) as point_txn_{w}" for w in DAY_WINDOWS)},
        {", ".join(f"coalesce(pt.point_mtxn_{w}, 0) as point_mtxn_{w}" for w in DAY_WINDOWS)},
        pf.first_at
    from _ml_targets as g
    join account_windows as aw on aw.transaction_id = g.transaction_id
    left join counterparty_windows as cw on cw.transaction_id = g.transaction_id
    left join counterparty_fraud as cf on cf.transaction_id = g.transaction_id
    left join account_reports as ar on ar.transaction_id = g.transaction_id
    left join place_reports as pr on pr.transaction_id = g.transaction_id
    left join point_matured_fraud as pm on pm.transaction_id = g.transaction_id
    left join location_traffic as lt
        on lt.location_id = g.location_id and lt.day_no = date_diff('day', date '1970-01-01', g.transaction_date)
    left join point_traffic as pt
        on pt.location_id = g.location_id and pt.channel = g.channel
       and pt.day_no = date_diff('day', date '1970-01-01', g.transaction_date)
    left join pair_first as pf
        on pf.account_id = g.account_id and pf.counterparty_account_id = g.counterparty_account_id
    left join _ml_master as own on own.transaction_id = g.transaction_id and own.is_own
    left join _ml_master as cp on cp.transaction_id = g.transaction_id and not cp.is_own
    left join silver.int_locations_geocoded as place on place.location_id = g.location_id
)

select
    transaction_id, account_id, transaction_at, transaction_date, status, batch_id,
    -- categorical
    transaction_type, channel, currency,
    coalesce(segment, 'Unknown') as segment,
    coalesce(account_type, 'Unknown') as account_type,
    cast(extract(hour from transaction_at) as varchar) as hour_of_day,
    cast(isodow(transaction_at) as varchar) as day_of_week,
    -- numeric (logs tame the heavy-tailed money amounts for a linear model)
    ln(1 + cast(amount_idr as double)) as log_amount_idr,
    {", ".join(f"ln(1 + amount_sum_{w} / nullif(txn_count_{w}, 0)) as log_amount_avg_{w}" for w in DAY_WINDOWS)},
    {
        ", ".join(
            f"ln(1 + amount_idr / nullif(amount_sum_{w} / nullif(txn_count_{w}, 0), 0)) as log_amount_to_avg_{w}"
            for w in DAY_WINDOWS
        )
    },
    ln(1 + amount_idr / nullif(balance_idr, 0)) as log_amount_to_balance,
    -- an unknown balance stays missing (DuckDB's greatest would make it 0)
    case when balance_idr is not null then ln(1 + greatest(balance_idr, 0)) end as log_balance_idr,
    cast(is_master_unknown as int) as is_master_unknown,
    cast(isodow(transaction_at) >= 6 as int) as is_weekend,
    cast(extract(hour from transaction_at) >= {night_lo} and extract(hour from transaction_at) < {night_hi} as int)
        as is_night,
    cast(currency <> 'IDR' as int) as is_foreign_currency,
    {", ".join(f"txn_count_{w}" for w in WINDOWS_S)},
    {", ".join(f"ln(1 + cast(amount_sum_{w} as double)) as log_amount_sum_{w}" for w in WINDOWS_S)},
    ln(1 + coalesce(seconds_since_prev, {LOOKBACK_S})) as log_seconds_since_prev,
    cast(counterparty_account_id is not null and first_at >= transaction_at as int) as is_new_counterparty,
    cast(is_counterparty_internal as int) as is_counterparty_internal,
    cast(coalesce(is_interbank, false) as int) as is_interbank,
    distance_from_home_km,
    cast(coalesce(distance_from_home_km > {FAR_FROM_HOME_KM}, false) as int) as is_far_from_home,
    {", ".join(f"cp_txn_{w} as counterparty_txn_{w}" for w in DAY_WINDOWS)},
    {", ".join(f"cp_fraud_{w} / greatest(cp_txn_{w}, 1) as counterparty_risk_{w}" for w in DAY_WINDOWS)},
    account_fraud_reports_30d,
    location_fraud_reports_30d,
    location_fraud_reports_30d / greatest(location_txn_30d, 1) as location_risk_30d,
    {", ".join(f"point_fraud_reports_{w}" for w in DAY_WINDOWS)},
    {", ".join(f"point_fraud_reports_{w} / greatest(point_txn_{w}, 1) as point_risk_{w}" for w in DAY_WINDOWS)},
    {", ".join(f"cp_mfraud_{w} / greatest(cp_mtxn_{w}, 1) as counterparty_matured_risk_{w}" for w in DAY_WINDOWS)},
    {", ".join(f"point_mfraud_{w} / greatest(point_mtxn_{w}, 1) as point_matured_risk_{w}" for w in DAY_WINDOWS)}
from joined
order by transaction_at, transaction_id
"""


def compute(wh: Warehouse, where: str, params: Sequence[Any] | None = None, *, new_only: bool = False) -> pd.DataFrame:
    """Features of the transactions matching `where` (a predicate over transaction columns), ordered by time.

    `new_only` looks for the targets among the not-yet-transformed bronze tail only (a freshly
    landed file), which spares a scan of silver; the features themselves are the same.

    Every statement runs in the warehouse (temp tables, then the feature query); only the feature
    rows of the targets come back. On Snowflake the DuckDB SQL is translated by `dialect_sql()`.
    """
    check_silver(wh)
    _quiet(wh)
    prepare_tail(wh)
    source = "_ml_tail" if new_only else f"({transactions_sql()})"
    wh.execute(
        dialect_sql(wh, f"create or replace temp table _ml_targets as select * from {source} where {where}"), params
    )
    try:
        row = wh.fetchone("select min(transaction_at), max(transaction_at) from _ml_targets")
        lo, hi = row if row and row[0] is not None else (_EPOCH, _EPOCH)  # no targets: any bound will do
        # The two bounds go in as literals: Snowflake's qmark binding has no numbered parameters,
        # and DuckDB pushes a constant into the scan.
        wh.execute(dialect_sql(wh, _inline_bounds(scope_sql(), lo, hi)))
        wh.execute(dialect_sql(wh, _inline_bounds(counterparty_scope_sql(), lo, hi)))
        wh.execute(dialect_sql(wh, master_sql()))
        return fetch_df(wh, _inline_bounds(feature_sql(), lo, hi))
    finally:
        wh.execute("drop table if exists _ml_master")
        wh.execute("drop table if exists _ml_scope")
        wh.execute("drop table if exists _ml_cp_scope")
        wh.execute("drop table if exists _ml_targets")
        wh.execute("drop table if exists _ml_tail")


_EPOCH = datetime(1970, 1, 1)


def _inline_bounds(sql: str, lo: datetime, hi: datetime) -> str:
    """The SQL with `$1`/`$2` replaced by timestamp literals (microseconds kept)."""
    for n, value in ((2, hi), (1, lo)):
        sql = sql.replace(f"${n}", f"cast('{value.isoformat(sep=' ')}' as timestamp)")
    return sql


def _quiet(wh: Warehouse) -> None:
    # DuckDB draws its own progress bar on the terminal for long queries; progress is ours to report.
    if wh.dialect == "duckdb":
        wh.execute("set enable_progress_bar = false")


def fetch_df(wh: Warehouse, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    """Run a query (DuckDB dialect) and return a DataFrame (Arrow-backed transfer, no row-by-row Python)."""
    con = getattr(wh, "con", None)
    if wh.dialect == "duckdb" and con is not None:
        # DuckDB's own DataFrame transfer keeps dates and timestamps as datetime64.
        return con.execute(sql, params).df()
    return _frame(wh.fetch_arrow(dialect_sql(wh, sql), params))


def _frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as DuckDB's `.df()` would give it: numbers as int64/float64, dates as datetime64.

    Snowflake's NUMBER arrives as Arrow decimals (object columns in pandas, which scikit-learn and
    the masks in training would not treat as numbers); the DuckDB path never sees them.
    """
    import pyarrow as pa

    columns = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_decimal(field.type):
            col = col.cast(pa.int64() if field.type.scale == 0 else pa.float64())
        columns.append(col)
    return pa.table(columns, names=table.column_names).to_pandas(date_as_object=False)


# --- Snowflake ------------------------------------------------------------------------------------
# The DuckDB SQL above stays the one definition; sqlglot translates it (windows inlined, semi joins
# as EXISTS, FILTER as COUNT_IF, GREATEST's null rule kept) and `to_snowflake` rewrites what it
# leaves in DuckDB's words, so training and scoring see the same features on either warehouse.
# sqlglot is imported where it is used: it comes with the `snowflake` extra, which DuckDB-only
# installs do not have.

# Snowflake has no infinite timestamps; nothing in the bank's data is older than this.
_SNOWFLAKE_MIN_TS = "0001-01-01 00:00:00"


def dialect_sql(wh: Warehouse, sql: str) -> str:
    """One DuckDB statement as this warehouse runs it (unchanged on DuckDB)."""
    if wh.dialect == "duckdb":
        return sql
    return to_snowflake(sql, emulator=bool(getattr(wh, "is_emulator", False)))


def to_snowflake(sql: str, *, emulator: bool = False) -> str:
    """Translate one DuckDB statement to Snowflake SQL.

    `emulator` (fakesnow, which cannot parse `ASOF JOIN … MATCH_CONDITION`) writes as-of joins as
    an ordinary join on the interval to the next version, as dbt/macros/asof_join.sql does; it
    gives the same rows when the right side has one row per key and time, as all of them here do.
    """
    import sqlglot
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Cast) and node.this.is_string and node.this.name in ("-infinity", "infinity"):
            if node.this.name == "infinity":
                raise BankpipeError("internal: +infinity has no Snowflake equivalent")
            return exp.Cast(this=exp.Literal.string(_SNOWFLAKE_MIN_TS), to=node.args["to"])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone":
            # DuckDB's timezone(zone, timestamptz) is the wall-clock time there, without a zone.
            zone, ts = node.expressions
            converted = exp.Anonymous(this="CONVERT_TIMEZONE", expressions=[zone, ts])
            return exp.Cast(this=converted, to=exp.DataType.build("TIMESTAMP_NTZ", dialect="snowflake"))
        if isinstance(node, exp.Div) and not _is_double(node.this):
            # DuckDB divides integers and decimals in DOUBLE; Snowflake keeps NUMBER with a few
            # decimals (1/3 = 0.333333), which would change every ratio feature.
            node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("DOUBLE")))
            return node
        if isinstance(node, exp.Identifier) and node.quoted and node.name != node.name.upper():
            # Snowflake stores unquoted names upper-case; DuckDB's quoted "date" means DATE there.
            return exp.Identifier(this=node.name.upper(), quoted=True)
        if isinstance(node, exp.Join) and str(node.args.get("method") or "").upper() == "ASOF":
            return _asof_portable(node) if emulator else _asof_native(node)
        return node

    tree = sqlglot.parse_one(sql, read="duckdb")
    # Children before their parents (sqlglot's transform() would skip the insides of a replaced
    # node), so a rewritten node always carries rewritten children.
    for node in reversed(list(tree.walk())):
        new = rewrite(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    # sqlglot moves comments about; the DuckDB source is where they are read.
    return tree.sql(dialect="snowflake", comments=False)


def _is_double(node: exp.Expression) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Cast) and node.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)


def _asof_parts(join: exp.Join) -> tuple[exp.GTE, list[exp.Expression], str]:
    """(the `left_time >= right.time` comparison, the equality conditions, the right side's alias)."""
    from sqlglot import exp

    alias = join.this.alias_or_name
    conditions = list(join.args["on"].flatten()) if isinstance(join.args["on"], exp.And) else [join.args["on"]]
    match = [c for c in conditions if isinstance(c, exp.GTE)]
    if len(match) != 1 or not isinstance(match[0].expression, exp.Column) or match[0].expression.table != alias:
        raise BankpipeError(f"internal: as-of join on {alias} needs one `left_time >= {alias}.time` condition")
    return match[0], [c for c in conditions if c is not match[0]], alias


def _asof_native(join: exp.Join) -> exp.Join:
    """Snowflake's `ASOF JOIN … MATCH_CONDITION (…) ON …`.

    Snowflake's as-of join keeps unmatched left rows (null-padded) like DuckDB's ASOF LEFT JOIN;
    the one inner as-of join here (accounts_at) filters on a right-side column right after, which
    drops those rows as DuckDB's inner join does.
    """
    from sqlglot import exp

    match, equal, _ = _asof_parts(join)
    out = exp.Join(this=join.this.copy(), method="ASOF", match_condition=match.copy())
    if equal:
        out.set("on", exp.and_(*[c.copy() for c in equal]))
    return out


def _asof_portable(join: exp.Join) -> exp.Join:
    """The as-of join as a range join to each right row's successor (exact for unique key + time)."""
    from sqlglot import exp

    match, equal, alias = _asof_parts(join)
    right_time = match.expression.name
    by = [c.this if c.this.table == alias else c.expression for c in equal if isinstance(c, exp.EQ)]
    if len(by) != len(equal) or any(not isinstance(b, exp.Column) or b.table != alias for b in by):
        raise BankpipeError(f"internal: as-of join on {alias}: only `key = {alias}.key` conditions can be rewritten")
    partition = f"partition by _asof.{', _asof.'.join(b.name for b in by)} " if by else ""
    wrapper = _parse(
        f"select * from (select _asof.*, lead(_asof.{right_time}) over ({partition}order by _asof.{right_time})"
        f" as _asof_next from _asof_source as _asof) as {alias}"
    )
    # The right side goes in as it is (already translated), not through text again.
    source = join.this.copy()
    source.set("alias", exp.TableAlias(this=exp.to_identifier("_asof")))
    next(t for t in wrapper.find_all(exp.Table) if t.name == "_asof_source").replace(source)
    condition = exp.and_(
        *[c.copy() for c in equal],
        match.copy(),
        _parse(f"({alias}._asof_next is null or {match.this.sql(dialect='duckdb')} < {alias}._asof_next)"),
    )
    out = exp.Join(this=wrapper.args["from_"].this, on=condition)
    if join.side:
        out.set("side", join.side)
    return out


def _parse(sql: str) -> exp.Expression:
    """A DuckDB expression or statement as a sqlglot tree."""
    import sqlglot

    return sqlglot.parse_one(sql, read="duckdb")


def fraud_labels_sql() -> str:
    """Every confirmed-fraud version of a case with the interval it is in force (`known_from`, `known_until`).

    The one label definition (dbt's `int_fraud_case_versions`, as the features' fraud counts): a
    transaction is known fraud at a time `c` when one of its rows has `known_from < c <= known_until`
    (null = still in force) — see `fraud_known_at`. `reported_at` is `known_from`, for callers that
    still take the earliest one. `in_force_now` is `known_until is null` worked out in the warehouse:
    the Snowflake emulator's Arrow transfer turns an all-null timestamp column into 1970-01-01.
    """
    return (
        "select transaction_id, known_from as reported_at, known_from, known_until,"
        " known_until is null as in_force_now"
        " from silver.int_fraud_case_versions where is_confirmed_fraud"
    )


def fraud_known_at(labels: pd.DataFrame, when: datetime | None = None) -> set[str]:
    """The transactions known to be fraud just before `when` (None: now) from `fraud_labels_sql()` rows."""
    import pandas as pd

    still = labels["in_force_now"].astype(bool) if "in_force_now" in labels else labels["known_until"].isna()
    if when is None:
        in_force = still
    else:
        at = pd.Timestamp(when)
        in_force = (labels["known_from"] < at) & (still | (at <= labels["known_until"]))
    return set(labels.loc[in_force, "transaction_id"])
