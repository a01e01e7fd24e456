"""Reliability of Poisson ETWFE on hard panels: the fit, separation, the rate ratio and
the not-estimable rows (:mod:`mipa.estimators.poisson_etwfe`, :func:`mipa.sensitivity.run.run_poisson`).

Known truths: ``pyfixest.fepois`` fitted on the same saturated model (unit and period
fixed effects, one dummy per treated cell) and the same rows, independently of our code
(coefficients and clustered standard errors to 1e-6, on panels with an all-zero cell, an
all-zero country, a partner entering in the last period, a tiny control pool, and the
``hard`` simulation scenario); its fit on all rows, where it stops at a large negative
coefficient for an all-zero cell, for the boundary count-scale effect; a noise-free panel
with a planted multiplicative effect 1.5 for the rate ratio; and, for the data conditions,
the reasons that follow from how each panel was built. A Hypothesis property checks that
``run_poisson`` returns a complete table on any small panel, and a sample of simulated
panels checks that the fit converges wherever fepois does.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mipa.estimability import REASONS, NotEstimable
from mipa.estimation import prepare_panel
from mipa.estimators import poisson_etwfe as pe
from mipa.sensitivity import run as sens
from mipa.sensitivity.event_studies import poisson_event_study_vcov

KW = dict(outcome="y", unit="u", period="t", first_treat="g")
COUNTS = ("forced_departures", "laissez_passers", "confirmations", "requests", "verified_departures")
AGGREGATIONS = {"simple", "group", "dynamic", "calendar"}


# --------------------------------------------------------------------------- panels
def _panel(n_ctrl: int = 20, cohorts: dict[int, int] | None = None, T: int = 10, seed: int = 1,
           level: float = 1.5) -> pd.DataFrame:
    """Poisson counts: ``n_ctrl`` never-treated units, then ``cohorts[g]`` units starting in
    period ``g``; unit effects N(level, 0.5), period effects 0.05 t, effect x1.5 after the start."""
    cohorts = {4: 5, 7: 5} if cohorts is None else cohorts
    rng = np.random.default_rng(seed)
    g_units = [0] * n_ctrl + [g for g, k in cohorts.items() for _ in range(k)]
    n = len(g_units)
    unit = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    g = np.asarray(g_units, dtype=float)[unit]
    log_mu = rng.normal(level, 0.5, n)[unit] + 0.05 * t + np.where((g > 0) & (t >= g), np.log(1.5), 0.0)
    return pd.DataFrame({"u": unit, "t": t, "g": g, "y": rng.poisson(np.exp(log_mu)).astype(float)})


def _zero_cell() -> pd.DataFrame:
    d = _panel()
    d.loc[(d.g == 4) & (d.t == 6), "y"] = 0.0  # cohort 4 has no event in period 6
    return d


def _zero_country() -> pd.DataFrame:
    d = _panel()
    d.loc[d.u.isin([3, 20]), "y"] = 0.0  # a control and a partner (cohort 4) with no event at all
    return d


def _last_period_entry() -> pd.DataFrame:
    return _panel(cohorts={4: 4, 7: 4, 10: 1})  # one unit starts in the last period (T = 10)


def _tiny_control_pool() -> pd.DataFrame:
    # three sparse controls; in month 9 (both cohorts started) no comparison country has an event
    d = _panel(n_ctrl=3, cohorts={5: 2, 8: 2}, T=12, seed=4, level=0.0)
    d.loc[(d.g == 0) & (d.t == 9), "y"] = 0.0
    d.loc[(d.g == 8) & (d.t == 9), "y"] = 2.0
    return d


@cache
def _hard_scenario_long(replication: int) -> pd.DataFrame:
    """A draw of the ``hard`` simulation scenario (14 countries, Tunisia entering in the last
    month, Egypt without forced departures): the long panel of mipa.montecarlo."""
    from mipa.montecarlo.design import Design, PanelSampler

    scenario = Path(pe.__file__).resolve().parents[1] / "simulate" / "scenarios" / "hard.yml"
    return PanelSampler(Design(config=yaml.safe_load(scenario.read_text()))).draw(replication).panel


def _hard_scenario_panel(replication: int) -> pd.DataFrame:
    panel = _hard_scenario_long(replication)
    return pd.DataFrame({"u": panel.iso3, "t": panel.period, "g": panel.first_treat,
                         "y": panel.forced_departures.astype(float)})


HARD_PANELS = {
    "zero_cell": _zero_cell,
    "zero_country": _zero_country,
    "last_period_entry": _last_period_entry,
    "tiny_control_pool": _tiny_control_pool,
    "hard_scenario": lambda: _hard_scenario_panel(0),
}


def _fepois_same_rows(d: pd.DataFrame, cohort: str = "group", control_group: str = "notyettreated"):
    """Our saturated fit and pyfixest's fepois on the rows our fit keeps, with the same cell
    dummies; fepois absorbs unit and period effects and drops collinear cells itself."""
    sample = pe.poisson_sample(d, **KW, control_group=control_group, cohort=cohort)
    sc = pe.fit_saturated_cells(sample)
    act = sc.active
    rows = pd.DataFrame({"y": sample.y[act], "u": sample.unit_codes[act], "t": sample.period_codes[act]})
    cells = pd.DataFrame({f"c{c}": (sample.cell_idx[act] == c).astype(float) for c in sc.c_levels})
    data = pd.concat([rows, cells], axis=1)
    fml = "y ~ " + " + ".join(cells.columns) + " | u + t"
    common = dict(data=data, vcov={"CRV1": "u"}, iwls_tol=1e-12, iwls_maxiter=100,
                  demeaner=pf.MapDemeaner(fixef_tol=1e-13), separation_check=[])
    raw = pf.fepois(fml, ssc=pf.ssc(k_adj=False, G_adj=False), **common)
    adj = pf.fepois(fml, ssc=pf.ssc(k_adj=True, k_fixef="nonnested", G_adj=True), **common)
    return sample, sc, raw, adj


# --------------------------------------------------------------------------- fepois
@pytest.mark.parametrize("cohort", ["group", "unit"])
@pytest.mark.parametrize("case", list(HARD_PANELS))
def test_matches_fepois_on_hard_panels(case: str, cohort: str) -> None:
    """Same kept cells, coefficients and clustered variances (raw sandwich and with the
    small-sample factor (N-1)/(N-K) G/(G-1)) as fepois on the same rows, to 1e-6."""
    sample, sc, raw, adj = _fepois_same_rows(HARD_PANELS[case](), cohort=cohort)
    assert raw._convergence
    ours = {f"c{c}": sc.c_pos[c] for c in sc.c_levels if sc.fit.kept[sc.c_pos[c]]}
    assert set(ours) == set(raw.coef().index)
    names = sorted(ours)
    idx = np.array([ours[n] for n in names])
    np.testing.assert_allclose(sc.fit.coef[idx], raw.coef()[names].to_numpy(), atol=1e-6)
    v_ours = np.diag(sc.fit.vcov_raw)[idx]
    se_raw = np.sqrt(np.clip(np.diag(raw._vcov), 0, None))
    se_raw = pd.Series(se_raw, index=raw.coef().index)[names].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.clip(v_ours, 0, None)), se_raw, atol=1e-6)
    se_adj = pd.Series(np.sqrt(np.clip(np.diag(adj._vcov), 0, None)), index=adj.coef().index)[names].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.clip(sc.small_sample_factor * v_ours, 0, None)), se_adj, atol=1e-6)


def test_hard_panels_exercise_their_condition() -> None:
    """Each hard panel really has the condition it is named after."""
    fits = {name: pe.fit_saturated_cells(pe.poisson_sample(make(), **KW, control_group="notyettreated",
                                                           cohort="group"))
            for name, make in HARD_PANELS.items()}
    assert any(c for c in fits["zero_cell"].sep.zero_cells)
    assert fits["zero_country"].sep.all_zero_units == [3, 20]
    cells = pe.poisson_sample(_last_period_entry(), **KW, control_group="notyettreated", cohort="group").cells
    assert ((cells.g == 10) & (cells.event_time == 0)).sum() == 1 and fits["last_period_entry"].identified.all()
    assert fits["tiny_control_pool"].sep.zero_control_periods == [9]
    assert fits["hard_scenario"].sep.all_zero_units  # Egypt (and others) without forced departures


def test_zero_cell_effect_equals_fepois_at_its_stopping_point() -> None:
    """fepois on all rows keeps the all-zero cell and stops at a large negative coefficient;
    its count-scale effect mean(mu (1 - exp(-tau))) is minus the counterfactual mean, ours."""
    d = _zero_cell()
    res = pe.poisson_etwfe(d, **KW)
    cell = res.att_gt[(res.att_gt.group == 4) & (res.att_gt.period == 6)].iloc[0]
    assert cell.inference == "cluster_unit_separated"
    cols = {f"c{c['group']}_{c['period']}": ((d.g == c["group"]) & (d.t == c["period"])).astype(float)
            for c in res.settings["cells_log_scale"]}
    data = pd.concat([d, pd.DataFrame(cols)], axis=1)
    fit = pf.fepois("y ~ " + " + ".join(cols) + " | u + t", data=data, iwls_tol=1e-12, iwls_maxiter=200,
                    demeaner=pf.MapDemeaner(fixef_tol=1e-13))
    tau = fit.coef()["c4_6"]
    assert tau < -15  # fixest-style: finite, far out
    rows = (data.g == 4) & (data.t == 6)
    mu = fit.predict(type="response")[rows.to_numpy()]
    assert cell.estimate == pytest.approx(float(np.mean(mu * (1 - np.exp(-tau)))), rel=1e-6)
    # the other cells are fepois's on all rows
    other = [c for c in cols if c != "c4_6"]
    ours = {f"c{c['group']}_{c['period']}": c["tau"] for c in res.settings["cells_log_scale"]}
    np.testing.assert_allclose([ours[c] for c in other], fit.coef()[other].to_numpy(), atol=1e-6)


def test_separation_beyond_fixed_effects_is_found() -> None:
    """Never-treated controls, and in period 7 no control has an event while the partner of
    cohort 8 has events in its reference month 7 (a non-cell row). No fixed-effect group is
    all zero, yet the control rows of period 7 are separated: l_7 -> -inf, a_8 -> +inf and the
    cohort's cells -> -inf (the linear programme finds it). Without that check the fit
    "converges" with a counterfactual for cohort 8 of order 1e13; with it the three rows are
    left out, cohort 8 is not identified and everything else matches fepois on those rows."""
    d = _panel(n_ctrl=3, cohorts={4: 1, 8: 1}, T=10, seed=11, level=1.0)
    d.loc[(d.g == 0) & (d.t == 7), "y"] = 0.0
    d.loc[(d.g == 8) & (d.t == 7), "y"] = 3.0
    res = pe.poisson_etwfe(d, **KW, control_group="nevertreated")
    sep = res.settings["separation"]
    assert sep["other_separated_rows"] == 3 and not sep["all_zero_units"] and not sep["all_zero_periods"]
    est = res.estimates.set_index(["aggregation", "scope"])
    assert est.loc[("group", "8"), "reason"] == "not_identified"
    assert est.loc[("group", "4"), "status"] == "estimated"
    done = est[est.status == "estimated"]
    assert (done.estimate.abs() < 100).all() and (done.std_error.dropna() < 100).all()
    sample, sc, raw, _ = _fepois_same_rows(d, control_group="nevertreated")
    idx = {f"c{c}": sc.c_pos[c] for c in sc.c_levels if sc.fit.kept[sc.c_pos[c]]}
    names = sorted(set(idx) & set(raw.coef().index))
    assert names
    np.testing.assert_allclose(sc.fit.coef[[idx[n] for n in names]], raw.coef()[names].to_numpy(), atol=1e-6)


# --------------------------------------------------------------------------- convergence
@cache
def _fepois_converges(replication: int, outcome: str) -> tuple[bool, pd.Series | None]:
    p = _hard_scenario_long(replication)
    sample = pe.poisson_sample(p, outcome=outcome, unit="iso3", period="period", first_treat="first_treat",
                               control_group="notyettreated", cohort="group")
    rows = pd.DataFrame({"y": sample.y, "u": sample.unit_codes, "t": sample.period_codes})
    cells = pd.DataFrame({f"c{c}": (sample.cell_idx == c).astype(float) for c in range(len(sample.cells))})
    try:
        fit = pf.fepois("y ~ " + " + ".join(cells.columns) + " | u + t", data=pd.concat([rows, cells], axis=1),
                        iwls_tol=1e-10, iwls_maxiter=100, demeaner=pf.MapDemeaner(fixef_tol=1e-12))
    except Exception:  # noqa: BLE001 - fepois failing is "fepois does not converge" here
        return False, None
    return bool(fit._convergence), fit.coef()


def test_fit_converges_on_simulated_panels_where_fepois_does() -> None:
    """40 draws of the hard scenario (one count outcome each, in turn): wherever fepois
    converges, our fit converges too (no LinAlgError, no NaN in an identified cell) and its
    regular cells (not separated, identified) have fepois's coefficients. The fit before
    this rewrite raised LinAlgError or returned NaN on 60 of 100 such (panel, outcome) fits."""
    checked = 0
    for rep in range(40):
        outcome = COUNTS[rep % len(COUNTS)]
        converged, coef = _fepois_converges(rep, outcome)
        if not converged:
            continue
        checked += 1
        p = _hard_scenario_long(rep)
        sample = pe.poisson_sample(p, outcome=outcome, unit="iso3", period="period", first_treat="first_treat",
                                   control_group="notyettreated", cohort="group")
        sc = pe.fit_saturated_cells(sample)
        assert sc.fit.converged
        assert np.isfinite(sc.att[sc.identified]).all() and np.isfinite(sc.fit.vcov_raw).all()
        regular = [c for c in sc.c_levels if sc.fit.kept[sc.c_pos[c]] and sc.identified[c]
                   and not sc.separated[c] and f"c{c}" in coef.index]
        assert regular
        np.testing.assert_allclose(sc.fit.coef[sc.c_pos[regular]], coef[[f"c{c}" for c in regular]].to_numpy(),
                                   atol=1e-6)
        res = pe.poisson_etwfe(p, outcome=outcome, unit="iso3", period="period", first_treat="first_treat")
        est = res.estimates
        assert (np.isfinite(est.estimate) == (est.status == "estimated")).all()
    assert checked >= 30


def test_newton_survives_a_poor_start() -> None:
    """A small partner entering late, with almost no events before, among large counts:
    from theta = 0 the first Newton step moves a coefficient by about 15 (log scale), where
    the quadratic model is poor; the capped, damped steps converge to fepois's answer."""
    d = _panel(n_ctrl=6, cohorts={4: 3, 23: 1}, T=24, seed=9, level=4.0)
    late = (d.g == 23).to_numpy()
    d.loc[late, "y"] = d.loc[late, "t"].map({2: 1.0, 23: 3.0, 24: 8.0}).fillna(0.0).to_numpy()
    sample, sc, raw, _ = _fepois_same_rows(d)
    assert sc.fit.converged and raw._convergence
    idx = {f"c{c}": sc.c_pos[c] for c in sc.c_levels if sc.fit.kept[sc.c_pos[c]]}
    names = sorted(idx)
    np.testing.assert_allclose(sc.fit.coef[[idx[n] for n in names]], raw.coef()[names].to_numpy(), atol=1e-6)


