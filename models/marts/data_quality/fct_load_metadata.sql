{#- The load's metadata document (one row per build): whether the feeds were proven
    synthetic and, for synthetic feeds, the generator's settings; the report's run facts. -#}
with

load_metadata as (

    select * from {{ ref('stg_load_log__load_metadata') }}

),

final as (

    select
        metadata,
        is_synthetic

    from load_metadata

)

select * from final
