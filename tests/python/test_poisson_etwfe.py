"""Tests of :func:`mipa.estimators.poisson_etwfe.poisson_etwfe`.

Known truths: an independent fit of the same saturated model (unit + period fixed
effects, one dummy per treated cell) with ``pyfixest.fepois`` (coefficients, clustered
standard errors); exact recovery on a noise-free panel (the QMLE fits ``y = E[y]``
exactly, so a planted multiplicative effect and its count-scale ATT are recovered to
rounding); the boundary cases of separation, whose answers follow from the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from mipa.estimators.poisson_etwfe import poisson_etwfe

KW = dict(outcome="y", unit="u", period="t", first_treat="g")


def _design(n: int = 60, T: int = 12, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Units 0-14 start in period 6, 15-29 in period 9, the rest never; unit effects a,
    period effects 0.05 t; returns the frame (without y) and the log means without and
    with the planted effect log(1.5)."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n), T)
    period = np.tile(np.arange(1, T + 1), n)
    g = np.select([np.arange(n) < 15, np.arange(n) < 30], [6, 9], 0)[unit]
    log_base = rng.normal(1.0, 0.5, n)[unit] + 0.05 * period
    treated = (g > 0) & (period >= g)
    log_mu = log_base + np.where(treated, np.log(1.5), 0.0)
    return pd.DataFrame({"u": unit, "t": period, "g": g}), log_base, log_mu


def _cell_frame(d: pd.DataFrame, res) -> tuple[pd.DataFrame, list[str]]:
    cols = {}
    for c in res.settings["cells_log_scale"]:
        cols[f"c{c['group']}_{c['period']}"] = ((d.g == c["group"]) & (d.t == c["period"])).astype(float)
    x = pd.DataFrame(cols)
    return pd.concat([d, x], axis=1), list(x.columns)


def test_matches_pyfixest_fepois() -> None:
    d, _, log_mu = _design()
    d["y"] = np.random.default_rng(7).poisson(np.exp(log_mu))
    res = poisson_etwfe(d, **KW)
    dd, cols = _cell_frame(d, res)
    fml = "y ~ " + " + ".join(cols) + " | u + t"
    common = dict(data=dd, vcov={"CRV1": "u"}, iwls_tol=1e-12, demeaner=pf.MapDemeaner(fixef_tol=1e-13))
    raw = pf.fepois(fml, ssc=pf.ssc(k_adj=False, G_adj=False), **common)
    adj = pf.fepois(fml, ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True), **common)
    tau = np.array([c["tau"] for c in res.settings["cells_log_scale"]])
    se = np.array([c["std_error"] for c in res.settings["cells_log_scale"]])
    q = res.settings["small_sample_factor"]
    np.testing.assert_allclose(tau, raw.coef()[cols].to_numpy(), atol=1e-6)
    # the sandwich itself, and with the small-sample factor (N-1)/(N-K) G/(G-1)
    np.testing.assert_allclose(se / np.sqrt(q), raw.se()[cols].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(se, adj.se()[cols].to_numpy(), atol=1e-6)


def test_matches_pyfixest_on_mpdta_exp_lemp() -> None:
    """QMLE on a non-count outcome: exp(lemp) of R did's mpdta (cohorts 2004/2006/2007)."""
    from pathlib import Path

    m = pd.read_csv(Path(__file__).resolve().parents[3] / "shared" / "reference" / "mpdta.csv")
    d = pd.DataFrame({"u": m.countyreal, "t": m.year, "g": m["first.treat"], "y": np.exp(m.lemp)})
    res = poisson_etwfe(d, **KW)  # cohort="group": 7 cells
    dd, cols = _cell_frame(d, res)
    fit = pf.fepois("y ~ " + " + ".join(cols) + " | u + t", data=dd, vcov={"CRV1": "u"},
                    ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True), iwls_tol=1e-12,
                    demeaner=pf.MapDemeaner(fixef_tol=1e-13))
    tau = np.array([c["tau"] for c in res.settings["cells_log_scale"]])
    se = np.array([c["std_error"] for c in res.settings["cells_log_scale"]])
    np.testing.assert_allclose(tau, fit.coef()[cols].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(se, fit.se()[cols].to_numpy(), atol=1e-6)


# R etwfe 0.6.2, inst/tinytest/test_emfx.R, model m3p: etwfe(emp ~ lpop, tvar = year,
# gvar = first.treat, data = mpdta, vcov = ~countyreal, family = "poisson") with
# emfx(type = "event", predict = "link") and emfx(type = "event"): event time -> (estimate, se)
R_ETWFE_POISSON_EVENT_LINK = {
    0: (-0.0325653634930092, 0.0128503810792558),
    1: (-0.0675071046997911, 0.0183966910997271),
    2: (-0.132971344933511, 0.0237253182969748),
    3: (-0.117022779216096, 0.0225005664705109),
}
R_ETWFE_POISSON_EVENT = {
    0: (-25.3497484355494, 15.8862762958862),
    1: (1.09175116997388, 40.2952222352926),
    2: (-75.1246321552693, 23.1541376499351),
    3: (-101.823979344829, 27.0877431076141),
}


def test_matches_r_etwfe_poisson_with_a_covariate() -> None:
    """R etwfe's published Poisson event study on mpdta (emp = exp(lemp), covariate lpop):
    log-scale effects and standard errors, count-scale effects; through mipa.etwfe."""
    from pathlib import Path

    import mipa

    m = pd.read_csv(Path(__file__).resolve().parents[3] / "shared" / "reference" / "mpdta.csv")
    m["emp"] = np.exp(m["lemp"])
    res = mipa.etwfe(m, yname="emp", tname="year", idname="countyreal", gname="first.treat", covariates=["lpop"],
                     family="poisson").result
    log_scale = {r["event_time"]: r for r in res.settings["event_study_log_scale"]}
    for e, (b, se) in R_ETWFE_POISSON_EVENT_LINK.items():
        assert log_scale[e]["estimate"] == pytest.approx(b, abs=1e-9)
        assert log_scale[e]["std_error"] == pytest.approx(se, rel=1e-4)  # R's own test tolerance is 5e-4
    es = res.event_study.set_index("event_time")
    for e, (b, se) in R_ETWFE_POISSON_EVENT.items():
        assert es.loc[e, "estimate"] == pytest.approx(b, rel=1e-7)
        # the count-scale standard errors: an analytic delta method in the cell terms with the fixed
        # effects held, on the covariance that reproduces R's log-scale ones to 1e-5; R's numerical
        # one (marginaleffects) differs by up to 4% at these event times
        assert es.loc[e, "std_error"] == pytest.approx(se, rel=0.05)
    # a covariate changes the model: without it the effects are the unit-FE fit's
    plain = poisson_etwfe(m.assign(y=m["emp"]), outcome="y", unit="countyreal", period="year",
                          first_treat="first.treat")
    assert plain.overall("simple").estimate != pytest.approx(res.overall("simple").estimate, rel=1e-3)


def test_covariates_recover_a_planted_multiplicative_effect_exactly() -> None:
    """y = E[y] with a covariate effect on the log mean that varies by period: the covariate
    model recovers tau = log 1.5 (zero cell slopes) and the count-scale ATT exactly."""
    d, _, _ = _design()
    x = np.random.default_rng(3).normal(0, 1, d["u"].nunique())[d["u"]]
    d["x"] = x
    # the model's mean: cohort and period effects, a cohort and a period slope on x
    log_base = 0.3 * (d["g"] / 3) + 0.05 * d["t"] + (0.2 + 0.1 * (d["g"] > 0) + 0.02 * d["t"]) * x
    treated = (d.g > 0) & (d.t >= d.g)
    d["y"] = np.exp(log_base + np.where(treated, np.log(1.5), 0.0))
    res = poisson_etwfe(d, covariates=["x"], **KW)
    truth = float(np.mean(np.exp(log_base[treated]) * 0.5))
    assert res.overall("simple").estimate == pytest.approx(truth, rel=1e-6)
    for row in res.settings["event_study_log_scale"]:
        assert row["estimate"] == pytest.approx(np.log(1.5), abs=1e-6)
    with pytest.raises(ValueError, match="notyettreated"):
        poisson_etwfe(d, covariates=["x"], control_group="nevertreated", **KW)


@pytest.mark.parametrize("cohort", ["group", "unit"])
def test_recovers_planted_multiplicative_effect_exactly(cohort: str) -> None:
    """y = E[y] exactly: tau = log 1.5 in every cell and the count-scale ATT is the mean
    of exp(log_base) * 0.5 over the treated post rows."""
    d, log_base, log_mu = _design()
    d["y"] = np.exp(log_mu)
    res = poisson_etwfe(d, cohort=cohort, **KW)
    taus = np.array([c["tau"] for c in res.settings["cells_log_scale"]])
    np.testing.assert_allclose(taus, np.log(1.5), atol=1e-8)
    treated = (d.g > 0) & (d.t >= d.g)
    truth = float(np.mean(np.exp(log_base[treated]) * 0.5))
    assert res.overall("simple").estimate == pytest.approx(truth, rel=1e-9)
    # each cell: mean of mu (1 - 1/1.5) over its rows
    for row in res.att_gt.itertuples():
        if cohort == "group":
            rows = (d.g == row.group) & (d.t == row.period)
        else:
            rows = (d.u == int(row.group)) & (d.t == row.period)
        assert row.estimate == pytest.approx(np.mean(np.exp(log_base[rows]) * 0.5), rel=1e-9)
    assert res.estimator == "poisson_etwfe"
    assert (res.att_gt["inference"] == "cluster_unit").all()


def test_recovers_planted_effect_in_noisy_counts() -> None:
    d, log_base, log_mu = _design(n=400, T=12, seed=5)
    d["y"] = np.random.default_rng(11).poisson(np.exp(log_mu + 2.0))  # counts around 20-40
    res = poisson_etwfe(d, **KW)
    treated = (d.g > 0) & (d.t >= d.g)
    truth = float(np.mean(np.exp(log_base[treated] + 2.0) * 0.5))
    simple = res.overall("simple")
    assert abs(simple.estimate - truth) < 3 * simple.std_error
    assert simple.ci_low < truth < simple.ci_high


def test_all_zero_control_unit_left_out_and_reported() -> None:
    """A never-treated unit with y = 0 throughout contributes nothing to the likelihood at
    a_i = -inf: the estimates equal those without the unit, and it is reported."""
    d, _, log_mu = _design()
    d["y"] = np.random.default_rng(3).poisson(np.exp(log_mu)).astype(float)
    d.loc[d.u == 45, "y"] = 0.0
    res = poisson_etwfe(d, **KW)
    ref = poisson_etwfe(d[d.u != 45], **KW)
    assert res.settings["separation"]["all_zero_units"] == [45]
    assert res.settings["separation"]["rows_left_out"] == 12
    np.testing.assert_allclose(res.att_gt.estimate, ref.att_gt.estimate, rtol=1e-10)
    np.testing.assert_allclose(res.att_gt.std_error, ref.att_gt.std_error, rtol=1e-10)


def test_treated_unit_zero_in_every_post_period_gives_minus_baseline() -> None:
    """Per-unit cohorts, unit 0 has y = 0 after treatment: tau = -inf in its cells and
    ATT = -exp(a_0 + l_t), the counterfactual mean, which the noise-free untreated rows
    pin down exactly. The cells and every aggregate using them are flagged."""
    d, log_base, log_mu = _design()
    d["y"] = np.exp(log_mu)
    post0 = (d.u == 0) & (d.t >= 6)
    d.loc[post0, "y"] = 0.0
    res = poisson_etwfe(d, cohort="unit", **KW)
    cells = res.att_gt[res.att_gt.group == "0"]
    assert len(cells) == 7
    for row in cells.itertuples():
        base = float(np.exp(log_base[(d.u == 0) & (d.t == row.period)]).item())
        assert row.estimate == pytest.approx(-base, rel=1e-9)
        assert row.inference == "cluster_unit_separated"
    sep = res.settings["separation"]
    assert {c["period"] for c in sep["zero_cells"]} == set(range(6, 13))
    assert res.overall("simple").inference == "cluster_unit_separated"
    grp = res.estimates[(res.estimates.aggregation == "group") & (res.estimates.scope == "0")].iloc[0]
    assert grp.estimate == pytest.approx(-float(np.mean(np.exp(log_base[post0]))), rel=1e-9)
    # the other units' effects are unaffected
    other = res.att_gt[res.att_gt.group != "0"]
    assert (other.inference == "cluster_unit").all()


def test_zero_baseline_treated_unit() -> None:
    """Per-unit cohorts, unit 0 has y = 0 before treatment and counts after: its level is
    -inf and its taus +inf; the counterfactual is 0 and ATT = the observed mean."""
    d, _, log_mu = _design()
    d["y"] = np.exp(log_mu)
    d.loc[(d.u == 0) & (d.t < 6), "y"] = 0.0
    res = poisson_etwfe(d, cohort="unit", **KW)
    assert res.settings["separation"]["zero_baseline_units"] == [0]
    for row in res.att_gt[res.att_gt.group == "0"].itertuples():
        obs = float(d.loc[(d.u == 0) & (d.t == row.period), "y"].item())
        assert row.estimate == pytest.approx(obs, rel=1e-12)
        assert row.inference == "cluster_unit_separated"


def test_rejects_negative_outcome() -> None:
    d, _, log_mu = _design()
    d["y"] = np.exp(log_mu)
    d.loc[0, "y"] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        poisson_etwfe(d, **KW)


def test_event_study_vcov_matches_poisson_etwfe_event_study() -> None:
    """mipa.sensitivity.event_studies re-runs the fit for the full covariance of the
    count-scale event study: its estimates and standard errors are poisson_etwfe's."""
    from mipa.sensitivity.event_studies import poisson_event_study_vcov

    d, _, log_mu = _design()
    d["y"] = np.random.default_rng(7).poisson(np.exp(log_mu)).astype(float)
    d.loc[d.u == 45, "y"] = 0.0  # an all-zero control: separation handled alike
    res = poisson_etwfe(d, **KW, control_group="nevertreated")
    es = poisson_event_study_vcov(d, **KW)
    table = res.event_study.set_index("event_time").drop(-1)
    np.testing.assert_array_equal(es.event_time, table.index.to_numpy())
    np.testing.assert_allclose(es.estimate, table["estimate"], atol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(es.vcov)), table["std_error"], rtol=1e-8)
    assert es.settings["separation"]["all_zero_units"] == [45]


