{#- Every exchange rate bronze holds, checked. Bronze already types these (the FX client parses
    the API's JSON), so only the business rules remain. -#}
{%- set fields = ['rate_date', 'base', 'quote', 'rate', 'source'] %}

with

source as (

    select * from {{ source('bronze', 'raw_exchange_rates') }}

),

renamed as (

    select
        ---------- ids
        upper(trim(quote)) as currency,
        upper(trim(base)) as base_currency,

        ---------- strings
        source as rate_source,

        ---------- numerics: units of `currency` per 1 USD
        cast(rate as {{ bankpipe.type_rate() }}) as rate,

        ---------- dates and timestamps
        rate_date,
        fetched_at,

        ---------- lineage
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _source as source_name,
        {{ bankpipe.json_object_text(fields) }} as raw_record,
        {{ bankpipe.record_hash(fields) }} as record_hash

    from source

)

select
    renamed.*,
    case
        when base_currency <> 'USD' then 'unsupported_base'
        when currency not in (select currency_code from {{ ref('ref_currencies') }}) then 'unknown_currency'
        when rate <= 0 then 'non_positive_rate'
    end as rejection_rule
from renamed
