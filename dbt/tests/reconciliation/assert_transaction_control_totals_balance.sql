{#- The reconciliation gate: every currency's control totals agree between bronze (distinct
    records), silver (+ rejects) and gold. Failing rows are stored so that `bankpipe transform`
    can quote their failure_message (the numbers) in its one-line error. -#}
{{ config(store_failures=true, severity='error') }}

select currency, failure_message
from {{ ref('reconciliation_transactions') }}
where not is_balanced
