with

source as (

    select * from {{ source('load_log', 'delivery_files') }}

),

renamed as (

    select
        feed,
        source_file,
        file_sha256,
        cast(rows_loaded as bigint) as rows_loaded,
        load_status,
        identical_to_file,
        not_loaded_reason

    from source

)

select * from renamed
