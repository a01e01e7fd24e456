"""Conformal inference for one treated unit (Chernozhukov, Wüthrich & Zhu 2021).

Exactness under exchangeable noise, agreement of the exact inversion with brute-force
refits, the factor model under a multiplicative common shock, and the documented
not-estimable conditions. Small panels only: the whole file runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipa.estimability import NotEstimable
from mipa.estimators.results import ESTIMATE_COLUMNS
from mipa.inference.conformal import (
    bartlett_lags,
    conformal_by_unit,
    conformal_rows,
    conformal_series,
    conformal_unit,
    moving_average,
    p_values,
)
from mipa.inference.randomization import PanelArrays


def _panel(y: np.ndarray, first_treat: np.ndarray) -> PanelArrays:
    N, T = y.shape
    return PanelArrays(y=y, first_treat=np.asarray(first_treat, dtype=float),
                       units=np.array([f"u{i:02d}" for i in range(N)]), periods=np.arange(1, T + 1))


def _toy(rng: np.random.Generator, *, theta: float, n0: int = 12, T: int = 40, t1: int = 8):
    """Two-way model with iid normal noise; the last row is treated in the last ``t1`` periods."""
    a = rng.normal(0, 2, n0 + 1)
    lam = np.cumsum(rng.normal(0, 1, T))
    y = a[:, None] + lam[None, :] + rng.normal(0, 1, (n0 + 1, T))
    y[-1, T - t1:] += theta
    return y[-1], y[:-1].mean(axis=0), t1


# --------------------------------------------------------------------------- (i) exactness
@pytest.mark.parametrize(("model", "statistic", "reps"), [
    ("did", "mean", 400), ("factor", "mean", 400), ("did", "t", 300), ("factor", "t", 300),
])
def test_exact_coverage_and_size_with_iid_noise(model, statistic, reps):
    """With exchangeable residuals the cyclic-shift test is exact: the level is
    floor(alpha T) / T = 2/40 = 0.05. Coverage of the true effect and the rejection rate of
    a true zero must be within about 2.4 Monte Carlo SE of 95% / 5%."""
    rng = np.random.default_rng(7)
    covered, rejected = [], []
    for _ in range(reps):
        y, cbar, t1 = _toy(rng, theta=2.0)
        _, lo, hi, _, _ = conformal_series(y, cbar, t1, model=model, statistic=statistic)
        covered.append(lo <= 2.0 <= hi)
        y, cbar, t1 = _toy(rng, theta=0.0)
        _, _, _, p0, _ = conformal_series(y, cbar, t1, model=model, statistic=statistic)
        rejected.append(p0 <= 0.05)
    assert 0.92 <= np.mean(covered) <= 0.98, np.mean(covered)
    assert 0.02 <= np.mean(rejected) <= 0.08, np.mean(rejected)


# --------------------------------------------------------------------------- (ii) inversion
def _brute_p(y, cbar, t1, theta, model, statistic, lags=None):
    """p(theta) by refitting the model on y - theta D and shifting the residuals one by one."""
    T = y.size
    t0 = T - t1
    D = (np.arange(T) >= t0).astype(float)
    z = y - theta * D
    if model == "did":
        v = z - cbar
        u = v - v.mean()
    elif model == "ratio":  # the Poisson score over all T periods: sum(z - b cbar) = 0
        u = z - cbar * (z.sum() / cbar.sum())
    else:
        X = np.column_stack([np.ones(T), cbar])
        u = z - X @ np.linalg.lstsq(X, z, rcond=None)[0]

    def lrv(x, L):
        n = x.size
        x = x - x.mean()
        v = x @ x / n
        for lag in range(1, min(L, n - 1) + 1):
            v += 2 * (1 - lag / (L + 1)) * (x[:-lag] @ x[lag:]) / n
        return v * n / (n - 1)

    def stat(w):
        post, pre = w[t0:], w[:t0]
        if statistic == "mean":
            return abs(post.mean())
        if statistic == "s1":
            return np.abs(post).sum() / math.sqrt(t1)
        li, lo_ = (bartlett_lags(t1), bartlett_lags(t0)) if lags is None else (lags, lags)
        return abs(post.mean() - pre.mean()) / math.sqrt(lrv(post, li) / t1 + lrv(pre, lo_) / t0)

    s0 = stat(u)
    shifted = [stat(u[(np.arange(T) + k) % T]) for k in range(T)]
    return np.mean(np.array(shifted) >= s0 - 1e-9 * max(1.0, max(shifted)))


@pytest.mark.parametrize("statistic", ["mean", "t", "s1"])
@pytest.mark.parametrize("model", ["did", "factor", "ratio"])
def test_exact_inversion_matches_brute_force_grid(model, statistic):
    rng = np.random.default_rng(11)
    y, cbar, t1 = _toy(rng, theta=1.0, T=36, t1=9)
    if model == "ratio":  # a scale model needs a mean away from zero
        y, cbar = y + 30, cbar + 30
    y = y + 0.3 * rng.standard_t(3, y.size)  # heavier tails: a less regular p-value function
    est, lo, hi, p0, _ = conformal_series(y, cbar, t1, model=model, statistic=statistic)
    assert np.isfinite(lo) and np.isfinite(hi) and lo < hi
    grid = np.linspace(lo - 0.75 * (hi - lo), hi + 0.75 * (hi - lo), 241)
    brute = np.array([_brute_p(y, cbar, t1, th, model, statistic) for th in grid])
    fast = p_values(y, cbar, t1, grid, model=model, statistic=statistic)
    np.testing.assert_allclose(fast, brute, atol=1e-12)
    accepted = brute > 0.05
    inside = (grid >= lo) & (grid <= hi)
    near = np.minimum(np.abs(grid - lo), np.abs(grid - hi)) < 1e-9 * (1 + abs(hi))
    # the set is {p > alpha}: every accepted grid point lies in [lo, hi], and (for a convex
    # set) every grid point in [lo, hi] is accepted
    assert not (accepted & ~inside & ~near).any()
    assert accepted[inside & ~near].mean() > 0.99
    # the bounds are where p crosses alpha: just outside is rejected
    step = 1e-6 * (hi - lo)
    assert _brute_p(y, cbar, t1, lo - step, model, statistic) <= 0.05
    assert _brute_p(y, cbar, t1, hi + step, model, statistic) <= 0.05
    assert _brute_p(y, cbar, t1, lo + step, model, statistic) > 0.05
    assert _brute_p(y, cbar, t1, hi - step, model, statistic) > 0.05
    assert p0 == pytest.approx(_brute_p(y, cbar, t1, 0.0, model, statistic))


def test_point_estimate_is_ols_with_the_treatment_dummy():
    rng = np.random.default_rng(3)
    y, cbar, t1 = _toy(rng, theta=1.5)
    T = y.size
    D = (np.arange(T) >= T - t1).astype(float)
    est_did = conformal_series(y, cbar, t1, model="did")[0]
    assert est_did == pytest.approx((y - cbar)[D > 0].mean() - (y - cbar)[D == 0].mean())
    X = np.column_stack([np.ones(T), cbar, D])
    est_factor = conformal_series(y, cbar, t1, model="factor")[0]
    assert est_factor == pytest.approx(np.linalg.lstsq(X, y, rcond=None)[0][2])


def test_ratio_point_estimate_is_the_poisson_imputation_effect():
    """``ratio``: the unit's scale is the Poisson QMLE of ``y = b cbar`` on the pre-period
    (statsmodels GLM, log link, offset log cbar), the effect the post mean of ``y - b cbar``."""
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    y, cbar, t1 = _shock_panel(rng, theta=3.0)
    pre = np.arange(y.size) < y.size - t1
    fit = sm.GLM(y[pre], np.ones((pre.sum(), 1)), family=sm.families.Poisson(), offset=np.log(cbar[pre])).fit(
        tol=1e-13)
    expected = (y - np.exp(fit.params[0]) * cbar)[~pre].mean()
    assert conformal_series(y, cbar, t1, model="ratio")[0] == pytest.approx(expected, rel=1e-9)


def test_unbounded_set_is_reported_as_infinite():
    """When the control mean steps exactly where the treatment starts, the factor model
    cannot tell the effect from the factor: every theta0 is accepted, and the set says so
    with infinite bounds (never clipped)."""
    rng = np.random.default_rng(0)
    T, t1 = 40, 10
    D = (np.arange(T) >= T - t1).astype(float)
    cbar = 5 + 3 * D + rng.normal(0, 0.1, T)
    y = 2 + cbar + rng.normal(0, 1, T)
    for statistic in ("mean", "t"):
        _, lo, hi, p0, _ = conformal_series(y, cbar, t1, model="factor", statistic=statistic)
        assert (lo, hi) == (-np.inf, np.inf)
        assert p0 > 0.05
    # the additive model identifies the effect here (bounded set)
    _, lo, hi, _, _ = conformal_series(y, cbar, t1, model="did", statistic="mean")
    assert np.isfinite(lo) and np.isfinite(hi)


# --------------------------------------------------------------------------- (iii) factor model
def _shock_panel(rng, *, theta: float, n0: int = 20, T: int = 60, t1: int = 12, big: float = 12.0):
    """Multiplicative common factor (seasonality and a 40% step up two months before the
    start, like the recovery after COVID); the treated unit is ``big`` times a typical
    control, with the controls' relative noise."""
    t = np.arange(T)
    f = (1 + 0.15 * np.cos(2 * np.pi * t / 12)) * np.where(t >= T - t1 - 2, 1.4, 1.0)
    size = rng.lognormal(0, 0.3, n0)
    yc = size[:, None] * f[None, :] * rng.gamma(20, 1 / 20, (n0, T))
    yj = big * f * rng.gamma(20, 1 / 20, T) + theta * (t >= T - t1)
    return yj, yc.mean(axis=0), t1


