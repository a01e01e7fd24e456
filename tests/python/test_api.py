"""The analyst's API (``mipa.att_gt`` / ``mipa.etwfe`` / ``mipa.twfe``, :mod:`mipa.api`).

Known truths: simulated panels with a planted effect. The API wraps the estimators, so its
numbers must be theirs (to 1e-12); the calendar aggregation, which only the API gives by
period, is checked against a hand computation from the cell effects and influence functions.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import mipa  # noqa: E402
from mipa.api import TIDY_COLUMNS, AggregateResult, GroupTimeResult, TwfeResult  # noqa: E402
from mipa.estimators.csdid import callaway_santanna  # noqa: E402
from mipa.estimators.etwfe import etwfe as etwfe_estimator  # noqa: E402
from mipa.estimators.poisson_etwfe import poisson_etwfe  # noqa: E402
from mipa.estimators.twfe import twfe as twfe_estimator  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
EFFECT = 1.5
TOL = 1e-12
COLS = dict(yname="y", tname="t", idname="id", gname="g")
NAMES = dict(outcome="y", period="t", unit="id", first_treat="g")


def panel(n_units: int = 60, n_periods: int = 10, effect: float = EFFECT, noise: float = 0.5,
          seed: int = 1) -> pd.DataFrame:
    """Unit and period effects (parallel trends) plus ``effect`` from period g on."""
    rng = np.random.default_rng(seed)
    first = rng.choice([0, 4, 6, 8], size=n_units)
    df = pd.DataFrame({"id": np.repeat(np.arange(n_units), n_periods),
                       "t": np.tile(np.arange(1, n_periods + 1), n_units)})
    df["g"] = first[df["id"]]
    treated = (df["g"] > 0) & (df["t"] >= df["g"])
    df["y"] = (rng.normal(size=n_units)[df["id"]] + 0.3 * df["t"] + effect * treated
               + rng.normal(0, noise, len(df)))
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return panel()


@pytest.fixture(scope="module")
def fit(df) -> GroupTimeResult:
    return mipa.att_gt(df, **COLS, n_boot=499, seed=7)


@pytest.fixture(scope="module")
def fit_analytic(df) -> GroupTimeResult:
    return mipa.att_gt(df, **COLS, bootstrap=False)


# --------------------------------------------------------------------------- import
def test_import_mipa_is_light_and_the_api_is_lazy() -> None:
    code = (
        "import sys, mipa\n"
        "heavy = [m for m in ('pandas', 'scipy', 'matplotlib', 'mipa.api') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert {'att_gt', 'etwfe', 'twfe', 'GroupTimeResult', 'AggregateResult', 'TwfeResult'} <= set(dir(mipa))\n"
        "f = mipa.att_gt\n"
        "assert f.__module__ == 'mipa.api' and 'pandas' in sys.modules\n"
        "try:\n"
        "    mipa.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- three lines
def test_three_lines_recover_the_planted_effect(df) -> None:
    fit = mipa.att_gt(df, yname="y", tname="t", idname="id", gname="g", n_boot=499)
    overall = fit.aggregate("simple").overall
    assert overall["estimate"] == pytest.approx(EFFECT, abs=0.25)
    assert overall["ci_low"] <= EFFECT <= overall["ci_high"]
    es = fit.aggregate("dynamic").detail
    post, pre = es[es["event_time"] >= 0], es[es["event_time"] < 0]
    assert ((post["band_low"] <= EFFECT) & (EFFECT <= post["band_high"])).all()
    assert ((pre["band_low"] <= 0) & (0 <= pre["band_high"])).all()


@pytest.mark.parametrize("control_group", ["notyettreated", "nevertreated"])
def test_etwfe_and_twfe_recover_the_planted_effect(df, control_group) -> None:
    for result in (mipa.etwfe(df, **COLS, control_group=control_group).aggregate("simple"),
                   mipa.twfe(df, **COLS)):
        row = result.tidy().iloc[0]
        assert row["estimate"] == pytest.approx(EFFECT, abs=0.25)
        assert row["ci_low"] <= EFFECT <= row["ci_high"]


# --------------------------------------------------------------------------- agreement
def _close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=0, atol=TOL)


@pytest.mark.parametrize("bootstrap", [True, False])
@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_att_gt_agrees_with_callaway_santanna(df, bootstrap, control_group) -> None:
    opts = dict(control_group=control_group, bootstrap=bootstrap, n_boot=199, seed=3)
    api = mipa.att_gt(df, **COLS, **opts)
    ref = callaway_santanna(df, **NAMES, **opts)
    pd.testing.assert_frame_equal(api.result.estimates, ref.estimates)
    pd.testing.assert_frame_equal(api.cells.drop(columns="p_value"), ref.att_gt)
    for kind in ("simple", "group", "dynamic", "calendar"):
        agg = api.aggregate(kind)
        row = ref.overall(kind)
        _close(agg.overall[["estimate", "std_error", "ci_low", "ci_high", "p_value"]],
               row[["estimate", "std_error", "ci_low", "ci_high", "p_value"]])
        assert agg.overall["inference"] == row["inference"]
    groups = ref.estimates[(ref.estimates["aggregation"] == "group") & (ref.estimates["scope"] != "overall")]
    detail = api.aggregate("group").detail
    assert [str(g) for g in detail["group"]] == groups["scope"].tolist()
    _close(detail[["estimate", "std_error", "p_value"]], groups[["estimate", "std_error", "p_value"]])
    es = api.aggregate("dynamic").detail
    assert es["event_time"].tolist() == ref.event_study["event_time"].tolist()
    cols = ["estimate", "std_error", "ci_low", "ci_high", "band_low", "band_high"]
    _close(es[cols], ref.event_study[cols])


@pytest.mark.parametrize("family", [None, "poisson"])
@pytest.mark.parametrize("control_group", ["notyettreated", "nevertreated"])
def test_etwfe_agrees_with_the_estimators(df, family, control_group) -> None:
    data = df.assign(y=np.random.default_rng(2).poisson(np.exp(0.5 + 0.3 * df["y"]))) if family else df
    api = mipa.etwfe(data, **COLS, family=family, control_group=control_group)
    estimator = poisson_etwfe if family else etwfe_estimator
    ref = estimator(data, **NAMES, control_group=control_group)
    assert api.estimator == ref.estimator
    pd.testing.assert_frame_equal(api.cells.drop(columns="p_value"), ref.att_gt)
    for kind in ("simple", "group", "dynamic", "calendar"):
        agg = api.aggregate(kind)
        rows = ref.estimates[ref.estimates["aggregation"] == kind]
        top, rest = rows[rows["scope"] == "overall"], rows[rows["scope"] != "overall"]
        _close(agg.overall[["estimate", "std_error", "ci_low", "ci_high", "p_value"]],
               top[["estimate", "std_error", "ci_low", "ci_high", "p_value"]].iloc[0])
        if kind == "dynamic":
            _close(agg.detail[["estimate", "std_error", "ci_low", "ci_high"]],
                   ref.event_study[["estimate", "std_error", "ci_low", "ci_high"]])
            continue
        _close(agg.detail[["estimate", "std_error", "ci_low", "ci_high", "p_value"]],
               rest[["estimate", "std_error", "ci_low", "ci_high", "p_value"]])
        if kind != "simple":
            assert [str(k) for k in agg.detail[agg.key]] == rest["scope"].tolist()
        if family:
            _close(agg.table["rate_ratio"], pd.concat([top, rest])["rate_ratio"])


def test_twfe_agrees_with_the_estimator(df) -> None:
    data = df.assign(d=((df["g"] > 0) & (df["t"] >= df["g"])).astype(float))
    ref = twfe_estimator(data, outcome="y", unit="id", period="t", treatments=["d"], vcov="all")
    for api in (mipa.twfe(df, **COLS, vcov="all"), mipa.twfe(data, yname="y", tname="t", idname="id",
                                                              dname="d", vcov="all")):
        assert isinstance(api, TwfeResult)
        _close(api.tidy()[TIDY_COLUMNS[1:]], ref.estimates[TIDY_COLUMNS[1:]])
        assert api.tidy()["inference"].tolist() == ref.estimates["inference"].tolist()
        assert api.vcov is None  # three rows, one per method: no single variance matrix
    one = mipa.twfe(data, yname="y", tname="t", idname="id", dname="d", vcov="cluster_unit")
    assert one.tidy()["term"].tolist() == ["d"]
    _close(one.vcov.to_numpy(), [[one.tidy()["std_error"].iloc[0] ** 2]])
    with pytest.raises(ValueError, match="exactly one"):
        mipa.twfe(df, yname="y", tname="t", idname="id")


# --------------------------------------------------------------------------- aggregations
def test_aggregate_types(fit) -> None:
    shapes = {"simple": None, "group": "group", "dynamic": "event_time", "calendar": "period"}
    for kind, key in shapes.items():
        agg = fit.aggregate(kind)
        assert isinstance(agg, AggregateResult) and agg.type == kind and agg.key == key
        tidy = agg.tidy()
        assert tidy.columns[:6].tolist() == TIDY_COLUMNS
        assert tidy["term"].iloc[0] == "ATT"
        assert agg.influence_function.shape == (60, len(tidy))
        assert np.isfinite(tidy["estimate"]).all() and np.isfinite(tidy["std_error"]).all()
        if key is None:
            assert len(tidy) == 1
            continue
        assert tidy[key].iloc[0] is None and len(agg.detail) == len(tidy) - 1
        # the uniform band is at least as wide as the pointwise interval
        d = agg.detail
        assert (d["band_low"] <= d["ci_low"] + 1e-12).all() and (d["band_high"] >= d["ci_high"] - 1e-12).all()
    assert fit.aggregate("group").detail["group"].tolist() == [4, 6, 8]
    assert fit.aggregate("dynamic").detail["event_time"].tolist() == list(range(-6, 7))
    assert fit.aggregate("calendar").detail["period"].tolist() == list(range(4, 11))
    assert fit.aggregate("dynamic").tidy()["term"].iloc[1] == "ATT(e=-6)"
    with pytest.raises(ValueError, match="type must be one of"):
        fit.aggregate("cohort")


def test_aggregation_reuses_the_bootstrap_draws(fit) -> None:
    a, b = fit.aggregate("calendar"), fit.aggregate("calendar")
    _close(a.table["std_error"], b.table["std_error"])
    assert a.critical_value == b.critical_value > 1.9


def _hand_calendar(df: pd.DataFrame, fit: GroupTimeResult) -> tuple[dict, dict]:
    """theta(t) = sum_{g<=t} N_g ATT(g,t) / sum N_g (R did: weights by group size) and the
    analytic SE of its influence function psi_t = sum_g (N_g/S) psi_gt
    + sum_g (1{G_i = g} - N_g/N)(ATT(g,t) - theta(t)) / (S/N), S = sum_{g<=t} N_g."""
    units = df.drop_duplicates("id").set_index("id")["g"].reindex(fit.unit_ids)
    n = len(units)
    size = units.value_counts()
    cells = fit.cells.reset_index(drop=True)
    post = cells[(cells["event_time"] >= 0) & cells["estimate"].notna()]
    theta, se = {}, {}
    for t, rows in post.groupby("period"):
        w = size.loc[rows["group"]].to_numpy(dtype=float)
        att = rows["estimate"].to_numpy()
        theta[t] = float(w @ att / w.sum())
        share = w.sum() / n
        psi = fit.influence_function[:, rows.index] @ (w / w.sum())
        for g, a in zip(rows["group"], att, strict=True):
            psi += ((units.to_numpy() == g) - size[g] / n) * (a - theta[t]) / share
        se[t] = float(np.sqrt((psi**2).sum()) / n)
    return theta, se


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_calendar_matches_a_hand_computation(df, control_group) -> None:
    fit = mipa.att_gt(df, **COLS, control_group=control_group, bootstrap=False)
    theta, se = _hand_calendar(df, fit)
    cal = fit.aggregate("calendar")
    assert cal.detail["period"].tolist() == sorted(theta)
    _close(cal.detail["estimate"], [theta[t] for t in sorted(theta)])
    np.testing.assert_allclose(cal.detail["std_error"], [se[t] for t in sorted(se)], rtol=1e-10)
    # overall: mean over periods, the estimator's own calendar row
    assert cal.overall["estimate"] == pytest.approx(np.mean(list(theta.values())), abs=TOL)
    _close(cal.overall[["estimate", "std_error"]], fit.result.overall("calendar")[["estimate", "std_error"]])


def test_calendar_with_unbalanced_panel_and_nan_cells() -> None:
    """A period where cohort 8 has no observed treated unit: its cell is NaN and left out."""
    data = panel(seed=4)
    data.loc[(data["g"] == 8) & (data["t"] == 9), "y"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mipa.att_gt(data, **COLS, bootstrap=False)
    assert fit.cells["estimate"].isna().any()
    theta, se = _hand_calendar(data, fit)
    cal = fit.aggregate("calendar")
    _close(cal.detail["estimate"], [theta[t] for t in sorted(theta)])
    np.testing.assert_allclose(cal.detail["std_error"], [se[t] for t in sorted(se)], rtol=1e-10)
    assert np.isnan(fit.vcov.loc["ATT(g=8,t=9)"]).all()


# --------------------------------------------------------------------------- result surface
def test_vcov(fit, fit_analytic) -> None:
    v = fit_analytic.vcov
    assert v.index.tolist() == fit_analytic.tidy()["term"].tolist() == v.columns.tolist()
    _close(v.to_numpy(), v.to_numpy().T)
    np.testing.assert_allclose(np.sqrt(np.diag(v)), fit_analytic.cells["std_error"], rtol=1e-12)
    # the bootstrap run carries the same influence functions, so the same analytic matrix
    _close(fit.vcov.to_numpy(), v.to_numpy())
    agg = fit_analytic.aggregate("dynamic")
    np.testing.assert_allclose(np.sqrt(np.diag(agg.vcov)), agg.table["std_error"], rtol=1e-12)
    # linear ETWFE: the regression's cell covariance (checked against pyfixest in test_etwfe.py)
    # and its delta-method image for every aggregation; Poisson gives none
    et = mipa.etwfe(panel(), **COLS, control_group="nevertreated")
    np.testing.assert_allclose(np.sqrt(np.diag(et.vcov)), et.cells["std_error"], rtol=1e-12)
    for kind in ("simple", "group", "dynamic", "calendar"):
        agg = et.aggregate(kind)
        assert agg.vcov.index.tolist() == agg.table["term"].tolist()
        np.testing.assert_allclose(np.sqrt(np.diag(agg.vcov)), agg.table["std_error"], rtol=1e-12)
    counts = panel().assign(y=lambda d: np.random.default_rng(2).poisson(np.exp(0.3 * d["y"])))
    assert mipa.etwfe(counts, **COLS, family="poisson").vcov is None


def test_tidy_and_summary(fit) -> None:
    tidy = fit.tidy()
    assert tidy.columns[:6].tolist() == TIDY_COLUMNS
    assert tidy["term"].iloc[0] == "ATT(g=4,t=2)"
    assert len(tidy) == len(fit.cells) == 27
    assert ((tidy["p_value"] >= 0) & (tidy["p_value"] <= 1)).all()
    text = fit.summary()
    assert text.startswith("Callaway & Sant'Anna (2021) group-time ATTs: outcome y")
    assert "multiplier_bootstrap (499 draws, seed 7)" in text and "ATT(g=8,t=10)" in text
    assert repr(fit) == text
    agg = fit.aggregate("dynamic")
    text = agg.summary()
    assert "event study" in text and "uniform band critical value" in text
    o = agg.overall
    assert f"overall ATT = {o['estimate']:.4f}" in text
    assert "None" not in text
    tw = mipa.twfe(panel(), **COLS).summary()
    assert tw.startswith("Two-way fixed effects regression") and "treated" in tw


def test_plots_are_matplotlib_figures(fit) -> None:
    figures = [fit.plot(), mipa.twfe(panel(), **COLS).plot(),
               mipa.etwfe(panel(), **COLS).aggregate("dynamic").plot()]
    figures += [fit.aggregate(kind).plot() for kind in ("simple", "group", "dynamic", "calendar")]
    for fig in figures:
        assert isinstance(fig, Figure) and fig.axes
        fig.canvas.draw()  # renders with the Agg backend
    assert len([a for a in figures[0].axes if a.get_visible()]) == 3  # one panel per group


def test_poisson_family_on_counts() -> None:
    """Counts with a multiplicative effect exp(0.4): the count-scale ATT is the mean of
    mu1 - mu0 over the treated post rows, the rate ratio exp(0.4)."""
    rng = np.random.default_rng(7)
    data = panel(n_units=80, effect=0.0, seed=7)
    tau = 0.4
    treated = ((data["g"] > 0) & (data["t"] >= data["g"])).to_numpy()
    mu0 = np.exp(1.5 + rng.normal(0, 0.5, 80)[data["id"]] + 0.05 * data["t"])
    mu1 = mu0 * np.exp(tau * treated)
    data["y"] = rng.poisson(mu1)
    truth = float((mu1 - mu0)[treated].mean())
    res = mipa.etwfe(data, **COLS, family="poisson")
    assert res.estimator == "poisson_etwfe" and res.vcov is None
    simple = res.aggregate("simple")
    row = simple.overall
    assert row["estimate"] == pytest.approx(truth, rel=0.25)
    assert row["ci_low"] <= truth <= row["ci_high"]
    assert row["rate_ratio_ci_low"] <= np.exp(tau) <= row["rate_ratio_ci_high"]
    assert "rate_ratio" in simple.tidy().columns
    with pytest.raises(ValueError, match="family"):
        mipa.etwfe(data, **COLS, family="gaussian")
    # a covariate that is constant says why it cannot be used (its cell slopes are collinear)
    with pytest.raises(ValueError, match="singular_design: cell terms collinear"):
        mipa.etwfe(data.assign(x=1.0), **COLS, family="poisson", covariates=["x"])


# --------------------------------------------------------------------------- README
def test_readme_example_runs(tmp_path, monkeypatch, capsys) -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- python-api-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md has no python-api-example block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(found.group(1), "README.md:python-api-example", "exec"), namespace)
    out = capsys.readouterr().out
    assert "event study" in out and "ATT(t=4)" in out and "Two-way fixed effects" in out
    assert isinstance(namespace["fig"], Figure)
    overall = namespace["event_study"].overall
    assert overall["ci_low"] <= EFFECT <= overall["ci_high"]
    assert list(tmp_path.iterdir()) == []  # the example writes no file
