{#- Business rule: a transaction is valued at the rate in force on its date — no rate for its
    currency was published after the one used and on or before the transaction date. -#}
select e.transaction_id, e.currency, e.transaction_date, e.fx_rate_date, later.rate_date as newer_rate_date
from {{ ref('fact_transaction_enriched') }} as e
inner join {{ ref('int_exchange_rates') }} as later
    on later.currency = e.currency
   and later.rate_date > e.fx_rate_date
   and later.rate_date <= e.transaction_date
where e.currency <> 'USD'
{%- set window = bankpipe.test_window_filter('e.loaded_at') %}
{%- if window %}
  and {{ window }}
{%- endif %}