@pytest.mark.parametrize("statistic", ["mean", "t"])
def test_scale_models_keep_coverage_under_multiplicative_shock_where_did_does_not(statistic):
    rng = np.random.default_rng(2021)
    cover = {"did": [], "factor": [], "ratio": []}
    for _ in range(200):
        y, cbar, t1 = _shock_panel(rng, theta=3.0)
        for model in cover:
            _, lo, hi, _, _ = conformal_series(y, cbar, t1, model=model, statistic=statistic)
            cover[model].append(lo <= 3.0 <= hi)
    did, factor = np.mean(cover["did"]), np.mean(cover["factor"])
    # measured (seed 2021, 200 panels): factor 0.95 (mean) / 0.98 (t), ratio 0.915 / 0.955,
    # did 0.405 / 0.41: the additive model moves the treated unit by the controls' step, a
    # twelfth of its own; the scale models move it by its own
    assert factor >= 0.90, factor
    assert did <= 0.60, did
    assert factor - did >= 0.3
    assert np.mean(cover["ratio"]) >= 0.89, np.mean(cover["ratio"])
    assert np.mean(cover["ratio"]) - did >= 0.3


# --------------------------------------------------------------------------- panels, rows
def _small_panel(rng, *, N0=15, T=48, starts=(37, 41)):
    y = 5 + np.cumsum(rng.normal(0, 0.3, T))[None, :] + rng.normal(0, 1, (N0 + len(starts), T))
    ft = np.r_[np.full(N0, np.inf), np.array(starts, dtype=float)]
    return _panel(y, ft)


