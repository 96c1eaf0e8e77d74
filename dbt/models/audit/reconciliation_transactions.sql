{#- Control totals of transactions per currency across the layers: bronze distinct records must
    equal silver valid + rejected, and gold must equal silver valid, in count and in amount.
    A row that does not balance fails the build (test assert_transaction_control_totals_balance)
    with its failure_message quoted by `bankpipe transform`. -#}
{%- set fields = bankpipe.transaction_fields() %}

with

bronze_records as (

    -- Distinct records, as base_transactions defines them (same hash = same record).
    select
        record_hash,
        min({{ bankpipe.transaction_currency('mata_uang') }}) as currency,
        min({{ bankpipe.to_money('jumlah_transaksi') }}) as amount
    from (
        select raw.*, {{ bankpipe.record_hash(fields, 'raw') }} as record_hash
        from {{ source('bronze', 'raw_transactions') }} as raw
    ) as hashed
    group by record_hash

),

bronze as (

    select currency, count(*) as records, sum(amount) as amount
    from bronze_records group by currency

),

silver as (

    select currency, count(*) as records, sum(amount) as amount
    from {{ ref('stg_transactions') }} group by currency

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
