"""The conformal test of the AVERAGE effect with the re-estimated (refit) studentization.

``conformal_average(..., studentize="refit")``: its p-value against a brute-force
computation straight from the definition (refit every unit at its null, shift the
residuals month by month, re-estimate, Bartlett variance of the influence series, in
loops), the bounds of the exact inversion, its coverage and size on small staggered panels
with heterogeneous effects and a common month shock, and its label. Small panels only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipa.inference.conformal import bartlett_lags, conformal_average, moving_average, overall_label, overall_row
from mipa.inference.randomization import PanelArrays


def _staggered(rng, *, effects=(1.0, 3.0, -2.0), starts=(41, 49, 57), n0=20, T=64, common=0.0, ar=0.0):
    """``n0`` controls and one treated row per effect, each its own start; a common month
    shock of sd ``common`` hits every row; ``ar``: AR(1) coefficient of the noise."""
    N = n0 + len(effects)
    a = rng.normal(0, 2, N)
    lam = np.cumsum(rng.normal(0, 1, T))
    shock = rng.normal(0, common, T) if common else np.zeros(T)
    e = rng.normal(0, 1, (N, T))
    for t in range(1, T):
        e[:, t] += ar * e[:, t - 1]
    y = a[:, None] + lam[None, :] + shock[None, :] + e
    first = np.full(N, np.inf)
    for i, (eff, start) in enumerate(zip(effects, starts)):
        y[n0 + i, start - 1:] += eff
        first[n0 + i] = start
    return PanelArrays(y=y, first_treat=first, units=np.array([f"u{i:02d}" for i in range(N)]),
                       periods=np.arange(1, T + 1))


def _brute_refit_p(pa, theta0, smooth, lags=None, model="factor"):
    """p(theta0) from the definition: every unit refitted at its own null effect
    ``theta_j + theta0 - theta_bar``; for each shift k the residuals of ALL units moved by k
    months (cyclically), each unit's effect re-estimated by OLS on ``r_j`` (its treatment
    indicator net of the constant and the control mean), the weighted average of the
    re-estimates over the Bartlett standard error of the summed influence series."""
    T = pa.periods.size
    controls = ~np.isfinite(pa.first_treat)
    cbar = moving_average(pa.y[controls].mean(axis=0), smooth)
    X = np.column_stack([np.ones(T), cbar])

    def residual(z):
        if model == "ratio":  # the Poisson score of y = b cbar over all T periods
            return z - cbar * (z.sum() / cbar.sum())
        return z - X @ np.linalg.lstsq(X, z, rcond=None)[0]

    def effect(v, D):
        """The model's own estimate of the effect on series ``v`` (treatment ``D``)."""
        if model == "ratio":  # Poisson imputation: the scale from the pre-period, the post mean of the gap
            pre = D == 0
            return float((v - cbar * (v[pre].sum() / cbar[pre].sum()))[~pre].mean())
        return float(np.linalg.lstsq(np.column_stack([X, D]), v, rcond=None)[0][2])

    def weights(D):
        """``h`` with ``effect(v, D) = h'v``: the estimator's influence weights."""
        if model == "ratio":
            pre = D == 0
            return D / D.sum() - pre * (cbar[~pre].sum() / D.sum()) / cbar[pre].sum()
        r = D - X @ np.linalg.lstsq(X, D, rcond=None)[0]
        return r / (r @ r)

    units = []
    for j in np.flatnonzero(np.isfinite(pa.first_treat)):
        D = (pa.periods >= pa.first_treat[j]).astype(float)
        units.append((pa.y[j], D, residual(D), effect(pa.y[j], D)))
    w = np.array([u[1].sum() for u in units])
    w = w / w.sum()
    theta_bar = float(w @ np.array([u[3] for u in units]))
    L = bartlett_lags(T) if lags is None else lags
    resid = []
    for y, D, _, theta_j in units:
        resid.append(residual(y - (theta_j + theta0 - theta_bar) * D))

    def stat(k):
        num, g = 0.0, np.zeros(T)
        for wj, u, (_, D, r, _) in zip(w, resid, units):
            v = np.array([u[(t + k) % T] for t in range(T)])
            # re-estimated on the shifted residuals: the estimator applied to r-adjusted data
            # (v is a residual series, so the OLS models' own fit of v leaves it unchanged)
            c = effect(v, D) if model == "ratio" else float(np.linalg.lstsq(r[:, None], v, rcond=None)[0][0])
            num += wj * c
            g += wj * weights(D) * (v - c * r)
        var = sum((1 - abs(lag) / (L + 1)) * sum(g[t] * g[(t + lag) % T] for t in range(T))
                  for lag in range(-L, L + 1))
        return abs(num) / math.sqrt(var)

    s = np.array([stat(k) for k in range(T)])
    return float(np.mean(s >= s[0] - 1e-9 * max(1.0, s.max())))


