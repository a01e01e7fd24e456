"""The robustness grid for csdid: every variant x outcome (thin wrapper; logic in
mipa.sensitivity.robustness). One model per estimator, so dbt's two threads share the grid."""

from mipa.sensitivity.robustness import dbt_grid_model


def model(dbt, session):
    dbt.config(materialized="table")
    # dbt hands a Python model only the refs and config values its own code names
    frames = [dbt.ref("int_panel__country_month").df(), dbt.ref("stg_reference__partnerships").df(),
              dbt.ref("stg_reference__countries").df(), dbt.ref("stg_reference__country_neighbours").df()]
    config = {"n_boot": dbt.config.get("n_boot"), "seed": dbt.config.get("seed"),
              "etwfe_control_group": dbt.config.get("etwfe_control_group"),
              "cs_control_group": dbt.config.get("cs_control_group"),
              "partnership_variant": dbt.config.get("partnership_variant")}
    return dbt_grid_model(frames, config, estimators=("csdid",))
