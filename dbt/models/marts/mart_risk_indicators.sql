{#- Risk indicators per account, per customer and per bank: volumes, failure rate, each anomaly
    flag's count and rate, orphan transactions and confirmed fraud (labels arrive late: the
    fraud columns grow as the case-management system catches up). -#}

with

transactions as (

    select
        e.*,
        coalesce(cases.is_confirmed_fraud, false) as is_confirmed_fraud,
        cases.transaction_id is not null as has_fraud_case
    from {{ ref('fact_transaction_enriched') }} as e
    left join {{ ref('stg_fraud_cases') }} as cases on cases.transaction_id = e.transaction_id

),

-- One pass over the transactions, per account with its customer and bank keys; the account,
-- customer and bank rows then add those up (every measure is a count or a sum), instead of
-- three passes over every transaction.
per_account as (

    select
        account_key,
        customer_key,
        bank_key,
        count(*) as transaction_count,
        sum(amount_idr) as total_amount_idr,
        count(case when status = 'Failed' then 1 end) as failed_count,
        count(case when anomaly_count > 0 then 1 end) as anomalous_count,
        count(case when is_amount_outlier then 1 end) as amount_outlier_count,
        count(case when is_velocity_burst then 1 end) as velocity_burst_count,
        count(case when is_night_large_transfer then 1 end) as night_large_transfer_count,
        count(case when is_first_transfer_to_counterparty then 1 end) as first_counterparty_count,
        count(case when is_round_amount then 1 end) as round_amount_count,
        count(case when is_far_from_home then 1 end) as far_from_home_count,
        count(case when is_orphan then 1 end) as orphan_count,
        count(case when has_fraud_case then 1 end) as fraud_case_count,
        count(case when is_confirmed_fraud then 1 end) as confirmed_fraud_count
    from transactions
    group by account_key, customer_key, bank_key

),

{% set levels = [('account', 'account_key'), ('customer', 'customer_key'), ('bank', 'bank_key')] %}
{% set counts = ['transaction_count', 'failed_count', 'anomalous_count', 'amount_outlier_count',
                 'velocity_burst_count', 'night_large_transfer_count', 'first_counterparty_count',
                 'round_amount_count', 'far_from_home_count', 'orphan_count', 'fraud_case_count',
                 'confirmed_fraud_count'] %}

by_level as (
    {% for level, key in levels %}
    select
        '{{ level }}' as entity_type,
        {{ key }} as entity_key,
        sum(total_amount_idr) as total_amount_idr,
        {%- for c in counts %}
        cast(sum({{ c }}) as bigint) as {{ c }}{{ "," if not loop.last }}
        {%- endfor %}
    from per_account
    group by {{ key }}
    {{ "union all" if not loop.last }}
    {% endfor %}
)

select
    ---------- ids
    entity_type || ':' || entity_key as risk_key,
    entity_type,
    entity_key,

    ---------- numerics
    transaction_count,
    total_amount_idr,
    failed_count,
    cast(failed_count as double) / transaction_count as failed_rate,
    anomalous_count,
    cast(anomalous_count as double) / transaction_count as anomaly_rate,
    amount_outlier_count,
    velocity_burst_count,
    night_large_transfer_count,
    first_counterparty_count,
    round_amount_count,
    far_from_home_count,
    orphan_count,
    fraud_case_count,
    confirmed_fraud_count,
    cast(confirmed_fraud_count as double) / transaction_count as confirmed_fraud_rate,

    ---------- booleans
    confirmed_fraud_count > 0
        or cast(anomalous_count as double) / transaction_count > {{ var('risk_anomaly_rate') }} as is_high_risk
from by_level
