{#- Which estimator is unbiased where: the design study's bias, RMSE and coverage per design
    (planted effects x additive or multiplicative form), outcome, estimator, inference
    method and scope, with the bias in sampling-sd units and the coverage's Wilson interval. -#}
with

designs as (

    select * from {{ ref('stg_montecarlo__estimator_designs') }}

),

final as (

    select
        planted_effects as effects,
        effect_form,
        outcome,
        estimator,
        inference,
        scope,
        n_replications,
        n_intervals,
        mean_truth,
        bias,
        rmse,
        -- the oracle width is 2 x 1.96 sd, so this is the bias in sampling sds
        bias / nullif(oracle_width / (2 * 1.959964), 0) as bias_in_sd,
        coverage,
        coverage_mcse,
        {{ wilson_bound('coverage', 'n_intervals', -1) }} as coverage_ci_low,
        {{ wilson_bound('coverage', 'n_intervals', 1) }} as coverage_ci_high,
        rejection_rate,
        median_width,
        oracle_width,
        median_width / nullif(oracle_width, 0) as width_to_oracle,
        wall_seconds

    from designs

)

select * from final
