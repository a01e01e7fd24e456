"""Event studies with leads and lags, joint pre-trend tests and HonestDiD bounds for every
outcome of int_panel__country_month, as one long table (thin wrapper; logic in mipa.sensitivity.run)."""

from mipa.processes import progress_line, run_in_child_process
from mipa.sensitivity.run import SensitivitySettings, run_event_study_sensitivity


def model(dbt, session):
    dbt.config(materialized="table")
    settings = SensitivitySettings(
        seed=int(dbt.config.get("seed")),
        n_placebo=int(dbt.config.get("n_placebo")),
        n_band_draws=int(dbt.config.get("n_band_draws")),
    )
    # in a child process: dbt runs Python models in its own process, under one interpreter lock
    return run_in_child_process(run_event_study_sensitivity, dbt.ref("int_panel__country_month").df(), settings,
                                progress=progress_line)
