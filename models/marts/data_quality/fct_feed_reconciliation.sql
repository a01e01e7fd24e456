{%- set feeds = ['returns', 'requests', 'nationality_confirmations', 'laissez_passers'] -%}

with

{% for feed in feeds %}
    {{ feed }}_landed as (

        select
            '{{ feed }}' as feed,
            count(*) as rows_landed

        -- staging keeps one row per landed row, so it counts what was landed
        from {{ ref('stg_dtenv__' ~ feed) }}

    ),

    {{ feed }}_validated as (

        select
            '{{ feed }}' as feed,
            count(case when quarantine_rule is null then 1 end) as rows_staged,
            count(quarantine_rule) as rows_quarantined,
            count(case when quarantine_rule = 'duplicate_record_id' then 1 end) as rows_superseded

        from {{ ref('int_dtenv__' ~ feed ~ '_validated') }}

    ),

{% endfor %}

counts as (

    {% for feed in feeds %}
        select
            {{ feed }}_landed.feed,
            {{ feed }}_landed.rows_landed,
            {{ feed }}_validated.rows_staged,
            {{ feed }}_validated.rows_quarantined,
            {{ feed }}_validated.rows_superseded

        from {{ feed }}_landed
        inner join {{ feed }}_validated on {{ feed }}_landed.feed = {{ feed }}_validated.feed
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        feed,
        rows_landed,
        rows_staged,
        rows_quarantined,
        rows_superseded,
        case
            when rows_landed = 0 then 0.0
            else cast(rows_quarantined as double) / rows_landed
        end as quarantined_share,
        -- superseded copies of re-delivered records are expected, not errors in the export
        case
            when rows_landed = 0 then 0.0
            else cast(rows_quarantined - rows_superseded as double) / rows_landed
        end as rejected_share,
        rows_landed = rows_staged + rows_quarantined as is_reconciled

    from counts

)

select * from final
