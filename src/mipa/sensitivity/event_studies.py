r"""Event studies with their full covariance, for pre-trend tests, uniform bands and HonestDiD.

The estimators' ``event_study`` tables carry standard errors only; a joint test of the
leads, a simultaneous band and the Rambachan & Roth bounds need the whole covariance of
the event-study vector. This module returns it, as an
:class:`~mipa.sensitivity.pretrends.EventStudyVcov` (event times without the reference
period ``e = -1``), for three estimators besides ETWFE
(:func:`~mipa.sensitivity.pretrends.etwfe_event_study_vcov`):

* :func:`twfe_event_study_vcov`: the classic dynamic TWFE regression
  ``y_it = a_i + l_t + sum_{e in W, e != -1} b_e 1[t - g_i = e] + b_lo 1[t - g_i < lo]
  + b_hi 1[t - g_i > hi] + e_it`` (window ``W = [lo, hi]``, reference ``e = -1``, the event
  times outside the window binned into the two end dummies so that the reference is the
  only omitted relative period; Schmidheiny & Siegloch 2023, "On event studies and
  distributed-lags in two-way fixed effects models", J. Applied Econometrics 38(5)).
  Unit-clustered covariance with reghdfe's small-sample factor, as
  :func:`mipa.estimators.twfe.twfe`. With staggered starts and effects that differ by
  cohort each ``b_e`` mixes other event times' effects (Sun & Abraham 2021, J.
  Econometrics 225(2)): this is the annex's robustness model, not the preferred one.
* :func:`csdid_event_study_vcov`: Callaway & Sant'Anna's dynamic aggregation with a
  **universal** base period (every cell against ``g - 1``, so the leads are comparable
  with the lags, as Rambachan & Roth advise for HonestDiD) and its analytic covariance
  ``V = Psi' Psi / N^2`` from the unit influence functions ``Psi`` (CS2021 sec. 4; the
  covariance HonestDiD's vignette takes from ``did::aggte``).
* :func:`poisson_event_study_vcov`: Poisson ETWFE on the count scale
  (:mod:`mipa.estimators.poisson_etwfe`, never-treated controls so every cohort row but
  ``g - 1`` is a cell and the leads exist): the row-weighted averages of the cell effects
  by event time with the delta-method covariance ``W V_cells W'``.

Uniform bands (:func:`sup_t_critical_value`): the sup-t band of Montiel Olea &
Plagborg-Moller (2019), "Simultaneous confidence bands: theory, implementation, and an
application to SVARs", J. Applied Econometrics 34(1): ``b_e +/- c se_e`` with ``c`` the
``1 - alpha`` quantile of ``max_e |T_e|``, ``T = Z / sqrt(chi2_d / d)``,
``Z ~ N(0, R)`` (``R`` the correlation matrix of the window's estimates, ``d`` the
t degrees of freedom of the pointwise intervals; plain normal when ``d`` is None),
simulated with a fixed seed. Never below the pointwise critical value.

All of these covariances are clustered by country. With one treated country per cohort
they leave out that country's own noise (Conley & Taber 2011) and overstate precision;
:mod:`mipa.sensitivity.placebo` gives a pre-trend test that does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.estimators.csdid import aggte, callaway_santanna_fit
from mipa.estimators.etwfe import ControlGroup, aggregation_matrix, cohort_labels
from mipa.estimators.poisson_etwfe import fit_saturated_cells, poisson_sample, separation_report
from mipa.estimators.results import plain
from mipa.sensitivity.pretrends import EventStudyVcov

__all__ = [
    "EventStudyTable",
    "csdid_event_study_vcov",
    "event_study_table",
    "poisson_event_study_vcov",
    "select_window",
    "settings_json",
    "sup_t_critical_value",
    "twfe_event_study_vcov",
]

REFERENCE_EVENT_TIME = -1


# --------------------------------------------------------------------------- classic TWFE
def twfe_event_study_vcov(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    window: tuple[int, int],
) -> EventStudyVcov:
    """Dynamic TWFE with binned endpoints (module docstring); returns the window's ``b_e``.

    ``first_treat`` 0 / NaN / after the last period = never treated (no dummy). The end
    bins ``e < lo`` and ``e > hi`` are estimated but not returned. Rows with a missing
    outcome and singleton rows are dropped, as :func:`mipa.estimators.twfe.twfe`.
    """
    lo, hi = window
    if not lo < REFERENCE_EVENT_TIME < hi:
        raise ValueError("the window must contain the reference period -1 strictly inside")
    df = panel[[unit, period, outcome, first_treat]].dropna(subset=[outcome]).reset_index(drop=True)
    t_max = df[period].max()
    g = pd.to_numeric(df[first_treat]).astype(float)
    treated = g.notna() & (g > 0) & (g <= t_max)
    e = np.where(treated, df[period].to_numpy(float) - g.to_numpy(), np.nan)
    u_codes, _ = ols.factorize(df[unit].to_numpy())
    t_codes, _ = ols.factorize(df[period].to_numpy())
    keep = ols.drop_singletons([u_codes, t_codes])
    df, e = df[keep].reset_index(drop=True), e[keep]
    if not np.isfinite(e).any():
        raise NotEstimable("no_post_treatment_data", f"{outcome} is not observed in any month of a treated country")
    u_codes, _ = ols.factorize(df[unit].to_numpy())
    t_codes, _ = ols.factorize(df[period].to_numpy())

    inside = [k for k in range(lo, hi + 1) if k != REFERENCE_EVENT_TIME]
    column = {k: j for j, k in enumerate(inside)}
    col = np.full(e.size, -1, dtype=np.int64)
    finite = np.isfinite(e)
    ei = np.where(finite, e, 0).astype(np.int64)
    in_window = finite & (ei >= lo) & (ei <= hi) & (ei != REFERENCE_EVENT_TIME)
    col[in_window] = [column[int(k)] for k in ei[in_window]]
    col[finite & (ei < lo)] = len(inside)  # lower bin
    col[finite & (ei > hi)] = len(inside) + 1  # upper bin
    rows = np.flatnonzero(col >= 0)
    x = sparse.csc_matrix((np.ones(rows.size), (rows, col[rows])), shape=(len(df), len(inside) + 2))
    fe = [u_codes, t_codes]
    fit = ols.fit_within(df[outcome].to_numpy(dtype=float), x, fe)
    v_kept, info = ols.cluster_vcov(fit, [u_codes], df_a=ols.absorbed_dof(fe, [u_codes]))
    n_par = len(inside) + 2
    coef = fit.coef  # NaN for a dropped (collinear) column
    vcov = np.full((n_par, n_par), np.nan)
    vcov[np.ix_(fit.kept, fit.kept)] = v_kept
    k = len(inside)
    return EventStudyVcov(
        event_time=np.asarray(inside, dtype=np.int64),
        estimate=coef[:k],
        vcov=vcov[:k, :k],
        n_clusters=info.n_clusters,
        df=info.df,
        settings={
            "estimator": "twfe",
            "window": [lo, hi],
            "end_bins": {"below": plain(coef[k]), "above": plain(coef[k + 1])},
            "n_obs": fit.n_obs,
            "small_sample_factor": info.small_sample_factor,
            "vcov": "cluster by unit; reghdfe small-sample factor (N-1)/(N-K)*G/(G-1)",
        },
    )


# --------------------------------------------------------------------------- Callaway & Sant'Anna
def csdid_event_study_vcov(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    control_group: str = "nevertreated",
) -> EventStudyVcov:
    """CS dynamic effects with a universal base period and ``V = Psi'Psi / N^2``.

    :func:`mipa.estimators.csdid.callaway_santanna_fit` with ``base_period="universal"``,
    no covariates, no bootstrap, and its ``dynamic`` aggregation
    (:func:`mipa.estimators.csdid.aggte`: the ``event_study`` table's estimates and the
    square roots of the diagonal); the reference event time ``-1`` (estimate 0 by
    construction, no variance) is left out.
    """
    fit = callaway_santanna_fit(panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat,
                                control_group=control_group, base_period="universal", bootstrap=False)
    dynamic = aggte(fit, "dynamic")  # entry 0 is the overall effect, then one per event time
    times = np.asarray(dynamic.keys, dtype=float)
    keep = times != REFERENCE_EVENT_TIME
    est = dynamic.estimate[1:][keep]
    psi = dynamic.influence[:, 1:][:, keep]
    n = len(fit.unit_ids)
    vcov = psi.T @ psi / n**2
    return EventStudyVcov(
        event_time=times[keep].astype(np.int64),
        estimate=est,
        vcov=(vcov + vcov.T) / 2,
        n_clusters=n,
        df=n - 1,
        settings={
            "estimator": "csdid",
            "base_period": "universal",
            "control_group": control_group,
            "vcov": "analytic influence function, Psi'Psi/N^2 (clustered by unit)",
            "n_units": n,
        },
    )


# --------------------------------------------------------------------------- Poisson ETWFE
def poisson_event_study_vcov(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    control_group: ControlGroup = "nevertreated",
) -> EventStudyVcov:
    """Poisson ETWFE count-scale event study with its delta-method covariance.

    Re-runs :func:`mipa.estimators.poisson_etwfe.poisson_etwfe`'s steps (same sample,
    separation handling, fit, small-sample factor ``q``, cell effects and gradients), so
    the estimates and the square roots of the diagonal equal its ``event_study`` table;
    the reference ``-1`` is left out, and so are event times none of whose cells is
    identified (listed in ``settings["unidentified_event_times"]``).
    ``settings["separation"]`` is the separation report.

    Raises :class:`~mipa.estimability.NotEstimable` when the panel gives no event study
    (no never-treated country, no partner, every count 0, a fit that does not converge,
    no identified event time); invalid input raises ``ValueError``.
    """
    sample = poisson_sample(panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat,
                            control_group=control_group, cohort="group")
    sc = fit_saturated_cells(sample)
    cells = sample.cells
    if not sc.identified.any():
        raise NotEstimable("not_identified", "no cell of the event study is identified")
    _, _, ev_meta, w_ev = aggregation_matrix(sc.cells_agg, cohort_labels(cells, "group"), identified=sc.identified)
    ok = np.isfinite(w_ev).all(axis=1)
    if not ok.any():
        raise NotEstimable("not_identified", "no event time of the event study has an identified cell")
    w = w_ev[ok]
    att = np.where(sc.identified, sc.att, 0.0)
    v_cells = sc.grad @ (sc.small_sample_factor * sc.fit.vcov_raw) @ sc.grad.T
    vcov = w @ v_cells @ w.T
    times = np.array([m["event_time"] for m in ev_meta], dtype=np.int64)
    flagged = sc.separated | sc.zero_base
    group_col = cells["g"].astype(np.int64).tolist()
    return EventStudyVcov(
        event_time=times[ok],
        estimate=w @ att,
        vcov=(vcov + vcov.T) / 2,
        n_clusters=int(sc.n_u_act),
        df=int(sc.n_u_act) - 1,
        settings={
            "estimator": "poisson_etwfe",
            "control_group": control_group,
            "scale": "count (average partial effect, W2023 eq. 6.8)",
            "n_obs": sc.n_obs,
            "small_sample_factor": sc.small_sample_factor,
            "separated_event_times": sorted(int(e) for e, wr in zip(times[ok], w, strict=True)
                                            if (wr[flagged] != 0).any()),
            "unidentified_event_times": [int(e) for e in times[~ok]],
            "separation": separation_report(sc.sep, cells, group_col),
            **sample.info,
        },
    )


# --------------------------------------------------------------------------- bands
def sup_t_critical_value(
    vcov: np.ndarray, *, alpha: float = 0.05, df: int | None = None, n_draws: int = 10_000, seed: int = 0
) -> float:
    """``1 - alpha`` quantile of ``max_e |T_e|`` (module docstring), simulated.

    ``vcov`` must have a positive diagonal; a rank-deficient ``vcov`` is fine. The draws
    are ``z = g R`` with ``R = V diag(sqrt(lambda)) V'`` the symmetric square root of the
    correlation matrix: unlike the eigenvector factor ``V diag(sqrt(lambda))``, it does not
    depend on the basis chosen inside a repeated eigenvalue, so rounding-level changes of
    ``vcov`` (1e-13) cannot redraw the simulation. Deterministic given ``seed``.
    """
    v = np.asarray(vcov, dtype=float)
    sd = np.sqrt(np.diag(v))
    if v.size == 0 or not np.all(sd > 0):
        raise NotEstimable("no_variance", "the covariance needs a positive diagonal")
    corr = v / np.outer(sd, sd)
    lam, vec = np.linalg.eigh((corr + corr.T) / 2)
    root = (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_draws, lam.size)) @ root
    if df is not None:
        z /= np.sqrt(rng.chisquare(df, n_draws) / df)[:, None]
    crit = float(np.quantile(np.abs(z).max(axis=1), 1 - alpha))
    pointwise = float(stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df))
    return max(crit, pointwise)


@dataclass(frozen=True)
class EventStudyTable:
    """Rows of an event study in a window: estimates, pointwise intervals, uniform band."""

    rows: pd.DataFrame  # event_time, estimate, std_error, ci_low, ci_high, band_low, band_high
    band_critical_value: float
    pointwise_critical_value: float


def event_study_table(
    es: EventStudyVcov,
    *,
    window: tuple[int, int],
    alpha: float = 0.05,
    t_df: int | None = None,
    n_draws: int = 10_000,
    seed: int = 0,
) -> EventStudyTable:
    """The event times of ``es`` inside ``window`` with intervals and a sup-t band.

    Pointwise: ``b +/- c_pw se`` with ``c_pw`` from t(``t_df``) (normal when None). The
    band is simultaneous over the window's event times with a positive standard error.
    The reference ``-1`` is added as a row with estimate 0 and no interval.
    """
    lo, hi = window
    inside = (es.event_time >= lo) & (es.event_time <= hi) & np.isfinite(es.estimate)
    sub = es.select([int(e) for e in es.event_time[inside]])
    se = np.sqrt(np.clip(np.diag(sub.vcov), 0.0, None))
    ok = se > 0
    c_pw = float(stats.norm.ppf(1 - alpha / 2) if t_df is None else stats.t.ppf(1 - alpha / 2, t_df))
    c_band = np.nan
    if ok.any():
        c_band = sup_t_critical_value(sub.vcov[np.ix_(ok, ok)], alpha=alpha, df=t_df, n_draws=n_draws, seed=seed)
    se_ok = np.where(ok, se, np.nan)
    rows = pd.DataFrame({
        "event_time": sub.event_time.astype(np.int64),
        "estimate": sub.estimate,
        "std_error": se_ok,
        "ci_low": sub.estimate - c_pw * se_ok,
        "ci_high": sub.estimate + c_pw * se_ok,
        "band_low": sub.estimate - c_band * se_ok,
        "band_high": sub.estimate + c_band * se_ok,
    })
    if lo <= REFERENCE_EVENT_TIME <= hi and REFERENCE_EVENT_TIME not in set(rows["event_time"]):
        ref = {"event_time": REFERENCE_EVENT_TIME, "estimate": 0.0}
        rows = pd.concat([rows, pd.DataFrame([ref])], ignore_index=True)
    rows = rows.sort_values("event_time", kind="stable").reset_index(drop=True)
    return EventStudyTable(rows, c_band, c_pw)


def select_window(es: EventStudyVcov, event_times: Sequence[int]) -> EventStudyVcov:
    """The sub-vector of the event times of ``event_times`` that ``es`` has with a finite
    estimate (a window may reach beyond the estimated event times)."""
    have = {int(e) for e, b in zip(es.event_time, es.estimate, strict=True) if np.isfinite(b)}
    return es.select([int(e) for e in event_times if int(e) in have])


def settings_json(settings: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of a settings dict (numpy scalars to Python)."""
    def clean(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    return clean(dict(settings))
