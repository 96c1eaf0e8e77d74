with

current_banks as (

    {{ bankpipe.current_versions(ref('base_banks'), 'bank_id') }}

)

select
    ---------- ids
    bank_id,

    ---------- strings
    bank_name,
    bank_short_name,
    head_office_city,
    bank_type,

    ---------- booleans
    is_unknown_bank_type,

    ---------- timestamps
    created_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_banks
