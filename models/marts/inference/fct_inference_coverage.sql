{#- The Monte Carlo's coverage, size, width and bias per design, estimator, inference
    method, outcome and scope (source montecarlo.inference_coverage), with the file's column
    names, for the report's inference section. -#}
with

coverage as (

    select * from {{ ref('stg_montecarlo__inference_coverage') }}

),

final as (

    select
        planted_effects as effects,
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
        bias,
        rmse,
        wall_seconds

    from coverage

)

select * from final
