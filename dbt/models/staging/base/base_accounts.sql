{#- Every version of every account bronze holds, typed and checked (tombstones included). -#}
{%- set fields = ['id', 'customer_id', 'tipe_akun', 'saldo'] %}
{%- set account_types = ['Savings', 'Checking', 'Deposit', 'Loan'] %}

with

source as (

    select * from {{ source('bronze', 'raw_accounts') }}

),

renamed as (

    select
        ---------- ids
        {{ bankpipe.clean_text('id') }} as account_id,
        {{ bankpipe.clean_text('customer_id') }} as customer_id,

        ---------- strings: a type the bank introduced after this project (or none) keeps the account,
        ---------- flagged (is_unknown_account_type) and listed in flagged_records
        {{ bankpipe.enum_value('tipe_akun', account_types) }} as account_type,

        ---------- numerics (IDR); a missing balance stays null (unknown), not 0
        {{ bankpipe.to_money('saldo') }} as balance_idr,
        {{ bankpipe.clean_text('saldo') }} is not null as has_balance,

        ---------- booleans
        {{ bankpipe.is_unknown_value('tipe_akun', account_types) }} as is_unknown_account_type,
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
        -- a missing or unknown customer keeps the account (customer_key '-1', flagged unknown_customer)
        when has_balance and balance_idr is null then 'invalid_balance'
    end as rejection_rule
from renamed
