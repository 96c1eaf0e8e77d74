{#- Customer history (SCD2) derived from bronze's full version history rather than a dbt snapshot:
    bronze is append-only and keeps every extracted version, so history can be rebuilt at any
    time and does not depend on how often dbt happened to run between two changes. -#}

with

versions as (

    select
        base_customers.*,
        {{ dbt.hash("coalesce(segment, '') || '|' || coalesce(name_pseudonym, '') || '|' || coalesce(email_pseudonym, '') || '|' || coalesce(location_id, '') || '|' || coalesce(bank_id, '') || '|' || cast(is_deleted as " ~ dbt.type_string() ~ ")") }} as attributes_hash
    from {{ ref('base_customers') }}
    where rejection_rule is null

),

ordered as (

    select
        versions.*,
        lag(attributes_hash) over (
            partition by customer_id order by updated_at, loaded_at, batch_id, record_hash
        ) as previous_attributes_hash
    from versions

),

-- Only versions that change something tracked start a new row (re-extractions do not).
changes as (

    select * from ordered
    where previous_attributes_hash is null or previous_attributes_hash <> attributes_hash

),

ranged as (

    select
        changes.*,
        lead(updated_at) over (partition by customer_id order by updated_at, loaded_at, batch_id, record_hash) as next_change_at
    from changes

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
    next_change_at as valid_to
from ranged
-- a tombstone ends the version before it (its valid_to) and is not a version itself
where not is_deleted
