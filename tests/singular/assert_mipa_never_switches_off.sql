-- Treatment is absorbing: once a country's partnership has started, mipa stays 1.
with

lagged as (

    select
        iso3,
        month_start,
        mipa,
        lag(mipa) over (partition by iso3 order by month_start) as previous_mipa

    from {{ ref('fct_country_month') }}

)

select *
from lagged
where previous_mipa = 1 and mipa = 0
