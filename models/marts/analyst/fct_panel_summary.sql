{#- One row of facts about the country-month panel for the report's first screen and run
    facts: its window, size, countries, and the months in which any feed recorded an event
    (the panel itself may start or end with empty months). -#}
{%- set event_counts = [
    'forced_departures',
    'laissez_passers',
    'confirmations',
    'requests',
    'verified_departures',
    'independent_departures',
    'unsupervised_departures',
] -%}

with

panel as (

    select * from {{ ref('fct_country_month') }}

),

flagged as (

    select
        iso3,
        month_start,
        partnership_start_month,
        (
            {% for outcome in event_counts -%}
                coalesce({{ outcome }}, 0) > 0
                {%- if not loop.last %} or {% endif %}
            {% endfor %}
        ) as has_event

    from panel

),

final as (

    select
        min(month_start) as first_month,
        max(month_start) as last_month,
        count(distinct month_start) as n_months,
        count(*) as n_rows,
        count(distinct iso3) as n_countries,
        count(distinct case when partnership_start_month is null then iso3 end) as n_control,
        count(distinct case when partnership_start_month is not null then iso3 end) as n_partner,
        min(case when has_event then month_start end) as first_event_month,
        max(case when has_event then month_start end) as last_event_month

    from flagged

)

select * from final
