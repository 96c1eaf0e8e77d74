{#- Control totals of transactions per currency across the layers: bronze distinct records must
    equal silver valid + rejected, and gold must equal silver valid, in count and in amount.
    A row that does not balance fails the build (test assert_transaction_control_totals_balance)
    with its failure_message quoted by `bankpipe transform`. -#}
with

bronze as (

    -- Distinct records, as base_transactions defines them (same hash = same record), hashed once
    -- per bronze batch by audit_bronze_transaction_records.
    select currency, count(*) as records, sum(amount) as amount
    from {{ ref('audit_bronze_transaction_records') }}
    where record_hash is not null
    group by currency

),

silver as (

    -- stg_transactions' rows are base_transactions' valid rows (its joins are to unique keys);
    -- counted at the base table, so the check does not pay for the view's joins.
    select currency, count(*) as records, sum(amount) as amount
    from {{ ref('base_transactions') }}
    where rejection_rule is null
    group by currency

),

rejected as (

    select control_currency as currency, count(*) as records, sum(control_amount) as amount
    from {{ ref('rejected_records') }}
    where entity = 'transaction'
    group by control_currency

),

gold as (

    select currency, count(*) as records, sum(amount) as amount
    from {{ ref('fact_transaction') }} group by currency

),

enriched as (

    select currency, count(*) as records, sum(amount) as amount
    from {{ ref('fact_transaction_enriched') }} group by currency

),

currencies as (

    select currency from bronze
    union select currency from silver
    union select currency from rejected
    union select currency from gold
    union select currency from enriched

),

totals as (

    select
        currencies.currency,
        coalesce(bronze.records, 0) as bronze_records,
        coalesce(bronze.amount, 0) as bronze_amount,
        coalesce(silver.records, 0) as silver_records,
        coalesce(silver.amount, 0) as silver_amount,
        coalesce(rejected.records, 0) as rejected_records,
        coalesce(rejected.amount, 0) as rejected_amount,
        coalesce(gold.records, 0) as gold_records,
        coalesce(gold.amount, 0) as gold_amount,
        coalesce(enriched.records, 0) as enriched_records,
        coalesce(enriched.amount, 0) as enriched_amount
    from currencies
    left join bronze on bronze.currency = currencies.currency
    left join silver on silver.currency = currencies.currency
    left join rejected on rejected.currency = currencies.currency
    left join gold on gold.currency = currencies.currency
    left join enriched on enriched.currency = currencies.currency

),

checked as (

    select
        totals.*,
        bronze_records = silver_records + rejected_records and bronze_amount = silver_amount + rejected_amount
            as is_silver_balanced,
        gold_records = silver_records and gold_amount = silver_amount
            and enriched_records = gold_records and enriched_amount = gold_amount
            as is_gold_balanced
    from totals

)

select
    checked.*,
    is_silver_balanced and is_gold_balanced as is_balanced,
    case when not (is_silver_balanced and is_gold_balanced) then
        'transactions in ' || currency || ' do not reconcile: bronze '
        || cast(bronze_records as {{ dbt.type_string() }}) || ' records / ' || cast(bronze_amount as {{ dbt.type_string() }})
        || ', silver ' || cast(silver_records as {{ dbt.type_string() }}) || ' / ' || cast(silver_amount as {{ dbt.type_string() }})
        || ' + rejected ' || cast(rejected_records as {{ dbt.type_string() }}) || ' / ' || cast(rejected_amount as {{ dbt.type_string() }})
        || ', gold ' || cast(gold_records as {{ dbt.type_string() }}) || ' / ' || cast(gold_amount as {{ dbt.type_string() }})
        || ', enriched ' || cast(enriched_records as {{ dbt.type_string() }}) || ' / ' || cast(enriched_amount as {{ dbt.type_string() }})
    end as failure_message
from checked
