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

The computation is split by responsibility (each module states its formulas):

* :mod:`mipa.estimators.poisson_fit`: the Poisson QMLE with the unit effects concentrated
  out (damped Newton) and its unit-clustered sandwich;
* :mod:`mipa.estimators.poisson_separation`: the separation checks (rows without a finite
  maximum-likelihood fit, the reason the annex dropped Poisson);
* :mod:`mipa.estimators.poisson_cells`: the sample, the saturated-cells fit and the
  count-scale cell effects with their gradients;
* this module: the aggregates, the rate ratio and the tables (:func:`poisson_etwfe`).

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

Rate ratio (columns :data:`RATE_RATIO_COLUMNS` of the estimates): the ratio of the
treated mean to the counterfactual mean over the aggregate's rows,
``RR = sum_r w_r mu_r / sum_r w_r b_r = 1 + ATT / B`` (``B`` the aggregate's
counterfactual mean; the row weights ``w`` of the count-scale aggregate). It is not the
exponential of an average ``tau``, which does not exist when a cell is separated. Its
95% interval is the delta-method interval of ``log RR`` (t with ``G-1`` df),
exponentiated; ``RR`` is NULL when the counterfactual mean is 0 and its interval is
NULL when the treated mean is 0 or the standard error of ``log RR`` is at rounding level
(below 1e-6).

A counterfactual ``b_r`` must be estimable: ``z0_r - Zbar_i`` orthogonal to every
direction that leaves all fitted means unchanged (the null space of the within-unit
design). A cell with a row whose counterfactual is not estimable (e.g. a month in which no
comparison country is observed) is not identified: it is left out of the aggregates, and
an aggregate with no identified cell is not estimable (``not_identified``).

