with

known as (

    select
        ---------- ids
        bank_id as bank_key,
        bank_id,

        ---------- strings
        bank_name,
        bank_short_name,
        head_office_city,
        bank_type,

        ---------- booleans
        is_unknown_bank_type
    from {{ ref('stg_banks') }}

),

unknown as (

    select
        '-1' as bank_key,
        cast(null as {{ dbt.type_string() }}) as bank_id,
        'Unknown bank' as bank_name,
        cast(null as {{ dbt.type_string() }}) as bank_short_name,
        cast(null as {{ dbt.type_string() }}) as head_office_city,
        'Unknown' as bank_type,
        false as is_unknown_bank_type

)

select * from known
union all
select * from unknown
