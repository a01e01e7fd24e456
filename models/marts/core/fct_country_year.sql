{#- The published yearly panel of the exploratory analysis (annex 11.2): the intermediate
    yearly panel under a contract; int_did__yearly_results reads int_panel__country_year. -#}
with

panel as (

    select * from {{ ref('int_panel__country_year') }}

),

final as (

    select
        iso3,
        calendar_year,
        forced_departures,
        independent_departures,
        unsupervised_departures,
        total_departures,
        misa,
        mipa

    from panel

)

select * from final
