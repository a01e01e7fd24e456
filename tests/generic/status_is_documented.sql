{#- A result row says whether it was estimated: `status` is estimated or not_estimable, a
    not_estimable row has no value and a documented reason, an estimated row has a value,
    and every reason is one of the documented ones (seed not_estimable_reasons). -#}
{% test status_is_documented(model, value_column='estimate') %}

select *
from {{ model }}
where
    status is null
    or status not in ('estimated', 'not_estimable')
    or (status = 'not_estimable' and ({{ value_column }} is not null or reason is null))
    or (status = 'estimated' and {{ value_column }} is null)
    or (reason is not null and reason not in (select reason from {{ ref('not_estimable_reasons') }}))

{% endtest %}
