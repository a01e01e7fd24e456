r"""Poisson ETWFE with covariates, as R ``etwfe(family = "poisson")`` with its default
``fe = "vs"``; the fit is pyfixest's ``fepois`` (a kept library: mipa's own Newton fit in
:mod:`mipa.estimators.poisson_fit` serves the no-covariate case, where it also handles
separation as fixest does).

Reference: Wooldridge, J. M. (2023), "Simple approaches to nonlinear difference-in-
differences with panel data", The Econometrics Journal 26(3), C31-C66, sections 5-6 (W2023).

Model (not-yet-treated controls; ``g`` the cohort, ``x`` the covariates, ``xdm`` the
covariates minus their cohort mean)::

    E[y_it] = exp(a_g + l_t + x_it'(b_g + c_t) + sum_cells D_itc (tau_c + xdm_it' d_c))

cohort and period effects with cohort- and period-specific covariate slopes (fixest's
``g[x] + t[x]``), and per treated cell a level ``tau_c`` and a slope ``d_c`` on the
cohort-demeaned covariates. Without covariates it is the unit fixed-effects model of
:func:`mipa.estimators.poisson_etwfe.poisson_etwfe` (W2023: the Poisson QMLE with cohort
dummies equals the one with unit dummies).

Effects on the count scale: for a treated row ``r`` in cell ``c`` with fitted mean
``mu_r``, ``mu_r - mu_r exp(-(tau_c + xdm_r'd_c))`` (switching the cell's terms off,
W2023 eq. 6.8), averaged over the aggregate's rows. On the log scale (``predict =
"link"`` in R): ``tau_c + xdm_r'd_c`` averaged the same way. Standard errors: the delta
method in ``(tau, d)`` with every fixed effect and slope held at its estimate, as R
``etwfe::emfx``; the covariance is fixest's unit-clustered sandwich (pyfixest, same small-
sample factors). Intervals use t with ``G - 1`` degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import STATUS_ESTIMATED, NotEstimable
from mipa.estimators import least_squares
from mipa.estimators.etwfe_aggregate import aggregation_matrix, cohort_labels
from mipa.estimators.results import ATT_GT_COLUMNS, ESTIMATE_COLUMNS, DidResult, estimate_frame, event_study_frame

__all__ = ["poisson_etwfe_covariates"]

INFERENCE = "cluster_unit"


def _design(panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str,
            covariates: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """The estimation frame (columns ``_y``, ``_u``, ``_g``, ``_t``, the cell and slope
    regressors), the cells table and the names of the cell-level and cell-slope columns."""
    rows = panel[[outcome, unit, period, first_treat, *covariates]].dropna().reset_index(drop=True)
    if (rows[outcome] < 0).any():
        raise ValueError(f"{outcome}: Poisson ETWFE needs a non-negative outcome")
    g = rows[first_treat].fillna(0).to_numpy()
    t = rows[period].to_numpy()
    treated = (g > 0) & (t >= g)
    frame = pd.DataFrame({"_y": rows[outcome].to_numpy(float), "_u": rows[unit].to_numpy(), "_g": g, "_t": t})
    cell_keys = sorted({(gg, tt) for gg, tt in zip(g[treated], t[treated], strict=True)})
    if not cell_keys:
        raise NotEstimable("no_treated_units", "no treated unit with an observed month from its start on")
    if not (~treated).any():
        raise NotEstimable("no_control_units", "no untreated row to compare with")
    dm = {x: rows[x] - rows.groupby(first_treat)[x].transform("mean") for x in covariates}
    level_cols, slope_cols, cells = [], [], []
    for j, (gg, tt) in enumerate(cell_keys):
        in_cell = treated & (g == gg) & (t == tt)
        frame[f"_c{j}"] = in_cell.astype(float)
        level_cols.append(f"_c{j}")
        for k, x in enumerate(covariates):
            frame[f"_c{j}_x{k}"] = np.where(in_cell, dm[x], 0.0)
            slope_cols.append(f"_c{j}_x{k}")
        cells.append({"key": gg, "g": gg, "period": tt, "event_time": int(np.round(tt - gg)),
                      "n_obs": int(in_cell.sum()), "units": list(pd.unique(frame.loc[in_cell, "_u"]))})
    # the cohort and period slopes of fixest's g[x] + t[x], as columns (one level of each left
    # out against the common slope: their span is that of the varying slopes)
    for k, x in enumerate(covariates):
        frame[f"_x{k}"] = rows[x].to_numpy(float)
        for level in np.unique(g)[1:]:
            frame[f"_x{k}_g{level}"] = np.where(g == level, frame[f"_x{k}"], 0.0)
        for level in np.unique(t)[1:]:
            frame[f"_x{k}_t{level}"] = np.where(t == level, frame[f"_x{k}"], 0.0)
    return frame, pd.DataFrame(cells), level_cols, slope_cols


def poisson_etwfe_covariates(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str, covariates: Sequence[str],
    alpha: float = 0.05,
) -> DidResult:
    """Poisson ETWFE with ``covariates`` (not-yet-treated controls, cohorts by first
    treated period); see the module docstring for the model and the effects.

    Returns a :class:`DidResult` (``estimator="poisson_etwfe"``) with the count-scale
    cell effects (``att_gt``), the ``simple`` / ``group`` / ``dynamic`` / ``calendar``
    aggregates and the event study; ``settings["event_study_log_scale"]`` holds the
    event-time averages of ``tau_c + xdm'd_c`` with their standard errors (R ``emfx(...,
    predict = "link")``)."""
    import pyfixest as pf

    covariates = list(covariates)
    frame, cells, level_cols, slope_cols = _design(panel, outcome=outcome, unit=unit, period=period,
                                                   first_treat=first_treat, covariates=covariates)
    if not (frame["_y"] > 0).any():
        raise NotEstimable("all_zero_outcome", f"{outcome} is 0 in every row")
    regressors = [c for c in frame.columns if c.startswith("_c") or c.startswith("_x")]
    fit = pf.fepois(f"_y ~ {' + '.join(regressors)} | _g + _t", data=frame, vcov={"CRV1": "_u"})
    names = list(fit._coefnames)
    missing = [c for c in level_cols + slope_cols if c not in names]
    if missing:
        raise NotEstimable("singular_design", f"cell terms collinear with the fixed effects: {', '.join(missing)}")
    coef = fit.coef()
    pos = [names.index(c) for c in level_cols + slope_cols]
    v = np.asarray(fit._vcov)[np.ix_(pos, pos)]

    mu = np.asarray(fit.predict(newdata=frame, type="response"), dtype=float)
    k = len(covariates)
    n_cells = len(cells)
    att = np.zeros(n_cells)
    log_mean = np.zeros(n_cells)
    grad = np.zeros((n_cells, len(pos)))  # d ATT_c / d (tau, d)
    grad_log = np.zeros((n_cells, len(pos)))
    for j, col in enumerate(level_cols):
        rows = frame[col].to_numpy() == 1.0
        xdm = frame.loc[rows, [f"_c{j}_x{i}" for i in range(k)]].to_numpy()
        slopes = coef[[f"_c{j}_x{i}" for i in range(k)]].to_numpy()
        lin = coef[col] + xdm @ slopes
        m1 = mu[rows]
        att[j] = float(np.mean(m1 * (1.0 - np.exp(-lin))))
        log_mean[j] = float(np.mean(lin))
        # the counterfactual exp(a_g + l_t + x'(b_g + c_t)) does not move with (tau, d)
        grad[j, j] = m1.mean()
        grad_log[j, j] = 1.0
        for i in range(k):
            grad[j, n_cells + j * k + i] = float(np.mean(m1 * xdm[:, i]))
            grad_log[j, n_cells + j * k + i] = float(np.mean(xdm[:, i]))
    v_cells = grad @ v @ grad.T
    g_clusters = int(frame["_u"].nunique())
    df_t = g_clusters - 1

    labels = cohort_labels(cells, "group")
    meta, w_est, ev_meta, w_ev = aggregation_matrix(cells, labels)
    est = w_est @ att
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", w_est, v_cells, w_est), 0.0))
    lo, hi, p = least_squares.wald_ci(est, se, df=df_t, alpha=alpha)
    estimates = estimate_frame(meta, est, se, lo, hi, p, n_obs=int(fit._N), n_clusters=g_clusters,
                               inference=INFERENCE).drop(columns=["cells_left_out"], errors="ignore")
    estimates = estimates.reindex(columns=ESTIMATE_COLUMNS)
    estimates["status"] = STATUS_ESTIMATED

    ev = w_ev @ att
    ev_se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", w_ev, v_cells, w_ev), 0.0))
    ev_lo, ev_hi, _ = least_squares.wald_ci(ev, ev_se, df=df_t, alpha=alpha)
    event_times = [m["event_time"] for m in ev_meta]
    event_study = event_study_frame(event_times, ev, ev_se, ev_lo, ev_hi, inference=INFERENCE, reference=False)
    v_log = grad_log @ v @ grad_log.T
    log_scale = [{"event_time": e, "estimate": float(w @ log_mean),
                  "std_error": float(np.sqrt(max(w @ v_log @ w, 0.0)))} for e, w in zip(event_times, w_ev, strict=True)]

    cell_se = np.sqrt(np.maximum(np.diag(v_cells), 0.0))
    c_lo, c_hi, _ = least_squares.wald_ci(att, cell_se, df=df_t, alpha=alpha)
    att_gt = pd.DataFrame({
        "group": cells["g"].astype(np.int64), "period": cells["period"], "event_time": cells["event_time"],
        "estimate": att, "std_error": cell_se, "ci_low": c_lo, "ci_high": c_hi, "n_obs": cells["n_obs"],
        "inference": INFERENCE,
    })[ATT_GT_COLUMNS]
    settings: dict[str, Any] = {
        "control_group": "notyettreated",
        "cohort": "group",
        "covariates": covariates,
        "alpha": alpha,
        "n_obs": int(fit._N),
        "n_units": g_clusters,
        "n_cells": n_cells,
        "fit": "pyfixest fepois: cohort and period fixed effects with covariate slopes, cell terms",
        "vcov": "cluster by unit (pyfixest CRV1, fixest's small-sample factors)",
        "ci_distribution": f"t({df_t})",
        "event_study_log_scale": log_scale,
    }
    return DidResult(estimator="poisson_etwfe", outcome=outcome, control_group="notyettreated",
                     estimates=estimates.reset_index(drop=True), event_study=event_study, att_gt=att_gt,
                     settings=settings)
