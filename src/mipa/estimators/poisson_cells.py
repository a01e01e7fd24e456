r"""The sample, the saturated-cells Poisson fit and the count-scale cell effects of Poisson ETWFE.

Reference: Wooldridge, J. M. (2023), "Simple approaches to nonlinear
difference-in-differences with panel data", The Econometrics Journal 26(3), C31-C66
(W2023), eq. 6.8 (the count-scale average partial effect of a cell). The model, the
aggregates and their standard errors are stated in :mod:`mipa.estimators.poisson_etwfe`.

* :func:`poisson_sample`: the regression rows (the sample rules of
  :func:`mipa.estimators.etwfe.prepare_rows`, singleton rows dropped) and the cells of
  :func:`mipa.estimators.etwfe.cell_table`.
* :func:`fit_saturated_cells`: the separation check
  (:func:`mipa.estimators.poisson_separation.detect_separation`), the design (period
  dummies with the first active period as base, one dummy per cell), the fit
  (:func:`mipa.estimators.poisson_fit.poisson_fe_fit`), the small-sample factor
  ``q = (N-1)/(N-K) * G/(G-1)`` with ``K`` = kept columns + 1, and per cell ``c``

      ATT_c = mean_{r in c} (mu_r - b_r),   b_r = mu_r exp(-tau_c) = exp(a_i + l_t),

  with its gradient in ``theta`` (``d mu_r / d theta = mu_r (z_r - Zbar_i)``,
  ``d b_r / d theta = b_r (z0_r - Zbar_i)``). A cell with a row whose counterfactual is
  not estimable (``z0_r - Zbar_i`` not orthogonal to the null space of the within-unit
  design) is not identified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mipa.estimability import NotEstimable
from mipa.estimators import least_squares
from mipa.estimators.etwfe import Cohort, ControlGroup, cell_table, drop_singleton_rows, prepare_rows
from mipa.estimators.poisson_fit import DEVIANCE_TOL, PoissonFEFit, poisson_fe_fit, unit_sums
from mipa.estimators.poisson_separation import Separation, detect_separation

__all__ = ["ESTIMABLE_TOL", "PoissonSample", "SaturatedCellsFit", "fit_saturated_cells", "poisson_sample"]

#: |(z0 - Zbar)' v| below which a counterfactual counts as estimable (dummy designs: 0 or >= 1/T)
ESTIMABLE_TOL = 1e-7


@dataclass(frozen=True)
class PoissonSample:
    """The regression rows of a Poisson ETWFE run: after validation, the control-group
    rules of :func:`mipa.estimators.etwfe.prepare_rows` and the singleton drop, with the cells."""

    df: pd.DataFrame
    info: dict[str, Any]
    y: np.ndarray
    unit_codes: np.ndarray
    period_codes: np.ndarray
    n_periods: int
    unit_values: np.ndarray
    period_values: np.ndarray
    cell_idx: np.ndarray
    cells: pd.DataFrame
    unit: str
    period: str


def poisson_sample(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str,
    control_group: ControlGroup, cohort: Cohort,
) -> PoissonSample:
    """Rows, codes and cells of one run; data conditions raise
    :class:`~mipa.estimability.NotEstimable`, invalid input ``ValueError``."""
    if control_group not in ("notyettreated", "nevertreated"):
        raise ValueError(f"control_group must be 'notyettreated' or 'nevertreated', not {control_group!r}")
    if cohort not in ("group", "unit"):
        raise ValueError(f"cohort must be 'group' or 'unit', not {cohort!r}")
    df, info = prepare_rows(panel, outcome=outcome, unit=unit, period=period,
                        first_treat=first_treat, covariates=[], control_group=control_group)
    if (df[outcome].to_numpy(dtype=float) < 0).any():
        raise ValueError(f"Poisson ETWFE needs a non-negative outcome; {outcome!r} has negative values")
    df, unit_codes, _, period_codes, n_periods = drop_singleton_rows(df, unit=unit, period=period, info=info)
    treated = np.isfinite(df["_g"].to_numpy())
    if not treated.any():
        raise NotEstimable("no_treated_units", f"no partner country has an observed untreated and treated {outcome}")
    if treated.all():
        raise NotEstimable("no_control_units", f"no comparison country has an observed {outcome}")
    if not (treated & (df[period].to_numpy() >= df["_g"].to_numpy())).any():
        raise NotEstimable("no_post_treatment_data", f"{outcome} is not observed in any month from a start on")
    cell_idx, cells = cell_table(df, unit=unit, period=period, cohort=cohort, control_group=control_group)
    return PoissonSample(
        df=df, info=info, y=df[outcome].to_numpy(dtype=float), unit_codes=unit_codes, period_codes=period_codes,
        n_periods=int(n_periods), unit_values=np.sort(df[unit].unique()), period_values=np.sort(df[period].unique()),
        cell_idx=cell_idx, cells=cells, unit=unit, period=period,
    )


@dataclass(frozen=True)
class SaturatedCellsFit:
    """The Poisson fit of one cell per treated (cohort, period) with unit and period effects,
    on the rows left after separation, with the count-scale cell effects and their gradients.

    Shared by :func:`mipa.estimators.poisson_etwfe.poisson_etwfe` and the event-study covariance of
    :mod:`mipa.sensitivity.event_studies`, so both use the same sample, design and factor.
    ``cells_agg`` is the cell table with ``n_obs`` / ``units`` counting only the rows that
    enter the averages (rows of all-zero units and periods do not); ``identified`` marks
    the cells with an effect; ``att`` is 0 and ``grad`` 0 for the others.
    """

    sep: Separation
    active: np.ndarray  # rows in the fit
    separated: np.ndarray  # cells with a boundary (separated) row: inference flagged
    zero_base: np.ndarray  # cells whose counterfactual is 0 at the boundary
    identified: np.ndarray  # cells with an effect
    all_zero_cells: np.ndarray  # cells with no counted row (all-zero units or periods)
    no_untreated: np.ndarray  # cells of units without an untreated row
    u_act: np.ndarray
    n_u_act: int
    t_levels: np.ndarray
    c_levels: np.ndarray
    c_pos: np.ndarray
    z_all: sparse.csr_matrix
    z0_all: sparse.csr_matrix
    fit: PoissonFEFit
    n_obs: int
    small_sample_factor: float  # as mipa.estimators.etwfe: (n-1)/(n-K) G/(G-1), K = kept columns + 1
    att: np.ndarray
    grad: np.ndarray
    base_mean: np.ndarray
    treated_mean: np.ndarray
    grad_treated: np.ndarray
    grad_base: np.ndarray
    cells_agg: pd.DataFrame


def fit_saturated_cells(sample: PoissonSample, *, tol: float = DEVIANCE_TOL) -> SaturatedCellsFit:
    """Separation check, design (period dummies with the first active period as base, one
    dummy per cell), Poisson fit and count-scale cell effects (W2023 eq. 6.8)."""
    y_all, unit_codes, period_codes = sample.y, sample.unit_codes, sample.period_codes
    cell_idx, cells, n_periods = sample.cell_idx, sample.cells, sample.n_periods
    n_cells = len(cells)
    sep = detect_separation(y_all, unit_codes, period_codes, cell_idx, n_cells, sample.unit_values,
                             sample.period_values)
    act = sep.active
    if not act.any():
        raise NotEstimable("all_zero_outcome", "the outcome is 0 in every country-month of the fit")
    u_act, n_u_act = least_squares.factorize(unit_codes[act])
    if n_u_act < 2:
        raise NotEstimable("no_control_units", "one country is left in the fit after the all-zero ones")
    t_levels = np.unique(period_codes[act])
    t_pos = np.full(n_periods, -1, dtype=np.int64)
    t_pos[t_levels[1:]] = np.arange(t_levels.size - 1)
    c_levels = np.unique(cell_idx[act & (cell_idx >= 0)])
    c_pos = np.full(n_cells, -1, dtype=np.int64)
    c_pos[c_levels] = t_levels.size - 1 + np.arange(c_levels.size)
    n_par = t_levels.size - 1 + c_levels.size
    z_all = _row_design(period_codes, cell_idx, t_pos, c_pos, n_par)
    z0_all = _row_design(period_codes, np.full(cell_idx.size, -1), t_pos, c_pos, n_par)
    fit = poisson_fe_fit(y_all[act], u_act, z_all[act], tol=tol)
    if not fit.converged:
        raise NotEstimable("fit_not_converged", f"Newton's method stopped after {fit.iterations} steps without "
                                                f"meeting the deviance rule (deviance {fit.deviance:.6g})")
    n_obs = int(act.sum())
    k = int(fit.kept.sum()) + 1
    if n_obs <= k:
        raise NotEstimable("singular_design", f"{n_obs} country-months for {k} parameters: no residual variation")
    q = (n_obs - 1) / (n_obs - k) * n_u_act / (n_u_act - 1)
    eff = _cell_effects(fit, sample, sep, act, u_act, t_levels, z_all, z0_all)
    return SaturatedCellsFit(
        sep=sep, active=act, separated=eff["flag"], zero_base=eff["cf_zero_cell"], identified=eff["identified"],
        all_zero_cells=eff["all_zero"], no_untreated=eff["no_untreated"], u_act=u_act, n_u_act=int(n_u_act),
        t_levels=t_levels, c_levels=c_levels, c_pos=c_pos, z_all=z_all, z0_all=z0_all, fit=fit, n_obs=n_obs,
        small_sample_factor=float(q), att=eff["att"], grad=eff["grad"], base_mean=eff["base_mean"],
        treated_mean=eff["treated_mean"], grad_treated=eff["grad_treated"], grad_base=eff["grad_base"],
        cells_agg=eff["cells_agg"],
    )


def _row_design(period_codes: np.ndarray, cell_idx: np.ndarray, t_pos: np.ndarray,
                c_pos: np.ndarray, n_par: int) -> sparse.csr_matrix:
    """Sparse rows ``z_r``: the period dummy (none for the base period or a dropped
    period) and the cell dummy (none outside cells or for a cell not in the fit)."""
    n = period_codes.size
    tp = t_pos[period_codes]
    cp = np.where(cell_idx >= 0, c_pos[np.maximum(cell_idx, 0)], -1)
    rows = np.concatenate([np.flatnonzero(tp >= 0), np.flatnonzero(cp >= 0)])
    cols = np.concatenate([tp[tp >= 0], cp[cp >= 0]])
    return sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n_par))


def _cell_effects(
    fit: PoissonFEFit, sample: PoissonSample, sep: Separation, act: np.ndarray, u_act: np.ndarray,
    t_levels: np.ndarray, z_all: sparse.csr_matrix, z0_all: sparse.csr_matrix,
) -> dict[str, Any]:
    """Count-scale cell effects ``ATT_c = M_c - B_c`` (treated and counterfactual means
    over the cell's counted rows), their gradients in ``theta``, and which cells are
    identified, flagged or left out.

    Row ``r`` of unit ``i`` in the fit: ``mu_r = exp(a_i + z_r'theta)``,
    ``b_r = exp(a_i + z0_r'theta)``, ``d mu_r = mu_r (z_r - Zbar_i)``,
    ``d b_r = b_r (z0_r - Zbar_i)``. Separated rows: ``mu_r = 0``; zero-baseline rows:
    ``mu_r = y_r``; boundary counterfactuals (``cf_zero``): ``b_r = 0`` (no gradient). A
    counterfactual off the boundary must be estimable (module docstring).
    """
    y, unit_codes, period_codes = sample.y, sample.unit_codes, sample.period_codes
    cell_idx, cells = sample.cell_idx, sample.cells
    n_cells = len(cells)
    r = np.flatnonzero(cell_idx >= 0)
    c = cell_idx[r]
    n_u = int(unit_codes.max()) + 1
    fit_unit = np.full(n_u, -1, dtype=np.int64)
    fit_unit[unit_codes[act]] = u_act
    fu = fit_unit[unit_codes[r]]
    in_fit_unit = fu >= 0
    fu0 = np.maximum(fu, 0)
    t_in = np.isin(period_codes[r], t_levels)
    theta = fit.coef
    log_a = np.where(in_fit_unit, fit.log_a[fu0], -np.inf)
    eta = np.asarray(z_all[r] @ theta).ravel()
    eta0 = np.asarray(z0_all[r] @ theta).ravel()
    counted = sep.counted[r]
    active = act[r]
    cf_zero = sep.cf_zero[r]
    mu_obs = sep.mu_observed[r]

    # estimability of the counterfactual: (z0_r - Zbar_i)' v = 0 for every null direction v
    null = fit.null_space
    if null.shape[1]:
        z_act = z_all[act]
        zv = np.asarray(z_act @ null)
        cnt = np.bincount(u_act, minlength=fit.log_a.size).astype(float)
        c_unit = np.asarray(unit_sums(zv, u_act, cnt.size)) / np.maximum(cnt, 1.0)[:, None]
        dev = np.asarray(z0_all[r] @ null) - c_unit[fu0]
        estimable = np.all(np.abs(dev) < ESTIMABLE_TOL, axis=1)
    else:
        estimable = np.ones(r.size, dtype=bool)
    b_known = cf_zero | (in_fit_unit & t_in & estimable)

    with np.errstate(over="ignore", invalid="ignore"):
        mu = np.where(active, np.exp(log_a + eta), 0.0)
        mu = np.where(mu_obs, y[r], mu)
        base = np.where(cf_zero | ~b_known, 0.0, np.exp(log_a + eta0))
    mu = np.where(np.isfinite(mu), mu, 0.0)
    base = np.where(np.isfinite(base), base, 0.0)

    n_counted = np.bincount(c[counted], minlength=n_cells)
    unknown = np.bincount(c[counted & ~b_known], minlength=n_cells) > 0
    all_zero = n_counted == 0
    identified = ~all_zero & ~unknown
    flag = np.bincount(c[counted & (~active | cf_zero)], minlength=n_cells) > 0
    cf_zero_cell = np.bincount(c[counted & cf_zero], minlength=n_cells) > 0
    # units with no untreated (non-cell) row in the sample: their cells cannot be identified
    has_untreated = np.bincount(unit_codes[cell_idx < 0], minlength=n_u) > 0
    no_untreated = np.bincount(c[~has_untreated[unit_codes[r]]], minlength=n_cells) > 0

    use = counted & np.isin(c, np.flatnonzero(identified))
    n_use = np.maximum(n_counted, 1).astype(float)
    avg = sparse.csr_matrix((np.where(use, 1.0 / n_use[c], 0.0), (c, np.arange(c.size))), shape=(n_cells, c.size))
    treated_mean = np.asarray(avg @ mu).ravel()
    base_mean = np.asarray(avg @ base).ravel()
    att = treated_mean - base_mean

    zbar_r = fit.zbar[fu0] * in_fit_unit[:, None]
    mu_g = np.where(active & use, mu, 0.0)
    b_g = np.where(use & ~cf_zero, base, 0.0)
    d_mu = (z_all[r].multiply(mu_g[:, None])).toarray() - mu_g[:, None] * zbar_r
    d_b = (z0_all[r].multiply(b_g[:, None])).toarray() - b_g[:, None] * zbar_r
    grad_treated = np.asarray(avg @ d_mu)
    grad_base = np.asarray(avg @ d_b)

    cells_agg = cells.copy()
    cells_agg["n_obs"] = n_counted
    units_r = sample.df[sample.unit].to_numpy()[r]
    counted_units = pd.Series(units_r[counted]).groupby(c[counted]).agg(frozenset)
    cells_agg["units"] = [counted_units.get(i, frozenset()) for i in range(n_cells)]
    return {
        "att": att, "grad": grad_treated - grad_base, "base_mean": base_mean, "treated_mean": treated_mean,
        "grad_treated": grad_treated, "grad_base": grad_base, "identified": identified, "all_zero": all_zero,
        "no_untreated": no_untreated, "flag": flag & identified, "cf_zero_cell": cf_zero_cell,
        "cells_agg": cells_agg,
    }
