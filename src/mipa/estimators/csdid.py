r"""Callaway & Sant'Anna (2021) staggered difference-in-differences, as R ``did`` computes it.

References
----------
* Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with multiple time
  periods", Journal of Econometrics 225(2), 200-230 (CS2021).
* Sant'Anna, P. H. C. and Zhao, J. (2020), "Doubly robust difference-in-differences
  estimators", Journal of Econometrics 219(1), 101-122 (SZ2020).
* R packages ``did`` (``att_gt``, ``aggte``, ``mboot``) and ``DRDID`` (``drdid_panel``,
  ``std_ipw_did_panel``, ``reg_did_panel``), whose computations this module reproduces.

The public entry point is :func:`callaway_santanna`; its docstring states the formulas.
A second stage as R ``did`` (``att_gt`` then ``aggte``): :func:`callaway_santanna_fit` keeps
the cells' influence functions and :func:`aggte` aggregates them, also by calendar period.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimability import NotEstimable, finalize_status
from mipa.estimators._csdid_twobytwo import (
    CellEstimationError,
    drdid_panel,
    ipw_panel,
    reg_panel,
)
from mipa.estimators.results import (
    ATT_GT_COLUMNS,
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    DidResult,
    normal_ci,
)

__all__ = ["callaway_santanna", "callaway_santanna_fit", "aggte", "CSFit", "CSAggregation",
           "AGGREGATIONS", "ANALYTIC", "BOOTSTRAP"]

ANALYTIC = "analytic_influence_function"
BOOTSTRAP = "multiplier_bootstrap"

# R did treats standard errors at or below this as degenerate (reported as NA).
_SE_FLOOR = np.sqrt(np.finfo(float).eps) * 10
# Denominator of the robust (IQR-based) bootstrap standard error, as R did's mboot.
_IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------


def callaway_santanna(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: Literal["nevertreated", "notyettreated"] = "nevertreated",
    base_period: Literal["varying", "universal"] = "varying",
    anticipation: int = 0,
    est_method: Literal["dr", "ipw", "reg"] = "dr",
    bootstrap: bool = True,
    n_boot: int = 999,
    seed: int = 20260701,
    alpha: float = 0.05,
    cohort: Literal["group", "unit"] = "group",
    unit_labels: Mapping | None = None,
    multiplier: Literal["rademacher", "mammen"] = "rademacher",
) -> DidResult:
    r"""Group-time ATTs and their aggregations (Callaway & Sant'Anna 2021), as R ``did``.

    Parameters
    ----------
    panel
        Long panel, one row per ``unit`` and ``period``. ``period`` is numeric and
        integer-valued (for monthly data pass a consecutive month index, e.g. months
        since 2016-01). ``first_treat`` is the first treated period in the same units,
        0, NaN or +inf for never-treated units; it must be constant within a unit.
        ``outcome`` (and the covariates) may be NaN for some unit-periods (see
        *Unbalanced panels*).
    covariates
        Columns used by the doubly robust / IPW / regression 2x2 estimators. Taken
        from the earlier of the two periods of each 2x2 comparison, as R ``did``.
    control_group
        ``"nevertreated"``: units with ``first_treat`` 0/NaN. ``"notyettreated"``:
        never-treated units plus units with ``first_treat > max(t, base) + anticipation``
        (the cell's own cohort excluded).
    base_period
        ``"varying"`` (R default): pre-treatment cells compare ``t`` with ``t-1`` (short
        differences), post-treatment cells compare with ``g-1-anticipation``.
        ``"universal"``: every cell compares with ``g-1-anticipation``; the cell
        ``t = g-1-anticipation`` is the reference, ATT = 0 exactly with no standard error.
    anticipation
        Number of periods before ``g`` in which units may already react (CS2021 Ass. 3).
    est_method
        ``"dr"`` (``DRDID::drdid_panel``, R ``did``'s default), ``"ipw"``
        (``std_ipw_did_panel``) or ``"reg"`` (``reg_did_panel``). Without covariates
        all three equal the difference of mean changes, which is computed in closed form
        for all cells at once.
    bootstrap, n_boot, seed, multiplier
        Multiplier bootstrap (CS2021 Sec. 4; R ``did::mboot``) with ``n_boot`` draws of
        unit-level (i.e. clustered by unit) multipliers from ``numpy.random.default_rng(
        seed)``: Rademacher (+-1 w.p. 1/2, what R ``did`` uses via ``BMisc::
        multiplier_bootstrap``) or Mammen's two-point weights.
    alpha
        1 - confidence level of pointwise intervals and the uniform band.
    cohort
        ``"group"``: cohorts are sets of units sharing ``first_treat`` (CS2021).
        ``"unit"``: every treated unit is its own cohort (per-country effects: units
        sharing a start period are reported apart). Controls follow ``control_group``;
        with not-yet-treated controls they include other treated units (even those
        sharing the start period) in cells where they are not yet treated.
    unit_labels
        Mapping unit id -> label (e.g. ISO3) used for per-unit cohorts; default
        ``str(unit id)``.

    Returns
    -------
    DidResult
        ``estimator='csdid'``; tables

        * ``att_gt``: every ATT(g,t) cell (NaN where it cannot be estimated); ``group``
          is the first-treatment period (``cohort="group"``) or the unit label
          (``cohort="unit"``); ``n_obs`` is the number of units in the cell's 2x2
          comparison (treated plus controls, each observed in ``t`` and the base period).
        * ``estimates``: aggregations ``simple``, ``group``, ``dynamic``, ``calendar``
          with ``scope='overall'``, plus one ``group`` row per cohort (``scope`` = first
          treatment period as str, or the unit label). ``n_obs`` = unit-period
          observations entering the cells behind the row; ``n_clusters`` = units in the
          estimation sample; ``n_treated_clusters`` = treated units behind the row.
        * ``event_study``: dynamic effects by event time ``e = t - g`` (all e, pre and
          post), ``scope='overall'``; ``band_low/high`` is the uniform (sup-t) band.

        One row per key, so :meth:`DidResult.overall` and :meth:`DidResult.cell` work.
        With ``bootstrap=True`` (R ``did``'s default) ``std_error`` / CI / p-value come
        from the multiplier bootstrap (``inference='multiplier_bootstrap'``) and the
        event study carries the uniform band; with ``bootstrap=False`` they are analytic
        (``inference='analytic_influence_function'``) and the band is NaN. The analytic
        standard errors of the ``estimates`` and ``event_study`` rows are always kept in
        ``settings['analytic_std_error']`` (lists ``[aggregation, scope, se]`` and
        ``[event_time, se]``); analytic ATT(g,t) SEs come from a ``bootstrap=False`` run
        (same estimates, no bootstrap cost). ``settings`` also records the options,
        cohorts (label -> first treatment period), dropped units and critical values.

    Notes
    -----
    **ATT(g,t)** (CS2021 eq. 2.6 / Thm 1; SZ2020 eq. 3.1). For cohort g, period t and
    base period b, with D = 1{unit in g}, C = 1{unit a valid control}, dY = Y_t - Y_b,
    p(X) a logit propensity score of D on X among D+C units and m(X) the OLS fit of dY on
    X among controls, the doubly robust estimate is

        ATT(g,t) = E_n[D (dY - m(X))] / E_n[D]
                   - E_n[w0 (dY - m(X))] / E_n[w0],   w0 = p(X) (1-D) / (1-p(X)),

    with controls of p(X) >= 0.995 trimmed (DRDID). Without covariates this is
    mean_{D=1} dY - mean_{C=1} dY.

    **Influence functions.** Each cell's influence function psi_gt (SZ2020 Prop. 3.1,
    including the estimation effects of the logit and OLS coefficients) is computed on
    its n1 cell units and rescaled to all N units of the panel: psi_i = (N/n1) psi_cell_i
    for units in the cell, 0 otherwise (R ``did``). Analytic SE = sqrt(sum_i psi_i^2)/N.

    **Aggregations** (CS2021 Sec. 3; R ``did::aggte``), with cohort shares
    pi_g = N_g / N, over the estimable cells:

    * simple: theta = sum_{t>=g} pi_g ATT(g,t) / sum_{t>=g} pi_g;
    * group: theta_g = mean_{t>=g} ATT(g,t); overall theta = sum_g pi_g theta_g / sum_g pi_g;
    * dynamic: theta(e) = sum_{g: t-g=e} pi_g ATT(g,g+e) / sum pi_g for every e;
      overall = mean_{e>=0} theta(e);
    * calendar: theta(t) = sum_{g<=t} pi_g ATT(g,t) / sum pi_g for t >= min g;
      overall = mean_t theta(t).

    The influence function of a pi-weighted average over a cell set S adds the
    estimated-weights term of R's ``wif``, which simplifies to
    (1/sum_S pi_g) * sum_{k in S} 1{i in g_k} (ATT_k - theta); the overall ``group``
    parameter adds (1/sum_g pi_g) sum_g 1{i in g} (theta_g - theta), the per-group means
    have no such term (their weights are not estimated), as in R.

    **Bootstrap** (R ``mboot``): draws V_b = (1/N) sum_i U_bi psi_i for all cells and
    aggregates at once; SE = (q75 - q25) / (z_.75 - z_.25) of the draws (type-1
    quantiles); the uniform band for the event study uses the (1-alpha) quantile of
    max_e |V_b(e)| / SE(e) (pointwise z if that is smaller, with a warning, as R).

    **Unbalanced panels.** Rows whose outcome (or a covariate) is NaN are unit-periods
    that are not observed. Each ATT(g,t) 2x2 comparison uses the treated and control
    units observed in both t and its base period (balanced within the cell; its n_obs
    is reported), and its influence function is scaled by N/n1 for those units and is
    zero for the others. Cohort shares pi_g count units, whatever their missingness.
    A cell without an observed treated or control unit (or whose 2x2 estimator fails:
    overlap, singular design) is NaN, reported in ``att_gt`` and left out of the
    aggregations (R ``aggte(na.rm = TRUE)``), with a warning. R ``did`` instead either
    drops units with any gap (``allow_unbalanced_panel = FALSE``) or switches to the
    repeated-cross-section estimator; with a balanced panel all three coincide.

    **Sample rules taken from R ``did``.** Units first treated after the last period
    (+ anticipation) count as never treated; units treated in the first period or
    before (+ anticipation) are dropped with a warning; without never-treated units the
    periods from the last cohort's start (- anticipation) on are dropped and that
    cohort serves as control only (with ``"nevertreated"`` it becomes the never-treated
    group), with a warning.
    """
    return callaway_santanna_fit(
        panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat,
        covariates=covariates, control_group=control_group, base_period=base_period,
        anticipation=anticipation, est_method=est_method, bootstrap=bootstrap, n_boot=n_boot,
        seed=seed, alpha=alpha, cohort=cohort, unit_labels=unit_labels, multiplier=multiplier,
    ).result


def callaway_santanna_fit(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: Literal["nevertreated", "notyettreated"] = "nevertreated",
    base_period: Literal["varying", "universal"] = "varying",
    anticipation: int = 0,
    est_method: Literal["dr", "ipw", "reg"] = "dr",
    bootstrap: bool = True,
    n_boot: int = 999,
    seed: int = 20260701,
    alpha: float = 0.05,
    cohort: Literal["group", "unit"] = "group",
    unit_labels: Mapping | None = None,
    multiplier: Literal["rademacher", "mammen"] = "rademacher",
) -> CSFit:
    """:func:`callaway_santanna` (same arguments, same ``result``) with the influence
    functions of the cells kept, for a second aggregation stage (:func:`aggte`)."""
    _validate_options(
        control_group, base_period, anticipation, est_method, n_boot, alpha, cohort, multiplier
    )
    data = _prepare(panel, outcome, unit, period, first_treat, list(covariates), anticipation,
                    control_group)
    cohorts = _build_cohorts(data, cohort, unit_labels)
    cells = _build_cells(data, cohorts, base_period, control_group, anticipation)
    _estimate_cells(data, cells, est_method, bool(covariates))
    aggs = _aggregate(data, cohorts, cells)

    boot = None
    if bootstrap:
        boot = _bootstrap(data.n_units, cells, aggs, n_boot, seed, alpha, multiplier)

    result = _assemble(
        data, cohorts, cells, aggs, boot,
        outcome=outcome,
        control_group=control_group,
        alpha=alpha,
        settings={
            "unit": unit,
            "period": period,
            "first_treat": first_treat,
            "covariates": list(covariates),
            "control_group": control_group,
            "base_period": base_period,
            "anticipation": anticipation,
            "est_method": est_method,
            "bootstrap": bool(bootstrap),
            "n_boot": int(n_boot),
            "seed": int(seed),
            "alpha": float(alpha),
            "cohort": cohort,
            "multiplier": multiplier,
        },
    )
    return CSFit(result, data.unit_ids, cells.psi, data, cohorts, cells, aggs)


# ----------------------------------------------------------------------------------------
# preprocessing
# ----------------------------------------------------------------------------------------


@dataclass
class _Data:
    unit_ids: np.ndarray  # (N,) unit ids, sorted
    tlist: np.ndarray  # (T,) sorted periods
    y: np.ndarray  # (N, T) outcome, NaN = not observed
    x: np.ndarray | None  # (N, T, p) covariates, or None
    g: np.ndarray  # (N,) first treatment period, inf = never treated
    control_only_g: float | None  # cohort kept as control only (no never-treated units)
    dropped_units: list[str]
    notes: list[str]

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)


@dataclass
class _Cohorts:
    labels: list[str]  # scope labels
    att_gt_keys: list[Any]  # value in the att_gt 'group' column
    g: np.ndarray  # (C,) first treatment period
    members: np.ndarray  # (N, C) bool


@dataclass
class _Cells:
    coh: np.ndarray  # (K,) cohort index
    g: np.ndarray  # (K,) first treatment period
    t_idx: np.ndarray  # (K,) index of t in tlist
    b_idx: np.ndarray  # (K,) index of the base period
    t: np.ndarray  # (K,) period value
    post: np.ndarray  # (K,) bool, g <= t
    ref: np.ndarray  # (K,) bool, universal-base reference cell (t == base)
    in_treat: np.ndarray  # (N, K) bool, treated units observed in the cell
    in_ctrl: np.ndarray  # (N, K) bool, control units observed in the cell
    att: np.ndarray | None = None  # (K,)
    psi: np.ndarray | None = None  # (N, K) influence functions (0 outside the cell)
    valid: np.ndarray | None = None  # (K,) bool, estimable (not NaN)

    @property
    def n_obs(self) -> np.ndarray:
        return (self.in_treat | self.in_ctrl).sum(axis=0)


def _validate_options(control_group, base_period, anticipation, est_method, n_boot, alpha,
                      cohort, multiplier) -> None:
    choices = {
        "control_group": (control_group, ("nevertreated", "notyettreated")),
        "base_period": (base_period, ("varying", "universal")),
        "est_method": (est_method, ("dr", "ipw", "reg")),
        "cohort": (cohort, ("group", "unit")),
        "multiplier": (multiplier, ("rademacher", "mammen")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if isinstance(anticipation, bool) or int(anticipation) != anticipation or anticipation < 0:
        raise ValueError(f"anticipation must be a non-negative integer, got {anticipation!r}")
    if int(n_boot) < 2:
        raise ValueError("n_boot must be at least 2")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")


def _prepare(panel: pd.DataFrame, outcome: str, unit: str, period: str, first_treat: str,
             covariates: list[str], anticipation: int, control_group: str) -> _Data:
    needed = [unit, period, first_treat, outcome, *covariates]
    missing = [c for c in dict.fromkeys(needed) if c not in panel.columns]
    if missing:
        raise KeyError(f"columns not in the panel: {missing}")
    df = panel[list(dict.fromkeys(needed))]
    if len(df) == 0:
        raise ValueError("the panel is empty")
    if df[unit].isna().any() or df[period].isna().any():
        raise ValueError(f"{unit!r} and {period!r} must not be missing")
    if df.duplicated([unit, period]).any():
        raise ValueError(f"more than one row per ({unit}, {period})")

    per = pd.to_numeric(df[period]).to_numpy(dtype=float)
    if not np.all(np.isfinite(per)) or np.any(per != np.round(per)):
        raise ValueError(f"{period!r} must be integer-valued (e.g. a month index)")
    ft = pd.to_numeric(df[first_treat]).to_numpy(dtype=float)
    ft = np.where(np.isnan(ft) | (ft == 0), np.inf, ft)

    try:
        codes, unit_ids = pd.factorize(df[unit], sort=True)
    except TypeError:
        codes, unit_ids = pd.factorize(df[unit], sort=False)
    unit_ids = np.asarray(unit_ids)
    tlist, t_codes = np.unique(per, return_inverse=True)
    n, n_t = len(unit_ids), len(tlist)

    g = np.full(n, np.nan)
    g[codes] = ft
    if not np.array_equal(g[codes], ft):
        raise ValueError(f"{first_treat!r} must be constant within each unit")

    y = np.full((n, n_t), np.nan)
    y[codes, t_codes] = pd.to_numeric(df[outcome]).to_numpy(dtype=float)
    x = None
    if covariates:
        x = np.full((n, n_t, len(covariates)), np.nan)
        x[codes, t_codes, :] = df[covariates].apply(pd.to_numeric).to_numpy(dtype=float)
        bad = np.isnan(x).any(axis=2)
        y[bad] = np.nan  # a unit-period without covariates is not observed
    if np.isinf(y).any():
        raise ValueError(f"{outcome!r} has infinite values")

    notes: list[str] = []
    # units first treated after the last period (+ anticipation) are never treated (R did)
    g = np.where(g > tlist[-1] + anticipation, np.inf, g)

    control_only_g = None
    if not np.isinf(g).any():
        latest = float(np.max(g))
        keep_t = tlist < latest - anticipation
        if not keep_t.any():
            raise NotEstimable("no_control_units", "no never-treated units and no period before the last cohort")
        tlist, y = tlist[keep_t], y[:, keep_t]
        if x is not None:
            x = x[:, keep_t, :]
        if control_group == "nevertreated":
            g = np.where(g == latest, np.inf, g)
            msg = (f"no never-treated units: the last cohort (first_treat={latest:g}) is used "
                   f"as never-treated and periods from {latest - anticipation:g} on are dropped")
        else:
            control_only_g = latest
            msg = (f"no never-treated units: periods from {latest - anticipation:g} on are "
                   f"dropped and the last cohort (first_treat={latest:g}) is a control only")
        warnings.warn(msg, stacklevel=4)
        notes.append(msg)

    early = np.isfinite(g) & (g <= tlist[0] + anticipation)
    dropped: list[str] = []
    if early.any():
        dropped = [str(u) for u in unit_ids[early]]
        msg = (f"dropped {int(early.sum())} units already treated in the first period"
               + (f" (anticipation = {anticipation})" if anticipation else "") + f": {dropped}")
        warnings.warn(msg, stacklevel=4)
        notes.append(msg)
        keep = ~early
        unit_ids, g, y = unit_ids[keep], g[keep], y[keep]
        if x is not None:
            x = x[keep]

    treated = np.isfinite(g) & (g != (control_only_g if control_only_g is not None else np.nan))
    if not treated.any():
        raise NotEstimable("no_treated_units", "no treated unit with an untreated period is left")
    if len(tlist) < 2:
        raise NotEstimable("too_few_pre_periods", "need at least two periods")
    return _Data(unit_ids, tlist, y, x, g, control_only_g, dropped, notes)


def _fmt_period(v: float) -> Any:
    return int(v) if float(v).is_integer() else float(v)


def _build_cohorts(data: _Data, cohort: str, unit_labels: Mapping | None) -> _Cohorts:
    treated = np.isfinite(data.g)
    if data.control_only_g is not None:
        treated &= data.g != data.control_only_g
    if cohort == "group":
        gs = np.unique(data.g[treated])
        members = data.g[:, None] == gs[None, :]
        keys = [_fmt_period(v) for v in gs]
        labels = [str(k) for k in keys]
        return _Cohorts(labels, keys, gs, members)

    idx = np.flatnonzero(treated)
    labels_all = [
        str(unit_labels[u]) if unit_labels is not None and u in unit_labels else str(u)
        for u in data.unit_ids[idx]
    ]
    order = sorted(range(len(idx)), key=lambda i: (data.g[idx[i]], labels_all[i]))
    idx = idx[order]
    labels = [labels_all[i] for i in order]
    if len(set(labels)) != len(labels):
        raise ValueError("unit labels of treated units must be unique")
    members = np.zeros((data.n_units, len(idx)), dtype=bool)
    members[idx, np.arange(len(idx))] = True
    return _Cohorts(labels, list(labels), data.g[idx].astype(float), members)


def _build_cells(data: _Data, cohorts: _Cohorts, base_period: str, control_group: str,
                 anticipation: int) -> _Cells:
    tlist = data.tlist
    n_t = len(tlist)
    n_c = len(cohorts.g)
    # pret: last period index with tlist + anticipation < g (exists: early units dropped)
    pret = np.array([np.flatnonzero(tlist + anticipation < gv)[-1] for gv in cohorts.g])

    if base_period == "varying":
        t_grid = np.arange(1, n_t)
    else:
        t_grid = np.arange(n_t)
    coh = np.repeat(np.arange(n_c), len(t_grid))
    t_idx = np.tile(t_grid, n_c)
    g = cohorts.g[coh]
    t = tlist[t_idx]
    post = g <= t
    if base_period == "varying":
        b_idx = np.where(post, pret[coh], t_idx - 1)
    else:
        b_idx = pret[coh]
    ref = t_idx == b_idx

    members = cohorts.members[:, coh]  # (N, K)
    # observed in both periods (a missing covariate already blanked its unit-period)
    obs = ~np.isnan(data.y[:, t_idx]) & ~np.isnan(data.y[:, b_idx])
    never = np.isinf(data.g)
    if control_group == "nevertreated":
        ctrl = np.broadcast_to(never[:, None], members.shape)
    else:
        cutoff = np.maximum(t, tlist[b_idx]) + anticipation
        ctrl = (data.g[:, None] > cutoff[None, :]) & ~members
    return _Cells(
        coh=coh, g=g, t_idx=t_idx, b_idx=b_idx, t=t, post=post, ref=ref,
        in_treat=members & obs, in_ctrl=ctrl & obs,
    )


# ----------------------------------------------------------------------------------------
# ATT(g,t)
# ----------------------------------------------------------------------------------------


def _estimate_cells(data: _Data, cells: _Cells, est_method: str, with_covariates: bool) -> None:
    n = data.n_units
    k = len(cells.coh)
    dy = data.y[:, cells.t_idx] - data.y[:, cells.b_idx]  # (N, K), NaN where unobserved
    tm, cm = cells.in_treat, cells.in_ctrl
    n_t = tm.sum(axis=0)
    n_c = cm.sum(axis=0)
    n1 = n_t + n_c
    att = np.full(k, np.nan)
    psi = np.zeros((n, k))
    problems: list[str] = []

    empty = (n_t == 0) | (n_c == 0)
    for j in np.flatnonzero(empty & ~cells.ref):
        problems.append(f"no {'treated' if n_t[j] == 0 else 'control'} units observed")

    if not with_covariates:
        ok = ~empty
        # DRDID's overlap check / trimming with a constant propensity score n_T / n1
        share = np.where(n1 > 0, n_t / np.maximum(n1, 1), 0.0)
        over = ok & (share >= 0.995) & ~cells.ref
        problems.extend(["overlap condition violated"] * int(over.sum()))
        ok &= ~over
        dz = np.where(tm | cm, dy, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_t = (dz * tm).sum(axis=0) / n_t
            mean_c = (dz * cm).sum(axis=0) / n_c
            att_all = mean_t - mean_c
            # psi_i = N [ D_i (dY_i - mean_T) / n_T - C_i (dY_i - mean_C) / n_C ]
            psi_all = n * (
                tm * (dz - mean_t[None, :]) / n_t[None, :]
                - cm * (dz - mean_c[None, :]) / n_c[None, :]
            )
        att[ok] = att_all[ok]
        psi[:, ok] = np.where(tm | cm, psi_all, 0.0)[:, ok]
    else:
        estimator = {"dr": drdid_panel, "ipw": ipw_panel, "reg": reg_panel}[est_method]
        x_all = data.x
        ps_cache: dict = {}
        for j in np.flatnonzero(~empty & ~cells.ref):
            rows = np.flatnonzero(tm[:, j] | cm[:, j])
            d = tm[rows, j].astype(float)
            early = min(cells.t_idx[j], cells.b_idx[j])
            xj = np.column_stack([np.ones(len(rows)), x_all[rows, early, :]])
            try:
                with np.errstate(invalid="raise", divide="raise", over="ignore"):
                    a, inf = estimator(dy[rows, j], d, xj, ps_cache=ps_cache)
            except (CellEstimationError, np.linalg.LinAlgError, FloatingPointError) as exc:
                problems.append(str(exc) or type(exc).__name__)
                continue
            if not np.isfinite(a) or not np.all(np.isfinite(inf)):
                problems.append("non-finite estimate")
                continue
            att[j] = a
            psi[rows, j] = (n / len(rows)) * inf

    # universal base period: the reference cell is 0 by construction, with a zero IF
    att[cells.ref] = 0.0
    psi[:, cells.ref] = 0.0
    if problems:
        kinds = sorted(set(problems))
        warnings.warn(
            f"{len(problems)} ATT(g,t) cells could not be estimated and are NaN "
            f"(left out of the aggregations): {'; '.join(kinds)}",
            stacklevel=4,
        )
    cells.att = att
    cells.psi = psi
    cells.valid = np.isfinite(att)


# ----------------------------------------------------------------------------------------
# aggregation (R did::aggte)
# ----------------------------------------------------------------------------------------


@dataclass
class _Agg:
    """Aggregated parameters; column j of ``psi`` is the influence function of ``est[j]``."""

    kind: list[str]  # 'simple' | 'group' | 'dynamic' | 'calendar' | 'event'
    scope: list[str]
    est: np.ndarray
    psi: np.ndarray  # (N, J)
    cell_sets: list[np.ndarray]  # cells behind each parameter (bool (K,))
    event_times: np.ndarray  # event times of the 'event' entries, in order


def _aggregate(data: _Data, cohorts: _Cohorts, cells: _Cells) -> _Agg:
    """All aggregated parameters as linear maps of the cells (R ``did::aggte``).

    Parameter j is est_j = sum_k W[k, j] ATT_k; its influence function is
    psi @ W[:, j] + M @ V[:, j] (+ a cohort-level term for the overall group parameter),
    where M[i, k] = 1{unit i in the cohort of cell k} and V holds the estimated-weights
    ("wif") coefficients (ATT_k - est_j) / P_j of pi-weighted averages. Building W and V
    first turns hundreds of small products into two matrix products.
    """
    n = data.n_units
    k = len(cells.coh)
    valid = cells.valid
    att0 = np.where(valid, cells.att, 0.0)
    size = cohorts.members.sum(axis=0).astype(float)
    pgg = size / n  # cohort shares pi_g
    e_cells = cells.t - cells.g

    post_ok = valid & cells.post
    if not post_ok.any():
        raise NotEstimable("no_post_treatment_data", "no post-treatment ATT(g,t) cell could be estimated")

    cols_w: list[np.ndarray] = []
    cols_v: list[np.ndarray] = []
    kind: list[str] = []
    scope: list[str] = []
    sets: list[np.ndarray] = []

    pi_weighted = _pi_weighting(n, cohorts, cells)

    def add(kd: str, sc: str, w: np.ndarray, v: np.ndarray, cs: np.ndarray) -> None:
        kind.append(kd)
        scope.append(sc)
        cols_w.append(w)
        cols_v.append(v)
        sets.append(cs)

    zero = np.zeros(k)
    # simple: pi-weighted mean of all post-treatment cells
    add("simple", "overall", *pi_weighted(post_ok), post_ok)

    # group: per-cohort means of post cells (no estimated weights), then pi-weighted
    g_idx = [c for c in range(len(cohorts.labels)) if (post_ok & (cells.coh == c)).any()]
    g_w = []
    for c in g_idx:
        sel = post_ok & (cells.coh == c)
        g_w.append(np.where(sel, 1.0 / sel.sum(), 0.0))
    g_w = np.column_stack(g_w)  # (K, nG)
    g_est = g_w.T @ att0
    wg = pgg[g_idx]
    total_g = wg.sum()
    group_j = len(kind)
    add("group", "overall", g_w @ (wg / total_g), zero, post_ok)

    # dynamic: pi-weighted by event time; overall = mean over e >= 0
    eseq = np.unique(e_cells[valid])
    ev_w, ev_v = [], []
    for e in eseq:
        w, v = pi_weighted(valid & (e_cells == e))
        ev_w.append(w)
        ev_v.append(v)
    ev_w, ev_v = np.column_stack(ev_w), np.column_stack(ev_v)
    pos = eseq >= 0
    add("dynamic", "overall", ev_w[:, pos].mean(axis=1), ev_v[:, pos].mean(axis=1),
        valid & (e_cells >= 0))

    # calendar: pi-weighted by period (from the first treatment on); overall = mean
    _, cal_w, cal_v = _calendar_columns(cells, pi_weighted)
    add("calendar", "overall", np.mean(cal_w, axis=0), np.mean(cal_v, axis=0), post_ok)

    for j, c in enumerate(g_idx):
        add("group", cohorts.labels[c], g_w[:, j], zero, post_ok & (cells.coh == c))
    for j, e in enumerate(eseq):
        add("event", "overall", ev_w[:, j], ev_v[:, j], valid & (e_cells == e))

    w_mat = np.column_stack(cols_w)
    v_mat = np.column_stack(cols_v)
    est = w_mat.T @ att0
    member_cell = cohorts.members[:, cells.coh].astype(float)  # (N, K)
    psi = cells.psi @ w_mat + member_cell @ v_mat
    # overall group: estimated cohort weights, (1/P) sum_g 1{i in g} (theta_g - theta)
    psi[:, group_j] += cohorts.members[:, g_idx].astype(float) @ (g_est - est[group_j]) / total_g
    return _Agg(kind, scope, est, psi, sets, eseq)


def _pi_weighting(n: int, cohorts: _Cohorts, cells: _Cells):
    """``pi_weighted(sel) -> (w, v)``: the weights W[:, j] and estimated-weights ("wif")
    coefficients V[:, j] of the pi_g-weighted mean of the cells in ``sel``."""
    att0 = np.where(cells.valid, cells.att, 0.0)
    pg = (cohorts.members.sum(axis=0).astype(float) / n)[cells.coh]  # cohort share per cell

    def pi_weighted(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = pg[sel].sum()
        w = np.where(sel, pg / total, 0.0)
        est = w @ att0
        v = np.where(sel, (att0 - est) / total, 0.0)
        return w, v

    return pi_weighted


def _calendar_columns(cells: _Cells, pi_weighted) -> tuple[list[float], list[np.ndarray],
                                                             list[np.ndarray]]:
    """Periods t >= min g with an estimable post cell, and the weights ``(w, v)`` of
    theta(t) = sum_{g <= t} pi_g ATT(g,t) / sum pi_g (R ``aggte(type = "calendar")``)."""
    valid = cells.valid
    post_ok = valid & cells.post
    min_g = cells.g[valid].min()
    periods, cal_w, cal_v = [], [], []
    for tv in np.unique(cells.t[valid & (cells.t >= min_g)]):
        sel = post_ok & (cells.t == tv)
        if sel.any():
            w, v = pi_weighted(sel)
            periods.append(tv)
            cal_w.append(w)
            cal_v.append(v)
    return periods, cal_w, cal_v


# ----------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------


def _analytic_se(psi: np.ndarray) -> np.ndarray:
    n = psi.shape[0]
    se = np.sqrt((psi**2).sum(axis=0)) / n
    return np.where(se <= _SE_FLOOR, np.nan, se)


@dataclass
class _Boot:
    se_cells: np.ndarray
    se_aggs: np.ndarray
    crit_event: float


def _bootstrap(n: int, cells: _Cells, aggs: _Agg, n_boot: int, seed: int, alpha: float,
               multiplier: str) -> _Boot:
    rng = np.random.default_rng(seed)
    if multiplier == "rademacher":
        u = rng.integers(0, 2, size=(n_boot, n)).astype(float) * 2.0 - 1.0
    else:
        s5 = np.sqrt(5.0)
        lo, hi = (1 - s5) / 2, (1 + s5) / 2
        u = np.where(rng.random((n_boot, n)) < (s5 + 1) / (2 * s5), lo, hi)
    psi_cells = np.where(cells.valid[None, :], cells.psi, 0.0)
    # R: bres = sqrt(n) * mean_i(U_bi psi_i)
    bres_cells = u @ psi_cells / np.sqrt(n)
    bres_aggs = u @ aggs.psi / np.sqrt(n)

    def se_of(bres):
        ok = np.isfinite(bres).all(axis=0) & ((bres**2).sum(axis=0) > _SE_FLOOR)
        q = np.quantile(bres, [0.25, 0.75], axis=0, method="inverted_cdf")
        sigma = (q[1] - q[0]) / _IQR_NORMAL
        se = np.where(ok, sigma / np.sqrt(n), np.nan)
        return np.where(se <= _SE_FLOOR, np.nan, se), sigma, ok

    se_cells, _, _ = se_of(bres_cells)
    se_aggs, sigma_aggs, ok_aggs = se_of(bres_aggs)
    se_cells[~cells.valid] = np.nan

    # uniform band over event times (R mboot crit.val)
    z = stats.norm.ppf(1 - alpha / 2)
    ev = np.array([k == "event" for k in aggs.kind]) & ok_aggs & (sigma_aggs > 0)
    crit = np.nan
    if ev.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            bt = np.max(np.abs(bres_aggs[:, ev] / sigma_aggs[ev][None, :]), axis=1)
        bt = bt[np.isfinite(bt)]
        if len(bt):
            crit = float(np.quantile(bt, 1 - alpha, method="inverted_cdf"))
    if not np.isfinite(crit):
        warnings.warn("simultaneous critical value is NA; reporting pointwise bands",
                      stacklevel=4)
        crit = z
    elif crit < z:
        warnings.warn("simultaneous band narrower than pointwise; reporting pointwise bands",
                      stacklevel=4)
        crit = z
    elif crit >= 7:
        warnings.warn(f"simultaneous critical value {crit:.2f} is too large to be reliable",
                      stacklevel=4)
    return _Boot(se_cells, se_aggs, crit)


# ----------------------------------------------------------------------------------------
# output tables
# ----------------------------------------------------------------------------------------


def _assemble(data: _Data, cohorts: _Cohorts, cells: _Cells, aggs: _Agg, boot: _Boot | None,
              *, outcome: str, control_group: str, alpha: float,
              settings: dict[str, Any]) -> DidResult:
    level = 1 - alpha
    n = data.n_units
    n_t = len(data.tlist)
    k = len(cells.coh)
    used_any = cells.in_treat | cells.in_ctrl
    onehot = np.zeros((k, n_t))
    onehot[np.arange(k), cells.t_idx] += 1.0
    onehot[np.arange(k), cells.b_idx] += 1.0
    estimable = cells.valid & ~cells.ref

    cache: dict[bytes, int] = {}

    def n_obs_of(sel):
        # unit-period observations entering at least one estimated cell of the row
        s = sel & estimable
        key = s.tobytes()
        if key not in cache:
            used = used_any[:, s].astype(float) @ onehot[s]
            cache[key] = int((used > 0).sum())
        return cache[key]

    def n_treated_of(sel):
        cs = np.unique(cells.coh[sel])
        return int(cohorts.members[:, cs].any(axis=1).sum()) if len(cs) else 0

    se_agg_a = _analytic_se(aggs.psi)
    se_cell_a = np.where(cells.valid, _analytic_se(cells.psi), np.nan)
    if boot is None:
        label, se_agg, se_cell = ANALYTIC, se_agg_a, se_cell_a
    else:
        label, se_agg, se_cell = BOOTSTRAP, boot.se_aggs, boot.se_cells

    is_event = np.array([kd == "event" for kd in aggs.kind])
    rows = np.flatnonzero(~is_event)
    lo, hi, p = normal_ci(aggs.est[rows], se_agg[rows], level)
    estimates = pd.DataFrame({
        "aggregation": [aggs.kind[j] for j in rows],
        "scope": [aggs.scope[j] for j in rows],
        "estimate": aggs.est[rows],
        "std_error": se_agg[rows],
        "ci_low": lo,
        "ci_high": hi,
        "p_value": p,
        "n_obs": [n_obs_of(aggs.cell_sets[j]) for j in rows],
        "n_clusters": n,
        "n_treated_clusters": [n_treated_of(aggs.cell_sets[j]) for j in rows],
        "inference": label,
    })
    estimates = finalize_status(estimates)[ESTIMATE_COLUMNS]

    ev = np.flatnonzero(is_event)
    lo, hi, _ = normal_ci(aggs.est[ev], se_agg[ev], level)
    if boot is None:
        band_lo = band_hi = np.full(len(ev), np.nan)
    else:
        band_lo = aggs.est[ev] - boot.crit_event * se_agg[ev]
        band_hi = aggs.est[ev] + boot.crit_event * se_agg[ev]
    event_times = [_fmt_period(e) for e in aggs.event_times]
    event_study = pd.DataFrame({
        "scope": "overall",
        "event_time": event_times,
        "estimate": aggs.est[ev],
        "std_error": se_agg[ev],
        "ci_low": lo,
        "ci_high": hi,
        "band_low": band_lo,
        "band_high": band_hi,
        "inference": label,
    })[EVENT_STUDY_COLUMNS]

    lo, hi, _ = normal_ci(cells.att, se_cell, level)
    att_gt = pd.DataFrame({
        "group": [cohorts.att_gt_keys[c] for c in cells.coh],
        "period": [_fmt_period(v) for v in cells.t],
        "event_time": [_fmt_period(v) for v in cells.t - cells.g],
        "estimate": cells.att,
        "std_error": se_cell,
        "ci_low": lo,
        "ci_high": hi,
        "n_obs": cells.n_obs,
        "inference": label,
    })[ATT_GT_COLUMNS]

    def _f(v):
        return None if not np.isfinite(v) else float(v)

    settings = {
        "estimator": "csdid",
        "outcome": outcome,
        **settings,
        "n_units": n,
        "n_periods": n_t,
        "n_cells": int(k),
        "n_cells_missing": int((~cells.valid).sum()),
        "cohorts": {lab: _fmt_period(gv) for lab, gv in zip(cohorts.labels, cohorts.g)},
        "dropped_units": data.dropped_units,
        "notes": data.notes,
        "pointwise_critical_value": float(stats.norm.ppf(1 - alpha / 2)),
        "uniform_critical_value": None if boot is None else float(boot.crit_event),
        # the analytic (influence-function) standard errors, also when the tables carry
        # the bootstrap ones: [aggregation, scope, se] and [event_time, se]
        "analytic_std_error": {
            "estimates": [[aggs.kind[j], aggs.scope[j], _f(se_agg_a[j])] for j in rows],
            "event_study": [[e, _f(se_agg_a[j])] for e, j in zip(event_times, ev)],
        },
    }
    return DidResult(
        estimator="csdid",
        outcome=outcome,
        control_group=control_group,
        estimates=estimates,
        event_study=event_study,
        att_gt=att_gt,
        settings=settings,
    )


# ----------------------------------------------------------------------------------------
# second stage: aggregations of a fit (R did::aggte)
# ----------------------------------------------------------------------------------------

AGGREGATIONS = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True, eq=False)
class CSFit:
    """:func:`callaway_santanna`'s result with the arrays a second aggregation stage needs.

    ``influence`` (N, K): the influence function of every ATT(g,t) cell (R ``did``'s
    ``inffunc``), rows in the order of ``unit_ids``, columns in the order of
    ``result.att_gt``; zero for a NaN cell. The analytic standard error of cell k is
    ``sqrt(sum_i psi_ik^2) / N`` and the analytic variance matrix of the cells
    ``psi' psi / N^2``. The other fields are the estimator's internal arrays.
    """

    result: DidResult
    unit_ids: np.ndarray
    influence: np.ndarray
    data: _Data = field(repr=False)
    cohorts: _Cohorts = field(repr=False)
    cells: _Cells = field(repr=False)
    aggs: _Agg = field(repr=False)


@dataclass(frozen=True, eq=False)
class CSAggregation:
    """One aggregation of the ATT(g,t) cells (R ``did::aggte``).

    Entry 0 is the overall parameter, entries 1.. the detail ``keys`` (cohort keys as in
    ``att_gt.group`` for ``group``, event times for ``dynamic``, periods for
    ``calendar``; none for ``simple``). ``influence`` (N, 1+J) holds their influence
    functions; ``std_error`` follows the fit's inference (multiplier bootstrap, drawn with
    the fit's seed, or analytic), ``analytic_std_error`` is always the influence-function
    one. ``critical_value`` is the uniform (sup-t) band's for the detail entries, the
    pointwise normal quantile without bootstrap.
    """

    type: str
    keys: list[Any]
    estimate: np.ndarray
    influence: np.ndarray
    std_error: np.ndarray
    analytic_std_error: np.ndarray
    inference: str
    critical_value: float
    alpha: float


def aggte(fit: CSFit, type: str = "simple") -> CSAggregation:
    """Aggregate the cells of ``fit`` as R ``did::aggte(type = ...)``.

    ``simple``, ``group`` and ``dynamic`` are the parameters of ``fit.result`` (same
    estimates; the detail rows of ``dynamic`` are ``fit.result.event_study``).
    ``calendar``: theta(t) = sum_{g <= t} pi_g ATT(g,t) / sum_{g <= t} pi_g for every
    period t from the first treatment on with an estimable post cell, with the
    estimated-weights term of the influence function as the other pi-weighted means
    (see :func:`callaway_santanna`); the overall parameter is their mean.
    """
    if type not in AGGREGATIONS:
        raise ValueError(f"type must be one of {AGGREGATIONS}, got {type!r}")
    aggs, cells, cohorts = fit.aggs, fit.cells, fit.cohorts
    n = fit.data.n_units
    settings = fit.result.settings
    overall = next(j for j, (kd, sc) in enumerate(zip(aggs.kind, aggs.scope))
                   if kd == type and sc == "overall")
    est = [aggs.est[overall : overall + 1]]
    psi = [aggs.psi[:, overall : overall + 1]]
    keys: list[Any] = []
    if type in ("group", "dynamic"):
        detail = "group" if type == "group" else "event"
        idx = [j for j, (kd, sc) in enumerate(zip(aggs.kind, aggs.scope))
               if kd == detail and (detail == "event" or sc != "overall")]
        est.append(aggs.est[idx])
        psi.append(aggs.psi[:, idx])
        if type == "group":
            key_of = dict(zip(cohorts.labels, cohorts.att_gt_keys))
            keys = [key_of[aggs.scope[j]] for j in idx]
        else:
            keys = [_fmt_period(e) for e in aggs.event_times]
    elif type == "calendar":
        periods, cal_w, cal_v = _calendar_columns(cells, _pi_weighting(n, cohorts, cells))
        w_mat, v_mat = np.column_stack(cal_w), np.column_stack(cal_v)
        est.append(w_mat.T @ np.where(cells.valid, cells.att, 0.0))
        member_cell = cohorts.members[:, cells.coh].astype(float)
        psi.append(cells.psi @ w_mat + member_cell @ v_mat)
        keys = [_fmt_period(t) for t in periods]
    estimate = np.concatenate(est)
    influence = np.column_stack(psi)
    se_a = _analytic_se(influence)
    alpha = float(settings["alpha"])
    if not settings["bootstrap"]:
        return CSAggregation(type, keys, estimate, influence, se_a, se_a, ANALYTIC,
                             float(stats.norm.ppf(1 - alpha / 2)), alpha)
    # the fit's bootstrap (same multipliers), the band over the detail entries
    agg = _Agg(["overall"] + ["event"] * len(keys), [""] * len(estimate), estimate,
               influence, [], np.asarray(keys))
    with warnings.catch_warnings():
        if not keys:  # no detail entries, no band
            warnings.simplefilter("ignore")
        boot = _bootstrap(n, cells, agg, int(settings["n_boot"]), int(settings["seed"]), alpha,
                          settings["multiplier"])
    return CSAggregation(type, keys, estimate, influence, boot.se_aggs, se_a, BOOTSTRAP,
                         boot.crit_event, alpha)
