{#- Every version of every bank bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['bank_id', 'nama_bank', 'singkatan', 'kantor_pusat', 'jenis_bank'] %}
{%- set bank_types = ['BUMN', 'Swasta', 'Syariah'] %}

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
        -- a bank type that is new (a BPD, a digital bank) or missing keeps the bank, flagged
        {{ bankpipe.enum_value('jenis_bank', bank_types) }} as bank_type,

        ---------- booleans
        {{ bankpipe.is_unknown_value('jenis_bank', bank_types) }} as is_unknown_bank_type,
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
    end as rejection_rule
from renamed
