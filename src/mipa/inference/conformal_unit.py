r"""CWZ 2021 conformal inference for ONE treated unit: its test and the inverted confidence set.

Reference: Chernozhukov, V., Wüthrich, K. and Zhu, Y. (2021), "An exact and robust
conformal inference method for counterfactual and synthetic controls", Journal of the
American Statistical Association 116(536), 1849-1864 (CWZ 2021), Theorems 1-2.

For treated unit ``j``: its outcome and the mean of the never-treated controls over the
months where both are observed (:func:`unit_series`), the counterfactual model's effect
``theta_hat = s'u0 / s'r`` (``s = r`` for the OLS models: Frisch-Waugh; see
:func:`~mipa.inference.conformal_stats.score_weights`), ``p(null)`` over the cyclic shifts of the
residuals and the exact set ``{theta0 : p(theta0) > alpha}``
(:mod:`mipa.inference.conformal_stats`); with the studentized statistic also the unit's
own long-run standard error. :func:`conformal_series` runs it on one series,
:func:`conformal_unit` on a panel's unit, :func:`conformal_rows` on every treated unit as
rows of :data:`~mipa.estimators.results.ESTIMATE_COLUMNS`. The method, its statistics and
the data conditions under which there is no estimate: :mod:`mipa.inference.conformal`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable, attempt, status_columns
from mipa.estimators.results import ESTIMATE_COLUMNS, estimate_row
from mipa.inference.conformal_stats import (
    MODELS,
    SCORE_MODELS,
    STATISTICS,
    BlockStats,
    Model,
    Statistic,
    StudentStats,
    count_at_least,
    invert,
    make_stats,
    moving_average,
    residual_parts,
    score_weights,
)
from mipa.inference.panel_arrays import PanelArrays
from mipa.inference.poisson_profile import poisson_month_profile

__all__ = [
    "ConformalResult",
    "check_series",
    "CONFORMAL_DEFAULTS",
    "ConformalOptions",
    "conformal_by_unit",
    "conformal_rows",
    "conformal_series",
    "conformal_unit",
    "control_profile",
    "fit_series",
    "inference_label",
    "p_values",
    "standard_error_at_estimate",
    "studentized_standard_error",
    "unit_series",
]


@dataclass(frozen=True)
class ConformalResult:
    """The CWZ 2021 test and confidence set for one treated unit's average post effect.

    ``estimate`` is the counterfactual model's effect with ``theta0`` free; ``ci_low``,
    ``ci_high`` the bounds of ``{theta0 : p(theta0) > alpha}`` (infinite when unbounded);
    ``p_value`` is ``p(null)``. ``std_error`` is NaN: the set comes from permutations.
    ``n_clusters`` = controls used + 1, ``n_treated_clusters`` = 1.
    """

    scope: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int  # months used (T)
    n_pre: int
    n_post: int
    n_clusters: int
    n_treated_clusters: int
    model: str
    statistic: str
    alpha: float
    null: float
    convex: bool
    inference: str
    smooth: int = 0
    # studentized statistic only: sqrt(V_post / T1 + V_rest / T0) / |b| at the estimate, the
    # unit's own (long-run) standard error of its effect; NaN for the other statistics
    std_error: float = float("nan")

    @property
    def width(self) -> float:
        return self.ci_high - self.ci_low

    def row(self, aggregation: str = "group") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS`."""
        return estimate_row(self, aggregation, **status_columns(None))



class ConformalOptions(TypedDict, total=False):
    """The options of :func:`conformal_series`, :func:`conformal_unit`,
    :func:`conformal_by_unit` and :func:`conformal_rows` (defaults: :data:`CONFORMAL_DEFAULTS`).

    ``model``: the counterfactual model; ``statistic``: the test statistic; ``alpha``: 1 -
    the confidence level; ``null``: the effect tested for the p-value; ``lags``: Bartlett
    lags of the ``t`` statistic (default ``floor(n^(1/3))`` per block of ``n`` periods; 0 =
    plain Welch); ``smooth``: half-window of the moving average of the control mean (module
    docstring)."""

    model: Model
    statistic: Statistic
    alpha: float
    null: float
    lags: int | None
    smooth: int


