"""Tests of classic TWFE (:func:`mipa.estimators.twfe.twfe`), the yearly model and the
shared least-squares machinery, against independent implementations and known truths.

Independent checks:

* statsmodels ``OLS`` with explicit unit and period dummy columns and its own clustered
  (one- and two-way) and ``hac-groupsum`` (Driscoll-Kraay) covariances, taken without
  statsmodels' small-sample correction (``use_correction=False``) and multiplied by the
  documented Stata factor. statsmodels' own correction counts every dummy column in
  ``K``, which Stata does not for fixed effects nested in the clusters.
* linearmodels ``PanelOLS`` with entity and time effects (debiased=False): its covariances
  carry ``n / (n - df_absorbed)``, which is divided out before applying Stata's factor.
"""

from __future__ import annotations

import linearmodels as lm
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from mipa.estimators import least_squares
from mipa.estimators.results import ESTIMATE_COLUMNS
from mipa.estimators.twfe import YEARLY_COLUMNS, twfe, yearly_twfe

KW = dict(outcome="y", unit="unit", period="period")


def _panel(
    n_units: int = 30, n_periods: int = 24, *, effect: float = 2.0, noise: float = 1.0,
    missing: float = 0.0, seed: int = 1,
) -> pd.DataFrame:
    """Staggered 0/1 treatment; errors with unit, period and unit x period-shock parts."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    start = np.where(np.arange(n_units) < n_units // 3, rng.integers(5, n_periods - 3, n_units), 0)
    d = ((start[u] > 0) & (t >= start[u])).astype(float)
    shock = rng.normal(size=n_periods)
    load = rng.normal(size=n_units)
    y = (
        rng.normal(size=n_units)[u] * 3
        + rng.normal(size=n_periods)[t - 1]
        + effect * d
        + noise * (rng.normal(size=u.size) + shock[t - 1] * load[u])
    )
    x2 = (rng.random(u.size) < 0.3).astype(float)
    df = pd.DataFrame({"unit": u, "period": t, "y": y, "mipa": d, "misa": x2})
    if missing:
        df.loc[rng.random(len(df)) < missing, "y"] = np.nan
    return df


def _dummy_ols(df: pd.DataFrame, treatments: list[str]):
    """statsmodels OLS with explicit unit and period dummies on the observed rows."""
    obs = df.dropna(subset=["y"]).reset_index(drop=True)
    fe = pd.get_dummies(obs[["unit", "period"]].astype(str), drop_first=True, dtype=float)
    X = sm.add_constant(pd.concat([obs[treatments], fe], axis=1))
    return obs, sm.OLS(obs["y"].to_numpy(), X)


def test_standard_errors_match_statsmodels_explicit_dummies() -> None:
    df = _panel(missing=0.15)
    res = twfe(df, vcov="all", **KW)
    obs, model = _dummy_ols(df, ["mipa"])
    n, G, T = len(obs), obs["unit"].nunique(), obs["period"].nunique()
    raw_unit = model.fit(cov_type="cluster", cov_kwds={"groups": obs["unit"].to_numpy(), "use_correction": False})
    raw_two = model.fit(
        cov_type="cluster",
        cov_kwds={"groups": obs[["unit", "period"]].to_numpy(), "use_correction": False},
    )
    lags = int(np.floor(4 * (T / 100) ** (2 / 9)))
    raw_dk = model.fit(
        cov_type="hac-groupsum",
        cov_kwds={"time": obs["period"].to_numpy(), "maxlags": lags, "use_correction": False},
    )
    # Stata factors: reghdfe vce(cluster unit): K = 1 + T; reghdfe two-way: both FE nested,
    # K = 1 + intercept, G_min; xtscc-style Driscoll-Kraay: K = 1 + T, T/(T-1).
    q_unit = (n - 1) / (n - (1 + T)) * G / (G - 1)
    q_two = (n - 1) / (n - 2) * min(G, T) / (min(G, T) - 1)
    q_dk = (n - 1) / (n - (1 + T)) * T / (T - 1)
    est = res.estimates.set_index("inference")
    assert set(est.index) == {"cluster_unit", "twoway_cluster", "driscoll_kraay"}
    assert np.allclose(est["estimate"], raw_unit.params["mipa"], atol=1e-9)
    assert est.loc["cluster_unit", "std_error"] == pytest.approx(np.sqrt(q_unit * raw_unit.cov_params().loc["mipa", "mipa"]), rel=1e-7)
    assert est.loc["twoway_cluster", "std_error"] == pytest.approx(np.sqrt(q_two * raw_two.cov_params().loc["mipa", "mipa"]), rel=1e-7)
    assert est.loc["driscoll_kraay", "std_error"] == pytest.approx(np.sqrt(q_dk * raw_dk.cov_params().loc["mipa", "mipa"]), rel=1e-7)
    assert res.settings["dk_lags"] == lags
    assert est.loc["cluster_unit", "n_clusters"] == G
    assert est.loc["twoway_cluster", "n_clusters"] == min(G, T)
    assert est.loc["driscoll_kraay", "n_clusters"] == T
    # t intervals: G-1 for unit clusters, min(G,T)-1 two-way, T-1 Driscoll-Kraay
    for inf, df_t in (("cluster_unit", G - 1), ("twoway_cluster", min(G, T) - 1), ("driscoll_kraay", T - 1)):
        row = est.loc[inf]
        c = stats.t(df_t).ppf(0.975)
        assert row.ci_high == pytest.approx(row.estimate + c * row.std_error, rel=1e-12)
        assert row.p_value == pytest.approx(2 * stats.t(df_t).sf(abs(row.estimate / row.std_error)), rel=1e-9)


def test_standard_errors_match_linearmodels() -> None:
    df = _panel(missing=0.1, seed=5)
    res = twfe(df, vcov="all", dk_lags=3, **KW)
    obs = df.dropna(subset=["y"]).set_index(["unit", "period"])
    mod = lm.PanelOLS(obs["y"], obs[["mipa"]], entity_effects=True, time_effects=True)
    n, G, T = len(obs), obs.index.get_level_values(0).nunique(), obs.index.get_level_values(1).nunique()
    fits = {
        "cluster_unit": mod.fit(cov_type="clustered", cluster_entity=True, debiased=False),
        "twoway_cluster": mod.fit(cov_type="clustered", cluster_entity=True, cluster_time=True, debiased=False),
        "driscoll_kraay": mod.fit(cov_type="kernel", kernel="bartlett", bandwidth=3, debiased=False),
    }
    q = {
        "cluster_unit": (n - 1) / (n - (1 + T)) * G / (G - 1),
        "twoway_cluster": (n - 1) / (n - 2) * min(G, T) / (min(G, T) - 1),
        "driscoll_kraay": (n - 1) / (n - (1 + T)) * T / (T - 1),
    }
    est = res.estimates.set_index("inference")
    for inf, fit in fits.items():
        absorbed = n - fit.df_resid - 1  # linearmodels' count of absorbed effects
        raw = fit.cov.loc["mipa", "mipa"] * (n - absorbed) / n
        assert est.loc[inf, "estimate"] == pytest.approx(fit.params["mipa"], abs=1e-9)
        assert est.loc[inf, "std_error"] == pytest.approx(np.sqrt(q[inf] * raw), rel=1e-7), inf


def test_planted_effect_is_recovered() -> None:
    exact = twfe(_panel(effect=3.5, noise=0.0), vcov="cluster_unit", **KW)
    assert exact.overall().estimate == pytest.approx(3.5, abs=1e-9)
    big = _panel(n_units=200, n_periods=30, effect=3.5, noise=1.0, seed=2)
    res = twfe(big, vcov="all", **KW)
    for row in res.estimates.itertuples():
        assert abs(row.estimate - 3.5) < 0.15
        assert row.ci_low < 3.5 < row.ci_high


def test_unbalanced_within_transformation_equals_explicit_dummies() -> None:
    """The two-way within transformation on an unbalanced panel = OLS with unit and period dummies."""
    df = _panel(missing=0.35, seed=9)
    obs, model = _dummy_ols(df, ["mipa", "misa"])
    fit_sm = model.fit()
    y = obs["y"].to_numpy()
    u, _ = least_squares.factorize(obs["unit"].to_numpy())
    t, _ = least_squares.factorize(obs["period"].to_numpy())
    fit = least_squares.fit_within(y, obs[["mipa", "misa"]].to_numpy(), [u, t])
    assert fit.fe_sweeps == 1  # the exact two-factor projection (normal equations), not iterated
    assert np.allclose(fit.coef, fit_sm.params[["mipa", "misa"]], atol=1e-9)
    assert np.allclose(fit.resid, fit_sm.resid, atol=1e-8)
    # and the projection itself: demeaned columns are orthogonal to every dummy
    Xt, _ = least_squares.absorb(obs[["mipa"]].to_numpy(), [u, t])
    D = pd.get_dummies(obs[["unit", "period"]].astype(str), dtype=float).to_numpy()
    assert np.abs(D.T @ Xt).max() < 1e-9


def test_two_treatments_give_coefficient_rows() -> None:
    df = _panel(seed=4)
    res = twfe(df, treatments=("misa", "mipa"), vcov="cluster_unit", **KW)
    assert list(res.estimates.columns) == ESTIMATE_COLUMNS
    assert list(res.estimates["aggregation"]) == ["coefficient", "coefficient"]
    assert list(res.estimates["scope"]) == ["misa", "mipa"]
    _, model = _dummy_ols(df, ["misa", "mipa"])
    params = model.fit().params
    est = res.estimates.set_index("scope")["estimate"]
    assert est["misa"] == pytest.approx(params["misa"], abs=1e-9)
    assert est["mipa"] == pytest.approx(params["mipa"], abs=1e-9)
    single = twfe(df, vcov="twoway", **KW)
    assert single.overall().inference == "twoway_cluster"
    assert single.control_group == "all"


def test_yearly_model_is_xtreg_fe_with_year_dummies() -> None:
    """xtreg y i.D i.year, fe vce(cluster country): K = 1 + (T-1) + constant, t(G-1)."""
    df = _panel(n_units=40, n_periods=9, seed=8).rename(columns={"y": "forced"})
    df["total"] = df["forced"] * 2 + 1
    out = yearly_twfe(df, outcomes=["forced", "total"], unit="unit", period="period")
    assert list(out.columns) == YEARLY_COLUMNS
    assert len(out) == 4
    G, T, n = 40, 9, len(df)
    fe = pd.get_dummies(df[["unit", "period"]].astype(str), drop_first=True, dtype=float)
    for treatment in ("misa", "mipa"):
        X = sm.add_constant(pd.concat([df[[treatment]], fe], axis=1))
        raw = sm.OLS(df["forced"].to_numpy(), X).fit(
            cov_type="cluster", cov_kwds={"groups": df["unit"].to_numpy(), "use_correction": False}
        )
        q = (n - 1) / (n - (1 + (T - 1) + 1)) * G / (G - 1)
        row = out[(out["outcome"] == "forced") & (out["treatment"] == treatment)].iloc[0]
        assert row.estimate == pytest.approx(raw.params[treatment], abs=1e-9)
        assert row.std_error == pytest.approx(np.sqrt(q * raw.cov_params().loc[treatment, treatment]), rel=1e-7)
        assert row.n_obs == n and row.n_clusters == G
    # separate regressions: the total (= 2 forced + 1) coefficient doubles
    f = out.set_index(["outcome", "treatment"])
    assert f.loc[("total", "mipa"), "estimate"] == pytest.approx(2 * f.loc[("forced", "mipa"), "estimate"], rel=1e-10)
    joint = yearly_twfe(df, outcomes=["forced"], unit="unit", period="period", separate=False)
    assert list(joint["treatment"]) == ["misa", "mipa"]


def test_wald_ci_reproduces_annex_11_2_stata_output() -> None:
    """Annex 11.2 (xtreg, 130 clusters): 8.565217 (SE 8.706999) -> [-8.661793, 25.79223],
    t = 0.98, P>|t| = 0.327; Stata uses t with G-1 = 129 degrees of freedom."""
    lo, hi, p = least_squares.wald_ci(8.565217, 8.706999, df=129)
    assert float(lo) == pytest.approx(-8.661793, abs=2e-6)
    assert float(hi) == pytest.approx(25.79223, abs=2e-5)
    assert round(float(p), 3) == 0.327


def test_fix_psd_clips_negative_eigenvalues() -> None:
    V = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    fixed, flag = least_squares._fix_psd(V)
    assert flag
    assert np.allclose(fixed, 1.5 * np.ones((2, 2)))  # 3 * v v', v = (1, 1)/sqrt(2)
    same, flag = least_squares._fix_psd(np.eye(2))
    assert not flag and np.allclose(same, np.eye(2))


def test_twoway_non_psd_is_flagged() -> None:
    """With few clusters V_unit + V_period - V_unit&period can be indefinite (the annex's
    lead-time column hit this); the eigenvalue fix and the flag must show up, and the
    result must equal the clipped eigen-decomposition of the unfixed matrix."""
    rng = np.random.default_rng(6)  # a seed known to give an indefinite matrix
    n_units, n_periods = 8, 4
    df = pd.DataFrame(
        {"unit": np.repeat(np.arange(n_units), n_periods), "period": np.tile(np.arange(n_periods), n_units)}
    )
    for col in ("a", "b", "y"):
        df[col] = rng.normal(size=len(df))
    with pytest.warns(RuntimeWarning, match="positive semi-definite"):
        res = twfe(df, treatments=("a", "b"), vcov="twoway", **KW)
    assert res.settings["twoway_psd_fixed"] is True
    u, _ = least_squares.factorize(df["unit"].to_numpy())
    t, _ = least_squares.factorize(df["period"].to_numpy())
    fit = least_squares.fit_within(df["y"].to_numpy(), df[["a", "b"]].to_numpy(), [u, t])
    raw, info = least_squares.cluster_vcov(fit, [u, t], df_a=0, fix_psd=False)
    lam, U = np.linalg.eigh(raw)
    assert lam.min() < 0 and not info.psd_fixed
    fixed = (U * np.clip(lam, 0, None)) @ U.T
    assert np.allclose(res.estimates["std_error"], np.sqrt(np.diag(fixed)), rtol=1e-10)


def test_dk_default_lag_and_dof_counts() -> None:
    assert least_squares.default_dk_lags(120) == 4  # floor(4 * 1.2^(2/9)) = floor(4.16)
    assert least_squares.default_dk_lags(9) == 2
    u = np.repeat(np.arange(4), 3)
    t = np.tile(np.arange(3), 4)
    # reghdfe: unit FE nested in unit clusters -> period effects count in full
    assert least_squares.absorbed_dof([u, t], [u]) == 3
    # both nested -> nothing absorbed (the intercept is added in the factor)
    assert least_squares.absorbed_dof([u, t], [u, t]) == 0
    # no clusters: units + periods - 1 mobility group
    assert least_squares.absorbed_dof([u, t], []) == 4 + 3 - 1


def test_input_validation() -> None:
    df = _panel()
    with pytest.raises(ValueError, match="vcov"):
        twfe(df, vcov="robust", **KW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="more than one row"):
        twfe(pd.concat([df, df.iloc[:1]]), **KW)
    with pytest.raises(KeyError):
        twfe(df, treatments=("nope",), **KW)


def test_three_factor_projection_iterates_to_the_explicit_dummy_projection() -> None:
    """More than two factors: alternating projections, converged to the least-squares
    projection on explicit dummies; two factors: the exact normal-equation projection gives
    the same residuals."""
    rng = np.random.default_rng(5)
    n = 900
    codes = [rng.integers(0, k, n) for k in (30, 12, 4)]
    X = rng.normal(size=(n, 3)) + codes[0][:, None] * 0.2 + codes[1][:, None] * 0.1
    for factors in (codes[:2], codes):
        D = np.column_stack([np.eye(int(c.max()) + 1)[c] for c in factors])
        expected = X - D @ np.linalg.lstsq(D, X, rcond=None)[0]
        got, sweeps = least_squares.absorb(X, factors)
        assert np.abs(got - expected).max() < 1e-9
        assert (sweeps == 1) if len(factors) == 2 else (sweeps > 2)


def test_intersection_codes_are_the_factorized_tuples():
    """The multi-way clustered covariance's intersection clusters: the same codes as pandas'
    sorted factorize of the row tuples, for two and three code columns in either order."""
    from mipa.estimators.least_squares import factorize, intersection_codes

    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 7, 300), rng.integers(0, 5, 300) * 10, rng.integers(0, 3, 300)
    for columns in ([a, b], [b, a], [a, b, c]):
        expected, _ = factorize(pd.MultiIndex.from_arrays(columns).to_flat_index())
        assert np.array_equal(intersection_codes(columns), expected)
