{#- Every version of every fraud case bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['transaction_id', 'confirmed_fraud', 'reported_at'] %}

with

source as (

    select * from {{ source('bronze', 'raw_fraud_cases') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('transaction_id') }} as transaction_id,

        ---------- booleans
        {{ bankpipe.parse_boolean('confirmed_fraud') }} as is_confirmed_fraud,
        coalesce(_is_deleted, false) as is_deleted,

        ---------- timestamps
        -- The source's timestamptz arrives as UTC text; transaction times are bank wall-clock time.
        {{ bankpipe.parse_timestamp_as_bank_time('reported_at') }} as reported_at,
        _created_at as created_at,
        coalesce(_updated_at, _loaded_at) as updated_at,

        ---------- lineage
        {{ bankpipe.master_lineage(fields) }}

    from source

)

select
    renamed.*,
    case
        when transaction_id is null then 'missing_transaction_id'
        when is_deleted then null
        when is_confirmed_fraud is null then 'invalid_fraud_flag'
        when reported_at is null then 'invalid_reported_at'
    end as rejection_rule
from renamed
