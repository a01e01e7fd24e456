with

source as (

    select * from {{ source('load_log', 'load_metadata') }}

),

renamed as (

    select
        cast(metadata as json) as metadata,
        coalesce(cast(json_extract_string(metadata, '$.synthetic') as boolean), false) as is_synthetic
    from source

)

select * from renamed