#: The defaults of :class:`ConformalOptions` (the factor model, the studentized statistic).
CONFORMAL_DEFAULTS: ConformalOptions = {"model": "factor", "statistic": "t", "alpha": 0.05, "null": 0.0, "lags": None,
                                       "smooth": 0}


def conformal_series(
    y: np.ndarray, cbar: np.ndarray, n_post: int, **options: Unpack[ConformalOptions]
) -> tuple[float, float, float, float, bool]:
    """CWZ 2021 on one treated series: ``(estimate, ci_low, ci_high, p(null), convex)``.

    ``y``: the treated unit's outcome over the ``T`` used periods in time order, the last
    ``n_post`` of them post; ``cbar``: the control mean in the same periods. No missing
    values (see :func:`conformal_unit` for panels). ``options``: :class:`ConformalOptions`.
    Formulas in the module docstring.
    """
    return fit_series(y, cbar, n_post, **{**CONFORMAL_DEFAULTS, **options})[:5]


def fit_series(
    y: np.ndarray, cbar: np.ndarray, n_post: int, *, model: Model, statistic: Statistic, alpha: float, null: float,
    lags: int | None, smooth: int,
) -> tuple[float, float, float, float, bool, BlockStats | StudentStats]:
    """:func:`conformal_series` and the statistic it inverted (for the unit's standard error)."""
    y = np.asarray(y, dtype=float)
    cbar = moving_average(np.asarray(cbar, dtype=float), smooth)
    T = y.size
    t1 = int(n_post)
    t0 = T - t1
    check_series(T, t0, t1, alpha, model, y, cbar, "", statistic)
    post = np.arange(T) >= t0
    u0, r = residual_parts(y, cbar, post, model)
    s = score_weights(r, cbar, post, model)
    estimate = float(s @ u0 / (s @ r))
    stats = make_stats(u0, r, t0, t1, statistic, lags)
    p0 = float(count_at_least(stats(np.array([null])))[0] / T)
    lo, hi, convex = invert(stats, alpha, estimate)
    return estimate, lo, hi, p0, convex, stats


def studentized_standard_error(
    y: np.ndarray, cbar: np.ndarray, n_post: int, *, model: Model = "factor", lags: int | None = None,
    smooth: int = 0,
) -> float:
    """The unit's own standard error of its effect, from the studentized statistic at the
    estimate: ``t_0(theta) = (a - theta b) / sqrt(Q(theta))``, so ``theta_hat = a / b`` and
    ``se = sqrt(Q(theta_hat)) / |b|`` (Bartlett long-run variances of the post block and
    the rest; Chung & Romano 2013)."""
    y = np.asarray(y, dtype=float)
    T = y.size
    t1 = int(n_post)
    t0 = T - t1
    u0, r = residual_parts(y, moving_average(np.asarray(cbar, dtype=float), smooth), np.arange(T) >= t0, model)
    return standard_error_at_estimate(StudentStats(u0, r, t0, t1, lags))


def standard_error_at_estimate(stats: StudentStats) -> float:
    b = float(stats.b[0])
    theta = float(stats.a[0]) / b
    q = float(stats.q0[0] - 2 * theta * stats.q1[0] + theta * theta * stats.q2[0])
    return float(np.sqrt(max(q, 0.0)) / abs(b))


def p_values(
    y: np.ndarray,
    cbar: np.ndarray,
    n_post: int,
    theta: np.ndarray,
    *,
    model: Model = "factor",
    statistic: Statistic = "t",
    lags: int | None = None,
    smooth: int = 0,
) -> np.ndarray:
    """``p(theta0)`` at each value of ``theta`` (brute force would refit; this uses the
    linearity ``u(theta0) = u0 - theta0 r``, exact)."""
    y = np.asarray(y, dtype=float)
    T = y.size
    t0 = T - int(n_post)
    u0, r = residual_parts(y, moving_average(np.asarray(cbar, dtype=float), smooth), np.arange(T) >= t0, model)
    return count_at_least(make_stats(u0, r, t0, int(n_post), statistic, lags)(np.atleast_1d(theta))) / T


