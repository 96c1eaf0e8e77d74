{#- Money is DECIMAL(18,2) end to end (FACTS.md: float money drifts); one definition, used everywhere. -#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'bankpipe')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    decimal(18, 2)
{%- endmacro %}

{% macro snowflake__type_money() -%}
    number(18, 2)
{%- endmacro %}

{#- FX rates keep the precision bronze stores them with. -#}
{% macro type_rate() -%}
    {{ return(adapter.dispatch('type_rate', 'bankpipe')()) }}
{%- endmacro %}

{% macro default__type_rate() -%}
    decimal(24, 10)
{%- endmacro %}

{% macro snowflake__type_rate() -%}
    number(24, 10)
{%- endmacro %}

{#- The widest exact type an amount is read into before any rule is checked: 20 integer digits (an
    absurd 10^18 is still a number, so it can be rejected as implausible rather than as unreadable)
    and 18 decimals (so that a third decimal is seen, not rounded away). -#}
{% macro type_wide_amount() -%}
    {{ return(adapter.dispatch('type_wide_amount', 'bankpipe')()) }}
{%- endmacro %}

{% macro default__type_wide_amount() -%}
    decimal(38, 18)
{%- endmacro %}

{% macro snowflake__type_wide_amount() -%}
    number(38, 18)
{%- endmacro %}

{#- Whether amount text is ambiguous: one '.' or ',' after one to three digits (not a lone 0) and
    followed by exactly three ("1.500", "1,802") is a thousands separator in one convention and a
    decimal point in the other. ("0.505" is not: no one groups a leading zero.) The cheap test of
    the separator's position spares most rows the regular expression. -#}
{% macro is_ambiguous_amount(expr) -%}
    {%- set s = 'trim(' ~ expr ~ ')' -%}
    coalesce(substr({{ s }}, -4, 1) in ('.', ',')
             and {{ bankpipe.regexp_full_match(s, '[+-]?[1-9][0-9]{0,2}[.,][0-9]{3}') }}, false)
{%- endmacro %}

{#- Amount text in the plain form a cast reads, or null when it cannot be read unambiguously.
    Read: plain text ("1802381.84", a JSON number, "1.5e3": the cast decides); Indonesian grouping
    ("1.802.381,84", "1.802.381") and decimal comma ("12,5"); English grouping ("1,802,381.84").
    Refused: the ambiguous forms of is_ambiguous_amount, '_' (DuckDB's cast would read "1_000"),
    and anything the cast cannot read (symbols, spaces inside, NaN, Infinity). Only text with a
    comma or two dots pays for the regular expressions. -#}
{% macro amount_text(expr) -%}
    {%- set s = 'trim(' ~ expr ~ ')' -%}
    case
        when {{ bankpipe.is_ambiguous_amount(expr) }} then null
        when {{ s }} like '%,%' or {{ s }} like '%.%.%' then
            case
                when {{ bankpipe.regexp_full_match(s, '[+-]?[1-9][0-9]{0,2}([.][0-9]{3})+(,[0-9]+)?') }}
                    then replace(replace({{ s }}, '.', ''), ',', '.')
                when {{ bankpipe.regexp_full_match(s, '[+-]?[0-9]+,[0-9]+') }} then replace({{ s }}, ',', '.')
                when {{ bankpipe.regexp_full_match(s, '[+-]?[1-9][0-9]{0,2}(,[0-9]{3})+([.][0-9]+)?') }}
                    then replace({{ s }}, ',', '')
            end
        when position('_' in {{ s }}) > 0 then null
        else {{ s }}
    end
{%- endmacro %}

{#- Normalised amount text (amount_text) as an exact wide number (type_wide_amount), null when it is
    not a number or beyond 10^20. Never rounded: the rules decide about decimals. -#}
{% macro wide_amount(text) -%}
    {{ bankpipe.try_cast(text, bankpipe.type_wide_amount()) }}
{%- endmacro %}

{#- Normalised amount text as money, null when it is not a number or does not fit DECIMAL(18,2)
    (a third decimal is rounded here; base_transactions rejects such a record as too_many_decimals
    and keeps this as its control amount). Cast from text: DuckDB narrows a DECIMAL(38,18) about
    ten times slower than it parses text. -#}
{% macro money_amount(text) -%}
    {{ bankpipe.try_cast(text, bankpipe.type_money()) }}
{%- endmacro %}

{#- A text amount from the source as money: the one definition of a record's amount, so that
    base_transactions and the reconciliation's bronze side (audit_bronze_transaction_records) read
    every record the same way; also the balance of an account. -#}
{% macro to_money(expr) -%}
    {{ bankpipe.money_amount(bankpipe.amount_text(expr)) }}
{%- endmacro %}

{#- Whether an exact amount has a non-zero digit below the currency's `minor_units` (0 to 4, ISO
    4217's range). With two (most currencies) the exact value is compared with its money cast — a
    comparison, cheap; the others round (round()'s precision must be a constant: one branch each). -#}
{% macro has_more_decimals(exact, money, minor_units) -%}
    case {{ minor_units }}
        when 2 then {{ exact }} <> {{ money }}
        {%- for units in [0, 1, 3, 4] %}
        when {{ units }} then {{ exact }} <> round({{ exact }}, {{ units }})
        {%- endfor %}
    end
{%- endmacro %}

{#- A computed numeric expression as money (rounded to cents), or null when it does not fit
    DECIMAL(18,2): a cast that cannot fail. -#}
{% macro money_or_null(expr) -%}
    case when abs({{ expr }}) < 1e16 then cast(round({{ expr }}, 2) as {{ bankpipe.type_money() }}) end
{%- endmacro %}

{#- Cast text, null when it does not convert. dbt.safe_cast would do, but its default (used by
    dbt-duckdb) is a plain cast that fails the whole model on the first bad value. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'bankpipe')(expr, type)) }}
{%- endmacro %}

{% macro default__try_cast(expr, type) -%}
    {{ dbt.safe_cast(expr, type) }}
{%- endmacro %}

{% macro duckdb__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro snowflake__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{#- Convert a money amount with a rate (units of `to` per unit of `from`), rounded to cents; null
    when the result would not fit DECIMAL(18,2) or the amount not DECIMAL(24,10) — silver bounds
    amounts (seed ref_amount_limits) and rates (ref_rate_limits), so this is a last guard, never an
    error. DuckDB divides decimals in double precision (15+ significant digits, ample below 10^13);
    the result is cast back to money so nothing downstream sees a float. -#}
{% macro convert_money(amount, numerator_rate, denominator_rate) -%}
    {%- set exact = 'cast(' ~ amount ~ ' as ' ~ bankpipe.type_rate() ~ ') * ' ~ numerator_rate ~ ' / ' ~ denominator_rate -%}
    case when abs({{ amount }}) < 1e13 and {{ denominator_rate }} > 0 then {{ bankpipe.money_or_null(exact) }} end
{%- endmacro %}
