with

results as (

    select * from {{ ref('int_did__monthly_results') }}
    where result_table = 'event_study'

),

final as (

    select
        estimator,
        outcome,
        scope,
        cast(event_time as integer) as event_time,
        estimate,
        std_error,
        ci_low,
        ci_high,
        band_low,
        band_high,
        inference,
        control_group,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
