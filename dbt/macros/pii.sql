{#- Customer PII by design (docs/transform.md, "Personal data").

    Clear names and e-mails live in one restricted schema, `silver_pii` (models/pii/); every other
    model carries a keyed pseudonym (stable across runs, useless without the key) and masked forms.
    The key sits in `silver_pii.pseudonym_key`, written from Settings (BANKPIPE_PII_KEY) by
    bankpipe.pii.install_key before every dbt invocation: reading it from the warehouse keeps it out
    of compiled SQL, target/ and dbt's logs (dbt only lets DBT_ENV_SECRET_* vars into profiles.yml),
    and whoever may read the key may read the clear values anyway. -#}

{#- The pseudonymisation key, as a scalar subquery (never a literal in compiled SQL). -#}
{% macro pii_key() -%}
    (select pii_key from {{ source('pii', 'pseudonym_key') }})
{%- endmacro %}

{#- A keyed hash of a text value: lower-case hex SHA-256 of key || '|' || value; null stays null. -#}
{% macro pseudonym(expr) -%}
    {{ return(adapter.dispatch('pseudonym', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__pseudonym(expr) -%}
    case when {{ expr }} is not null then sha256({{ bankpipe.pii_key() }} || '|' || {{ expr }}) end
{%- endmacro %}

{% macro snowflake__pseudonym(expr) -%}
    case when {{ expr }} is not null then sha2({{ bankpipe.pii_key() }} || '|' || {{ expr }}, 256) end
{%- endmacro %}

{#- A name shown to analysts: each word's first letter and five asterisks, `Gilang Dewanto` ->
    `G***** D*****` (a fixed count, so the mask does not tell the name's length). -#}
{% macro mask_name(expr) -%}
    {{ return(adapter.dispatch('mask_name', 'bankpipe')(expr)) }}
{%- endmacro %}

{% macro default__mask_name(expr) -%}
    regexp_replace({{ expr }}, '([^ ])[^ ]*', '\1*****', 'g')
{%- endmacro %}

{% macro snowflake__mask_name(expr) -%}
    regexp_replace({{ expr }}, '([^ ])[^ ]*', '\\1*****')
{%- endmacro %}

{#- An e-mail shown to analysts: first letter of the local part, ***, then @domain
    (`gilang.d@example.com` -> `g***@example.com`); no @ (or nothing before it) -> `***`. -#}
{% macro mask_email(expr) -%}
    case
        when {{ expr }} is null then null
        when {{ dbt.position("'@'", expr) }} > 1
            then left({{ expr }}, 1) || '***' || substr({{ expr }}, {{ dbt.position("'@'", expr) }})
        else '***'
    end
{%- endmacro %}

{#- Every bronze version of every customer, typed and checked (the body of base_customers).

    clear=false (base_customers, analyst-facing silver): names and e-mail only masked and
    pseudonymised, raw_record with the same masks; clear=true (silver_pii.customers): the clear values.
    One macro, so the restricted and the analyst-facing rows can never disagree on what a version is. -#}
{% macro customer_versions_select(clear=false) -%}
{%- set fields = ['id', 'nama_depan', 'nama_belakang', 'email', 'segmen', 'location_id', 'bank_id'] %}
{%- set segments = ['Gold', 'Silver', 'Platinum', 'Priority', 'Standard'] %}
{%- set first = bankpipe.clean_text(bankpipe.bronze_column('nama_depan')) %}
{%- set last = bankpipe.clean_text(bankpipe.bronze_column('nama_belakang')) %}
{%- set email = 'lower(' ~ bankpipe.clean_text(bankpipe.bronze_column('email')) ~ ')' %}
{%- set full = "nullif(trim(coalesce(" ~ first ~ ", '') || ' ' || coalesce(" ~ last ~ ", '')), '')" %}
    select
        ---------- ids
        {{ bankpipe.clean_text('id') }} as customer_id,
        {{ bankpipe.clean_text('location_id') }} as location_id,
        {{ bankpipe.clean_text('bank_id') }} as bank_id,

        ---------- strings
        {%- if clear %}
        {{ first }} as first_name,
        {{ last }} as last_name,
        {{ full }} as full_name,
        {{ email }} as email,
        {%- endif %}
        {{ bankpipe.mask_name(first) }} as first_name_masked,
        {{ bankpipe.mask_name(last) }} as last_name_masked,
        {{ bankpipe.mask_name(full) }} as full_name_masked,
        {{ bankpipe.mask_email(email) }} as email_masked,
        -- keyed hashes: the same person (name) or address (e-mail) gets the same value on every run
        {{ bankpipe.pseudonym('lower(' ~ full ~ ')') }} as name_pseudonym,
        {{ bankpipe.pseudonym(email) }} as email_pseudonym,
        -- a segment the bank introduced after this project (or none) keeps the customer, flagged
        -- (is_unknown_segment) and listed in flagged_records
        {{ bankpipe.enum_value('segmen', segments) }} as segment,

        ---------- booleans
        {{ bankpipe.is_unknown_value('segmen', segments) }} as is_unknown_segment,
        coalesce({{ email }} like '%_@_%._%', false) as has_valid_email,
        coalesce(_is_deleted, false) as is_deleted,

        ---------- timestamps
        _created_at as created_at,
        coalesce(_updated_at, _loaded_at) as updated_at,

        ---------- lineage
        _batch_id as batch_id,
        _loaded_at as loaded_at,
        _source as source_name,
        {#- the raw record as received, with the PII fields masked (the clear one stays in bronze) #}
        {{ bankpipe.json_object_text(fields, overrides={
            'nama_depan': bankpipe.mask_name(bankpipe.bronze_column('nama_depan')),
            'nama_belakang': bankpipe.mask_name(bankpipe.bronze_column('nama_belakang')),
            'email': bankpipe.mask_email(bankpipe.bronze_column('email')),
        }) }} as raw_record,
        {{ bankpipe.record_hash(fields + ['_is_deleted', '_updated_at'], keyed=true) }} as record_hash

    from {{ source('bronze', 'raw_customers') }}
{%- endmacro %}
