{{ config(severity = 'error') }}
-- A delivery where too many rows break the rules is rejected as a whole: something is
-- wrong with the export, not with single records. Threshold: var max_quarantine_share,
-- on the rejected share (superseded copies of re-delivered records are expected and do
-- not count). The failing rows name the feed and its most frequent rule.
with

reconciliation as (

    select * from {{ ref('fct_feed_reconciliation') }}

),

top_rules as (

    select
        feed,
        quarantine_rule,
        count(*) as rows_quarantined,
        row_number() over (partition by feed order by count(*) desc, quarantine_rule) as rule_rank

    from {{ ref('fct_quarantined_rows') }}
    where quarantine_rule <> 'duplicate_record_id'
    group by feed, quarantine_rule

)

select
    reconciliation.feed,
    reconciliation.rejected_share,
    {{ var('max_quarantine_share') }} as max_quarantine_share,
    top_rules.quarantine_rule as most_frequent_rule,
    top_rules.rows_quarantined as most_frequent_rule_rows

from reconciliation
left join top_rules
    on reconciliation.feed = top_rules.feed and top_rules.rule_rank = 1
where reconciliation.rejected_share > {{ var('max_quarantine_share') }}
