"""Tests of :mod:`mipa.inference`: wild cluster bootstrap, randomization inference, SDID.

Known truths only:

* wild bootstrap: the vectorised ``t*`` equals re-running the regression on each ``y*``;
  with many treated clusters the WCR interval is the clustered Wald one; with one
  treated cluster the WCR test is conservative (MacKinnon & Webb 2018) while clustered
  errors over-reject; p-values are uniform under the null; weight laws have mean 0,
  variance 1.
* randomization: the fast estimators equal the regressions they stand for; the rank
  p-value and inverted interval are checked by hand; zero effect -> p-values spread out;
  huge effect -> rank one; a planted constant effect shifts the interval by exactly that
  effect and is covered; Ferman & Pinto's rescaling repairs the over-rejection of a
  noisier treated unit.
* SDID: R synthdid's published California Proposition 99 numbers (SDID -15.60383, SC
  -19.61966, DID -27.34911); exact recovery on a noiseless two-way panel; Frank-Wolfe
  reaches the closed-form optimum of a two-weight problem; recovery of a planted effect
  where DiD is biased by a factor that only some controls share.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mipa.estimators import ols
from mipa.estimators.etwfe import etwfe
from mipa.estimators.results import ESTIMATE_COLUMNS
from mipa.estimators.twfe import twfe
from mipa.inference import randomization as ri
from mipa.inference import sdid
from mipa.inference import wild_bootstrap as wb

KW = dict(outcome="y", unit="unit", period="period", first_treat="first_treat")


def _panel(
    n_units: int,
    n_periods: int,
    starts: dict[int, int],
    *,
    effect: float = 0.0,
    sd: np.ndarray | float = 1.0,
    seed: int = 0,
    trend: float = 0.3,
) -> pd.DataFrame:
    """``y_it = a_i + g_t + effect * D_it + sd_i e_it``; ``starts`` maps unit index -> start."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 2, n_units)
    g = trend * rng.normal(size=n_periods).cumsum()
    sd = np.broadcast_to(np.asarray(sd, dtype=float), (n_units,))
    per = np.arange(1, n_periods + 1)
    ft = np.array([starts.get(i, 0) for i in range(n_units)], dtype=float)
    D = (ft[:, None] > 0) & (per[None, :] >= ft[:, None])
    y = a[:, None] + g[None, :] + effect * D + sd[:, None] * rng.normal(size=(n_units, n_periods))
    return pd.DataFrame(
        {
            "unit": np.repeat([f"U{i:03d}" for i in range(n_units)], n_periods),
            "period": np.tile(per, n_units),
            "y": y.ravel(),
            "first_treat": np.repeat(ft, n_periods),
            "mipa": D.ravel().astype(float),
        }
    )


#: the annex's six starts on a 2016-01 = 1 month index (MAR, TUR, EGY, NGA, IRQ, TUN)
ANNEX_STARTS = {0: 78, 1: 82, 2: 89, 3: 89, 4: 103, 5: 118}


# =========================================================================== wild bootstrap
def test_weight_laws_have_mean_zero_variance_one() -> None:
    for law in ("webb", "rademacher", "mammen"):
        V, enumerated = wb.draw_weights(50, 4000, weights=law, seed=1)
        assert not enumerated
        assert abs(V.mean()) < 0.02
        assert V.var() == pytest.approx(1.0, abs=0.03)
    V, enumerated = wb.draw_weights(4, 999, weights="rademacher")
    assert enumerated and V.shape == (4, 16)
    assert len({tuple(c) for c in V.T}) == 16  # every sign vector once
    assert set(np.unique(wb.draw_weights(3, 50)[0]).round(6)) == set(
        np.round([-np.sqrt(1.5), -1, -np.sqrt(0.5), np.sqrt(0.5), 1, np.sqrt(1.5)], 6)
    )


