{%- set feeds = [
    ('returns', 'departure_date'),
    ('requests', 'request_date'),
    ('nationality_confirmations', 'decision_date'),
    ('laissez_passers', 'issue_date'),
] -%}

with

{% for feed, event_date in feeds %}
    {{ feed }} as (

        select
            '{{ feed }}' as feed,
            source_file,
            source_row,
            record_id,
            quarantine_rule,
            quarantine_detail,
            nationality_raw,
            {{ event_date }}_raw as event_date_raw

        from {{ ref('int_dtenv__' ~ feed ~ '_validated') }}
        where quarantine_rule is not null

    ),

{% endfor %}

final as (

    {% for feed, event_date in feeds %}
        select * from {{ feed }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from final
