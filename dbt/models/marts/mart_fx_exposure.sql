{#- Net position per currency per day from successful transactions: deposits in, withdrawals,
    payments and transfers to outside accounts out (a transfer between two of the bank's own
    accounts moves nothing across the bank's boundary), with the running position valued in
    USD and IDR at that day's rate. -#}

with

flows as (

    select
        currency,
        transaction_date,
        amount,
        amount_usd,
        amount_idr,
        fx_rate,
        fx_rate_idr,
        case
            when transaction_type = 'Deposit' then 1
            when transaction_type = 'Transfer' and is_counterparty_internal then 0
            else -1
        end as direction
    from {{ ref('fact_transaction_enriched') }}
    where status = 'Success'

),

daily as (

    select
        currency,
        transaction_date,
        count(*) as transaction_count,
        sum(case when direction = 1 then amount else 0 end) as inflow_amount,
        sum(case when direction = -1 then amount else 0 end) as outflow_amount,
        sum(direction * amount) as net_amount,
        sum(direction * amount_usd) as net_amount_usd,
        sum(direction * amount_idr) as net_amount_idr,
        max(fx_rate) as fx_rate,
        max(fx_rate_idr) as fx_rate_idr
    from flows
    group by currency, transaction_date

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
    cast(round(
        sum(net_amount) over (partition by currency order by transaction_date rows between unbounded preceding and current row)
        / fx_rate, 2) as {{ bankpipe.type_money() }}) as position_usd,
    fx_rate,

    ---------- dates
    transaction_date
from daily
