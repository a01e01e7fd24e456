"""Data conditions never stop the estimation layer (issue: one country that cannot be
estimated stopped the whole build).

Fast tests: the reason catalogue, the status bookkeeping, and a Hypothesis search over
small panels with late, empty, all-zero and control-starved partners: every estimator,
inference method and sensitivity analysis returns a complete table of rows or reasons,
never an exception. A bug (a missing column) still raises.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mipa.estimability import REASONS, STATUSES, NotEstimable, attempt, finalize_status
from mipa.estimation import EstimationSettings, prepare_panel, run_monthly, run_specs
from mipa.inference.suite import METHODS, InferenceSettings, inference_table
from mipa.report import labels
from mipa.sensitivity.run import SensitivitySettings, run_event_study_sensitivity

ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = ("forced_departures", "lead_time_days")


# --------------------------------------------------------------------------- catalogue
def test_reason_seed_equals_the_python_catalogue() -> None:
    with (ROOT / "seeds" / "not_estimable_reasons.csv").open(encoding="utf-8") as fh:
        seed = {row["reason"]: row["description"] for row in csv.DictReader(fh)}
    assert seed == REASONS


def test_every_reason_has_report_words_in_both_languages() -> None:
    for lang in labels.LANGUAGES:
        assert set(labels.REASONS[lang]) == set(REASONS)
        assert labels.not_estimable(lang, "too_few_controls").startswith(labels.NOT_ESTIMABLE_PREFIX[lang])


def test_an_undocumented_reason_is_a_bug() -> None:
    with pytest.raises(ValueError, match="undocumented"):
        NotEstimable("because")


def test_attempt_turns_data_conditions_into_reasons_and_lets_bugs_through() -> None:
    out, why = attempt(lambda: np.linalg.inv(np.zeros((2, 2))))
    assert out is None and why.reason == "singular_design"
    out, why = attempt(lambda: (_ for _ in ()).throw(NotEstimable("too_few_controls", "3 controls")))
    assert why.reason == "too_few_controls" and why.detail == "3 controls"
    with pytest.raises(KeyError):
        attempt(lambda: {}["missing"])


def test_finalize_status_never_calls_a_missing_number_estimated() -> None:
    frame = pd.DataFrame({"estimate": [1.0, np.nan, 2.0, np.nan], "std_error": [0.5, np.nan, np.nan, 1.0],
                          "status": [None, "estimated", None, None], "reason": [None, None, None, "too_few_controls"],
                          "reason_detail": [None, None, None, None]})
    out = finalize_status(frame)
    assert list(out["status"]) == ["estimated", "not_estimable", "estimated", "not_estimable"]
    assert list(out["reason"]) == [None, "no_estimate_for_scope", "no_variance", "too_few_controls"]


def test_finalize_status_fills_details_and_keeps_what_rows_carry() -> None:
    given_detail = "only 2 control countries"
    frame = pd.DataFrame(
        {"estimate": [np.nan, np.nan, 1.0, 1.0, np.nan, 3.0],
         "std_error": [np.nan, np.nan, 0.1, np.nan, np.nan, np.nan],
         "status": [np.nan, None, "estimated", None, "not_estimable", "not_estimable"],
         "reason": ["cells_left_out", "too_few_controls", "cells_left_out", None, None, "too_few_controls"],
         "reason_detail": [None, given_detail, "cells 2016-01", None, None, None]},
        index=[7, 7, 3, 3, 0, 1])  # a repeated index must not align rows
    out = finalize_status(frame)
    assert list(out.index) == [7, 7, 3, 3, 0, 1]
    assert list(out["status"]) == ["not_estimable", "not_estimable", "estimated", "estimated",
                                   "not_estimable", "not_estimable"]
    # an estimate-less row cannot keep a reason that describes an estimate
    assert list(out["reason"]) == ["no_estimate_for_scope", "too_few_controls", "cells_left_out", "no_variance",
                                   None, "too_few_controls"]
    assert list(out["reason_detail"]) == [REASONS["no_estimate_for_scope"], given_detail, "cells 2016-01",
                                          REASONS["no_variance"], None, None]
    assert frame["status"].isna().sum() == 3  # the input is not changed


# --------------------------------------------------------------------------- panels
def country_month(
    n_controls: int, n_periods: int, starts: list[int], treated_kind: list[str], seed: int,
    zero_controls: int = 0,
) -> pd.DataFrame:
    """A small fct_country_month: controls C00.., treated T0.. starting at month index
    ``starts[k]`` (1-based); ``treated_kind[k]``: 'normal', 'all_zero' (forced departures 0
    throughout), 'no_post' (lead time missing from the start on), 'no_lead' (lead time
    never observed). Lead time is missing in a random third of the other months."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2016-01-01", periods=n_periods, freq="MS")
    rows = []
    units = [(f"C{i:02d}", None, "normal") for i in range(n_controls)]
    units += [(f"T{k}", s, kind) for k, (s, kind) in enumerate(zip(starts, treated_kind, strict=True))]
    for i, (iso3, start, kind) in enumerate(units):
        level = rng.gamma(2.0, 2.0)
        for t, month in enumerate(months, start=1):
            post = start is not None and t >= start
            forced = rng.poisson(level + (2.0 if post else 0.0))
            if kind == "all_zero" or (start is None and i < zero_controls):
                forced = 0
            lead = float(rng.gamma(3.0, 30.0)) if rng.random() > 1 / 3 else np.nan
            if kind == "no_lead" or (kind == "no_post" and post):
                lead = np.nan
            rows.append({
                "iso3": iso3, "month_start": month, "month_index": t,
                "partnership_start_month": months[start - 1] if start is not None else pd.NaT,
                "mipa": int(post), "forced_departures": forced, "lead_time_days": lead,
            })
    return pd.DataFrame(rows)


