{#- Transactions per (account, customer, bank, location): the counts and sums mart_risk_indicators,
    mart_geo_activity and mart_customer_rfm roll up. Incremental and additive (macros/additive.sql):
    a build of new stream files merges only the new transactions into the groups they touch. -#}
{%- set keys = ['account_key', 'customer_key', 'bank_key', 'location_key'] -%}
{%- set sums = ['transaction_count', 'successful_count', 'failed_count', 'total_amount_idr', 'successful_amount_idr',
                'anomalous_count', 'amount_outlier_count', 'velocity_burst_count', 'night_large_transfer_count',
                'first_counterparty_count', 'round_amount_count', 'far_from_home_count', 'orphan_count'] -%}
{%- set maxima = ['last_successful_date'] -%}
{{ config(unique_key=keys) }}
{%- set appending = bankpipe.appends_only(ref('fact_transaction_enriched'), 'transaction_count') %}

with

grouped as (

    select
        account_key,
        customer_key,
        bank_key,
        location_key,
        count(*) as transaction_count,
        count(case when status = 'Success' then 1 end) as successful_count,
        count(case when status = 'Failed' then 1 end) as failed_count,
        sum(amount_idr) as total_amount_idr,
        sum(case when status = 'Success' then amount_idr end) as successful_amount_idr,
        count(case when anomaly_count > 0 then 1 end) as anomalous_count,
        count(case when is_amount_outlier then 1 end) as amount_outlier_count,
        count(case when is_velocity_burst then 1 end) as velocity_burst_count,
        count(case when is_night_large_transfer then 1 end) as night_large_transfer_count,
        count(case when is_first_transfer_to_counterparty then 1 end) as first_counterparty_count,
        count(case when is_round_amount then 1 end) as round_amount_count,
        count(case when is_far_from_home then 1 end) as far_from_home_count,
        count(case when is_orphan then 1 end) as orphan_count,
        max(case when status = 'Success' then transaction_date end) as last_successful_date,
        max(loaded_at) as loaded_at
    from {{ ref('fact_transaction_enriched') }}
    {% if appending %}
    where loaded_at > {{ bankpipe.loaded_watermark() }}
    {% endif %}
    group by account_key, customer_key, bank_key, location_key

)

{{ bankpipe.merge_groups('grouped', keys, sums, maxima, appending) }}
