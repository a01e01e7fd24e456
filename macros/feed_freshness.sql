{#- Source freshness of a feed (`dbt source freshness`, sources' loaded_at_query).

    A feed is as fresh as its newest event date, measured against the delivery's reference
    date rather than the clock: feeds proven synthetic are measured against their own
    delivery calendar (the day after the generated window), so a synthetic build from last
    year is not "340 days stale". dbt computes the age as now - max_loaded_at, so the query
    returns now - (reference date - newest event date): dbt's age is then exactly the days
    from the newest event to the reference date, the measure of `mipa validate` before it
    moved here. Event dates after the reference date are ignored; a feed without a parseable
    date on or before it returns NULL, which dbt reads as infinitely old (warn). -#}
{% macro feed_loaded_at_query(event_date_column) -%}
    with

    reference as (

        select {{ mipa.freshness_reference_date() }} as reference_date

    ),

    dated as (

        select {{ mipa.try_cast_date(event_date_column) }} as event_date

        from {{ this }}

    ),

    newest as (

        select max(dated.event_date) as newest_event_date

        from dated
        cross join reference
        where dated.event_date <= reference.reference_date

    )

    select
        current_timestamp
        - to_days(cast(reference.reference_date - newest.newest_event_date as integer)) as max_loaded_at

    from reference
    cross join newest
{%- endmacro %}


{#- The date freshness is measured against: var freshness_reference_date when set
    (YYYY-MM-DD; `mipa validate --reference-date` sets it), else for feeds proven synthetic
    the first day after the generated window (landing.load_metadata), else today. -#}
{% macro freshness_reference_date() -%}
    {%- set given = var('freshness_reference_date', '') | string | trim -%}
    {%- if given -%}
        cast('{{ given }}' as date)
    {%- else -%}
        {%- set load_log = load_relation(source('load_log', 'load_metadata')) -%}
        {%- if load_log is none -%}
            current_date
        {%- else -%}
            coalesce(
                (select max({{ mipa.synthetic_delivery_date('metadata') }}) from {{ load_log }}),
                current_date
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- For the load metadata of feeds proven synthetic, the first day after the generated
    window (generator.settings.window.end, YYYY-MM); NULL for real feeds. -#}
{% macro synthetic_delivery_date(metadata) -%}
    case
        when coalesce(try_cast(json_extract_string({{ metadata }}, '$.synthetic') as boolean), false)
            then cast({{ dbt.dateadd(
                'month', 1,
                "try_cast(left(json_extract_string(" ~ metadata ~ ", '$.generator.settings.window.end'), 7) || '-01' as date)"
            ) }} as date)
    end
{%- endmacro %}
