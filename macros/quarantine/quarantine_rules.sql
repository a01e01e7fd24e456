{#- Row rules shared by every feed, in the order they are checked; the first rule a row
    breaks is its quarantine reason. Used inside a `case` expression over a relation
    with record_id, delivery_rank, <event>_date, <event>_date_raw and nationality_iso3. -#}

{% macro common_quarantine_rules(event_date) -%}
    when record_id is null then 'missing_record_id'
    when delivery_rank > 1 then 'duplicate_record_id'
    when nullif(trim({{ event_date }}_raw), '') is null then 'missing_date'
    when {{ event_date }} is null then 'unparseable_date'
    when {{ event_date }} < cast('{{ var("earliest_valid_date") }}' as date) then 'date_before_earliest'
    when {{ event_date }} > current_date then 'date_in_future'
    when nationality_iso3 is null then 'unknown_nationality'
{%- endmacro %}

{% macro common_quarantine_details(event_date) -%}
    when record_id is null then 'record_id is empty'
    when delivery_rank > 1 then 'record_id ' || record_id || ' is delivered again later (file ' || latest_source_file || ', row ' || cast(latest_source_row as varchar) || '); this copy is superseded'
    when nullif(trim({{ event_date }}_raw), '') is null then '{{ event_date }} is empty'
    when {{ event_date }} is null then '{{ event_date }} ''' || {{ event_date }}_raw || ''' is not a date (YYYY-MM-DD or DD-MM-YYYY)'
    when {{ event_date }} < cast('{{ var("earliest_valid_date") }}' as date) then '{{ event_date }} ' || cast({{ event_date }} as varchar) || ' is before the earliest valid date {{ var("earliest_valid_date") }}'
    when {{ event_date }} > current_date then '{{ event_date }} ' || cast({{ event_date }} as varchar) || ' is in the future'
    when nationality_iso3 is null then 'nationality ''' || coalesce(nationality_raw, '') || ''' matches no country alias'
{%- endmacro %}

{#- Which copy of a record counts: the one in the latest delivery file (name order),
    and within a file the last row; earlier copies are superseded.

    `repeated_copies(relation)` is the body of a CTE with one row per copy of a record id
    delivered more than once (file_order, source_row: the copy; its delivery_rank, 1 for
    the copy that counts, and that copy's latest_source_file / latest_source_row). Only
    repeated ids are ranked: a window over every row does not stay within DuckDB's memory
    limit at 100x volume (it fails to spill at 700 MB), while a count per id hash does (issue 15).
    `delivery_rank_columns(copies)` reads it back for every row, joined on
    (file_order, source_row) by the model: a record id delivered once is its own latest copy.
    The models pass their import CTE, which DuckDB materialises because it is read three
    times. Passing the staged view instead was measured (session 13): no faster at 100x
    (40-42 s either way) and two validated models side by side then ran out of the 400MB
    memory limit in 3 of 4 builds. -#}
{% macro repeated_copies(relation) -%}
    select
        file_order,
        source_row,
        row_number() over latest_first as delivery_rank,
        first_value(source_file) over latest_first as latest_source_file,
        first_value(source_row) over latest_first as latest_source_row

    from {{ relation }}
    where {{ mipa.key_hash(['record_id']) }} in (
        -- candidates by hash (mipa.key_hash): a rare collision only adds an id delivered
        -- once, which ranks 1 in its own partition as before
        select {{ mipa.key_hash(['record_id']) }}
        from {{ relation }}
        where record_id is not null
        group by 1
        having count(*) > 1
    )
    window latest_first as (partition by record_id order by file_order desc, source_row desc)
{%- endmacro %}

{% macro delivery_rank_columns(copies) -%}
    coalesce({{ copies }}.delivery_rank, 1) as delivery_rank,
    {{ copies }}.latest_source_file,
    {{ copies }}.latest_source_row
{%- endmacro %}
