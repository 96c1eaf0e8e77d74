with

accounts as (

    select * from {{ ref('stg_accounts') }}

),

customers as (

    select customer_id, bank_id from {{ ref('stg_customers') }}

),

banks as (

    select bank_id from {{ ref('stg_banks') }}

),

known as (

    select
        ---------- ids
        accounts.account_id as account_key,
        accounts.account_id,
        coalesce(customers.customer_id, '-1') as customer_key,
        coalesce(banks.bank_id, '-1') as bank_key,

        ---------- strings
        accounts.account_type,

        ---------- numerics
        accounts.balance_idr,

        ---------- booleans
        accounts.is_unknown_account_type,
        customers.customer_id is not null as has_known_customer,

        ---------- timestamps
        accounts.created_at,
        accounts.updated_at
    from accounts
    left join customers on customers.customer_id = accounts.customer_id
    left join banks on banks.bank_id = customers.bank_id

),

unknown as (

    select
        '-1' as account_key,
        cast(null as {{ dbt.type_string() }}) as account_id,
        '-1' as customer_key,
        '-1' as bank_key,
        'Unknown' as account_type,
        cast(null as {{ bankpipe.type_money() }}) as balance_idr,
        false as is_unknown_account_type,
        false as has_known_customer,
        cast(null as {{ dbt.type_timestamp() }}) as created_at,
        cast(null as {{ dbt.type_timestamp() }}) as updated_at

)

select * from known
union all
select * from unknown
