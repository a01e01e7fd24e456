with

results as (

    select * from {{ ref('int_did__event_study_sensitivity') }}
    where result_table = 'honest_bounds'

),

final as (

    select
        estimator,
        outcome,
        specification,
        restriction,
        method,
        parameter,
        parameter_multiple,
        m_unit,
        estimate,
        std_error,
        ci_low,
        ci_high,
        ci_low <= 0 and 0 <= ci_high as contains_zero,
        cast(open_lower as boolean) as open_lower,
        cast(open_upper as boolean) as open_upper,
        breakdown_value,
        breakdown_multiple,
        breakdown_limit,
        pre_window,
        post_window,
        vcov_source,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
