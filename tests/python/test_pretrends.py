"""Tests of :mod:`mipa.sensitivity.pretrends`: hand-computed Wald/F tests, and the ETWFE
event-study covariance against an independent OLS with explicit dummies (statsmodels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from mipa.estimators.etwfe import etwfe_fit
from mipa.sensitivity.pretrends import EventStudyVcov, etwfe_event_study_vcov, wald_pretrend_test

MPDTA = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mpdta.csv"


def test_wald_diagonal_by_hand() -> None:
    """b = (1, 2), V = diag(1, 4): W = 1 + 1 = 2, P(chi2_2 > 2) = exp(-1);
    F = 1 and P(F_{2,d} > x) = (1 + 2x/d)^(-d/2) with d = G - 1 = 9."""
    t = wald_pretrend_test([1.0, 2.0], np.diag([1.0, 4.0]), n_clusters=10)
    assert t.statistic == pytest.approx(2.0)
    assert t.df == 2
    assert t.p_value == pytest.approx(np.exp(-1.0))
    assert t.f_statistic == pytest.approx(1.0)
    assert t.df_denominator == 9
    assert t.p_value_f == pytest.approx((1 + 2 / 9) ** -4.5)


def test_wald_correlated_by_hand() -> None:
    """V = [[1, .5], [.5, 1]], b = (1, 1): V^-1 = [[1, -.5], [-.5, 1]] / .75, W = 1/.75."""
    t = wald_pretrend_test([1.0, 1.0], np.array([[1.0, 0.5], [0.5, 1.0]]))
    assert t.statistic == pytest.approx(4 / 3)
    assert np.isnan(t.p_value_f)


def test_wald_singular_uses_rank() -> None:
    """A duplicated coefficient adds no information: same W as the single one, df 1."""
    with pytest.warns(RuntimeWarning, match="rank 1"):
        t = wald_pretrend_test([0.5, 0.5], np.array([[0.25, 0.25], [0.25, 0.25]]))
    assert t.df == 1
    assert t.statistic == pytest.approx(1.0)
    assert t.p_value == pytest.approx(stats.chi2.sf(1.0, 1))


def _panel(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, T = 40, 8
    unit = np.repeat(np.arange(n), T)
    period = np.tile(np.arange(1, T + 1), n)
    g = np.select([np.arange(n) < 8, np.arange(n) < 16], [5, 7], 0)[unit]
    y = rng.normal(size=n)[unit] + 0.1 * period + rng.normal(size=n * T) + np.where((g > 0) & (period >= g), 0.5, 0)
    return pd.DataFrame({"u": unit, "t": period, "g": g, "y": y})


def test_event_study_vcov_matches_dummy_ols() -> None:
    """Never-treated ETWFE = OLS of y on unit and period dummies and one dummy per
    cohort x period except g - 1; the event-study vector is the row-weighted average of
    the cells at each event time. Raw cluster sandwich from statsmodels (no small-sample
    correction) times reghdfe's factor (N-1)/(N-K) G/(G-1), K = cells + T."""
    d = _panel()
    es = etwfe_event_study_vcov(d, outcome="y", unit="u", period="t", first_treat="g")
    cells = [(g, t) for g in (5, 7) for t in range(1, 9) if t != g - 1]
    cell_cols = pd.DataFrame({f"c{g}_{t}": ((d.g == g) & (d.t == t)).astype(float) for g, t in cells})
    x = pd.concat([cell_cols, pd.get_dummies(d.u, prefix="u", dtype=float),
                   pd.get_dummies(d.t, prefix="t", drop_first=True, dtype=float)], axis=1)
    fit = sm.OLS(d.y, x).fit(cov_type="cluster", cov_kwds={"groups": d.u, "use_correction": False})
    b = fit.params[cell_cols.columns].to_numpy()
    v = fit.cov_params().loc[cell_cols.columns, cell_cols.columns].to_numpy()
    n_units_per_cohort = {5: 8, 7: 8}
    w = np.zeros((len(es.event_time), len(cells)))
    for i, e in enumerate(es.event_time):
        members = [j for j, (g, t) in enumerate(cells) if t - g == e]
        rows = np.array([n_units_per_cohort[cells[j][0]] for j in members], dtype=float)
        w[i, members] = rows / rows.sum()
    N, G, T = len(d), 40, 8
    q = (N - 1) / (N - (len(cells) + T)) * G / (G - 1)
    np.testing.assert_allclose(es.estimate, w @ b, atol=1e-10)
    np.testing.assert_allclose(es.vcov, q * w @ v @ w.T, rtol=1e-8, atol=1e-14)
    assert es.n_clusters == 40 and es.df == 39
    assert -1 not in es.event_time


