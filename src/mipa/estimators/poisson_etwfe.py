r"""Poisson extended TWFE (ETWFE) for count outcomes, effects on the count scale.

Reference: Wooldridge, J. M. (2023), "Simple approaches to nonlinear
difference-in-differences with panel data", The Econometrics Journal 26(3), C31-C66
(W2023), sections 5-6; the count-scale average partial effects are those of Stata
``jwdid, method(poisson)`` + ``estat simple`` and R ``etwfe(family = "poisson")`` +
``emfx(type = "simple")``.

Model
-----
Poisson quasi-MLE of the exponential mean with unit and period fixed effects and one
dummy per treated cell (the cells of :mod:`mipa.estimators.etwfe`: cohort x period for
``t >= g`` with not-yet-treated controls, all ``t != g - 1`` with never-treated
controls; ``cohort="unit"`` makes every treated unit its own cohort)::

    E[y_it | a, l, tau] = exp(a_i + l_t + sum_c tau_c D_itc)

QMLE needs only the mean to be right (no Poisson variance, counts or integers needed:
Wooldridge 1999). On a balanced panel the unit-FE Poisson and the pooled Poisson with
cohort dummies (W2023) give identical ``l`` and ``tau``: both fit, for every cohort and
period, the cohort total ``sum_{i in g} y_it``.

Fit: the unit effects are concentrated out. Given ``theta = (l, tau)`` the unit FOC gives
``exp(a_i) = Y_i / sum_t exp(z_it' theta)`` (``Y_i`` the unit total), and the profile
log-likelihood is the multinomial one,
``l(theta) = sum_i sum_t y_it log p_it``, ``p_it = exp(z_it'theta) / sum_s exp(z_is'theta)``
(Hausman, Hall & Griliches 1984), maximised by Newton's method with step halving:
gradient ``Z'(y - mu)``, ``mu_it = Y_i p_it``, and negative Hessian
``H = Z' diag(mu) Z - Zbar' diag(Y) Zbar`` with ``Zbar_i = sum_t p_it z_it``. The first
period's effect is the normalisation ``l = 0``.

Variance: cluster-robust by unit, ``V = q H^{-1} (sum_i s_i s_i') H^{-1}`` with
``s_i = sum_t z_it (y_it - mu_it)``. Because every unit's score for ``a_i`` is exactly zero
at the optimum, this is the ``(l, tau)`` block of the sandwich of the full model with
unit dummies (what ``ppmlhdfe`` / ``fixest::fepois`` / ``pyfixest.fepois`` report).
``q = (N-1)/(N-K) * G/(G-1)`` with ``K`` = cells + periods, the convention of
:mod:`mipa.estimators.etwfe` (reghdfe's; unit effects nested in the clusters do not count).

Effects on the count scale
--------------------------
For cell ``c`` (rows ``r = (i, t)``), with ``mu_r`` the fitted mean and
``b_r = mu_r exp(-tau_c) = exp(a_i + l_t)`` the fitted no-treatment mean,

    ATT_c = mean_{r in c} (mu_r - b_r) = mean_{r in c} mu_r (1 - exp(-tau_c))

(the average partial effect of switching the cell dummy off, W2023 eq. 6.8; R
``etwfe::emfx``). Aggregates are row-weighted averages of cells as in
:mod:`mipa.estimators.etwfe` (``simple``: over all treated post rows). Standard errors:
delta method in ``theta`` with the unit effects concentrated,
``a_i(theta) = log Y_i - log sum_t exp(z_it'theta)``, i.e. conditional on each unit's
total (``d mu_r / d theta = mu_r (z_r - Zbar_i)``, ``d b_r / d theta = b_r (z0_r -
Zbar_i)`` with ``z0_r`` the row's period dummy only). R ``etwfe`` instead holds all
fixed effects fixed and differentiates in ``tau`` only; this delta method also carries
the uncertainty of the period effects and of the units' levels through ``theta``. The
sampling noise of a unit's own level (one cluster per unit) is not estimable and not
included, so per-unit (``cohort="unit"``) standard errors are conditional on the units.
Intervals use t with ``G-1`` degrees of freedom, as :mod:`mipa.estimators.etwfe`.

Separation (why the annex dropped Poisson)
------------------------------------------
The Poisson MLE does not exist when a fixed-effect group has a zero total: its effect
runs to ``-inf`` (Correia, Guimaraes & Zylkin 2019, "Verifying the existence of maximum
likelihood estimates for generalized linear models", arXiv:1903.01633; ``ppmlhdfe``
drops such rows). Checked iteratively on the rows still in the fit and reported in
``settings["separation"]`` (nothing is dropped silently):

* ``all_zero_units``: units with ``y = 0`` in every period: ``a_i = -inf``, rows left out.
  A treated unit among them has fitted and counterfactual means 0 in its cells, so it
  adds 0 to its cells' ATT (all-zero treated unit on its own: ATT = 0 exactly).
* ``all_zero_periods``: periods with ``y = 0`` for every unit: ``l_t = -inf``.
* ``zero_cells``: treated cells whose observed outcomes are all 0, e.g. a country with no
  forced returns in a post month, or in every post month: ``tau_c = -inf``, rows left out
  (they fit exactly). The effect is well defined at the boundary:
  ``ATT_c = -mean_{r in c} b_r``, minus the counterfactual mean, with ``b_r`` estimated from
  the unit's other rows and the period effect. Its delta-method standard error has no
  ``tau_c`` term (the derivative in ``tau_c`` is 0 at ``-inf``) and is flagged
  unreliable: ``inference = "cluster_unit_separated"`` on the cell and on every aggregate
  that puts weight on it.
* ``zero_baseline_units``: a treated unit whose cells are its own (``cohort="unit"``
  or a one-unit cohort) and whose untreated rows are all 0: ``a_i = -inf`` and
  ``tau = +inf``; its rows are left out and ``ATT_c`` = mean observed count (the
  counterfactual is 0), flagged as above.

Other (non fixed-effect) separation cannot occur with dummies only. Singleton rows
(alone in their unit or period) are dropped first, as :mod:`mipa.estimators.etwfe`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mipa.estimators import _ols
from mipa.estimators.etwfe import (
    Cohort,
    ControlGroup,
    _aggregation_matrix,
    _cells,
    _label,
    _prepare,
    _unit_label_map,
)
from mipa.estimators.results import (
    ATT_GT_COLUMNS,
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    DidResult,
)

__all__ = ["PoissonFEFit", "poisson_etwfe", "poisson_fe_fit"]

INFERENCE = "cluster_unit"
INFERENCE_SEPARATED = "cluster_unit_separated"


# --------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class PoissonFEFit:
    """Poisson QMLE with unit effects concentrated out.

    ``coef`` = ``theta`` over the columns of ``z`` (period dummies, then cell dummies);
    ``vcov_raw`` the unit-clustered sandwich without small-sample factor; ``mu`` the
    fitted means and ``log_a`` the unit effects (per unit code).
    """

    coef: np.ndarray
    vcov_raw: np.ndarray
    hessian: np.ndarray
    mu: np.ndarray
    log_a: np.ndarray
    p_row: np.ndarray
    zbar: np.ndarray
    loglik: float
    iterations: int
    converged: bool


def _unit_sums(values: np.ndarray | sparse.spmatrix, unit: np.ndarray, n_units: int) -> Any:
    """``U' values`` with ``U`` the row-to-unit indicator."""
    u = sparse.csr_matrix((np.ones(unit.size), (unit, np.arange(unit.size))), shape=(n_units, unit.size))
    return u @ values


