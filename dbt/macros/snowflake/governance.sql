{#- Who sees what on Snowflake (docs/deploy.md, "Roles"): the analyst role reads silver and gold,
    never silver_pii; the PII-reader role reads silver_pii; a masking policy on silver_pii's clear
    columns shows them only to a session holding the PII-reader role, so a grant made by mistake
    still shows masks. The roles themselves are created once by an administrator.

    Applied on every build because dbt re-creates tables (which drops a table's policy and grants).
    DuckDB has neither roles nor policies: there the file's owner is the only reader (state dir 0700)
    and these macros render nothing. `snowflake_governance: false` is for an emulator that lacks this
    DDL (fakesnow); a real account keeps the default. -#}

{% macro governance_enabled() -%}
    {{ return(target.type == 'snowflake' and var('snowflake_governance', true) | string | lower in ['true', '1', 'yes']) }}
{%- endmacro %}

{#- The masking policy (created once per database) and its attachment to this model's clear columns. -#}
{% macro apply_pii_masking_policy(columns=['first_name', 'last_name', 'full_name', 'email']) -%}
    {%- if bankpipe.governance_enabled() -%}
    {%- set policy = this.database ~ '.' ~ this.schema ~ '.pii_clear_text' -%}
    create masking policy if not exists {{ policy }} as (val varchar) returns varchar ->
        case when is_role_in_session('{{ var("pii_reader_role") }}') then val
             when val is null then null
             else '*****' end;
    {%- for c in columns %}
    alter table {{ this }} modify column {{ c }} set masking policy {{ policy }} force;
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- Schema and object grants of the two reader roles, re-applied after every build. -#}
{% macro grant_layer_access() -%}
    {%- if bankpipe.governance_enabled() -%}
    {%- set db = target.database -%}
    {%- set analyst = var('analyst_role') -%}
    {%- set pii_reader = var('pii_reader_role') -%}
    grant usage on database {{ db }} to role {{ analyst }};
    {%- for schema in ['silver', 'gold'] %}
    grant usage on schema {{ db }}.{{ schema }} to role {{ analyst }};
    grant select on all tables in schema {{ db }}.{{ schema }} to role {{ analyst }};
    grant select on all views in schema {{ db }}.{{ schema }} to role {{ analyst }};
    {%- endfor %}
    {#- never silver_pii, bronze (clear originals, the loader's) or audit for the analyst: revoked
        explicitly so a grant made by hand does not survive the next build -#}
    {%- for schema in ['silver_pii', 'bronze'] %}
    revoke all privileges on all tables in schema {{ db }}.{{ schema }} from role {{ analyst }};
    revoke all privileges on all views in schema {{ db }}.{{ schema }} from role {{ analyst }};
    revoke usage on schema {{ db }}.{{ schema }} from role {{ analyst }};
    {%- endfor %}
    grant usage on database {{ db }} to role {{ pii_reader }};
    grant usage on schema {{ db }}.silver_pii to role {{ pii_reader }};
    grant select on all tables in schema {{ db }}.silver_pii to role {{ pii_reader }};
    {#- a PII-cleared dashboard records each unmasking (bankpipe.pii.record_unmasking) -#}
    grant usage on schema {{ db }}.ops to role {{ pii_reader }};
    grant insert on table {{ db }}.ops.pii_access to role {{ pii_reader }};
    {%- endif -%}
{%- endmacro %}