def test_event_study_vcov_matches_published_r_etwfe() -> None:
    """R etwfe ``lemp ~ lpop, cgroup = "never"``, ``emfx(type = "event")`` on mpdta (the
    numbers of test_etwfe.py): estimates to 1e-6, standard errors to 1e-6 once rescaled
    from fixest's K (24 coefficients + 16 fixed effects and slopes) to reghdfe's."""
    d = pd.read_csv(MPDTA)
    fit = etwfe_fit(d, outcome="lemp", unit="countyreal", period="year", first_treat="first.treat",
                    covariates=["lpop"], control_group="nevertreated")
    es = EventStudyVcov.from_etwfe(fit)
    n, rank = 2500, fit.ols.rank
    f = np.sqrt((n - (rank + 5)) / (n - (24 + 16)))
    known = {
        -2: (0.0234649547538384, 0.0145314904277398),
        0: (-0.0211467366918433, 0.0113935648352396),
        1: (-0.0533558653415615, 0.0157744281621729),
        2: (-0.141080104628566, 0.0322891808795742),
        3: (-0.107544274673025, 0.0329231688783015),
    }
    sub = es.select(list(known))
    np.testing.assert_allclose(sub.estimate, [b for b, _ in known.values()], rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(sub.vcov)) * f, [se for _, se in known.values()], rtol=1e-6)
    t = es.pretrend_test()
    assert t.event_times == (-4, -3, -2) and t.df == 3 and t.df_denominator == 499
    leads = es.select([-4, -3, -2])
    assert t.statistic == pytest.approx(float(leads.estimate @ np.linalg.solve(leads.vcov, leads.estimate)))
    beta, sigma, npre, npost = es.honest_inputs()
    assert (npre, npost) == (3, 4) and beta.shape == (7,) and sigma.shape == (7, 7)


# --------------------------------------------------------------------------- other estimators' event studies
# (mipa.sensitivity.event_studies and mipa.sensitivity.placebo, issue 7)
from mipa.inference.randomization import PanelArrays  # noqa: E402
from mipa.sensitivity.event_studies import (  # noqa: E402
    csdid_event_study_vcov,
    event_study_table,
    sup_t_critical_value,
    twfe_event_study_vcov,
)
from mipa.sensitivity.placebo import did_lead_vector, placebo_pretrend_test  # noqa: E402


