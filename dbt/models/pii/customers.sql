{#- The one place clear customer PII lives outside bronze (schema silver_pii, which the analyst role
    cannot read; on Snowflake also behind a masking policy): the current version of each customer
    with its clear names and e-mail, and the pseudonyms that link it to the analyst-facing models. -#}

with

versions as (

    select
        renamed.*,
        case
            when customer_id is null then 'missing_customer_id'
            when is_deleted then null
        end as rejection_rule
    from (
        {{ bankpipe.customer_versions_select(clear=true) }}
    ) as renamed

),

current_customers as (

    {{ bankpipe.current_versions('versions', 'customer_id') }}

)

select
    ---------- ids
    customer_id,

    ---------- strings
    first_name,
    last_name,
    full_name,
    email,
    name_pseudonym,
    email_pseudonym,

    ---------- timestamps
    updated_at
from current_customers
