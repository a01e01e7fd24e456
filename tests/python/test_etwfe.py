"""Tests of :func:`mipa.estimators.etwfe.etwfe` against published numbers and known truths.

Reference numbers on R ``did``'s ``mpdta`` (500 US counties, 2003-2007, minimum-wage
cohorts 2004/2006/2007, outcome log teen employment):

* Stata ``jwdid lemp, ivar(countyreal) tvar(year) gvar(first_treat)`` +
  ``estat simple``, and R ``etwfe`` with ``vcov = ~countyreal``: simple ATT and cells.
* R ``etwfe`` package tests (``inst/tinytest/test_emfx.R``): the covariate model
  ``lemp ~ lpop`` with simple / group / calendar / event aggregations, not-yet and
  never-treated controls.
* R ``did::att_gt`` (Callaway & Sant'Anna) never-treated ATT(g, t).

About standard errors: all use the same cluster-robust sandwich; the small-sample
factor ``(N-1)/(N-K) * G/(G-1)`` differs in ``K``. This module follows Stata ``reghdfe``
(hence ``jwdid``): unit fixed effects nested in the county clusters are not counted and
the period effects count ``T = 5``, so ``K = rank + 5``. R ``etwfe`` estimates with
cohort (not unit) fixed effects, which are not nested in counties, so fixest counts
``K_R = coefficients + 8`` (4 cohort + 5 year effects - 1), plus 8 for the
cohort- and year-specific covariate slopes when there is a covariate. The published R
standard errors therefore agree to 1e-4 as they stand, and to 1e-6 once multiplied by
``sqrt((N - K) / (N - K_R))``, which pins the sandwich itself down exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import statsmodels.api as sm

import mipa
from mipa.estimators.etwfe import etwfe, etwfe_fit
from mipa.estimators.results import ATT_GT_COLUMNS, ESTIMATE_COLUMNS, EVENT_STUDY_COLUMNS

MPDTA = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mpdta.csv"
KW = dict(outcome="lemp", unit="countyreal", period="year", first_treat="first.treat")
N_MPDTA = 2500
T_MPDTA = 5


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    if not MPDTA.exists():
        raise FileNotFoundError(
            f"reference data {MPDTA} is missing: the tests expect the repository checked "
            "out next to the shared/ folder (shared/reference/mpdta.csv, R did's mpdta)"
        )
    return pd.read_csv(MPDTA)


def _r_rescale(rank: int, k_r: int) -> float:
    """Factor turning our SE into R etwfe's: sqrt((N - K_ours) / (N - K_R))."""
    return float(np.sqrt((N_MPDTA - (rank + T_MPDTA)) / (N_MPDTA - k_r)))


# --------------------------------------------------------------------------- published
def test_notyet_matches_jwdid_and_etwfe(mpdta: pd.DataFrame) -> None:
    res = etwfe(mpdta, **KW)
    simple = res.overall("simple")
    assert simple.estimate == pytest.approx(-0.0477099, abs=1e-6)
    assert simple.std_error == pytest.approx(0.0132650, abs=1e-4)
    # jwdid runs reghdfe, whose K convention this module follows: exact to the digits.
    assert simple.std_error == pytest.approx(0.0132650, abs=1e-6)
    assert res.cell(2004, 2004).estimate == pytest.approx(-0.0193724, abs=1e-6)
    assert res.cell(2004, 2004).std_error == pytest.approx(0.0223953, abs=1e-4)
    assert res.cell(2004, 2005).estimate == pytest.approx(-0.0783191, abs=1e-6)
    assert res.cell(2007, 2007).estimate == pytest.approx(-0.0431060, abs=1e-6)
    assert res.cell(2007, 2007).std_error == pytest.approx(0.0184423, abs=1e-4)
    # the cell SEs quoted above are R etwfe's (cohort FE, K_R = 7 + 8)
    f = _r_rescale(res.settings["rank"], 7 + 8)
    assert res.cell(2004, 2004).std_error * f == pytest.approx(0.0223953, abs=1e-6)
    assert res.cell(2007, 2007).std_error * f == pytest.approx(0.0184423, abs=1e-6)
    assert simple.n_obs == N_MPDTA and simple.n_clusters == 500
    assert simple.n_treated_clusters == 191
    assert res.settings["rank"] == 7


