-- Panel totals equal the staged (valid) events of panel countries inside the window,
-- feed by feed: the month spine and the zero-filling neither add nor lose events.
{%- set window = "between cast('" ~ var('panel_start_month') ~ "' as date) and cast('"
    ~ var('panel_end_month') ~ "' as date)" %}

with

panel_countries as (

    select iso3 from {{ ref('int_panel_countries') }}

),

panel_totals as (

    select
        sum(requests) as requests,
        sum(confirmations) as confirmations,
        sum(laissez_passers) as laissez_passers,
        sum(forced_departures) as forced_departures,
        sum(verified_departures) as verified_departures

    from {{ ref('fct_country_month') }}

),

staged_requests as (

    select count(*) as requests
    from {{ ref('int_dtenv__requests_validated') }}
    where
        quarantine_rule is null
        and nationality_iso3 in (select panel_countries.iso3 from panel_countries)
        and {{ month_start('request_date') }} {{ window }}

),

staged_confirmations as (

    select count(*) as confirmations
    from {{ ref('int_dtenv__nationality_confirmations_validated') }}
    where
        quarantine_rule is null and outcome = 'confirmed'
        and nationality_iso3 in (select panel_countries.iso3 from panel_countries)
        and {{ month_start('decision_date') }} {{ window }}

),

staged_laissez_passers as (

    select count(*) as laissez_passers
    from {{ ref('int_dtenv__laissez_passers_validated') }}
    where
        quarantine_rule is null
        and nationality_iso3 in (select panel_countries.iso3 from panel_countries)
        and {{ month_start('issue_date') }} {{ window }}

),

staged_returns as (

    select
        count(case when departure_type = 'forced' then 1 end) as forced_departures,
        count(case when departure_type in ('forced', 'independent') then 1 end) as verified_departures

    from {{ ref('int_dtenv__returns_validated') }}
    where
        quarantine_rule is null
        and nationality_iso3 in (select panel_countries.iso3 from panel_countries)
        and {{ month_start('departure_date') }} {{ window }}

)

select
    panel_totals.requests as panel_requests,
    staged_requests.requests as staged_requests,
    panel_totals.confirmations as panel_confirmations,
    staged_confirmations.confirmations as staged_confirmations,
    panel_totals.laissez_passers as panel_laissez_passers,
    staged_laissez_passers.laissez_passers as staged_laissez_passers,
    panel_totals.forced_departures as panel_forced_departures,
    staged_returns.forced_departures as staged_forced_departures,
    panel_totals.verified_departures as panel_verified_departures,
    staged_returns.verified_departures as staged_verified_departures
from panel_totals
cross join staged_requests
cross join staged_confirmations
cross join staged_laissez_passers
cross join staged_returns
where
    panel_totals.requests <> staged_requests.requests
    or panel_totals.confirmations <> staged_confirmations.confirmations
    or panel_totals.laissez_passers <> staged_laissez_passers.laissez_passers
    or panel_totals.forced_departures <> staged_returns.forced_departures
    or panel_totals.verified_departures <> staged_returns.verified_departures