@pytest.mark.parametrize(
    "kind, restricted, null_model",
    [
        ("twfe", True, "constant"),
        ("twfe", False, "constant"),
        ("etwfe", True, "constant"),
        ("etwfe", True, "linear"),
        ("etwfe", False, "constant"),
        ("etwfe_unit", True, "constant"),
    ],
)
def test_bootstrap_t_equals_refitting_each_draw(kind: str, restricted: bool, null_model: str) -> None:
    """The precomputed t*(r) equals re-estimating the regression on y* = fit_r + u_r v_g.

    The restricted fit is computed here by explicit least squares: under ``linear`` the
    coefficients minimising the residual sum of squares subject to ``w'b = r``; under
    ``constant`` the contrast's coefficients set to ``r`` and the others re-fitted.
    """
    rng = np.random.default_rng(5)
    p = _panel(30, 24, {0: 10, 1: 14, 2: 14, 3: 20}, effect=1.0, seed=2)
    p = p[rng.random(len(p)) > 0.15].reset_index(drop=True)  # unbalanced
    if kind == "twfe":
        fc = wb.twfe_contrast(p, outcome="y", unit="unit", period="period", treatment="mipa")
    elif kind == "etwfe":
        fc = wb.etwfe_contrast(p, **KW)
    else:
        fc = wb.etwfe_contrast(p, **KW, cohort="unit", aggregation="group", scope="U001")
    pieces = wb.bootstrap_pieces(fc, restricted=restricted, null_model=null_model)
    V, _ = wb.draw_weights(fc.n_clusters, 4, seed=3)
    r = 0.4
    fast = wb.bootstrap_t(pieces, V, r)

    fit, w = fc.fit, fc.contrast
    Xt, b = fit.x_tilde, fit.coef[fit.kept]
    y_t = Xt @ b + fit.resid
    theta = w @ b
    if not restricted:
        b_r = b
    elif null_model == "linear":
        a = fit.bread @ w
        b_r = b - a * (theta - r) / (w @ a)
    else:
        own = w != 0
        b_r = np.empty_like(b)
        b_r[own] = r
        if (~own).any():
            b_r[~own] = np.linalg.lstsq(Xt[:, ~own], y_t - r * Xt[:, own].sum(axis=1), rcond=None)[0]
    u_r = y_t - Xt @ b_r
    for k in range(V.shape[1]):
        y_star = Xt @ b_r + u_r * V[fc.cluster_codes, k]
        refit = ols.fit_within(y_star, Xt, fc.fe_codes)
        vc, _ = ols.cluster_vcov(refit, [fc.cluster_codes], df_a=fc.df_a, contrast=w[None, :])
        centre = r if restricted else theta
        slow = (w @ refit.coef[refit.kept] - centre) / np.sqrt(vc[0, 0])
        assert fast[k] == pytest.approx(slow, rel=1e-8, abs=1e-8)


def test_contrasts_reproduce_the_estimators_rows() -> None:
    p = _panel(40, 30, {0: 10, 1: 15, 2: 15, 3: 22}, effect=2.0, seed=4)
    res = etwfe(p, **KW)
    fc = wb.etwfe_contrast(p, **KW)
    out = wb.wild_cluster_bootstrap(fc, n_boot=99)
    assert out.estimate == pytest.approx(res.overall().estimate, abs=1e-10)
    assert out.std_error == pytest.approx(res.overall().std_error, rel=1e-10)
    res_u = etwfe(p, **KW, cohort="unit")
    fcs = wb.etwfe_contrasts(p, **KW, cohort="unit")
    assert [f.label for f in fcs] == ["overall", "U000", "U001", "U002", "U003"]
    for fc_u in fcs[1:]:
        row = res_u.estimates.query(f"aggregation == 'group' and scope == '{fc_u.label}'").iloc[0]
        assert fc_u.estimate == pytest.approx(row.estimate, abs=1e-10)
        assert wb.bootstrap_pieces(fc_u).std_error == pytest.approx(row.std_error, rel=1e-10)
        assert fc_u.n_treated_clusters == 1
    tw = twfe(p, outcome="y", unit="unit", period="period", vcov="cluster_unit").overall()
    out_tw = wb.wild_cluster_bootstrap(
        wb.twfe_contrast(p, outcome="y", unit="unit", period="period"), n_boot=99
    )
    assert out_tw.estimate == pytest.approx(tw.estimate, abs=1e-10)
    assert out_tw.std_error == pytest.approx(tw.std_error, rel=1e-10)
    assert list(out_tw.row()) == ESTIMATE_COLUMNS
    assert out_tw.row()["inference"] == "wild_cluster_bootstrap_webb"


def test_many_treated_clusters_wcr_matches_clustered_interval() -> None:
    """60 of 120 clusters treated: bootstrap-t and t(G-1) intervals agree."""
    starts = {i: 8 + (i % 6) for i in range(60)}
    p = _panel(120, 20, starts, effect=0.5, seed=7)
    fc = wb.twfe_contrast(p, outcome="y", unit="unit", period="period")
    out = wb.wild_cluster_bootstrap(fc, n_boot=1999, seed=11)
    tw = twfe(p, outcome="y", unit="unit", period="period", vcov="cluster_unit").overall()
    half = (tw.ci_high - tw.ci_low) / 2
    assert out.ci_low == pytest.approx(tw.ci_low, abs=0.1 * half)
    assert out.ci_high == pytest.approx(tw.ci_high, abs=0.1 * half)
    assert out.p_value == pytest.approx(tw.p_value, abs=0.02)


