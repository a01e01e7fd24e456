{#- The Monte Carlo's results (source montecarlo.inference_coverage, read as text), renamed
    and cast column by column. -#}
with

source as (

    select * from {{ source('montecarlo', 'inference_coverage') }}

),

renamed as (

    select
        cast(lower(trim(effects)) as varchar) as planted_effects,
        cast(lower(trim(estimator)) as varchar) as estimator,
        cast(lower(trim(inference)) as varchar) as inference,
        cast(lower(trim(outcome)) as varchar) as outcome,
        cast(
            case
                when lower(trim(scope)) in ('overall', 'countries') then lower(trim(scope))
                else upper(trim(scope))
            end as varchar
        ) as scope,
        cast(n_replications as integer) as n_replications,
        cast(n_intervals as integer) as n_intervals,
        cast(coverage as double) as coverage,
        cast(coverage_mcse as double) as coverage_mcse,
        cast(rejection_rate as double) as rejection_rate,
        cast(median_width as double) as median_width,
        cast(oracle_width as double) as oracle_width,
        cast(share_unbounded as double) as share_unbounded,
        cast(bias as double) as bias,
        cast(rmse as double) as rmse,
        cast(wall_seconds as double) as wall_seconds

    from source

)

select * from renamed
