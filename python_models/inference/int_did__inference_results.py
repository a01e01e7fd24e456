"""Every estimator x inference method x outcome on int_panel__country_month (thin wrapper; logic in
mipa.inference.suite, the same function the Monte Carlo harness scores)."""

import os

from mipa.inference.suite import InferenceSettings, inference_results
from mipa.processes import progress_line, run_in_child_process


def model(dbt, session):
    dbt.config(materialized="table")
    settings = InferenceSettings(
        wild_n_boot=int(dbt.config.get("wild_n_boot")),
        n_placebo=int(dbt.config.get("n_placebo")),
        cs_n_boot=int(dbt.config.get("cs_n_boot")),
        wild_seed=int(dbt.config.get("seed")),
        placebo_seed=int(dbt.config.get("seed")),
        cs_seed=int(dbt.config.get("seed")),
        sdid_seed=int(dbt.config.get("seed")),
    )
    # dbt already runs two models at a time on two cores (profiles.yml threads): one more
    # process pool here would put more busy processes than cores; opt in with the variable
    workers = int(os.environ.get("MIPA_ESTIMATION_WORKERS", "1"))
    # in a child process: dbt runs Python models in its own process, under one interpreter lock
    return run_in_child_process(inference_results, dbt.ref("int_panel__country_month").df(), settings, workers=workers,
                                progress=progress_line)
