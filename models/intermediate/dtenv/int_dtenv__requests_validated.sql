with

requests as (

    select * from {{ ref('stg_dtenv__requests') }}

),

country_aliases as (

    select * from {{ ref('stg_reference__country_aliases') }}

),

repeated_copies as (

    {{ repeated_copies('requests') }}

),

ranked as (

    select
        requests.*,
        country_aliases.iso3 as nationality_iso3,
        {{ delivery_rank_columns('repeated_copies') }}

    from requests
    left join repeated_copies
        on
            requests.file_order = repeated_copies.file_order
            and requests.source_row = repeated_copies.source_row
    left join country_aliases
        on requests.nationality_key = country_aliases.alias_key

),

validated as (

    select
        *,
        case
            {{ common_quarantine_rules('request_date') }}
        end as quarantine_rule,
        case
            {{ common_quarantine_details('request_date') }}
        end as quarantine_detail

    from ranked

),

final as (

    select
        source_file,
        source_row,
        record_id,
        person_pseudonym,
        nationality_raw,
        nationality_iso3,
        request_date_raw,
        request_date,
        quarantine_rule,
        case
            when quarantine_rule = 'unknown_nationality' and nationality_raw is null
                then 'nationality is empty or a declared missing value (NA, N/A, NULL, ...)'
            -- capped: a detail quotes delivered values, which can be arbitrarily long
            else {{ cap_text('quarantine_detail', 500) }}
        end as quarantine_detail

    from validated

)

select * from final