def test_twfe_event_study_matches_dummy_ols() -> None:
    """Dynamic TWFE = OLS of y on unit and period dummies, one dummy per relative period
    in the window except -1, and the two end bins; statsmodels' raw cluster sandwich times
    reghdfe's factor (N-1)/(N-K) G/(G-1), K = regressors + T."""
    d = _panel()
    es = twfe_event_study_vcov(d, outcome="y", unit="u", period="t", first_treat="g", window=(-3, 2))
    e = np.where(d.g > 0, d.t - d.g, np.nan)
    rel = {k: (e == k).astype(float) for k in (-3, -2, 0, 1, 2)}
    rel["lo"] = (e < -3).astype(float)
    rel["hi"] = (e > 2).astype(float)
    dummies = pd.DataFrame(rel)
    x = pd.concat([dummies, pd.get_dummies(d.u, prefix="u", dtype=float),
                   pd.get_dummies(d.t, prefix="t", drop_first=True, dtype=float)], axis=1)
    fit = sm.OLS(d.y, x).fit(cov_type="cluster", cov_kwds={"groups": d.u, "use_correction": False})
    names = [-3, -2, 0, 1, 2]
    N, G, T = len(d), 40, 8
    q = (N - 1) / (N - (len(rel) + T)) * G / (G - 1)
    np.testing.assert_array_equal(es.event_time, names)
    np.testing.assert_allclose(es.estimate, fit.params[names].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(es.vcov, q * fit.cov_params().loc[names, names].to_numpy(), rtol=1e-8, atol=1e-14)
    assert es.settings["small_sample_factor"] == pytest.approx(q)


def test_csdid_event_study_vcov_is_the_two_sample_difference_of_means() -> None:
    """One treated cohort and never-treated controls, no covariates, universal base g - 1:
    the effect at event time e is the DiD of means ``mean_g(D_e) - mean_C(D_e)`` with
    ``D_e = y_{g+e} - y_{g-1}``, and its covariance the two-sample one,
    ``S_g(e, e') / N_g + S_C(e, e') / N_C`` with the 1/N sample covariances (the
    influence-function variance ``Psi'Psi / N^2``), computed here from the raw panel."""
    d = _panel(seed=8)
    d = d[d.g != 7].reset_index(drop=True)  # one treated cohort, g = 5
    es = csdid_event_study_vcov(d, outcome="y", unit="u", period="t", first_treat="g")
    y = d.pivot(index="u", columns="t", values="y")
    treated = d.groupby("u").g.first().to_numpy() == 5
    times = [t for t in range(1, 9) if t != 4]
    diff = y[times].to_numpy() - y[[4]].to_numpy()  # D_e for e = t - 5
    dg, dc = diff[treated], diff[~treated]
    np.testing.assert_array_equal(es.event_time, [t - 5 for t in times])
    np.testing.assert_allclose(es.estimate, dg.mean(axis=0) - dc.mean(axis=0), rtol=0, atol=1e-10)
    cov = np.cov(dg.T, bias=True) / len(dg) + np.cov(dc.T, bias=True) / len(dc)
    np.testing.assert_allclose(es.vcov, cov, rtol=1e-8, atol=1e-14)
    # the covariance is the influence functions' cross-product: off-diagonal terms are real
    corr = es.vcov / np.sqrt(np.outer(np.diag(es.vcov), np.diag(es.vcov)))
    assert np.abs(corr[np.triu_indices_from(corr, 1)]).max() > 0.1


def test_sup_t_critical_value_ignores_rounding_level_changes_of_the_covariance() -> None:
    """A repeated eigenvalue (here a block of equicorrelated event times) leaves the
    eigenvectors free inside its eigenspace: a 1e-13 change of vcov may rotate them. The
    draws go through the symmetric square root, so the simulated value does not move."""
    k = 6
    vcov = np.full((k, k), 0.5) + 0.5 * np.eye(k)
    vcov[:3, 3:] = vcov[3:, :3] = 0.2
    rng = np.random.default_rng(4)
    bump = rng.normal(size=(k, k)) * 1e-13
    moved = vcov + (bump + bump.T) / 2
    base = sup_t_critical_value(vcov, n_draws=20_000, seed=3)
    assert sup_t_critical_value(moved, n_draws=20_000, seed=3) == pytest.approx(base, abs=1e-9)
    # the eigenvector factor is what rotates: its draws differ by far more than rounding
    lam, vec = np.linalg.eigh(vcov)
    lam2, vec2 = np.linalg.eigh(moved)
    g = np.random.default_rng(3).standard_normal((1000, k))
    assert np.abs(g @ (vec * np.sqrt(lam)).T - g @ (vec2 * np.sqrt(lam2)).T).max() > 1e-6


def test_sup_t_critical_value_by_hand() -> None:
    """Independent estimates: P(max|Z| <= c) = (2 Phi(c) - 1)^k, the Sidak value; perfectly
    correlated ones: the pointwise value (never less); t(d) draws widen both. Simulation
    error of the 97.5% quantile with 200,000 draws: about 0.005."""
    k = 10
    sidak = stats.norm.ppf((1 + 0.95 ** (1 / k)) / 2)
    assert sup_t_critical_value(np.eye(k), n_draws=200_000, seed=1) == pytest.approx(sidak, abs=0.02)
    ones = np.ones((k, k))
    assert sup_t_critical_value(ones, n_draws=200_000, seed=1) == pytest.approx(stats.norm.ppf(0.975), abs=0.02)
    assert sup_t_critical_value(ones, df=5, n_draws=200_000, seed=1) == pytest.approx(stats.t.ppf(0.975, 5), abs=0.03)
    assert sup_t_critical_value(np.eye(k), df=5, n_draws=200_000, seed=1) > sidak + 0.3


def test_event_study_table_band_and_reference_row() -> None:
    d = _panel()
    es = etwfe_event_study_vcov(d, outcome="y", unit="u", period="t", first_treat="g")
    table = event_study_table(es, window=(-3, 2), t_df=es.df, seed=3)
    rows = table.rows.set_index("event_time")
    assert list(rows.index) == [-3, -2, -1, 0, 1, 2]
    assert rows.loc[-1, "estimate"] == 0 and np.isnan(rows.loc[-1, "std_error"])
    est = rows.drop(-1)
    assert table.pointwise_critical_value == pytest.approx(stats.t.ppf(0.975, 39))
    assert table.band_critical_value > table.pointwise_critical_value
    np.testing.assert_allclose(est["band_high"] - est["estimate"], table.band_critical_value * est["std_error"])
    assert (est["band_low"] < est["ci_low"]).all() and (est["ci_high"] < est["band_high"]).all()


def _few_treated_panel(seed: int, trend: float = 0.0) -> pd.DataFrame:
    """60 never-treated and 5 treated units (one per start period, as the partner countries),
    40 periods, unit scales from 0.5 to 3 (heteroskedastic like countries of different
    sizes), common period effects; ``trend`` adds a treated-only linear trend before the
    start (a violation of parallel trends)."""
    rng = np.random.default_rng(seed)
    n, T = 65, 40
    unit = np.repeat(np.arange(n), T)
    period = np.tile(np.arange(1, T + 1), n)
    starts = np.array([0] * 60 + [25, 28, 31, 34, 37])
    g = starts[unit]
    scale = np.linspace(0.5, 3.0, n)[rng.permutation(n)]
    y = rng.normal(0, 2, n)[unit] + np.sin(period / 3.0) + scale[unit] * rng.normal(size=n * T)
    pre = (g > 0) & (period < g)
    y = y + np.where(pre, trend * (period - g), 0.0)
    return pd.DataFrame({"u": unit, "t": period, "g": g, "y": y})


def test_did_lead_vector_is_cs_universal_base() -> None:
    d = _few_treated_panel(1)
    pa = PanelArrays.from_frame(d, outcome="y", unit="u", period="t", first_treat="g")
    es = csdid_event_study_vcov(d, outcome="y", unit="u", period="t", first_treat="g")
    leads = list(range(-20, -1))
    np.testing.assert_allclose(did_lead_vector(pa, leads), es.select(leads).estimate, atol=1e-12)


def test_placebo_pretrend_test_keeps_its_size_where_the_clustered_test_fails() -> None:
    """Parallel trends hold, one treated unit per cohort: the clustered Wald test rejects far
    more often than 5% (the treated units' own noise is missing from its covariance); the
    placebo-referenced test does not, and its p-values are not systematically small."""
    kw = dict(outcome="y", unit="u", period="t", first_treat="g")
    leads = list(range(-20, -1))
    placebo_p, cluster_p = [], []
    for seed in range(20):
        d = _few_treated_panel(seed)
        placebo_p.append(placebo_pretrend_test(d, **kw, event_times=leads, n_placebo=199, seed=seed).p_value)
        cluster_p.append(csdid_event_study_vcov(d, **kw).pretrend_test().p_value)
    assert np.mean(np.array(cluster_p) < 0.05) > 0.5
    assert np.mean(np.array(placebo_p) < 0.05) <= 0.15
    assert np.median(placebo_p) > 0.25


def test_placebo_pretrend_test_rejects_a_planted_pretrend() -> None:
    kw = dict(outcome="y", unit="u", period="t", first_treat="g")
    leads = list(range(-20, -1))
    p = [placebo_pretrend_test(_few_treated_panel(seed, trend=0.4), **kw, event_times=leads, n_placebo=199,
                               seed=seed).p_value for seed in range(5)]
    assert max(p) < 0.05
