-- mipa is 1 exactly from the seed's MIPA start month on, and 0 for countries without one
-- (checked against the seed itself, not against the staged copy the panel is built from).
with

panel as (

    select * from {{ ref('fct_country_month') }}

),

starts as (

    select
        iso3,
        min(start_month) as mipa_start_month

    from {{ ref('partnerships') }}
    where program = 'MIPA' and variant = '{{ var("partnership_variant") }}'
    group by iso3

)

select panel.*
from panel
left join starts on panel.iso3 = starts.iso3
where panel.mipa <> case
    when starts.mipa_start_month is not null and panel.month_start >= starts.mipa_start_month then 1
    else 0
end
