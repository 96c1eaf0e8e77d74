{#- The bank's local time (var `bank_timezone`, Asia/Jakarta). Transaction times are written in it as
    naive wall-clock time, so an instant stored with an offset (the source's timestamptz columns,
    extracted as UTC text) must be converted before it is compared with them. -#}

{#- A timestamp with time zone as the bank's naive wall-clock time. -#}
{% macro to_bank_time(expr) -%}
    {{ return(adapter.dispatch('to_bank_time', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__to_bank_time(expr) -%}
    timezone('{{ var("bank_timezone") }}', {{ expr }})
{%- endmacro %}

{% macro snowflake__to_bank_time(expr) -%}
    cast(convert_timezone('{{ var("bank_timezone") }}', {{ expr }}) as timestamp_ntz)
{%- endmacro %}

{#- Timestamp text as the bank's wall-clock time: text with a UTC offset (`…+00`, `…+07:00`, `…Z`, `… UTC`) is
    converted; text without one is taken as bank time already — reading it in the session's time
    zone instead would make the result depend on where dbt runs. Null when it does not parse. -#}
{% macro parse_timestamp_as_bank_time(expr) -%}
    case
        when {{ bankpipe.has_utc_offset(expr) }}
            then {{ bankpipe.to_bank_time(bankpipe.parse_timestamp_tz(expr)) }}
        else {{ bankpipe.parse_timestamp(expr) }}
    end
{%- endmacro %}

{#- Whether timestamp text ends in a UTC offset after its time of day (a bare date's `-05` is not one). -#}
{% macro has_utc_offset(expr) -%}
    {{ return(adapter.dispatch('has_utc_offset', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__has_utc_offset(expr) -%}
    regexp_full_match(trim({{ expr }}), '.*:[0-9]{2}([.][0-9]+)? ?([Zz]|UTC|[+-][0-9]{2}(:?[0-9]{2})?)')
{%- endmacro %}

{% macro snowflake__has_utc_offset(expr) -%}
    regexp_like(trim({{ expr }}), '.*:[0-9]{2}([.][0-9]+)? ?([Zz]|UTC|[+-][0-9]{2}(:?[0-9]{2})?)')
{%- endmacro %}

{% macro parse_timestamp_tz(expr) -%}
    {{ return(adapter.dispatch('parse_timestamp_tz', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__parse_timestamp_tz(expr) -%}
    try_cast(trim({{ expr }}) as timestamptz)
{%- endmacro %}

{% macro snowflake__parse_timestamp_tz(expr) -%}
    {#- try_cast rather than try_to_timestamp_tz: the same on Snowflake, and the fakesnow emulator has it. -#}
    try_cast(trim({{ expr }}) as timestamp_tz)
{%- endmacro %}