def check_series(T: int, t0: int, t1: int, alpha: float, model: str, y: np.ndarray, cbar: np.ndarray, who: str,
           statistic: str = "mean") -> None:
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if t1 <= 0:
        raise NotEstimable("no_post_treatment_data", f"{who}no observed month from the start on".strip())
    if t0 <= 0:
        raise NotEstimable("no_pre_treatment_data", f"{who}no observed month before the start".strip())
    if statistic == "t" and t1 < 2:
        raise NotEstimable("too_few_post_periods", f"{who}{t1} month after the start: the studentized statistic "
                           "needs two to estimate the post-period variance".strip())
    if statistic == "t" and t0 < 2:
        raise NotEstimable("too_few_pre_periods", f"{who}{t0} month before the start: the studentized statistic "
                           "needs two".strip())
    need = max(math.ceil(1 / alpha - 1e-9), 3 if model == "factor" else 2)
    if T < need:
        raise NotEstimable(
            "too_few_pre_periods",
            f"{who}{T} usable months ({t0} before the start, {t1} after): the cyclic-shift test needs at least "
            f"{need} to reach the {1 - alpha:.0%} level".strip(),
        )
    if np.ptp(y) == 0:
        raise NotEstimable("constant_outcome", f"{who}the outcome is constant over the used months".strip())
    if model == "factor" and np.ptp(cbar) == 0:
        raise NotEstimable("constant_outcome", f"{who}the control mean is constant: no factor to fit".strip())
    if model in SCORE_MODELS and not cbar[:t0].sum() > 0:
        raise NotEstimable("all_zero_outcome", f"{who}the control mean is zero in every month before the start: "
                           "no scale to fit".strip())



def control_profile(pa: PanelArrays, model: str) -> np.ndarray | None:
    """The control series ``model`` puts in place of the never-treated mean, over the panel's
    periods: Poisson ETWFE's month profile for ``poisson``
    (:func:`~mipa.inference.poisson_profile.poisson_month_profile`), None (the raw mean) for the others."""
    return poisson_month_profile(pa) if model == "poisson" else None


