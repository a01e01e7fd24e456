{#- The yearly panel of the exploratory analysis (terms of reference, annex 11.2): every
    country with at least one valid departure (any type) in the yearly window x every year
    of the window (vars yearly_panel_start_year to yearly_panel_end_year; 2016-2024 as in
    the annex: 130 countries, 1,170 country-years). The ToR took the countries of the
    return service's published departure figures, so the set is chosen on departures, not
    on requests or documents, and independently of the monthly panel's pool. A program
    dummy is 1 from the calendar year of its start month on. -#}
{%- set first_year = var('yearly_panel_start_year') | int -%}
{%- set last_year = var('yearly_panel_end_year') | int -%}
{%- if last_year < first_year -%}
    {{ exceptions.raise_compiler_error(
        "var yearly_panel_end_year (" ~ last_year ~ ") is before yearly_panel_start_year (" ~ first_year ~ ")"
    ) }}
{%- endif %}

with

events as (

    select * from {{ ref('int_events__country_month') }}

),

partnership_starts as (

    select * from {{ ref('int_partnership_starts') }}

),

year_spine as (

    {{ dbt.date_spine(
        datepart='year',
        start_date="cast('" ~ first_year ~ "-01-01' as date)",
        end_date="cast('" ~ (last_year + 1) ~ "-01-01' as date)"
    ) }}

),

years as (

    select cast(date_year as date) as year_start

    from year_spine

),

events_yearly as (

    select
        iso3,
        cast({{ dbt.date_trunc('year', 'month_start') }} as date) as year_start,
        sum(forced_departures) as forced_departures,
        sum(independent_departures) as independent_departures,
        sum(unsupervised_departures) as unsupervised_departures

    from events
    where
        month_start >= cast('{{ first_year }}-01-01' as date)
        and month_start < cast('{{ last_year + 1 }}-01-01' as date)
    group by 1, 2

),

departure_countries as (

    select iso3

    from events_yearly
    group by 1
    having sum(forced_departures + independent_departures + unsupervised_departures) > 0

),

country_years as (

    select
        departure_countries.iso3,
        years.year_start

    from departure_countries
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

-- stored in key order (iso3, calendar_year): the joins above return rows in no fixed
-- order, and the yearly regressions' floating-point sums follow it
select * from final
order by 1, 2
