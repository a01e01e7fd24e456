{#- One row per country with a partnership in the chosen variant: the first start month
    of each program. -#}
with

partnerships as (

    select * from {{ ref('stg_reference__partnerships') }}
    where partnership_variant = '{{ var("partnership_variant") }}'

),

final as (

    select
        iso3,
        min(case when program = 'MIPA' then partnership_start_month end) as mipa_start_month,
        min(case when program = 'MISA' then partnership_start_month end) as misa_start_month

    from partnerships
    group by iso3

)

select * from final
