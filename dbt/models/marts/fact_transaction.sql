{#- One row per valid transaction, with dimension keys ('-1' = unknown member, never null).
    Incremental: new silver rows, plus earlier rows whose unknown keys can now be resolved (a
    late-arriving account, customer or location) — nothing else is rewritten. -#}
{{ config(
    materialized='incremental',
    unique_key='transaction_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    cluster_by=['transaction_date']
) }}

{#- A build of new stream files only cannot make an earlier row resolvable (no master data changed):
    it skips the look through every earlier row. -#}
{%- set find_resolvable = is_incremental() and not bankpipe.stream_only_build() %}

with

{% if find_resolvable %}
resolvable as (

    select f.transaction_id
    from {{ this }} as f
    where (f.account_key = '-1' and f.account_id in (select account_id from {{ ref('dim_accounts') }}))
       or (f.counterparty_account_key = '-1'
           and f.counterparty_account_id in (select account_id from {{ ref('dim_accounts') }}))
       or (f.customer_key = '-1' and f.account_id in (
               select account_id from {{ ref('dim_accounts') }} where customer_key <> '-1'))
       or (f.location_key = '-1' and f.location_id in (select location_id from {{ ref('dim_locations') }}))

),
{% endif %}

transactions as (

    select * from {{ ref('stg_transactions') }}
    {% if is_incremental() %}
    where loaded_at > {{ bankpipe.loaded_watermark() }}
    {% endif %}
    {% if find_resolvable %}
    -- two branches, not an OR: the watermark filter then stays pushed down to the scan
    union all
    -- a join, not `in (select …)`: DuckDB then probes the view with the few resolvable ids instead
    -- of joining accounts to every row of it first (1.6 s instead of 8 s at 5 M rows)
    select transactions.* from resolvable
    inner join {{ ref('stg_transactions') }} as transactions on transactions.transaction_id = resolvable.transaction_id
    where transactions.loaded_at <= {{ bankpipe.loaded_watermark() }}
    {% endif %}

),

accounts as (

    select * from {{ ref('dim_accounts') }}

),

locations as (

    select location_key from {{ ref('dim_locations') }}

)

select
    ---------- ids
    transactions.transaction_id,
    {{ bankpipe.date_key('transactions.transaction_date') }} as date_key,
    coalesce(own.account_key, '-1') as account_key,
    coalesce(counterparty.account_key, '-1') as counterparty_account_key,
    coalesce(own.customer_key, '-1') as customer_key,
    coalesce(own.bank_key, '-1') as bank_key,
    coalesce(locations.location_key, '-1') as location_key,
    transactions.account_id,
    transactions.counterparty_account_id,
    transactions.location_id,

    ---------- strings
    transactions.transaction_type,
    transactions.status,
    transactions.channel,
    transactions.currency,

    ---------- numerics
    transactions.amount,

    ---------- booleans
    own.account_key is null as is_orphan,
    counterparty.account_key is not null as is_counterparty_internal,

    ---------- dates and timestamps
    transactions.transaction_date,
    transactions.transaction_at,

    ---------- lineage
    transactions.batch_id,
    transactions.loaded_at
from transactions
left join accounts as own on own.account_id = transactions.account_id
left join accounts as counterparty on counterparty.account_id = transactions.counterparty_account_id
left join locations on locations.location_key = transactions.location_id