def test_separation_certificate_only_skips_the_programme_where_it_finds_nothing():
    """``_cannot_separate`` (positive rows outside the cells connect every unit and period,
    every cell has a positive row) skips the linear programme: on random sparse designs it
    holds only where the programme finds no separated row, and it fails where a unit's
    untreated rows are all zero (then the programme must run)."""
    from mipa.estimators import poisson_separation as ps

    rng = np.random.default_rng(0)
    held = 0
    for _ in range(200):
        n_u, n_t = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        unit, period = np.repeat(np.arange(n_u), n_t), np.tile(np.arange(n_t), n_u)
        cell = np.full(unit.size, -1)
        k = 0
        for u in np.flatnonzero(rng.random(n_u) < 0.4):
            for t in range(int(rng.integers(1, n_t)), n_t):
                cell[(unit == u) & (period == t)] = k
                k += 1
        y = rng.poisson(rng.uniform(0.05, 2.0), size=unit.size).astype(float)
        if ps._cannot_separate(y, unit, period, cell):
            held += 1
            assert not ps._lp_separated(y, unit, period, cell, n_u, n_t, k).any()
    assert 20 < held < 200
    unit, period = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
    cell = np.where((unit == 0) & (period >= 2), period - 2, -1)
    y = np.ones(12)
    y[(unit == 0) & (period < 2)] = 0.0
    assert not ps._cannot_separate(y, unit, period, cell)
