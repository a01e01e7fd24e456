"""The robustness grid: every variant x outcome x estimator (thin wrapper; logic in
mipa.sensitivity.robustness)."""

from mipa.estimation import EstimationSettings
from mipa.processes import progress_line, run_in_child_process
from mipa.sensitivity.robustness import run_grid


def model(dbt, session):
    dbt.config(materialized="table")
    settings = EstimationSettings(
        n_boot=int(dbt.config.get("n_boot")),
        seed=int(dbt.config.get("seed")),
        etwfe_control_group=dbt.config.get("etwfe_control_group"),
        cs_control_group=dbt.config.get("cs_control_group"),
    )
    # in a child process: dbt runs Python models in its own process, under one interpreter lock
    return run_in_child_process(
        run_grid,
        dbt.ref("int_panel__country_month").df(),
        dbt.ref("stg_reference__partnerships").df(),
        dbt.ref("stg_reference__countries").df(),
        dbt.ref("stg_reference__country_neighbours").df(),
        settings,
        panel_variant=dbt.config.get("partnership_variant"),
        progress=progress_line,
    )
