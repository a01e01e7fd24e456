"""Staggered difference-in-differences estimators on a long panel DataFrame.

Every estimator takes a long panel (one row per unit and period) and returns a
:class:`mipa.estimators.results.DidResult`.
"""

from mipa.estimators.results import DidResult, normal_ci

__all__ = ["DidResult", "normal_ci"]
