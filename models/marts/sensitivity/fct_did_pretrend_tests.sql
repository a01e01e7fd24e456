with

results as (

    select * from {{ ref('int_did__event_study_sensitivity') }}
    where result_table = 'pretrend_test'

),

final as (

    select
        estimator,
        outcome,
        specification,
        control_group,
        vcov_source,
        cast(first_lead as integer) as first_lead,
        cast(last_lead as integer) as last_lead,
        statistic,
        cast(df as integer) as df,
        p_value,
        f_statistic,
        df_denominator,
        p_value_f,
        p_value < 0.05 as rejects_at_5_percent,
        cast(n_clusters as bigint) as n_clusters,
        cast(n_placebo as bigint) as n_placebo,
        cast(note as varchar) as note,
        cast(status as varchar) as status,
        cast(reason as varchar) as reason,
        cast(reason_detail as varchar) as reason_detail,
        run_settings

    from results

)

select * from final
