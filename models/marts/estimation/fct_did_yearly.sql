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
        cast(n_clusters as bigint) as n_clusters,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail

    from results

)

select * from final
