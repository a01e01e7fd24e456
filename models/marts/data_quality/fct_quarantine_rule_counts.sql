{#- Quarantined rows counted per feed and rule, with the first offending row in delivery
    order (file name, then row number) as an example: the run facts' quarantine table. -#}
with

quarantined as (

    select * from {{ ref('fct_quarantined_rows') }}

),

final as (

    select
        feed,
        quarantine_rule,
        count(*) as n_rows,
        arg_min(
            source_file || ' row ' || cast(source_row as varchar) || ': ' || coalesce(quarantine_detail, ''),
            (source_file, source_row)
        ) as example

    from quarantined
    group by feed, quarantine_rule

)

select * from final
