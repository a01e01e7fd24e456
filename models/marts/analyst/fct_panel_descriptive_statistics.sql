{#- Table 1 of the annex (and A3 for verified departures): descriptive statistics of
    every outcome over the country-month panel. Observations count non-missing values,
    so lead time counts only months with confirmations. -#}
{%- set outcomes = [
    ('forced_departures', 1),
    ('laissez_passers', 2),
    ('confirmations', 3),
    ('lead_time_days', 4),
    ('requests', 5),
    ('verified_departures', 6),
] -%}

with

panel as (

    select * from {{ ref('fct_country_month') }}

),

{% for outcome, position in outcomes %}
    {{ outcome }}_stats as (

        select
            '{{ outcome }}' as outcome,
            {{ position }} as display_order,
            count({{ outcome }}) as n_obs,
            avg({{ outcome }}) as mean_value,
            stddev_samp({{ outcome }}) as sd_value,
            min({{ outcome }}) as min_value,
            max({{ outcome }}) as max_value,
            avg(case when {{ outcome }} = 0 then 1.0 when {{ outcome }} is not null then 0.0 end) as share_zero,
            count(distinct case when {{ outcome }} is not null then iso3 end) as n_countries

        from panel

    ),

{% endfor %}

final as (

    {% for outcome, position in outcomes %}
        select
            outcome,
            display_order,
            n_obs,
            mean_value,
            sd_value,
            min_value,
            max_value,
            share_zero,
            n_countries
        from {{ outcome }}_stats
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
