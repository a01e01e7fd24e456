{#- Every entry of every feed folder as the load logged it (loaded, empty, mapping, or not
    loaded with the reason): the report's list of delivered files and its fingerprint. -#}
with

delivery_files as (

    select * from {{ ref('stg_load_log__delivery_files') }}

),

final as (

    select
        feed,
        source_file,
        file_sha256,
        rows_loaded,
        load_status,
        identical_to_file,
        not_loaded_reason

    from delivery_files

)

select * from final
