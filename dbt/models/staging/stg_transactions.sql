{#- A view: always consistent with base_transactions, and the orphan flag always reflects the
    accounts known now (an account that arrives late un-orphans its transactions). -#}
{{ config(materialized='view') }}

with

valid_transactions as (

    select * from {{ ref('base_transactions') }}
    where rejection_rule is null

),

accounts as (

    select account_id from {{ ref('stg_accounts') }}

)

select
    ---------- ids
    valid_transactions.transaction_id,
    valid_transactions.account_id,
    valid_transactions.counterparty_account_id,
    valid_transactions.location_id,

    ---------- strings
    valid_transactions.transaction_type,
    valid_transactions.status,
    valid_transactions.currency,
    valid_transactions.channel,

    ---------- numerics
    valid_transactions.amount,

    ---------- booleans
    -- Orphans are kept and flagged, not rejected: the seed's own generator produces them.
    own_account.account_id is null as is_orphan,
    valid_transactions.counterparty_account_id is not null
        and counterparty.account_id is not null as is_counterparty_internal,

    ---------- dates and timestamps
    valid_transactions.transaction_date,
    valid_transactions.transaction_at,

    ---------- lineage
    valid_transactions.batch_id,
    valid_transactions.loaded_at,
    valid_transactions.source_name,
    valid_transactions.file_sha256,
    valid_transactions.record_hash
from valid_transactions
left join accounts as own_account
    on own_account.account_id = valid_transactions.account_id
left join accounts as counterparty
    on counterparty.account_id = valid_transactions.counterparty_account_id
