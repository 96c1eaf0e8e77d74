{#- Per-transaction anomaly flags, point-in-time correct: each transaction is compared only with
    the account's EARLIER transactions (and the master data known when it was processed).
    Incremental: a run reads the new transactions plus each touched account's running totals
    (one row per account from this table) and the last velocity window, never the full history. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

with

new_transactions as (

    select * from {{ ref('stg_transactions') }}
    {% if is_incremental() %}
    where loaded_at > {{ bankpipe.loaded_watermark() }}
    {% endif %}

),

rates as (

    select * from {{ ref('int_exchange_rates') }}

),

idr_rates as (

    select * from rates where currency = 'IDR'

),

priced as (

    select
        t.*,
        {{ bankpipe.amount_idr('t') }} as amount_idr
    from new_transactions as t
    {{ bankpipe.fx_asof_joins('t', 'rates', 'idr_rates') }}

),

{% if is_incremental() %}
-- Each touched account's totals after its last processed transaction.
prior_state as (

    select
        account_id,
        max(account_transaction_seq) as last_seq,
        max(transaction_at) as last_transaction_at,
        max_by(prior_amount_n + case when amount_idr is null then 0 else 1 end, account_transaction_seq) as amount_n,
        max_by(prior_amount_sum + coalesce(cast(amount_idr as double), 0), account_transaction_seq) as amount_sum,
        max_by(prior_amount_sumsq + coalesce(cast(amount_idr as double) * cast(amount_idr as double), 0), account_transaction_seq)
            as amount_sumsq
    from {{ this }}
    where account_id in (select account_id from new_transactions)
    group by account_id

),

-- Earlier transactions that can still fall inside a new one's velocity window.
recent_history as (

    select account_id, transaction_id, transaction_at
    from {{ this }}
    where account_id in (select account_id from new_transactions)
      and {{ bankpipe.epoch_seconds('transaction_at') }}
          >= (select min({{ bankpipe.epoch_seconds('transaction_at') }}) from new_transactions) - {{ var('velocity_window_s') }}

),
{% endif %}

running as (

    select
        p.*,
        {% if is_incremental() %}
        coalesce(s.last_seq, 0) as base_seq,
        coalesce(s.amount_n, 0) as base_n,
        coalesce(s.amount_sum, 0) as base_sum,
        coalesce(s.amount_sumsq, 0) as base_sumsq,
        coalesce(p.transaction_at < s.last_transaction_at, false) as is_late_arrival,
        {% else %}
        0 as base_seq,
        0 as base_n,
        cast(0 as double) as base_sum,
        cast(0 as double) as base_sumsq,
        false as is_late_arrival,
        {% endif %}
        row_number() over (partition by p.account_id order by p.transaction_at, p.transaction_id) as batch_seq,
        count(p.amount_idr) over (
            partition by p.account_id order by p.transaction_at, p.transaction_id
            rows between unbounded preceding and 1 preceding
        ) as batch_prior_n,
        sum(cast(p.amount_idr as double)) over (
            partition by p.account_id order by p.transaction_at, p.transaction_id
            rows between unbounded preceding and 1 preceding
        ) as batch_prior_sum,
        sum(cast(p.amount_idr as double) * cast(p.amount_idr as double)) over (
            partition by p.account_id order by p.transaction_at, p.transaction_id
            rows between unbounded preceding and 1 preceding
        ) as batch_prior_sumsq,
        row_number() over (
            partition by p.account_id, p.counterparty_account_id, p.transaction_type
            order by p.transaction_at, p.transaction_id
        ) as pair_seq
    from priced as p
    {% if is_incremental() %}
    left join prior_state as s on s.account_id = p.account_id
    {% endif %}

),

-- Velocity: the account's other transactions in the window up to this one. Transactions in the
-- same second count as simultaneous, not as later (the source's clock has one-second resolution).
velocity_input as (

    select account_id, transaction_id, transaction_at, true as is_new from running
    {% if is_incremental() %}
    union all
    select account_id, transaction_id, transaction_at, false as is_new from recent_history
    {% endif %}

),

velocity as (

    select transaction_id, window_count - 1 as transactions_in_window
    from (
        select
            transaction_id,
            is_new,
            count(*) over (
                partition by account_id order by {{ bankpipe.epoch_seconds('transaction_at') }}
                range between {{ var('velocity_window_s') }} preceding and current row
            ) as window_count
        from velocity_input
    ) as counted
    where is_new

),

home as (

    select
        accounts.account_id,
        home_location.latitude as home_latitude,
        home_location.longitude as home_longitude
    from {{ ref('stg_accounts') }} as accounts
    inner join {{ ref('stg_customers') }} as customers on customers.customer_id = accounts.customer_id
    inner join {{ ref('int_locations_geocoded') }} as home_location on home_location.location_id = customers.location_id

),

stats as (

    select
        running.*,
        velocity.transactions_in_window,
        base_seq + batch_seq as account_transaction_seq,
        base_n + batch_prior_n as prior_amount_n,
        base_sum + coalesce(batch_prior_sum, 0) as prior_amount_sum,
        base_sumsq + coalesce(batch_prior_sumsq, 0) as prior_amount_sumsq,
        {{ bankpipe.haversine_km('home.home_latitude', 'home.home_longitude', 'place.latitude', 'place.longitude') }}
            as distance_from_home_km
    from running
    inner join velocity on velocity.transaction_id = running.transaction_id
    left join home on home.account_id = running.account_id
    left join {{ ref('int_locations_geocoded') }} as place on place.location_id = running.location_id

),

scored as (

    select
        stats.*,
        case when prior_amount_n > 0 then prior_amount_sum / prior_amount_n end as prior_amount_mean,
        case when prior_amount_n > 1 then sqrt(greatest(
            (prior_amount_sumsq - prior_amount_sum * prior_amount_sum / prior_amount_n) / (prior_amount_n - 1), 0
        )) end as prior_amount_stddev
    from stats

)

select
    ---------- ids
    transaction_id,
    account_id,
    counterparty_account_id,

    ---------- strings
    transaction_type,

    ---------- numerics
    amount_idr,
    account_transaction_seq,
    prior_amount_n,
    prior_amount_sum,
    prior_amount_sumsq,
    prior_amount_mean,
    prior_amount_stddev,
    case
        when prior_amount_n >= {{ var('anomaly_min_history') }} and prior_amount_stddev > 0
        then (cast(amount_idr as double) - prior_amount_mean) / prior_amount_stddev
    end as amount_zscore,
    transactions_in_window,
    distance_from_home_km,

    ---------- booleans
    coalesce(
        prior_amount_n >= {{ var('anomaly_min_history') }} and prior_amount_stddev > 0
        and abs(cast(amount_idr as double) - prior_amount_mean) > {{ var('anomaly_zscore') }} * prior_amount_stddev,
        false
    ) as is_amount_outlier,
    transactions_in_window >= {{ var('velocity_max_count') }} as is_velocity_burst,
    coalesce(
        transaction_type = 'Transfer'
        and extract(hour from transaction_at) >= {{ var('night_start_hour') }}
        and extract(hour from transaction_at) < {{ var('night_end_hour') }}
        and amount_idr >= {{ var('large_transfer_idr') }},
        false
    ) as is_night_large_transfer,
    coalesce(
        transaction_type = 'Transfer' and counterparty_account_id is not null and pair_seq = 1
        {% if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as earlier
            where earlier.account_id = scored.account_id
              and earlier.counterparty_account_id = scored.counterparty_account_id
              and earlier.transaction_type = 'Transfer'
        )
        {% endif %},
        false
    ) as is_first_transfer_to_counterparty,
    coalesce(
        amount_idr >= {{ var('round_amount_idr') }}
        and mod(amount, case when currency = 'IDR' then {{ var('round_unit_idr') }} else {{ var('round_unit_other') }} end) = 0,
        false
    ) as is_round_amount,
    coalesce(distance_from_home_km > {{ var('far_from_home_km') }}, false) as is_far_from_home,
    is_late_arrival,

    ---------- timestamps
    transaction_at,

    ---------- lineage
    loaded_at
from scored