def _profile(theta: np.ndarray, z: sparse.csr_matrix, y: np.ndarray, unit: np.ndarray,
             y_tot: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Profile log-likelihood ``sum y log p`` and the row probabilities ``p``.

    ``p_it = exp(eta_it - max_i) / sum_s exp(eta_is - max_i)`` (stabilised);
    returns ``(loglik, p, log F_i, eta)``, ``log F_i = log sum_t exp(eta_it)``.
    """
    eta = z @ theta
    n_units = y_tot.size
    mx = np.full(n_units, -np.inf)
    np.maximum.at(mx, unit, eta)
    e = np.exp(eta - mx[unit])
    s = np.bincount(unit, weights=e, minlength=n_units)
    log_f = np.log(s) + mx
    logp = eta - log_f[unit]
    return float(y @ logp), np.exp(logp), log_f, eta


def poisson_fe_fit(
    y: np.ndarray,
    unit: np.ndarray,
    z: sparse.spmatrix | np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> PoissonFEFit:
    """Poisson QMLE of ``y`` on unit effects (codes ``unit``, concentrated) and ``z``.

    Newton's method on the profile likelihood (module docstring). Every unit needs a
    positive total (check separation first). Converges when the largest Newton step is
    below ``tol * (1 + |theta|)``.
    """
    y = np.asarray(y, dtype=float)
    zs = sparse.csr_matrix(z, dtype=float)
    n_units = int(unit.max()) + 1
    y_tot = np.bincount(unit, weights=y, minlength=n_units)
    if (y_tot <= 0).any():
        raise ValueError("a unit has a zero total: its fixed effect is -inf (separation)")
    p = zs.shape[1]
    theta = np.zeros(p)
    ll, prob, log_f, _ = _profile(theta, zs, y, unit, y_tot)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        mu = y_tot[unit] * prob
        grad = zs.T @ (y - mu)
        zbar = np.asarray(_unit_sums(zs.multiply(prob[:, None]).tocsr(), unit, n_units).todense())
        h = np.asarray((zs.T @ zs.multiply(mu[:, None])).todense()) - (zbar.T * y_tot) @ zbar
        h = (h + h.T) / 2
        try:
            step = np.linalg.solve(h, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(h, grad, rcond=None)[0]
        t = 1.0
        while True:
            new = theta + t * step
            ll_new, prob_new, log_f_new, _ = _profile(new, zs, y, unit, y_tot)
            if ll_new >= ll - 1e-12 * abs(ll) or t < 1e-8:
                break
            t /= 2
        theta, ll, prob, log_f = new, ll_new, prob_new, log_f_new
        if np.max(np.abs(t * step) / (1 + np.abs(theta))) < tol:
            converged = True
            break
    if not converged:
        warnings.warn(f"Poisson fit did not converge in {max_iter} Newton steps", RuntimeWarning)
    mu = y_tot[unit] * prob
    zbar = np.asarray(_unit_sums(zs.multiply(prob[:, None]).tocsr(), unit, n_units).todense())
    h = np.asarray((zs.T @ zs.multiply(mu[:, None])).todense()) - (zbar.T * y_tot) @ zbar
    h = (h + h.T) / 2
    h_inv = np.linalg.inv(h)
    scores = np.asarray(_unit_sums(zs.multiply((y - mu)[:, None]).tocsr(), unit, n_units).todense())
    v = h_inv @ (scores.T @ scores) @ h_inv
    return PoissonFEFit(
        coef=theta, vcov_raw=(v + v.T) / 2, hessian=h, mu=mu,
        log_a=np.log(y_tot) - log_f, p_row=prob, zbar=zbar, loglik=ll,
        iterations=it, converged=converged,
    )


# --------------------------------------------------------------------------- separation
@dataclass
class _Separation:
    """Rows left out of the fit and why (see the module docstring)."""

    active: np.ndarray
    all_zero_units: list[Any] = field(default_factory=list)
    all_zero_periods: list[Any] = field(default_factory=list)
    zero_cells: list[int] = field(default_factory=list)
    zero_baseline_units: list[Any] = field(default_factory=list)
    zero_baseline_cells: list[int] = field(default_factory=list)


def _detect_separation(
    y: np.ndarray, unit: np.ndarray, period: np.ndarray, cell: np.ndarray,
    unit_values: np.ndarray, period_values: np.ndarray,
) -> _Separation:
    """Iteratively find fixed-effect groups with a zero total among the rows in the fit."""
    sep = _Separation(active=np.ones(y.size, dtype=bool))
    n_u, n_t = int(unit.max()) + 1, int(period.max()) + 1
    n_c = int(cell.max()) + 1 if (cell >= 0).any() else 0
    changed = True
    while changed:
        changed = False
        act = sep.active
        w = np.where(act, y, 0.0)
        cnt_u = np.bincount(unit[act], minlength=n_u)
        tot_u = np.bincount(unit, weights=w, minlength=n_u)
        zero_u = (cnt_u > 0) & (tot_u <= 0)
        if zero_u.any():
            sep.all_zero_units += [_plain(unit_values[u]) for u in np.flatnonzero(zero_u)]
            sep.active &= ~zero_u[unit]
            changed = True
            continue
        cnt_t = np.bincount(period[act], minlength=n_t)
        tot_t = np.bincount(period, weights=w, minlength=n_t)
        zero_t = (cnt_t > 0) & (tot_t <= 0)
        if zero_t.any():
            sep.all_zero_periods += [_plain(period_values[t]) for t in np.flatnonzero(zero_t)]
            sep.active &= ~zero_t[period]
            changed = True
            continue
        if n_c:
            inc = act & (cell >= 0)
            cnt_c = np.bincount(cell[inc], minlength=n_c)
            tot_c = np.bincount(cell[inc], weights=y[inc], minlength=n_c)
            zero_c = (cnt_c > 0) & (tot_c <= 0)
            if zero_c.any():
                sep.zero_cells += [int(c) for c in np.flatnonzero(zero_c)]
                sep.active &= ~((cell >= 0) & zero_c[np.maximum(cell, 0)])
                changed = True
                continue
            # units whose untreated rows are all zero and whose cells are their own
            in_cell = act & (cell >= 0)
            units_per_cell = pd.Series(unit[in_cell]).groupby(cell[in_cell]).nunique()
            exclusive = np.zeros(n_c, dtype=bool)
            exclusive[units_per_cell.index.to_numpy()] = units_per_cell.to_numpy() == 1
            ctrl = act & (cell < 0)
            tot_ctrl = np.bincount(unit[ctrl], weights=y[ctrl], minlength=n_u)
            has_cells = np.bincount(unit[in_cell], minlength=n_u) > 0
            all_excl = np.ones(n_u, dtype=bool)
            np.logical_and.at(all_excl, unit[in_cell], exclusive[cell[in_cell]])
            bad = has_cells & all_excl & (tot_ctrl <= 0)
            if bad.any():
                sep.zero_baseline_units += [_plain(unit_values[u]) for u in np.flatnonzero(bad)]
                cells_bad = np.unique(cell[in_cell & bad[unit]])
                sep.zero_baseline_cells += [int(c) for c in cells_bad]
                sep.active &= ~bad[unit]
                changed = True
    return sep


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


@dataclass(frozen=True)
class SaturatedCellsFit:
    """The Poisson fit of one cell per treated (cohort, period) with unit and period effects,
    on the rows left after separation, with the count-scale cell effects and their gradients.

    Shared by :func:`poisson_etwfe` and the event-study covariance of
    :mod:`mipa.sensitivity.event_studies`, so both use the same sample, design and factor.
    """

    sep: _Separation
    active: np.ndarray  # rows in the fit
    separated: np.ndarray  # cells with an all-zero outcome (effect = minus the counterfactual mean)
    zero_base: np.ndarray  # cells whose unit has no untreated events (counterfactual 0)
    u_act: np.ndarray
    n_u_act: int
    t_levels: np.ndarray
    c_levels: np.ndarray
    c_pos: np.ndarray
    z_all: sparse.csr_matrix
    z0_all: sparse.csr_matrix
    fit: PoissonFEFit
    n_obs: int
    small_sample_factor: float  # as mipa.estimators.etwfe: (n-1)/(n-K) G/(G-1), K = cells + periods
    att: np.ndarray
    grad: np.ndarray
    base_mean: np.ndarray


def fit_saturated_cells(
    y_all: np.ndarray, unit_codes: np.ndarray, period_codes: np.ndarray, n_periods: int, cell_idx: np.ndarray,
    cells: pd.DataFrame, unit_values: np.ndarray, period_values: np.ndarray, *, tol: float = 1e-10,
) -> SaturatedCellsFit:
    """Separation check, design (period dummies with the first active period as base, one
    dummy per cell), Poisson fit and count-scale cell effects (W2023 eq. 6.8)."""
    n_cells = len(cells)
    sep = _detect_separation(y_all, unit_codes, period_codes, cell_idx, unit_values, period_values)
    act = sep.active
    if not act.any():
        raise ValueError("every row is separated (all-zero outcome): nothing to estimate")
    separated = np.zeros(n_cells, dtype=bool)
    separated[sep.zero_cells] = True
    zero_base = np.zeros(n_cells, dtype=bool)
    zero_base[sep.zero_baseline_cells] = True
    u_act, n_u_act = _ols.factorize(unit_codes[act])
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
    n_obs = int(act.sum())
    k = c_levels.size + t_levels.size
    q = (n_obs - 1) / (n_obs - k) * n_u_act / (n_u_act - 1)
    att, grad, base_mean = _cell_effects(
        fit, y_all, act, unit_codes, u_act, period_codes, cell_idx, z_all, z0_all, cells, separated, zero_base,
    )
    return SaturatedCellsFit(
        sep=sep, active=act, separated=separated, zero_base=zero_base, u_act=u_act, n_u_act=int(n_u_act),
        t_levels=t_levels, c_levels=c_levels, c_pos=c_pos, z_all=z_all, z0_all=z0_all, fit=fit, n_obs=n_obs,
        small_sample_factor=float(q), att=att, grad=grad, base_mean=base_mean,
    )


# --------------------------------------------------------------------------- main
def poisson_etwfe(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    control_group: ControlGroup = "notyettreated",
    cohort: Cohort = "group",
    unit_labels: Mapping[Any, str] | pd.Series | None = None,
    alpha: float = 0.05,
    tol: float = 1e-10,
) -> DidResult:
    """Poisson ETWFE with count-scale effects; see the module docstring.

    Parameters as :func:`mipa.estimators.etwfe.etwfe` (no covariates). ``outcome`` must be
    non-negative (counts, or any non-negative quantity for the QMLE).

    Returns
    -------
    DidResult with ``estimator="poisson_etwfe"``; ``att_gt`` holds the count-scale cell
    effects, ``estimates`` the ``simple`` / ``group`` / ``dynamic`` / ``calendar``
    aggregates, ``event_study`` the effects by event time. ``settings["cells_log_scale"]``
    lists every cell's ``tau`` (log of the multiplicative effect) with its standard error;
    ``settings["separation"]`` what was left out of the fit and why.
    """
    if control_group not in ("notyettreated", "nevertreated"):
        raise ValueError(f"control_group must be 'notyettreated' or 'nevertreated', not {control_group!r}")
    if cohort not in ("group", "unit"):
        raise ValueError(f"cohort must be 'group' or 'unit', not {cohort!r}")
    df, info = _prepare(panel, outcome=outcome, unit=unit, period=period,
                        first_treat=first_treat, covariates=[], control_group=control_group)
    y_all = df[outcome].to_numpy(dtype=float)
    if (y_all < 0).any():
        raise ValueError(f"Poisson ETWFE needs a non-negative outcome; {outcome!r} has negative values")
    unit_codes, _ = _ols.factorize(df[unit].to_numpy())
    period_codes, _ = _ols.factorize(df[period].to_numpy())
    keep = _ols.drop_singletons([unit_codes, period_codes])
    if not keep.all():
        info["dropped_singleton_rows"] = int((~keep).sum())
        df = df[keep].reset_index(drop=True)
    y_all = df[outcome].to_numpy(dtype=float)
    unit_codes, n_units = _ols.factorize(df[unit].to_numpy())
    period_codes, n_periods = _ols.factorize(df[period].to_numpy())
    unit_values = np.sort(df[unit].unique())
    period_values = np.sort(df[period].unique())

    cell_idx, cells = _cells(df, unit=unit, period=period, cohort=cohort, control_group=control_group)
    n_cells = len(cells)
    if not (cells["event_time"] >= 0).any():
        raise ValueError("no observed post-treatment rows of treated units")

    sc = fit_saturated_cells(y_all, unit_codes, period_codes, n_periods, cell_idx, cells, unit_values,
                             period_values, tol=tol)
    sep, act, separated, zero_base = sc.sep, sc.active, sc.separated, sc.zero_base
    g, t_levels, c_levels, c_pos, fit = sc.n_u_act, sc.t_levels, sc.c_levels, sc.c_pos, sc.fit

    n_obs, q = sc.n_obs, sc.small_sample_factor
    v = q * fit.vcov_raw
    att, grad, base_mean = sc.att, sc.grad, sc.base_mean
    v_cells = grad @ v @ grad.T
    v_cells = (v_cells + v_cells.T) / 2

    if cohort == "unit":
        lab_map = _unit_label_map(cells["key"], unit_labels)
    else:
        lab_map = {kk: _label(kk) for kk in pd.unique(cells["key"])}
    meta, w_est, ev_meta, w_ev = _aggregation_matrix(cells, lab_map)
    flag = separated | zero_base
    df_t = g - 1

    est = w_est @ att
    se = np.sqrt(np.maximum(((w_est @ v_cells) * w_est).sum(axis=1), 0.0))
    lo, hi, p = _ols.wald_ci(est, se, df=df_t, alpha=alpha)
    estimates = pd.DataFrame(meta)
    estimates["estimate"] = est
    estimates["std_error"] = se
    estimates["ci_low"] = lo
    estimates["ci_high"] = hi
    estimates["p_value"] = p
    estimates["n_obs"] = n_obs
    estimates["n_clusters"] = g
    estimates["inference"] = np.where((w_est[:, flag] != 0).any(axis=1), INFERENCE_SEPARATED, INFERENCE)
    estimates = estimates[ESTIMATE_COLUMNS]

    ev = w_ev @ att
    ev_se = np.sqrt(np.maximum(((w_ev @ v_cells) * w_ev).sum(axis=1), 0.0))
    ev_lo, ev_hi, _ = _ols.wald_ci(ev, ev_se, df=df_t, alpha=alpha)
    event_study = pd.DataFrame({
        "scope": "overall",
        "event_time": [m["event_time"] for m in ev_meta],
        "estimate": ev, "std_error": ev_se, "ci_low": ev_lo, "ci_high": ev_hi,
        "band_low": np.nan, "band_high": np.nan,
        "inference": np.where((w_ev[:, flag] != 0).any(axis=1), INFERENCE_SEPARATED, INFERENCE),
    })
    if control_group == "nevertreated" and (event_study["event_time"] < -1).any():
        ref = pd.DataFrame([{"scope": "overall", "event_time": -1, "estimate": 0.0,
                             "std_error": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                             "band_low": np.nan, "band_high": np.nan, "inference": "reference"}])
        event_study = pd.concat([event_study, ref], ignore_index=True)
    event_study = event_study.sort_values("event_time", kind="stable").reset_index(drop=True)[EVENT_STUDY_COLUMNS]

    cell_se = np.sqrt(np.maximum(np.diag(v_cells), 0.0))
    c_lo, c_hi, _ = _ols.wald_ci(att, cell_se, df=df_t, alpha=alpha)
    group_col = ([lab_map[kk] for kk in cells["key"]] if cohort == "unit"
                 else cells["g"].astype(np.int64).tolist())
    att_gt = pd.DataFrame({
        "group": group_col, "period": cells["period"].to_numpy(),
        "event_time": cells["event_time"].to_numpy(), "estimate": att,
        "std_error": cell_se, "ci_low": c_lo, "ci_high": c_hi,
        "n_obs": cells["n_obs"].to_numpy(),
        "inference": np.where(flag, INFERENCE_SEPARATED, INFERENCE),
    })[ATT_GT_COLUMNS]

    tau = np.full(n_cells, np.nan)
    tau_se = np.full(n_cells, np.nan)
    tau[c_levels] = fit.coef[c_pos[c_levels]]
    tau_se[c_levels] = np.sqrt(np.diag(v)[c_pos[c_levels]])
    tau[separated] = -np.inf
    tau[zero_base] = np.inf
    cells_log = [
        {"group": grp, "period": _plain(per), "tau": float(tv), "std_error": float(ts),
         "baseline_mean": float(bm)}
        for grp, per, tv, ts, bm in zip(group_col, cells["period"], tau, tau_se, base_mean, strict=True)
    ]
    settings: dict[str, Any] = {
        "control_group": control_group,
        "cohort": cohort,
        "alpha": alpha,
        "n_obs": n_obs,
        "n_obs_before_separation": int(act.size),
        "n_units": int(g),
        "n_periods": int(t_levels.size),
        "n_cells": int(n_cells),
        "vcov": "cluster by unit; sandwich of the unit-FE Poisson QMLE; factor (N-1)/(N-K)*G/(G-1), K = cells + periods",
        "small_sample_factor": q,
        "ci_distribution": f"t({df_t})",
        "newton_iterations": fit.iterations,
        "converged": fit.converged,
        "loglik_profile": fit.loglik,
        "separation": _separation_report(sep, cells, group_col),
        "cells_log_scale": cells_log,
        **info,
    }
    return DidResult(
        estimator="poisson_etwfe", outcome=outcome, control_group=control_group,
        estimates=estimates.reset_index(drop=True), event_study=event_study,
        att_gt=att_gt, settings=settings,
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
    fit: PoissonFEFit,
    y: np.ndarray,
    act: np.ndarray,
    unit_codes: np.ndarray,
    u_act: np.ndarray,
    period_codes: np.ndarray,
    cell_idx: np.ndarray,
    z_all: sparse.csr_matrix,
    z0_all: sparse.csr_matrix,
    cells: pd.DataFrame,
    separated: np.ndarray,
    zero_base: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count-scale cell effects ``ATT_c = mean_r (mu_r - b_r)``, their gradient in
    ``theta`` and the cells' mean counterfactual ``b``.

    For a row of unit ``i`` in the fit: ``mu_r = Y_i exp(z_r'theta) / F_i`` and
    ``b_r = Y_i exp(z0_r'theta) / F_i`` (``F_i = sum_{s in fit} exp(z_s'theta)``), so
    ``d mu_r = mu_r (z_r - Zbar_i)``, ``d b_r = b_r (z0_r - Zbar_i)``. Zero cells:
    ``mu_r = 0``; zero-baseline cells: ``b_r = 0``, ``mu_r = y_r`` (no gradient); rows of
    all-zero units: ``mu_r = b_r = 0``.
    """
    n_cells = len(cells)
    in_cell = np.flatnonzero(cell_idx >= 0)
    c = cell_idx[in_cell]
    # map full unit codes to fit unit codes (-1 when the unit left the fit)
    n_u = int(unit_codes.max()) + 1
    fit_unit = np.full(n_u, -1, dtype=np.int64)
    fit_unit[unit_codes[act]] = u_act
    fu = fit_unit[unit_codes[in_cell]]
    ok = fu >= 0
    theta = fit.coef
    y_tot = np.exp(fit.log_a)  # exp(a_i) = Y_i / F_i
    eta = np.asarray(z_all[in_cell] @ theta).ravel()
    eta0 = np.asarray(z0_all[in_cell] @ theta).ravel()
    scale = np.where(ok, y_tot[np.maximum(fu, 0)], 0.0)
    mu = scale * np.exp(eta)
    base = scale * np.exp(eta0)
    sep_r = separated[c]
    zb_r = zero_base[c]
    # a period left out of the fit (all-zero period) has l_t = -inf: means 0
    t_in = np.isin(period_codes[in_cell], np.unique(period_codes[act]))
    mu = np.where(t_in & ~sep_r, mu, 0.0)
    base = np.where(t_in, base, 0.0)
    base = np.where(zb_r, 0.0, base)
    mu = np.where(zb_r, y[in_cell], mu)
    contrib = mu - base
    n_c = cells["n_obs"].to_numpy(dtype=float)
    avg = sparse.csr_matrix((1.0 / n_c[c], (c, np.arange(c.size))), shape=(n_cells, c.size))
    att = np.asarray(avg @ contrib).ravel()
    base_mean = np.asarray(avg @ base).ravel()
    zbar_r = fit.zbar[np.maximum(fu, 0)] * ok[:, None]
    mu_g = np.where(zb_r, 0.0, mu)
    d_rows = (
        z_all[in_cell].multiply(mu_g[:, None]) - z0_all[in_cell].multiply(base[:, None])
    ).toarray() - (mu_g - base)[:, None] * zbar_r
    grad = np.asarray(avg @ d_rows)
    return att, grad, base_mean


def _separation_report(sep: _Separation, cells: pd.DataFrame, group_col: list[Any]) -> dict[str, Any]:
    """JSON-able account of the separation checks."""
    def cell_list(ids: list[int]) -> list[dict[str, Any]]:
        return [{"group": _plain(group_col[i]), "period": _plain(cells["period"].iloc[i]),
                 "event_time": int(cells["event_time"].iloc[i])} for i in sorted(ids)]

    return {
        "rows_left_out": int((~sep.active).sum()),
        "all_zero_units": sep.all_zero_units,
        "all_zero_units_reason": "outcome 0 in every period: unit effect -inf; rows left out, fitted and counterfactual means 0",
        "all_zero_periods": sep.all_zero_periods,
        "all_zero_periods_reason": "outcome 0 for every unit: period effect -inf; rows left out",
        "zero_cells": cell_list(sep.zero_cells),
        "zero_cells_reason": "treated outcome 0 in every row of the cell: tau = -inf; ATT = -counterfactual mean, SE unreliable",
        "zero_baseline_units": sep.zero_baseline_units,
        "zero_baseline_cells": cell_list(sep.zero_baseline_cells),
        "zero_baseline_reason": "untreated rows of a unit with its own cells all 0: counterfactual 0, ATT = observed mean, SE unreliable",
    }
