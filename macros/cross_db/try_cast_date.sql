{#- Text to date, NULL when the text is not a date. Accepted forms: ISO 8601
    (YYYY-MM-DD, optionally with a time part) and the Dutch DD-MM-YYYY. -#}
{% macro try_cast_date(expression) -%}
    {{ return(adapter.dispatch('try_cast_date', 'mipa')(expression)) }}
{%- endmacro %}

{% macro default__try_cast_date(expression) -%}
    coalesce(
        try_cast(trim({{ expression }}) as date),
        try_cast(try_cast(trim({{ expression }}) as timestamp) as date),
        to_date(trim({{ expression }}), 'dd-MM-yyyy')
    )
{%- endmacro %}

{% macro duckdb__try_cast_date(expression) -%}
    coalesce(
        try_cast(trim({{ expression }}) as date),
        try_cast(try_cast(trim({{ expression }}) as timestamp) as date),
        try_cast(try_strptime(trim({{ expression }}), '%d-%m-%Y') as date)
    )
{%- endmacro %}
