{{ config(severity = 'error') }}
-- A delivery where too many rows break the rules is rejected as a whole: something is
-- wrong with the export, not with single records. Threshold: var max_quarantine_share.
-- The failing rows name the feed and its most frequent rule; see dq_quarantined_rows.
with

reconciliation as (

    select * from {{ ref('dq_feed_reconciliation') }}

),

top_rules as (

    select
        feed,
        quarantine_rule,
        count(*) as rows_quarantined,
        row_number() over (partition by feed order by count(*) desc, quarantine_rule) as rule_rank

    from {{ ref('dq_quarantined_rows') }}
    group by feed, quarantine_rule

)

select
    reconciliation.feed,
    reconciliation.quarantined_share,
    {{ var('max_quarantine_share') }} as max_quarantine_share,
    top_rules.quarantine_rule as most_frequent_rule,
    top_rules.rows_quarantined as most_frequent_rule_rows

from reconciliation
left join top_rules
    on reconciliation.feed = top_rules.feed and top_rules.rule_rank = 1
where reconciliation.quarantined_share > {{ var('max_quarantine_share') }}
