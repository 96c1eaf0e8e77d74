{#- The USD-based rates transactions are priced with, one row per currency and publication day
    (USD itself included at 1). Days without a row take the last published rate (as-of). -#}

with

rates as (

    select * from {{ ref('int_exchange_rates') }}

),

currencies as (

    select * from {{ ref('ref_currencies') }}

)

select
    ---------- ids
    rates.currency || '@' || cast(rates.rate_date as {{ dbt.type_string() }}) as exchange_rate_key,
    rates.currency,
    {{ bankpipe.date_key('rates.rate_date') }} as date_key,

    ---------- strings
    currencies.currency_name,
    rates.rate_source,

    ---------- numerics
    rates.rate as units_per_usd,
    -- silver lets only positive rates through; nullif keeps the division total all the same
    cast(1 as {{ bankpipe.type_rate() }}) / nullif(rates.rate, 0) as usd_per_unit,

    ---------- dates
    rates.rate_date,
    lead(rates.rate_date) over (partition by rates.currency order by rates.rate_date) as next_rate_date
from rates
left join currencies on currencies.currency_code = rates.currency