def test_panel_api_rows_and_labels():
    pa = _small_panel(np.random.default_rng(1))
    res = conformal_by_unit(pa, model="factor", statistic="t")
    assert [r.scope for r in res] == list(pa.units[pa.treated])
    r = res[0]
    assert (r.n_pre, r.n_post, r.n_obs) == (36, 12, 48)
    row = r.row("group")
    assert list(row) == ESTIMATE_COLUMNS
    assert row["inference"] == "conformal_factor_t"
    assert row["n_clusters"] == 16 and row["n_treated_clusters"] == 1
    # the studentized statistic's own standard error rides along (the interval is the conformal set)
    assert np.isfinite(row["std_error"]) and row["std_error"] > 0 and row["status"] == "estimated"
    assert conformal_by_unit(pa, model="did", statistic="mean")[0].row()["inference"] == "conformal_did"
    assert conformal_by_unit(pa)[0].row()["inference"] == "conformal_factor_t"  # the defaults
    # only the never-treated units are controls: the other treated unit does not move it
    alone = _panel(pa.y[[*range(15), 15]], pa.first_treat[[*range(15), 15]])
    same = conformal_unit(alone, "u15", model="did")
    assert same.estimate == pytest.approx(conformal_unit(pa, "u15", model="did").estimate)


def test_missing_months_use_the_observed_ones():
    rng = np.random.default_rng(4)
    pa = _small_panel(rng)
    y = pa.y.copy()
    y[15, [3, 10, 40]] = np.nan  # the treated unit is missing three months
    y[0, :] = np.nan  # a control never observed
    y[1, 5] = np.nan
    pa2 = _panel(y, pa.first_treat)
    r = conformal_unit(pa2, "u15", model="did")
    assert (r.n_obs, r.n_pre, r.n_post) == (45, 34, 11)
    assert r.n_clusters == 14 + 1
    used = np.isfinite(y[15])
    cbar = np.nanmean(y[:15], axis=0)[used]
    ref = conformal_series(y[15, used], cbar, 11, model="did")
    assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx(ref[:3])


