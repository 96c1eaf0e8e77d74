{#- Tests of an incremental build check the rows that build added.

    `bankpipe transform`, when it builds only what new bronze data reaches, first records the
    transactions' watermark (max loaded_at of base_transactions) in `audit.test_window`; the data
    tests of the transaction-grain models (var `tested_by_increment`) then read only rows loaded
    after it — a unique test over 5 M ids costs seconds, over the 50 k new ones next to nothing.
    Earlier rows were tested by the build that added them. Without the table (first build,
    `--all`, `--full-refresh`, a selection, dbt run by hand) every row is tested: bankpipe drops
    the table after each build. -#}

{#- dbt's hook for the `where` config of generic tests (reached through the dispatch search order
    in dbt_project.yml): the test window is added for the transaction-grain models. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set window = bankpipe.test_window_filter('loaded_at') if relation.identifier | lower in var('tested_by_increment', []) else '' -%}
    {%- set where = '(' ~ where ~ ') and ' ~ window if where and window else (where or window) -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- `column > the recorded watermark`, when a window is recorded; empty otherwise (test all rows). -#}
{% macro test_window_filter(column) -%}
    {%- if execute -%}
        {%- set window = adapter.get_relation(database=target.database, schema='audit', identifier='test_window') -%}
        {%- if window is not none -%}
            {{ return(adapter.dispatch('test_window_filter', 'bankpipe')(column, window)) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro default__test_window_filter(column, window) -%}
    ({{ column }} > (select max(tested_since) from {{ window }})
     or (select max(tested_since) from {{ window }}) is null)
{%- endmacro %}

{#- DuckDB: the watermark as a constant, read when the test runs. A subquery is not pushed into the
    scan, and on a view (stg_transactions) it is applied after the view's joins of every row:
    seconds per test at 5 M rows instead of milliseconds. -#}
{% macro duckdb__test_window_filter(column, window) -%}
    {%- set since = run_query('select cast(max(tested_since) as varchar) from ' ~ window).columns[0].values()[0] -%}
    {%- if since is not none -%}
        {{ column }} > cast('{{ since }}' as timestamp with time zone)
    {%- endif -%}
{%- endmacro %}

{#- Whether this build only adds new stream files (bankpipe records audit.test_window for such a
    build and for no other): master data and exchange rates are what the last build saw, so no
    earlier transaction can have become resolvable or priceable, and incremental models need not
    look for such rows. -#}
{% macro stream_only_build() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set window = adapter.get_relation(database=target.database, schema='audit', identifier='test_window') -%}
    {{ return(window is not none) }}
{%- endmacro %}
