{#- Every version of every customer bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['id', 'nama_depan', 'nama_belakang', 'email', 'segmen', 'location_id', 'bank_id'] %}
{%- set segments = ['Gold', 'Silver', 'Platinum', 'Priority', 'Standard'] %}

with

source as (

    select * from {{ source('bronze', 'raw_customers') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('id') }} as customer_id,
        {{ bankpipe.clean_text('location_id') }} as location_id,
        {{ bankpipe.clean_text('bank_id') }} as bank_id,

        ---------- strings
        {{ bankpipe.clean_text('nama_depan') }} as first_name,
        {{ bankpipe.clean_text('nama_belakang') }} as last_name,
        lower({{ bankpipe.clean_text('email') }}) as email,
        -- a segment the bank introduced after this project (or none) keeps the customer, flagged
        -- (is_unknown_segment) and listed in flagged_records
        {{ bankpipe.enum_value('segmen', segments) }} as segment,

        ---------- booleans
        {{ bankpipe.is_unknown_value('segmen', segments) }} as is_unknown_segment,
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
        when customer_id is null then 'missing_customer_id'
        when is_deleted then null  -- a tombstone carries only its key
    end as rejection_rule
from renamed
