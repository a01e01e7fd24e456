{#- The country-month panel: one row per panel country and month of the window, months
    without events 0. fct_country_month publishes it; the estimation models read it here. -#}
{%- set panel_start = "cast('" ~ var('panel_start_month') ~ "' as date)" %}

with

panel_countries as (

    select * from {{ ref('int_panel_countries') }}

),

months as (

    select * from {{ ref('int_month_spine') }}

),

events as (

    select * from {{ ref('int_events__country_month') }}

),

partnership_starts as (

    select * from {{ ref('int_partnership_starts') }}

),

country_months as (

    select
        panel_countries.iso3,
        months.month_start

    from panel_countries
    cross join months

),

joined as (

    select
        country_months.iso3,
        country_months.month_start,
        coalesce(events.requests, 0) as requests,
        coalesce(events.confirmations, 0) as confirmations,
        events.lead_time_days,
        coalesce(events.laissez_passers, 0) as laissez_passers,
        coalesce(events.forced_departures, 0) as forced_departures,
        coalesce(events.independent_departures, 0) as independent_departures,
        coalesce(events.unsupervised_departures, 0) as unsupervised_departures,
        partnership_starts.mipa_start_month,
        partnership_starts.misa_start_month

    from country_months
    left join events
        on
            country_months.iso3 = events.iso3
            and country_months.month_start = events.month_start
    left join partnership_starts
        on country_months.iso3 = partnership_starts.iso3

),

final as (

    select
        iso3,
        month_start,
        cast({{ dbt.datediff(panel_start, 'month_start', 'month') }} + 1 as integer) as month_index,
        cast(requests as integer) as requests,
        cast(confirmations as integer) as confirmations,
        cast(lead_time_days as double) as lead_time_days,
        cast(laissez_passers as integer) as laissez_passers,
        cast(forced_departures as integer) as forced_departures,
        cast(independent_departures as integer) as independent_departures,
        cast(unsupervised_departures as integer) as unsupervised_departures,
        cast(forced_departures + independent_departures as integer) as verified_departures,
        cast(case when month_start >= mipa_start_month then 1 else 0 end as integer) as mipa,
        cast(case when month_start >= misa_start_month then 1 else 0 end as integer) as misa,
        mipa_start_month as partnership_start_month,
        cast({{ dbt.datediff('mipa_start_month', 'month_start', 'month') }} as integer) as months_since_start,
        month_start between cast('{{ var("covid_start_month") }}' as date)
        and cast('{{ var("covid_end_month") }}' as date) as is_covid_period

    from joined

)

-- stored in key order: the joins above return rows in no fixed order, and the order in
-- which floating-point means and deviations add up (Table 1, the group means) follows it
select * from final
order by iso3, month_start
