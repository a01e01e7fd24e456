with

results as (

    select * from {{ ref('int_did__monthly_results') }}
    where result_table = 'estimate'

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
        cast(n_obs as bigint) as n_obs,
        cast(n_clusters as bigint) as n_clusters,
        cast(n_treated_clusters as bigint) as n_treated_clusters,
        inference,
        control_group,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
