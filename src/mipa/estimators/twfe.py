"""Classic two-way fixed effects (TWFE) difference-in-differences, and the yearly model.

``y_it = a_i + l_t + sum_k b_k D_kit + e_it``, estimated by OLS after absorbing the unit
and period effects (alternating projections, exact on unbalanced panels; see
:mod:`mipa.estimators.least_squares`). With staggered adoption and heterogeneous effects ``b`` is
a variance-weighted average that can put negative weights on some cells (Goodman-Bacon
2021; de Chaisemartin & D'Haultfoeuille 2020); the annex reports it as a robustness
check next to ETWFE and Callaway & Sant'Anna (appendix 3, table A2).

Standard errors (``inference`` column):

* ``cluster_unit``: one-way clustered by unit (Stata ``reghdfe ..., absorb(unit period)
  vce(cluster unit)``); small-sample factor ``(N-1)/(N-K) * G/(G-1)`` with
  ``K = #treatments + T`` (the nested unit effects are not counted).
* ``twoway_cluster``: clustered by unit and by period (Cameron, Gelbach & Miller 2011):
  ``V = V_unit + V_period - V_unit&period``, one factor
  ``(N-1)/(N-1-K) * G_min/(G_min-1)`` for the sum as ``reghdfe`` applies it (both fixed
  effects are nested in a cluster variable, so only the intercept is added to ``K``);
  a ``V`` with a negative eigenvalue is repaired as reghdfe does (negative eigenvalues
  set to zero) and ``settings["twoway_psd_fixed"]`` is True (a warning is issued). This is
  the "calculation problem" that made the annex fall back on Driscoll-Kraay.
* ``driscoll_kraay``: Driscoll & Kraay (1998), Newey-West (Bartlett) on the period sums
  of the within scores, lag ``floor(4 (T/100)^(2/9))`` by default (``xtscc``), factor
  ``(N-1)/(N-K) * T/(T-1)`` with ``K = #treatments + T``; t with ``T-1`` df.

Intervals and p-values use t with ``G_min - 1`` (clustered) or ``T - 1`` (Driscoll-Kraay)
degrees of freedom, as Stata reports them.

Result shape: with one treatment the rows are ``aggregation="simple"``,
``scope="overall"`` (so the TWFE row lines up with the other estimators' overall
effect); with several treatments each coefficient is a row with
``aggregation="coefficient"`` and ``scope`` = the treatment's column name. ``vcov="all"``
gives one row per inference method and treatment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable, attempt, finalize_status, status_columns
from mipa.estimators.etwfe_sample import drop_singleton_rows, panel_rows
from mipa.estimators.fixed_effects import absorbed_dof, factorize
from mipa.estimators.least_squares import cluster_vcov, driscoll_kraay_vcov, fit_within, wald_ci
from mipa.estimators.results import ESTIMATE_COLUMNS, INTERVAL_COLUMNS, DidResult

__all__ = ["YEARLY_COLUMNS", "prepare_rows", "twfe", "yearly_twfe"]

Vcov = Literal["twoway", "cluster_unit", "driscoll_kraay", "all"]
_METHODS = {
    "cluster_unit": ("cluster_unit",),
    "twoway": ("twoway_cluster",),
    "twoway_cluster": ("twoway_cluster",),
    "driscoll_kraay": ("driscoll_kraay",),
    "all": ("cluster_unit", "twoway_cluster", "driscoll_kraay"),
}

YEARLY_COLUMNS = [
    "outcome",
    "treatment",
    *INTERVAL_COLUMNS,
    "p_value",
    "n_obs",
    "n_clusters",
    "status",
    "reason",
    "reason_detail",
]


def prepare_rows(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, treatments: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Regression rows: no missing outcome or treatment, no singleton fixed-effect rows;
    and a dict saying what was dropped. Shared with the wild bootstrap
    (:func:`mipa.inference.wild_bootstrap.twfe_contrast`), so it fits the same rows."""
    df = panel_rows(panel, [unit, period, outcome, *treatments], unit=unit, period=period)
    n0 = len(df)
    df = df.dropna(subset=[outcome, *treatments]).reset_index(drop=True)
    info: dict[str, Any] = {"dropped_missing_rows": int(n0 - len(df))}
    df = drop_singleton_rows(df, unit=unit, period=period, info=info)[0]
    if df.empty:
        raise NotEstimable("no_post_treatment_data", f"{outcome} has no row left after dropping missing months "
                           "and singletons")
    if not (df[list(treatments)].to_numpy(dtype=float) != 0).any():
        raise NotEstimable("no_post_treatment_data", f"{outcome} is not observed in any treated month")
    return df, info


