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
    updated_at as valid_from,
    next_change_at as valid_to,
    known_from,
    known_until
from ranged
-- a tombstone ends the version before it (its valid_to / known_until) and is not a version itself
where not is_deleted
