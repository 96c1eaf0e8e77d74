{#- Every version of every account bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['id', 'customer_id', 'tipe_akun', 'saldo'] %}

with

source as (

    select * from {{ source('bronze', 'raw_accounts') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('id') }} as account_id,
        {{ bankpipe.clean_text('customer_id') }} as customer_id,

        ---------- strings
        {{ bankpipe.canonical_value('tipe_akun', ['Savings', 'Checking', 'Deposit', 'Loan']) }} as account_type,

        ---------- numerics (IDR); a missing balance stays null (unknown), not 0
        {{ bankpipe.to_money('saldo') }} as balance_idr,
        {{ bankpipe.clean_text('saldo') }} is not null as has_balance,

        ---------- booleans
        coalesce(_is_deleted, false) as is_deleted,

        ---------- timestamps
        _created_at as created_at,
        coalesce(_updated_at, _loaded_at) as updated_at,

        ---------- lineage
        {{ bankpipe.master_lineage(fields) }}

    from source

)

select
    renamed.*,
    case
        when account_id is null then 'missing_account_id'
        when is_deleted then null
        when customer_id is null then 'missing_customer_id'
        when account_type is null then 'unknown_account_type'
        when has_balance and balance_idr is null then 'invalid_balance'
    end as rejection_rule
from renamed
