{#- Every version of every location bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['id', 'kota', 'provinsi'] %}

with

source as (

    select * from {{ source('bronze', 'raw_locations') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('id') }} as location_id,

        ---------- strings; a missing name is 'Unknown' (the location still exists)
        coalesce({{ bankpipe.clean_text('kota') }}, 'Unknown') as city,
        coalesce({{ bankpipe.clean_text('provinsi') }}, 'Unknown') as province,

        ---------- booleans
        coalesce(_is_deleted, false) as is_deleted,

        ---------- timestamps
        _created_at as created_at,
        coalesce(_updated_at, _loaded_at) as updated_at,

        ---------- lineage
        {{ bankpipe.master_lineage(fields) }}

    from source

)

select
    renamed.*,
    case
        when location_id is null then 'missing_location_id'
    end as rejection_rule
from renamed
