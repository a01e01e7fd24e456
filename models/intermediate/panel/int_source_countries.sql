{#- Countries with at least one valid event in any feed inside the panel window. -#}
with

events as (

    select * from {{ ref('int_events__country_month') }}

),

final as (

    select
        iso3,
        count(*) as months_with_events

    from events
    where
        month_start between cast('{{ var("panel_start_month") }}' as date)
        and cast('{{ var("panel_end_month") }}' as date)
    group by iso3

)

select * from final
