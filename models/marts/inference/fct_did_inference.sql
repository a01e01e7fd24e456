with

results as (

    select * from {{ ref('int_did__inference_results') }}

),

method_choice as (

    select * from {{ ref('int_inference__method_choice') }}

),

scoped as (

    select
        *,
        case when scope = 'overall' then 'overall' else 'countries' end as scope_kind

    from results

),

-- estimator x scope kind x outcome with Monte Carlo rows of their own; the others are read
-- with the coverage Monte Carlo's (forced departures)
measured_outcomes as (

    select distinct
        estimator,
        scope_kind,
        measured_on_outcome
    from method_choice

),

keyed as (

    select
        scoped.*,
        measured_outcomes.measured_on_outcome is not null as has_own_measurement

    from scoped
    left join measured_outcomes
        on
            scoped.estimator = measured_outcomes.estimator
            and scoped.scope_kind = measured_outcomes.scope_kind
            and scoped.outcome = measured_outcomes.measured_on_outcome

),

matched as (

    select
        keyed.*,
        method_choice.is_default_method as mc_is_default_method,
        method_choice.meets_coverage_goal as mc_meets_coverage_goal,
        method_choice.coverage as mc_coverage,
        method_choice.coverage_ci_low as mc_coverage_ci_low,
        method_choice.coverage_ci_high as mc_coverage_ci_high,
        method_choice.coverage_homogeneous as mc_coverage_homogeneous,
        method_choice.size_under_null as mc_size,
        method_choice.median_width as mc_median_width,
        method_choice.oracle_width as mc_oracle_width,
        method_choice.n_replications as mc_n_replications,
        method_choice.measured_on_outcome as mc_outcome

    from keyed
    left join method_choice
        on
            keyed.estimator = method_choice.estimator
            and keyed.inference = method_choice.inference
            and keyed.scope_kind = method_choice.scope_kind
            and (
                (keyed.has_own_measurement and keyed.outcome = method_choice.measured_on_outcome)
                or (not keyed.has_own_measurement and method_choice.is_main_design)
            )

),

final as (

    select
        estimator,
        inference,
        outcome,
        aggregation,
        scope,
        estimate,
        std_error,
        ci_low,
        ci_high,
        p_value,
        cast(n_obs as bigint) as n_obs,
        cast(n_clusters as bigint) as n_clusters,
        cast(n_treated_clusters as bigint) as n_treated_clusters,
        coalesce(mc_is_default_method, false) as is_default_method,
        coalesce(mc_meets_coverage_goal, false) as meets_coverage_goal,
        -- a method of this estimator qualifies for this outcome and scope kind
        coalesce(
            bool_or(mc_meets_coverage_goal) over (partition by estimator, outcome, scope_kind), false
        ) as valid_interval_at_design,
        mc_coverage,
        mc_coverage_ci_low,
        mc_coverage_ci_high,
        mc_coverage_homogeneous,
        mc_size,
        mc_median_width,
        mc_oracle_width,
        cast(mc_n_replications as bigint) as mc_replications,
        mc_outcome,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from matched

)

select * from final