def test_inverted_interval_bounds_are_where_the_p_value_crosses_alpha() -> None:
    p = _panel(40, 20, {i: 10 for i in range(8)}, effect=1.0, seed=8)
    fc = wb.twfe_contrast(p, outcome="y", unit="unit", period="period")
    out = wb.wild_cluster_bootstrap(fc, n_boot=499)
    eps = 1e-3 * out.std_error
    for bound, inward in ((out.ci_low, 1), (out.ci_high, -1)):
        assert wb.wild_cluster_bootstrap(fc, n_boot=499, null=bound + inward * eps, ci=False).p_value > 0.05
        assert wb.wild_cluster_bootstrap(fc, n_boot=499, null=bound - inward * eps, ci=False).p_value <= 0.05


def _null_rejections(n_treated: int, reps: int, n_units: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """WCR p-values and clustered-Wald p-values over ``reps`` null panels."""
    p_wcr, p_wald = [], []
    starts = {i: 8 + (i % 5) for i in range(n_treated)}
    for rep in range(reps):
        p = _panel(n_units, 16, starts, effect=0.0, seed=100 + rep)
        fc = wb.twfe_contrast(p, outcome="y", unit="unit", period="period")
        p_wcr.append(wb.wild_cluster_bootstrap(fc, n_boot=199, seed=rep, ci=False).p_value)
        p_wald.append(
            twfe(p, outcome="y", unit="unit", period="period", vcov="cluster_unit").overall().p_value
        )
    return np.array(p_wcr), np.array(p_wald)


def test_wcr_p_values_are_uniform_under_the_null() -> None:
    p_wcr, _ = _null_rejections(n_treated=20, reps=40)
    assert stats.kstest(p_wcr, "uniform").pvalue > 0.01
    assert 0.3 < p_wcr.mean() < 0.7


def test_wcr_is_conservative_with_one_treated_cluster() -> None:
    """MacKinnon & Webb (2018): WCR under-rejects, clustered Wald over-rejects, G1 = 1."""
    p_wcr, p_wald = _null_rejections(n_treated=1, reps=40)
    assert np.mean(p_wcr <= 0.05) <= 0.05
    assert np.mean(p_wald <= 0.05) >= 0.15
    assert p_wcr.min() > 0.2  # it essentially never rejects: p-values pile up mid-range


def test_etwfe_wcr_needs_the_constant_effect_null() -> None:
    """ETWFE's cells saturate the treated rows (zero residuals there).

    Imposing only ``w'b = r`` leaves the bootstrap blind to the treated rows' noise and
    the test over-rejects a true null; imposing a constant effect restores the size.
    """
    p_const, p_linear = [], []
    for rep in range(40):
        sd = np.random.default_rng(rep).lognormal(0, 0.5, 40)
        p = _panel(40, 30, {0: 12, 1: 15, 2: 18, 3: 21, 4: 24}, effect=1.0, sd=sd, seed=400 + rep)
        fc = wb.etwfe_contrast(p, **KW)
        for null_model, out in (("constant", p_const), ("linear", p_linear)):
            res = wb.wild_cluster_bootstrap(fc, n_boot=199, seed=rep, null=1.0, ci=False, null_model=null_model)
            out.append(res.p_value)
    assert np.mean(np.array(p_const) <= 0.05) <= 0.1
    assert np.mean(np.array(p_linear) <= 0.05) >= 0.15


def test_wild_bootstrap_is_deterministic_given_the_seed() -> None:
    p = _panel(40, 20, {0: 8, 1: 12, 2: 12, 3: 15}, effect=0.3, seed=9)
    fc = wb.etwfe_contrast(p, **KW)
    a = wb.wild_cluster_bootstrap(fc, seed=42)
    b = wb.wild_cluster_bootstrap(wb.etwfe_contrast(p, **KW), seed=42)
    c = wb.wild_cluster_bootstrap(fc, seed=43)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


# =========================================================================== randomization
@pytest.fixture(scope="module")
def annex_panel() -> pd.DataFrame:
    """86 x 120 with the annex's six starts and a planted effect of 1."""
    return _panel(86, 120, ANNEX_STARTS, effect=1.0, sd=np.linspace(0.5, 2.0, 86), seed=3)


def test_fast_estimators_equal_the_regressions(annex_panel: pd.DataFrame) -> None:
    pa = ri.PanelArrays.from_frame(annex_panel, **KW)
    assert ri.imputation_estimator()(pa) == pytest.approx(
        etwfe(annex_panel, **KW).overall().estimate, abs=1e-10
    )
    assert ri.did_estimator()(pa) == pytest.approx(
        etwfe(annex_panel, **KW, control_group="nevertreated").overall().estimate, abs=1e-10
    )
    assert ri.twfe_estimator()(pa) == pytest.approx(
        twfe(annex_panel, outcome="y", unit="unit", period="period").overall().estimate, abs=1e-10
    )
    # unbalanced: the imputation estimator is ETWFE with a cell per treated unit-period
    rng = np.random.default_rng(0)
    gappy = annex_panel[rng.random(len(annex_panel)) > 0.2]
    pa_g = ri.PanelArrays.from_frame(gappy, **KW)
    assert not pa_g.balanced
    assert ri.imputation_estimator()(pa_g) == pytest.approx(
        etwfe(gappy, **KW, cohort="unit").overall().estimate, abs=1e-9
    )
    assert ri.twfe_estimator()(pa_g) == pytest.approx(
        twfe(gappy, outcome="y", unit="unit", period="period").overall().estimate, abs=1e-10
    )
    with pytest.raises(ValueError):
        ri.did_estimator()(pa_g)
    # a few gaps: most units complete, so the low-rank (Woodbury) solve is the one used
    few = annex_panel.drop(index=rng.choice(annex_panel.index.to_numpy(), 7, replace=False))
    assert ri.imputation_estimator()(ri.PanelArrays.from_frame(few, **KW)) == pytest.approx(
        etwfe(few, **KW, cohort="unit").overall().estimate, abs=1e-9
    )


def test_ferman_pinto_drops_controls_the_fit_reproduces_exactly() -> None:
    """A control observed in a single month has no residual scale (its fixed effect fits it
    exactly; the solve leaves ~1e-14 of rounding here): a placebo draw that needs its scale
    is left out, the same way whatever the arithmetic rounds to."""
    p = _panel(30, 40, {0: 25, 1: 30}, effect=1.0, seed=0)
    p["y"] = p["y"] * 37.1 + 1000.3
    lone_units = ["U025", "U026", "U027", "U028", "U029"]
    for k, unit in enumerate(lone_units):
        p.loc[(p["unit"] == unit) & (p["period"] != 3 + 4 * k), "y"] = np.nan
    pa = ri.PanelArrays.from_frame(p.dropna(subset=["y"]), **KW)
    res = ri.conley_taber(pa, ri.imputation_estimator(), n_placebo=999, rescale=True)
    n_controls, n_usable = int((~pa.treated).sum()), int((~pa.treated).sum()) - len(lone_units)
    assert res.exhaustive and n_controls * (n_controls - 1) <= 999
    # every ordered pair of usable controls, none with a lone one
    assert res.placebo.size == n_usable * (n_usable - 1)


@pytest.mark.parametrize("gaps", [0, 6, 400])
@pytest.mark.parametrize("rescale", [False, True])
def test_placebo_draws_from_the_controls_sums_equal_refitting_each_draw(gaps: int, rescale: bool) -> None:
    """The imputation estimator's placebo path (complete controls' sums kept, a draw solved
    in O(J T)) gives every placebo estimate of re-running the estimator on the draw's panel,
    with no gap, a few (low-rank solve) and many (the full solve)."""
    p = _panel(40, 60, {0: 30, 1: 38, 2: 45}, effect=1.0, sd=np.linspace(0.5, 2.0, 40), seed=9)
    rng = np.random.default_rng(gaps)
    p = p.drop(index=rng.choice(p.index[p["first_treat"] == 0].to_numpy(), gaps, replace=False))
    pa = ri.PanelArrays.from_frame(p, **KW)
    fast_est = ri.imputation_estimator()

    def slow_est(panel: ri.PanelArrays) -> float:  # no placebo path: each draw re-runs the estimator
        return fast_est(panel)

    fast = ri.conley_taber(pa, fast_est, n_placebo=199, seed=3, rescale=rescale)
    slow = ri.conley_taber(pa, slow_est, n_placebo=199, seed=3, rescale=rescale)
    np.testing.assert_allclose(fast.placebo, slow.placebo, rtol=0, atol=1e-9)
    assert (fast.p_value, fast.ci_low, fast.ci_high) == pytest.approx((slow.p_value, slow.ci_low, slow.ci_high),
                                                                      abs=1e-9)
    one_fast = ri.placebo_in_space(pa, fast_est, "U001", rescale=rescale)
    one_slow = ri.placebo_in_space(pa, slow_est, "U001", rescale=rescale)
    np.testing.assert_allclose(one_fast.placebo, one_slow.placebo, rtol=0, atol=1e-9)


def test_batched_placebo_draws_equal_one_draw_at_a_time() -> None:
    """``PlaceboImputation.many`` (all draws in one stacked solve) gives ``__call__``'s
    number for every draw, including a control given the first period as start (no
    untreated cell: it leaves the solve), one given a start after the last period (no
    treated cell) and draws with new outcome rows (Ferman-Pinto)."""
    from mipa.inference.panel_estimators import PlaceboImputation

    p = _panel(40, 60, {0: 30, 1: 38, 2: 45}, effect=1.0, sd=np.linspace(0.5, 2.0, 40), seed=9)
    pa = ri.PanelArrays.from_frame(p, **KW)
    base = pa.select(np.flatnonzero(~pa.treated))
    placebo = PlaceboImputation(base)
    assert placebo.batches(3)
    rng = np.random.default_rng(4)
    rows = np.array([rng.permutation(base.y.shape[0])[:3] for _ in range(25)])
    for starts in (np.array([30.0, 38.0, 45.0]), np.array([base.periods[0], 38.0, 45.0]),
                   np.array([base.periods[-1] + 1.0, 38.0, 45.0])):
        batched = placebo.many(rows, starts)
        one_by_one = np.array([placebo(r, starts) for r in rows])
        np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-10)
    y_rows = base.y[rows] * rng.uniform(0.5, 2.0, size=rows.shape)[:, :, None]
    batched = placebo.many(rows, np.array([30.0, 38.0, 45.0]), y_rows)
    one_by_one = np.array([placebo(r, np.array([30.0, 38.0, 45.0]), y) for r, y in zip(rows, y_rows, strict=True)])
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-10)


