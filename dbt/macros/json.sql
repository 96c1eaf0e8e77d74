{#- JSON helpers: DuckDB JSON text vs Snowflake VARIANT. -#}

{#- A JSON column as text (what rejects keep as `raw_record`). -#}
{% macro json_to_text(expr) -%}
    {{ return(adapter.dispatch('json_to_text', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__json_to_text(expr) -%}
    cast({{ expr }} as {{ dbt.type_string() }})
{%- endmacro %}

{% macro snowflake__json_to_text(expr) -%}
    to_json({{ expr }})
{%- endmacro %}

{#- A JSON object (as text) from column names, nulls kept: the raw record of a master-data row.
    `overrides` maps a column to the SQL expression written in its place (masked PII). -#}
{% macro json_object_text(columns, alias=none, overrides={}) -%}
    {{ return(adapter.dispatch('json_object_text', 'bankpipe')(columns, alias, overrides)) }}
{%- endmacro %}

{% macro default__json_object_text(columns, alias, overrides={}) -%}
    cast(json_object(
        {%- for c in columns %}
        '{{ c }}', {% if c in overrides %}{{ overrides[c] }}{% else %}{% if alias %}{{ alias }}.{% endif %}{{ bankpipe.bronze_column(c) }}{% endif %}{{ "," if not loop.last }}
        {%- endfor %}
    ) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro snowflake__json_object_text(columns, alias, overrides={}) -%}
    to_json(object_construct_keep_null(
        {%- for c in columns %}
        '{{ c }}', {% if c in overrides %}{{ overrides[c] }}{% else %}{% if alias %}{{ alias }}.{% endif %}{{ bankpipe.bronze_column(c) }}{% endif %}{{ "," if not loop.last }}
        {%- endfor %}
    ))
{%- endmacro %}

{#- One text field of a JSON column. -#}
{% macro json_text_field(expr, field) -%}
    {{ return(adapter.dispatch('json_text_field', 'bankpipe')(expr, field)) }}
{%- endmacro %}

{% macro default__json_text_field(expr, field) -%}
    json_extract_string({{ expr }}, '$.{{ field }}')
{%- endmacro %}

{% macro snowflake__json_text_field(expr, field) -%}
    {{ expr }}:{{ field }}::varchar
{%- endmacro %}