def test_lpop_covariate_matches_etwfe(mpdta: pd.DataFrame) -> None:
    """R etwfe ``lemp ~ lpop`` (inst/tinytest/test_emfx.R, model m3)."""
    res = etwfe(mpdta, covariates=["lpop"], **KW)
    f = _r_rescale(res.settings["rank"], 14 + 16)
    simple = res.overall("simple")
    assert simple.estimate == pytest.approx(-0.0506270, abs=1e-6)
    assert simple.std_error == pytest.approx(0.0124973, abs=1e-4)
    assert simple.std_error * f == pytest.approx(0.0124972546529842, rel=1e-6)

    est = res.estimates.set_index(["aggregation", "scope"])
    group = {
        "2004": (-0.0876269608795944, 0.0230474099815232),
        "2006": (-0.0212783329358987, 0.0185912208081438),
        "2007": (-0.0459545277368072, 0.0179714452432232),
    }
    calendar = {
        "2004": (-0.0212480022225509, 0.0217240109737018),
        "2005": (-0.0818499992698648, 0.0273693827216135),
        "2006": (-0.0442655912990223, 0.0173733625406716),
        "2007": (-0.0524323095862384, 0.015015825012757),
    }
    for agg, known in (("group", group), ("calendar", calendar)):
        for scope, (b, se) in known.items():
            row = est.loc[(agg, scope)]
            assert row.estimate == pytest.approx(b, abs=1e-6), (agg, scope)
            assert row.std_error == pytest.approx(se, abs=1e-4), (agg, scope)
            assert row.std_error * f == pytest.approx(se, rel=1e-6), (agg, scope)
    event = {
        0: (-0.0332122037837542, 0.0133659635774059),
        1: (-0.0573456479257483, 0.0171496442892364),
        2: (-0.137870386660852, 0.0307883597041053),
        3: (-0.10953945536511, 0.0323152785480507),
    }
    es = res.event_study.set_index("event_time")
    assert list(es.index) == [0, 1, 2, 3]  # not-yet-treated: no leads
    for e, (b, se) in event.items():
        assert es.loc[e, "estimate"] == pytest.approx(b, abs=1e-6)
        assert es.loc[e, "std_error"] * f == pytest.approx(se, rel=1e-6)


def test_nevertreated_equals_callaway_santanna(mpdta: pd.DataFrame) -> None:
    """Post cells = R did's never-treated ATT(g,t) (published to 6 decimals)."""
    res = etwfe(mpdta, control_group="nevertreated", **KW)
    did_att = {
        (2004, 2004): -0.010503,
        (2004, 2005): -0.070423,
        (2004, 2006): -0.137259,
        (2004, 2007): -0.100811,
        (2006, 2006): -0.004595,
        (2007, 2007): -0.026054,
    }
    for (g, t), value in did_att.items():
        # 1e-6, plus the 5e-7 of the published rounding
        assert res.cell(g, t).estimate == pytest.approx(value, abs=1.5e-6), (g, t)

    # and exactly the 2x2 DiD of means with base period g-1, for every post cell
    y = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    g_of = mpdta.groupby("countyreal")["first.treat"].first()
    never = y[g_of == 0]
    for row in res.att_gt.itertuples():
        if row.event_time < 0:
            continue
        treated = y[g_of == row.group]
        b = row.group - 1
        manual = (treated[row.period] - treated[b]).mean() - (never[row.period] - never[b]).mean()
        assert row.estimate == pytest.approx(manual, abs=1e-10)


def test_nevertreated_event_study_matches_etwfe(mpdta: pd.DataFrame) -> None:
    """R etwfe ``lemp ~ lpop, cgroup = "never"``, ``emfx(type = "event")``, e >= -2."""
    res = etwfe(mpdta, covariates=["lpop"], control_group="nevertreated", **KW)
    f = _r_rescale(res.settings["rank"], 24 + 16)
    known = {
        -2: (0.0234649547538384, 0.0145314904277398),
        0: (-0.0211467366918433, 0.0113935648352396),
        1: (-0.0533558653415615, 0.0157744281621729),
        2: (-0.141080104628566, 0.0322891808795742),
        3: (-0.107544274673025, 0.0329231688783015),
    }
    es = res.event_study.set_index("event_time")
    for e, (b, se) in known.items():
        assert es.loc[e, "estimate"] == pytest.approx(b, abs=1e-6)
        assert es.loc[e, "std_error"] == pytest.approx(se, abs=1e-4)
        assert es.loc[e, "std_error"] * f == pytest.approx(se, rel=1e-6)
    ref = es.loc[-1]
    assert ref.estimate == 0 and np.isnan(ref.std_error) and ref.inference == "reference"
    assert list(es.index) == [-4, -3, -2, -1, 0, 1, 2, 3]


