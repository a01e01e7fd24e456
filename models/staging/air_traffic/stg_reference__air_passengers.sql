with

source as (

    select * from {{ source('air_traffic', 'air_passengers') }}

),

parsed as (

    select
        {{ month_start("coalesce(try_strptime(trim(month), '%Y-%m-%d'), try_strptime(trim(month), '%Y-%m'))") }}
            as month_start,
        try_cast(replace(trim(passengers), ',', '') as double) as passengers,
        source_file,
        row_number

    from source

)

select * from parsed
