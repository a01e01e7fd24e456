{#- The effects the synthetic feed generator planted, for the report to show beside the
    estimates. Read from the generator's signed marker as the loader logged it
    (landing.load_metadata, written only when the feeds are proven synthetic); empty for
    real feeds. One row per partner country and outcome (scope = its ISO3) plus one
    'overall' row per outcome: the countries' effects averaged with their post-start
    panel months as weights, the estimand of the simple ETWFE and Callaway & Sant'Anna
    aggregates (as in mipa.montecarlo.design). -#}
with

load_metadata as (

    select metadata
    from {{ ref('stg_load_log__load_metadata') }}
    where is_synthetic

),

panel as (

    select * from {{ ref('fct_country_month') }}

),

planted_countries as (

    select
        unnest(json_keys(metadata, '$.generator.effects')) as iso3,
        metadata
    from load_metadata

),

planted_cells as (

    select
        iso3,
        unnest(json_keys(json_extract(metadata, '$.generator.effects.' || iso3))) as outcome,
        metadata
    from planted_countries

),

by_country as (

    select
        iso3,
        outcome,
        cast(
            json_extract_string(metadata, '$.generator.effects.' || iso3 || '.' || outcome || '.planted')
            as double
        ) as planted_effect,
        cast(json_extract_string(metadata, '$.generator.treatment.' || iso3) || '-01' as date)
            as generator_start_month
    from planted_cells

),

post_months as (

    select
        by_country.iso3,
        by_country.outcome,
        count(panel.month_start) as n_post_months
    from by_country
    left join panel
        on
            by_country.iso3 = panel.iso3
            and by_country.generator_start_month <= panel.month_start
    group by by_country.iso3, by_country.outcome

),

countries as (

    select
        by_country.iso3 as scope,
        by_country.outcome,
        by_country.planted_effect,
        by_country.generator_start_month,
        post_months.n_post_months
    from by_country
    inner join post_months
        on by_country.iso3 = post_months.iso3 and by_country.outcome = post_months.outcome

),

overall as (

    select
        'overall' as scope,
        outcome,
        sum(planted_effect * n_post_months) / sum(n_post_months) as planted_effect,
        cast(null as date) as generator_start_month,
        cast(sum(n_post_months) as bigint) as n_post_months
    from countries
    where n_post_months > 0
    group by outcome

),

final as (

    select * from countries
    union all
    select * from overall

)

select * from final
