{#- RFM segmentation of current customers on successful transactions, as of the latest
    transaction date in the data (not today: the result must not change when nothing new arrives). -#}

with

customers as (

    select * from {{ ref('dim_customers') }}
    where is_current and customer_key <> '-1'

),

as_of as (

    select max(transaction_date) as as_of_date from {{ ref('fact_transaction') }}

),

-- Successful transactions per customer, from agg_account_activity (kept up to date incrementally).
activity as (

    select
        customer_key,
        max(last_successful_date) as last_transaction_date,
        sum(successful_count) as frequency,
        sum(successful_amount_idr) as monetary_idr
    from {{ ref('agg_account_activity') }}
    where customer_key <> '-1'
    group by customer_key

),

measured as (

    select
        customers.customer_key,
        customers.full_name_masked,
        customers.segment,
        activity.last_transaction_date,
        {{ dbt.datediff('activity.last_transaction_date', 'as_of.as_of_date', 'day') }} as recency_days,
        coalesce(activity.frequency, 0) as frequency,
        coalesce(activity.monetary_idr, 0) as monetary_idr,
        as_of.as_of_date
    from customers
    cross join as_of
    left join activity on activity.customer_key = customers.customer_key

),

scored as (

    select
        measured.*,
        case when frequency > 0 then ntile(5) over (
            partition by frequency > 0 order by recency_days desc, customer_key) end as recency_score,
        case when frequency > 0 then ntile(5) over (
            partition by frequency > 0 order by frequency, customer_key) end as frequency_score,
        case when frequency > 0 then ntile(5) over (
            partition by frequency > 0 order by monetary_idr, customer_key) end as monetary_score
    from measured

)

select
    ---------- ids
    customer_key,

    ---------- strings
    full_name_masked,
    segment as customer_segment,
    case
        when frequency = 0 then 'No activity'
        when recency_score >= 4 and frequency_score >= 4 and monetary_score >= 4 then 'Champions'
        when recency_score >= 3 and frequency_score >= 4 then 'Loyal'
        when recency_score >= 4 and frequency_score <= 2 then 'New'
        when recency_score <= 2 and frequency_score >= 3 then 'At risk'
        when recency_score <= 2 and frequency_score <= 2 then 'Hibernating'
        else 'Potential'
    end as rfm_segment,
    cast(recency_score as {{ dbt.type_string() }}) || cast(frequency_score as {{ dbt.type_string() }})
        || cast(monetary_score as {{ dbt.type_string() }}) as rfm_code,

    ---------- numerics
    recency_days,
    frequency,
    monetary_idr,
    recency_score,
    frequency_score,
    monetary_score,

    ---------- dates
    last_transaction_date,
    as_of_date
from scored
