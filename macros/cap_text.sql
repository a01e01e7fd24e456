{#- A delivered value as stored for diagnostics: at most `max_chars` characters, with the
    original length said when it was cut (a 1 MB field is never copied whole). -#}
{% macro cap_text(expression, max_chars) -%}
    case
        when length({{ expression }}) > {{ max_chars }}
            then
                substring({{ expression }}, 1, {{ max_chars }}) || '... ({{ max_chars }} of '
                || cast(length({{ expression }}) as varchar) || ' characters)'
        else {{ expression }}
    end
{%- endmacro %}