def test_rank_p_value_and_interval_by_hand() -> None:
    placebo = np.arange(1.0, 20.0)  # 19 placebos: 1..19
    assert ri.rank_p_value(25.0, placebo) == pytest.approx(1 / 20)
    assert ri.rank_p_value(18.5, placebo) == pytest.approx(2 / 20)
    assert ri.rank_p_value(0.0, placebo) == pytest.approx(1.0)
    # alpha = 0.1: m = floor(0.1 * 20 - 1) + 1 = 2 -> second largest |placebo| = 18
    assert ri.invert_rank_test(25.0, placebo, alpha=0.1) == (7.0, 43.0)
    # equal tails, alpha = 0.2: m' = floor(0.1 * 20 - 1) + 1 = 2 -> 18 and 2
    assert ri.invert_rank_test(25.0, placebo, alpha=0.2, tails="equal") == (7.0, 23.0)
    assert ri.rank_p_value(17.5, placebo, "equal") == pytest.approx(2 * 3 / 20)
    # too few placebos for the level: the whole line
    assert ri.invert_rank_test(1.0, np.arange(10.0), alpha=0.05) == (-np.inf, np.inf)


def test_placebo_assignments_enumerate_when_few() -> None:
    assign, exhaustive = ri.placebo_assignments(5, 2, n_placebo=999)
    assert exhaustive and assign.shape == (20, 2)
    assert len({tuple(r) for r in assign}) == 20 and (assign[:, 0] != assign[:, 1]).all()
    sampled, exhaustive = ri.placebo_assignments(80, 6, n_placebo=50, seed=1)
    assert not exhaustive and sampled.shape == (50, 6)
    assert all(len(set(r)) == 6 for r in sampled)


