{#- The bronze side of the reconciliation: every distinct transaction record bronze holds, hashed
    once, by its own code (not base_transactions'): record_hash, currency and amount of the first
    copy. Incremental by bronze batch, not by load time: a batch committed late with an older
    _loaded_at is still read here, so if base_transactions' time watermark missed it the control
    totals no longer balance. Each batch read leaves one marker row (null hash), so that a batch of
    nothing but re-sent records is not read again. Bronze is append-only; `--full-refresh` re-reads
    it all. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

{%- set fields = bankpipe.transaction_fields() %}

{#- The batches not read yet, listed before the query runs: a constant list is filtered inside
    the bronze scan, before the view extracts the JSON fields; a `not in (subquery)` is applied
    after, to every record ever loaded (45 s instead of about 1 s at 5 M records). -#}
{%- set new_batches = [] -%}
{%- if is_incremental() and execute -%}
    {%- set found = run_query(
        "select distinct _batch_id from " ~ source('bronze', 'raw_transactions')
        ~ " except select batch_id from " ~ this ~ " where record_hash is null") -%}
    {%- set new_batches = found.columns[0].values() | list -%}
{%- endif %}

with

new_rows as (

    select
        raw._batch_id as batch_id,
        {{ bankpipe.record_hash(fields, 'raw') }} as record_hash,
        {{ bankpipe.transaction_currency('raw.mata_uang') }} as currency,
        {{ bankpipe.amount_text('raw.jumlah_transaksi') }} as amount_text
    from {{ source('bronze', 'raw_transactions') }} as raw
    {% if is_incremental() %}
    where raw._batch_id in (
        {%- for batch in new_batches %}'{{ batch | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}
        {{- "null" if not new_batches -}}
    )
    {% endif %}

),

first_copies as (

    -- the amount exactly as base_transactions reads it (macros/types.sql: to_money)
    select record_hash, min(batch_id) as batch_id, min(currency) as currency,
           min({{ bankpipe.money_amount('amount_text') }}) as amount
    from new_rows
    group by record_hash

)

select batch_id, record_hash, currency, amount
from first_copies
{% if is_incremental() %}
-- records re-sent in a later batch: probe the table with the new hashes (a semi join) rather than
-- hashing all of it for an anti join
where record_hash not in (
    select seen.record_hash from {{ this }} as seen
    where seen.record_hash in (select record_hash from first_copies)
)
{% endif %}

union all

select distinct batch_id, cast(null as {{ dbt.type_string() }}), cast(null as {{ dbt.type_string() }}),
       cast(null as {{ bankpipe.type_money() }})
from new_rows