# --------------------------------------------------------------------------- rate ratio
@pytest.mark.parametrize("cohort", ["group", "unit"])
def test_rate_ratio_recovers_planted_ratio_exactly(cohort: str) -> None:
    """y = E[y] with a multiplicative effect 1.5: every aggregate's rate ratio is 1.5 and
    equals 1 + ATT / counterfactual mean."""
    rng = np.random.default_rng(2)
    d = _panel(seed=2)
    log_mu = rng.normal(1.0, 0.5, d.u.nunique())[d.u] + 0.05 * d.t
    d["y"] = np.exp(log_mu + np.where((d.g > 0) & (d.t >= d.g), np.log(1.5), 0.0))
    res = pe.poisson_etwfe(d, **KW, cohort=cohort)
    est = res.estimates[res.estimates.status == "estimated"]
    np.testing.assert_allclose(est.rate_ratio, 1.5, rtol=1e-9)
    # the fit is exact: no variance, so no interval (as the count-scale standard error)
    assert est.rate_ratio_ci_low.isna().all() and (est.reason == "no_variance").all()
    treated = (d.g > 0) & (d.t >= d.g)
    base = float(np.mean(np.exp(log_mu[treated])))
    simple = res.overall("simple")
    assert simple.rate_ratio == pytest.approx(1 + simple.estimate / base, rel=1e-9)