def test_zero_effect_p_values_are_not_concentrated_below_five_percent() -> None:
    est = ri.imputation_estimator()
    p_overall, p_unit = [], []
    for rep in range(25):
        pa = ri.PanelArrays.from_frame(_panel(40, 30, {0: 12, 1: 18, 2: 18}, seed=200 + rep), **KW)
        p_overall.append(ri.conley_taber(pa, est, n_placebo=99, seed=rep).p_value)
        p_unit.append(ri.placebo_in_space(pa, est, "U000").p_value)
    for p in (np.array(p_overall), np.array(p_unit)):
        assert np.mean(p <= 0.05) <= 0.2
        assert 0.3 < p.mean() < 0.7


def test_huge_effect_ranks_first_and_constant_effect_shifts_the_interval() -> None:
    base = _panel(60, 40, {0: 15, 1: 25, 2: 25}, effect=0.0, seed=11)
    planted = _panel(60, 40, {0: 15, 1: 25, 2: 25}, effect=3.0, seed=11)  # same noise
    huge = _panel(60, 40, {0: 15, 1: 25, 2: 25}, effect=50.0, seed=11)
    est = ri.imputation_estimator()
    pa0, pa3, pah = (ri.PanelArrays.from_frame(p, **KW) for p in (base, planted, huge))
    for fn in (
        lambda pa: ri.conley_taber(pa, est, n_placebo=199),
        lambda pa: ri.placebo_in_space(pa, est, "U001"),
    ):
        r0, r3, rh = fn(pa0), fn(pa3), fn(pah)
        assert rh.p_value == pytest.approx(1 / (1 + rh.n_placebo))  # ranks first
        assert r3.estimate == pytest.approx(r0.estimate + 3.0, abs=1e-9)
        assert r3.ci_low == pytest.approx(r0.ci_low + 3.0, abs=1e-9)
        assert r3.ci_high == pytest.approx(r0.ci_high + 3.0, abs=1e-9)
        assert r3.ci_low <= 3.0 <= r3.ci_high
        np.testing.assert_allclose(r3.placebo, r0.placebo)  # placebos never see the effect
    assert rh.n_placebo == 57 and rh.exhaustive and rh.row()["inference"] == "randomization_conley_taber"


