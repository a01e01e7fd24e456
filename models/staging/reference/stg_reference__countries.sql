with

source as (

    select * from {{ ref('countries') }}

),

renamed as (

    select
        upper(trim(iso3)) as iso3,
        upper(trim(iso2)) as iso2,
        m49_code,
        name_en as country_name_en,
        name_nl as country_name_nl,
        nullif(region, '') as region,
        nullif(subregion, '') as subregion,
        nullif(intermediate_region, '') as intermediate_region,
        is_eu_member,
        in_analysis_pool

    from source

)

select * from renamed
