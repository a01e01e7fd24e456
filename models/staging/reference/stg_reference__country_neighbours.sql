with

source as (

    select * from {{ ref('country_neighbours') }}

),

renamed as (

    select
        upper(trim(iso3)) as iso3,
        upper(trim(neighbour_iso3)) as neighbour_iso3,
        source as border_source

    from source

)

select * from renamed