When there is no estimate
-------------------------
Data conditions raise :class:`~mipa.estimability.NotEstimable` (never another error):
no treated unit with an untreated month (``no_treated_units``), no comparison unit
(``no_control_units``), no observed post-start row (``no_post_treatment_data``), every
row zero (``all_zero_outcome``), a fit that does not converge (``fit_not_converged``),
no residual degree of freedom (``singular_design``). Within a fit, each row of the
estimates carries ``status`` / ``reason`` / ``reason_detail``: an aggregate whose cells
are all unidentified is ``not_estimable`` (``all_zero_outcome`` when its partners have no
event at all, ``no_pre_treatment_data`` when they have no untreated month, otherwise
``not_identified``), one that left some out says so (``cells_left_out``; also when it
leaves out the rows of partners with 0 in every month), and one whose standard error is at
rounding level (only boundary cells whose counterfactual is fixed at 0 behind it) has it
NULL (``no_variance``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import REASONS, STATUS_ESTIMATED, NotEstimable, status_columns
from mipa.estimators import least_squares
from mipa.estimators.etwfe import Cohort, ControlGroup, aggregation_matrix, cohort_labels, scope_label
from mipa.estimators.poisson_cells import PoissonSample, SaturatedCellsFit, fit_saturated_cells, poisson_sample
from mipa.estimators.poisson_covariates import poisson_etwfe_covariates
from mipa.estimators.poisson_fit import DEVIANCE_TOL, PoissonFEFit, poisson_fe_fit
from mipa.estimators.poisson_separation import Separation, separation_report
from mipa.estimators.results import (
    ATT_GT_COLUMNS,
    ESTIMATE_COLUMNS,
    DidResult,
    estimate_frame,
    event_study_frame,
    plain,
)

__all__ = [
    "RATE_RATIO_COLUMNS",
    "PoissonFEFit",
    "PoissonSample",
    "SaturatedCellsFit",
    "Separation",
    "fit_saturated_cells",
    "poisson_etwfe",
    "poisson_fe_fit",
    "poisson_sample",
    "separation_report",
]

INFERENCE = "cluster_unit"
INFERENCE_SEPARATED = "cluster_unit_separated"
RATE_RATIO_COLUMNS: tuple[str, ...] = ("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high")


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
    tol: float = DEVIANCE_TOL,
    covariates: Sequence[str] = (),
) -> DidResult:
    """Poisson ETWFE with count-scale effects; see the module docstring.

    Parameters as :func:`mipa.estimators.etwfe.etwfe`. ``outcome`` must be non-negative
    (counts, or any non-negative quantity for the QMLE); ``tol`` is the relative deviance
    tolerance of the fit. With ``covariates`` (not-yet-treated controls, cohorts by first
    treated period) the model is R ``etwfe``'s with covariate slopes, fitted by pyfixest
    (:func:`mipa.estimators.poisson_covariates.poisson_etwfe_covariates`).

    Returns
    -------
    DidResult with ``estimator="poisson_etwfe"``; ``att_gt`` holds the count-scale cell
    effects, ``estimates`` the ``simple`` / ``group`` / ``dynamic`` / ``calendar``
    aggregates with their status columns and the rate ratio (:data:`RATE_RATIO_COLUMNS`),
    ``event_study`` the effects by event time. ``settings["cells_log_scale"]`` lists every
    cell's ``tau`` (log of the multiplicative effect) with its standard error;
    ``settings["separation"]`` what was left out of the fit and why.

    Raises
    ------
    NotEstimable
        for the data conditions of the module docstring ("When there is no estimate").
    """
    if len(covariates):
        if control_group != "notyettreated" or cohort != "group":
            raise ValueError("Poisson ETWFE with covariates: control_group='notyettreated' and cohort='group' only")
        return poisson_etwfe_covariates(panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat,
                                        covariates=covariates, alpha=alpha)
    sample = poisson_sample(panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat,
                            control_group=control_group, cohort=cohort)
    cells = sample.cells
    n_cells = len(cells)
    sc = fit_saturated_cells(sample, tol=tol)
    fit, g, q, n_obs = sc.fit, sc.n_u_act, sc.small_sample_factor, sc.n_obs
    ident, flag = sc.identified, sc.separated
    if not ident.any():
        raise NotEstimable(*_no_cell_reason(sc, np.ones(n_cells, dtype=bool)))
    v = q * fit.vcov_raw
    v_cells = sc.grad @ v @ sc.grad.T
    v_cells = (v_cells + v_cells.T) / 2

    lab_map = cohort_labels(cells, cohort, unit_labels)
    meta, w_est, ev_meta, w_ev = aggregation_matrix(sc.cells_agg, lab_map, identified=ident)
    _, w_cover, _, _ = aggregation_matrix(cells, lab_map)
    df_t = g - 1

    att = np.where(ident, sc.att, 0.0)
    w0 = np.where(np.isfinite(w_est), w_est, 0.0)
    est = np.where(np.isfinite(w_est).all(axis=1), w0 @ att, np.nan)
    se = np.sqrt(np.maximum(((w0 @ v_cells) * w0).sum(axis=1), 0.0))
    se = np.where(np.isfinite(est), se, np.nan)
    # a variance at rounding level is none: only boundary cells with fixed counterfactuals behind the row
    no_var = np.isfinite(est) & ~(se > 1e-6 * (1.0 + np.abs(np.where(np.isfinite(est), est, 0.0))))
    se = np.where(no_var, np.nan, se)
    lo, hi, p = least_squares.wald_ci(est, se, df=df_t, alpha=alpha)
    rr, rr_lo, rr_hi = _rate_ratio(w0, sc.treated_mean, sc.base_mean, sc.grad_treated, sc.grad_base, v,
                                   np.isfinite(est), df_t, alpha)
    inference = np.where(np.isfinite(est), np.where((w0[:, flag] != 0).any(axis=1), INFERENCE_SEPARATED, INFERENCE),
                         None)
    estimates = estimate_frame(meta, est, se, lo, hi, p, n_obs=n_obs, n_clusters=g, inference=inference)
    estimates = estimates.drop(columns=["cells_left_out"], errors="ignore")
    status = [_row_status(sc, w_cover[j] > 0, bool(np.isfinite(est[j])), bool(no_var[j]), cells, lab_map, cohort)
              for j in range(len(est))]
    estimates = pd.concat([estimates.reset_index(drop=True), pd.DataFrame(status)], axis=1)
    estimates = estimates.reindex(columns=ESTIMATE_COLUMNS)
    estimates["rate_ratio"] = rr
    estimates["rate_ratio_ci_low"] = rr_lo
    estimates["rate_ratio_ci_high"] = rr_hi

    ev_ok = np.isfinite(w_ev).all(axis=1)
    w_ev0 = np.where(np.isfinite(w_ev), w_ev, 0.0)
    ev = np.where(ev_ok, w_ev0 @ att, np.nan)
    ev_se = np.where(ev_ok, np.sqrt(np.maximum(((w_ev0 @ v_cells) * w_ev0).sum(axis=1), 0.0)), np.nan)
    ev_lo, ev_hi, _ = least_squares.wald_ci(ev, ev_se, df=df_t, alpha=alpha)
    event_study = event_study_frame([m["event_time"] for m in ev_meta], ev, ev_se, ev_lo, ev_hi,
                                    inference=np.where((w_ev0[:, flag] != 0).any(axis=1), INFERENCE_SEPARATED,
                                                       INFERENCE),
                                    reference=control_group == "nevertreated")

    cell_se = np.where(ident, np.sqrt(np.maximum(np.diag(v_cells), 0.0)), np.nan)
    att_cells = np.where(ident, sc.att, np.nan)
    c_lo, c_hi, _ = least_squares.wald_ci(att_cells, cell_se, df=df_t, alpha=alpha)
    group_col = ([lab_map[kk] for kk in cells["key"]] if cohort == "unit"
                 else cells["g"].astype(np.int64).tolist())
    att_gt = pd.DataFrame({
        "group": group_col, "period": cells["period"].to_numpy(),
        "event_time": cells["event_time"].to_numpy(), "estimate": att_cells,
        "std_error": cell_se, "ci_low": c_lo, "ci_high": c_hi,
        "n_obs": sc.cells_agg["n_obs"].to_numpy(),
        "inference": np.where(flag, INFERENCE_SEPARATED, INFERENCE),
    })[ATT_GT_COLUMNS]

    tau = np.full(n_cells, np.nan)
    tau_se = np.full(n_cells, np.nan)
    c_levels, c_pos = sc.c_levels, sc.c_pos
    kept_cells = c_levels[fit.kept[c_pos[c_levels]]]
    tau[kept_cells] = fit.coef[c_pos[kept_cells]]
    tau_se[kept_cells] = np.sqrt(np.maximum(np.diag(v)[c_pos[kept_cells]], 0.0))
    tau[sc.sep.zero_cells] = -np.inf
    tau[sc.sep.zero_baseline_cells] = np.inf
    tau[sc.sep.zero_control_cells] = np.inf
    cells_log = [
        {"group": grp, "period": plain(per), "tau": float(tv), "std_error": float(ts),
         "baseline_mean": float(bm) if idf else float("nan")}
        for grp, per, tv, ts, bm, idf in zip(group_col, cells["period"], tau, tau_se, sc.base_mean, ident,
                                             strict=True)
    ]
    settings: dict[str, Any] = {
        "control_group": control_group,
        "cohort": cohort,
        "alpha": alpha,
        "n_obs": n_obs,
        "n_obs_before_separation": int(sc.active.size),
        "n_units": int(g),
        "n_periods": int(sc.t_levels.size),
        "n_cells": int(n_cells),
        "n_cells_identified": int(ident.sum()),
        "collinear_columns_dropped": int((~fit.kept).sum()),
        "vcov": "cluster by unit; sandwich of the unit-FE Poisson QMLE; factor (N-1)/(N-K)*G/(G-1), K = kept columns + 1",
        "small_sample_factor": q,
        "ci_distribution": f"t({df_t})",
        "fit": "damped Newton on the concentrated Poisson likelihood (step halving, Armijo)",
        "convergence_rule": f"Newton decrement / (0.1 + deviance) < {tol:g}",
        "newton_iterations": fit.iterations,
        "converged": fit.converged,
        "deviance": fit.deviance,
        "loglik_profile": fit.loglik,
        "rate_ratio": "treated mean / counterfactual mean over the aggregate's rows; interval exp(log RR +/- t se)",
        "separation": separation_report(sc.sep, cells, group_col),
        "cells_log_scale": cells_log,
        **sample.info,
    }
    return DidResult(
        estimator="poisson_etwfe", outcome=outcome, control_group=control_group,
        estimates=estimates.reset_index(drop=True), event_study=event_study,
        att_gt=att_gt, settings=settings,
    )


