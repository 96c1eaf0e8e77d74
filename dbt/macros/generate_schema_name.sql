{#- Use the configured schema name as is (silver, gold, audit), not dbt's default `<target>_<custom>`:
    the layer names are contracts that outside checks query (DESIGN.md). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
