{#- Pricing a transaction at the USD-based rates in force on its date (as-of: weekends and
    holidays take the last published rate). `rates` is a relation or CTE with one row per
    (currency, rate_date): rate = units of currency per 1 USD, USD itself included at 1. -#}

{#- The two as-of joins: the transaction currency's rate (alias fx_ccy) and IDR's (alias fx_idr). -#}
{% macro fx_asof_joins(txn_alias, rates, idr_rates) -%}
    {{ bankpipe.asof_left_join(rates, 'fx_ccy', txn_alias ~ '.currency', 'currency', txn_alias ~ '.transaction_date', 'rate_date') }}
    {{ bankpipe.asof_left_join(idr_rates, 'fx_idr', none, none, txn_alias ~ '.transaction_date', 'rate_date') }}
{%- endmacro %}

{#- Amount in IDR: IDR amounts as they are (no round trip through USD), others via USD. -#}
{% macro amount_idr(txn_alias) -%}
    case
        when {{ txn_alias }}.currency = 'IDR' then {{ txn_alias }}.amount
        else {{ bankpipe.convert_money(txn_alias ~ '.amount', 'fx_idr.rate', 'fx_ccy.rate') }}
    end
{%- endmacro %}

{#- Amount in USD. -#}
{% macro amount_usd(txn_alias) -%}
    case
        when {{ txn_alias }}.currency = 'USD' then {{ txn_alias }}.amount
        else {{ bankpipe.convert_money(txn_alias ~ '.amount', '1', 'fx_ccy.rate') }}
    end
{%- endmacro %}
