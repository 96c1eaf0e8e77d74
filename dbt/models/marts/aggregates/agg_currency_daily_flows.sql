{#- Transactions per currency per day with the successful ones' flows across the bank's boundary,
    which mart_fx_exposure turns into running positions. Incremental and additive like
    agg_account_activity (macros/additive.sql). -#}
{%- set keys = ['currency', 'transaction_date'] -%}
{%- set sums = ['transaction_count', 'successful_count', 'inflow_amount', 'outflow_amount', 'net_amount',
                'net_amount_usd', 'net_amount_idr'] -%}
{%- set maxima = ['fx_rate', 'fx_rate_idr'] -%}
{{ config(unique_key=keys) }}
{%- set appending = bankpipe.appends_only(ref('fact_transaction_enriched'), 'transaction_count') %}

with

flows as (

    select
        currency,
        transaction_date,
        status = 'Success' as is_successful,
        amount,
        amount_usd,
        amount_idr,
        fx_rate,
        fx_rate_idr,
        -- deposits in; withdrawals, payments and transfers out, unless to one of the bank's own accounts
        case
            when transaction_type = 'Deposit' then 1
            when transaction_type = 'Transfer' and is_counterparty_internal then 0
            else -1
        end as direction,
        loaded_at
    from {{ ref('fact_transaction_enriched') }}
    {% if appending %}
    where loaded_at > {{ bankpipe.loaded_watermark() }}
    {% endif %}

),

grouped as (

    select
        currency,
        transaction_date,
        count(*) as transaction_count,
        count(case when is_successful then 1 end) as successful_count,
        sum(case when is_successful and direction = 1 then amount end) as inflow_amount,
        sum(case when is_successful and direction = -1 then amount end) as outflow_amount,
        sum(case when is_successful then direction * amount end) as net_amount,
        sum(case when is_successful then direction * amount_usd end) as net_amount_usd,
        sum(case when is_successful then direction * amount_idr end) as net_amount_idr,
        max(case when is_successful then fx_rate end) as fx_rate,
        max(case when is_successful then fx_rate_idr end) as fx_rate_idr,
        max(loaded_at) as loaded_at
    from flows
    group by currency, transaction_date

)

{{ bankpipe.merge_groups('grouped', keys, sums, maxima, appending) }}
