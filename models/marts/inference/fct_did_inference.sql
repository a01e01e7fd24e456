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

final as (

    select
        scoped.estimator,
        scoped.inference,
        scoped.outcome,
        scoped.aggregation,
        scoped.scope,
        scoped.estimate,
        scoped.std_error,
        scoped.ci_low,
        scoped.ci_high,
        scoped.p_value,
        cast(scoped.n_obs as bigint) as n_obs,
        cast(scoped.n_clusters as bigint) as n_clusters,
        cast(scoped.n_treated_clusters as bigint) as n_treated_clusters,
        coalesce(method_choice.is_default_method, false) as is_default_method,
        coalesce(method_choice.meets_coverage_goal, false) as meets_coverage_goal,
        coalesce(method_choice.has_valid_method, false) as valid_interval_at_design,
        method_choice.coverage as mc_coverage,
        method_choice.coverage_ci_low as mc_coverage_ci_low,
        method_choice.coverage_ci_high as mc_coverage_ci_high,
        method_choice.coverage_homogeneous as mc_coverage_homogeneous,
        method_choice.size_under_null as mc_size,
        method_choice.median_width as mc_median_width,
        method_choice.oracle_width as mc_oracle_width,
        cast(method_choice.n_replications as bigint) as mc_replications,
        method_choice.measured_on_outcome as mc_outcome,
        cast(scoped.status as varchar) as status,
        cast(scoped.reason as varchar) as reason,
        cast(scoped.reason_detail as varchar) as reason_detail,
        scoped.run_settings

    from scoped
    left join method_choice
        on
            scoped.estimator = method_choice.estimator
            and scoped.inference = method_choice.inference
            and scoped.scope_kind = method_choice.scope_kind

)

select * from final
