{#- The published panel: the intermediate panel as it is, under a contract. The estimation
    models read int_panel__country_month, so no model upstream of a mart reads a mart. -#}
with

panel as (

    select * from {{ ref('int_panel__country_month') }}

),

final as (

    select
        iso3,
        month_start,
        month_index,
        requests,
        confirmations,
        lead_time_days,
        laissez_passers,
        forced_departures,
        independent_departures,
        unsupervised_departures,
        verified_departures,
        mipa,
        misa,
        partnership_start_month,
        months_since_start,
        is_covid_period

    from panel

)

select * from final
