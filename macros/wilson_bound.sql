{#- Wilson score bound (95%) of a share: side -1 = lower, 1 = upper. Monte Carlo
    uncertainty of a coverage that is 0 or 1 is never printed as 0 (Wilson 1927). -#}
{% macro wilson_bound(share, n, side) -%}
    case when {{ n }} > 0 then
        (
            {{ share }} + 1.959964 * 1.959964 / (2.0 * {{ n }})
            + ({{ side }}) * 1.959964 * sqrt(
                {{ share }} * (1 - {{ share }}) / {{ n }}
                + 1.959964 * 1.959964 / (4.0 * {{ n }} * {{ n }})
            )
        ) / (1 + 1.959964 * 1.959964 / {{ n }})
    end
{%- endmacro %}
