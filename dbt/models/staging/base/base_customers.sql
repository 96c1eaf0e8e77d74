{#- Every version of every customer bronze holds, typed and checked (tombstones included).
    Analyst-facing: names and e-mail only masked and pseudonymised (macros/pii.sql); the clear values
    are in silver_pii.customers. -#}

with

renamed as (

    {{ bankpipe.customer_versions_select(clear=false) }}

)

select
    renamed.*,
    case
        when customer_id is null then 'missing_customer_id'
        when is_deleted then null  -- a tombstone carries only its key
    end as rejection_rule
from renamed
