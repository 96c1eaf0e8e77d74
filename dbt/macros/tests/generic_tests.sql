{#- The few generic tests bankpipe needs beyond dbt's four (no `dbt deps`: no network). -#}

{#- Every row satisfies a boolean SQL expression. -#}
{% test expression_is_true(model, expression, where=none) %}
select *
from {{ model }}
where not ({{ expression }})
{% if where %}and ({{ where }}){% endif %}
{% endtest %}

{#- Values lie within [min_value, max_value] (either bound optional); nulls pass. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    1 = 0
    {% if min_value is not none %} or {{ column_name }} {{ '<' if inclusive else '<=' }} {{ min_value }}{% endif %}
    {% if max_value is not none %} or {{ column_name }} {{ '>' if inclusive else '>=' }} {{ max_value }}{% endif %}
  )
{% endtest %}

{#- The combination of columns is unique (the grain of a model with a compound key). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Two relations have the same number of rows (e.g. a fact and its enriched twin). -#}
{% test equal_rowcount(model, compare_model) %}
with a as (select count(*) as n from {{ model }}),
     {#- the same test window on both sides (see test_window.sql) -#}
     b as (select count(*) as n from {{ bankpipe.default__get_where_subquery(compare_model) }})
select a.n as model_rows, b.n as compare_rows
from a cross join b
where a.n <> b.n
{% endtest %}

{#- The model's dimension key values are present in the dimension (unknown member '-1' included). -#}
{% test has_unknown_member(model, column_name, unknown_value="'-1'") %}
select 1 as missing_unknown_member
where not exists (select 1 from {{ model }} where {{ column_name }} = {{ unknown_value }})
{% endtest %}
