"""Fixed-effects least squares for code outside :mod:`mipa.estimators`.

The inference and sensitivity modules fit their own designs (a dynamic TWFE event study,
a wild bootstrap under the null) with the estimators' machinery, so that their sample
rules, collinearity handling and small-sample factors are the estimators'. This module
is their entry point: the implementation lives in :mod:`mipa.estimators.least_squares` (see
its docstring for the formulas), which only the estimator modules import directly.
"""

from mipa.estimators.least_squares import (
    ClusterSums,
    OLSFit,
    TwoWayEffects,
    VcovInfo,
    absorb,
    absorbed_dof,
    cluster_small_sample_factor,
    cluster_vcov,
    drop_singletons,
    factorize,
    fit_within,
    level_factors,
    wald_ci,
)

__all__ = [
    "ClusterSums",
    "OLSFit",
    "TwoWayEffects",
    "VcovInfo",
    "absorb",
    "absorbed_dof",
    "cluster_small_sample_factor",
    "cluster_vcov",
    "drop_singletons",
    "factorize",
    "fit_within",
    "level_factors",
    "wald_ci",
]