# --------------------------------------------------------------------------- (iv) not estimable
def test_not_estimable_conditions():
    rng = np.random.default_rng(8)
    pa = _small_panel(rng)
    y = pa.y.copy()
    y[15, 36:] = np.nan  # no month observed from its start on
    with pytest.raises(NotEstimable) as e:
        conformal_unit(_panel(y, pa.first_treat), "u15")
    assert e.value.reason == "no_post_treatment_data"
    y = pa.y.copy()
    y[16, :40] = np.nan  # no month before its start
    with pytest.raises(NotEstimable) as e:
        conformal_unit(_panel(y, pa.first_treat), "u16")
    assert e.value.reason == "no_pre_treatment_data"
    short = _small_panel(rng, T=15, starts=(10, 12))  # 15 shifts < 1/alpha = 20
    with pytest.raises(NotEstimable) as e:
        conformal_unit(short, "u15")
    assert e.value.reason == "too_few_pre_periods"
    # at alpha = 0.1 ten shifts are enough
    assert np.isfinite(conformal_unit(short, "u15", alpha=0.1).estimate)
    last = _small_panel(rng, starts=(48, 41))  # one post month: no post variance for "t"
    with pytest.raises(NotEstimable) as e:
        conformal_unit(last, "u15", statistic="t")
    assert e.value.reason == "too_few_post_periods"
    assert np.isfinite(conformal_unit(last, "u15", statistic="mean").ci_high)
    y = pa.y.copy()
    y[15] = 0.0
    with pytest.raises(NotEstimable) as e:
        conformal_unit(_panel(y, pa.first_treat), "u15")
    assert e.value.reason == "constant_outcome"
    y = pa.y.copy()
    y[:15] = np.nan
    with pytest.raises(NotEstimable) as e:
        conformal_unit(_panel(y, pa.first_treat), "u15")
    assert e.value.reason == "no_control_units"


def test_rows_report_not_estimable_units_and_compute_the_others():
    rng = np.random.default_rng(9)
    pa = _small_panel(rng)
    y = pa.y.copy()
    y[15, 36:] = np.nan
    rows = conformal_rows(_panel(y, pa.first_treat), model="factor", statistic="t")
    assert list(rows.columns) == [*ESTIMATE_COLUMNS, "n_post"]
    bad, good = rows.iloc[0], rows.iloc[1]
    assert bad["status"] == "not_estimable" and bad["reason"] == "no_post_treatment_data"
    assert np.isnan(bad["estimate"]) and bad["inference"] == "conformal_factor_t"
    assert good["status"] == "estimated" and np.isfinite(good["estimate"])


def test_all_units_of_a_large_panel_are_fast():
    """86 x 120 with six treated units: all six well under a second per model and statistic."""
    import time

    rng = np.random.default_rng(12)
    N0, T = 80, 120
    level = rng.lognormal(-1, 1.5, N0 + 6)
    y = rng.poisson(level[:, None] * np.ones(T)).astype(float)
    ft = np.r_[np.full(N0, np.inf), [78, 82, 89, 89, 103, 118]]
    pa = _panel(y, ft)
    for statistic in ("mean", "t"):
        tick = time.perf_counter()
        res = conformal_by_unit(pa, model="factor", statistic=statistic)
        assert time.perf_counter() - tick < 1.0
        assert len(res) == 6


