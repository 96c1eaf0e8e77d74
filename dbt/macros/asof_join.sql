{#- A left AS-OF join: for each left row, the right row of the same `by` key with the greatest
    `right_time` <= `left_time` (nulls when there is none); `left_by`/`right_by` may be none. DuckDB and Snowflake have native
    ASOF joins (sort-merge, no range-join blow-up); other adapters get a portable fallback that
    pairs each right row with the next one's time. Emits a complete join clause for a FROM list. -#}
{% macro asof_left_join(right_relation, right_alias, left_by, right_by, left_time, right_time) -%}
    {{ return(adapter.dispatch('asof_left_join', 'bankpipe')(right_relation, right_alias, left_by, right_by, left_time, right_time)) }}
{%- endmacro %}

{% macro duckdb__asof_left_join(right_relation, right_alias, left_by, right_by, left_time, right_time) -%}
    asof left join {{ right_relation }} as {{ right_alias }}
        on {% if left_by %}{{ left_by }} = {{ right_alias }}.{{ right_by }} and {% endif %}{{ left_time }} >= {{ right_alias }}.{{ right_time }}
{%- endmacro %}

{% macro snowflake__asof_left_join(right_relation, right_alias, left_by, right_by, left_time, right_time) -%}
    {%- if bankpipe.is_fakesnow() -%}
        {#- fakesnow cannot parse ASOF JOIN … MATCH_CONDITION: the portable join gives the same rows. -#}
        {{ return(bankpipe.default__asof_left_join(right_relation, right_alias, left_by, right_by, left_time, right_time)) }}
    {%- endif -%}
    asof join {{ right_relation }} as {{ right_alias }}
        match_condition ({{ left_time }} >= {{ right_alias }}.{{ right_time }})
        {% if left_by %}on {{ left_by }} = {{ right_alias }}.{{ right_by }}{% endif %}
{%- endmacro %}

{% macro default__asof_left_join(right_relation, right_alias, left_by, right_by, left_time, right_time) -%}
    left join (
        select
            asof_r.*,
            lead(asof_r.{{ right_time }}) over (
                {% if right_by %}partition by asof_r.{{ right_by }} {% endif %}order by asof_r.{{ right_time }}
            ) as _asof_next_time
        from {{ right_relation }} as asof_r
    ) as {{ right_alias }}
        on {% if left_by %}{{ left_by }} = {{ right_alias }}.{{ right_by }} and {% endif %}{{ left_time }} >= {{ right_alias }}.{{ right_time }}
        and ({{ right_alias }}._asof_next_time is null or {{ left_time }} < {{ right_alias }}._asof_next_time)
{%- endmacro %}
