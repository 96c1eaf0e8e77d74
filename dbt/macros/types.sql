{#- Money is DECIMAL(18,2) end to end (FACTS.md: float money drifts); one definition, used everywhere. -#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'bankpipe')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    decimal(18, 2)
{%- endmacro %}

{% macro snowflake__type_money() -%}
    number(18, 2)
{%- endmacro %}

{#- FX rates keep the precision bronze stores them with. -#}
{% macro type_rate() -%}
    {{ return(adapter.dispatch('type_rate', 'bankpipe')()) }}
{%- endmacro %}

{% macro default__type_rate() -%}
    decimal(24, 10)
{%- endmacro %}

{% macro snowflake__type_rate() -%}
    number(24, 10)
{%- endmacro %}

{#- A text amount from the source as money, or null when it does not parse. -#}
{% macro to_money(expr) -%}
    {{ bankpipe.try_cast('trim(' ~ expr ~ ')', bankpipe.type_money()) }}
{%- endmacro %}

{#- Cast text, null when it does not convert. dbt.safe_cast would do, but its default (used by
    dbt-duckdb) is a plain cast that fails the whole model on the first bad value. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'bankpipe')(expr, type)) }}
{%- endmacro %}

{% macro default__try_cast(expr, type) -%}
    {{ dbt.safe_cast(expr, type) }}
{%- endmacro %}

{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro snowflake__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{#- Convert a money amount with a rate (units of `to` per unit of `from`), rounded to cents.
    DuckDB divides decimals in double precision (15+ significant digits, ample below 10^13);
    the result is cast back to money so nothing downstream sees a float. -#}
{% macro convert_money(amount, numerator_rate, denominator_rate) -%}
    cast(round(cast({{ amount }} as {{ bankpipe.type_rate() }}) * {{ numerator_rate }} / {{ denominator_rate }}, 2)
         as {{ bankpipe.type_money() }})
{%- endmacro %}
