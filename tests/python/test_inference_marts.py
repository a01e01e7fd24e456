"""fct_did_inference on the synthetic warehouse: every method, consistent with fct_did_estimates,
one default per estimator and scope, chosen by the documented rule from the Monte Carlo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_frame

from mipa.inference.suite import METHODS

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parents[2] / "montecarlo" / "inference_coverage.csv"
DESIGNS = Path(__file__).resolve().parents[2] / "montecarlo" / "estimator_designs.csv"
PARTNERS = {"MAR", "TUR", "EGY", "NGA", "IRQ", "TUN"}
COUNTS = ["forced_departures", "laissez_passers", "confirmations", "requests", "verified_departures"]


@pytest.fixture(scope="module")
def inference(synthetic_warehouse) -> pd.DataFrame:
    return read_frame(synthetic_warehouse[1], "select * from marts.fct_did_inference")


def test_every_method_every_outcome(inference):
    for outcome, rows in inference.groupby("outcome"):
        assert set(zip(rows["estimator"], rows["inference"], strict=True)) == set(METHODS), outcome
        for (estimator, method), grp in rows.groupby(["estimator", "inference"]):
            scopes = set(grp["scope"])
            if estimator in ("twfe",):
                assert scopes == {"overall"}
            elif method.startswith("conformal_average"):
                assert scopes == {"overall"}  # the average of the per-country conformal effects
            elif estimator == "sdid" or method.startswith("conformal"):  # per-country methods
                assert scopes == PARTNERS
            else:
                assert scopes == PARTNERS | {"overall"}, (estimator, method)
    # SDID needs a balanced block: it runs on the counts, not on lead time (months without a value)
    sdid = inference[inference["estimator"] == "sdid"]
    assert sdid[sdid["outcome"].isin(COUNTS)]["estimate"].notna().all()
    assert sdid[sdid["outcome"] == "lead_time_days"]["estimate"].isna().all()
    # Poisson ETWFE is for counts: lead time has its rows, each saying why there is no number
    poisson_lead = inference[(inference["estimator"] == "poisson_etwfe") & (inference["outcome"] == "lead_time_days")]
    # (clustered: overall and six partners; conformal: the average and six partners)
    assert (poisson_lead["reason"] == "not_a_count").all() and len(poisson_lead) == 14
    # the per-country conformal intervals are estimated for every partner on the counts
    conformal = inference[(inference["inference"] == "conformal_factor_t_ma2") & inference["outcome"].isin(COUNTS)]
    assert conformal["estimate"].notna().all() and (conformal["ci_low"] < conformal["ci_high"]).all()
    # Poisson ETWFE's conformal rows carry its own estimates: those of its clustered rows
    poisson = inference[(inference["estimator"] == "poisson_etwfe") & inference["outcome"].isin(COUNTS)]
    clustered = poisson[poisson["inference"] == "cluster_unit"].set_index(["outcome", "scope"])["estimate"]
    own = poisson[poisson["inference"] != "cluster_unit"].set_index(["outcome", "scope"])["estimate"]
    assert len(own) == len(clustered) == 7 * len(COUNTS)
    pd.testing.assert_series_equal(own.sort_index(), clustered.sort_index(), rtol=1e-9)


def test_clustered_rows_equal_did_estimates(inference, synthetic_warehouse):
    """The suite's ETWFE-clustered and TWFE rows are the fct_did_estimates rows (same estimators)."""
    est = read_frame(synthetic_warehouse[1], "select * from marts.fct_did_estimates")
    for estimator, aggregation in (("etwfe", "simple"), ("twfe", "simple")):
        mine = inference[(inference["estimator"] == estimator) & (inference["inference"] == "cluster_unit")
                         & (inference["scope"] == "overall")].set_index("outcome")
        theirs = est[(est["estimator"] == estimator) & (est["inference"] == "cluster_unit")
                     & (est["scope"] == "overall") & (est["aggregation"] == aggregation)].set_index("outcome")
        for col in ("estimate", "ci_low", "ci_high"):
            np.testing.assert_allclose(mine.loc[theirs.index, col], theirs[col], rtol=1e-9, err_msg=estimator)
    # the overall randomization estimate is the imputation estimator = ETWFE not-yet-treated
    # (exactly on a balanced panel: the counts, not lead time)
    counts = inference[inference["outcome"].isin(COUNTS)]
    ri = counts[(counts["inference"] == "randomization_ferman_pinto") & (counts["scope"] == "overall")]
    cl = counts[(counts["estimator"] == "etwfe") & (counts["inference"] == "cluster_unit")
                & (counts["scope"] == "overall")]
    np.testing.assert_allclose(ri.set_index("outcome")["estimate"].sort_index(),
                               cl.set_index("outcome")["estimate"].sort_index(), rtol=1e-8)


def test_randomization_intervals_are_wider_than_clustered_for_morocco(inference):
    """With one treated country the clustered interval only sees the regression's residual
    noise; the placebo interval sees how much a single country's estimate moves."""
    rows = inference[(inference["scope"] == "MAR") & (inference["outcome"] == "forced_departures")]
    width = (rows["ci_high"] - rows["ci_low"]).groupby(rows["inference"]).first()
    assert width["randomization_ferman_pinto"] > 3 * width["cluster_unit"]