def _rate_ratio(
    w: np.ndarray, treated: np.ndarray, base: np.ndarray, g_treated: np.ndarray, g_base: np.ndarray,
    v: np.ndarray, ok: np.ndarray, df_t: int, alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``RR = (w'M) / (w'B)`` per aggregate row with the exponentiated delta-method interval
    of ``log RR`` (gradient ``w'dM / w'M - w'dB / w'B``)."""
    t_mean = w @ treated
    b_mean = w @ base
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = np.where(ok & (b_mean > 0), t_mean / b_mean, np.nan)
        g = (w @ g_treated) / t_mean[:, None] - (w @ g_base) / b_mean[:, None]
        se_log = np.sqrt(np.maximum(((g @ v) * g).sum(axis=1), 0.0))
    # a log-scale standard error at rounding level is none (as the count scale's no_variance)
    good = np.isfinite(rr) & (rr > 0) & np.isfinite(se_log) & (se_log > 1e-6)
    lo, hi, _ = least_squares.wald_ci(np.log(np.where(good, rr, 1.0)), np.where(good, se_log, np.nan), df=df_t, alpha=alpha)
    return rr, np.where(good, np.exp(lo), np.nan), np.where(good, np.exp(hi), np.nan)


def _cell_names(sc: SaturatedCellsFit, mask: np.ndarray, cells: pd.DataFrame, lab_map: Mapping[Any, str],
                cohort: str) -> str:
    names = [f"{lab_map[k] if cohort == 'unit' else scope_label(gv)}@{scope_label(pv)}"
             for k, gv, pv in zip(cells["key"][mask], cells["g"][mask], cells["period"][mask], strict=True)]
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _no_cell_reason(sc: SaturatedCellsFit, covered: np.ndarray) -> tuple[str, str]:
    """Reason code and words for an aggregate none of whose ``covered`` cells is identified."""
    left = covered & ~sc.identified
    if left.any() and sc.all_zero_cells[left].all():
        return "all_zero_outcome", "the partner countries behind it have 0 in every month (no information under Poisson)"
    if left.any() and (sc.no_untreated[left] | sc.all_zero_cells[left]).all():
        return "no_pre_treatment_data", "the partner countries behind it have no observed month before their start"
    return "not_identified", ("no cell behind it is identified: no comparison country with events is observed "
                              "in its months")


def _row_status(sc: SaturatedCellsFit, covered: np.ndarray, has_estimate: bool, no_variance: bool,
                cells: pd.DataFrame, lab_map: Mapping[Any, str], cohort: str) -> dict[str, Any]:
    """Status columns of one aggregate (``covered``: the cells it would average)."""
    if not has_estimate:
        return status_columns(NotEstimable(*_no_cell_reason(sc, covered)))
    left = covered & ~sc.identified
    behind = {u for us in cells["units"][covered] for u in us}
    zero_partners = sorted(str(lab_map.get(u, u)) if cohort == "unit" else str(u)
                           for u in behind if plain(u) in sc.sep.all_zero_units)
    parts = []
    if zero_partners:
        parts.append(f"partners with 0 in every month, left out of the averages: {', '.join(zero_partners)}")
    empty = left & sc.all_zero_cells
    if empty.any() and not zero_partners:
        parts.append(f"{int(empty.sum())} cell(s) in months with 0 in every country (cohort@period): "
                     f"{_cell_names(sc, empty, cells, lab_map, cohort)}")
    unidentified = left & ~sc.all_zero_cells
    if unidentified.any():
        parts.append(f"{int(unidentified.sum())} unidentified cell(s) left out (cohort@period): "
                     f"{_cell_names(sc, unidentified, cells, lab_map, cohort)}")
    if parts:
        return status_columns(None, "; ".join(parts))
    if no_variance and "no_variance" in REASONS:
        return {"status": STATUS_ESTIMATED, "reason": "no_variance",
                "reason_detail": "only boundary (separated) cells with a fixed counterfactual: no standard error"}
    return status_columns(None)

