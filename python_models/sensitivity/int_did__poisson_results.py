"""Poisson ETWFE on the count outcomes of int_panel__country_month, overall and per partner
country, on the count scale (thin wrapper; logic in mipa.sensitivity.run.run_poisson)."""

from mipa.sensitivity.run import SensitivitySettings, run_poisson


def model(dbt, session):
    dbt.config(materialized="table")
    settings = SensitivitySettings(etwfe_control_group=dbt.config.get("etwfe_control_group"))
    return run_poisson(dbt.ref("int_panel__country_month").df(), settings)
