{#- Parsing helpers that differ between DuckDB and Snowflake (try_strptime vs try_to_*).
    Each returns null for text that does not parse, so a model can name the rule it breaks. -#}

{% macro parse_date(expr) -%}
    {{ return(adapter.dispatch('parse_date', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__parse_date(expr) -%}
    cast(try_strptime(trim({{ expr }}), '%Y-%m-%d') as date)
{%- endmacro %}

{% macro snowflake__parse_date(expr) -%}
    try_to_date(trim({{ expr }}), 'YYYY-MM-DD')
{%- endmacro %}

{#- `date` + `time` text (the seed's `date` and `timestamp` fields) as a timestamp without time zone. -#}
{% macro parse_date_time(date_expr, time_expr) -%}
    {{ return(adapter.dispatch('parse_date_time', 'bankpipe')(date_expr, time_expr)) }}
{%- endmacro %}

{% macro default__parse_date_time(date_expr, time_expr) -%}
    try_strptime(trim({{ date_expr }}) || ' ' || trim({{ time_expr }}), '%Y-%m-%d %H:%M:%S')
{%- endmacro %}

{% macro snowflake__parse_date_time(date_expr, time_expr) -%}
    try_to_timestamp_ntz(trim({{ date_expr }}) || ' ' || trim({{ time_expr }}), 'YYYY-MM-DD HH24:MI:SS')
{%- endmacro %}

{#- Any ISO-ish timestamp text (fraud case `reported_at`). -#}
{% macro parse_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__parse_timestamp(expr) -%}
    try_cast(trim({{ expr }}) as timestamp)
{%- endmacro %}

{% macro snowflake__parse_timestamp(expr) -%}
    try_to_timestamp_ntz(trim({{ expr }}))
{%- endmacro %}

{#- Boolean text ('true', 't', '1', 'yes', …) as boolean; null when it is none of them. -#}
{% macro parse_boolean(expr) -%}
    case
        when lower(trim({{ expr }})) in ('true', 't', '1', 'yes', 'y') then true
        when lower(trim({{ expr }})) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}

{#- Blank text is missing text. -#}
{% macro clean_text(expr) -%}
    nullif(trim({{ expr }}), '')
{%- endmacro %}

{#- Whether text matches a regular expression as a whole (RE2 / POSIX syntax both read). -#}
{% macro regexp_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'bankpipe')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro snowflake__regexp_full_match(expr, pattern) -%}
    {#- Snowflake's REGEXP_LIKE matches the whole string -#}
    regexp_like({{ expr }}, '{{ pattern }}')
{%- endmacro %}
