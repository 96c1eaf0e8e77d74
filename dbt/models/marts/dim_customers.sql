{#- Customers with their history (SCD2): a new row whenever a tracked attribute such as the
    segment changes; `customer_key` is the durable key facts use, `customer_version_key` the row's. -#}

with

versions as (

    select * from {{ ref('int_customer_versions') }}

),

locations as (

    select location_id from {{ ref('stg_locations') }}

),

banks as (

    select bank_id from {{ ref('stg_banks') }}

),

known as (

    select
        ---------- ids
        versions.customer_version_key,
        versions.customer_id as customer_key,
        versions.customer_id,
        coalesce(locations.location_id, '-1') as location_key,
        coalesce(banks.bank_id, '-1') as bank_key,

        ---------- strings
        -- masked forms and keyed pseudonyms only: the clear values are in silver_pii.customers
        versions.first_name_masked,
        versions.last_name_masked,
        versions.full_name_masked,
        versions.email_masked,
        versions.name_pseudonym,
        versions.email_pseudonym,
        versions.segment,

        ---------- booleans
        versions.is_unknown_segment,
        versions.is_current,

        ---------- timestamps
        versions.valid_from,
        versions.valid_to
    from versions
    left join locations on locations.location_id = versions.location_id
    left join banks on banks.bank_id = versions.bank_id

),

unknown as (

    select
        '-1' as customer_version_key,
        '-1' as customer_key,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        '-1' as location_key,
        '-1' as bank_key,
        cast(null as {{ dbt.type_string() }}) as first_name_masked,
        cast(null as {{ dbt.type_string() }}) as last_name_masked,
        'Unknown customer' as full_name_masked,
        cast(null as {{ dbt.type_string() }}) as email_masked,
        cast(null as {{ dbt.type_string() }}) as name_pseudonym,
        cast(null as {{ dbt.type_string() }}) as email_pseudonym,
        'Unknown' as segment,
        false as is_unknown_segment,
        true as is_current,
        cast(null as {{ dbt.type_timestamp() }}) as valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to

)

select * from known
union all
select * from unknown
