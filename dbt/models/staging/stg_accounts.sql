with

current_accounts as (

    {{ bankpipe.current_versions(ref('base_accounts'), 'account_id') }}

)

select
    ---------- ids
    account_id,
    customer_id,

    ---------- strings
    account_type,

    ---------- numerics
    balance_idr,

    ---------- booleans
    is_unknown_account_type,

    ---------- timestamps
    created_at,
    updated_at,

    ---------- lineage
    batch_id,
    loaded_at
from current_accounts
