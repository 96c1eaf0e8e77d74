{#- Customer history (SCD2) derived from bronze's full version history rather than a dbt snapshot:
    bronze is append-only and keeps every extracted version, so history can be rebuilt at any
    time and does not depend on how often dbt happened to run between two changes. A view, so that
    the ML features (which read the version in force at a transaction's time, by known_from /
    known_until) see a master-data change as soon as it is in bronze. -#}
{{ config(materialized='view') }}

with

-- Only versions that change something tracked start a new row (re-extractions do not).
ranged as (

    {{ bankpipe.version_history(
        ref('base_customers'), 'customer_id',
        ['segment', 'name_pseudonym', 'email_pseudonym', 'location_id', 'bank_id', 'is_deleted'],
        source_time=bankpipe.to_bank_time('v.updated_at')) }}

)

select
    ---------- ids
    {{ dbt.hash("customer_id || '|' || record_hash") }} as customer_version_key,
    customer_id,
    location_id,
    bank_id,

    ---------- strings
    first_name_masked,
    last_name_masked,
    full_name_masked,
    email_masked,
    name_pseudonym,
    email_pseudonym,
    segment,

    ---------- booleans
    is_unknown_segment,
    next_change_at is null as is_current,

    ---------- timestamps
    updated_at as valid_from,
    next_change_at as valid_to,
    known_from,
    known_until
from ranged
-- a tombstone ends the version before it (its valid_to / known_until) and is not a version itself
where not is_deleted
