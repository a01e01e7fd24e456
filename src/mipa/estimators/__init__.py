"""Staggered difference-in-differences estimators on a long panel DataFrame.

Every estimator takes a long panel (one row per unit and period) and returns a
:class:`mipa.estimators.results.DidResult`.
"""

from mipa.estimators.csdid import callaway_santanna
from mipa.estimators.etwfe import EtwfeFit, etwfe, etwfe_fit
from mipa.estimators.results import DidResult, normal_ci
from mipa.estimators.twfe import twfe, yearly_twfe

__all__ = ["DidResult", "EtwfeFit", "callaway_santanna", "etwfe", "etwfe_fit", "normal_ci", "twfe", "yearly_twfe"]
