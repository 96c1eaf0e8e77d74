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
    -- no clear names or e-mail here (silver_pii.customers has them): masked forms and keyed pseudonyms
    first_name_masked,
    last_name_masked,
    full_name_masked,
    email_masked,
    name_pseudonym,
    email_pseudonym,
    segment,

    ---------- booleans
    is_unknown_segment,
    has_valid_email,

    ---------- timestamps
    created_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_customers
