"""Tests of :mod:`mipa.sensitivity.pretrends`: hand-computed Wald/F tests, and the ETWFE
event-study covariance against an independent OLS with explicit dummies (statsmodels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mipa.estimators.etwfe import etwfe
from mipa.sensitivity.pretrends import etwfe_event_study_vcov, wald_pretrend_test

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
    sm = pytest.importorskip("statsmodels.api")
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


def test_event_study_vcov_diagonal_is_etwfe_standard_errors() -> None:
    d = pd.read_csv(MPDTA)
    kw = dict(outcome="lemp", unit="countyreal", period="year", first_treat="first.treat",
              control_group="nevertreated")
    es = etwfe_event_study_vcov(d, **kw)
    table = etwfe(d, **kw).event_study.set_index("event_time")
    np.testing.assert_allclose(es.estimate, table.loc[es.event_time, "estimate"], atol=1e-12)
    np.testing.assert_allclose(np.sqrt(np.diag(es.vcov)), table.loc[es.event_time, "std_error"], rtol=1e-10)
    t = es.pretrend_test()
    assert t.event_times == (-4, -3, -2) and t.df == 3 and t.df_denominator == 499
    sub = es.select([-4, -3, -2])
    assert t.statistic == pytest.approx(float(sub.estimate @ np.linalg.solve(sub.vcov, sub.estimate)))
    beta, sigma, npre, npost = es.honest_inputs()
    assert (npre, npost) == (3, 4) and beta.shape == (7,) and sigma.shape == (7, 7)
