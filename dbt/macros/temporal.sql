{#- Date/time helpers that differ between adapters. -#}

{#- Seconds since the epoch, for RANGE window frames over time (portable where interval frames are not). -#}
{% macro epoch_seconds(expr) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__epoch_seconds(expr) -%}
    cast(epoch({{ expr }}) as bigint)
{%- endmacro %}

{% macro snowflake__epoch_seconds(expr) -%}
    date_part(epoch_second, {{ expr }})
{%- endmacro %}

{#- ISO day of week: Monday = 1 … Sunday = 7. -#}
{% macro iso_day_of_week(expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expr) -%}
    isodow({{ expr }})
{%- endmacro %}

{% macro snowflake__iso_day_of_week(expr) -%}
    dayofweekiso({{ expr }})
{%- endmacro %}

{% macro iso_week(expr) -%}
    {{ return(adapter.dispatch('iso_week', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__iso_week(expr) -%}
    weekofyear({{ expr }})
{%- endmacro %}

{% macro snowflake__iso_week(expr) -%}
    weekiso({{ expr }})
{%- endmacro %}

{#- A yyyymmdd integer key for dim_date. -#}
{% macro date_key(expr) -%}
    cast(extract(year from {{ expr }}) * 10000 + extract(month from {{ expr }}) * 100 + extract(day from {{ expr }}) as integer)
{%- endmacro %}

{#- Every day from start to end (inclusive) as column `date_day`; start/end are SQL date expressions. -#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'bankpipe')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    select cast(d as date) as date_day
    from generate_series(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp), interval 1 day) as t(d)
{%- endmacro %}

{% macro snowflake__date_spine(start_date, end_date) -%}
    select date_day from (
        select dateadd(day, row_number() over (order by seq4()) - 1, {{ start_date }}) as date_day
        from table(generator(rowcount => 20000))
    ) as spine
    where date_day <= {{ end_date }}
{%- endmacro %}

{#- Great-circle distance in km between two points given in degrees. -#}
{% macro haversine_km(lat1, lon1, lat2, lon2) -%}
    2 * 6371.0 * asin(sqrt(
        power(sin(radians({{ lat2 }} - {{ lat1 }}) / 2), 2)
        + cos(radians({{ lat1 }})) * cos(radians({{ lat2 }})) * power(sin(radians({{ lon2 }} - {{ lon1 }}) / 2), 2)
    ))
{%- endmacro %}
