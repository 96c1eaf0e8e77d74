{#- Every current master-data record that is kept but flagged, with the flag and the value that
    raised it: the data-quality counterpart of rejected_records for what a bank keeps (a segment it
    just introduced, an account whose customer is unknown). Master data only: transactions carry
    their flags as columns (stg_transactions.is_orphan), and listing them would re-read every
    transaction on every build. -#}

with

customers as (

    select customer_id, segment, is_unknown_segment, batch_id, loaded_at from {{ ref('stg_customers') }}

),

accounts as (

    select account_id, customer_id, account_type, is_unknown_account_type, batch_id, loaded_at
    from {{ ref('stg_accounts') }}

),

flags as (

    select 'customer' as entity, customer_id as record_key, 'unknown_segment' as flag,
           nullif(segment, 'Unknown') as flagged_value, batch_id, loaded_at
    from customers
    where is_unknown_segment

    union all

    select 'account', account_id, 'unknown_account_type', nullif(account_type, 'Unknown'), batch_id, loaded_at
    from accounts
    where is_unknown_account_type

    union all

    select 'account', accounts.account_id, 'unknown_customer', accounts.customer_id, accounts.batch_id, accounts.loaded_at
    from accounts
    left join customers on customers.customer_id = accounts.customer_id
    where customers.customer_id is null

    union all

    select 'bank', bank_id, 'unknown_bank_type', nullif(bank_type, 'Unknown'), batch_id, loaded_at
    from {{ ref('stg_banks') }}
    where is_unknown_bank_type

)

select
    ---------- ids
    {{ dbt.hash("flags.entity || '|' || flags.record_key || '|' || flags.flag") }} as flag_id,
    flags.entity,
    flags.record_key,

    ---------- strings
    flags.flag,
    descriptions.description as flag_description,
    flags.flagged_value as value,

    ---------- lineage
    flags.batch_id,
    flags.loaded_at
from flags
left join {{ ref('ref_quality_flags') }} as descriptions
    on descriptions.entity = flags.entity and descriptions.flag = flags.flag
