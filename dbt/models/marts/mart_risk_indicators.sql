{#- Risk indicators per account, per customer and per bank: volumes, failure rate, each anomaly
    flag's count and rate, orphan transactions and confirmed fraud (labels arrive late: the
    fraud columns grow as the case-management system catches up). -#}

with

-- Fraud cases per account: the cases are few, so they are looked up, not joined to every transaction.
cases as (

    select
        facts.account_key,
        facts.customer_key,
        facts.bank_key,
        count(*) as fraud_case_count,
        count(case when cases.is_confirmed_fraud then 1 end) as confirmed_fraud_count
    from {{ ref('stg_fraud_cases') }} as cases
    inner join {{ ref('fact_transaction_enriched') }} as facts on facts.transaction_id = cases.transaction_id
    group by facts.account_key, facts.customer_key, facts.bank_key

),

-- Per account with its customer and bank keys, from agg_account_activity (kept up to date
-- incrementally); the account, customer and bank rows then add those up.
per_account as (

    select
        activity.*,
        coalesce(cases.fraud_case_count, 0) as fraud_case_count,
        coalesce(cases.confirmed_fraud_count, 0) as confirmed_fraud_count
    from (
        select
            account_key,
            customer_key,
            bank_key,
            sum(transaction_count) as transaction_count,
            sum(total_amount_idr) as total_amount_idr,
            sum(failed_count) as failed_count,
            sum(anomalous_count) as anomalous_count,
            sum(amount_outlier_count) as amount_outlier_count,
            sum(velocity_burst_count) as velocity_burst_count,
            sum(night_large_transfer_count) as night_large_transfer_count,
            sum(first_counterparty_count) as first_counterparty_count,
            sum(round_amount_count) as round_amount_count,
            sum(far_from_home_count) as far_from_home_count,
            sum(orphan_count) as orphan_count
        from {{ ref('agg_account_activity') }}
        group by account_key, customer_key, bank_key
    ) as activity
    left join cases
        on cases.account_key = activity.account_key
        and cases.customer_key = activity.customer_key
        and cases.bank_key = activity.bank_key

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
