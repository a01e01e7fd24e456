{#- The design study's results (source montecarlo.estimator_designs, read as text), renamed
    and cast column by column. -#}
with

source as (

    select * from {{ source('montecarlo', 'estimator_designs') }}

),

renamed as (

    select
        cast(lower(trim(effects)) as varchar) as planted_effects,
        cast(lower(trim(effect_form)) as varchar) as effect_form,
        cast(lower(trim(outcome)) as varchar) as outcome,
        cast(lower(trim(estimator)) as varchar) as estimator,
        cast(lower(trim(inference)) as varchar) as inference,
        cast(lower(trim(scope)) as varchar) as scope,
        cast(n_replications as integer) as n_replications,
        cast(n_intervals as integer) as n_intervals,
        cast(mean_truth as double) as mean_truth,
        cast(bias as double) as bias,
        cast(rmse as double) as rmse,
        cast(coverage as double) as coverage,
        cast(coverage_mcse as double) as coverage_mcse,
        cast(rejection_rate as double) as rejection_rate,
        cast(median_width as double) as median_width,
        cast(oracle_width as double) as oracle_width,
        cast(wall_seconds as double) as wall_seconds

    from source

)

select * from renamed
