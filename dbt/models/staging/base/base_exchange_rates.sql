{#- Every exchange rate bronze holds, checked. Bronze already types these (the FX client parses
    the API's JSON); the rate is still read with a cast that cannot fail, so that a bronze holding
    text (another warehouse, a hand-made load) gets a rule, not an error. A rate that passes is
    positive and plausible (seed ref_rate_limits): every division by it downstream is safe. -#}
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
        {{ bankpipe.try_cast('cast(rate as ' ~ dbt.type_string() ~ ')', bankpipe.type_rate()) }} as rate,

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
        when coalesce(base_currency, '') <> 'USD' then 'unsupported_base'
        when currency not in (select currency_code from {{ ref('ref_currencies') }}) then 'unknown_currency'
        when rate is null then 'invalid_rate'
        when rate <= 0 then 'non_positive_rate'
        -- a rate dated in the far past or future would stretch dim_date to that year
        when rate_date is null
            or rate_date < cast('{{ var("min_rate_date") }}' as date)
            or rate_date > {{ dbt.dateadd('day', var('max_days_after_load'), 'cast(loaded_at as date)') }}
            then 'rate_date_out_of_range'
        when not coalesce(rate between limits.min_units_per_usd and limits.max_units_per_usd, false)
            then 'implausible_rate'
    end as rejection_rule
from renamed
-- currency_code is unique in the seed, so the join adds no rows
left join {{ ref('ref_rate_limits') }} as limits on limits.currency_code = renamed.currency
