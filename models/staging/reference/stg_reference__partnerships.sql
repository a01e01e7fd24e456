with

source as (

    select * from {{ ref('partnerships') }}

),

renamed as (

    select
        variant as partnership_variant,
        upper(trim(program)) as program,
        upper(trim(iso3)) as iso3,
        {{ month_start('start_month') }} as partnership_start_month,
        date_source

    from source

)

select * from renamed
