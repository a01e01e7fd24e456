{#- Grain test: no two rows share the same values of the given columns. Keys are first
    grouped by their hash (mipa.key_hash), so the exact group-by on the columns runs only
    over the few rows whose hash repeats: the same result, in bounded memory at any volume. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

repeated_hashes as (

    select {{ mipa.key_hash(combination_of_columns) }} as key_hash
    from {{ model }}
    group by 1
    having count(*) > 1

),

candidates as (

    select *
    from {{ model }}
    where {{ mipa.key_hash(combination_of_columns) }} in (select key_hash from repeated_hashes)

),

grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as rows_with_key

    from candidates
    group by {{ combination_of_columns | join(', ') }}

)

select * from grouped
where rows_with_key > 1

{% endtest %}
