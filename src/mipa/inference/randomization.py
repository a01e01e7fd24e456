r"""Randomization (placebo) inference for few treated units: Conley & Taber, Ferman & Pinto.

References
----------
* Conley, T. G. and Taber, C. R. (2011), "Inference with 'difference in differences' with
  a small number of policy changes", REStat 93(1), 113-125 (CT 2011).
* Ferman, B. and Pinto, C. (2019), "Inference in differences-in-differences with few
  treated groups and heteroskedasticity", REStat 101(3), 452-467 (FP 2019).
* Abadie, A., Diamond, A. and Hainmueller, J. (2010), "Synthetic control methods for
  comparative case studies", JASA 105(490), 493-505 (the placebo-in-space rank test).
* Imbens, G. W. and Rubin, D. B. (2015), *Causal Inference*, ch. 5 (inverting a
  randomization test into a confidence set under a constant additive effect).

Idea
----
With ``J`` treated units and ``N0`` never-treated controls, the error of a DiD-type
estimate, ``theta_hat - theta``, is driven by the treated units' own shocks, which a few
treated units cannot estimate (clustered standard errors fail). CT 2011 approximate its
distribution by the estimates that the same estimator produces on controls that were
given the treated units' start periods (placebo assignments): with exchangeable errors
those placebo estimates are draws of ``theta_hat - theta`` under the null.

Everything here works on :class:`PanelArrays` (outcome matrix ``N x T`` with NaN for a
missing cell, and each unit's first treated period) and an *estimator*: any callable
``PanelArrays -> float`` giving the effect of the panel's treated units. Adapters wrap
the project's estimators (:func:`etwfe_estimator`, :func:`twfe_estimator`,
:func:`frame_estimator` for any ``DataFrame -> DidResult``), and fast exact matrix
versions exist for the Monte Carlo (:func:`imputation_estimator` = ETWFE with
not-yet-treated controls, :func:`did_estimator` = ETWFE/CS with never-treated controls,
:func:`twfe_estimator`).

Placebo panels
--------------
* Overall effect (:func:`conley_taber`): the treated units are removed; a placebo
  assignment gives ``J`` distinct controls the treated units' first periods (control
  ``c_k`` takes the start of treated unit ``k``); the estimator runs on that panel of
  ``N0`` units. All ``N0! / (N0-J)!`` assignments when there are at most ``n_placebo``
  of them, else ``n_placebo`` assignments drawn with ``default_rng(seed)``.
* One treated unit ``j`` (:func:`placebo_in_space`): the estimate is the estimator on
  the panel of the controls plus ``j`` alone (the other treated units removed); the
  placebo for control ``c`` is the estimator on the controls with ``c`` given ``j``'s
  start. Every control is used once (``N0`` placebos).

Treated and placebo estimates are thus computed alike (``N0`` vs ``N0 - 1`` or ``N0 - J``
controls, as in CT 2011, whose asymptotics are in ``N0``). A placebo estimate that is not
finite (e.g. a control with no observed month before the start it was given, possible
for ``lead_time_days``) is left out; ``n_placebo`` counts the ones used.

p-value and interval (test inversion under a constant additive effect)
---------------------------------------------------------------------
For ``H0: theta = delta`` the treated units' outcomes net of the effect are
``y - delta * D``; every estimator here is shift-equivariant in that sense
(``theta_hat(y - delta D) = theta_hat - delta``; OLS/imputation/DiD are linear with
``D``'s coefficient, SDID's weights do not use treated post-period outcomes), and the
placebo panels contain no treated unit, so their distribution does not depend on
``delta``. With ``R`` placebo estimates ``theta*_r`` and ``x = theta_hat - delta``:

* ``tails="symmetric"`` (default): ``p(delta) = (1 + #{r: |theta*_r| >= |x|}) / (1 + R)``;
  the set ``{delta: p(delta) > alpha}`` is ``[theta_hat - a_(m), theta_hat + a_(m)]``
  with ``a_(m)`` the ``m``-th largest ``|theta*_r|``, ``m = floor(alpha (1+R) - 1) + 1``.
* ``tails="equal"`` (CT 2011's interval): ``p = min(1, 2 min(P_lo, P_hi))`` with
  ``P_lo = (1 + #{theta*_r <= x}) / (1 + R)``, ``P_hi`` likewise with ``>=``; the set is
  ``[theta_hat - l_(m'), theta_hat - s_(m')]``, ``l``/``s`` the ``m'``-th largest /
  smallest placebo, ``m' = floor(alpha/2 (1+R) - 1) + 1``.

If ``m <= 0`` (too few placebos for the level: ``R + 1 < 1/alpha``, or ``2/alpha`` for
``equal``) the interval is the whole line. ``(1 + #...)/(1 + R)`` counts the observed
statistic among the draws, so the test has level ``alpha`` exactly under exchangeability
when all assignments are used (Abadie et al. 2010).

Heteroskedasticity (FP 2019)
----------------------------
CT 2011 need the treated and control errors to be identically distributed. In a country
panel they are not: a country with large flows has a noisier outcome. FP 2019 rescale
the placebo residuals by an estimate of each unit's error variance. Here
(``rescale=True``): a two-way fixed-effects fit ``y_it = a_i + g_t + e_it`` on the
untreated cells (controls, and treated units before their start; the same fit as
:func:`imputation_estimator`) gives residuals; a unit's scale is
``s_i = sqrt(sum_{t < g} e_it^2 / n)`` over the pre-period window ``t < g`` of the
treated unit ``k`` it represents (``n - 1`` in the denominator for ``k`` itself, whose
effect ``a_k`` is estimated from that window only). A control ``c`` standing in for
``k`` enters its placebo panel as ``a_c + g_t + (s_k / s_c) e_ct`` for every ``t``, so
its noise has the treated unit's scale; the estimator is then rerun as usual. Controls
with ``s_c = 0`` (no variation in the window) cannot be rescaled and are left out of the
placebo draws (recorded in ``n_placebo``). This is FP 2019's correction with the
pre-period residual variance as the variance model (their group-size model
``var ~ 1/M_j`` needs micro-data sizes, which a country-month panel lacks).

The computation is split by responsibility: :mod:`mipa.inference.panel_arrays` (the
panel), :mod:`mipa.inference.twoway` (the exact two-way fit), :mod:`mipa.inference.
panel_estimators` (the estimators and their fast placebo draws) and
:mod:`mipa.inference.placebo_rank` (the p-value, its inversion and the assignments); this
module runs the tests (:func:`conley_taber`, :func:`placebo_in_space`) with the FP 2019
rescaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mipa.estimability import NotEstimable
from mipa.estimators.results import estimate_row
from mipa.inference.panel_arrays import Estimator, PanelArrays
from mipa.inference.panel_estimators import (
    PlaceboImputation,
    did_estimator,
    etwfe_estimator,
    frame_estimator,
    imputation_att,
    imputation_estimator,
    twfe_estimator,
)
from mipa.inference.placebo_rank import DEFAULT_SEED, Tails, invert_rank_test, placebo_assignments, rank_p_value
from mipa.inference.twoway import twoway_residuals

__all__ = [
    "DEFAULT_SEED",
    "INFERENCE",
    "Estimator",
    "PanelArrays",
    "RandomizationResult",
    "Tails",
    "conley_taber",
    "did_estimator",
    "etwfe_estimator",
    "frame_estimator",
    "imputation_att",
    "imputation_estimator",
    "invert_rank_test",
    "placebo_assignments",
    "placebo_in_space",
    "placebo_in_space_all",
    "rank_p_value",
    "twfe_estimator",
    "twoway_residuals",
]

INFERENCE = "randomization_conley_taber"


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class RandomizationResult:
    """A randomization test and interval for the effect of some treated units.

    ``placebo`` holds the placebo estimates (rescaled ones with ``rescale=True``).
    ``std_error`` is NaN: the interval comes from the placebo distribution, not from a
    standard error.
    """

    scope: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    placebo: np.ndarray = field(repr=False)
    n_placebo: int
    exhaustive: bool
    n_obs: int
    n_clusters: int
    n_treated_clusters: int
    tails: str
    rescale: bool
    alpha: float
    null: float = 0.0
    inference: str = INFERENCE

    def row(self, aggregation: str = "simple") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS`."""
        return estimate_row(self, aggregation, std_error=np.nan)


