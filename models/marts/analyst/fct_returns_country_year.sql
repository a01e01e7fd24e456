{#- Yearly totals per country for analysts: every source country and year. -#}
with

yearly as (

    select * from {{ ref('fct_country_year') }}

),

countries as (

    select * from {{ ref('dim_country') }}

),

panel_yearly as (

    select
        iso3,
        cast(extract(year from month_start) as integer) as calendar_year,
        sum(requests) as requests,
        sum(confirmations) as confirmations,
        sum(laissez_passers) as laissez_passers

    from {{ ref('int_events__country_month') }}
    group by 1, 2

),

final as (

    select
        yearly.iso3,
        countries.country_name_en,
        countries.country_name_nl,
        countries.is_panel_country,
        yearly.calendar_year,
        cast(coalesce(panel_yearly.requests, 0) as integer) as requests,
        cast(coalesce(panel_yearly.confirmations, 0) as integer) as confirmations,
        cast(coalesce(panel_yearly.laissez_passers, 0) as integer) as laissez_passers,
        yearly.forced_departures,
        yearly.independent_departures,
        yearly.unsupervised_departures,
        cast(yearly.forced_departures + yearly.independent_departures as integer) as verified_departures,
        yearly.total_departures,
        yearly.misa,
        yearly.mipa

    from yearly
    inner join countries on yearly.iso3 = countries.iso3
    left join panel_yearly
        on yearly.iso3 = panel_yearly.iso3 and yearly.calendar_year = panel_yearly.calendar_year

)

select * from final
