-- Which inference method the report shows by default, per estimator and scope kind
-- (overall effect, per-country effects), from the Monte Carlo in inference_coverage.
-- A method meets the goal when its 95% intervals covered the planted effect in 93-97% of
-- the replications with the annex's effects and rejected a zero effect in 3-7% of them
-- without one. Among those the narrowest wins; when none meets it, the one closest to the
-- goal: smallest |coverage - 0.95| + |size - 0.05| (both halves of the goal count alike, so
-- neither an interval that over-rejects nor one too wide to ever reject wins by default).

with

coverage as (

    select * from {{ ref('stg_reference__inference_coverage') }}
    where scope in ('overall', 'countries')

),

with_effects as (

    select * from coverage
    where planted_effects = 'annex'

),

without_effects as (

    select * from coverage
    where planted_effects = 'zero'

),

joined as (

    select
        with_effects.estimator,
        with_effects.inference,
        with_effects.outcome as measured_on_outcome,
        with_effects.scope as scope_kind,
        with_effects.n_replications,
        with_effects.coverage,
        with_effects.coverage_mcse,
        with_effects.median_width,
        with_effects.share_unbounded,
        without_effects.coverage as coverage_under_null,
        without_effects.rejection_rate as size_under_null,
        with_effects.wall_seconds

    from with_effects
    left join without_effects
        on
            with_effects.estimator = without_effects.estimator
            and with_effects.inference = without_effects.inference
            and with_effects.outcome = without_effects.outcome
            and with_effects.scope = without_effects.scope

),

scored as (

    select
        *,
        coalesce(
            coverage between 0.93 and 0.97
            and size_under_null between 0.03 and 0.07,
            false
        ) as meets_coverage_goal,
        abs(coverage - 0.95) + coalesce(abs(size_under_null - 0.05), 1) as distance_from_goal

    from joined

),

ranked as (

    select
        *,
        row_number() over (
            partition by estimator, scope_kind
            order by
                meets_coverage_goal desc,
                case when meets_coverage_goal then median_width end asc nulls last,
                distance_from_goal asc,
                median_width asc,
                inference asc
        ) as preference_rank

    from scored

),

final as (

    select
        estimator,
        inference,
        scope_kind,
        measured_on_outcome,
        n_replications,
        coverage,
        coverage_mcse,
        coverage_under_null,
        size_under_null,
        median_width,
        share_unbounded,
        meets_coverage_goal,
        preference_rank = 1 as is_default_method,
        preference_rank,
        distance_from_goal,
        wall_seconds

    from ranked

)

select * from final
