with

air_passengers as (

    select * from {{ ref('stg_reference__air_passengers') }}

),

final as (

    select
        month_start,
        passengers,
        source_file

    from air_passengers

)

select * from final
