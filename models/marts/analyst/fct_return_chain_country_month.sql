{#- The return chain per panel country and month, for analysts: how many requests went
    out, how they were decided, how many travel documents and forced departures followed. -#}
with

panel as (

    select * from {{ ref('fct_country_month') }}

),

events as (

    select * from {{ ref('int_events__country_month') }}

),

countries as (

    select * from {{ ref('dim_country') }}

),

final as (

    select
        panel.iso3,
        countries.country_name_en,
        countries.country_name_nl,
        panel.month_start,
        panel.requests,
        panel.confirmations,
        cast(coalesce(events.rejections, 0) as integer) as rejections,
        case
            when panel.confirmations + coalesce(events.rejections, 0) = 0 then null
            else
                cast(coalesce(events.rejections, 0) as double)
                / (panel.confirmations + coalesce(events.rejections, 0))
        end as share_rejected,
        panel.lead_time_days,
        panel.laissez_passers,
        panel.forced_departures,
        panel.mipa

    from panel
    left join events
        on panel.iso3 = events.iso3 and panel.month_start = events.month_start
    inner join countries on panel.iso3 = countries.iso3

)

select * from final