def test_smoothed_control_mean_is_the_moving_average():
    rng = np.random.default_rng(13)
    y, cbar, t1 = _toy(rng, theta=1.0)
    ma = np.array([cbar[max(0, t - 2):t + 3].mean() for t in range(cbar.size)])
    a = conformal_series(y, cbar, t1, model="factor", statistic="t", smooth=2)
    b = conformal_series(y, ma, t1, model="factor", statistic="t")
    assert a == pytest.approx(b)
    pa = _small_panel(rng)
    assert conformal_unit(pa, "u15", smooth=2).row()["inference"] == "conformal_factor_t_ma2"


def _staggered(rng, *, effects=(1.0, 3.0, -2.0), starts=(41, 49, 57), n0=20, T=64, common=0.0):
    """``n0`` controls and one treated row per effect, each with its own start period; a
    common month shock of sd ``common`` hits every row (the units then share noise)."""
    N = n0 + len(effects)
    a = rng.normal(0, 2, N)
    lam = np.cumsum(rng.normal(0, 1, T))
    shock = rng.normal(0, common, T) if common else np.zeros(T)
    y = a[:, None] + lam[None, :] + shock[None, :] + rng.normal(0, 1, (N, T))
    first = np.full(N, np.inf)
    for i, (eff, start) in enumerate(zip(effects, starts)):
        y[n0 + i, start - 1:] += eff
        first[n0 + i] = start
    return _panel(y, first)


def _brute_average_p(pa, theta0, smooth, lags=None):
    """p(theta0) of the average test by refitting every unit at its own null effect
    ``theta_j + theta0 - theta_bar`` and computing the statistic shift by shift in loops."""
    T = pa.periods.size
    controls = ~np.isfinite(pa.first_treat)
    cbar_all = pa.y[controls].mean(axis=0)
    fits = []
    for j in np.flatnonzero(np.isfinite(pa.first_treat)):
        y = pa.y[j]
        cbar = moving_average(cbar_all, smooth)
        D = (pa.periods >= pa.first_treat[j]).astype(float)
        X = np.column_stack([np.ones(T), cbar, D])
        theta_j = np.linalg.lstsq(X, y, rcond=None)[0][2]
        fits.append((y, cbar, D, theta_j))
    w = np.array([f[2].sum() for f in fits]) / sum(f[2].sum() for f in fits)
    theta_bar = float(w @ np.array([f[3] for f in fits]))
    L = bartlett_lags(T) if lags is None else lags
    resid = []
    for y, cbar, D, theta_j in fits:
        z = y - (theta_j + theta0 - theta_bar) * D
        X = np.column_stack([np.ones(T), cbar])
        resid.append(z - X @ np.linalg.lstsq(X, z, rcond=None)[0])

    def stat(k):
        g = np.zeros(T)
        num = 0.0
        for wj, u, (_, _, D, _) in zip(w, resid, fits):
            start, span = int(np.flatnonzero(D)[0]), int(D.sum())
            inside = np.array([((t - start - k) % T) < span for t in range(T)])
            m_in, m_out = u[inside].mean(), u[~inside].mean()
            num += wj * (m_in - m_out)
            g += np.where(inside, wj * (u - m_in) / inside.sum(), -wj * (u - m_out) / (~inside).sum())
        v = sum((1 - abs(lag) / (L + 1)) * sum(g[t] * g[(t + lag) % T] for t in range(T)) for lag in range(-L, L + 1))
        return abs(num) / math.sqrt(v)

    s = np.array([stat(k) for k in range(T)])
    return float(np.mean(s >= s[0] - 1e-9 * max(1.0, s.max())))


def test_average_test_matches_brute_force_refits_and_its_bounds():
    from mipa.inference.conformal import conformal_average

    rng = np.random.default_rng(21)
    pa = _staggered(rng, common=0.5)
    res, left_out = conformal_average(pa, smooth=2)
    assert left_out == []
    for theta0 in (res.estimate - 1.0, res.estimate + 0.3, 0.0, 2.5):
        stats_p = conformal_average(pa, smooth=2, null=theta0)[0].p_value
        assert stats_p == pytest.approx(_brute_average_p(pa, theta0, smooth=2), abs=1e-12)
    # the bounds are where p crosses alpha: just inside accepted, just outside rejected
    eps = 1e-6 * (1 + abs(res.ci_high))
    p = [conformal_average(pa, smooth=2, null=v)[0].p_value
         for v in (res.ci_low + eps, res.ci_high - eps, res.ci_low - eps, res.ci_high + eps)]
    assert p[0] > 0.05 and p[1] > 0.05 and p[2] <= 0.05 and p[3] <= 0.05


