{#- A calendar covering the configured range, widened to every transaction and rate date. -#}

with

-- Valid transactions straight from the base table: the stg_transactions view would join accounts
-- for every row just to read two dates.
transaction_dates as (

    select min(transaction_date) as first_day, max(transaction_date) as last_day
    from {{ ref('base_transactions') }}
    where rejection_rule is null

),

bounds as (

    select
        least(
            cast('{{ var("dim_date_start") }}' as date),
            coalesce((select first_day from transaction_dates), cast('{{ var("dim_date_start") }}' as date)),
            coalesce((select min(rate_date) from {{ ref('stg_exchange_rates') }}), cast('{{ var("dim_date_start") }}' as date))
        ) as first_day,
        greatest(
            cast('{{ var("dim_date_end") }}' as date),
            coalesce((select last_day from transaction_dates), cast('{{ var("dim_date_end") }}' as date)),
            coalesce((select max(rate_date) from {{ ref('stg_exchange_rates') }}), cast('{{ var("dim_date_end") }}' as date))
        ) as last_day

),

days as (

    {{ bankpipe.date_spine('(select first_day from bounds)', '(select last_day from bounds)') }}

)

select
    ---------- ids
    {{ bankpipe.date_key('date_day') }} as date_key,

    ---------- dates
    date_day,

    ---------- numerics
    cast(extract(year from date_day) as integer) as year,
    cast(extract(quarter from date_day) as integer) as quarter,
    cast(extract(month from date_day) as integer) as month,
    cast(extract(day from date_day) as integer) as day_of_month,
    cast({{ bankpipe.iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
    cast({{ bankpipe.iso_week('date_day') }} as integer) as iso_week,

    ---------- strings
    case cast(extract(month from date_day) as integer)
        when 1 then 'January' when 2 then 'February' when 3 then 'March' when 4 then 'April'
        when 5 then 'May' when 6 then 'June' when 7 then 'July' when 8 then 'August'
        when 9 then 'September' when 10 then 'October' when 11 then 'November' else 'December'
    end as month_name,
    case cast({{ bankpipe.iso_day_of_week('date_day') }} as integer)
        when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday' when 4 then 'Thursday'
        when 5 then 'Friday' when 6 then 'Saturday' else 'Sunday'
    end as day_name,

    ---------- booleans
    {{ bankpipe.iso_day_of_week('date_day') }} >= 6 as is_weekend
from days