@st.composite
def hard_panels(draw: st.DrawFn) -> pd.DataFrame:
    n_periods = draw(st.integers(8, 18))
    n_treated = draw(st.integers(1, 3))
    starts = [draw(st.integers(2, n_periods)) for _ in range(n_treated)]  # n_periods = starts in the last month
    kinds = [draw(st.sampled_from(["normal", "all_zero", "no_post", "no_lead"])) for _ in range(n_treated)]
    n_controls = draw(st.integers(1, 22))
    zero_controls = draw(st.integers(0, n_controls))
    return country_month(n_controls, n_periods, starts, kinds, draw(st.integers(0, 10_000)), zero_controls)


def assert_documented(frame: pd.DataFrame, value: str = "estimate") -> None:
    assert frame["status"].isin(STATUSES).all()
    missing = ~np.isfinite(pd.to_numeric(frame[value], errors="coerce").to_numpy(dtype=float))
    assert ((frame["status"] == "not_estimable").to_numpy() == missing).all()
    reasons = frame["reason"].dropna()
    assert reasons.isin(list(REASONS)).all(), set(reasons) - set(REASONS)
    assert frame.loc[frame["status"] == "not_estimable", "reason"].notna().all()


ESTIMATION = EstimationSettings(n_boot=19, outcomes=OUTCOMES)
INFERENCE = InferenceSettings(wild_n_boot=49, n_placebo=19, cs_n_boot=19)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(hard_panels())
def test_estimation_layer_gives_every_row_or_a_reason(cm: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_monthly(cm, ESTIMATION)
        panel = prepare_panel(cm)
        treated = sorted(panel.loc[panel["first_treat"] > 0, "iso3"].unique())
        est = out[out["result_table"] == "estimate"]
        for outcome in OUTCOMES:
            for spec in run_specs(ESTIMATION):
                have = set(zip(*(est.loc[(est["estimator"] == spec.estimator) & (est["outcome"] == outcome), c]
                                 for c in ("aggregation", "scope", "inference")), strict=True))
                assert set(spec.expected(treated)) <= have
        assert_documented(out)
        for outcome in OUTCOMES:
            table = inference_table(panel, outcome, INFERENCE)
            expected = {(e, m) for e, m in METHODS}
            assert expected == set(zip(table["estimator"], table["inference"], strict=True))
            for (estimator, method), rows in table.groupby(["estimator", "inference"]):
                scopes = set(rows["scope"])
                if method.startswith("conformal_average"):  # their overall average
                    assert scopes == {"overall"}
                elif estimator == "sdid" or method.startswith("conformal_"):  # per-country methods
                    assert scopes == set(treated)
                else:
                    assert {"overall"} | (set(treated) if estimator != "twfe" else set()) == scopes
            assert_documented(table)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(hard_panels())
def test_sensitivity_layer_gives_every_row_or_a_reason(cm: pd.DataFrame) -> None:
    options = SensitivitySettings(n_placebo=19, n_band_draws=200, event_window=(-9, 5), pretrend_leads=(-6, -2),
                                  honest_pre_quarters=2, honest_post_quarters=1, outcomes=OUTCOMES,
                                  honest_outcomes=OUTCOMES, poisson_outcomes=("forced_departures",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_event_study_sensitivity(cm, options)
    for outcome in OUTCOMES:
        studies = set(out.loc[(out["result_table"] == "event_study") & (out["outcome"] == outcome), "estimator"])
        expected = {"etwfe", "csdid", "twfe"} | ({"poisson_etwfe"} if outcome == "forced_departures" else set())
        assert studies == expected
        bounds = set(out.loc[(out["result_table"] == "honest_bounds") & (out["outcome"] == outcome), "estimator"])
        assert bounds == {"etwfe", "csdid"}
    tests = out[out["result_table"] == "pretrend_test"]
    assert_documented(tests, value="statistic")
    assert_documented(out[out["result_table"] != "pretrend_test"])


# --------------------------------------------------------------------------- named conditions
def test_partner_in_the_last_month_without_lead_time_is_reported_not_dropped() -> None:
    cm = country_month(20, 24, [6, 24], ["normal", "no_post"], seed=3)
    out = run_monthly(cm, ESTIMATION)
    row = out[(out["result_table"] == "estimate") & (out["estimator"] == "etwfe") & (out["outcome"] == "lead_time_days")
              & (out["scope"] == "T1")]
    assert len(row) == 1
    assert row["status"].iloc[0] == "not_estimable" and row["reason"].iloc[0] == "no_post_treatment_data"
    overall = out[(out["result_table"] == "estimate") & (out["estimator"] == "etwfe")
                  & (out["outcome"] == "lead_time_days") & (out["scope"] == "overall")
                  & (out["aggregation"] == "simple")]
    assert overall["status"].iloc[0] == "estimated" and np.isfinite(overall["estimate"].iloc[0])


def test_small_control_pool_makes_placebo_methods_not_estimable_with_the_count() -> None:
    panel = prepare_panel(country_month(8, 20, [10], ["normal"], seed=5))
    table = inference_table(panel, "forced_departures", INFERENCE)
    placebo = table[table["inference"].str.startswith("randomization")]
    assert (placebo["reason"] == "too_few_controls").all()
    assert placebo["reason_detail"].str.contains("8 control countries").all()
    clustered = table[(table["inference"] == "cluster_unit") & (table["estimator"] == "etwfe")]
    assert (clustered["status"] == "estimated").all()


def test_a_missing_column_is_a_bug_and_still_raises() -> None:
    cm = country_month(5, 12, [6], ["normal"], seed=1).drop(columns=["lead_time_days"])
    with pytest.raises(KeyError):
        run_monthly(cm, ESTIMATION)


# --------------------------------------------------------------------------- the whole warehouse
@pytest.mark.slow
def test_hard_scenario_builds_every_mart_and_the_report(tmp_path: Path) -> None:
    """``mipa simulate --scenario hard`` (Tunisia three months before the end with no
    confirmations after its start, Egypt without forced departures, 8 controls) builds,
    every mart has its rows with documented reasons, and the report says "not estimable"."""
    import os
    import subprocess
    import sys

    from mipa import settings as mipa_settings

    raw, db, reports = tmp_path / "raw", tmp_path / "mipa.duckdb", tmp_path / "reports"
    env = {**os.environ, "MIPA_PROJECT_DIR": str(mipa_settings.project_dir()), "OPENBLAS_NUM_THREADS": "1",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "MIPA_ESTIMATION_WORKERS": "1"}
    cli = [sys.executable, "-m", "mipa.cli"]
    subprocess.run([*cli, "simulate", "--scenario", "hard", "--out", str(raw), "--quiet"], env=env, check=True)
    subprocess.run([*cli, "build", "--raw-dir", str(raw), "--db", str(db)], env=env, check=True)

    panel = read_frame(db, "select * from marts.fct_country_month")
    tun = panel[(panel["iso3"] == "TUN") & (panel["mipa"] == 1)]
    assert len(tun) == 3 and tun["confirmations"].sum() == 0  # the conditions are really there
    assert panel.loc[panel["iso3"] == "EGY", "forced_departures"].sum() == 0
    assert panel.loc[panel["partnership_start_month"].isna(), "iso3"].nunique() < 19

    partners = ["EGY", "IRQ", "MAR", "NGA", "TUN", "TUR"]
    estimates = read_frame(db, "select * from marts.fct_did_estimates")
    for spec in run_specs(EstimationSettings()):
        for outcome in EstimationSettings().outcomes:
            rows = estimates[(estimates["estimator"] == spec.estimator) & (estimates["outcome"] == outcome)]
            have = set(zip(rows["aggregation"], rows["scope"], rows["inference"], strict=True))
            assert set(spec.expected(partners)) <= have, (spec, outcome)
    tun_lead = estimates[(estimates["estimator"] == "etwfe") & (estimates["outcome"] == "lead_time_days")
                         & (estimates["scope"] == "TUN")]
    assert tun_lead["status"].tolist() == ["not_estimable"]

    for mart, value in [("fct_did_estimates", "estimate"), ("fct_did_inference", "estimate"),
                        ("fct_did_event_study_leads_lags", "estimate"), ("fct_did_honest_bounds", "estimate"),
                        ("fct_did_pretrend_tests", "statistic"), ("fct_did_robustness", "estimate"),
                        ("fct_did_poisson_estimates", "estimate"), ("fct_did_yearly", "estimate")]:
        assert_documented(read_frame(db, f"select * from marts.{mart}"), value=value)
    inference = read_frame(db, "select * from marts.fct_did_inference")
    placebo = inference[inference["inference"].str.startswith("randomization")]
    assert (placebo["reason"] == "too_few_controls").all() and len(placebo) == 2 * 6 * 7
    poisson = read_frame(db, "select * from marts.fct_did_poisson_estimates")
    egy = poisson[(poisson["outcome"] == "forced_departures") & (poisson["scope"] == "EGY")]
    assert egy["status"].tolist() == ["not_estimable"] and egy["reason"].tolist() == ["all_zero_outcome"]

    from mipa.report import build_report

    html = build_report(db, reports, lang="en").read_text(encoding="utf-8")
    assert "not estimable (too few control countries)" in html
    assert "not estimable (" in html