def test_table_shapes(mpdta: pd.DataFrame) -> None:
    res = etwfe(mpdta, **KW)
    assert list(res.estimates.columns) == ESTIMATE_COLUMNS
    assert list(res.event_study.columns) == EVENT_STUDY_COLUMNS
    assert list(res.att_gt.columns) == ATT_GT_COLUMNS
    assert res.estimator == "etwfe" and res.control_group == "notyettreated"
    aggs = set(res.estimates["aggregation"])
    assert aggs == {"simple", "group", "dynamic", "calendar"}
    for agg in aggs:
        assert res.overall(agg).std_error > 0
    # t(G-1) intervals, as reghdfe/jwdid report
    row = res.overall()
    from scipy import stats

    c = stats.t(499).ppf(0.975)
    assert row.ci_high - row.estimate == pytest.approx(c * row.std_error, rel=1e-12)


# --------------------------------------------------------------------------- known truths
def _synthetic(
    effects: dict[int, float], starts: dict[int, int], n_units: int = 12, n_periods: int = 10,
    seed: int = 0, noise: float = 0.0,
) -> pd.DataFrame:
    """y = a_i + l_t + tau_i * 1[t >= g_i] (+ noise); units not in ``starts`` never treated."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n_units) * 3
    lam = rng.normal(size=n_periods) * 2
    rows = []
    for i in range(n_units):
        g = starts.get(i, 0)
        for t in range(1, n_periods + 1):
            d = g > 0 and t >= g
            y = a[i] + lam[t - 1] + (effects[i] if d else 0.0) + noise * rng.normal()
            rows.append({"unit": i, "period": t, "g": g, "y": y})
    return pd.DataFrame(rows)


SYN = dict(outcome="y", unit="unit", period="period", first_treat="g")


def test_unit_cohorts_recover_planted_effects_and_report_same_start_apart() -> None:
    # units 2 and 3 share a start (like Egypt and Nigeria) but have different effects
    starts = {0: 4, 1: 6, 2: 7, 3: 7, 4: 9}
    effects = {0: 5.0, 1: -2.0, 2: 1.5, 3: 4.0, 4: 0.5}
    labels = {0: "MAR", 1: "TUR", 2: "EGY", 3: "NGA", 4: "IRQ"}
    df = _synthetic(effects, starts)
    for cg in ("notyettreated", "nevertreated"):
        res = etwfe(df, cohort="unit", unit_labels=labels, control_group=cg, **SYN)
        grp = res.estimates[res.estimates["aggregation"] == "group"].set_index("scope")
        for i, lab in labels.items():
            assert grp.loc[lab, "estimate"] == pytest.approx(effects[i], abs=1e-9)
            assert grp.loc[lab, "n_treated_clusters"] == 1
        assert grp.loc["overall", "estimate"] == pytest.approx(np.mean(list(effects.values())), abs=1e-9)
        post = res.att_gt[res.att_gt["event_time"] >= 0]
        assert set(post["group"]) == set(labels.values())
        pre = res.att_gt[res.att_gt["event_time"] < 0]
        assert (cg == "nevertreated") == (len(pre) > 0)
        assert np.allclose(pre["estimate"], 0, atol=1e-9)
        # simple = average over treated post rows of the planted effect
        n_post = {i: 10 - g + 1 for i, g in starts.items()}
        truth = sum(effects[i] * n for i, n in n_post.items()) / sum(n_post.values())
        assert res.overall().estimate == pytest.approx(truth, abs=1e-9)


def test_unit_cohorts_average_to_group_cohorts() -> None:
    """Without covariates the unit cells of a cohort average to its group cell, so the
    observation-weighted simple effect is the same for both cohort definitions."""
    starts = {0: 4, 1: 4, 2: 7, 3: 7, 4: 7}
    df = _synthetic({i: float(i) for i in range(5)}, starts, noise=1.0, seed=3)
    by_group = etwfe(df, **SYN)
    by_unit = etwfe(df, cohort="unit", **SYN)
    assert by_unit.overall().estimate == pytest.approx(by_group.overall().estimate, abs=1e-10)
    for (g, t), cell in by_group.att_gt.set_index(["group", "period"]).iterrows():
        members = [i for i, s in starts.items() if s == g]
        unit_cells = by_unit.att_gt[
            by_unit.att_gt["group"].isin([str(i) for i in members]) & (by_unit.att_gt["period"] == t)
        ]
        assert unit_cells["estimate"].mean() == pytest.approx(cell.estimate, abs=1e-10)


def test_unbalanced_panel_equals_explicit_dummy_ols() -> None:
    """NaN outcomes dropped; cells and clustered SEs equal OLS with explicit unit,
    period and cell dummies on the observed rows (statsmodels, raw cluster sandwich
    times the reghdfe factor), and weights count observed rows."""
    starts = {0: 4, 1: 4, 2: 6, 3: 8}
    df = _synthetic({0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}, starts, n_units=15, noise=1.0, seed=7)
    rng = np.random.default_rng(11)
    df.loc[rng.random(len(df)) < 0.25, "y"] = np.nan
    res = etwfe(df, **SYN)
    assert res.settings["dropped_missing_rows"] == int(df["y"].isna().sum())
    assert res.settings["fe_sweeps"] == 1  # two factors: the exact projection, one pass even unbalanced

    obs = df.dropna(subset=["y"]).reset_index(drop=True)
    cell_key = np.where(
        (obs["g"] > 0) & (obs["period"] >= obs["g"]),
        obs["g"].astype(str) + "_" + obs["period"].astype(str),
        "none",
    )
    cells = pd.get_dummies(pd.Series(cell_key), dtype=float).drop(columns="none")
    fe = pd.get_dummies(obs[["unit", "period"]].astype(str), drop_first=True, dtype=float)
    X = sm.add_constant(pd.concat([cells, fe], axis=1))
    fit = sm.OLS(obs["y"].to_numpy(), X).fit(
        cov_type="cluster", cov_kwds={"groups": obs["unit"].to_numpy(), "use_correction": False}
    )
    n, G, T = len(obs), obs["unit"].nunique(), obs["period"].nunique()
    k = cells.shape[1] + T  # reghdfe: cells + all period effects (unit FE nested)
    q = (n - 1) / (n - k) * G / (G - 1)
    for row in res.att_gt.itertuples():
        name = f"{row.group}_{row.period}"
        assert row.estimate == pytest.approx(fit.params[name], abs=1e-8)
        assert row.std_error == pytest.approx(np.sqrt(q * fit.cov_params().loc[name, name]), rel=1e-6)
        assert row.n_obs == int((cell_key == name).sum())
    # simple = observation-weighted cells = the explicit-dummy linear combination
    w = cells.sum().to_numpy()
    w = w / w.sum()
    assert res.overall().estimate == pytest.approx(w @ fit.params[cells.columns].to_numpy(), abs=1e-8)
    V = fit.cov_params().loc[cells.columns, cells.columns].to_numpy() * q
    assert res.overall().std_error == pytest.approx(np.sqrt(w @ V @ w), rel=1e-6)
    assert res.overall().n_obs == n


def test_notyet_without_never_treated_uses_last_cohort_as_control() -> None:
    starts = {i: (5 if i < 6 else 8) for i in range(12)}
    df = _synthetic({i: 2.0 for i in range(12)}, starts)
    res = etwfe(df, **SYN)
    assert res.settings["last_cohort_as_control"] == 8
    assert set(res.att_gt["group"]) == {5}
    assert res.att_gt["period"].max() == 7  # rows from the last start on are dropped
    assert np.allclose(res.att_gt["estimate"], 2.0, atol=1e-9)
    with pytest.raises(ValueError, match="never-treated"):
        etwfe(df, control_group="nevertreated", **SYN)


def test_always_treated_units_are_dropped() -> None:
    starts = {0: 1, 1: 5, 2: 6}
    df = _synthetic({0: 9.0, 1: 1.0, 2: 1.0}, starts)
    res = etwfe(df, **SYN)
    assert res.settings["dropped_always_treated_units"] == [0]
    assert res.overall().estimate == pytest.approx(1.0, abs=1e-9)


def test_input_validation() -> None:
    df = _synthetic({0: 1.0}, {0: 5})
    with pytest.raises(ValueError, match="more than one row"):
        etwfe(pd.concat([df, df.iloc[:1]]), **SYN)
    bad = df.copy()
    bad.loc[0, "g"] = 3
    with pytest.raises(ValueError, match="constant within"):
        etwfe(bad, **SYN)
    with pytest.raises(ValueError, match="control_group"):
        etwfe(df, control_group="all", **SYN)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        etwfe(df, covariates=["nope"], **SYN)


# --------------------------------------------------------------------------- cell covariance
@pytest.mark.parametrize("control_group", ["notyettreated", "nevertreated"])
def test_cell_vcov_and_aggregates_match_pyfixest_feols(control_group) -> None:
    """The fit's cell covariance is pyfixest's: ``feols`` of y on one dummy per cell with
    unit and period effects, CRV1 by unit, ``ssc(k_fixef="nonnested")`` (the unit effects
    nested in the clusters are not counted: reghdfe's K); an unbalanced panel. The API's
    aggregates are ``w'b`` with ``w'Vw`` for weights built here from the row counts."""
    starts = {i: (4 if i < 5 else 6 if i < 9 else 8 if i < 12 else 0) for i in range(30)}
    df = _synthetic({i: 0.5 + 0.1 * i for i in range(30)}, starts, n_units=30, noise=1.0, seed=21)
    df.loc[np.random.default_rng(4).random(len(df)) < 0.2, "y"] = np.nan
    fit = etwfe_fit(df, **SYN, control_group=control_group)
    obs = df.dropna(subset=["y"]).reset_index(drop=True)
    names = []
    for g, t in zip(fit.cells["g"], fit.cells["period"], strict=True):
        names.append(f"c{int(g)}_{int(t)}")
        obs[names[-1]] = ((obs["g"] == g) & (obs["period"] == t)).astype(float)
    ref = pf.feols("y ~ " + " + ".join(names) + " | unit + period", data=obs, vcov={"CRV1": "unit"},
                   ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True),
                   demeaner=pf.MapDemeaner(fixef_tol=1e-13))
    b = ref.coef()[names].to_numpy()
    v = pd.DataFrame(ref._vcov, index=ref.coef().index, columns=ref.coef().index).loc[names, names].to_numpy()
    np.testing.assert_allclose(fit.att, b, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.vcov, v, rtol=0, atol=1e-8)

    api = mipa.etwfe(df, yname="y", tname="period", idname="unit", gname="g", control_group=control_group)
    np.testing.assert_allclose(api.vcov.to_numpy(), v, rtol=0, atol=1e-8)
    n = obs[names].sum().to_numpy()
    e = (fit.cells["period"] - fit.cells["g"]).to_numpy()
    g = fit.cells["g"].to_numpy()

    def share(mask: np.ndarray) -> np.ndarray:
        return np.where(mask, n, 0.0) / n[mask].sum()

    by_e = [share(e == k) for k in np.unique(e)]
    by_g = {k: share((g == k) & (e >= 0)) for k in np.unique(g)}
    units = {k: obs.loc[obs["g"] == k, "unit"].nunique() for k in by_g}
    group_overall = sum(units[k] * w for k, w in by_g.items()) / sum(units.values())
    expected = {
        "simple": [share(e >= 0)],
        "group": [group_overall, *by_g.values()],
        "dynamic": [np.mean([w for k, w in zip(np.unique(e), by_e, strict=True) if k >= 0], axis=0), *by_e],
    }
    for kind, rows in expected.items():
        agg = api.aggregate(kind)
        w = np.vstack(rows)
        keep = agg.table["inference"].to_numpy() != "reference"
        np.testing.assert_allclose(agg.table["estimate"].to_numpy()[keep], w @ b, rtol=0, atol=1e-8)
        np.testing.assert_allclose(agg.vcov.to_numpy()[np.ix_(keep, keep)], w @ v @ w.T, rtol=0, atol=1e-8)
