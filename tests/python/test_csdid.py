"""Tests of the Callaway & Sant'Anna (2021) estimator against published numbers and known truths.

Published numbers: R ``did`` on its ``mpdta`` data (``/shared/reference/mpdta.csv``).
Known truths: synthetic panels with planted effects; noiseless panels with parallel trends,
on which every ATT(g,t) must equal the planted effect exactly.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mipa.estimators.csdid import ANALYTIC, BOOTSTRAP, callaway_santanna
from mipa.estimators.csdid_aggregate import column_quantiles
from mipa.estimators.results import ATT_GT_COLUMNS, ESTIMATE_COLUMNS, EVENT_STUDY_COLUMNS

# the repository is checked out beside shared/: <parent>/main and <parent>/shared
MPDTA = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mpdta.csv"

POINT_TOL = 5e-7 + 1e-6  # references are given to 6 decimals
SE_TOL = 1e-4


@lru_cache(maxsize=1)
def _read_mpdta() -> pd.DataFrame:
    if not MPDTA.is_file():
        raise FileNotFoundError(
            f"R did's mpdta reference data is missing: expected {MPDTA}. The tests expect "
            "the repository checked out beside shared/ (<parent>/main and <parent>/shared)."
        )
    return pd.read_csv(MPDTA)


def mpdta() -> pd.DataFrame:
    return _read_mpdta().copy()


def run_mpdta(**kwargs):
    opts = dict(outcome="lemp", unit="countyreal", period="year", first_treat="first.treat")
    opts.update(kwargs)
    return callaway_santanna(mpdta(), **opts)


def overall(res, aggregation: str) -> pd.Series:
    return res.overall(aggregation)


def make_panel(
    cohort_sizes: dict[int, int],
    *,
    n_never: int,
    n_periods: int,
    tau=lambda g, t: 2.0,
    noise: float = 0.0,
    seed: int = 0,
    p_missing: float = 0.0,
    anticipation: int = 0,
) -> pd.DataFrame:
    """Panel with unit and period effects (parallel trends) and planted effects tau(g, t).

    Treated units of cohort g get tau(g, t) from period g - anticipation on.
    """
    rng = np.random.default_rng(seed)
    first = [g for g, k in cohort_sizes.items() for _ in range(k)] + [0] * n_never
    n = len(first)
    periods = np.arange(1, n_periods + 1)
    unit_fe = rng.normal(0.0, 3.0, n)
    period_fe = rng.normal(0.0, 2.0, n_periods)
    rows = []
    for i in range(n):
        g = first[i]
        for j, t in enumerate(periods):
            effect = tau(g, t) if g > 0 and t >= g - anticipation else 0.0
            y = unit_fe[i] + period_fe[j] + effect + noise * rng.normal()
            rows.append((i + 1, t, g, y))
    df = pd.DataFrame(rows, columns=["unit", "period", "first_treat", "y"])
    if p_missing:
        df.loc[rng.random(len(df)) < p_missing, "y"] = np.nan
    return df


def run_panel(df: pd.DataFrame, **kwargs):
    opts = dict(outcome="y", unit="unit", period="period", first_treat="first_treat")
    opts.update(kwargs)
    return callaway_santanna(df, **opts)


# ----------------------------------------------------------------------------------------
# published numbers: R did on mpdta (never-treated controls, no covariates, DR)
# ----------------------------------------------------------------------------------------

R_ATT_GT = {
    (2004, 2004): -0.010503,
    (2004, 2005): -0.070423,
    (2004, 2006): -0.137259,
    (2004, 2007): -0.100811,
    (2006, 2006): -0.004595,
    (2007, 2007): -0.026054,
}
R_AGG = {  # aggregation: (estimate, analytic standard error)
    "simple": (-0.039951, 0.012034),
    "group": (-0.031018, 0.012446),
    "dynamic": (-0.077240, 0.019965),
    "calendar": (-0.041700, 0.015972),
}


@pytest.fixture(scope="module")
def mpdta_analytic():
    return run_mpdta(bootstrap=False)


@pytest.fixture(scope="module")
def mpdta_boot():
    return run_mpdta()


@pytest.mark.parametrize(("cell", "ref"), sorted(R_ATT_GT.items()))
def test_mpdta_att_gt_matches_r(mpdta_analytic, cell, ref):
    row = mpdta_analytic.cell(*cell)
    assert abs(row["estimate"] - ref) < POINT_TOL


@pytest.mark.parametrize(("aggregation", "ref"), sorted(R_AGG.items()))
def test_mpdta_aggregations_match_r(mpdta_analytic, aggregation, ref):
    row = overall(mpdta_analytic, aggregation)
    assert abs(row["estimate"] - ref[0]) < POINT_TOL
    assert abs(row["std_error"] - ref[1]) < SE_TOL
    assert row["inference"] == ANALYTIC


def test_mpdta_table_shapes(mpdta_analytic):
    res = mpdta_analytic
    assert list(res.estimates.columns) == ESTIMATE_COLUMNS
    assert list(res.event_study.columns) == EVENT_STUDY_COLUMNS
    assert list(res.att_gt.columns) == ATT_GT_COLUMNS
    assert res.estimator == "csdid" and res.outcome == "lemp"
    assert res.control_group == "nevertreated"
    # 3 cohorts x 4 periods (varying base: every period after the first)
    assert len(res.att_gt) == 12
    est = res.estimates
    assert est[est.scope == "overall"].aggregation.tolist() == [
        "simple", "group", "dynamic", "calendar"]
    assert est[(est.aggregation == "group") & (est.scope != "overall")].scope.tolist() == [
        "2004", "2006", "2007"]
    assert (est.n_clusters == 500).all()
    # mpdta cohorts: 20 (2004), 40 (2006), 131 (2007) counties, 309 never treated
    groups = est[est.aggregation == "group"].set_index("scope")
    assert groups.loc[["2004", "2006", "2007"], "n_treated_clusters"].tolist() == [20, 40, 131]
    assert groups.loc["overall", "n_treated_clusters"] == 191
    # a balanced panel: each 2x2 cell holds its cohort plus the 309 never-treated counties
    assert res.cell(2004, 2005)["n_obs"] == 20 + 309
    assert res.cell(2007, 2004)["n_obs"] == 131 + 309
    assert res.event_study.event_time.tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert res.event_study.band_low.isna().all() and res.event_study.band_high.isna().all()


def test_mpdta_event_study_is_pi_weighted_cells(mpdta_analytic):
    """Event-time effects are the cohort-size weighted means of the R cells (did::aggte)."""
    es = mpdta_analytic.event_study.set_index("event_time")
    # e = 2 and e = 3 are identified only by the 2004 cohort
    assert abs(es.loc[2, "estimate"] - R_ATT_GT[(2004, 2006)]) < POINT_TOL
    assert abs(es.loc[3, "estimate"] - R_ATT_GT[(2004, 2007)]) < POINT_TOL
    # e = 0: sizes 20, 40, 131
    e0 = (20 * R_ATT_GT[(2004, 2004)] + 40 * R_ATT_GT[(2006, 2006)]
          + 131 * R_ATT_GT[(2007, 2007)]) / 191
    assert abs(es.loc[0, "estimate"] - e0) < 3e-6


def test_mpdta_bootstrap_rows(mpdta_analytic, mpdta_boot):
    boot, ana = mpdta_boot, mpdta_analytic
    assert (boot.estimates.inference == BOOTSTRAP).all()
    assert (boot.att_gt.inference == BOOTSTRAP).all()
    assert (boot.event_study.inference == BOOTSTRAP).all()
    # same point estimates
    np.testing.assert_allclose(boot.estimates.estimate, ana.estimates.estimate, atol=1e-12)
    np.testing.assert_allclose(boot.att_gt.estimate, ana.att_gt.estimate, atol=1e-12)
    # the analytic SEs are kept in settings and equal those of a bootstrap=False run
    kept = {(a, s): se for a, s, se in boot.settings["analytic_std_error"]["estimates"]}
    for _, row in ana.estimates.iterrows():
        assert kept[(row.aggregation, row.scope)] == pytest.approx(row.std_error, rel=1e-12)
    kept_es = dict(boot.settings["analytic_std_error"]["event_study"])
    for _, row in ana.event_study.iterrows():
        assert kept_es[row.event_time] == pytest.approx(row.std_error, rel=1e-12)


def test_mpdta_bootstrap_se_close_to_analytic(mpdta_analytic, mpdta_boot):
    """Bootstrap SEs (IQR-based, as R mboot) track the analytic ones.

    The multiplier draws have exactly the analytic variance, but R's IQR-based scale
    overstates it when the draws are platykurtic: the event-time and calendar
    aggregates of mpdta lean on the 20 counties of the 2004 cohort (excess kurtosis
    about -0.3 / -0.4, which inflates the IQR scale by 5-8 % even with 200,000 draws).
    Hence 10 % for the simple and group aggregates, 15 % for dynamic and calendar.
    """
    for aggregation, tol in (("simple", 0.10), ("group", 0.10), ("dynamic", 0.15),
                             ("calendar", 0.15)):
        b = overall(mpdta_boot, aggregation)["std_error"]
        a = overall(mpdta_analytic, aggregation)["std_error"]
        assert abs(b / a - 1) < tol, aggregation
    ratio = mpdta_boot.att_gt.std_error / mpdta_analytic.att_gt.std_error
    assert ratio.between(0.8, 1.2).all()


def test_bootstrap_se_close_to_analytic_on_large_panel():
    """With many units the multiplier draws are close to normal: all SEs within 10 %.

    (4,999 draws keep the Monte Carlo error of the IQR-based SE near 2 %.)
    """
    df = make_panel({4: 100, 6: 100, 8: 100}, n_never=200, n_periods=9, noise=1.0, seed=3)
    boot = run_panel(df, n_boot=4999)
    ana = run_panel(df, bootstrap=False)
    ratio = boot.estimates.std_error / ana.estimates.std_error
    assert ratio.between(0.9, 1.1).all(), ratio.tolist()
    ratio = boot.event_study.std_error / ana.event_study.std_error
    assert ratio.between(0.9, 1.1).all(), ratio.tolist()


def test_uniform_band(mpdta_boot):
    es = mpdta_boot.event_study
    crit = mpdta_boot.settings["uniform_critical_value"]
    z = mpdta_boot.settings["pointwise_critical_value"]
    assert crit > z
    assert (es.band_low < es.ci_low).all() and (es.band_high > es.ci_high).all()
    np.testing.assert_allclose(es.band_high - es.estimate, crit * es.std_error, rtol=1e-12)
    np.testing.assert_allclose(es.estimate - es.band_low, crit * es.std_error, rtol=1e-12)


def test_bootstrap_is_deterministic():
    a = run_mpdta(seed=123, n_boot=499)
    b = run_mpdta(seed=123, n_boot=499)
    c = run_mpdta(seed=124, n_boot=499)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    pd.testing.assert_frame_equal(a.event_study, b.event_study)
    pd.testing.assert_frame_equal(a.att_gt, b.att_gt)
    assert a.settings["uniform_critical_value"] == b.settings["uniform_critical_value"]
    assert not np.allclose(a.estimates.std_error, c.estimates.std_error)


def test_mammen_multipliers_also_track_analytic():
    df = make_panel({4: 100, 6: 100, 8: 100}, n_never=200, n_periods=9, noise=1.0, seed=3)
    boot = run_panel(df, multiplier="mammen", n_boot=4999)
    ana = run_panel(df, bootstrap=False)
    ratio = boot.estimates.std_error / ana.estimates.std_error
    assert ratio.between(0.9, 1.1).all(), ratio.tolist()


# ----------------------------------------------------------------------------------------
# covariates
# ----------------------------------------------------------------------------------------


def test_mpdta_lpop_dr_matches_did_vignette():
    """DR with ``xformla = ~lpop``: the ATT(g,t) printed by R did's introductory vignette
    (att_gt on mpdta with xformla = ~lpop), to the 4 decimals printed there."""
    vignette = [-0.0145, -0.0764, -0.1404, -0.1069, -0.0005, -0.0062, 0.0010, -0.0413,
                0.0267, -0.0046, -0.0284, -0.0288]
    res = run_mpdta(covariates=["lpop"], bootstrap=False)
    np.testing.assert_allclose(res.att_gt.estimate, vignette, atol=5e-5 + 1e-9)
    assert overall(res, "simple")["estimate"] == pytest.approx(-0.0418, abs=5e-5)
    # lpop matters: the covariate run differs from the unconditional one
    assert abs(overall(res, "simple")["estimate"] - R_AGG["simple"][0]) > 1e-3


def test_noise_covariate_leaves_estimates_nearly_unchanged(mpdta_analytic):
    """A covariate independent of treatment and outcomes should barely move DR estimates."""
    df = mpdta()
    rng = np.random.default_rng(0)
    units = df.countyreal.unique()
    df["noise"] = df.countyreal.map(pd.Series(rng.normal(size=len(units)), index=units))
    res = callaway_santanna(df, outcome="lemp", unit="countyreal", period="year",
                            first_treat="first.treat", covariates=["noise"], bootstrap=False)
    for aggregation in R_AGG:
        new, old = overall(res, aggregation), overall(mpdta_analytic, aggregation)
        assert abs(new["estimate"] - old["estimate"]) < 0.3 * old["std_error"]
        assert new["std_error"] == pytest.approx(old["std_error"], rel=0.05)
    assert not np.allclose(res.att_gt.estimate, mpdta_analytic.att_gt.estimate, atol=1e-8)


def _confounded_panel(noise: float = 0.0, seed: int = 5) -> pd.DataFrame:
    """Trends depend on x, and units with high x are more often treated.

    y_it = a_i + b_t + 0.5 * x_i * t + 1.5 * 1{t >= g_i} (+ noise). Parallel trends hold
    only conditional on x; the unconditional DiD is biased upwards.
    """
    rng = np.random.default_rng(seed)
    n, n_t = 300, 8
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(x - 0.5)))
    treated = rng.random(n) < p
    g = np.where(treated, rng.choice([4, 6], size=n), 0)
    a, b = rng.normal(0, 2, n), rng.normal(0, 1, n_t)
    rows = []
    for i in range(n):
        for t in range(1, n_t + 1):
            eff = 1.5 if g[i] and t >= g[i] else 0.0
            y = a[i] + b[t - 1] + 0.5 * x[i] * t + eff + noise * rng.normal()
            rows.append((i, t, g[i], y, x[i]))
    return pd.DataFrame(rows, columns=["unit", "period", "first_treat", "y", "x"])


@pytest.mark.parametrize("method", ["dr", "reg"])
def test_covariates_remove_confounding_exactly(method):
    """Outcome changes are linear in x, so DR and OR recover the planted 1.5 exactly."""
    df = _confounded_panel()
    res = run_panel(df, covariates=["x"], est_method=method, bootstrap=False)
    post = res.att_gt[res.att_gt.event_time >= 0]
    np.testing.assert_allclose(post.estimate, 1.5, atol=1e-8)
    pre = res.att_gt[res.att_gt.event_time < 0]
    np.testing.assert_allclose(pre.estimate, 0.0, atol=1e-8)
    for aggregation in R_AGG:
        assert overall(res, aggregation)["estimate"] == pytest.approx(1.5, abs=1e-8)
    # without x the comparison is biased (treated units have higher x, steeper trends)
    naive = run_panel(df, bootstrap=False)
    assert overall(naive, "simple")["estimate"] > 1.5 + 0.1


def test_ipw_with_covariates_removes_most_confounding():
    df = _confounded_panel(noise=0.5)
    res = run_panel(df, covariates=["x"], est_method="ipw", bootstrap=False)
    naive = run_panel(df, bootstrap=False)
    est, se = overall(res, "simple")["estimate"], overall(res, "simple")["std_error"]
    assert abs(est - 1.5) < 3 * se
    assert abs(est - 1.5) < abs(overall(naive, "simple")["estimate"] - 1.5) / 2


# ----------------------------------------------------------------------------------------
# known truths on synthetic panels
# ----------------------------------------------------------------------------------------


def test_planted_effect_recovered():
    """20 units, 3 cohorts, constant effect +2.0, small noise."""
    df = make_panel({4: 5, 6: 5, 8: 5}, n_never=5, n_periods=10, tau=lambda g, t: 2.0,
                    noise=0.05, seed=11)
    res = run_panel(df)
    for aggregation in R_AGG:
        row = overall(res, aggregation)
        assert row["estimate"] == pytest.approx(2.0, abs=0.05)
        assert row["ci_low"] <= 2.0 <= row["ci_high"]
    groups = res.estimates[(res.estimates.aggregation == "group")
                           & (res.estimates.scope != "overall")]
    assert groups.scope.tolist() == ["4", "6", "8"]
    assert np.allclose(groups.estimate, 2.0, atol=0.08)
    es = res.event_study
    pre, post = es[es.event_time < 0], es[es.event_time >= 0]
    assert np.allclose(pre.estimate, 0.0, atol=0.1)
    assert ((pre.band_low <= 0) & (pre.band_high >= 0)).all()
    assert np.allclose(post.estimate, 2.0, atol=0.1)
    assert (res.estimates.n_clusters == 20).all()
    assert overall(res, "simple")["n_treated_clusters"] == 15


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
def test_noiseless_dynamic_effects_are_exact(control_group, base_period):
    """With parallel trends and no noise every ATT(g,t) equals the planted tau exactly."""
    tau = lambda g, t: 1.0 + 0.5 * (t - g) + 0.1 * g  # noqa: E731
    df = make_panel({4: 3, 6: 4, 9: 2}, n_never=6, n_periods=11, tau=tau, seed=2)
    res = run_panel(df, control_group=control_group, base_period=base_period, bootstrap=False)
    att = res.att_gt
    truth = np.where(att.event_time >= 0, [tau(g, t) for g, t in zip(att.group, att.period)],
                     0.0)
    np.testing.assert_allclose(att.estimate, truth, atol=1e-9)
    # aggregations from the planted effects and cohort sizes (3, 4, 2)
    size = {4: 3, 6: 4, 9: 2}
    post = att[att.event_time >= 0]
    w = post.group.map(size)
    simple = float((w * post.estimate).sum() / w.sum())
    assert overall(res, "simple")["estimate"] == pytest.approx(simple, abs=1e-9)
    theta_g = {g: np.mean([tau(g, t) for t in range(g, 12)]) for g in size}
    group = sum(size[g] * theta_g[g] for g in size) / sum(size.values())
    assert overall(res, "group")["estimate"] == pytest.approx(group, abs=1e-9)
    es = res.event_study.set_index("event_time")
    for e in range(0, 8):
        cohorts = [g for g in size if g + e <= 11]
        val = sum(size[g] * tau(g, g + e) for g in cohorts) / sum(size[g] for g in cohorts)
        assert es.loc[e, "estimate"] == pytest.approx(val, abs=1e-9)
    calendar = np.mean([
        sum(size[g] * tau(g, t) for g in size if g <= t) / sum(size[g] for g in size if g <= t)
        for t in range(4, 12)
    ])
    assert overall(res, "calendar")["estimate"] == pytest.approx(calendar, abs=1e-9)


def test_universal_base_period(mpdta_analytic):
    res = run_mpdta(base_period="universal", bootstrap=False)
    for g in (2004, 2006, 2007):  # the reference cell t = g - 1 is 0 by construction
        ref = res.cell(g, g - 1)
        assert ref["estimate"] == 0.0
        assert np.isnan(ref["std_error"])
    # post-treatment cells use g-1 as base under both conventions: R's published values
    for cell, val in R_ATT_GT.items():
        assert abs(res.cell(*cell)["estimate"] - val) < POINT_TOL
    # the universal design has one more period (the first) per cohort
    assert len(res.att_gt) == 15
    # pre-treatment cells are long differences against 2006: on a balanced panel with the
    # same (never-treated) controls they telescope into the varying-base short differences,
    # ATT_u(2007, 2004) = -[ATT_v(2007, 2005) + ATT_v(2007, 2006)]
    short = sum(mpdta_analytic.cell(2007, t)["estimate"] for t in (2005, 2006))
    assert res.cell(2007, 2004)["estimate"] == pytest.approx(-short, abs=1e-12)
    es = res.event_study.set_index("event_time")
    assert es.loc[-1, "estimate"] == 0.0


def test_not_yet_treated_controls(mpdta_analytic):
    res = run_mpdta(control_group="notyettreated", bootstrap=False)
    assert res.control_group == "notyettreated"
    # in 2004 every other county is untreated: 20 treated + 309 never + 40 + 131 not yet
    assert res.cell(2004, 2004)["n_obs"] == 500
    # in 2006 (base 2003) the 2006 cohort is treated, the 2007 cohort is not yet
    assert res.cell(2004, 2006)["n_obs"] == 20 + 309 + 131
    # the 2007 cohort has no not-yet-treated comparison units: never-treated result (R)
    assert abs(res.cell(2007, 2007)["estimate"] - R_ATT_GT[(2007, 2007)]) < POINT_TOL
    assert res.cell(2004, 2004)["estimate"] != pytest.approx(R_ATT_GT[(2004, 2004)], abs=1e-4)
    assert np.isfinite(res.estimates.estimate).all()
    assert np.isfinite(res.estimates.std_error).all()


def test_anticipation():
    tau = lambda g, t: 3.0  # noqa: E731
    df = make_panel({5: 4, 7: 4}, n_never=6, n_periods=10, tau=tau, anticipation=1, seed=4)
    res = run_panel(df, anticipation=1, bootstrap=False)
    att = res.att_gt
    # post cells compare with g-2, before any reaction: exactly 3. The e = -1 cell (a
    # pre-period short difference g-1 vs g-2, as in R) shows the anticipation, also 3.
    np.testing.assert_allclose(att[att.event_time >= -1].estimate, 3.0, atol=1e-9)
    np.testing.assert_allclose(att[att.event_time < -1].estimate, 0.0, atol=1e-9)
    assert overall(res, "simple")["estimate"] == pytest.approx(3.0, abs=1e-9)
    # ignoring anticipation biases the post effects towards 0
    naive = run_panel(df, bootstrap=False)
    assert overall(naive, "simple")["estimate"] == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------------------------
# unbalanced panels
# ----------------------------------------------------------------------------------------


def test_unbalanced_noiseless_is_exact_and_cellwise_balanced():
    """Random NaN outcomes: each cell compares units seen in both periods, so no bias.

    (Averaging whatever is observed in t and in the base period separately would let the
    unit effects, sd 3, leak into the estimates.)
    """
    tau = lambda g, t: 2.0 + 0.25 * (t - g)  # noqa: E731
    df = make_panel({4: 6, 6: 6, 8: 6}, n_never=10, n_periods=10, tau=tau, seed=8,
                    p_missing=0.2)
    assert df.y.isna().mean() > 0.1
    res = run_panel(df, bootstrap=False)
    att = res.att_gt
    ok = att.estimate.notna()
    truth = np.where(att.event_time >= 0,
                     [tau(g, t) for g, t in zip(att.group, att.period)], 0.0)
    np.testing.assert_allclose(att.estimate[ok], truth[ok], atol=1e-9)
    assert overall(res, "dynamic")["estimate"] == pytest.approx(
        np.mean([2.0 + 0.25 * e for e in range(7)]), abs=1e-9)
    assert overall(res, "group")["estimate"] == pytest.approx(
        np.mean([np.mean([tau(g, t) for t in range(g, 11)]) for g in (4, 6, 8)]), abs=1e-9)
    # n_obs per cell = treated + never-treated units observed in t and in the base period
    wide = df.pivot(index="unit", columns="period", values="y")
    g_of = df.groupby("unit").first_treat.first()
    for _, row in att.sample(8, random_state=0).iterrows():
        g, t = row.group, row.period
        base = g - 1 if t >= g else t - 1
        seen = wide[t].notna() & wide[base].notna()
        expected = int((seen & ((g_of == g) | (g_of == 0))).sum())
        assert row.n_obs == expected
    # NaN rows and absent rows are the same thing
    res_dropped = run_panel(df.dropna(subset=["y"]), bootstrap=False)
    pd.testing.assert_frame_equal(res.estimates, res_dropped.estimates)
    pd.testing.assert_frame_equal(res.att_gt, res_dropped.att_gt)


def test_unbalanced_noisy_panel_gives_sensible_results():
    df = make_panel({4: 8, 6: 8, 8: 8}, n_never=16, n_periods=12, tau=lambda g, t: 2.0,
                    noise=0.3, seed=21, p_missing=0.15)
    balanced = make_panel({4: 8, 6: 8, 8: 8}, n_never=16, n_periods=12,
                          tau=lambda g, t: 2.0, noise=0.3, seed=21)
    res = run_panel(df)
    full = run_panel(balanced)
    for aggregation in R_AGG:
        row = overall(res, aggregation)
        assert np.isfinite(row["estimate"]) and np.isfinite(row["std_error"])
        assert row["ci_low"] <= 2.0 <= row["ci_high"]
        assert row["estimate"] == pytest.approx(2.0, abs=0.3)
        # missing data cost information
        assert row["n_obs"] < overall(full, aggregation)["n_obs"]
    assert overall(res, "simple")["n_obs"] <= df.y.notna().sum()


def test_cell_without_observed_treated_unit_is_nan_and_skipped():
    df = make_panel({4: 1, 6: 3}, n_never=5, n_periods=8, tau=lambda g, t: 1.0, seed=1)
    # the single unit of cohort 4 is unobserved in its base period (3): its post cells are NaN
    df.loc[(df.first_treat == 4) & (df.period == 3), "y"] = np.nan
    with pytest.warns(UserWarning, match="could not be estimated"):
        res = run_panel(df, bootstrap=False)
    att = res.att_gt
    assert att[(att.group == 4) & (att.event_time >= 0)].estimate.isna().all()
    assert att[(att.group == 4) & (att.event_time >= 0)].n_obs.eq(5).all()  # controls only
    # missing: the pre cell t = 3 (base 2) and the post cells t = 4..8 (base 3)
    assert res.settings["n_cells_missing"] == 1 + 5
    assert np.isfinite(res.cell(4, 2)["estimate"])
    # aggregations use the estimable cells (cohort 6): exactly 1.0
    for aggregation in R_AGG:
        assert overall(res, aggregation)["estimate"] == pytest.approx(1.0, abs=1e-9)
    groups = res.estimates[res.estimates.aggregation == "group"].scope.tolist()
    assert groups == ["overall", "6"]


# ----------------------------------------------------------------------------------------
# per-unit cohorts
# ----------------------------------------------------------------------------------------


def test_unit_cohorts_report_units_sharing_a_start_apart():
    df = make_panel({6: 2, 9: 1}, n_never=8, n_periods=12, tau=lambda g, t: 0.0, seed=6)
    # units 1 and 2 start in period 6 with different effects; unit 3 starts in 9
    effect = {1: 1.0, 2: 3.0, 3: -2.0}
    treated_now = df.first_treat.gt(0) & (df.period >= df.first_treat)
    df.loc[treated_now, "y"] += df.loc[treated_now, "unit"].map(effect)
    labels = {1: "EGY", 2: "NGA", 3: "IRQ"}
    res = run_panel(df, cohort="unit", unit_labels=labels, bootstrap=False)
    per_unit = res.estimates[(res.estimates.aggregation == "group")
                             & (res.estimates.scope != "overall")].set_index("scope")
    assert per_unit.index.tolist() == ["EGY", "NGA", "IRQ"]
    assert per_unit.loc["EGY", "estimate"] == pytest.approx(1.0, abs=1e-9)
    assert per_unit.loc["NGA", "estimate"] == pytest.approx(3.0, abs=1e-9)
    assert per_unit.loc["IRQ", "estimate"] == pytest.approx(-2.0, abs=1e-9)
    assert (per_unit.n_treated_clusters == 1).all()
    assert set(res.att_gt.group) == {"EGY", "NGA", "IRQ"}
    assert res.cell("NGA", 7)["estimate"] == pytest.approx(3.0, abs=1e-9)
    assert res.settings["cohorts"] == {"EGY": 6, "NGA": 6, "IRQ": 9}
    # the overall group aggregation weighs units equally: (1 + 3 - 2) / 3
    assert overall(res, "group")["estimate"] == pytest.approx(2.0 / 3.0, abs=1e-9)
    # by cohort of start period, EGY and NGA are pooled
    pooled = run_panel(df, bootstrap=False)
    row = pooled.estimates[(pooled.estimates.aggregation == "group")
                           & (pooled.estimates.scope == "6")]
    assert row.estimate.item() == pytest.approx(2.0, abs=1e-9)


def test_unit_cohorts_not_yet_treated_use_other_treated_units_before_start():
    df = make_panel({6: 2, 9: 1}, n_never=4, n_periods=12, tau=lambda g, t: 1.0, seed=7)
    res = run_panel(df, cohort="unit", control_group="notyettreated", bootstrap=False)
    att = res.att_gt
    assert att.group.unique().tolist() == ["1", "2", "3"]
    # pre-period cell of unit 1 at t = 4 (base 3): controls are 4 never-treated units plus
    # unit 2 (same start, not yet treated) and unit 3
    assert res.cell("1", 4)["n_obs"] == 1 + 4 + 2
    # post cell of unit 1 at t = 7 (base 5): unit 2 is treated by then; unit 3 is not
    assert res.cell("1", 7)["n_obs"] == 1 + 4 + 1
    np.testing.assert_allclose(att[att.event_time >= 0].estimate, 1.0, atol=1e-9)
    noisy = make_panel({6: 2, 9: 1}, n_never=4, n_periods=12, tau=lambda g, t: 1.0, seed=7,
                       noise=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bootstrap run is clean
        boot = run_panel(noisy, cohort="unit", control_group="notyettreated", n_boot=199)
    assert (boot.event_study.band_high >= boot.event_study.ci_high).all()
    assert boot.settings["uniform_critical_value"] > boot.settings["pointwise_critical_value"]


# ----------------------------------------------------------------------------------------
# sample rules and validation
# ----------------------------------------------------------------------------------------


def test_units_treated_in_first_period_are_dropped():
    df = make_panel({1: 2, 5: 3}, n_never=4, n_periods=8, seed=9)
    with pytest.warns(UserWarning, match="already treated in the first period"):
        res = run_panel(df, bootstrap=False)
    assert res.settings["dropped_units"] == ["1", "2"]
    assert (res.estimates.n_clusters == 7).all()
    assert set(res.att_gt.group) == {5}


def test_no_never_treated_units_not_yet_treated():
    df = make_panel({4: 3, 6: 3, 9: 3}, n_never=0, n_periods=10, tau=lambda g, t: 1.0,
                    seed=10)
    with pytest.warns(UserWarning, match="no never-treated units"):
        res = run_panel(df, control_group="notyettreated", bootstrap=False)
    # periods from 9 on are dropped; cohort 9 is a control only
    assert set(res.att_gt.group) == {4, 6}
    assert res.att_gt.period.max() == 8
    post = res.att_gt[res.att_gt.event_time >= 0]
    np.testing.assert_allclose(post.estimate.dropna(), 1.0, atol=1e-9)


def test_input_validation():
    df = make_panel({4: 2}, n_never=2, n_periods=5, seed=0)
    with pytest.raises(ValueError, match="more than one row"):
        run_panel(pd.concat([df, df.iloc[:1]]))
    bad = df.copy()
    bad.loc[bad.index[2], "first_treat"] = 3  # a middle row of unit 1 (first and last agree)
    with pytest.raises(ValueError, match="constant within each unit"):
        run_panel(bad)
    with pytest.raises(ValueError, match="control_group"):
        run_panel(df, control_group="everyone")
    with pytest.raises(KeyError):
        run_panel(df, outcome="missing_column")
    frac = df.assign(period=df.period + 0.5)
    with pytest.raises(ValueError, match="integer-valued"):
        run_panel(frac)


@pytest.mark.parametrize("n_draws", [1, 2, 7, 199, 999, 1000])
def test_column_quantiles_equal_numpy_type_1_quantiles(n_draws: int) -> None:
    rng = np.random.default_rng(n_draws)
    draws = rng.standard_normal((n_draws, 6)).round(1)  # ties included
    draws[rng.integers(n_draws), 4] = np.nan
    probs = [0.05, 0.25, 0.5, 0.75, 0.95]
    expected = np.quantile(draws, probs, axis=0, method="inverted_cdf")
    np.testing.assert_array_equal(column_quantiles(draws, probs), expected)
    assert np.isnan(column_quantiles(draws, probs)[:, 4]).all()
