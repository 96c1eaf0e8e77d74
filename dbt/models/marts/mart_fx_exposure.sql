{#- Net position per currency per day from successful transactions: deposits in, withdrawals,
    payments and transfers to outside accounts out (a transfer between two of the bank's own
    accounts moves nothing across the bank's boundary), with the running position valued in
    USD and IDR at that day's rate. -#}

with

-- Per currency and day, from agg_currency_daily_flows (kept up to date incrementally).
daily as (

    select
        currency,
        transaction_date,
        successful_count as transaction_count,
        coalesce(inflow_amount, 0) as inflow_amount,
        coalesce(outflow_amount, 0) as outflow_amount,
        net_amount,
        net_amount_usd,
        net_amount_idr,
        fx_rate,
        fx_rate_idr
    from {{ ref('agg_currency_daily_flows') }}
    where successful_count > 0

)

select
    ---------- ids
    currency || '@' || cast(transaction_date as {{ dbt.type_string() }}) as exposure_key,
    currency,
    {{ bankpipe.date_key('transaction_date') }} as date_key,

    ---------- numerics (amounts in the currency unless the name says otherwise)
    transaction_count,
    inflow_amount,
    outflow_amount,
    net_amount,
    net_amount_usd,
    net_amount_idr,
    sum(net_amount) over (partition by currency order by transaction_date rows between unbounded preceding and current row)
        as position_amount,
    -- null rather than an error when the position does not fit DECIMAL(18,2) (money_or_null)
    {{ bankpipe.money_or_null(
        'sum(net_amount) over (partition by currency order by transaction_date rows between unbounded preceding and current row)'
        ~ ' / nullif(fx_rate, 0)') }} as position_usd,
    fx_rate,

    ---------- dates
    transaction_date
from daily
