{#- Every version of the partnership start dates (seed partnerships), with the seed's
    column names: the robustness grid and the report show the variants side by side. -#}
with

partnerships as (

    select * from {{ ref('stg_reference__partnerships') }}

),

final as (

    select
        partnership_variant as variant,
        program,
        iso3,
        partnership_start_month as start_month,
        date_source

    from partnerships

)

select * from final
