with

current_customers as (

    {{ bankpipe.current_versions(ref('base_customers'), 'customer_id') }}

)

select
    ---------- ids
    customer_id,
    location_id,
    bank_id,

    ---------- strings
    first_name,
    last_name,
    trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as full_name,
    email,
    segment,

    ---------- booleans
    is_unknown_segment,
    email is not null and email like '%_@_%._%' as has_valid_email,

    ---------- timestamps
    created_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_customers
