{#- Every group has exactly the expected number of rows (e.g. 120 months per country). -#}
{% test rows_per_group(model, group_by, expected_rows) %}

with

grouped as (

    select
        {{ group_by }},
        count(*) as group_rows

    from {{ model }}
    group by {{ group_by }}

)

select * from grouped
where group_rows <> {{ expected_rows }}

{% endtest %}
