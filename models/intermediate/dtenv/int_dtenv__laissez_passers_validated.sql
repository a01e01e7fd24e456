with

laissez_passers as (

    select * from {{ ref('stg_dtenv__laissez_passers') }}

),

country_aliases as (

    select * from {{ ref('stg_reference__country_aliases') }}

),

repeated_copies as (

    {{ repeated_copies('laissez_passers') }}

),

ranked as (

    select
        laissez_passers.*,
        country_aliases.iso3 as nationality_iso3,
        {{ delivery_rank_columns('repeated_copies') }}

    from laissez_passers
    left join repeated_copies
        on
            laissez_passers.file_order = repeated_copies.file_order
            and laissez_passers.source_row = repeated_copies.source_row
    left join country_aliases
        on laissez_passers.nationality_key = country_aliases.alias_key

),

validated as (

    select
        *,
        case
            {{ common_quarantine_rules('issue_date') }}
        end as quarantine_rule,
        case
            {{ common_quarantine_details('issue_date') }}
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
        issue_date_raw,
        issue_date,
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
