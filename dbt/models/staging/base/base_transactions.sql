{#- Every distinct transaction record bronze has received, typed and checked: the one place where
    transaction records are deduplicated and validated. Valid rows feed stg_transactions, the
    others rejected_records. Incremental and append-only: each run reads only bronze rows loaded
    after the last run's watermark, so a run costs what the new data costs (not the history).
    The rules are macros/transactions.sql (checked_transactions), shared with base_transactions_tail. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}

{{ bankpipe.checked_transactions(
    watermark=bankpipe.loaded_watermark() if is_incremental() else none,
    history=this if is_incremental() else none) }}
