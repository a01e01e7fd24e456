"""The Monte Carlo harness: its panels are the generator's, its scoring is right, and a
reduced run reproduces the issue's finding (clustered intervals under-cover, the
randomization intervals do not)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mipa.estimators.etwfe import etwfe
from mipa.inference.suite import METHODS, InferenceSettings, inference_table
from mipa.montecarlo.design import GENERATOR_STREAMS, Design, PanelSampler
from mipa.montecarlo.harness import only_estimators, run_designs, run_montecarlo, summarize
from mipa.simulate.calibration import panel_from_feeds
from mipa.simulate.runner import simulate

COUNTS = ["forced_departures", "laissez_passers", "confirmations", "requests", "verified_departures"]


@pytest.fixture(scope="module")
def sampler() -> PanelSampler:
    return PanelSampler(Design())


def test_generator_streams_give_the_simulated_feeds_panel(sampler, tmp_path):
    """With mipa simulate's own random streams the harness's panel is, cell for cell, the
    panel counted from the feed files the generator writes: same model, same definitions."""
    drawn = sampler.draw(GENERATOR_STREAMS)
    simulate(tmp_path, seed=Design().seed)
    feeds = panel_from_feeds(tmp_path).sort_values(["iso3", "month"]).reset_index(drop=True)
    mine = drawn.panel.sort_values(["iso3", "period"]).reset_index(drop=True)
    assert list(mine["iso3"]) == list(feeds["iso3"])
    for col in COUNTS:
        np.testing.assert_array_equal(mine[col].to_numpy(), feeds[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(mine["lead_time_days"].to_numpy(), feeds["lead_time_days"].to_numpy(),
                               rtol=0, atol=1e-9, equal_nan=True)
    truth = pd.read_csv(tmp_path / "truth.csv")
    for _, row in truth.iterrows():
        assert drawn.truth[row["outcome"]][row["iso3"]] == pytest.approx(row["planted_effect"], abs=5e-5)  # truth.csv keeps 4 decimals
    # starts: Morocco 2022-06 is month 78 of the 2016-01 window; never-treated countries 0
    starts = mine.groupby("iso3")["first_treat"].first()
    assert starts["MAR"] == 78 and starts["TUN"] == 118
    assert (starts.drop(drawn.treated) == 0).all()


def test_overall_truth_weights_countries_by_post_months(sampler):
    drawn = sampler.draw(0)
    truth = drawn.truth["forced_departures"]
    post = {"MAR": 43, "TUR": 39, "EGY": 32, "NGA": 32, "IRQ": 18, "TUN": 3}
    expected = sum(truth[c] * n for c, n in post.items()) / sum(post.values())
    assert truth["overall"] == pytest.approx(expected, rel=1e-12)
    assert truth["MAR"] == pytest.approx(9.3, abs=0.05)


def test_replications_are_deterministic_and_independent(sampler):
    a, b, c = sampler.draw(3).panel, sampler.draw(3).panel, sampler.draw(4).panel
    pd.testing.assert_frame_equal(a, b)
    assert (a["forced_departures"] != c["forced_departures"]).mean() > 0.2


def test_effect_patterns():
    zero = PanelSampler(Design(effects="zero")).draw(0)
    assert all(abs(v) < 1e-9 for v in zero.truth["forced_departures"].values())
    same = PanelSampler(Design(effects="homogeneous")).draw(0)
    annex_mean = np.mean([9.3, 0.5, 0.4, 1.4, -0.3, 0.9])
    for iso3 in same.treated:
        assert same.truth["forced_departures"][iso3] == pytest.approx(annex_mean, abs=0.05)
    two = PanelSampler(Design(n_treated=2)).draw(0)
    assert two.treated == ["MAR", "TUR"]
    assert set(two.panel.loc[two.panel["first_treat"] > 0, "iso3"]) == {"MAR", "TUR"}
    with pytest.raises(ValueError):
        PanelSampler(Design(n_treated=7)).draw(0)
    with pytest.raises(ValueError):
        Design(effects="large")


def test_suite_rows_match_the_estimators(sampler):
    """The suite's clustered ETWFE rows are etwfe()'s rows; every method is present."""
    panel = sampler.draw(1).panel
    fast = only_estimators(InferenceSettings(), ["etwfe", "csdid", "twfe"])
    table = inference_table(panel, "forced_departures", fast)
    assert set(zip(table["estimator"], table["inference"], strict=True)) == {
        m for m in METHODS if m[0] not in ("sdid", "conformal", "poisson_etwfe")}
    direct = etwfe(panel, outcome="forced_departures", unit="iso3", period="period", first_treat="first_treat")
    row = table[(table["estimator"] == "etwfe") & (table["inference"] == "cluster_unit")
                & (table["scope"] == "overall")].iloc[0]
    expected = direct.overall("simple")
    assert row["estimate"] == pytest.approx(expected["estimate"], rel=1e-12)
    assert row["ci_low"] == pytest.approx(expected["ci_low"], rel=1e-12)
    ri = table[table["inference"].str.startswith("randomization")]
    assert ri["std_error"].isna().all() and len(ri) == 2 * 7
    # every treated country has a row per per-country method
    for method in ("cluster_unit", "wild_cluster_bootstrap_webb", "randomization_ferman_pinto"):
        scopes = set(table.loc[(table["estimator"] == "etwfe") & (table["inference"] == method), "scope"])
        assert scopes == {"overall", "MAR", "TUR", "EGY", "NGA", "IRQ", "TUN"}


def test_summarize_scores_by_hand():
    reps = pd.DataFrame({
        "replication": [0, 0, 1, 1, 2, 2],
        "estimator": ["etwfe"] * 6,
        "inference": ["m"] * 6,
        "outcome": ["y"] * 6,
        "scope": ["overall", "MAR"] * 3,
        "estimate": [1.0, 2.0, 3.0, 4.0, 1.5, 0.0],
        "ci_low": [0.5, 1.0, 2.5, -np.inf, 1.2, -1.0],
        "ci_high": [1.5, 3.0, 3.5, np.inf, 1.8, 1.0],
        "p_value": np.nan,
        "truth": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
        "covered": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0],
        "rejects_zero": [1.0, 1.0, 1.0, 0.0, 1.0, 0.0],
        "seconds": 1.0,
    })
    out = summarize(reps, Design()).set_index("scope")
    assert out.loc["overall", "coverage"] == pytest.approx(1 / 3)
    assert out.loc["overall", "bias"] == pytest.approx(np.mean([0.0, 2.0, 0.5]))
    assert out.loc["overall", "median_width"] == pytest.approx(1.0)
    assert out.loc["countries", "n_intervals"] == 3
    assert out.loc["MAR", "share_unbounded"] == pytest.approx(1 / 3)
    assert out.loc["MAR", "median_width"] == pytest.approx(2.0)  # finite widths only
    assert out.loc["MAR", "rejection_rate"] == pytest.approx(1 / 3)


def test_workers_do_not_change_the_result():
    fast = only_estimators(InferenceSettings(), ["etwfe", "twfe"])
    one = run_montecarlo(Design(effects="zero"), reps=2, settings=fast, workers=1)
    two = run_montecarlo(Design(effects="zero"), reps=2, settings=fast, workers=2)
    pd.testing.assert_frame_equal(one.drop(columns="seconds"), two.drop(columns="seconds"))


def test_designs_in_one_pass_give_their_own_rows_and_share_the_placebo_time_weights(monkeypatch):
    """run_designs draws each replication of every design in one worker: the rows are those
    of each design's own run, bit for bit, and SDID's placebo time weights, which see only
    the control countries (drawn alike in every design), are solved once for all designs."""
    from mipa.inference import sdid_fit

    sdid_only = only_estimators(InferenceSettings(), ["sdid"])
    designs = [Design(effects="annex"), Design(effects="zero")]
    solved: list[int] = []
    real = sdid_fit.two_stage_many

    def counting(sets, starts, **kw):
        solved.append(sum(fw.size for fw in sets))
        return real(sets, starts, **kw)

    monkeypatch.setattr(sdid_fit, "two_stage_many", counting)
    alone = []
    for design in designs:
        sdid_fit._SOLVED_LAMBDAS.clear()
        alone.append(run_montecarlo(design, reps=1, first_replication=7, settings=sdid_only, workers=1))
    problems_alone = sum(solved)
    sdid_fit._SOLVED_LAMBDAS.clear()
    solved.clear()
    joint = run_designs(designs, reps=1, first_replication=7, settings=sdid_only, workers=1)
    for own, shared in zip(alone, joint, strict=True):
        assert own["estimate"].notna().sum() == 6
        pd.testing.assert_frame_equal(own.drop(columns="seconds"), shared.drop(columns="seconds"))
    assert not alone[0]["estimate"].equals(alone[1]["estimate"])  # the designs differ
    # the second design re-solved only its unit weights: every time-weight set came from the first
    assert sum(solved) < problems_alone


def test_designs_drawn_in_turn_share_their_never_treated_countries(monkeypatch):
    """Drawing a replication for several designs in turn draws each never-treated country once
    (it has no effect in any design) and gives, cell for cell, the panels each design's own
    sampler draws with nothing shared."""
    from mipa.montecarlo import design as design_module
    from mipa.simulate.plan import Model

    designs = [Design(effects="annex"), Design(effects="homogeneous"), Design(effects="zero")]
    design_module._NEVER_TREATED_DRAWS.clear()
    calls: list[str] = []
    real_plan = Model.plan

    def counted(self, iso, rng):
        calls.append(iso)
        return real_plan(self, iso, rng)

    monkeypatch.setattr(Model, "plan", counted)
    in_turn = [PanelSampler(d).draw(5) for d in designs]
    n_pool = len(PanelSampler(designs[0]).countries)
    n_treated = len(in_turn[0].treated)
    assert len(calls) == n_pool + 2 * n_treated  # the others came from the first design's draw
    for design, shared in zip(designs, in_turn, strict=True):
        design_module._NEVER_TREATED_DRAWS.clear()
        alone = PanelSampler(design).draw(5)
        pd.testing.assert_frame_equal(shared.panel, alone.panel)
        assert shared.truth == alone.truth
    assert not in_turn[0].panel.equals(in_turn[2].panel)


def test_montecarlo_command_runs_several_designs_into_their_folders(tmp_path, capsys):
    from mipa.cli import main

    template = str(tmp_path / "{effects}-twfe")
    assert main(["montecarlo", "--reps", "1", "--effects", "annex,zero", "--estimators", "twfe:cluster_unit",
                 "--workers", "1", "--quiet", "--out", template]) == 0
    for effects in ("annex", "zero"):
        folder = tmp_path / f"{effects}-twfe"
        facts = __import__("json").loads((folder / "run.json").read_text())
        assert facts["design"]["effects"] == effects and facts["joint_run"]["designs"] == ["annex", "zero"]
        assert pd.read_csv(folder / "summary.csv")["effects"].eq(effects).all()
    assert main(["montecarlo", "--effects", "annex,zero", "--out", str(tmp_path / "one")]) == 2
    assert "--out must hold {effects}" in capsys.readouterr().err
    assert main(["montecarlo", "--effects", "annex,big"]) == 2
    assert "unknown --effects big" in capsys.readouterr().err


def test_checkpoint_resumes(tmp_path):
    fast = only_estimators(InferenceSettings(), ["twfe"])
    path = tmp_path / "replicates.parquet"
    first = run_montecarlo(Design(), reps=2, settings=fast, workers=1, checkpoint=path)
    messages: list[str] = []
    again = run_montecarlo(Design(), reps=3, settings=fast, workers=1, checkpoint=path, progress=messages.append)
    assert "2 replications taken" in messages[0]
    pd.testing.assert_frame_equal(again[again["replication"] < 2].reset_index(drop=True), first)
    assert sorted(again["replication"].unique()) == [0, 1, 2]


@pytest.mark.slow
def test_reduced_montecarlo_reproduces_the_coverage_findings():
    """A few dozen replications (not the full run's): the clustered intervals under-cover
    far below 95% while the randomization and wild-bootstrap intervals do not. Bands are
    wide; the full run (scripts/montecarlo.py, 500 replications) gave: zero effect,
    ETWFE clustered 49% overall / 23% per country, Ferman-Pinto 95% / 90%, WCR 99%;
    annex effects, clustered 68% / 18%, Ferman-Pinto 89% / 82%."""
    fast = only_estimators(InferenceSettings(), ["etwfe", "csdid", "twfe"])
    keys = ["estimator", "inference", "scope"]
    null = summarize(run_montecarlo(Design(effects="zero"), reps=30, first_replication=10_000, settings=fast,
                                    workers=2), Design(effects="zero")).set_index(keys)
    cov = null["coverage"]
    assert cov[("etwfe", "cluster_unit", "overall")] <= 0.8
    assert cov[("etwfe", "cluster_unit", "countries")] <= 0.45
    assert cov[("etwfe", "randomization_ferman_pinto", "overall")] >= 0.8
    assert cov[("etwfe", "randomization_ferman_pinto", "countries")] >= 0.75
    assert cov[("etwfe", "wild_cluster_bootstrap_webb", "overall")] >= 0.85
    # under no effect the rejection rate is the size, the complement of coverage
    np.testing.assert_allclose(null["rejection_rate"], 1 - null["coverage"], atol=1e-12)

    annex = summarize(run_montecarlo(Design(), reps=20, first_replication=10_000, settings=fast, workers=2),
                      Design()).set_index(keys)
    assert annex.loc[("etwfe", "cluster_unit", "countries"), "coverage"] <= 0.45
    assert annex.loc[("etwfe", "randomization_ferman_pinto", "overall"), "coverage"] >= 0.7
    # the randomization test detects the annex's effects (power), the clustered WCR per country does not
    assert annex.loc[("etwfe", "randomization_ferman_pinto", "overall"), "rejection_rate"] >= 0.9
    assert annex.loc[("etwfe", "wild_cluster_bootstrap_webb", "countries"), "rejection_rate"] <= 0.1
    # bias against the full run's (500 replications, montecarlo/inference_coverage.csv), to 3
    # Monte Carlo standard errors of this run (sd of the errors / sqrt(replications))
    for scope, full_run in (("overall", 0.122505), ("MAR", 0.248892)):
        row = annex.loc[("etwfe", "randomization_ferman_pinto", scope)]
        mcse = row["oracle_width"] / (2 * 1.959964) / np.sqrt(row["n_replications"])
        assert abs(row["bias"] - full_run) <= 3 * mcse, (scope, row["bias"], mcse)


def test_multiplicative_effects_keep_the_average_and_follow_the_expected_count():
    """A rate-ratio effect has the additive design's average effect per country (the truth),
    but month by month it is proportional to the country's expected count without it."""
    from mipa.simulate.model import Model

    additive = PanelSampler(Design(effects="annex")).draw(3)
    rate = PanelSampler(Design(effects="annex", effect_form="multiplicative")).draw(3)
    assert Design(effects="annex", effect_form="multiplicative").label == "annex_multiplicative"
    assert Design(effects="zero", effect_form="multiplicative").label == "zero"
    for iso in additive.treated:
        a, m = additive.truth["forced_departures"][iso], rate.truth["forced_departures"][iso]
        assert m == pytest.approx(a, rel=0.02, abs=0.02), iso
    post = additive.panel["first_treat"].gt(0) & additive.panel["period"].ge(additive.panel["first_treat"])
    assert not np.allclose(additive.panel.loc[post, "forced_departures"], rate.panel.loc[post, "forced_departures"])
    # the profile itself: mean 1 over the post months, proportional to the expected count
    model = Model.__new__(Model)
    model.effect_form = "multiplicative"
    expected = np.array([5.0, 5.0, 2.0, 4.0, 6.0])
    postw = np.array([False, False, True, True, True])
    shape = model._profile(expected, postw)
    assert shape[postw].mean() == pytest.approx(1.0) and np.allclose(shape[~postw], 0)
    assert np.allclose(shape[postw] / expected[postw], shape[postw][0] / expected[postw][0])
    model.effect_form = "additive"
    assert np.array_equal(model._profile(expected, postw), postw.astype(float))


def test_run_in_folder_resumes_and_read_run_reads_it_back(tmp_path) -> None:
    """The drivers' run folders: a run started in a fresh process writes its summary, a second
    call with more replications resumes from the checkpoint (the first two rows are kept), and
    read_run gives the summary with the run's wall time; an empty folder reads as None."""
    from mipa.montecarlo.runs import read_run, run_in_folder

    out = tmp_path / "annex-poisson"
    assert read_run(out) is None
    methods = "poisson_etwfe:conformal_poisson_t"
    run_in_folder(out, reps=2, effects="annex", estimators=methods, workers=1)
    first = pd.read_parquet(out / "replicates.parquet")
    run_in_folder(out, reps=3, effects="annex", estimators=methods, workers=1)
    both = pd.read_parquet(out / "replicates.parquet")
    assert set(first["replication"]) == {0, 1} and set(both["replication"]) == {0, 1, 2}
    pd.testing.assert_frame_equal(both[both["replication"] < 2].reset_index(drop=True), first, check_like=True)
    summary = read_run(out)
    assert summary is not None and (summary["n_replications"] == 3).all() and (summary["wall_seconds"] > 0).all()


def test_the_full_run_collects_one_row_per_method_preferring_the_one_pass_run(tmp_path) -> None:
    """``scripts/montecarlo.py`` collects the one-pass ``all`` run and a group run of the same
    design without duplicates: a method in both is taken from ``all``; a group's folder
    contributes only its own methods."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "montecarlo.py"
    spec = importlib.util.spec_from_file_location("montecarlo_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def run_folder(name: str, rows: list[tuple[str, str, float]]) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        pd.DataFrame([{"effects": "annex", "estimator": e, "inference": m, "outcome": "forced_departures",
                       "scope": "overall", "coverage": c} for e, m, c in rows]).to_csv(folder / "summary.csv", index=False)
        (folder / "run.json").write_text(json.dumps({"wall_seconds": 60.0}))
        return folder

    one_pass = run_folder("annex-all", [("etwfe", "cluster_unit", 0.81), ("sdid", "sdid_placebo", 0.94)])
    group = run_folder("annex-sdid", [("sdid", "sdid_placebo", 0.10), ("etwfe", "cluster_unit", 0.20)])
    table = script.collect([one_pass, group])
    assert len(table) == 2
    assert table.set_index("estimator")["coverage"].to_dict() == {"etwfe": 0.81, "sdid": 0.94}
    only_group = script.collect([group])  # the sdid group's folder gives only its own method
    assert only_group[["estimator", "coverage"]].values.tolist() == [["sdid", 0.10]]
