with

etwfe_grid as (

    select * from {{ ref('int_did__robustness_etwfe') }}

),

csdid_grid as (

    select * from {{ ref('int_did__robustness_csdid') }}

),

grid as (

    select * from etwfe_grid
    union all
    select * from csdid_grid

),

final as (

    select
        variant_id,
        dimension,
        variant_label,
        cast(is_baseline as boolean) as is_baseline,
        cast(same_as_baseline as boolean) as same_as_baseline,
        estimator,
        outcome,
        control_group,
        covid_handling,
        cast(anticipation_months as integer) as anticipation_months,
        partnership_variant,
        control_pool,
        cast(misa_controls_removed as boolean) as misa_controls_removed,
        cast(estimate as double) as estimate,
        cast(std_error as double) as std_error,
        cast(ci_low as double) as ci_low,
        cast(ci_high as double) as ci_high,
        cast(p_value as double) as p_value,
        cast(n_obs as bigint) as n_obs,
        cast(n_clusters as bigint) as n_clusters,
        cast(n_treated_clusters as bigint) as n_treated_clusters,
        cast(n_control_clusters as bigint) as n_control_clusters,
        inference,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from grid

)

select * from final
