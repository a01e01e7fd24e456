with

returns as (

    select * from {{ ref('stg_dtenv__returns') }}

),

country_aliases as (

    select * from {{ ref('stg_reference__country_aliases') }}

),

repeated_copies as (

    {{ repeated_copies('returns') }}

),

ranked as (

    select
        returns.*,
        country_aliases.iso3 as nationality_iso3,
        {{ delivery_rank_columns('repeated_copies') }}

    from returns
    left join repeated_copies
        on
            returns.file_order = repeated_copies.file_order
            and returns.source_row = repeated_copies.source_row
    left join country_aliases
        on returns.nationality_key = country_aliases.alias_key

),

validated as (

    select
        *,
        case
            {{ common_quarantine_rules('departure_date') }}
            when
                departure_type is null
                or departure_type not in ('forced', 'independent', 'unsupervised')
                then 'invalid_departure_type'
        end as quarantine_rule,
        case
            {{ common_quarantine_details('departure_date') }}
            when
                departure_type is null
                or departure_type not in ('forced', 'independent', 'unsupervised')
                then
                    'departure_type '''
                    || coalesce(departure_type, '')
                    || ''' is not forced, independent or unsupervised'
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
        departure_date_raw,
        departure_date,
        departure_type,
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