def test_rescaling_repairs_a_noisier_treated_unit() -> None:
    """Ferman & Pinto (2019): treated unit 4x noisier than the controls, zero effect.

    Unscaled, the controls' placebo estimates are too concentrated and the test rejects
    far too often; rescaled by the pre-period residual scale it is close to nominal.
    """
    sd = np.ones(50)
    sd[0] = 4.0
    est = ri.did_estimator()
    raw, scaled = [], []
    for rep in range(40):
        pa = ri.PanelArrays.from_frame(_panel(50, 30, {0: 16}, sd=sd, seed=300 + rep), **KW)
        raw.append(ri.placebo_in_space(pa, est, "U000").p_value)
        scaled.append(ri.placebo_in_space(pa, est, "U000", rescale=True).p_value)
    assert np.mean(np.array(raw) <= 0.1) >= 0.4
    assert np.mean(np.array(scaled) <= 0.1) <= 0.25


def test_frame_adapter_runs_the_etwfe_regression() -> None:
    p = _panel(30, 20, {0: 8, 1: 12}, effect=1.0, seed=12)
    pa = ri.PanelArrays.from_frame(p, **KW)
    assert ri.etwfe_estimator()(pa) == pytest.approx(etwfe(p, **KW).overall().estimate, abs=1e-10)
    out = ri.conley_taber(pa, ri.etwfe_estimator(), n_placebo=19, seed=1)
    fast = ri.conley_taber(pa, ri.imputation_estimator(), n_placebo=19, seed=1)
    np.testing.assert_allclose(out.placebo, fast.placebo, atol=1e-9)


# =========================================================================== SDID
def _prop99() -> tuple[np.ndarray, int, int]:
    # the data file of the PyPI package synthdid-py (import name ``synthdid``), a dev
    # dependency: a missing file fails the test rather than skipping it
    path = resources.files("synthdid.data").joinpath("california_prop99.csv")
    assert path.is_file(), "California Prop 99 data not found: install the dev extra (pip install -e '.[dev]')"
    with resources.as_file(path) as f:
        df = pd.read_csv(f, sep=";")
    wide = df.pivot(index="State", columns="Year", values="PacksPerCapita")
    treated = df.groupby("State")["treated"].max()
    controls = [s for s in wide.index if treated[s] == 0]
    Y = np.vstack([wide.loc[controls].to_numpy(), wide.loc[["California"]].to_numpy()])
    return Y, len(controls), int((wide.columns < 1989).sum())