def test_rate_ratio_interval_is_the_delta_method_on_the_log_scale() -> None:
    """Noisy counts: exp(log RR +/- t se) with se from the gradient of log(w'M) - log(w'B),
    checked by finite differences of the fitted means in theta."""
    d = _panel(n_ctrl=30, seed=3)
    res = pe.poisson_etwfe(d, **KW)
    simple = res.overall("simple")
    sample = pe.poisson_sample(d, **KW, control_group="notyettreated", cohort="group")
    sc = pe.fit_saturated_cells(sample)
    w = (sc.cells_agg.n_obs * (sc.cells_agg.event_time >= 0)).to_numpy(float)
    w /= w.sum()
    assert simple.rate_ratio == pytest.approx((w @ sc.treated_mean) / (w @ sc.base_mean), rel=1e-12)
    g = (w @ sc.grad_treated) / (w @ sc.treated_mean) - (w @ sc.grad_base) / (w @ sc.base_mean)
    se = float(np.sqrt(g @ (sc.small_sample_factor * sc.fit.vcov_raw) @ g))
    from scipy import stats

    c = stats.t.ppf(0.975, sc.n_u_act - 1)
    assert simple.rate_ratio_ci_low == pytest.approx(simple.rate_ratio * np.exp(-c * se), rel=1e-9)
    assert simple.rate_ratio_ci_high == pytest.approx(simple.rate_ratio * np.exp(c * se), rel=1e-9)
    assert simple.rate_ratio_ci_low < 1.5 < simple.rate_ratio_ci_high


