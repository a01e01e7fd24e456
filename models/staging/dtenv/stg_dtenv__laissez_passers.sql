with

source as (

    select * from {{ source('dtenv', 'laissez_passers') }}

),

renamed as (

    select
        nullif(trim(record_id), '') as record_id,
        person_pseudonym,
        nationality as nationality_raw,
        {{ normalize_text_key('nationality') }} as nationality_key,
        issue_date as issue_date_raw,
        {{ try_cast_date('issue_date') }} as issue_date,
        _source_file as source_file,
        _source_row as source_row,
        _file_order as file_order

    from source

)

select * from renamed
