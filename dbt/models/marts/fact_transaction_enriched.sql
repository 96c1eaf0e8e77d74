{#- One row per valid transaction, valued in IDR and USD at the rate in force on the transaction
    date (AS-OF join: weekends and holidays take the last published rate), with the rate's date
    and source, and the transaction's anomaly flags. Incremental like fact_transaction; rows are
    re-priced when their keys were re-resolved or when a rate for an unpriced row has arrived. -#}
{{ config(
    materialized='incremental',
    unique_key='transaction_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    cluster_by=['transaction_date']
) }}

{#- A build of new stream files only changes no earlier fact row and brings no new rate: it skips
    the look through every earlier row. -#}
{%- set find_stale = is_incremental() and not bankpipe.stream_only_build() %}

with

{% if find_stale %}
-- Rows to redo: their fact row changed (re-resolved keys), or they had no rate and one exists now.
to_refresh as (

    select e.transaction_id
    from {{ this }} as e
    inner join {{ ref('fact_transaction') }} as f on f.transaction_id = e.transaction_id
    where (e.account_key = '-1' or e.counterparty_account_key = '-1' or e.customer_key = '-1' or e.location_key = '-1')
      and (e.account_key <> f.account_key or e.counterparty_account_key <> f.counterparty_account_key
           or e.customer_key <> f.customer_key or e.location_key <> f.location_key)

    union

    select e.transaction_id
    from {{ this }} as e
    where (e.amount_usd is null or e.amount_idr is null)
      and exists (
          select 1 from {{ ref('int_exchange_rates') }} as r
          where r.currency = e.currency and r.rate_date <= e.transaction_date
      )
      and exists (
          select 1 from {{ ref('int_exchange_rates') }} as r
          where r.currency = 'IDR' and r.rate_date <= e.transaction_date
      )

),
{% endif %}

facts as (

    select * from {{ ref('fact_transaction') }}
    {% if is_incremental() %}
    where loaded_at > {{ bankpipe.loaded_watermark() }}
    {% endif %}
    {% if find_stale %}
    union all
    select facts.* from to_refresh
    inner join {{ ref('fact_transaction') }} as facts on facts.transaction_id = to_refresh.transaction_id
    where facts.loaded_at <= {{ bankpipe.loaded_watermark() }}
    {% endif %}

),

rates as (

    select * from {{ ref('int_exchange_rates') }}

),

idr_rates as (

    select * from rates where currency = 'IDR'

),

anomalies as (

    select * from {{ ref('int_transaction_anomalies') }}

),

priced as (

    select
        f.*,
        {{ bankpipe.amount_idr('f') }} as amount_idr,
        {{ bankpipe.amount_usd('f') }} as amount_usd,
        fx_ccy.rate as fx_rate,
        fx_idr.rate as fx_rate_idr,
        -- USD is worth 1 USD on every day: its "rate date" is the transaction date itself
        case when f.currency = 'USD' then f.transaction_date else fx_ccy.rate_date end as fx_rate_date,
        fx_idr.rate_date as fx_idr_rate_date,
        fx_ccy.rate_source as fx_rate_source
    from facts as f
    {{ bankpipe.fx_asof_joins('f', 'rates', 'idr_rates') }}

)

select
    ---------- ids
    priced.transaction_id,
    priced.date_key,
    priced.account_key,
    priced.counterparty_account_key,
    priced.customer_key,
    priced.bank_key,
    priced.location_key,
    priced.account_id,
    priced.counterparty_account_id,
    priced.location_id,

    ---------- strings
    priced.transaction_type,
    priced.status,
    priced.channel,
    priced.currency,
    priced.fx_rate_source,

    ---------- numerics
    priced.amount,
    priced.amount_idr,
    priced.amount_usd,
    priced.fx_rate,
    priced.fx_rate_idr,
    {{ dbt.datediff('priced.fx_rate_date', 'priced.transaction_date', 'day') }} as fx_rate_age_days,
    anomalies.amount_zscore,
    anomalies.transactions_in_window,
    anomalies.distance_from_home_km,
    {{ bankpipe.count_true([
        'anomalies.is_amount_outlier', 'anomalies.is_velocity_burst', 'anomalies.is_night_large_transfer',
        'anomalies.is_first_transfer_to_counterparty', 'anomalies.is_round_amount', 'anomalies.is_far_from_home'
    ]) }} as anomaly_count,

    ---------- booleans
    priced.is_orphan,
    priced.is_counterparty_internal,
    coalesce({{ dbt.datediff('priced.fx_rate_date', 'priced.transaction_date', 'day') }} > {{ var('fx_stale_after_days') }}, false)
        or (priced.currency <> 'IDR'
            and coalesce({{ dbt.datediff('priced.fx_idr_rate_date', 'priced.transaction_date', 'day') }} > {{ var('fx_stale_after_days') }}, false))
        as is_fx_rate_stale,
    coalesce(anomalies.is_amount_outlier, false) as is_amount_outlier,
    coalesce(anomalies.is_velocity_burst, false) as is_velocity_burst,
    coalesce(anomalies.is_night_large_transfer, false) as is_night_large_transfer,
    coalesce(anomalies.is_first_transfer_to_counterparty, false) as is_first_transfer_to_counterparty,
    coalesce(anomalies.is_round_amount, false) as is_round_amount,
    coalesce(anomalies.is_far_from_home, false) as is_far_from_home,

    ---------- dates and timestamps
    priced.transaction_date,
    priced.fx_rate_date,
    priced.fx_idr_rate_date,
    priced.transaction_at,

    ---------- lineage
    priced.batch_id,
    priced.loaded_at
from priced
left join anomalies on anomalies.transaction_id = priced.transaction_id
