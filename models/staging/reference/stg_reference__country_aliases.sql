with

source as (

    select * from {{ ref('country_aliases') }}

),

renamed as (

    select
        {{ normalize_text_key('alias') }} as alias_key,
        alias,
        alias_type,
        upper(trim(iso3)) as iso3

    from source

),

-- the same key may be listed under two types (a name that is also a variant); the seed
-- test guarantees such rows agree on iso3, so one row per key is kept
deduplicated as (

    select
        alias_key,
        min(alias) as alias,
        min(alias_type) as alias_type,
        min(iso3) as iso3

    from renamed
    group by alias_key

)

select * from deduplicated