def test_prop99_matches_published_synthdid_estimates() -> None:
    """R synthdid (README / AAHIW 2021 Table 1): SDID -15.60383, SC -19.61966, DID -27.34911."""
    Y, n0, t0 = _prop99()
    assert (Y.shape, n0, t0) == ((39, 31), 38, 19)
    fit = sdid.sdid_estimate(Y, n0, t0)
    assert fit.estimate == pytest.approx(-15.60383, abs=1e-3)
    assert sdid.sdid_estimate(Y, n0, t0, method="sc").estimate == pytest.approx(-19.61966, abs=1e-3)
    assert sdid.sdid_estimate(Y, n0, t0, method="did").estimate == pytest.approx(-27.34911, abs=1e-3)
    assert fit.omega.sum() == pytest.approx(1.0) and fit.lambda_.sum() == pytest.approx(1.0)
    assert fit.omega.min() >= 0 and fit.lambda_.min() >= 0
    # time weights sit on the last pre-treatment years (synthdid's plot: 1986-1988)
    assert fit.lambda_[:16].sum() == pytest.approx(0.0, abs=1e-12)
    # placebo SE: synthdid reports about 9-10 (the draws depend on the RNG)
    se = sdid.placebo_se(Y, fit, replications=100, seed=1)
    assert 7.0 < se < 12.0


def test_sdid_is_exact_on_a_noiseless_two_way_panel() -> None:
    rng = np.random.default_rng(0)
    a, g = rng.normal(0, 5, 21), rng.normal(0, 3, 15).cumsum()
    Y = a[:, None] + g[None, :]
    Y[-1, 10:] += 2.5
    for method in ("sdid", "sc", "did"):
        tau = sdid.sdid_estimate(Y, 20, 10, method=method).estimate
        if method == "sc":  # SC has no unit intercept: not exact unless levels match
            continue
        assert tau == pytest.approx(2.5, abs=1e-9)


def test_frank_wolfe_finds_the_two_weight_optimum() -> None:
    """With two weights the simplex is a segment and one exact line search is optimal."""
    rng = np.random.default_rng(1)
    P, n = 5, 12
    A, b = rng.normal(size=(P, n, 2)), rng.normal(size=(P, n))
    zeta = 0.3
    x, _ = sdid.frank_wolfe(A, b, zeta, np.full((P, 2), 0.5), intercept=False,
                            min_decrease=1e-12, max_iter=50)
    eta = n * zeta**2
    for p in range(P):
        d = A[p, :, 0] - A[p, :, 1]
        r = b[p] - A[p, :, 1]
        # minimise ||x1 d - r||^2 + eta (x1^2 + (1 - x1)^2) over x1 in [0, 1]
        x1 = np.clip((d @ r + eta) / (d @ d + 2 * eta), 0, 1)
        np.testing.assert_allclose(x[p], [x1, 1 - x1], atol=1e-10)
        single, _ = sdid.frank_wolfe(A[[p]], b[[p]], zeta, np.full((1, 2), 0.5), intercept=False,
                                     min_decrease=1e-12, max_iter=50)
        np.testing.assert_allclose(single[0], x[p], atol=1e-12)


def _factor_panel(effect: float, seed: int) -> ri.PanelArrays:
    """Treated unit loads on a trending factor shared by half the controls only."""
    rng = np.random.default_rng(seed)
    n_units, T, start = 41, 40, 31
    load = np.r_[1.0, np.where(np.arange(40) < 20, 1.0, 0.0)]
    f = 20 * np.linspace(0, 1, T) ** 4
    y = rng.normal(0, 2, n_units)[:, None] + rng.normal(size=T).cumsum()[None, :] + load[:, None] * f
    y += 0.3 * rng.normal(size=(n_units, T))
    per = np.arange(1, T + 1)
    y[0, per >= start] += effect
    ft = np.r_[start, np.full(40, np.inf)]
    return ri.PanelArrays(y=y, first_treat=ft, units=np.array([f"U{i:02d}" for i in range(n_units)]),
                          periods=per)


def test_sdid_recovers_a_planted_effect_where_did_is_biased() -> None:
    pa = _factor_panel(effect=5.0, seed=0)
    rows = sdid.sdid_by_unit(pa, replications=50, seed=1, overall=False)
    (row,) = rows
    did = ri.did_estimator()(pa)
    assert abs(did - 5.0) > 2.0  # DiD is biased by the factor
    # SDID removes most of the bias (not all: the ridge penalty keeps some weight on
    # controls without the factor) and its placebo interval covers the truth
    assert abs(row.estimate - 5.0) < 0.3 * abs(did - 5.0)
    assert row.ci_low <= 5.0 <= row.ci_high
    assert row.std_error > 0 and row.n_pre == 30 and row.n_post == 10
    # the unit weights go to the controls that share the factor
    assert row.fit.omega[:20].sum() > 0.85


