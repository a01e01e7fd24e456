with

source as (

    select * from {{ source('dtenv', 'laissez_passers') }}

),

renamed as (

    select
        nullif(trim(record_id), '') as record_id,
        person_pseudonym,
        -- as delivered, capped: a pathological value is not copied whole into diagnostics
        {{ cap_text('nationality', 200) }} as nationality_raw,
        {{ normalize_text_key('nationality') }} as nationality_key,
        {{ cap_text('issue_date', 200) }} as issue_date_raw,
        {{ try_cast_date('issue_date') }} as issue_date,
        _source_file as source_file,
        _source_row as source_row,
        _file_order as file_order

    from source

)

select * from renamed
