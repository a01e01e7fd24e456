{#- Counts and durations are never below zero (NULL passes; test not_null separately). -#}
{% test not_negative(model, column_name) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0

{% endtest %}
