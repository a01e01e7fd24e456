{#- A 64-bit hash of a row's key columns, to find candidate duplicates cheaply: a group-by
    on one integer needs a fraction of the memory of one on the columns themselves (at 100x
    volume it keeps the build within DuckDB's memory limit). Equal keys always hash equal;
    unequal keys may too (rarely), so a caller checks its candidates on the columns. -#}
{% macro key_hash(columns) -%}
    {{ return(adapter.dispatch('key_hash', 'mipa')(columns)) }}
{%- endmacro %}

{% macro default__key_hash(columns) -%}
    {{ dbt.hash(dbt.concat(columns)) }}
{%- endmacro %}

{% macro duckdb__key_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}