def test_average_estimate_is_the_post_month_weighted_mean_of_the_country_rows():
    from mipa.inference.conformal import conformal_average

    pa = _staggered(np.random.default_rng(3))
    rows = conformal_rows(pa, smooth=2)
    res, _ = conformal_average(pa, smooth=2)
    w = rows["n_post"].to_numpy(float) / rows["n_post"].sum()
    assert res.estimate == pytest.approx(float(w @ rows["estimate"].to_numpy(float)), abs=1e-12)
    assert res.n_treated_clusters == 3 and res.ci_low < res.estimate < res.ci_high


def test_average_covers_the_planted_average_of_heterogeneous_effects():
    """Effects 1, 3 and -2 (average over post months, not zero) with a common month shock:
    the interval must cover the planted average about 95% of the time, and a true zero
    average (effects 2, -1, -1 weighted to zero) must be rejected about 5% of the time."""
    from mipa.inference.conformal import conformal_average

    rng = np.random.default_rng(5)
    covered, rejected = [], []
    for _ in range(150):
        pa = _staggered(rng, common=0.7)
        w = np.array([24, 16, 8]) / 48
        res, _ = conformal_average(pa)
        covered.append(res.ci_low <= float(w @ [1.0, 3.0, -2.0]) <= res.ci_high)
        zero = _staggered(rng, effects=(1.0, -1.0, -1.0), common=0.7)
        rejected.append(conformal_average(zero)[0].p_value <= 0.05)
    assert 0.90 <= np.mean(covered) <= 0.995, np.mean(covered)
    assert 0.005 <= np.mean(rejected) <= 0.10, np.mean(rejected)


def test_average_leaves_out_a_unit_without_post_months_and_names_it():
    from mipa.inference.conformal import overall_row

    rng = np.random.default_rng(8)
    pa = _staggered(rng)
    pa.y[-1, 56:] = np.nan  # the last partner (start 57) is never observed after its start
    row = overall_row(pa, smooth=2)
    assert row["status"] == "estimated" and row["reason"] == "cells_left_out"
    assert pa.units[-1] in row["reason_detail"] and row["n_treated_clusters"] == 2
    assert row["inference"] == "conformal_average_factor_t_ma2"
    pa.y[np.isfinite(pa.first_treat)] = np.nan
    assert overall_row(pa)["status"] == "not_estimable"


def test_unit_standard_error_matches_the_spread_of_the_estimate():
    """The studentized standard error tracks the estimate's sampling sd on iid noise."""
    from mipa.inference.conformal import conformal_series, studentized_standard_error

    rng = np.random.default_rng(7)
    T, t1 = 100, 30
    estimates, ses = [], []
    for _ in range(400):
        cbar = 5 + rng.normal(0, 1, T)
        y = 2 + 1.5 * cbar + rng.normal(0, 2, T)
        estimates.append(conformal_series(y, cbar, t1, model="factor", statistic="t")[0])
        ses.append(studentized_standard_error(y, cbar, t1, model="factor"))
    assert np.median(ses) == pytest.approx(np.std(estimates), rel=0.15)


def test_polynomial_roots_are_numpy_roots_of_every_row():
    """The events of the studentized statistic come from one eigenvalue call per degree: the
    same roots as ``np.roots`` row by row, whatever the leading and trailing zeros (a zero
    row has none)."""
    from mipa.inference.conformal_stats import polynomial_roots

    rng = np.random.default_rng(3)
    rows = rng.normal(size=(400, 5))
    rows[rng.random(rows.shape) < 0.25] = 0.0
    rows[0] = 0.0
    rows[1, :3] = 0.0
    rows[2, -3:] = 0.0
    expected = np.concatenate([np.roots(r).astype(complex) for r in rows if r.any()])
    got = polynomial_roots(rows)
    assert got.size == expected.size
    assert np.array_equal(np.sort_complex(got), np.sort_complex(expected))
    assert polynomial_roots(np.zeros((3, 5))).size == 0
