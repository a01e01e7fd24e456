{#- All valid events of the four feeds counted per nationality and calendar month
    (every month with at least one event; the panel fills the other months with 0). -#}
with

returns as (

    select
        nationality_iso3 as iso3,
        {{ month_start('departure_date') }} as month_start,
        case when departure_type = 'forced' then 1 else 0 end as is_forced,
        case when departure_type = 'independent' then 1 else 0 end as is_independent,
        case when departure_type = 'unsupervised' then 1 else 0 end as is_unsupervised

    from {{ ref('int_dtenv__returns_validated') }}
    where quarantine_rule is null

),

requests as (

    select
        nationality_iso3 as iso3,
        {{ month_start('request_date') }} as month_start

    from {{ ref('int_dtenv__requests_validated') }}
    where quarantine_rule is null

),

decisions as (

    select
        nationality_iso3 as iso3,
        {{ month_start('decision_date') }} as month_start,
        outcome,
        lead_time_days

    from {{ ref('int_dtenv__nationality_confirmations_validated') }}
    where quarantine_rule is null

),

laissez_passers as (

    select
        nationality_iso3 as iso3,
        {{ month_start('issue_date') }} as month_start

    from {{ ref('int_dtenv__laissez_passers_validated') }}
    where quarantine_rule is null

),

returns_monthly as (

    select
        iso3,
        month_start,
        sum(is_forced) as forced_departures,
        sum(is_independent) as independent_departures,
        sum(is_unsupervised) as unsupervised_departures

    from returns
    group by iso3, month_start

),

requests_monthly as (

    select
        iso3,
        month_start,
        count(*) as requests

    from requests
    group by iso3, month_start

),

decisions_monthly as (

    select
        iso3,
        month_start,
        count(case when outcome = 'confirmed' then 1 end) as confirmations,
        count(case when outcome = 'rejected' then 1 end) as rejections,
        -- lead time is the mean over the month's confirmations only; NULL without any
        avg(case when outcome = 'confirmed' then lead_time_days end) as lead_time_days

    from decisions
    group by iso3, month_start

),

laissez_passers_monthly as (

    select
        iso3,
        month_start,
        count(*) as laissez_passers

    from laissez_passers
    group by iso3, month_start

),

keys as (

    select
        iso3,
        month_start
    from returns_monthly
    union
    select
        iso3,
        month_start
    from requests_monthly
    union
    select
        iso3,
        month_start
    from decisions_monthly
    union
    select
        iso3,
        month_start
    from laissez_passers_monthly

),

final as (

    select
        keys.iso3,
        keys.month_start,
        coalesce(requests_monthly.requests, 0) as requests,
        coalesce(decisions_monthly.confirmations, 0) as confirmations,
        coalesce(decisions_monthly.rejections, 0) as rejections,
        decisions_monthly.lead_time_days,
        coalesce(laissez_passers_monthly.laissez_passers, 0) as laissez_passers,
        coalesce(returns_monthly.forced_departures, 0) as forced_departures,
        coalesce(returns_monthly.independent_departures, 0) as independent_departures,
        coalesce(returns_monthly.unsupervised_departures, 0) as unsupervised_departures

    from keys
    left join requests_monthly
        on keys.iso3 = requests_monthly.iso3 and keys.month_start = requests_monthly.month_start
    left join decisions_monthly
        on keys.iso3 = decisions_monthly.iso3 and keys.month_start = decisions_monthly.month_start
    left join laissez_passers_monthly
        on
            keys.iso3 = laissez_passers_monthly.iso3
            and keys.month_start = laissez_passers_monthly.month_start
    left join returns_monthly
        on keys.iso3 = returns_monthly.iso3 and keys.month_start = returns_monthly.month_start

)

select * from final
