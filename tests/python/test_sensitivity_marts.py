"""Issue 7's sensitivity marts: event studies with leads, pre-trend tests, HonestDiD bounds,
Poisson ETWFE (mipa.sensitivity.run, models/marts/sensitivity) and their report part.

Fast tests check the pieces on hand-made inputs with known answers; the slow ones read the
marts of the default synthetic warehouse (session fixture ``synthetic_warehouse``; set
``MIPA_TEST_WAREHOUSE`` to reuse a built one) and check them against the library, the
planted effects and the properties the methods guarantee.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_frame
from scipy import stats

from mipa.estimation import prepare_panel
from mipa.estimators.poisson_etwfe import poisson_etwfe
from mipa.sensitivity import run as sens
from mipa.sensitivity.pretrends import EventStudyVcov, etwfe_event_study_vcov, wald_pretrend_test

KW = dict(unit="iso3", period="period", first_treat="first_treat")


# --------------------------------------------------------------------------- fast: pieces
def _event_study(months: dict[int, float], sigma: float) -> EventStudyVcov:
    times = np.array(sorted(months), dtype=np.int64)
    return EventStudyVcov(times, np.array([months[int(e)] for e in times]), sigma**2 * np.eye(times.size),
                          100, 99, {})


def test_quarterly_event_study_by_hand() -> None:
    """gamma_k = mean of months 3k..3k+2 minus the mean of months -3..-1 (beta_-1 = 0);
    covariance A V A' (independent months with variance s^2: a bin's variance is s^2/3,
    each bin shares the reference quarter's -3 and -2)."""
    months = {m: float(m) for m in range(-12, 12) if m != -1}
    es = _event_study(months, sigma=0.3)
    gamma, cov = sens.quarterly_event_study(es, n_pre=3, n_post=4)
    ref = (-3 - 2 + 0) / 3
    expected = [np.mean([3 * q, 3 * q + 1, 3 * q + 2]) - ref for q in (-4, -3, -2, 0, 1, 2, 3)]
    np.testing.assert_allclose(gamma, expected, atol=1e-12)
    s2 = 0.09
    # Var(qbar_k - qbar_ref) = s^2/3 + 2 s^2/9 (the reference mean has two random months)
    np.testing.assert_allclose(np.diag(cov), s2 / 3 + 2 * s2 / 9, rtol=1e-12)
    np.testing.assert_allclose(cov[0, 1], 2 * s2 / 9, rtol=1e-12)
    with pytest.raises(KeyError):
        sens.quarterly_event_study(_event_study({m: 0.0 for m in range(-6, 12) if m != -1}, 0.1), 3, 4)


def test_bracketed_breakdown() -> None:
    """With a threshold at 0.7 the answer is 0.7 to the tolerance, bracketed by the grid;
    0 when the first grid set already holds 0; doubling beyond the grid; inf past the limit."""
    calls: list[float] = []

    def holds(x: float) -> bool:
        calls.append(x)
        return x >= 0.7

    bd = sens.bracketed_breakdown(holds, [0, 0.5, 1, 1.5], [False, False, True, True], tol=1 / 32, limit=10)
    assert 0.7 <= bd <= 0.7 + 1 / 32
    assert all(0.5 <= c <= 1 for c in calls)  # only the bracket was searched
    assert sens.bracketed_breakdown(holds, [0, 0.5], [True, True], tol=0.01, limit=10) == 0.0
    bd = sens.bracketed_breakdown(lambda x: x >= 3.3, [0, 0.5, 1], [False] * 3, tol=0.01, limit=10)
    assert 3.3 <= bd <= 3.31
    assert sens.bracketed_breakdown(lambda x: False, [0, 1], [False, False], tol=0.01, limit=10) == np.inf


