with

results as (

    select * from {{ ref('int_did__yearly_results') }}

),

final as (

    select
        outcome,
        treatment,
        estimate,
        std_error,
        ci_low,
        ci_high,
        p_value,
        cast(n_obs as bigint) as n_obs,
        cast(n_clusters as bigint) as n_clusters

    from results

)

select * from final
