{#- The marts' additive aggregates count every row of fact_transaction_enriched once, and the IDR
    amounts add up to the fact's: an incremental merge that lost or double-counted transactions
    fails the build here, with the numbers. -#}
{{ config(store_failures=true, severity='error') }}

with

fact as (

    select currency, count(*) as records, sum(amount_idr) as amount_idr
    from {{ ref('fact_transaction_enriched') }}
    group by currency

),

by_account as (

    select cast(sum(transaction_count) as bigint) as records, sum(total_amount_idr) as amount_idr
    from {{ ref('agg_account_activity') }}

),

by_day as (

    select currency, cast(sum(transaction_count) as bigint) as records
    from {{ ref('agg_currency_daily_flows') }}
    group by currency

),

checks as (

    select
        'agg_account_activity' as aggregate_name,
        cast(null as {{ dbt.type_string() }}) as currency,
        (select coalesce(sum(records), 0) from fact) as fact_records,
        coalesce(by_account.records, 0) as aggregate_records,
        (select coalesce(sum(amount_idr), 0) from fact) as fact_amount_idr,
        coalesce(by_account.amount_idr, 0) as aggregate_amount_idr
    from by_account

    union all

    select
        'agg_currency_daily_flows',
        coalesce(fact.currency, by_day.currency),
        coalesce(fact.records, 0),
        coalesce(by_day.records, 0),
        null,
        null
    from fact
    full outer join by_day on by_day.currency = fact.currency

)

select
    aggregate_name,
    currency,
    aggregate_name || coalesce(' ' || currency, '') || ': ' || cast(aggregate_records as {{ dbt.type_string() }})
        || ' rows counted, fact_transaction_enriched has ' || cast(fact_records as {{ dbt.type_string() }})
        || coalesce('; IDR ' || cast(aggregate_amount_idr as {{ dbt.type_string() }}) || ' vs '
                    || cast(fact_amount_idr as {{ dbt.type_string() }}), '') as failure_message
from checks
where fact_records <> aggregate_records
   or coalesce(fact_amount_idr <> aggregate_amount_idr, false)
