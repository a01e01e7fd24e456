with

source as (

    select * from {{ source('dtenv', 'returns') }}

),

renamed as (

    select
        nullif(trim(record_id), '') as record_id,
        person_pseudonym,
        -- as delivered, capped: a pathological value is not copied whole into diagnostics
        case
            when length(nationality) > 200
                then
                    substring(nationality, 1, 200) || '... (200 of '
                    || cast(length(nationality) as varchar) || ' characters)'
            else nationality
        end as nationality_raw,
        {{ normalize_text_key('nationality') }} as nationality_key,
        case
            when length(departure_date) > 200
                then
                    substring(departure_date, 1, 200) || '... (200 of '
                    || cast(length(departure_date) as varchar) || ' characters)'
            else departure_date
        end as departure_date_raw,
        {{ try_cast_date('departure_date') }} as departure_date,
        {{ normalize_text_key('departure_type') }} as departure_type,
        _source_file as source_file,
        _source_row as source_row,
        _file_order as file_order

    from source

)

select * from renamed
