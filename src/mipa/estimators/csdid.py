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

The computation is split by step: :mod:`mipa.estimators.csdid_sample` (options, panel,
cohorts, cells), :mod:`mipa.estimators.csdid_cells` (ATT(g,t) and influence functions),
:mod:`mipa.estimators.csdid_aggregate` (aggregations, analytic and bootstrap inference) and
:mod:`mipa.estimators.csdid_tables` (the tables); this module runs them in order.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict, Unpack

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimators.csdid_aggregate import (
    ANALYTIC,
    BOOTSTRAP,
    Agg,
    aggregate,
    analytic_se,
    calendar_columns,
    multiplier_bootstrap,
    pi_weighting,
)
from mipa.estimators.csdid_cells import estimate_cells
from mipa.estimators.csdid_sample import (
    Cells,
    Cohorts,
    CSData,
    build_cells,
    build_cohorts,
    fmt_period,
    prepare_data,
    validate_options,
)
from mipa.estimators.csdid_tables import assemble
from mipa.estimators.results import DidResult

__all__ = ["callaway_santanna", "callaway_santanna_fit", "aggte", "CSArguments", "CSFit", "CSAggregation", "CSOptions",
           "AGGREGATIONS", "ANALYTIC", "BOOTSTRAP"]


class CSOptions(TypedDict, total=False):
    """The options of :func:`callaway_santanna_fit` after the column names, for the
    functions that pass them on (their defaults and meaning: :func:`callaway_santanna`)."""

    covariates: Sequence[str]
    control_group: Literal["nevertreated", "notyettreated"]
    base_period: Literal["varying", "universal"]
    anticipation: int
    est_method: Literal["dr", "ipw", "reg"]
    bootstrap: bool
    n_boot: int
    seed: int
    alpha: float
    cohort: Literal["group", "unit"]
    unit_labels: Mapping | None
    multiplier: Literal["rademacher", "mammen"]


class CSArguments(CSOptions):
    """:class:`CSOptions` with the four column names (``outcome``, ``unit``, ``period``,
    ``first_treat``), which are required."""

    outcome: Required[str]
    unit: Required[str]
    period: Required[str]
    first_treat: Required[str]


def callaway_santanna(panel: pd.DataFrame, **arguments: Unpack[CSArguments]) -> DidResult:
    r"""Group-time ATTs and their aggregations (Callaway & Sant'Anna 2021), as R ``did``.

    Parameters
    ----------
    Keyword arguments (:class:`CSArguments`), with their defaults in the signature of
    :func:`callaway_santanna_fit`: the column names ``outcome``, ``unit``, ``period``,
    ``first_treat``, then the options below.

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
    return callaway_santanna_fit(panel, **arguments).result


def callaway_santanna_fit(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str,
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
    validate_options(
        control_group, base_period, anticipation, est_method, n_boot, alpha, cohort, multiplier
    )
    data = prepare_data(panel, outcome, unit, period, first_treat, list(covariates), anticipation,
                        control_group)
    cohorts = build_cohorts(data, cohort, unit_labels)
    cells = build_cells(data, cohorts, base_period, control_group, anticipation)
    estimate_cells(data, cells, est_method, bool(covariates))
    aggs = aggregate(data, cohorts, cells)

    boot = None
    if bootstrap:
        boot = multiplier_bootstrap(data.n_units, cells, aggs, n_boot, seed, alpha, multiplier)

    result = assemble(
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
    data: CSData = field(repr=False)
    cohorts: Cohorts = field(repr=False)
    cells: Cells = field(repr=False)
    aggs: Agg = field(repr=False)


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
            keys = [fmt_period(e) for e in aggs.event_times]
    elif type == "calendar":
        periods, cal_w, cal_v = calendar_columns(cells, pi_weighting(n, cohorts, cells))
        w_mat, v_mat = np.column_stack(cal_w), np.column_stack(cal_v)
        est.append(w_mat.T @ np.where(cells.valid, cells.att, 0.0))
        member_cell = cohorts.members[:, cells.coh].astype(float)
        psi.append(cells.psi @ w_mat + member_cell @ v_mat)
        keys = [fmt_period(t) for t in periods]
    estimate = np.concatenate(est)
    influence = np.column_stack(psi)
    se_a = analytic_se(influence)
    alpha = float(settings["alpha"])
    if not settings["bootstrap"]:
        return CSAggregation(type, keys, estimate, influence, se_a, se_a, ANALYTIC,
                             float(stats.norm.ppf(1 - alpha / 2)), alpha)
    # the fit's bootstrap (same multipliers), the band over the detail entries
    agg = Agg(["overall"] + ["event"] * len(keys), [""] * len(estimate), estimate,
              influence, [], np.asarray(keys))
    with warnings.catch_warnings():
        if not keys:  # no detail entries, no band
            warnings.simplefilter("ignore")
        boot = multiplier_bootstrap(n, cells, agg, int(settings["n_boot"]), int(settings["seed"]), alpha,
                                    settings["multiplier"])
    return CSAggregation(type, keys, estimate, influence, boot.se_aggs, se_a, BOOTSTRAP,
                         boot.crit_event, alpha)
