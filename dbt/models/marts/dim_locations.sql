with

known as (

    select
        ---------- ids
        location_id as location_key,
        location_id,

        ---------- strings
        city,
        city_name,
        province,
        province_iso_code,
        geocode_level,

        ---------- numerics
        latitude,
        longitude
    from {{ ref('int_locations_geocoded') }}

),

unknown as (

    select
        '-1' as location_key,
        cast(null as {{ dbt.type_string() }}) as location_id,
        'Unknown' as city,
        'Unknown' as city_name,
        'Unknown' as province,
        cast(null as {{ dbt.type_string() }}) as province_iso_code,
        'none' as geocode_level,
        cast(null as double) as latitude,
        cast(null as double) as longitude

)

select * from known
union all
select * from unknown
