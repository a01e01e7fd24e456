with

countries as (

    select * from {{ ref('stg_reference__countries') }}

),

partnership_starts as (

    select * from {{ ref('int_partnership_starts') }}

),

panel_countries as (

    select * from {{ ref('int_panel_countries') }}

),

source_countries as (

    select * from {{ ref('int_source_countries') }}

),

final as (

    select
        countries.iso3,
        countries.iso2,
        countries.m49_code,
        countries.country_name_en,
        countries.country_name_nl,
        countries.region,
        countries.subregion,
        countries.intermediate_region,
        countries.is_eu_member,
        countries.in_analysis_pool,
        source_countries.iso3 is not null as appears_in_feeds,
        panel_countries.iso3 is not null as is_panel_country,
        partnership_starts.mipa_start_month,
        partnership_starts.misa_start_month

    from countries
    left join partnership_starts on countries.iso3 = partnership_starts.iso3
    left join panel_countries on countries.iso3 = panel_countries.iso3
    left join source_countries on countries.iso3 = source_countries.iso3

)

select * from final
