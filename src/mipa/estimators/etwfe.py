"""Wooldridge's extended two-way fixed effects (ETWFE) difference-in-differences.

Reference: Wooldridge, J. M. (2021), "Two-way fixed effects, the two-way Mundlak
regression, and difference-in-differences estimators", SSRN 3906345, sections 6-7;
implemented as Stata ``jwdid`` (Rios-Avila) and ``xthdidregress twfe``, and R ``etwfe``
(McDermott). The annex of the evaluation used ``xthdidregress``.

Regression (one row per unit ``i`` and period ``t``, rows with a missing outcome or
covariate dropped)::

    y_it = a_i + l_t + sum_{(c,s) in cells} tau_cs * 1[cohort_i = c, t = s]
           [+ x_it'(k + k_t + k_g(i)) + sum_cells 1[...] * (x_it - xbar_c)' d_cs] + e_it

* ``control_group="notyettreated"`` (``jwdid`` / ``etwfe`` default): cells are the
  post-treatment cells ``s >= g_c``; the not-yet-treated rows of later cohorts and the
  never treated identify the period effects.
* ``control_group="nevertreated"``: cells are all ``s != r_c``, with ``r_c`` the last
  period before ``g_c`` (``g - 1`` with consecutive periods); every cohort row except its
  reference period is saturated, so only the never treated identify the period effects
  and a post cell's ``tau`` is exactly Callaway & Sant'Anna's (2021) unconditional
  never-treated ``ATT(g, t)`` (``(ybar_gt - ybar_g,g-1) - (ybar_Ct - ybar_C,g-1)``); the
  pre cells are the event-study leads.
* ``cohort="group"``: a cohort is the set of units with the same first treated period.
  ``cohort="unit"``: every treated unit is its own cohort (unit x period cells), for the
  per-country effects of the annex; Egypt and Nigeria share a start but are reported
  apart. Without covariates the unit cells of a cohort average (by rows) to its group
  cell, so the ``simple`` effect is the same for both cohort definitions.
* Covariates ``x`` (Wooldridge 2021, eq. 6.33; ``jwdid``/``etwfe``): ``x``, ``x`` x period
  dummies and ``x`` x cohort dummies enter as controls (the unit fixed effects absorb
  whatever is time-invariant), and each cell dummy is also interacted with ``x``
  demeaned within its cohort (``xbar_c`` = mean of ``x`` over the cohort's rows in the
  sample). A cell's effect is then ``tau_cs + d_cs'(xbar_cs - xbar_c)``, the average over
  the cell's rows of the derivative in the treatment (Stata ``margins`` after ``jwdid``).

Aggregates (``simple``, ``group``, ``dynamic``, ``calendar``; their weights:
:mod:`mipa.estimators.etwfe_aggregate`) are linear combinations ``w'b`` of the
coefficients with delta-method variance ``w'Vw`` (exact, as ``w`` does not depend on ``b``).

Standard errors are clustered by unit with ``reghdfe``'s small-sample factor
``(N-1)/(N-K) * G/(G-1)``: the unit fixed effects are nested in the clusters and not
counted, the period effects count all ``T`` levels (reghdfe's ``dof(all)`` once the unit
effects are set aside as nested), so ``K = rank + T``. This reproduces ``jwdid``'s
standard errors to the published digits. R ``etwfe`` uses cohort fixed effects, which
are not nested in units, so fixest's ``K`` is a few larger and its standard errors a
few parts in 10^4 larger; linearmodels by default counts all absorbed effects. Intervals
and p-values use t with ``G-1`` degrees of freedom, as ``reghdfe``/``jwdid`` report (R
``etwfe`` via ``marginaleffects`` reports normal intervals).

Unbalanced panels: rows with a missing outcome are dropped, the within transformation is
done by alternating projections on the observed rows (exact, not a balanced-panel
shortcut), and every weight above counts observed rows only. Rows alone in their unit or
period are dropped as reghdfe drops singletons; units treated in the first period (no
untreated row) are dropped; a ``first_treat`` after the last period counts as never
treated. Without never-treated units (not-yet-treated controls only) the last cohort
serves as the control group and the rows from its start on are dropped, as R ``etwfe``
does. ``settings`` records all of these.

:func:`etwfe_fit` prepares the panel, fits once and keeps the cells' covariance; the
tables (:func:`etwfe`), the event-study covariance (pre-trend tests, HonestDiD), the
wild cluster bootstrap and the API's delta-method aggregation all read that one
:class:`EtwfeFit`. The sample, cell and weight rules, which Poisson ETWFE
(:mod:`mipa.estimators.poisson_etwfe`) shares, are in :mod:`mipa.estimators.etwfe_sample`
(:func:`prepare_rows`, :func:`drop_singleton_rows`), :mod:`mipa.estimators.etwfe_cells`
(:func:`cell_table`, the design, the cell effects) and :mod:`mipa.estimators.etwfe_aggregate`
(:func:`aggregation_matrix`, :func:`cohort_labels`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.estimators.etwfe_aggregate import Aggregation, aggregate_status, aggregation_matrix, cohort_labels
from mipa.estimators.etwfe_cells import cell_gradient, cell_table, design_matrix
from mipa.estimators.etwfe_sample import Cohort, ControlGroup, drop_singleton_rows, prepare_rows, scope_label
from mipa.estimators.fixed_effects import absorbed_dof
from mipa.estimators.least_squares import OLSFit, VcovInfo, cluster_vcov, fit_within, wald_ci
from mipa.estimators.results import ATT_GT_COLUMNS, ESTIMATE_COLUMNS, DidResult, estimate_frame, event_study_frame

__all__ = [
    "Aggregation",
    "Cohort",
    "ControlGroup",
    "EtwfeArguments",
    "EtwfeFit",
    "aggregation_matrix",
    "cell_table",
    "cohort_labels",
    "drop_singleton_rows",
    "etwfe",
    "etwfe_fit",
    "prepare_rows",
    "scope_label",
]

INFERENCE = "cluster_unit"


@dataclass(frozen=True, eq=False)
class EtwfeFit:
    """One ETWFE regression, fitted once, with everything its consumers need.

    :func:`etwfe` turns it into the tables (:meth:`result`); the event-study covariance
    (:meth:`event_study_vcov`, for pre-trend tests and HonestDiD), the wild cluster
    bootstrap (:mod:`mipa.inference.wild_bootstrap`) and the API's delta-method
    aggregation (:meth:`aggregate`) read the same sample, design and covariance, so
    their numbers are those of the tables by construction.

    ``rows``: the regression rows (after the drops in ``info``) with the numeric first
    treated period ``_g``; ``unit_codes``/``period_codes``: their fixed-effect codes
    (units are also the clusters); ``cells``: the cell table (:func:`cell_table`);
    ``labels``: the scope label of each cohort key; ``ols``: the within fit;
    ``df_a``: the absorbed degrees of freedom of the small-sample factor; ``att``: the
    cell effects (NaN for a cell collinear with the fixed effects); ``gradient``: their
    gradient in the kept coefficients; ``vcov``: the unit cluster-robust covariance of
    the cell effects (reghdfe factor; NaN rows and columns for unidentified cells);
    ``aggregation``: the aggregation weights over the identified cells.
    """

    outcome: str
    unit: str
    period: str
    control_group: ControlGroup
    cohort: Cohort
    covariates: list[str]
    rows: pd.DataFrame
    info: dict[str, Any]
    unit_codes: np.ndarray
    n_units: int
    period_codes: np.ndarray
    n_periods: int
    cells: pd.DataFrame
    labels: dict[Any, str]
    n_regressors: int
    ols: OLSFit
    df_a: int
    att: np.ndarray
    gradient: np.ndarray
    vcov: np.ndarray
    vcov_info: VcovInfo
    aggregation: Aggregation

    @property
    def identified(self) -> np.ndarray:
        """Cells whose dummy is not collinear with the fixed effects."""
        return np.isfinite(self.att)

    @property
    def fe_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The unit and period codes of the absorbed fixed effects."""
        return self.unit_codes, self.period_codes

    @property
    def df(self) -> int:
        """Degrees of freedom of the t reference distribution (clusters - 1)."""
        return self.vcov_info.df

    def _zero_filled(self) -> tuple[np.ndarray, np.ndarray]:
        # unidentified cells carry weight 0; zero-fill them so 0 * NaN does not spread
        ok = self.identified
        return np.where(ok, self.att, 0.0), np.where(np.isfinite(self.vcov), self.vcov, 0.0)

    def aggregate(self, aggregation: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """One aggregation as ``(scopes, estimate, vcov)`` by the delta method.

        Row 0 is the overall effect, then the detail rows: the scope labels of
        ``group`` / ``calendar`` or the event times of ``dynamic`` (``simple`` has none).
        ``estimate = W att`` and ``vcov = W V W'`` with ``W`` the rows' weights over the
        identified cells (exact: ``W`` does not depend on the coefficients); a row over
        no identified cell is NaN.
        """
        meta, weights, ev_meta, ev_weights = self.aggregation
        idx = [j for j, m in enumerate(meta) if m["aggregation"] == aggregation]
        if not idx:
            raise ValueError(f"aggregation must be one of simple, group, dynamic, calendar, not {aggregation!r}")
        top = next(j for j in idx if meta[j]["scope"] == "overall")
        if aggregation == "dynamic":
            scopes: list[Any] = [m["event_time"] for m in ev_meta]
            w = np.vstack([weights[top], ev_weights])
        else:
            detail = [j for j in idx if j != top]
            scopes = [meta[j]["scope"] for j in detail]
            w = weights[[top, *detail]]
        att, v = self._zero_filled()
        est = w @ att
        cov = w @ v @ w.T
        return scopes, est, (cov + cov.T) / 2

    def event_study_vcov(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(event_time, estimate, vcov)``: the event study by event time with its full
        clustered covariance ``W_ev V W_ev'``.

        Unlike the ``event_study`` table, which averages over the identified cells of an
        event time, an event time with an unidentified cell is NaN here (estimate, row
        and column of ``vcov``): a lead or lag that silently drops a cohort would not be
        comparable with its neighbours in a joint test or in HonestDiD.
        """
        _, _, ev_meta, w_ev = aggregation_matrix(self.cells, self.labels)
        ok = self.identified
        att, v = self._zero_filled()
        est = w_ev @ att
        bad = (w_ev[:, ~ok] != 0).any(axis=1)
        est[bad] = np.nan
        v_ev = w_ev @ v @ w_ev.T
        v_ev[bad, :] = np.nan
        v_ev[:, bad] = np.nan
        return np.array([m["event_time"] for m in ev_meta], dtype=np.int64), est, (v_ev + v_ev.T) / 2

    def result(self, alpha: float = 0.05) -> DidResult:
        """The estimator's tables (:func:`etwfe`'s return value)."""
        cells, n_cells, ok = self.cells, len(self.cells), self.identified
        if not (cells["event_time"] >= 0).any():
            raise NotEstimable("no_post_treatment_data", f"{self.outcome} is not observed after any start")
        meta, W, ev_meta, W_ev = self.aggregation
        df_t = self.df
        n_obs = self.ols.n_obs
        att_0, V_0 = self._zero_filled()

        # estimates
        est = W @ att_0
        se = np.sqrt(((W @ V_0) * W).sum(axis=1))
        lo, hi, p = wald_ci(est, se, df=df_t, alpha=alpha)
        estimates = estimate_frame(meta, est, se, lo, hi, p, n_obs=n_obs, n_clusters=self.vcov_info.n_clusters,
                                   inference=INFERENCE)
        estimates = aggregate_status(estimates, cells, ok, self.labels if self.cohort == "unit" else None)
        estimates = estimates[ESTIMATE_COLUMNS]

        # event study
        ev = W_ev @ att_0
        ev_se = np.sqrt(((W_ev @ V_0) * W_ev).sum(axis=1))
        ev_lo, ev_hi, _ = wald_ci(ev, ev_se, df=df_t, alpha=alpha)
        event_study = event_study_frame([m["event_time"] for m in ev_meta], ev, ev_se, ev_lo, ev_hi,
                                        inference=INFERENCE, reference=self.control_group == "nevertreated")

        # cells
        cell_se = np.sqrt(np.diag(self.vcov))
        c_lo, c_hi, _ = wald_ci(self.att, cell_se, df=df_t, alpha=alpha)
        att_gt = pd.DataFrame(
            {
                "group": self.cell_groups(),
                "period": cells["period"].to_numpy(),
                "event_time": cells["event_time"].to_numpy(),
                "estimate": self.att,
                "std_error": cell_se,
                "ci_low": c_lo,
                "ci_high": c_hi,
                "n_obs": cells["n_obs"].to_numpy(),
                "inference": INFERENCE,
            }
        )[ATT_GT_COLUMNS]

        settings: dict[str, Any] = {
            "control_group": self.control_group,
            "cohort": self.cohort,
            "covariates": list(self.covariates),
            "alpha": alpha,
            "n_obs": n_obs,
            "n_units": int(self.n_units),
            "n_periods": int(self.n_periods),
            "n_cells": int(n_cells),
            "n_regressors": int(self.n_regressors),
            "rank": self.ols.rank,
            "vcov": "cluster by unit; reghdfe small-sample factor (N-1)/(N-K)*G/(G-1)",
            "small_sample_factor": self.vcov_info.small_sample_factor,
            "ci_distribution": f"t({df_t})",
            "fe_sweeps": self.ols.fe_sweeps,
            **self.info,
        }
        return DidResult(
            estimator="etwfe",
            outcome=self.outcome,
            control_group=self.control_group,
            estimates=estimates.reset_index(drop=True),
            event_study=event_study,
            att_gt=att_gt,
            settings=settings,
        )

    def cell_groups(self) -> list[Any]:
        """The ``att_gt.group`` value of every cell: the first treated period, or the
        unit's label with ``cohort="unit"``."""
        if self.cohort == "unit":
            return [self.labels[k] for k in self.cells["key"]]
        return self.cells["g"].astype(np.int64).tolist()


class EtwfeArguments(TypedDict, total=False):
    """The keyword arguments of :func:`etwfe_fit` (defaults and meaning there), for the
    functions that pass them on; the four column names are required."""

    outcome: Required[str]
    unit: Required[str]
    period: Required[str]
    first_treat: Required[str]
    covariates: Sequence[str]
    control_group: ControlGroup
    cohort: Cohort
    unit_labels: Mapping[Any, str] | pd.Series | None


def etwfe_fit(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: ControlGroup = "notyettreated",
    cohort: Cohort = "group",
    unit_labels: Mapping[Any, str] | pd.Series | None = None,
) -> EtwfeFit:
    """Prepare the panel once, build the design, fit, and compute the cell covariance.

    Parameters
    ----------
    panel: one row per ``unit`` and ``period`` (integer periods, consecutive for event
        time and the never-treated reference period ``g - 1``).
    outcome: outcome column; rows where it (or a covariate) is NaN are dropped.
    first_treat: first treated period; 0, NaN or a value after the last period mean never
        treated. Must be constant within a unit.
    covariates: columns ``x`` entering as in ``jwdid``/``etwfe`` (see module docstring).
    control_group: ``"notyettreated"`` (default, as ``jwdid``/``etwfe``) or
        ``"nevertreated"`` (saturated pre and post cells; post cells = CS ATT(g,t)).
    cohort: ``"group"`` (cohort = first treated period) or ``"unit"`` (each treated unit
        its own cohort; the ``group`` rows and ``att_gt.group`` carry the unit label).
    unit_labels: optional map unit -> label (e.g. ISO3) for ``cohort="unit"``.
    """
    if control_group not in ("notyettreated", "nevertreated"):
        raise ValueError(f"control_group must be 'notyettreated' or 'nevertreated', not {control_group!r}")
    if cohort not in ("group", "unit"):
        raise ValueError(f"cohort must be 'group' or 'unit', not {cohort!r}")
    covariates = list(covariates)
    df, info = prepare_rows(
        panel,
        outcome=outcome,
        unit=unit,
        period=period,
        first_treat=first_treat,
        covariates=covariates,
        control_group=control_group,
    )
    df, unit_codes, n_units, period_codes, n_periods = drop_singleton_rows(df, unit=unit, period=period, info=info)

    cell_idx, cells = cell_table(df, unit=unit, period=period, cohort=cohort, control_group=control_group)
    n_cells = len(cells)
    cohort_key = df[unit].to_numpy() if cohort == "unit" else df["_g"].to_numpy()
    X, desc, xbar_cell = design_matrix(
        df, cell_idx, n_cells, period=period, covariates=covariates, cohort_key=cohort_key
    )
    y = df[outcome].to_numpy(dtype=float)
    fe = [unit_codes, period_codes]
    fit = fit_within(y, X, fe)
    df_a = absorbed_dof(fe, [unit_codes])
    att, grad = cell_gradient(fit, desc, n_cells, covariates, xbar_cell)
    ok = np.isfinite(att)
    V_cells = np.full((n_cells, n_cells), np.nan)
    V_ok, vinfo = cluster_vcov(fit, [unit_codes], df_a=df_a, contrast=grad[ok])
    V_cells[np.ix_(ok, ok)] = V_ok
    labels = cohort_labels(cells, cohort, unit_labels)
    return EtwfeFit(
        outcome=outcome, unit=unit, period=period, control_group=control_group, cohort=cohort,
        covariates=covariates, rows=df, info=info, unit_codes=unit_codes, n_units=int(n_units),
        period_codes=period_codes, n_periods=int(n_periods), cells=cells, labels=labels,
        n_regressors=int(X.shape[1]), ols=fit, df_a=df_a, att=att, gradient=grad, vcov=V_cells,
        vcov_info=vinfo, aggregation=aggregation_matrix(cells, labels, identified=ok),
    )


# --------------------------------------------------------------------------- main
def etwfe(panel: pd.DataFrame, *, alpha: float = 0.05, **options: Any) -> DidResult:
    """Wooldridge's extended TWFE DiD on a long panel; see the module docstring.

    ``options``: the panel's columns and the specification, as :func:`etwfe_fit`
    (``outcome``, ``unit``, ``period``, ``first_treat``, ``covariates``,
    ``control_group``, ``cohort``, ``unit_labels``); ``alpha``: 1 - confidence level of
    the intervals.

    Returns
    -------
    DidResult with ``estimator="etwfe"``; ``estimates`` (simple, group, dynamic,
    calendar), ``event_study`` (by event time) and ``att_gt`` (the cells). The fit
    behind it, with the cells' covariance, is :func:`etwfe_fit`.
    """
    return etwfe_fit(panel, **options).result(alpha)
