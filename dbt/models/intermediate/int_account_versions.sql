{#- Account history (SCD2) from bronze's full version history, as int_customer_versions: one row
    per version that changes the customer, type or balance. A view, so that the ML features see a
    change as soon as it is in bronze. -#}
{{ config(materialized='view') }}

with

ranged as (

    {{ bankpipe.version_history(
        ref('base_accounts'), 'account_id',
        ['customer_id', 'account_type', 'balance_idr', 'is_deleted'],
        source_time=bankpipe.to_bank_time('v.updated_at')) }}

)

select
    ---------- ids
    {{ dbt.hash("account_id || '|' || record_hash") }} as account_version_key,
    account_id,
    customer_id,

    ---------- strings
    account_type,

    ---------- numerics
    balance_idr,

    ---------- booleans
    is_unknown_account_type,
    next_change_at is null as is_current,

    ---------- timestamps
    -- The source's opening time, and when bankpipe could know it (the same rule as known_from): the
    -- account and its holder exist from then (the ML features' ownership link before the first
    -- known version).
    {{ bankpipe.to_bank_time('created_at') }} as opened_at,
    {{ bankpipe.known_from(bankpipe.to_bank_time('created_at'), 'loaded_at', 'first_load.first_loaded_at') }}
        as opened_known_from,
    updated_at as valid_from,
    next_change_at as valid_to,
    known_from,
    known_until
from ranged
cross join (select min(loaded_at) as first_loaded_at from {{ ref('base_accounts') }}) as first_load
-- a tombstone ends the version before it (its valid_to / known_until) and is not a version itself
where not is_deleted