@pytest.mark.parametrize(("smooth", "lags"), [(2, None), (0, 1)])
def test_refit_average_matches_brute_force_and_its_bounds(smooth, lags):
    rng = np.random.default_rng(31)
    pa = _staggered(rng, common=0.5)
    res, left_out = conformal_average(pa, smooth=smooth, lags=lags, studentize="refit")
    assert left_out == [] and res.statistic == "refit"
    for theta0 in (res.estimate - 1.0, res.estimate + 0.4, 0.0, 2.5, res.ci_high + 0.2):
        p = conformal_average(pa, smooth=smooth, lags=lags, studentize="refit", null=theta0)[0].p_value
        assert p == pytest.approx(_brute_refit_p(pa, theta0, smooth, lags), abs=1e-12), theta0
    # the same estimate as the block statistic; the bounds are where p crosses alpha
    assert res.estimate == pytest.approx(conformal_average(pa, smooth=smooth, lags=lags)[0].estimate, abs=1e-12)
    eps = 1e-6 * (1 + abs(res.ci_high))
    p = [conformal_average(pa, smooth=smooth, lags=lags, studentize="refit", null=v)[0].p_value
         for v in (res.ci_low + eps, res.ci_high - eps, res.ci_low - eps, res.ci_high + eps)]
    assert p[0] > 0.05 and p[1] > 0.05 and p[2] <= 0.05 and p[3] <= 0.05
    assert res.ci_low < res.estimate < res.ci_high


def test_ratio_refit_average_matches_brute_force_and_its_bounds():
    """The ratio (Poisson score) model: re-estimates by Poisson imputation on every shifted
    sample, influence weights of that estimator."""
    rng = np.random.default_rng(37)
    pa = _staggered(rng, common=0.5)
    pa = PanelArrays(y=pa.y + 40, first_treat=pa.first_treat, units=pa.units, periods=pa.periods)
    res, left_out = conformal_average(pa, model="ratio", studentize="refit")
    assert left_out == [] and res.inference == "conformal_average_ratio_refit"
    for theta0 in (res.estimate - 1.0, res.estimate + 0.4, 0.0, 2.5, res.ci_high + 0.2):
        p = conformal_average(pa, model="ratio", studentize="refit", null=theta0)[0].p_value
        assert p == pytest.approx(_brute_refit_p(pa, theta0, 0, model="ratio"), abs=1e-12), theta0
    eps = 1e-6 * (1 + abs(res.ci_high))
    p = [conformal_average(pa, model="ratio", studentize="refit", null=v)[0].p_value
         for v in (res.ci_low + eps, res.ci_high - eps, res.ci_low - eps, res.ci_high + eps)]
    assert p[0] > 0.05 and p[1] > 0.05 and p[2] <= 0.05 and p[3] <= 0.05


def test_refit_average_covers_the_planted_average_and_has_its_size():
    """Effects 1, 3, -2 (post-month weighted average 1.0) with a common month shock and
    AR(1) noise: coverage about 95%; a true zero average (2, -1, -1 weighted to zero)
    rejected about 5% of the time (bounds about 3 Monte Carlo SE wide)."""
    rng = np.random.default_rng(5)
    covered, rejected, widths = [], [], []
    w = np.array([24, 16, 8]) / 48
    for _ in range(150):
        pa = _staggered(rng, common=0.7, ar=0.3)
        res, _ = conformal_average(pa, studentize="refit")
        covered.append(res.ci_low <= float(w @ [1.0, 3.0, -2.0]) <= res.ci_high)
        widths.append(res.ci_high - res.ci_low)
        zero = _staggered(rng, effects=(1.0, -1.0, -1.0), common=0.7, ar=0.3)
        rejected.append(conformal_average(zero, studentize="refit")[0].p_value <= 0.05)
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)
    assert 0.01 <= np.mean(rejected) <= 0.10, np.mean(rejected)
    assert np.isfinite(widths).all()


def test_refit_average_label_and_row():
    rng = np.random.default_rng(8)
    pa = _staggered(rng)
    assert overall_label("factor", 2, "refit") == "conformal_average_factor_refit_ma2"
    assert overall_label("factor", 2) == "conformal_average_factor_t_ma2"  # the default is unchanged
    row = overall_row(pa, smooth=2, studentize="refit")
    assert row["inference"] == "conformal_average_factor_refit_ma2" and row["status"] == "estimated"
    assert row["scope"] == "overall" and row["aggregation"] == "simple"
    assert overall_row(pa, smooth=2)["inference"] == "conformal_average_factor_t_ma2"
    with pytest.raises(ValueError):
        conformal_average(pa, studentize="nope")
