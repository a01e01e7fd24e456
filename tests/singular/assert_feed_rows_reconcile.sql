-- Nothing is lost between landing and staging: every landed row is either staged
-- (passes every rule) or quarantined with a reason.
select *
from {{ ref('fct_feed_reconciliation') }}
where not is_reconciled
