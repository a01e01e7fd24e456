{#- The months of the panel window with their index and the COVID window flag. -#}
{%- set panel_start = "cast('" ~ var('panel_start_month') ~ "' as date)" %}

with

months as (

    select * from {{ ref('int_month_spine') }}

),

final as (

    select
        month_start,
        cast({{ dbt.datediff(panel_start, 'month_start', 'month') }} + 1 as integer) as month_index,
        month_start between cast('{{ var("covid_start_month") }}' as date)
        and cast('{{ var("covid_end_month") }}' as date) as is_covid_period

    from months

)

select * from final
