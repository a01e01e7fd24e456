-- Ad-hoc analysis (compiled by dbt, not built): monthly means of each outcome for every
-- partner country in the twelve months before and after its partnership start, next to
-- the never-treated panel mean over the same calendar months. A first look before the
-- estimators; `dbt compile` writes the SQL to target/compiled/mipa/analysis/.
with

panel as (

    select * from {{ ref('fct_country_month') }}

),

partner_windows as (

    select
        iso3,
        month_start,
        case when months_since_start < 0 then 'before' else 'after' end as window_side

    from panel
    where months_since_start between -12 and 11

),

partner_means as (

    select
        partner_windows.iso3,
        partner_windows.window_side,
        avg(panel.forced_departures) as forced_departures,
        avg(panel.laissez_passers) as laissez_passers,
        avg(panel.confirmations) as confirmations,
        avg(panel.requests) as requests

    from partner_windows
    inner join panel
        on partner_windows.iso3 = panel.iso3 and partner_windows.month_start = panel.month_start
    group by partner_windows.iso3, partner_windows.window_side

),

control_means as (

    select
        partner_windows.iso3,
        partner_windows.window_side,
        avg(panel.forced_departures) as forced_departures,
        avg(panel.laissez_passers) as laissez_passers,
        avg(panel.confirmations) as confirmations,
        avg(panel.requests) as requests

    from partner_windows
    inner join panel
        on partner_windows.month_start = panel.month_start
    where panel.partnership_start_month is null
    group by partner_windows.iso3, partner_windows.window_side

),

final as (

    select
        partner_means.iso3,
        partner_means.window_side,
        partner_means.forced_departures,
        control_means.forced_departures as control_forced_departures,
        partner_means.laissez_passers,
        control_means.laissez_passers as control_laissez_passers,
        partner_means.confirmations,
        control_means.confirmations as control_confirmations,
        partner_means.requests,
        control_means.requests as control_requests

    from partner_means
    inner join control_means
        on partner_means.iso3 = control_means.iso3 and partner_means.window_side = control_means.window_side

)

select * from final
order by iso3 asc, window_side desc
