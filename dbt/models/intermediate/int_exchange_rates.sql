{#- The rates transactions are priced with: the published USD-based rates plus USD itself (1 USD
    = 1 USD, valid since forever), so every currency is priced the same way. -#}

with

published as (

    select currency, rate_date, rate, rate_source
    from {{ ref('stg_exchange_rates') }}
    where currency <> 'USD'

),

usd as (

    select
        'USD' as currency,
        cast('1900-01-01' as date) as rate_date,
        cast(1 as {{ bankpipe.type_rate() }}) as rate,
        'identity' as rate_source

)

select currency, rate_date, rate, rate_source from published
union all
select currency, rate_date, rate, rate_source from usd
