{#- Point in time for data bankpipe receives late: when could bankpipe first have used a version?

    Not before the source says it happened (`source_time`, bank time) and not before bankpipe loaded
    it (`loaded_at`): known_from = max(source time, load time). Rows of the table's first load (the
    initial backfill) are the exception: they are known from their source time — bankpipe adopts
    the source system's history, otherwise every version (and every fraud label) from before the
    first extraction would count as unknown until the day bankpipe was switched on. -#}
{% macro known_from(source_time, loaded_at, first_loaded_at) -%}
    case
        when {{ loaded_at }} = {{ first_loaded_at }} then {{ source_time }}
        when {{ source_time }} > {{ bankpipe.to_bank_time(loaded_at) }} then {{ source_time }}
        else {{ bankpipe.to_bank_time(loaded_at) }}
    end
{%- endmacro %}

{#- The version history of one key of a base master model (valid rows, tombstones included), one
    row per version that changes a tracked attribute (re-extractions collapse to the first), with:
    valid_from / valid_to  the source's updated_at of this version and of the next change (SCD2);
    known_from / known_until  when bankpipe could use this version and the next change (macro
        known_from; bank time). The version in force at a time t is the one with
        known_from <= t < known_until (known_until null: still in force). A version loaded out of
        order (an older updated_at after a newer one) gets known_until <= known_from: never in force.
    The caller drops tombstones (`where not is_deleted`) after this: a deletion ends the version
    before it and is no version itself. -#}
{% macro version_history(relation, key, tracked, source_time='updated_at') -%}
    {%- set order = 'updated_at, loaded_at, batch_id, record_hash' %}
    select
        ranged.*,
        lead(updated_at) over (partition by {{ key }} order by {{ order }}) as next_change_at,
        lead(known_from) over (partition by {{ key }} order by {{ order }}) as known_until
    from (
        select * from (
            select
                versions.*,
                lag(attributes_hash) over (partition by {{ key }} order by {{ order }}) as previous_attributes_hash
            from (
                select
                    v.*,
                    {{ dbt.hash(bankpipe.tracked_text(tracked)) }} as attributes_hash,
                    {{ bankpipe.known_from(source_time, 'v.loaded_at', 'first_load.first_loaded_at') }} as known_from
                from {{ relation }} as v
                -- the table's first load, over every row bronze holds (rejected ones too)
                cross join (select min(loaded_at) as first_loaded_at from {{ relation }}) as first_load
                where v.rejection_rule is null
            ) as versions
        ) as ordered
        where previous_attributes_hash is null or previous_attributes_hash <> attributes_hash
    ) as ranged
{%- endmacro %}

{#- The tracked attributes as one text, nulls and booleans spelled out (for a change hash). -#}
{% macro tracked_text(columns) -%}
    {%- for c in columns -%}
        coalesce(cast({{ c }} as {{ dbt.type_string() }}), '') {{- " || '|' || " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
