{#- Business rule: a customer's segment history is a sequence — at most one current version, and
    no two versions valid at the same time. -#}
with versions as (
    select customer_key, customer_version_key, valid_from, coalesce(valid_to, cast('9999-12-31' as {{ dbt.type_timestamp() }})) as valid_to, is_current
    from {{ ref('dim_customers') }}
    where customer_key <> '-1'
),

overlapping as (
    select a.customer_key, 'overlapping versions' as problem
    from versions as a
    inner join versions as b
        on a.customer_key = b.customer_key
       and a.customer_version_key < b.customer_version_key
       and a.valid_from < b.valid_to
       and b.valid_from < a.valid_to
),

currents as (
    select customer_key, 'more than one current version' as problem
    from versions
    where is_current
    group by customer_key
    having count(*) > 1
)

select * from overlapping
union all
select * from currents