def unit_series(pa: PanelArrays, j: int,
                profile: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
    """Treated row ``j``: its outcome and the control series over the used months, ``T1``,
    the number of controls, and the used months (a mask over the panel's periods). The
    control series is the mean of the never-treated rows, or ``profile`` when given
    (:func:`control_profile`; its months without a value are not used)."""
    controls = np.flatnonzero(~pa.treated)
    yc = pa.y[controls]
    obs_c = np.isfinite(yc)
    n_obs_c = obs_c.sum(axis=0)
    obs_j = np.isfinite(pa.y[j])
    if profile is not None:
        used = obs_j & np.isfinite(profile)
        if not used.any():
            raise NotEstimable("no_control_units", f"{pa.units[j]}: no untreated country observed in its months")
        cbar = profile
    else:
        used = obs_j & (n_obs_c > 0)
        if controls.size == 0 or not (n_obs_c[obs_j] > 0).any():
            raise NotEstimable("no_control_units", f"{pa.units[j]}: no never-treated country observed in its months")
        with np.errstate(invalid="ignore", divide="ignore"):
            cbar = np.where(obs_c, yc, 0.0).sum(axis=0) / n_obs_c
    post = pa.periods >= pa.first_treat[j]
    n_controls = int(obs_c[:, used].any(axis=1).sum())
    return pa.y[j, used], cbar[used], int((post & used).sum()), n_controls, used


def conformal_unit(
    pa: PanelArrays, unit: Any, *, profile: np.ndarray | None = None, **options: Unpack[ConformalOptions]
) -> ConformalResult:
    """CWZ 2021 conformal inference for treated ``unit`` against the never-treated units.

    Uses ``unit``'s row and the never-treated rows of ``pa`` (other treated units never
    enter), or for ``model="poisson"`` Poisson ETWFE's month profile of the whole panel
    (``profile``: :func:`control_profile`, computed when not given). ``options``:
    :class:`ConformalOptions`. Raises :class:`~mipa.estimability.NotEstimable` on the data
    conditions of the module docstring.
    """
    o = {**CONFORMAL_DEFAULTS, **options}
    model, statistic, alpha, null, smooth = o["model"], o["statistic"], o["alpha"], o["null"], o["smooth"]
    j = pa.treated_position(unit)
    if profile is None:
        profile = control_profile(pa, model)
    y, cbar, t1, n_controls, used = unit_series(pa, j, profile)
    T = int(used.sum())
    check_series(T, T - t1, t1, alpha, model, y, cbar, f"{unit}: ", statistic)
    est, lo, hi, p0, convex, stats = fit_series(y, cbar, t1, **o)
    se = standard_error_at_estimate(stats) if isinstance(stats, StudentStats) else float("nan")
    return ConformalResult(
        scope=str(unit), estimate=est, ci_low=lo, ci_high=hi, p_value=p0, n_obs=T, n_pre=T - t1, n_post=t1,
        n_clusters=n_controls + 1, n_treated_clusters=1, model=model, statistic=statistic, alpha=float(alpha),
        null=float(null), convex=convex, inference=inference_label(model, statistic, smooth), smooth=int(smooth),
        std_error=se,
    )


def inference_label(model: str, statistic: str = "mean", smooth: int = 0) -> str:
    """``conformal_<model>`` for the post-mean statistic, ``conformal_<model>_<statistic>``
    otherwise; ``_ma<h>`` appended with a smoothed control mean."""
    label = f"conformal_{model}" if statistic == "mean" else f"conformal_{model}_{statistic}"
    return f"{label}_ma{smooth}" if smooth > 0 else label


def _unit_runs(pa: PanelArrays, units: Sequence[Any], options: ConformalOptions) -> list[Callable[[], ConformalResult]]:
    """:func:`conformal_unit` for each of ``units``, ready to run, sharing one control profile."""
    model = options.get("model", CONFORMAL_DEFAULTS["model"])
    profile = control_profile(pa, model) if len(units) else None
    return [partial(conformal_unit, pa, u, profile=profile, **options) for u in units]


def conformal_by_unit(
    pa: PanelArrays, *, units: Sequence[Any] | None = None, **options: Unpack[ConformalOptions]
) -> list[ConformalResult]:
    """:func:`conformal_unit` for every treated unit (or ``units``), in panel order.

    Raises :class:`~mipa.estimability.NotEstimable` for the first unit that cannot be
    run; :func:`conformal_rows` gives a row per unit instead.
    """
    todo = pa.units[pa.treated] if units is None else units
    return [run() for run in _unit_runs(pa, todo, options)]


def conformal_rows(pa: PanelArrays, *, aggregation: str = "group", **options: Unpack[ConformalOptions]) -> pd.DataFrame:
    """One row of :data:`~mipa.estimators.results.ESTIMATE_COLUMNS` per treated unit; a unit
    that cannot be run has a NULL estimate, ``status = 'not_estimable'`` and the reason."""
    o = {**CONFORMAL_DEFAULTS, **options}
    label = inference_label(o["model"], o["statistic"], o["smooth"])
    rows = []
    units = pa.units[pa.treated]
    for u, run in zip(units, _unit_runs(pa, units, options), strict=True):
        res, failure = attempt(run)
        if res is not None:
            rows.append({**res.row(aggregation), "n_post": res.n_post})
        else:
            rows.append({"aggregation": aggregation, "scope": str(u), "n_treated_clusters": 1,
                         "inference": label, **status_columns(failure)})
    return pd.DataFrame(rows).reindex(columns=[*ESTIMATE_COLUMNS, "n_post"])
