{#- Additive aggregates of fact_transaction_enriched (models/marts/aggregates): counts, sums and
    maxima per group, which the marts then roll up. On a build that only appended transactions
    they merge the new rows into the groups they touch instead of re-reading the whole history;
    on any other build they are recomputed. -#}

{#- Whether this incremental build of an aggregate may merge just the new rows of `source`.

    Only when every row of `source` the aggregate has not counted yet is newer than its watermark:
    - the build is one of new stream files only (bankpipe records `audit.test_window` for those,
      see macros/tests/test_window.sql): master data and rates did not change, so no earlier
      transaction was re-resolved or re-priced in place;
    - and rows(source) = Σ count_column(this) + rows(source newer than the watermark). A
      re-delivered transaction replaces its earlier row (delete+insert on transaction_id) and is
      counted as new, so any replacement breaks the equality: the earlier row's contribution
      cannot be taken back, and the aggregate is recomputed instead.
    A dbt unit test overrides this macro (the fixture `this` cannot be queried). -#}
{% macro appends_only(source, count_column) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if not bankpipe.stream_only_build() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set check -%}
        select
            (select count(*) from {{ source }}) as source_rows,
            (select coalesce(sum({{ count_column }}), 0) from {{ this }}) as counted_rows,
            (select count(*) from {{ source }} where loaded_at > {{ bankpipe.loaded_watermark() }}) as new_rows
    {%- endset -%}
    {%- set row = run_query(check).rows[0] -%}
    {%- set appending = row[0] == row[1] + row[2] -%}
    {%- if not appending -%}
        {%- do log(this ~ ": " ~ row[0] ~ " source rows, " ~ row[1] ~ " counted + " ~ row[2] ~ " new: recomputed", info=false) -%}
    {%- endif -%}
    {{ return(appending) }}
{%- endmacro %}

{#- pre_hook of an aggregate: empty it when this incremental build recomputes it, so that groups
    which no longer exist do not survive the delete+insert of the recomputed ones. -#}
{% macro reset_unless_appending(source, count_column) -%}
    {%- if execute and is_incremental() and not bankpipe.appends_only(source, count_column) -%}
        delete from {{ this }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of an aggregate to write: `grouped` (a CTE of per-group measures over the rows read)
    as it is, or — when appending — merged with the stored rows of the same groups. `sums` add up,
    `maxima` take the larger; `loaded_at` (the latest row counted) is always a maximum. -#}
{% macro merge_groups(grouped, keys, sums, maxima, appending) -%}
    {%- if appending %}
    {#- sums come back as the stored column's type (a sum of counts would widen to hugeint on DuckDB) -#}
    {%- set stored_types = {} -%}
    {%- if not (this | string).startswith('__dbt__cte__') -%}
        {%- for col in adapter.get_columns_in_relation(this) -%}
            {%- do stored_types.update({col.name | lower: col.data_type}) -%}
        {%- endfor -%}
    {%- endif %}
    select
        {%- for k in keys %}
        {{ k }},
        {%- endfor %}
        {%- for c in sums %}
        {%- if c in stored_types %}
        cast(sum({{ c }}) as {{ stored_types[c] }}) as {{ c }},
        {%- else %}
        sum({{ c }}) as {{ c }},
        {%- endif %}
        {%- endfor %}
        {%- for c in maxima %}
        max({{ c }}) as {{ c }},
        {%- endfor %}
        max(loaded_at) as loaded_at
    from (
        {%- set columns = keys + sums + maxima + ['loaded_at'] %}
        select {{ columns | join(', ') }} from {{ grouped }}
        union all
        select {% for c in columns %}stored.{{ c }}{{ ", " if not loop.last }}{% endfor %}
        from {{ this }} as stored
        inner join {{ grouped }} as touched
            on {% for k in keys %}touched.{{ k }} = stored.{{ k }}{{ " and " if not loop.last }}{% endfor %}
    ) as both_sides
    group by {{ keys | join(', ') }}
    {%- else %}
    select * from {{ grouped }}
    {%- endif %}
{%- endmacro %}
