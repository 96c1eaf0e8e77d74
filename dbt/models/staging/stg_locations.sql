with

current_locations as (

    {{ bankpipe.current_versions(ref('base_locations'), 'location_id') }}

)

select
    ---------- ids
    location_id,

    ---------- strings
    city,
    province,

    ---------- timestamps
    created_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_locations