def twfe(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    treatments: Sequence[str] = ("mipa",),
    vcov: Vcov = "twoway",
    dk_lags: int | None = None,
    alpha: float = 0.05,
) -> DidResult:
    """Classic TWFE regression of ``outcome`` on ``treatments`` with unit and period FE.

    Parameters
    ----------
    panel: long panel, one row per ``unit`` and ``period``; rows with a missing outcome
        or treatment are dropped (the within transformation is exact on what is left).
    treatments: 0/1 (or any numeric) treatment columns, estimated jointly.
    vcov: ``"twoway"`` (unit and period clusters, the annex's table A2), ``"cluster_unit"``,
        ``"driscoll_kraay"`` or ``"all"`` (a row per method).
    dk_lags: Driscoll-Kraay lag length; default ``floor(4 (T/100)^(2/9))``. Periods must
        be consecutive for the lags to mean what they say.
    alpha: 1 - confidence level.

    Returns
    -------
    DidResult with ``estimator="twfe"``, ``control_group="all"``; see the module
    docstring for the row layout.
    """
    if vcov not in _METHODS:
        raise ValueError(f"vcov must be one of {sorted(_METHODS)}, not {vcov!r}")
    treatments = list(treatments)
    if not treatments:
        raise ValueError("at least one treatment column is needed")
    df, info = prepare_rows(panel, outcome=outcome, unit=unit, period=period, treatments=treatments)
    u, n_units = factorize(df[unit].to_numpy())
    t, n_periods = factorize(df[period].to_numpy())
    fe = [u, t]
    X = df[treatments].to_numpy(dtype=float)
    fit = fit_within(df[outcome].to_numpy(dtype=float), X, fe)
    dropped = [name for name, k in zip(treatments, fit.kept, strict=True) if not k]
    if dropped:
        info["collinear_treatments"] = dropped

    settings: dict[str, Any] = {
        "treatments": treatments,
        "vcov": vcov,
        "alpha": alpha,
        "n_obs": fit.n_obs,
        "n_units": int(n_units),
        "n_periods": int(n_periods),
        "fe_sweeps": fit.fe_sweeps,
        **info,
    }
    single = len(treatments) == 1
    treated_units = [
        int(df.loc[df[name] != 0, unit].nunique()) for name in treatments
    ]
    rows: list[dict[str, Any]] = []
    for method in _METHODS[vcov]:
        if method == "cluster_unit":
            V, vi = cluster_vcov(fit, [u], df_a=absorbed_dof(fe, [u]))
        elif method == "twoway_cluster":
            V, vi = cluster_vcov(fit, [u, t], df_a=absorbed_dof(fe, [u, t]))
            settings["twoway_psd_fixed"] = vi.psd_fixed
        else:
            V, vi = driscoll_kraay_vcov(fit, t, lags=dk_lags, extra_k=n_periods)
            settings["dk_lags"] = vi.lags
        settings[f"{method}_small_sample_factor"] = vi.small_sample_factor
        settings[f"{method}_ci_distribution"] = f"t({vi.df})"
        se_kept = np.sqrt(np.clip(np.diag(V), 0, None))
        se = np.full(len(treatments), np.nan)
        se[fit.kept] = se_kept
        lo, hi, p = wald_ci(fit.coef, se, df=vi.df, alpha=alpha)
        for k, name in enumerate(treatments):
            rows.append(
                {
                    "aggregation": "simple" if single else "coefficient",
                    "scope": "overall" if single else name,
                    "estimate": fit.coef[k],
                    "std_error": se[k],
                    "ci_low": lo[k],
                    "ci_high": hi[k],
                    "p_value": p[k],
                    "n_obs": fit.n_obs,
                    "n_clusters": vi.n_clusters,
                    "n_treated_clusters": treated_units[k],
                    "inference": method,
                    **({} if fit.kept[k] else {
                        "status": "not_estimable", "reason": "not_identified",
                        "reason_detail": f"{name} is collinear with the country and period fixed effects"}),
                }
            )
    return DidResult(
        estimator="twfe",
        outcome=outcome,
        control_group="all",
        estimates=finalize_status(pd.DataFrame(rows).reindex(columns=ESTIMATE_COLUMNS))[ESTIMATE_COLUMNS],
        settings=settings,
    )


def yearly_twfe(
    panel: pd.DataFrame,
    *,
    outcomes: Sequence[str],
    unit: str,
    period: str,
    treatments: Sequence[str] = ("misa", "mipa"),
    separate: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The exploratory yearly panel of the terms of reference (annex 11.2).

    ``y_it = b0 + b1 D_it + sum_t g_t year_t + a_i + e_it`` with country and year fixed
    effects and country-clustered standard errors (Stata ``xtreg y i.D i.year, fe
    vce(cluster country)``; the same ``K = 1 + T`` and t(``G-1``) intervals as
    :func:`twfe` with ``vcov="cluster_unit"``). The annex ran one regression per outcome
    and treatment ("losse regressies", eight models); ``separate=False`` puts all
    treatments in one regression instead.

    Returns a tidy frame with columns :data:`YEARLY_COLUMNS`, one row per outcome and
    treatment.
    """
    out: list[dict[str, Any]] = []
    groups = [[tr] for tr in treatments] if separate else [list(treatments)]
    for y in outcomes:
        for trs in groups:
            res, failure = attempt(lambda y=y, trs=trs: twfe(
                panel, outcome=y, unit=unit, period=period, treatments=trs,
                vcov="cluster_unit", alpha=alpha,
            ))
            if res is None:
                out += [{"outcome": y, "treatment": tr, **status_columns(failure)} for tr in trs]
                continue
            for k, row in res.estimates.reset_index(drop=True).iterrows():
                out.append(
                    {
                        "outcome": y,
                        "treatment": trs[int(k)],
                        **{c: row[c] for c in YEARLY_COLUMNS[2:]},
                    }
                )
    return pd.DataFrame(out, columns=YEARLY_COLUMNS)
