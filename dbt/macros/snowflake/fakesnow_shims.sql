{#- Shims for the fakesnow emulator (CI's stand-in for Snowflake). Each applies only when
    `target.account == 'fakesnow'`; on a real account every macro here hands over to dbt-snowflake's
    own implementation with the same arguments, so the SQL sent to Snowflake is unchanged.

    Needs, in dbt_project.yml:   dispatch: [{macro_namespace: dbt, search_order: [bankpipe, dbt]}]
    (for the dispatched create_table_as; the two non-dispatched macros below override by name,
    as root-project macros do.)

    What fakesnow 0.12 cannot run, found by `dbt build` against `fakesnow -s`:
    - a TEMPORARY table or view with a database-qualified name ("TEMPORARY table names can only use
      the temp catalog") — dbt uses them for incremental tmp relations and for unit tests;
    - DML wrapped in `begin; …; commit;` sent as one request (dbt-snowflake wraps append,
      delete+insert and snapshot merges that way).
    Both are dropped (tmp relations become ordinary transient ones, which dbt drops after use). -#}

{% macro is_fakesnow() -%}
    {{ return(target.type == 'snowflake' and target.account | lower == 'fakesnow') }}
{%- endmacro %}

{% macro snowflake__create_table_as(temporary, relation, compiled_code, language='sql') -%}
    {%- if bankpipe.is_fakesnow() -%}
        {{ return(dbt.snowflake__create_table_as(False, relation, compiled_code, language)) }}
    {%- endif -%}
    {{ return(dbt.snowflake__create_table_as(temporary, relation, compiled_code, language)) }}
{%- endmacro %}

{% macro snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary=False) -%}
    {%- if bankpipe.is_fakesnow() -%}
        {{ return(dbt.snowflake__create_view_as_with_temp_flag(relation, sql, False)) }}
    {%- endif -%}
    {{ return(dbt.snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary)) }}
{%- endmacro %}

{% macro snowflake_dml_explicit_transaction(dml) -%}
    {%- if bankpipe.is_fakesnow() -%}
        {{ return(dml) }}
    {%- endif -%}
    {{ return(dbt.snowflake_dml_explicit_transaction(dml)) }}
{%- endmacro %}
