with

results as (

    select * from {{ ref('int_did__poisson_results') }}

),

final as (

    select
        estimator,
        outcome,
        aggregation,
        scope,
        estimate,
        std_error,
        ci_low,
        ci_high,
        p_value,
        cast(rate_ratio as double) as rate_ratio,
        cast(rate_ratio_ci_low as double) as rate_ratio_ci_low,
        cast(rate_ratio_ci_high as double) as rate_ratio_ci_high,
        cast(n_obs as bigint) as n_obs,
        cast(n_clusters as bigint) as n_clusters,
        cast(n_treated_clusters as bigint) as n_treated_clusters,
        cast(inference as varchar) as inference,
        control_group,
        cast(n_all_zero_countries as bigint) as n_all_zero_countries,
        cast(all_zero_countries as varchar) as all_zero_countries,
        cast(n_zero_cells as bigint) as n_zero_cells,
        cast(zero_post_countries as varchar) as zero_post_countries,
        cast(zero_baseline_countries as varchar) as zero_baseline_countries,
        separation_handling,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
