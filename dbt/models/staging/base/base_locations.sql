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
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _source as source_name,
        {{ bankpipe.json_object_text(fields) }} as raw_record,
        {{ bankpipe.record_hash(fields + ['_is_deleted', '_updated_at']) }} as record_hash

    from source

)

select
    renamed.*,
    case
        when location_id is null then 'missing_location_id'
    end as rejection_rule
from renamed
