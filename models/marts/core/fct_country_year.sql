{#- The yearly panel of the exploratory analysis (terms of reference, annex 11.2): every
    source country x every year of the panel window. A program dummy is 1 from the
    calendar year of its start month on. -#}
with

source_countries as (

    select * from {{ ref('int_source_countries') }}

),

events as (

    select * from {{ ref('int_events__country_month') }}

),

months as (

    select * from {{ ref('int_month_spine') }}

),

partnership_starts as (

    select * from {{ ref('int_partnership_starts') }}

),

years as (

    select distinct cast({{ dbt.date_trunc('year', 'month_start') }} as date) as year_start

    from months

),

events_yearly as (

    select
        iso3,
        cast({{ dbt.date_trunc('year', 'month_start') }} as date) as year_start,
        sum(forced_departures) as forced_departures,
        sum(independent_departures) as independent_departures,
        sum(unsupervised_departures) as unsupervised_departures

    from events
    group by 1, 2

),

country_years as (

    select
        source_countries.iso3,
        years.year_start

    from source_countries
    cross join years

),

final as (

    select
        country_years.iso3,
        cast(extract(year from country_years.year_start) as integer) as calendar_year,
        cast(coalesce(events_yearly.forced_departures, 0) as integer) as forced_departures,
        cast(coalesce(events_yearly.independent_departures, 0) as integer) as independent_departures,
        cast(coalesce(events_yearly.unsupervised_departures, 0) as integer) as unsupervised_departures,
        cast(
            coalesce(events_yearly.forced_departures, 0)
            + coalesce(events_yearly.independent_departures, 0)
            + coalesce(events_yearly.unsupervised_departures, 0)
            as integer
        ) as total_departures,
        cast(case
            when extract(year from partnership_starts.misa_start_month) <= extract(year from country_years.year_start)
                then 1
            else 0
        end as integer) as misa,
        cast(case
            when extract(year from partnership_starts.mipa_start_month) <= extract(year from country_years.year_start)
                then 1
            else 0
        end as integer) as mipa

    from country_years
    left join events_yearly
        on
            country_years.iso3 = events_yearly.iso3
            and country_years.year_start = events_yearly.year_start
    left join partnership_starts
        on country_years.iso3 = partnership_starts.iso3

)

select * from final