def test_sdid_by_unit_rows_overall_and_gaps() -> None:
    p = _panel(30, 24, {0: 12, 1: 16, 2: 16}, effect=1.0, seed=13)
    pa = ri.PanelArrays.from_frame(p, **KW)
    rows = sdid.sdid_by_unit(pa, replications=20, max_iter=2000)
    frame = sdid.rows_frame(rows)
    assert list(frame.columns)[:len(ESTIMATE_COLUMNS)] == ESTIMATE_COLUMNS
    assert {"status", "reason", "reason_detail"} <= set(frame.columns)
    assert (frame["status"] == "estimated").all() and frame["reason"].isna().all()
    assert frame["scope"].tolist() == ["U000", "U001", "U002", "overall"]
    assert (frame["inference"] == "sdid_placebo").all()
    w = np.array([13, 9, 9]) / 31  # post periods
    assert frame["estimate"].iloc[3] == pytest.approx(w @ frame["estimate"].iloc[:3].to_numpy())
    assert np.isfinite(frame["std_error"]).all()
    # determinism
    again = sdid.rows_frame(sdid.sdid_by_unit(pa, replications=20, max_iter=2000))
    pd.testing.assert_frame_equal(frame, again)
    # a gap in one control: skipped with a reason, or that control dropped
    gappy = p[~((p["unit"] == "U010") & (p["period"] == 5))]
    pa_g = ri.PanelArrays.from_frame(gappy, **KW)
    skipped = sdid.sdid_by_unit(pa_g, replications=0)
    assert [r.scope for r in skipped] == ["U000", "U001", "U002", "overall"]
    assert all(np.isnan(r.estimate) and r.status == "not_estimable" for r in skipped)
    assert all(r.reason == "no_control_units" and "missing" in r.reason_detail for r in skipped[:3])
    dropped = sdid.sdid_by_unit(pa_g, replications=0, on_gaps="drop_controls")
    assert dropped[0].dropped_controls == ("U010",) and np.isfinite(dropped[0].estimate)


def test_sdid_as_randomization_estimator() -> None:
    pa = _factor_panel(effect=5.0, seed=2)
    res = ri.placebo_in_space(pa, sdid.sdid_estimator(max_iter=1000), "U00")
    assert res.p_value == pytest.approx(1 / 41)
    assert res.ci_low <= 5.0 <= res.ci_high


@pytest.mark.parametrize("n_factors", [0, 1, 2])
def test_bootstrap_pieces_equal_the_explicit_dummy_projection(n_factors: int) -> None:
    """K0 and K1 (``sum_{j in h} M_D(z 1_g)_j u_j - ...``) with the annihilator ``M_D`` of
    explicit dummy columns (least squares, no absorption code), on an unbalanced panel with
    no, one and two fixed-effect factors (a region factor crossing units and periods): the
    pieces are built from sums per level and cluster, never from the absorbed ``N x G``
    matrix."""
    from mipa.inference import wild_pieces

    rng = np.random.default_rng(11)
    n_units, n_periods = 12, 9
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    keep = rng.random(unit.size) > 0.2
    unit, period = unit[keep], period[keep]
    region = unit % 3 + 3 * (period % 2)
    factors = [[], [region], [unit, period]][n_factors]
    X = np.column_stack([(unit < 4) & (period >= 5), rng.normal(size=unit.size)]).astype(float)
    y = X @ np.array([1.0, 0.5]) + rng.normal(size=unit.size) + 0.3 * unit
    fc = wb.fit_contrast(y, X, factors, unit, np.array([1.0, 0.0]), n_treated_clusters=4)
    pieces = wb.bootstrap_pieces(fc)

    D = np.column_stack([np.ones(unit.size)] + [np.eye(int(f.max()) + 1)[f] for f in factors])

    def annihilate(M: np.ndarray) -> np.ndarray:
        return M - D @ np.linalg.lstsq(D, M, rcond=None)[0]

    fit, G, codes = fc.fit, fc.n_clusters, fc.cluster_codes
    z = fit.x_tilde @ (fit.bread @ fc.contrast)
    Zg = np.zeros((z.size, G))
    Zg[np.arange(z.size), codes] = z
    Zg = annihilate(Zg) if n_factors else Zg
    E = np.eye(G)[codes]  # N x G cluster indicator
    u0, u1 = wild_pieces.restricted_residuals(fc, "constant")
    for u, K in ((u0, pieces.K0), (u1, pieces.K1)):
        first = (E * u[:, None]).T @ Zg  # [h, g]
        Xu = (E * u[:, None]).T @ fit.x_tilde
        Zx = (E * z[:, None]).T @ fit.x_tilde
        expected = first.T - Zx @ fit.bread @ Xu.T
        np.testing.assert_allclose(K, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
