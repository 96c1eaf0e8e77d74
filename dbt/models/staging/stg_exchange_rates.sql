with

valid_rates as (

    select * from {{ ref('base_exchange_rates') }}
    where rejection_rule is null

),

-- One rate per currency and day. A live API value beats the offline ECB snapshot for the same
-- day; among equals, the latest fetch wins (a re-fetch corrects an earlier answer).
ranked as (

    select
        valid_rates.*,
        row_number() over (
            partition by currency, rate_date
            order by case when rate_source = 'ecb_snapshot' then 1 else 0 end, fetched_at desc, loaded_at desc, record_hash desc
        ) as rate_rank
    from valid_rates

)

select
    ---------- ids
    currency,

    ---------- strings
    rate_source,

    ---------- numerics: units of `currency` per 1 USD
    rate,

    ---------- dates and timestamps
    rate_date,
    fetched_at,

    ---------- lineage
    batch_id,
    loaded_at
from ranked
where rate_rank = 1