def _result(
    scope: str, estimate: float, placebo: np.ndarray, *, pa: PanelArrays, exhaustive: bool,
    n_treated: int, alpha: float, tails: Tails, rescale: bool, null: float,
) -> RandomizationResult:
    placebo = np.asarray(placebo, dtype=float)
    placebo = placebo[np.isfinite(placebo)]
    lo, hi = invert_rank_test(estimate, placebo, alpha=alpha, tails=tails)
    return RandomizationResult(
        scope=scope,
        estimate=float(estimate),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=rank_p_value(estimate - null, placebo, tails),
        placebo=placebo,
        n_placebo=int(placebo.size),
        exhaustive=exhaustive,
        n_obs=int(np.isfinite(pa.y).sum()),
        n_clusters=int(pa.y.shape[0]),
        n_treated_clusters=int(n_treated),
        tails=tails,
        rescale=rescale,
        alpha=float(alpha),
        null=float(null),
    )


# --------------------------------------------------------------------------- rescaling
@dataclass(frozen=True)
class _Scales:
    """Two-way fit on untreated cells, for the FP 2019 rescaling."""

    a: np.ndarray
    g: np.ndarray
    resid: np.ndarray


def _scales(pa: PanelArrays) -> _Scales:
    """The fit and its residuals; residuals at rounding level (a unit the two-way fit
    reproduces exactly, e.g. one with a single observed month) are set to exactly zero, so
    that unit has no scale and is no FP placebo, whatever the arithmetic's rounding."""
    obs = np.isfinite(pa.y)
    a, g, resid = twoway_residuals(pa, obs & (pa.treatment == 0))
    scale = np.nanmax(np.abs(resid)) if np.isfinite(resid).any() else 0.0
    resid = np.where(np.abs(resid) <= 1e-9 * max(scale, 1.0), 0.0, resid)  # NaN stays NaN
    return _Scales(a=a, g=g, resid=resid)


