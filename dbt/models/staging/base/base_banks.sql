{#- Every version of every bank bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['bank_id', 'nama_bank', 'singkatan', 'kantor_pusat', 'jenis_bank'] %}

with

source as (

    select * from {{ source('bronze', 'raw_banks') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('bank_id') }} as bank_id,

        ---------- strings
        coalesce({{ bankpipe.clean_text('nama_bank') }}, 'Unknown') as bank_name,
        {{ bankpipe.clean_text('singkatan') }} as bank_short_name,
        {{ bankpipe.clean_text('kantor_pusat') }} as head_office_city,
        case
            when {{ bankpipe.clean_text('jenis_bank') }} is null then 'Unknown'
            else {{ bankpipe.canonical_value('jenis_bank', ['BUMN', 'Swasta', 'Syariah']) }}
        end as bank_type,

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
        when bank_id is null then 'missing_bank_id'
        when is_deleted then null
        when bank_type is null then 'unknown_bank_type'
    end as rejection_rule
from renamed
