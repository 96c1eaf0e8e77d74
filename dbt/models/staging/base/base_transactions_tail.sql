{#- The transaction records bronze received after base_transactions' last run (files landed since
    the last `bankpipe transform`), typed and checked by the same macro as base_transactions
    (macros/transactions.sql), against base_transactions as history. A view: real-time scoring reads
    it between two transforms, so a landed file is scored with dbt's rules, not a copy of them. Once
    `transform` has run, the same records are in base_transactions and this view is empty. -#}
{{ config(materialized='view') }}

{{ bankpipe.checked_transactions(
    watermark="(select coalesce(max(loaded_at), cast('1900-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")) from "
              ~ ref('base_transactions') ~ ")",
    history=ref('base_transactions')) }}