def test_default_method_follows_the_documented_rule(inference):
    """Recompute int_inference__method_choice's rule in pandas from the two Monte Carlo files:
    per estimator, scope kind and outcome measured (every method on forced departures; the
    design study's additive designs for the outcomes it adds), an outcome without rows of its
    own read with forced departures'."""
    main = pd.read_csv(RESULTS)
    extra = pd.read_csv(DESIGNS)
    extra = extra[(extra["effect_form"] == "additive") & ~extra["outcome"].isin(main["outcome"])]
    results = pd.concat([main, extra.drop(columns="effect_form")], ignore_index=True)
    kinds = results[results["scope"].isin(["overall", "countries"])]
    keys = ["estimator", "inference", "outcome", "scope"]
    design = {e: kinds[kinds["effects"] == e].set_index(keys) for e in ("annex", "homogeneous", "zero")}
    table = design["annex"][["coverage", "median_width", "oracle_width"]].join(
        design["homogeneous"]["coverage"].rename("coverage_homogeneous")).join(
        design["zero"]["rejection_rate"].rename("size"))
    table["meets"] = (table["coverage"].between(0.93, 0.97) & table["coverage_homogeneous"].between(0.93, 0.97)
                      & table["size"].between(0.03, 0.07) & (table["median_width"] <= 1.5 * table["oracle_width"]))
    expected = {}
    for (estimator, outcome, scope), grp in table.reset_index().groupby(["estimator", "outcome", "scope"]):
        qualified = grp[grp["meets"]].sort_values(["median_width", "inference"])
        expected[(estimator, outcome, scope)] = qualified["inference"].iloc[0] if len(qualified) else None
    assert ("conformal", "lead_time_days", "overall") in expected  # the design study's outcomes are in
    for (estimator, outcome, scope), grp in inference.groupby(["estimator", "outcome", "scope"]):
        kind = "overall" if scope == "overall" else "countries"
        key = (estimator, outcome, kind) if (estimator, outcome, kind) in expected else \
            (estimator, "forced_departures", kind)
        defaults = grp[grp["is_default_method"]]
        assert len(defaults) <= 1
        want = expected.get(key)
        assert (defaults["inference"].iloc[0] if len(defaults) else None) == want, (estimator, outcome, scope)
        # no default is a statement the mart makes: no valid interval at this design
        assert grp["valid_interval_at_design"].all() == (want is not None)
        assert set(grp["mc_outcome"].dropna()) <= {key[1]}, (estimator, outcome, scope)


def test_report_shows_default_and_clustered_intervals(synthetic_warehouse, tmp_path):
    from mipa.report import build_report

    index = build_report(synthetic_warehouse[1], tmp_path / "reports", lang="en")
    html = index.read_text(encoding="utf-8")
    for name in ("table_i1_overall_inference", "table_i2_country_inference", "table_i3_montecarlo",
                 "table_i4_estimator_designs", "figure_i1_coverage"):
        assert f'id="{name}"' in html or f"{name}.png" in html, name
    table2 = pd.read_csv(index.parent / "table_02_etwfe.csv")
    overall = table2[(table2["scope"] == "overall") & (table2["outcome"] == "forced_departures")].iloc[0]
    inf = read_frame(synthetic_warehouse[1], """select * from marts.fct_did_inference where estimator = 'etwfe'
               and outcome = 'forced_departures' and scope = 'overall' and is_default_method""")
    if inf.empty:  # no method qualifies at this design: the table says so, with the measured coverage
        assert not bool(overall["valid_interval_at_design"]) and "no valid interval at this design" in html
        return
    inf = inf.iloc[0]
    if inf["inference"] != "cluster_unit":
        assert overall["default_inference"] == inf["inference"]
        assert overall["default_ci_low"] == pytest.approx(inf["ci_low"], rel=1e-12)
        assert "clustered [" in html


def test_estimator_designs_mart_is_the_design_study_file(synthetic_warehouse, tmp_path):
    """fct_estimator_designs holds montecarlo/estimator_designs.csv row for row (scripts/design_study.py
    writes it; dbt reads it as data), with the bias in sampling sds from the oracle width, and
    Table I4 shows those numbers."""
    mart = read_frame(synthetic_warehouse[1], "select * from marts.fct_estimator_designs")
    keys = ["effects", "effect_form", "outcome", "estimator", "inference", "scope"]
    file = pd.read_csv(DESIGNS)
    assert len(mart) == len(file) and not mart.duplicated(keys).any()
    both = mart.merge(file, on=keys, suffixes=("", "_file"), validate="one_to_one")
    assert len(both) == len(file)
    for col in ("bias", "rmse", "coverage", "median_width", "oracle_width"):
        np.testing.assert_allclose(both[col], both[f"{col}_file"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(both["bias_in_sd"], both["bias"] / (both["oracle_width"] / (2 * 1.959964)),
                               rtol=1e-12, equal_nan=True)
    from mipa.report import build_report

    index = build_report(synthetic_warehouse[1], tmp_path / "reports", lang="en")
    table = pd.read_csv(index.parent / "table_i4_estimator_designs.csv")
    shown = table.merge(both[both["scope"] == "overall"], on=keys[:-1], suffixes=("", "_mart"))
    assert len(shown) == len(table) > 0 and table["bias_in_sd"].notna().any()
    np.testing.assert_allclose(shown["bias_in_sd"], shown["bias_in_sd_mart"], rtol=1e-12, equal_nan=True)
