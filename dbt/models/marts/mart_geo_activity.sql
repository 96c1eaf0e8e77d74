{#- Activity per province and city with coordinates. A transaction is placed where it happened
    (its location_id) when the source says so, else at the customer's home location. -#}

with

-- Per (location, customer, account), kept up to date incrementally by agg_account_activity: the
-- joins and distinct counts below work on these groups, not on every transaction.
per_account_place as (

    select
        location_key,
        customer_key,
        account_key,
        sum(transaction_count) as transaction_count,
        sum(successful_count) as successful_count,
        sum(failed_count) as failed_count,
        coalesce(sum(successful_amount_idr), 0) as successful_amount_idr,
        sum(anomalous_count) as anomalous_count
    from {{ ref('agg_account_activity') }}
    group by location_key, customer_key, account_key

),

homes as (

    select customer_key, location_key from {{ ref('dim_customers') }} where is_current

),

placed as (

    select
        per_account_place.*,
        case when per_account_place.location_key <> '-1' then per_account_place.location_key
             else coalesce(homes.location_key, '-1') end as activity_location_key,
        per_account_place.location_key <> '-1' as is_placed_by_transaction
    from per_account_place
    left join homes on homes.customer_key = per_account_place.customer_key

),

located as (

    select placed.*, locations.province, locations.city_name, locations.province_iso_code
    from placed
    inner join {{ ref('dim_locations') }} as locations on locations.location_key = placed.activity_location_key

),

-- Coordinates per (province, city): several location ids can name the same place.
places as (

    select province, city_name, max(latitude) as latitude, max(longitude) as longitude, max(geocode_level) as geocode_level
    from {{ ref('dim_locations') }}
    group by province, city_name

),

activity as (

    select
        province,
        city_name,
        max(province_iso_code) as province_iso_code,
        cast(sum(transaction_count) as bigint) as transaction_count,
        cast(sum(successful_count) as bigint) as successful_count,
        cast(sum(failed_count) as bigint) as failed_count,
        count(distinct account_key) as account_count,
        count(distinct customer_key) as customer_count,
        sum(successful_amount_idr) as successful_amount_idr,
        cast(sum(anomalous_count) as bigint) as anomalous_count,
        cast(sum(case when is_placed_by_transaction then transaction_count else 0 end) as bigint)
            as placed_by_transaction_count
    from located
    group by province, city_name

)

select
    ---------- ids
    {{ dbt.hash("activity.province || '|' || activity.city_name") }} as geo_key,

    ---------- strings
    activity.province,
    activity.city_name as city,
    activity.province_iso_code,
    places.geocode_level,

    ---------- numerics
    places.latitude,
    places.longitude,
    activity.transaction_count,
    activity.successful_count,
    activity.failed_count,
    activity.account_count,
    activity.customer_count,
    activity.successful_amount_idr,
    {{ bankpipe.money_or_null('activity.successful_amount_idr / nullif(activity.successful_count, 0)') }}
        as avg_successful_amount_idr,
    activity.anomalous_count,
    cast(activity.anomalous_count as double) / activity.transaction_count as anomaly_rate,
    activity.placed_by_transaction_count
from activity
left join places on places.province = activity.province and places.city_name = activity.city_name
