with

source as (

    select * from {{ source('dtenv', 'nationality_confirmations') }}

),

renamed as (

    select
        nullif(trim(record_id), '') as record_id,
        nullif(trim(request_id), '') as request_id,
        -- as delivered, capped: a pathological value is not copied whole into diagnostics
        {{ cap_text('nationality', 200) }} as nationality_raw,
        {{ normalize_text_key('nationality') }} as nationality_key,
        {{ cap_text('decision_date', 200) }} as decision_date_raw,
        {{ try_cast_date('decision_date') }} as decision_date,
        {{ normalize_text_key('outcome') }} as outcome,
        _source_file as source_file,
        _source_row as source_row,
        _file_order as file_order

    from source

)

select * from renamed
