with

results as (

    select * from {{ ref('int_did__monthly_results') }}
    where result_table = 'att_gt'

),

final as (

    select
        estimator,
        outcome,
        cohort,
        cast(period_month as date) as period_month,
        cast(event_time as integer) as event_time,
        estimate,
        std_error,
        ci_low,
        ci_high,
        cast(n_obs as bigint) as n_obs,
        inference,
        control_group,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
