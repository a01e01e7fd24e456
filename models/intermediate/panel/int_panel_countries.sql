{#- Panel countries: the analysis pool (West Asia, Africa, non-EU Europe) plus partner
    countries of the programs in var panel_programs, restricted to countries that appear
    in at least one feed in the panel window. -#}
with

countries as (

    select * from {{ ref('stg_reference__countries') }}

),

partnerships as (

    select * from {{ ref('stg_reference__partnerships') }}
    where partnership_variant = '{{ var("partnership_variant") }}'

),

source_countries as (

    select * from {{ ref('int_source_countries') }}

),

partner_countries as (

    select distinct iso3
    from partnerships
    where program in (
        {%- for program in var('panel_programs') %}'{{ program }}'{% if not loop.last %}, {% endif %}{% endfor -%}
    )

),

final as (

    select countries.iso3

    from countries
    inner join source_countries on countries.iso3 = source_countries.iso3
    left join partner_countries on countries.iso3 = partner_countries.iso3
    where countries.in_analysis_pool or partner_countries.iso3 is not null

)

select * from final
