r"""Joint pre-trend test that holds with one treated country per cohort (placebo reference).

Why: a cluster-robust covariance of the event-study leads is estimated from the clusters'
scores, and a cohort with one treated country contributes no score of its own (its cells
fit its rows exactly). The covariance then holds only the controls' noise, roughly
``1 / N_0`` of the treated country's, and a Wald test on it rejects parallel trends
almost always (Conley & Taber 2011; Ferman & Pinto 2019). This module replaces that
covariance and the chi-square reference by placebo assignments, as
:mod:`mipa.inference.randomization` does for the overall effect.

Lead vector (closed form; the universal-base Callaway & Sant'Anna dynamic effect without
covariates, equal to never-treated ETWFE on a balanced panel)::

    b_g(e) = mean_{i in g, obs} (y_{i,g+e} - y_{i,g-1}) - mean_{c in C, obs} (y_{c,g+e} - y_{c,g-1})
    beta(e) = sum_g pi_g b_g(e) / sum_g pi_g      (pi_g = units in cohort g; cells with
                                                   no observed treated or control unit left out)

with ``C`` the never-treated countries and "obs" the units observed in both months.

Placebo reference (Conley & Taber 2011, "Inference with 'difference in differences' with a
small number of policy changes", REStat 93(1); heteroskedasticity correction of Ferman &
Pinto 2019, REStat 101(3)): the treated countries are removed; a placebo assignment gives
``J`` distinct controls the start months of the ``J`` treated countries; control ``c``
standing in for treated ``k`` enters as ``a_c + l_t + (s_k / s_c) e_ct`` (two-way fixed
effects fit on the untreated cells, :func:`mipa.inference.randomization.twoway_residuals`;
``s`` the noise scale over the months before ``k``'s start, estimated from the residuals'
month-on-month changes so that a pre-trend of ``k`` does not count as noise), so its noise
has ``k``'s scale; ``beta*_r`` is the lead vector of that panel. With ``R`` assignments
and the observed vector ``beta*_0 = beta``:

    Omega = (1 / (R + 1)) sum_{r=0..R} beta*_r beta*_r'     (second moment: mean 0 under H0)
    W_r = beta*_r' Omega^+ beta*_r,   p = (1 + #{r >= 1: W_r >= W_0}) / (1 + R).

``Omega`` is a symmetric function of all ``R + 1`` vectors, so the rank test is exact
when the observed and placebo vectors are exchangeable (the treated countries behave as
rescaled controls before their start); ``Omega`` itself is a few-treated-robust
covariance of the leads. Controls that cannot be rescaled (no variation before a start)
are not drawn as placebos; they stay controls.

Limits. (i) Power is low, as for any pre-test with few treated units (Roth 2022, "Pretest
with caution", AER: Insights 4(3)): on the synthetic panel a planted partner-only trend of
2 laissez-passers a month is found, one of 2 requests a month (noisier) is not. (ii) The
null is "the partners' leads look like those of controls rescaled to the partner's
noise": a violation that every country of a partner's size shares (a common proportional
shock, such as COVID, moves large countries more in levels) is part of the placebo
distribution and goes undetected. Rambachan & Roth's bounds
(:mod:`mipa.sensitivity.honest_did`) do not test for violations but ask how large one
must be to overturn the conclusion.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.inference.randomization import PanelArrays, twoway_residuals

__all__ = ["PlaceboPretrendTest", "did_lead_vector", "placebo_pretrend_test"]


@dataclass(frozen=True)
class PlaceboPretrendTest:
    """``statistic = W_0`` on ``df = rank(Omega)``; ``p_value`` from the placebo ranks."""

    statistic: float
    df: int
    p_value: float
    n_placebo: int
    event_times: tuple[int, ...]
    estimate: np.ndarray
    vcov: np.ndarray  # Omega


def _positions(pa: PanelArrays, g: float, event_times: np.ndarray) -> tuple[int, np.ndarray]:
    """Column of ``g - 1`` and of ``g + e`` (``-1`` when outside the window)."""
    k = int(np.searchsorted(pa.periods, g))
    if k == 0:
        raise ValueError("a unit is treated in the first period: no base period")
    cols = k + event_times
    return k - 1, np.where((cols >= 0) & (cols < pa.periods.size), cols, -1)


def _differences(y: np.ndarray, base: int, cols: np.ndarray) -> np.ndarray:
    """``y[:, col] - y[:, base]`` per event time (NaN outside the window or unobserved)."""
    out = np.full((y.shape[0], cols.size), np.nan)
    ok = cols >= 0
    out[:, ok] = y[:, cols[ok]] - y[:, [base]]
    return out


def did_lead_vector(pa: PanelArrays, event_times: Sequence[int]) -> np.ndarray:
    """``beta(e)`` of the module docstring for the treated units of ``pa``."""
    e = np.asarray(event_times, dtype=np.int64)
    never = ~pa.treated
    num = np.zeros(e.size)
    den = np.zeros(e.size)
    for g in np.unique(pa.first_treat[pa.treated]):
        members = pa.first_treat == g
        base, cols = _positions(pa, g, e)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: cell not estimable
            b = np.nanmean(_differences(pa.y[members], base, cols), axis=0) - np.nanmean(
                _differences(pa.y[never], base, cols), axis=0
            )
        ok = np.isfinite(b)
        num[ok] += members.sum() * b[ok]
        den[ok] += members.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _scales(resid: np.ndarray, pa: PanelArrays, g: float) -> np.ndarray:
    """Noise scale of each row over the months before ``g``: the standard deviation of the
    month-on-month changes of its residuals, over sqrt(2) (= the residual sd for white
    noise). Changes, centred, are blind to a linear trend: a partner's own pre-trend (the
    violation under test) does not inflate its scale and so hide itself."""
    changes = np.diff(resid[:, pa.periods < g], axis=1)
    n = np.isfinite(changes).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(changes, axis=1, ddof=1)
    return np.where(n >= 3, np.sqrt(var / 2), np.nan)


def placebo_pretrend_test(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    event_times: Sequence[int],
    n_placebo: int = 999,
    seed: int = 20260701,
) -> PlaceboPretrendTest:
    """Placebo-referenced Wald test of ``beta(e) = 0`` for ``e`` in ``event_times``.

    ``event_times`` are leads (``e <= -2``); those where the observed vector is not
    estimable are left out, and placebo draws with a non-estimable entry are skipped.
    """
    pa = PanelArrays.from_frame(panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat)
    e = np.asarray(event_times, dtype=np.int64)
    treated = np.flatnonzero(pa.treated)
    controls = np.flatnonzero(~pa.treated)
    observed = did_lead_vector(pa, e)
    keep = np.isfinite(observed)
    e, observed = e[keep], observed[keep]
    if e.size == 0:
        raise NotEstimable("too_few_pre_periods", "no estimable lead in the window")

    # two-way fit on the untreated cells: controls' residuals and every unit's scale
    _, l_t, resid = twoway_residuals(pa, pa.treatment == 0)
    starts = pa.first_treat[treated]
    s_treated = np.array([_scales(resid[[k]], pa, g)[0] for k, g in zip(treated, starts, strict=True)])
    s_controls = np.column_stack([_scales(resid[controls], pa, g) for g in starts])  # N0 x J
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = s_treated[None, :] / s_controls
    usable = np.all(np.isfinite(factor) & (s_controls > 0), axis=1)
    pool = np.flatnonzero(usable)
    if pool.size < treated.size + 1:
        raise NotEstimable("too_few_controls", "too few controls that can stand in for the treated units")

    # per treated unit k: the stand-in differences of every control, and the controls'
    # own differences at k's cohort (for the control means without the stand-ins)
    y_c = pa.y[controls]
    stand_in = np.empty((controls.size, treated.size, e.size))
    own = np.empty((controls.size, treated.size, e.size))
    for j, g in enumerate(starts):
        base, cols = _positions(pa, g, e)
        with np.errstate(invalid="ignore"):
            rescaled = l_t[None, :] + factor[:, [j]] * resid[controls]  # a_c cancels in differences
        stand_in[:, j] = _differences(rescaled, base, cols)
        own[:, j] = _differences(y_c, base, cols)
    own_obs = np.isfinite(own)
    own_val = np.where(own_obs, own, 0.0)
    tot_val = own_val.sum(axis=0)  # J x E
    tot_obs = own_obs.sum(axis=0)

    rng = np.random.default_rng(seed)
    draws = np.stack([rng.choice(pool, size=treated.size, replace=False) for _ in range(n_placebo)])
    cols_j = np.arange(treated.size)
    placebo_diff = stand_in[draws, cols_j[None, :]]  # R x J x E
    # control mean at each stand-in's cohort without the drawn stand-ins
    drawn_val = own_val[draws]  # R x J(draw) x J(cohort of k) x E
    drawn_obs = own_obs[draws]
    ctrl_val = tot_val[None] - drawn_val.sum(axis=1)
    ctrl_obs = tot_obs[None] - drawn_obs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ctrl_mean = np.where(ctrl_obs > 0, ctrl_val / ctrl_obs, np.nan)  # R x J x E
    num = np.zeros((n_placebo, e.size))
    den = np.zeros((n_placebo, e.size))
    for g in np.unique(starts):
        js = np.flatnonzero(starts == g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            b = np.nanmean(placebo_diff[:, js], axis=1) - ctrl_mean[:, js[0]]
        ok = np.isfinite(b)
        num += np.where(ok, js.size * b, 0.0)
        den += np.where(ok, js.size, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        betas = np.where(den > 0, num / den, np.nan)
    betas = betas[np.isfinite(betas).all(axis=1)]
    if betas.shape[0] < 19:
        raise NotEstimable("too_few_controls", "fewer than 19 usable placebo draws: no 5% test possible")

    stacked = np.vstack([observed[None, :], betas])
    omega = stacked.T @ stacked / stacked.shape[0]
    lam, vec = np.linalg.eigh((omega + omega.T) / 2)
    pos = lam > lam.max() * e.size * np.finfo(float).eps * 10
    proj = stacked @ vec[:, pos]
    w = (proj**2 / lam[pos]).sum(axis=1)
    p = (1 + int((w[1:] >= w[0]).sum())) / stacked.shape[0]
    return PlaceboPretrendTest(
        statistic=float(w[0]),
        df=int(pos.sum()),
        p_value=float(p),
        n_placebo=int(betas.shape[0]),
        event_times=tuple(int(x) for x in e),
        estimate=observed,
        vcov=omega,
    )