def _window_sd(resid: np.ndarray, window: np.ndarray, ddof: int) -> np.ndarray:
    """``sqrt(sum_{t in window} e^2 / (n - ddof))`` per row of ``resid``."""
    e = np.where(window[None, :] & np.isfinite(resid), resid, 0.0)
    n = (window[None, :] & np.isfinite(resid)).sum(axis=1) - ddof
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((e**2).sum(axis=1) / n)


def _rescaled_outcome(sc: _Scales, rows: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``a_c + g_t + factor_c * e_ct`` for the given rows (any shape; a period axis is added
    last; NaN stays NaN)."""
    return sc.a[rows][..., None] + sc.g + factor[..., None] * sc.resid[rows]


# --------------------------------------------------------------------------- tests
def _placebo_path(estimator: Estimator, base: PanelArrays) -> PlaceboImputation | None:
    """The estimator's own placebo-draw computation on ``base`` when it has one
    (:func:`imputation_estimator`), else None (each draw re-runs the estimator)."""
    factory = getattr(estimator, "placebo", None)
    return None if factory is None else factory(base)


def _placebo_draws(
    estimator: Estimator, base: PanelArrays, assign: np.ndarray, starts: np.ndarray,
    rescaled: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The placebo estimate of each draw: row ``r`` of ``assign`` (``R x J``) gives the
    controls of ``base`` that take ``starts``. ``rescaled`` (FP 2019): which draws are
    usable and their controls' rescaled outcome rows (``R x J x T``); an unusable draw is
    NaN. The estimator's own placebo path computes all draws in one batch where it can,
    else one at a time; without one, each draw re-runs the estimator on its panel."""
    usable, y_all = rescaled if rescaled is not None else (np.ones(assign.shape[0], dtype=bool), None)
    fast = _placebo_path(estimator, base)
    if fast is not None and fast.batches(assign.shape[1]):
        return np.where(usable, fast.many(assign, starts, y_all), np.nan)
    placebo = np.full(assign.shape[0], np.nan)
    for r in np.flatnonzero(usable):
        row, y_rows = assign[r], None if y_all is None else y_all[r]
        if fast is not None:
            placebo[r] = fast(row, starts, y_rows)
            continue
        ft = np.full(base.y.shape[0], np.inf)
        ft[row] = starts
        y = base.y
        if y_rows is not None:
            y = base.y.copy()
            y[row] = y_rows
        placebo[r] = estimator(replace(base, y=y, first_treat=ft))
    return placebo


def conley_taber(
    pa: PanelArrays,
    estimator: Estimator,
    *,
    n_placebo: int = 999,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    tails: Tails = "symmetric",
    rescale: bool = False,
    null: float = 0.0,
    scope: str = "overall",
) -> RandomizationResult:
    """Overall effect of all treated units with CT 2011 placebo inference.

    ``estimate = estimator(pa)``; the placebo estimates come from the controls-only panel
    with the treated units' starts given to ``J`` controls (:func:`placebo_assignments`);
    p-value for ``H0: theta = null`` and interval by inverting the rank test (module
    docstring). ``rescale=True`` applies the FP 2019 correction. Cost: ``R + 1`` estimator
    calls.
    """
    treated = np.flatnonzero(pa.treated)
    controls = np.flatnonzero(~pa.treated)
    if treated.size == 0:
        raise NotEstimable("no_treated_units", "no treated unit")
    estimate = float(estimator(pa))
    assign, exhaustive = placebo_assignments(controls.size, treated.size, n_placebo=n_placebo, seed=seed)
    base = pa.select(controls)
    starts = pa.first_treat[treated]
    rescaled = None
    if rescale:
        sc = _scales(pa)
        s_treated = np.array(
            [_window_sd(sc.resid[[k]], pa.periods < pa.first_treat[k], ddof=1)[0] for k in treated]
        )
        s_ctrl = np.vstack(
            [_window_sd(sc.resid[controls], pa.periods < pa.first_treat[k], ddof=0) for k in treated]
        )  # J x N0
        # a draw whose control has no pre-period spread gives no placebo
        sd = s_ctrl[np.arange(treated.size)[None, :], assign]  # R x J
        with np.errstate(divide="ignore", invalid="ignore"):
            rescaled = np.all(sd > 0, axis=1), _rescaled_outcome(sc, controls[assign], s_treated[None, :] / sd)
    placebo = _placebo_draws(estimator, base, assign, starts, rescaled)
    return _result(
        scope, estimate, placebo, pa=pa, exhaustive=exhaustive, n_treated=treated.size,
        alpha=alpha, tails=tails, rescale=rescale, null=null,
    )


def placebo_in_space(
    pa: PanelArrays,
    estimator: Estimator,
    unit: Any,
    *,
    alpha: float = 0.05,
    tails: Tails = "symmetric",
    rescale: bool = False,
    null: float = 0.0,
) -> RandomizationResult:
    """Effect of one treated unit, tested against every control placed at its start.

    ``estimate`` = the estimator on the controls plus ``unit``; placebo ``c`` = the
    estimator on the controls with ``c`` given ``unit``'s first period (``N0`` placebos,
    all of them, so ``exhaustive``). p-value = rank of ``|estimate - null|`` among the
    ``|placebo|`` (Abadie et al. 2010, CT 2011); interval by test inversion under a
    constant additive effect. ``rescale=True``: FP 2019 (each placebo control brought to
    ``unit``'s pre-period residual scale). Cost: ``N0 + 1`` estimator calls.
    """
    j = pa.treated_position(unit)
    controls = np.flatnonzero(~pa.treated)
    own = pa.select(np.append(controls, j))
    estimate = float(estimator(own))
    base = pa.select(controls)
    assign = np.arange(controls.size)[:, None]  # each control once, alone
    rescaled = None
    if rescale:
        sc = _scales(own)
        window = pa.periods < pa.first_treat[j]
        s_j = _window_sd(sc.resid[[-1]], window, ddof=1)[0]
        s_c = _window_sd(sc.resid[:-1], window, ddof=0)
        # a control without pre-period spread gives no placebo
        with np.errstate(divide="ignore", invalid="ignore"):
            rescaled = s_c > 0, _rescaled_outcome(sc, assign, (s_j / s_c)[:, None])
    placebo = _placebo_draws(estimator, base, assign, pa.first_treat[[j]], rescaled)
    return _result(
        str(unit), estimate, placebo, pa=own, exhaustive=True, n_treated=1,
        alpha=alpha, tails=tails, rescale=rescale, null=null,
    )


def placebo_in_space_all(
    pa: PanelArrays, estimator: Estimator, **options: Any
) -> list[RandomizationResult]:
    """:func:`placebo_in_space` for every treated unit, in panel order."""
    return [placebo_in_space(pa, estimator, u, **options) for u in pa.units[pa.treated]]
