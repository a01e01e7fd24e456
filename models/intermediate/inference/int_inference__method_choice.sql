-- Which inference method the report shows by default, per estimator, scope kind (overall
-- effect, per-country effects) and outcome measured, from the Monte Carlo's results (source
-- montecarlo): the coverage Monte Carlo (every method, forced departures: is_main_design) and
-- the design study (the main intervals on confirmations and lead time too, additive effects),
-- so an interval on those outcomes carries its own outcome's coverage, not forced departures'.
-- A method qualifies only when, at the annex's design, its 95% intervals covered the
-- planted effect in 93-97% of the replications both with the annex's per-country effects
-- and with a homogeneous effect, rejected a zero effect in 3-7% of them without one, and
-- its median width is at most 1.5 times the oracle interval's (estimate +- 1.96 x the
-- estimator's sampling sd in the same Monte Carlo). Among qualifiers the narrowest is the
-- default. When none qualifies there is no default: the marts say so and the report shows
-- the estimate with its measured coverage and "no valid interval at this design". A design
-- that was not run (no homogeneous or oracle figure) cannot qualify a method.
-- preference_rank still orders every method (closest to the goal first) for the tables.

with

main_design as (

    select
        planted_effects,
        estimator,
        inference,
        outcome,
        scope,
        n_replications,
        n_intervals,
        coverage,
        coverage_mcse,
        rejection_rate,
        median_width,
        oracle_width,
        share_unbounded,
        wall_seconds,
        true as is_main_design
    from {{ ref('stg_montecarlo__inference_coverage') }}
    where scope in ('overall', 'countries')

),

other_outcomes as (

    select
        planted_effects,
        estimator,
        inference,
        outcome,
        scope,
        n_replications,
        n_intervals,
        coverage,
        coverage_mcse,
        rejection_rate,
        median_width,
        oracle_width,
        -- the design study does not record it; no method choice reads it
        cast(null as double) as share_unbounded,
        wall_seconds,
        false as is_main_design
    from {{ ref('stg_montecarlo__estimator_designs') }}
    where
        effect_form = 'additive'
        and outcome not in (select main_design.outcome from main_design)

),

coverage as (

    select * from main_design
    union all
    select * from other_outcomes

),

with_effects as (

    select * from coverage
    where planted_effects = 'annex'

),

homogeneous as (

    select * from coverage
    where planted_effects = 'homogeneous'

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
        with_effects.n_intervals,
        with_effects.coverage,
        with_effects.coverage_mcse,
        with_effects.median_width,
        with_effects.oracle_width,
        with_effects.share_unbounded,
        with_effects.is_main_design,
        homogeneous.coverage as coverage_homogeneous,
        without_effects.coverage as coverage_under_null,
        without_effects.rejection_rate as size_under_null,
        without_effects.n_intervals as n_intervals_under_null,
        with_effects.wall_seconds

    from with_effects
    left join homogeneous
        on
            with_effects.estimator = homogeneous.estimator
            and with_effects.inference = homogeneous.inference
            and with_effects.outcome = homogeneous.outcome
            and with_effects.scope = homogeneous.scope
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
        {{ wilson_bound('coverage', 'n_intervals', -1) }} as coverage_ci_low,
        {{ wilson_bound('coverage', 'n_intervals', 1) }} as coverage_ci_high,
        {{ wilson_bound('size_under_null', 'n_intervals_under_null', -1) }} as size_ci_low,
        {{ wilson_bound('size_under_null', 'n_intervals_under_null', 1) }} as size_ci_high,
        median_width / nullif(oracle_width, 0) as width_to_oracle,
        coalesce(
            coverage between 0.93 and 0.97
            and coverage_homogeneous between 0.93 and 0.97
            and size_under_null between 0.03 and 0.07
            and median_width <= 1.5 * oracle_width,
            false
        ) as meets_coverage_goal,
        abs(coverage - 0.95)
        + coalesce(abs(coverage_homogeneous - 0.95), 0)
        + coalesce(abs(size_under_null - 0.05), 1) as distance_from_goal

    from joined

),

ranked as (

    select
        *,
        row_number() over (
            partition by estimator, scope_kind, measured_on_outcome
            order by
                meets_coverage_goal desc,
                case when meets_coverage_goal then median_width end asc nulls last,
                distance_from_goal asc,
                median_width asc,
                inference asc
        ) as preference_rank,
        bool_or(meets_coverage_goal) over (
            partition by estimator, scope_kind, measured_on_outcome
        ) as has_valid_method

    from scored

),

final as (

    select
        estimator,
        inference,
        scope_kind,
        measured_on_outcome,
        is_main_design,
        n_replications,
        coverage,
        coverage_mcse,
        coverage_ci_low,
        coverage_ci_high,
        coverage_homogeneous,
        coverage_under_null,
        size_under_null,
        size_ci_low,
        size_ci_high,
        median_width,
        oracle_width,
        width_to_oracle,
        share_unbounded,
        meets_coverage_goal,
        preference_rank = 1 and meets_coverage_goal as is_default_method,
        has_valid_method,
        preference_rank,
        distance_from_goal,
        wall_seconds

    from ranked

)

select * from final
