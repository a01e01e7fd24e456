"""Annex 11.2 yearly exploratory regressions on fct_country_year (thin wrapper)."""

from mipa.estimation import run_yearly


def model(dbt, session):
    dbt.config(materialized="table")
    return run_yearly(dbt.ref("fct_country_year").df())
