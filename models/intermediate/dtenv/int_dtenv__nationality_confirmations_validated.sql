with

confirmations as (

    select * from {{ ref('stg_dtenv__nationality_confirmations') }}

),

country_aliases as (

    select * from {{ ref('stg_reference__country_aliases') }}

),

requests as (

    select * from {{ ref('int_dtenv__requests_validated') }}

),

repeated_copies as (

    {{ repeated_copies('confirmations') }}

),

ranked as (

    select
        confirmations.*,
        country_aliases.iso3 as nationality_iso3,
        {{ delivery_rank_columns('repeated_copies') }}

    from confirmations
    left join repeated_copies
        on
            confirmations.file_order = repeated_copies.file_order
            and confirmations.source_row = repeated_copies.source_row
    left join country_aliases
        on confirmations.nationality_key = country_aliases.alias_key

),

-- requests are unique on record_id only among their valid rows; superseded copies of a
-- request must not multiply the decisions that refer to it
request_lookup as (

    select
        record_id as request_id,
        request_date,
        quarantine_rule as request_quarantine_rule

    from requests
    where quarantine_rule is null or quarantine_rule <> 'duplicate_record_id'

),

joined as (

    select
        ranked.*,
        request_lookup.request_id is not null as is_request_found,
        request_lookup.request_date,
        request_lookup.request_quarantine_rule,
        {{ dbt.datediff('request_lookup.request_date', 'ranked.decision_date', 'day') }} as lead_time_days

    from ranked
    left join request_lookup
        on ranked.request_id = request_lookup.request_id

),

validated as (

    select
        *,
        case
            {{ common_quarantine_rules('decision_date') }}
            when outcome is null or outcome not in ('confirmed', 'rejected') then 'invalid_outcome'
            when not is_request_found then 'request_not_found'
            when request_quarantine_rule is not null then 'request_quarantined'
            when lead_time_days < 0 then 'negative_lead_time'
        end as quarantine_rule,
        case
            {{ common_quarantine_details('decision_date') }}
            when outcome is null or outcome not in ('confirmed', 'rejected')
                then 'outcome ''' || coalesce(outcome, '') || ''' is not confirmed or rejected'
            when request_id is null then 'request_id is empty'
            when not is_request_found
                then 'request_id ' || request_id || ' matches no request in the requests feed'
            when request_quarantine_rule is not null
                then 'request ' || request_id || ' is quarantined (' || request_quarantine_rule || ')'
            when lead_time_days < 0
                then
                    'decision_date ' || cast(decision_date as varchar) || ' is before request_date '
                    || cast(request_date as varchar) || ' (lead time ' || cast(lead_time_days as varchar) || ' days)'
        end as quarantine_detail

    from joined

),

final as (

    select
        source_file,
        source_row,
        record_id,
        request_id,
        nationality_raw,
        nationality_iso3,
        decision_date_raw,
        decision_date,
        outcome,
        request_date,
        lead_time_days,
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
