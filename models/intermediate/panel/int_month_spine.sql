with

spine as (

    {{ dbt.date_spine(
        datepart='month',
        start_date="cast('" ~ var('panel_start_month') ~ "' as date)",
        end_date=dbt.dateadd('month', 1, "cast('" ~ var('panel_end_month') ~ "' as date)")
    ) }}

),

final as (

    select cast(date_month as date) as month_start

    from spine

)

select * from final
