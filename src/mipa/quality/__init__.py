"""Data-quality gates (``mipa validate``): Great Expectations suites on the landed feeds and
the country-month panel, configured in ``quality/expectations.yml``, plus source freshness
and volume checks. dbt tests keep the row-level rules and the grain; these check
distributions, tolerances and drift (README, "Data quality")."""
