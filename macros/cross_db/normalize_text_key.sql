{#- Matching key for free-text codes and names: lower case, accents removed, curly
    quotes straightened, runs of white space (also non-breaking) folded to one space. -#}
{% macro normalize_text_key(expression) -%}
    {{ return(adapter.dispatch('normalize_text_key', 'mipa')(expression)) }}
{%- endmacro %}

{% macro default__normalize_text_key(expression) -%}
    nullif(lower(trim(regexp_replace(
        replace(replace(translate({{ expression }}, '’‘`´', ''''''''''), chr(160), ' '), chr(8203), ''),
        '\\s+', ' '
    ))), '')
{%- endmacro %}

{% macro duckdb__normalize_text_key(expression) -%}
    nullif(lower(trim(regexp_replace(
        strip_accents(replace(replace(translate({{ expression }}, '’‘`´', ''''''''''), chr(160), ' '), chr(8203), '')),
        '\s+', ' ', 'g'
    ))), '')
{%- endmacro %}