# --------------------------------------------------------------------------- not estimable
def _country_month(d: pd.DataFrame, outcome_cols: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``fct_country_month`` columns from a long panel ``u, t, g, y`` (g: period of the start, 0 never)."""
    months = pd.date_range("2020-01-01", periods=int(d.t.max()), freq="MS")
    start = [months[int(g) - 1] if 0 < g <= len(months) else (pd.NaT if g == 0 else months[-1] + pd.DateOffset(
        months=int(g) - len(months))) for g in d.g]
    out = pd.DataFrame({
        "iso3": [f"C{int(u):02d}" if not isinstance(u, str) else u for u in d.u],
        "month_index": d.t.astype(int).to_numpy(),
        "month_start": months[d.t.astype(int).to_numpy() - 1],
        "partnership_start_month": pd.to_datetime(pd.Series(start)),
    })
    for name in COUNTS:
        out[name] = (outcome_cols or {}).get(name, d.y.to_numpy())
    return out


def _check_complete(out: pd.DataFrame, country_month: pd.DataFrame) -> None:
    """Every outcome has the four overall rows and one row per partner; every row is
    estimated with a finite estimate or not estimable with a documented reason."""
    partners = set(prepare_panel(country_month).query("first_treat > 0").iso3)
    assert list(out.columns) == sens.POISSON_COLUMNS
    for outcome in COUNTS:
        rows = out[out.outcome == outcome]
        assert set(rows[rows.scope == "overall"].aggregation) == AGGREGATIONS
        assert len(rows[rows.scope == "overall"]) == 4
        country = rows[rows.scope != "overall"]
        assert sorted(country.scope) == sorted(partners)
        assert (country.aggregation == "group").all()
    assert out.status.isin(["estimated", "not_estimable"]).all()
    assert out.reason.dropna().isin(list(REASONS)).all()
    est = out.status == "estimated"
    assert np.isfinite(out.estimate[est]).all()
    assert out.estimate[~est].isna().all() and out.std_error[~est].isna().all() and out.reason[~est].notna().all()
    assert out.inference[est].notna().all() and out.inference[~est].isna().all()
    numeric = out.select_dtypes("number")
    assert not np.isinf(numeric.to_numpy(dtype=float)).any()
    has_ci = out.ci_low.notna()
    assert (out.ci_low[has_ci] <= out.estimate[has_ci] + 1e-9).all()
    assert (out.estimate[has_ci] <= out.ci_high[has_ci] + 1e-9).all()
    rr = out.rate_ratio.notna()
    assert (out.rate_ratio[rr] >= 0).all()
    has_rr_ci = out.rate_ratio_ci_low.notna()
    assert (out.rate_ratio_ci_low[has_rr_ci] <= out.rate_ratio[has_rr_ci] * (1 + 1e-9)).all()
    assert (out.rate_ratio[has_rr_ci] <= out.rate_ratio_ci_high[has_rr_ci] * (1 + 1e-9)).all()
    for text in out.run_settings:
        json.loads(text)


def test_run_poisson_reasons_per_partner() -> None:
    """Partners built to fail each get their row with the reason that follows from the data;
    the other partners and the overall rows are estimated."""
    d = _panel(n_ctrl=12, cohorts={4: 3, 7: 3}, T=10, seed=5)
    y = d.y.to_numpy().copy()
    y[(d.u == 12).to_numpy()] = 0.0  # all zero
    y[((d.u == 13) & (d.t >= 4)).to_numpy()] = np.nan  # never observed after its start
    y[((d.u == 15) & (d.t < 7)).to_numpy()] = np.nan  # never observed before its start
    d["y"] = y
    cm = _country_month(d)
    out = sens.run_poisson(cm)
    _check_complete(out, cm)
    rows = out[out.outcome == "forced_departures"].set_index("scope")
    assert rows.loc["C12", "reason"] == "all_zero_outcome"
    assert rows.loc["C13", "reason"] == "no_post_treatment_data"
    assert rows.loc["C15", "reason"] in ("no_pre_treatment_data", "not_identified")
    for iso in ("C14", "C16", "C17"):
        assert rows.loc[iso, "status"] == "estimated"
    overall = out[out.scope == "overall"]
    assert (overall.status == "estimated").all()
    # the all-zero partner is left out of the overall averages, and says so
    simple = rows[(rows.index == "overall") & (rows.aggregation == "simple")].iloc[0]
    assert simple.reason == "cells_left_out" and "C12" in simple.reason_detail
    assert rows.loc["C12", "status"] == "not_estimable" and "C12" in rows.loc["C12", "all_zero_countries"]


def test_run_poisson_keeps_every_row_when_a_fit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing cohort fit leaves the country rows; a failing joint per-country fit falls
    back to one fit per partner with the same estimates; a bug propagates."""
    d = _panel(n_ctrl=12, cohorts={4: 2, 7: 2}, T=10, seed=6)
    cm = _country_month(d)
    reference = sens.run_poisson(cm)
    real = sens.poisson_etwfe

    def cohort_fails(panel, **kw):
        if kw.get("cohort", "group") == "group":
            raise NotEstimable("fit_not_converged", "forced for the test")
        return real(panel, **kw)

    monkeypatch.setattr(sens, "poisson_etwfe", cohort_fails)
    out = sens.run_poisson(cm)
    _check_complete(out, cm)
    assert (out[out.scope == "overall"].reason == "fit_not_converged").all()
    countries = out[out.scope != "overall"].set_index(["outcome", "scope"])
    ref = reference[reference.scope != "overall"].set_index(["outcome", "scope"])
    np.testing.assert_allclose(countries.estimate, ref.loc[countries.index].estimate, rtol=1e-12)

    def joint_fails(panel, **kw):
        post = panel[(panel["first_treat"] > 0) & (panel["period"] >= panel["first_treat"])]
        if kw.get("cohort") == "unit" and post["iso3"].nunique() > 1:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(panel, **kw)

    monkeypatch.setattr(sens, "poisson_etwfe", joint_fails)
    out = sens.run_poisson(cm)
    _check_complete(out, cm)
    countries = out[out.scope != "overall"].set_index(["outcome", "scope"])
    assert (countries.status == "estimated").all()
    np.testing.assert_allclose(countries.estimate, ref.loc[countries.index].estimate, rtol=1e-8)
    assert "joint_failure" in out.run_settings.iloc[0]

    def bug(panel, **kw):
        raise KeyError("a bug, not a data condition")

    monkeypatch.setattr(sens, "poisson_etwfe", bug)
    with pytest.raises(KeyError):
        sens.run_poisson(cm)


def test_estimator_raises_only_not_estimable_for_data_conditions() -> None:
    d = _panel(n_ctrl=5, cohorts={4: 2}, T=8, seed=7)
    zero = d.assign(y=0.0)
    with pytest.raises(NotEstimable) as err:
        pe.poisson_etwfe(zero, **KW)
    assert err.value.reason == "all_zero_outcome"
    no_post = d.assign(y=np.where(d.t >= 4, np.nan, d.y))
    with pytest.raises(NotEstimable) as err:
        pe.poisson_etwfe(no_post, **KW)
    assert err.value.reason == "no_post_treatment_data"
    with pytest.raises(NotEstimable) as err:
        pe.poisson_etwfe(d[d.g > 0], **KW, control_group="nevertreated")
    assert err.value.reason == "no_control_units"
    with pytest.raises(NotEstimable) as err:
        pe.poisson_etwfe(d[d.g == 0], **KW)
    assert err.value.reason == "no_treated_units"
    with pytest.raises(NotEstimable) as err:  # the event study too
        poisson_event_study_vcov(d[d.g > 0], **KW)
    assert err.value.reason == "no_control_units"


def test_event_study_vcov_on_hard_panels() -> None:
    """No error on the hard panels: finite estimates and covariance, unidentified event
    times listed rather than NaN; agrees with poisson_etwfe's event study."""
    for make in HARD_PANELS.values():
        d = make()
        es = poisson_event_study_vcov(d, **KW)
        assert np.isfinite(es.estimate).all() and np.isfinite(es.vcov).all()
        res = pe.poisson_etwfe(d, **KW, control_group="nevertreated")
        table = res.event_study.set_index("event_time").drop(-1)
        table = table[table.estimate.notna()]
        np.testing.assert_array_equal(es.event_time, table.index.to_numpy())
        np.testing.assert_allclose(es.estimate, table.estimate, atol=1e-9)
        assert set(es.settings["unidentified_event_times"]).isdisjoint(es.event_time)


# --------------------------------------------------------------------------- property
@st.composite
def country_month_panels(draw: st.DrawFn) -> pd.DataFrame:
    """Small Poisson panels with the conditions that break fits: sparse or all-zero
    countries, partners with no events after the start, starting in the first or last
    month, months without observations, tiny control pools."""
    n_ctrl = draw(st.integers(1, 6))
    T = draw(st.integers(4, 10))
    starts = draw(st.lists(st.integers(1, T + 1), min_size=1, max_size=4))
    level = draw(st.sampled_from([0.05, 0.3, 1.0, 5.0, 40.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    g = [0] * n_ctrl + starts
    n = len(g)
    unit = np.repeat(np.arange(n), T)
    t = np.tile(np.arange(1, T + 1), n)
    gu = np.asarray(g, dtype=float)[unit]
    cols = {}
    for k, name in enumerate(COUNTS):
        mu = level * np.exp(rng.normal(0, 1, n)[unit] + rng.normal(0, 0.3, T)[t - 1]) * np.where(
            (gu > 0) & (t >= gu), draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])), 1.0)
        y = rng.poisson(mu).astype(float)
        if draw(st.booleans()):  # a country with no event at all
            y[unit == draw(st.integers(0, n - 1))] = 0.0
        if draw(st.booleans()):  # some months not observed
            y[rng.random(y.size) < 0.15] = np.nan
        if k == 0 and draw(st.booleans()):  # an outcome that is 0 everywhere
            y[:] = 0.0
        cols[name] = y
    d = pd.DataFrame({"u": unit, "t": t, "g": gu, "y": 0.0})
    return _country_month(d, cols)


@settings(derandomize=True, max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(country_month_panels())
def test_run_poisson_always_returns_a_complete_table(cm: pd.DataFrame) -> None:
    out = sens.run_poisson(cm)
    _check_complete(out, cm)
