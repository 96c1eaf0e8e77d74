{#- Locations with coordinates from the reference seeds: the city's own when city and province
    both match, else the province's centroid, else the city's when only the city is known. -#}

with

locations as (

    select * from {{ ref('stg_locations') }}

),

cities as (

    select
        {{ bankpipe.place_key('kota') }} as city_key,
        {{ bankpipe.place_key('provinsi', province=true) }} as province_key,
        kota as reference_city,
        latitude,
        longitude
    from {{ ref('ref_indonesia_cities') }}

),

-- A city name that exists in one province only can be placed without its province.
unambiguous_cities as (

    select city_key, min(reference_city) as reference_city, min(latitude) as latitude, min(longitude) as longitude
    from cities
    group by city_key
    having count(*) = 1

),

provinces as (

    select
        {{ bankpipe.place_key('provinsi', province=true) }} as province_key,
        provinsi as reference_province,
        iso_code,
        latitude,
        longitude
    from {{ ref('ref_indonesia_provinces') }}

),

keyed as (

    select
        locations.*,
        {{ bankpipe.place_key('locations.city') }} as city_key,
        {{ bankpipe.place_key('locations.province', province=true) }} as province_key
    from locations

)

select
    ---------- ids
    keyed.location_id,

    ---------- strings
    keyed.city,
    {{ bankpipe.city_display_name('keyed.city') }} as city_name,
    keyed.province,
    provinces.iso_code as province_iso_code,
    case
        when city_match.city_key is not null then 'city'
        when provinces.province_key is not null then 'province'
        when city_only.city_key is not null then 'city_only'
        else 'none'
    end as geocode_level,

    ---------- numerics
    coalesce(city_match.latitude, provinces.latitude, city_only.latitude) as latitude,
    coalesce(city_match.longitude, provinces.longitude, city_only.longitude) as longitude,

    ---------- timestamps
    keyed.updated_at,

    ---------- lineage
    keyed.batch_id,
    keyed.loaded_at
from keyed
left join cities as city_match
    on city_match.city_key = keyed.city_key and city_match.province_key = keyed.province_key
left join provinces
    on provinces.province_key = keyed.province_key
left join unambiguous_cities as city_only
    on city_only.city_key = keyed.city_key and provinces.province_key is null