def test_honest_rows_on_a_hand_computable_event_study() -> None:
    """Pre quarters (-0.3, 0, 0.2) and post quarters all 1 with a negligible covariance:
    the largest pre change is 0.3, so under Delta^RM(Mbar) the post bias may grow by
    0.3 Mbar per quarter and the first-year mean by (1+2+3+4)/4 * 0.3 Mbar = 0.75 Mbar;
    the set is 1 +/- 0.75 Mbar and breaks down at Mbar = 1 / 0.75."""
    quarters = {-4: -0.3, -3: 0.0, -2: 0.2, -1: 0.0, 0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    months = {m: quarters[m // 3] for m in range(-12, 12) if m != -1}
    rows = sens.honest_rows("etwfe", "forced_departures", _event_study(months, 1e-7), sens.SensitivitySettings())
    orig = rows[rows.restriction == "original"].iloc[0]
    assert orig.estimate == pytest.approx(1.0, abs=1e-12)
    rm = rows[rows.restriction == "relative_magnitude"].set_index("parameter")
    for mbar, r in rm.iterrows():
        width = max(0.75 * mbar, 1e-6)
        assert r.ci_low == pytest.approx(1 - 0.75 * mbar, abs=0.02 * width + 1e-5)
        assert r.ci_high == pytest.approx(1 + 0.75 * mbar, abs=0.02 * width + 1e-5)
    assert rm.breakdown_value.iloc[0] == pytest.approx(1 / 0.75, abs=1 / 32)


def _country_month(n_control: int = 26, months: int = 36, seed: int = 4) -> pd.DataFrame:
    """A small fct_country_month: three partners (starts in months 20, 24, 28) with a
    planted x1.5 effect, Poisson counts; partner 'TTT' has no event from its start on,
    control 'ZZZ' none at all."""
    rng = np.random.default_rng(seed)
    codes = [f"C{i:02d}" for i in range(n_control)] + ["ZZZ", "AAA", "BBB", "TTT"]
    starts = {"AAA": 20, "BBB": 24, "TTT": 28}
    month = pd.date_range("2016-01-01", periods=months, freq="MS")
    rows = []
    for c in codes:
        level = rng.normal(1.0, 0.4)
        for i, m in enumerate(month, start=1):
            start = starts.get(c)
            mu = np.exp(level + 0.01 * i) * (1.5 if start and i >= start else 1.0)
            y = 0 if c == "ZZZ" or (c == "TTT" and i >= start) else rng.poisson(mu)
            rows.append({"iso3": c, "month_start": m, "month_index": i, "forced_departures": y,
                         "partnership_start_month": month[start - 1] if start else pd.NaT})
    return pd.DataFrame(rows)


def test_poisson_rows_keep_a_partner_with_no_event_after_its_start() -> None:
    cm = _country_month()
    out = sens.run_poisson(cm, sens.SensitivitySettings(poisson_outcomes=("forced_departures",)))
    ttt = out[out.scope == "TTT"].iloc[0]
    assert ttt.zero_post_countries == "TTT"
    assert ttt.inference == "cluster_unit_separated"
    assert ttt.n_zero_cells == 36 - 28 + 1
    # the boundary effect: minus the counterfactual mean, estimated from TTT's own months
    # before its start (about e^1 counts), so clearly negative
    assert ttt.estimate < -0.5
    overall = out[(out.scope == "overall") & (out.aggregation == "simple")].iloc[0]
    assert overall.zero_post_countries == "TTT" and overall.all_zero_countries == "ZZZ"
    assert overall.n_treated_clusters == 3
    # no country is dropped silently: in the fit, or listed as all-zero
    assert overall.n_clusters + overall.n_all_zero_countries == cm.iso3.nunique()
    assert set(out.scope) == {"overall", "AAA", "BBB", "TTT"}


def test_report_part_has_nothing_to_show_without_its_marts() -> None:
    from mipa.report import parts, sensitivity_part

    assert sensitivity_part.build(None, {}, "en") is None  # type: ignore[arg-type]
    assert set(sensitivity_part.LABELS["en"]) == set(sensitivity_part.LABELS["nl"])
    assert "mipa.report.sensitivity_part" in parts.PART_MODULES


# --------------------------------------------------------------------------- slow: the warehouse
@pytest.fixture(scope="module")
def warehouse(synthetic_warehouse: tuple[Path, Path]) -> tuple[Path, Path]:
    return synthetic_warehouse


@pytest.fixture(scope="module")
def panel(warehouse) -> pd.DataFrame:
    return prepare_panel(read_frame(warehouse[1], "select * from marts.fct_country_month"))


SENSITIVITY_MARTS = {
    "fct_did_event_study_leads_lags": ["estimator", "outcome", "event_time"],
    "fct_did_pretrend_tests": ["estimator", "outcome", "vcov_source"],
    "fct_did_honest_bounds": ["estimator", "outcome", "restriction", "parameter_multiple"],
    "fct_did_poisson_estimates": ["outcome", "aggregation", "scope"],
}


@pytest.mark.slow
@pytest.mark.parametrize("mart", list(SENSITIVITY_MARTS))
def test_sensitivity_marts_exist_with_their_grain(warehouse, mart: str) -> None:
    frame = read_frame(warehouse[1], f"select * from marts.{mart}")
    keys = SENSITIVITY_MARTS[mart]
    assert len(frame) > 0
    assert not frame.duplicated(keys).any()
    assert frame[keys].notna().all().all()


@pytest.mark.slow
def test_event_studies_cover_the_window_for_every_estimator(warehouse) -> None:
    ev = read_frame(warehouse[1], "select * from marts.fct_did_event_study_leads_lags")
    counts = ev.groupby(["estimator", "outcome"]).event_time.agg(["min", "max", "nunique"])
    assert (counts["min"] == -24).all() and (counts["max"] == 24).all() and (counts["nunique"] == 49).all()
    # every estimator on every outcome, Poisson on the counts only
    assert len(counts) == 3 * 6 + 5
    assert "lead_time_days" not in set(ev.loc[ev.estimator == "poisson_etwfe", "outcome"])
    ref = ev[ev.event_time == -1]
    assert (ref.estimate == 0).all() and ref.std_error.isna().all()


@pytest.mark.slow
def test_clustered_pretrend_statistic_is_the_library_wald(warehouse, panel) -> None:
    tests = read_frame(warehouse[1], "select * from marts.fct_did_pretrend_tests")
    row = tests[(tests.estimator == "etwfe") & (tests.outcome == "forced_departures")].iloc[0]
    es = etwfe_event_study_vcov(panel, outcome="forced_departures", **KW, control_group="nevertreated")
    sub = es.select(list(range(-24, -1)))
    wald = wald_pretrend_test(sub.estimate, sub.vcov, sub.n_clusters)
    assert row.statistic == pytest.approx(wald.statistic, rel=1e-9)
    assert (row.first_lead, row.last_lead, row.df) == (-24, -2, 23)
    assert row.p_value_f == pytest.approx(stats.f.sf(wald.statistic / 23, 23, es.n_clusters - 1), rel=1e-6)


@pytest.mark.slow
def test_pretrend_tests_on_the_default_synthetic_data(warehouse) -> None:
    """Clustered covariances leave out the partners' own noise (one per start month): those
    tests reject on every outcome. The placebo-referenced test does not reject
    systematically: the synthetic feeds plant no pre-trend beyond what the common shocks
    (COVID, seasonality) do to countries of the partners' size."""
    tests = read_frame(warehouse[1], "select * from marts.fct_did_pretrend_tests")
    clustered = tests[tests.vcov_source != "placebo_rescaled"]
    assert (clustered.p_value < 1e-6).all()
    placebo = tests[tests.vcov_source == "placebo_rescaled"]
    assert len(placebo) == 6
    assert (placebo.n_placebo >= 100).all()
    assert np.median(placebo.p_value) > 0.1
    assert (placebo.p_value < 0.05).sum() <= 2


@pytest.mark.slow
def test_placebo_pretrend_test_rejects_a_planted_pretrend(panel) -> None:
    """Laissez-passers of the partners get a trend of 2 a month before their start (a
    violation of parallel trends reaching -46 at month -24 relative to month -1)."""
    settings = sens.SensitivitySettings(n_placebo=499)

    def placebo_p(frame: pd.DataFrame) -> float:
        vcovs = sens.event_study_vcovs(frame, "laissez_passers", settings)
        rows = sens.pretrend_rows(frame, "laissez_passers", vcovs, settings)
        return float(rows.loc[rows.vcov_source == "placebo_rescaled", "p_value"].iloc[0])

    planted = panel.copy()
    planted["laissez_passers"] = planted["laissez_passers"].astype(float)
    pre = (planted.first_treat > 0) & (planted.period < planted.first_treat)
    planted.loc[pre, "laissez_passers"] += 2.0 * (planted.period - planted.first_treat + 120)[pre]
    assert placebo_p(panel) > 0.1
    assert placebo_p(planted) < 0.05


@pytest.mark.slow
def test_honest_bounds_original_row_is_the_event_study_by_hand(warehouse) -> None:
    """The target is mean(months 0..11) - mean(months -3, -2, -1 = 0) of the event study;
    the original interval is estimate +/- z * std_error."""
    ev = read_frame(warehouse[1], "select * from marts.fct_did_event_study_leads_lags")
    bounds = read_frame(warehouse[1], "select * from marts.fct_did_honest_bounds")
    z = stats.norm.ppf(0.975)
    for (estimator, outcome), b in bounds.groupby(["estimator", "outcome"]):
        e = ev[(ev.estimator == estimator) & (ev.outcome == outcome)].set_index("event_time").estimate
        theta = e.loc[0:11].mean() - e.loc[[-3, -2, -1]].mean()
        orig = b[b.restriction == "original"].iloc[0]
        assert orig.estimate == pytest.approx(theta, abs=1e-9 * max(1, abs(theta)))
        assert (orig.ci_low, orig.ci_high) == pytest.approx(
            (theta - z * orig.std_error, theta + z * orig.std_error), rel=1e-9)
    assert set(bounds.outcome) == {"forced_departures", "laissez_passers", "confirmations", "lead_time_days",
                                   "requests"}


@pytest.mark.slow
def test_honest_bounds_widen_and_break_down_where_zero_enters(warehouse) -> None:
    bounds = read_frame(warehouse[1], "select * from marts.fct_did_honest_bounds")
    for _, b in bounds.groupby(["estimator", "outcome"]):
        orig = b[b.restriction == "original"].iloc[0]
        rm = b[b.restriction == "relative_magnitude"].sort_values("parameter")
        sd = b[b.restriction == "smoothness"].sort_values("parameter")
        # Mbar = 0 allows no violation: the C-LF set is the original interval up to its
        # grid (step 12 sd / 199 around the point identified set)
        step = 12 * orig.std_error / 199
        first = rm.iloc[0]
        assert first.parameter == 0
        assert abs(first.ci_low - orig.ci_low) <= 1.05 * step and abs(first.ci_high - orig.ci_high) <= 1.05 * step
        # relative magnitudes: nested sets; smoothness: the FLCI's length grows with M
        tol = 0.01 * (rm.ci_high - rm.ci_low).to_numpy()
        assert (np.diff(rm.ci_low) <= tol[1:]).all() and (np.diff(rm.ci_high) >= -tol[1:]).all()
        assert (np.diff(sd.ci_high - sd.ci_low) >= -1e-6 * (sd.ci_high - sd.ci_low).max()).all()
        assert not (rm.open_lower | rm.open_upper).any()
        for grid in (rm, sd):
            bd = grid.breakdown_value.iloc[0]
            assert (grid.breakdown_value == bd).all()
            if pd.isna(bd):
                assert not grid.contains_zero.any()
                continue
            below = grid[grid.parameter < bd - 1e-12]
            assert not below.contains_zero.any()
            at = grid[grid.parameter >= bd - 1e-12]
            assert at.contains_zero.iloc[0]
            if bd > 0:  # bracketed by the last grid value without 0 and the first with it
                assert below.parameter.max() < bd <= at.parameter.min() + 1e-12


@pytest.mark.slow
def test_poisson_mart_recovers_morocco_and_drops_no_country(warehouse) -> None:
    raw, db = warehouse
    poisson = read_frame(db, "select * from marts.fct_did_poisson_estimates")
    truth = pd.read_csv(raw / "truth.csv").set_index(["iso3", "outcome"]).planted_effect
    mar = poisson[(poisson.scope == "MAR") & (poisson.outcome == "forced_departures")].iloc[0]
    # the mart is the library's fit (poisson_etwfe, checked against pyfixest's fepois in
    # test_poisson_etwfe.py) on the warehouse panel
    fit = poisson_etwfe(prepare_panel(read_frame(db, "select * from marts.fct_country_month")),
                        outcome="forced_departures", **KW)
    overall = poisson[(poisson.scope == "overall") & (poisson.outcome == "forced_departures")
                      & (poisson.aggregation == "simple")].iloc[0]
    assert overall.estimate == pytest.approx(fit.overall("simple").estimate, rel=1e-10)
    assert overall.std_error == pytest.approx(fit.overall("simple").std_error, rel=1e-8)
    assert mar.estimate == pytest.approx(truth["MAR", "forced_departures"], abs=1.0)
    assert mar.ci_low < truth["MAR", "forced_departures"] + 1.0
    countries = read_frame(db, "select count(distinct iso3) as n from marts.fct_country_month").n.iloc[0]
    assert ((poisson.n_clusters + poisson.n_all_zero_countries) == countries).all()
    partners = set(truth.index.get_level_values("iso3"))
    for outcome in sens.COUNT_OUTCOMES:
        rows = poisson[poisson.outcome == outcome]
        assert partners <= set(rows.scope)
        # the listed all-zero countries are exactly those without any event in the window
        zero = read_frame(db, f"select iso3 from marts.fct_country_month group by iso3 having sum({outcome}) = 0")
        listed = rows.all_zero_countries.iloc[0]
        assert sorted(zero.iso3) == ([] if listed is None else listed.split(", "))


@pytest.mark.slow
def test_sensitivity_report_part_renders_in_both_languages(warehouse) -> None:
    from mipa.report.data import load
    from mipa.report.figure_model import FigureSpec, render
    from mipa.report.html import render_table
    from mipa.report.parts import load_marts
    from mipa.report.sensitivity_part import MARTS, build
    from mipa.report.table_model import Table

    db = warehouse[1]
    data, marts = load(db), load_marts(db, MARTS)
    for lang in ("en", "nl"):
        part = build(data, marts, lang)
        assert part is not None and part.id == "sensitivity"
        tables = [b for b in part.blocks if isinstance(b, Table)]
        figures = [b for b in part.blocks if isinstance(b, FigureSpec)]
        assert [t.name for t in tables] == ["table_s1_pretrend_tests", "table_s2_honest_bounds",
                                            "table_s3_poisson_etwfe"]
        assert len(figures) == 5
        html = "".join(render_table(t) for t in tables)
        if lang == "nl":
            assert "Tabel S2" in html and "0,0" in html
        assert len(tables[0].data) == len(marts["marts.fct_did_pretrend_tests"])
    first = render(figures[-1])
    assert render(figures[-1]).svg == first.svg  # byte-stable


def test_poisson_table_shows_the_validated_interval_and_no_star_without_one() -> None:
    """Table S3 with fct_did_inference: Poisson ETWFE's cells carry its default method's
    interval and star (the clustered interval beneath), ETWFE's linear cell, with no valid
    method, the estimate alone and the clustered interval's measured coverage."""
    from mipa.report.sensitivity_part import poisson_table

    base = {"outcome": "forced_departures", "std_error": 0.1, "status": "estimated", "reason": None,
            "reason_detail": None, "n_all_zero_countries": 0, "zero_post_countries": None}
    poisson = pd.DataFrame([
        {**base, "aggregation": "simple", "scope": "overall", "estimate": 2.5, "ci_low": 2.3, "ci_high": 2.7,
         "p_value": 0.001, "inference": "cluster_unit"},
        {**base, "aggregation": "group", "scope": "MAR", "estimate": 9.0, "ci_low": 8.8, "ci_high": 9.2,
         "p_value": 0.001, "inference": "cluster_unit"},
        {**base, "aggregation": "group", "scope": "TUR", "estimate": 0.4, "ci_low": 0.3, "ci_high": 0.5,
         "p_value": 0.001, "inference": "cluster_unit"},
    ])
    estimates = pd.DataFrame([{**base, "estimator": "etwfe", "aggregation": "simple", "scope": "overall",
                               "estimate": 2.8, "ci_low": 2.4, "ci_high": 3.2, "p_value": 0.001,
                               "inference": "cluster_unit", "n_obs": 100, "control_group": "notyettreated"}])
    partners = pd.DataFrame({"iso3": ["MAR", "TUR"], "country_name_en": ["Morocco", "Turkey"],
                             "country_name_nl": ["Marokko", "Turkije"],
                             "mipa_start_month": pd.to_datetime(["2022-06-01", "2022-10-01"])})
    rows = [("poisson_etwfe", "cluster_unit", "overall", False, True, 0.45, 2.5, 2.3, 2.7),
            ("poisson_etwfe", "conformal_average_poisson_refit", "overall", True, True, 0.934, 2.5, 1.9, 3.4),
            ("poisson_etwfe", "conformal_poisson_t", "MAR", True, True, 0.95, 9.0, 6.0, 12.0),
            ("poisson_etwfe", "conformal_poisson_t", "TUR", True, True, 0.95, 0.4, -0.5, 1.2),
            ("etwfe", "cluster_unit", "overall", False, False, 0.684, 2.8, 2.4, 3.2)]
    inference = pd.DataFrame(rows, columns=["estimator", "inference", "scope", "is_default_method",
                                            "valid_interval_at_design", "mc_coverage", "estimate", "ci_low",
                                            "ci_high"]).assign(outcome="forced_departures", mc_size=0.05)
    table = poisson_table(poisson, estimates, partners, "en", inference)
    cells = table.body[0].cells
    assert cells[1].text == "2.50* [1.90 3.40]" and cells[1].subtext == "clustered [2.30 2.70]"
    assert cells[2].text == "2.80" and cells[2].subtext.startswith("no valid interval at this design")
    assert "covers 68.4%" in cells[2].subtext
    assert cells[3].text == "9.00*" and cells[4].text == "0.40"  # Turkey: its conformal interval contains 0
    assert any("default inference method" in n for n in table.notes)
    without = poisson_table(poisson, estimates, partners, "en")  # no mart: the clustered numbers as before
    assert without.body[0].cells[1].text == "2.50* [2.30 2.70]" and without.body[0].cells[4].text == "0.40*"
