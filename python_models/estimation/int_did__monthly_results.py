"""All DiD estimators x all outcomes on int_panel__country_month (thin wrapper; logic in mipa.estimation)."""

from mipa.estimation import EstimationSettings, run_monthly


def model(dbt, session):
    dbt.config(materialized="table")
    settings = EstimationSettings(
        n_boot=int(dbt.config.get("n_boot")),
        seed=int(dbt.config.get("seed")),
        etwfe_control_group=dbt.config.get("etwfe_control_group"),
        cs_control_group=dbt.config.get("cs_control_group"),
    )
    panel = dbt.ref("int_panel__country_month").df()
    return run_monthly(panel, settings)
