r"""Hand-written (measured: ~1 ms per panel against ~100 ms for the general Poisson fixed-effects fit, and it runs
once per panel in every Monte Carlo replication): the month profile of Poisson ETWFE's counterfactual.

Reference: Wooldridge, J. M. (2023), "Simple approaches to nonlinear difference-in-differences
with panel data", The Econometrics Journal 26(3), C31-C66, section 6: with a full set of
cohort x post-period dummies the Poisson QMLE fits every treated post cell exactly, so its unit
and month effects are the Poisson MLE of ``y_it = exp(a_i + g_t)`` on the untreated cells
alone (never-treated units and the treated units' months before their start: the
not-yet-treated control group), and the count-scale effect of a treated cell is
``y_it - exp(a_i + g_t)`` (Poisson imputation).

The MLE of that two-way model solves ``sum_{t in O_i} y_it = e^{a_i} sum_{t in O_i} e^{g_t}``
and ``sum_{i in O_t} y_it = e^{g_t} sum_{i in O_t} e^{a_i}`` over the observed untreated cells
``O``; iterative proportional fitting (Deming & Stephan 1940) alternates the two and converges
to it. A unit whose untreated counts are all zero gets ``e^{a_i} = 0`` and so drops out of the
month equations, as fixest drops a fixed-effect group with an all-zero outcome.
"""

from __future__ import annotations

import numpy as np

from mipa.estimability import NotEstimable
from mipa.inference.panel_arrays import PanelArrays

__all__ = ["poisson_month_profile", "poisson_twoway"]


def poisson_twoway(y: np.ndarray, cells: np.ndarray, *, tol: float = 1e-13,
                   max_iter: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """``(e^{a_i}, e^{g_t})`` of the Poisson MLE of ``y_it = exp(a_i + g_t)`` on the cells
    where ``cells`` is True (``N x T`` masks; ``y`` may be NaN elsewhere). The month factor is
    normalised to sum to one over the months with a positive count; NaN for a month with no cell.
    Raises ``NotEstimable('fit_not_converged')`` when it has not converged (relative change
    ``tol``) in ``max_iter`` iterations."""
    O = (cells & np.isfinite(y)).astype(float)
    Y = np.where(O > 0, y, 0.0)
    unit_totals, month_totals = Y.sum(axis=1), Y.sum(axis=0)
    month = np.where(O.any(axis=0), 1.0, 0.0)
    for _ in range(max_iter):
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(unit_totals > 0, unit_totals / (O @ month), 0.0)
            new = np.where(month_totals > 0, month_totals / (unit @ O), 0.0)
        total = new.sum()
        new = new / total if total > 0 else new
        done = np.max(np.abs(new - month)) <= tol * max(np.max(new), 1e-300)
        month = new
        if done:
            with np.errstate(invalid="ignore", divide="ignore"):
                unit = np.where(unit_totals > 0, unit_totals / (O @ month), 0.0)
            return unit, np.where(O.any(axis=0), month, np.nan)
    raise NotEstimable("fit_not_converged", f"the two-way Poisson fit on the untreated cells did not converge in "
                       f"{max_iter} iterations")


def poisson_month_profile(pa: PanelArrays) -> np.ndarray:
    """``e^{g_t}`` (length ``T``, up to scale) of Poisson ETWFE with not-yet-treated controls
    on ``pa``: the two-way Poisson fit on every untreated observed cell. NaN for a month with
    no untreated observation. With it as the control series, the ``ratio`` counterfactual of
    a treated unit, ``b_pre e^{g_t}`` with ``b_pre = sum_pre y / sum_pre e^{g}``, is
    ``exp(a_i + g_t)``, so its post mean of ``y - b_pre e^{g_t}`` is Poisson ETWFE's
    count-scale effect of that unit."""
    untreated = pa.treatment < 0.5
    return poisson_twoway(pa.y, untreated)[1]
