{#- Every distinct source record that failed a rule, with the rule: nothing is dropped silently.
    Exact re-sends of the same rejected record appear once (the first copy). -#}

{%- set masters = [
    ('account', 'base_accounts', 'account_id'),
    ('customer', 'base_customers', 'customer_id'),
    ('location', 'base_locations', 'location_id'),
    ('bank', 'base_banks', 'bank_id'),
    ('fraud_case', 'base_fraud_cases', 'transaction_id'),
] %}

with

transaction_rejects as (

    select
        'transaction' as entity,
        coalesce(transaction_id, '<missing>') as record_key,
        rejection_rule as rule,
        raw_record,
        batch_id,
        source_name,
        loaded_at,
        record_hash,
        currency as control_currency,
        amount as control_amount
    from {{ ref('base_transactions') }}
    where rejection_rule is not null

),

{% for entity, model, key in masters %}
{{ entity }}_rejects as (

    select * from (
        select
            '{{ entity }}' as entity,
            coalesce({{ key }}, '<missing>') as record_key,
            rejection_rule as rule,
            raw_record,
            batch_id,
            source_name,
            loaded_at,
            record_hash,
            cast(null as {{ dbt.type_string() }}) as control_currency,
            cast(null as {{ bankpipe.type_money() }}) as control_amount,
            row_number() over (partition by record_hash order by loaded_at, batch_id) as copy_number
        from {{ ref(model) }}
        where rejection_rule is not null
    ) as copies
    where copy_number = 1

),
{% endfor %}

exchange_rate_rejects as (

    select * from (
        select
            'exchange_rate' as entity,
            coalesce(currency, '<missing>') || '@' || coalesce(cast(rate_date as {{ dbt.type_string() }}), '<missing>') as record_key,
            rejection_rule as rule,
            raw_record,
            batch_id,
            source_name,
            loaded_at,
            record_hash,
            cast(null as {{ dbt.type_string() }}) as control_currency,
            cast(null as {{ bankpipe.type_money() }}) as control_amount,
            row_number() over (partition by record_hash order by loaded_at, batch_id) as copy_number
        from {{ ref('base_exchange_rates') }}
        where rejection_rule is not null
    ) as copies
    where copy_number = 1

),

all_rejects as (

    select * from transaction_rejects
    {% for entity, model, key in masters %}
    union all
    select entity, record_key, rule, raw_record, batch_id, source_name, loaded_at, record_hash, control_currency, control_amount
    from {{ entity }}_rejects
    {% endfor %}
    union all
    select entity, record_key, rule, raw_record, batch_id, source_name, loaded_at, record_hash, control_currency, control_amount
    from exchange_rate_rejects

)

select
    ---------- ids
    {{ dbt.hash("all_rejects.entity || '|' || all_rejects.record_hash") }} as rejection_id,
    all_rejects.entity,
    all_rejects.record_key,

    ---------- strings
    all_rejects.rule,
    rules.description as rule_description,
    all_rejects.raw_record,

    ---------- numerics: reconciliation controls (transactions only)
    all_rejects.control_currency,
    all_rejects.control_amount,

    ---------- lineage
    all_rejects.batch_id,
    all_rejects.source_name as source,
    all_rejects.loaded_at,
    all_rejects.record_hash
from all_rejects
left join {{ ref('ref_rejection_rules') }} as rules
    on rules.entity = all_rejects.entity and rules.rule = all_rejects.rule
