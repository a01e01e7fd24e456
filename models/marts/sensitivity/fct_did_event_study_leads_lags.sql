with

results as (

    select * from {{ ref('int_did__event_study_sensitivity') }}
    where result_table = 'event_study'

),

final as (

    select
        estimator,
        outcome,
        specification,
        control_group,
        cast(event_time as integer) as event_time,
        estimate,
        std_error,
        ci_low,
        ci_high,
        band_low,
        band_high,
        critical_value as band_critical_value,
        inference,
        cast(n_clusters as bigint) as n_clusters,
        cast(note as varchar) as note,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
