with

current_cases as (

    {{ bankpipe.current_versions(ref('base_fraud_cases'), 'transaction_id') }}

)

select
    ---------- ids
    transaction_id,

    ---------- booleans
    is_confirmed_fraud,

    ---------- timestamps
    reported_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_cases
