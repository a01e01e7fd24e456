{#- Monthly means of every outcome in the three groups of the annex's parallel-trend
    figures: never-treated controls, partner countries not yet treated, partner countries
    already treated. The never-treated group is also the control mean of the trend
    figures. One row per month and group present in that month. -#}
{%- set outcomes = [
    'forced_departures',
    'laissez_passers',
    'confirmations',
    'lead_time_days',
    'requests',
    'verified_departures',
] -%}

with

panel as (

    select * from {{ ref('fct_country_month') }}

),

grouped as (

    select
        month_start,
        case
            when partnership_start_month is null then 'never'
            when mipa = 1 then 'already'
            else 'notyet'
        end as treatment_group,
        {% for outcome in outcomes -%}
            {{ outcome }}
            {%- if not loop.last %},{% endif %}
        {% endfor %}

    from panel

),

final as (

    select
        month_start,
        treatment_group,
        count(*) as n_countries,
        {% for outcome in outcomes -%}
            avg({{ outcome }}) as {{ outcome }}
            {%- if not loop.last %},{% endif %}
        {% endfor %}

    from grouped
    group by month_start, treatment_group

)

select * from final
