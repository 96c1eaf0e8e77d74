{#- Every version of every fraud case with when bankpipe could use it (macros/point_in_time.sql):
    known_from = max(reported_at, the load), the initial backfill from its reported_at. A case's
    history is as-of: at a time t the version in force is the latest with known_from < t, so a case
    confirmed and later reversed counts as fraud only between the two. Training labels and the
    report-based ML features both read this one definition. A view over bronze, so the real-time
    path sees a case as soon as it is ingested (stg_fraud_cases is refreshed by `transform` only). -#}
{{ config(materialized='view') }}

with

ranged as (

    {{ bankpipe.version_history(
        ref('base_fraud_cases'), 'transaction_id',
        ['is_confirmed_fraud', 'reported_at', 'is_deleted'],
        source_time='coalesce(v.reported_at, ' ~ bankpipe.to_bank_time('v.updated_at') ~ ')') }}

)

select
    ---------- ids
    transaction_id,

    ---------- booleans
    -- a deletion (tombstone) withdraws the case: in force, but not fraud
    is_confirmed_fraud and not is_deleted as is_confirmed_fraud,
    is_deleted,

    ---------- timestamps
    reported_at,
    known_from,
    known_until,

    ---------- lineage
    batch_id,
    loaded_at
from ranged
