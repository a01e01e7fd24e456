"""Tests of :mod:`mipa.sensitivity.honest_did` (Rambachan & Roth 2023, R ``HonestDiD``).

Known truths: R's random numbers for fixed seeds (the emulation of R's generator lives in
the tests' helper :mod:`r_rng`, not in production); hand-computed identified sets and
fixed-length CIs; and the R HonestDiD output on the Benzarti & Carloni (2019) event study
(``BCdata_EventStudy``, 4 pre and 4 post periods), from three public sources:

* ``BC_BETAHAT`` / ``BC_SIGMA``: ``BCdata_EventStudy`` to 10 significant digits, as
  exported from R in HonestDiD.jl (eohne/HonestDiD.jl ``test/reference.jl``); the Stata
  port's ``_honestExampleBCBeta()/_honestExampleBCSigma()`` (mcaceresb/stata-honestdid)
  carry the same numbers to 7 digits (checked below).
* ``R_JSON``: output of the current R HonestDiD (with ``seed``) written to JSON by
  anzonyquispe/honestdid ``tests/r_test_results.json`` (``tests/test_honestdid.R``):
  ``constructOriginalCS``, ``createSensitivityResults`` (FLCI, ``Mvec = 0..0.03``),
  ``createSensitivityResults_relativeMagnitudes`` (C-LF, ``Mbar = 0.5..2``),
  ``findOptimalFLCI`` and ``DeltaSD_upperBound_Mpre``.
* ``JL``: R values in HonestDiD.jl ``test/reference.jl`` (FLCI at ``M = 0.1, 0.2``,
  ``method = "Conditional"``, ``computeConditionalCS_DeltaSD`` ARP on 200/100-point grids,
  ``computeConditionalCS_DeltaRM`` on a 200-point grid).
* ``STATA_MD``: the R column of the R-vs-Stata comparison (stata-honestdid, relative
  magnitudes on the grid ``[-1, 1]`` with 100 points, 3 significant digits; "same for
  both methods").

Comparisons with R's digits inject R's draws (``normals=R_DRAWS``, ``set.seed(0);
rnorm(10^6)``) into the two simulations (C-LF critical value, FLCI folded-normal quantile);
production draws come from numpy's generator.

The Lovenheim & Willen (2019) event study and the README's Medicaid example are not
used: their coefficients/covariances are not available as text anywhere we could verify.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_rng import r_normals, r_rmvnorm, r_rnorm
from scipy import stats

from mipa.sensitivity import honest_did as hd

BC_BETAHAT = np.array([0.006696351804, 0.02934503369, -0.006472972222, 0.0730149895,
                       0.1959611177, 0.3120639026, 0.2395415455, 0.1260425001])
BC_SIGMA = np.array([
    [0.0008428358124, 0.0004768686777, 0.0002618051076, 0.0002354220342, 0.0001676371467, 0.0001128707663, 1.992816215e-05, -0.0001368265366],
    [0.0004768686777, 0.0006425420288, 0.0003987425007, 0.0002435515198, 0.0002201960306, 0.0001804591157, 3.84376508e-05, -2.960421989e-05],
    [0.0002618051076, 0.0003987425007, 0.0005229949602, 0.000211768609, 0.0001840722252, 0.000145852784, 7.005197403e-05, 5.952994979e-05],
    [0.0002354220342, 0.0002435515198, 0.000211768609, 0.0003089595411, 0.0001197866077, 0.0001334081317, 0.0001016335009, 0.0001079051726],
    [0.0001676371467, 0.0002201960306, 0.0001840722252, 0.0001197866077, 0.000359970436, 0.0002478818642, 0.0001749579242, 0.0001654256921],
    [0.0001128707663, 0.0001804591157, 0.000145852784, 0.0001334081317, 0.0002478818642, 0.0004263949813, 0.0002171437809, 0.0002892747871],
    [1.992816215e-05, 3.84376508e-05, 7.005197403e-05, 0.0001016335009, 0.0001749579242, 0.0002171437809, 0.0004886697861, 0.0003805322049],
    [-0.0001368265366, -2.960421989e-05, 5.952994979e-05, 0.0001079051726, 0.0001654256921, 0.0002892747871, 0.0003805322049, 0.000761739444],
])
# Stata port, _honestExampleBCBeta() (7 significant digits)
STATA_BETA = np.array([0.006696352, 0.029345034, -0.006472972, 0.073014989,
                       0.195961118, 0.312063903, 0.239541546, 0.126042500])
NPRE = NPOST = 4
#: R's ``set.seed(0); rnorm(10^6)``: HonestDiD's draws for both simulations (seed 0)
R_DRAWS = r_normals(0)


# --------------------------------------------------------------------------- R's RNG
def test_r_rnorm_reproduces_r() -> None:
    """R: set.seed(0); rnorm(5) / set.seed(42); rnorm(3) / set.seed(123); rnorm(5)."""
    np.testing.assert_allclose(r_rnorm(5, 0), [1.2629543, -0.3262334, 1.3297993, 1.2724293, 0.4146414], atol=5e-8)
    np.testing.assert_allclose(r_rnorm(3, 42), [1.3709584, -0.5646982, 0.3631284], atol=5e-8)
    np.testing.assert_allclose(r_rnorm(5, 123), [-0.56047565, -0.23017749, 1.55870831, 0.07050839, 0.12928774], atol=5e-9)
    np.testing.assert_array_equal(R_DRAWS[:5], r_rnorm(5, 0))


def test_r_rmvnorm_identity_is_rnorm_by_rows() -> None:
    z = r_rmvnorm(4, np.eye(3), seed=1)
    np.testing.assert_allclose(z, r_rnorm(12, 1).reshape(4, 3), atol=1e-14)


# --------------------------------------------------------------------------- production draws
def test_default_draws_are_numpy_and_restart() -> None:
    """Without ``normals`` the simulations use numpy's generator seeded with ``seed``; each
    simulation restarts the stream (its first n draws), as HonestDiD's set.seed."""
    draws = hd.normal_draws(7)
    np.testing.assert_array_equal(draws(5), np.random.default_rng(7).standard_normal(5))
    np.testing.assert_array_equal(draws(3), draws(5)[:3])
    with pytest.raises(ValueError):
        hd.normal_draws(normals=np.zeros(3))(4)


def test_injected_normals_function_or_array() -> None:
    """A draw function and the same draws pre-drawn give the same set; the seed is then unused."""
    args = (BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 1.0)
    grid = dict(grid_lb=0.0, grid_ub=0.4, grid_points=81)
    by_array = hd.conditional_cs_rm(*args, **grid, normals=R_DRAWS)
    by_function = hd.conditional_cs_rm(*args, **grid, seed=5, normals=lambda n: r_rnorm(n, 0))
    np.testing.assert_array_equal(by_array.accept, by_function.accept)
    seeded = hd.conditional_cs_rm(*args, **grid, seed=3)
    np.testing.assert_array_equal(seeded.accept, hd.conditional_cs_rm(*args, **grid, seed=3).accept)


# --------------------------------------------------------------------------- hand cases
@pytest.mark.parametrize("mbar", [0.0, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("b_pre", [0.3, -0.2])
def test_rm_identified_set_one_pre_one_post(mbar: float, b_pre: float) -> None:
    """One pre, one post: |delta_1 - 0| <= Mbar |0 - delta_{-1}| = Mbar |b_pre|."""
    b_post = 1.1
    lo, hi = hd.identified_set_rm([b_pre, b_post], 1, 1, mbar)
    assert lo == pytest.approx(b_post - mbar * abs(b_pre), abs=1e-9)
    assert hi == pytest.approx(b_post + mbar * abs(b_pre), abs=1e-9)


@pytest.mark.parametrize("hybrid", ["LF", "ARP"])
def test_rm_confidence_set_tends_to_identified_set(hybrid: str) -> None:
    """With Sigma -> 0 the robust confidence set is the identified set."""
    b_pre, b_post, mbar = 0.3, 1.1, 1.5
    sigma = 1e-14 * np.array([[1.0, 0.2], [0.2, 1.0]])
    grid = dict(grid_lb=0.0, grid_ub=2.0, grid_points=2001)  # step 0.001
    cs = hd.conditional_cs_rm([b_pre, b_post], sigma, 1, 1, mbar, hybrid=hybrid, **grid)
    assert cs.lb == pytest.approx(b_post - mbar * b_pre, abs=1.001e-3)
    assert cs.ub == pytest.approx(b_post + mbar * b_pre, abs=1.001e-3)
    assert not cs.open_lower and not cs.open_upper


def test_rm_two_post_periods_tends_to_identified_set() -> None:
    """Nuisance-parameter path: theta = tau_2 with two post periods; delta_2 may drift
    Mbar |b_pre| per period, so the set is b_2 +/- 2 Mbar |b_pre|."""
    beta = np.array([-0.1, 0.5, 0.8])
    sigma = 1e-14 * np.eye(3)
    lo, hi = hd.identified_set_rm(beta, 1, 2, 1.0, l_vec=[0, 1])
    assert (lo, hi) == pytest.approx((0.8 - 0.2, 0.8 + 0.2), abs=1e-9)
    cs = hd.conditional_cs_rm(beta, sigma, 1, 2, 1.0, l_vec=[0, 1], grid_lb=0, grid_ub=2, grid_points=2001)
    assert (cs.lb, cs.ub) == pytest.approx((0.6, 1.0), abs=1.001e-3)


def test_sd_identified_set_subtracts_linear_extrapolation() -> None:
    """Two pre periods, one post, Delta^SD(M): delta_1 = -delta_{-1} +/- M (the linear
    trend through delta_{-1} and delta_0 = 0, bent by at most M)."""
    b_m2, b_m1, b_1 = 0.4, 0.2, 1.0  # exactly linear pre-trend through 0
    assert hd.identified_set_sd([b_m2, b_m1, b_1], 2, 1, 0.0) == pytest.approx((1.2, 1.2), abs=1e-9)
    assert hd.identified_set_sd([b_m2, b_m1, b_1], 2, 1, 0.05) == pytest.approx((1.15, 1.25), abs=1e-9)
    # pre-trend not linear: Delta^SD(0) is empty; with M >= its curvature the pre
    # constraint holds and the post bound is -delta_{-1} +/- M
    assert np.isnan(hd.identified_set_sd([0.5, 0.2, 1.0], 2, 1, 0.0)).all()
    assert hd.identified_set_sd([0.5, 0.2, 1.0], 2, 1, 0.1) == pytest.approx((1.1, 1.3), abs=1e-9)


def test_flci_m0_two_pre_periods_by_hand() -> None:
    """M = 0: the minimum-variance unbiased affine estimator. With diagonal Sigma the
    weights on (b_-2, b_-1) solve min a^2 s1 + b^2 s2 s.t. 2a + b = 1:
    a = 2 lam / s1, b = lam / s2, lam = 1 / (4/s1 + 1/s2)."""
    s1, s2, sp = 0.04, 0.01, 0.02
    beta = np.array([0.5, 0.2, 1.0])
    sigma = np.diag([s1, s2, sp])
    lam = 1 / (4 / s1 + 1 / s2)
    a, b = 2 * lam / s1, lam / s2
    r = hd.flci_sd(beta, sigma, 2, 1, 0.0, folded_normal="exact")
    np.testing.assert_allclose(r.weights, [a, b, 1.0], atol=1e-10)
    assert r.center == pytest.approx(1.0 + a * 0.5 + b * 0.2, abs=1e-10)
    half = stats.norm.ppf(0.975) * np.sqrt(a * a * s1 + b * b * s2 + sp)
    assert r.half_length == pytest.approx(half, rel=1e-9)
    # exactly linear pre-trend: the centre is b_1 - (extrapolated delta_1) = b_1 + b_-1
    r_lin = hd.flci_sd([0.4, 0.2, 1.0], sigma, 2, 1, 0.0, folded_normal="exact")
    assert r_lin.center == pytest.approx(1.2, abs=1e-10)


def test_original_ci_by_hand() -> None:
    beta = np.array([0.1, 0.5, 0.7])
    sigma = np.diag([0.01, 0.04, 0.09])
    z = stats.norm.ppf(0.975)
    assert hd.original_ci(beta, sigma, 1, 2) == pytest.approx((0.5 - 0.2 * z, 0.5 + 0.2 * z))
    se = np.sqrt(0.25 * 0.04 + 0.25 * 0.09)
    assert hd.original_ci(beta, sigma, 1, 2, l_vec=[0.5, 0.5]) == pytest.approx((0.6 - z * se, 0.6 + z * se))


def test_folded_normal_exact_quantile() -> None:
    cv = hd.FoldedNormalCV(0.95, "exact", 0)
    assert cv(0.0) == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    q = cv(1.3)
    assert stats.norm.cdf(q - 1.3) - stats.norm.cdf(-q - 1.3) == pytest.approx(0.95, abs=1e-12)


# --------------------------------------------------------------------------- BC: R output
R_JSON = {
    "original": (0.15877494280765034, 0.23314729268124126),
    "sd_flci": {0.0: (0.13141131596381356, 0.216169648209591),
                0.01: (0.1549652670807741, 0.2703845303265206),
                0.02: (0.17730108790014376, 0.31595646819476952),
                0.03: (0.18940446443439926, 0.34854775003919292)},
    "rm_clf": {0.5: (0.11812948578177346, 0.27158386602562062),
               1.0: (0.06723125075039843, 0.31868372530838568),
               1.5: (0.013294315120135292, 0.36958196033976071),
               2.0: (-0.042161970809571847, 0.3794577372861469)},
    "flci_half_m0": 0.042379166122888709,
    "m_upper": 0.20216986929706898,
}
JL = {
    "flci": {0.1: (0.1194440001, 0.4185082143, 0.1495321071), 0.2: (0.01944400015, 0.5185082143, 0.2495321071)},
    "flci_optvec_m01": [0, 0, 0, 1, 1, 0, 0, 0],
    "sens_conditional": {0.0: (0.2100501789, 0.3277998271), 0.1: (0.1195044811, 0.4180257149),
                         0.2: (0.02030132213, 0.5179737331)},
    "ccs_sd_arp_gp200": (0.1228761035, 0.4168150178),
    "ccs_sd_avg_arp_gp100": (-0.1809607769, 0.8531008055),
    "ccs_rm_gp200": (0.07055244362, 0.3184394077),
}
STATA_MD = {  # R lb, ub on seq(-1, 1, length.out = 100), Mbar = 0, 0.5, 1, 1.5, 2
    1: [(0.172, 0.232), (0.131, 0.253), (0.0707, 0.313), (0.0303, 0.354), (-0.0303, 0.414)],
    3: [(0.212, 0.273), (0.0707, 0.414), (-0.0909, 0.576), (-0.253, 0.737), (-0.434, 0.919)],
}


def test_bc_inputs_agree_with_stata_port() -> None:
    np.testing.assert_allclose(BC_BETAHAT, STATA_BETA, atol=6e-10)


def test_bc_original_ci() -> None:
    lo, hi = hd.original_ci(BC_BETAHAT, BC_SIGMA, NPRE, NPOST)
    assert (lo, hi) == pytest.approx(R_JSON["original"], abs=1e-9)


def test_bc_sd_upper_bound_m() -> None:
    assert hd.sd_upper_bound_m_pre(BC_BETAHAT, BC_SIGMA, NPRE) == pytest.approx(R_JSON["m_upper"], abs=1e-9)


@pytest.mark.parametrize("m", [0.0, 0.01, 0.02, 0.03])
def test_bc_flci_matches_r(m: float) -> None:
    r = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, m, normals=R_DRAWS)
    lo, hi = R_JSON["sd_flci"][m]
    # M = 0: R's ECOS solution of the degenerate problem h = h_min is ~8e-7 off the exact
    # minimum-variance estimator; the half-length agrees to 1e-11
    tol = 1e-6 if m == 0 else 1e-8
    assert r.lb == pytest.approx(lo, abs=tol)
    assert r.ub == pytest.approx(hi, abs=tol)
    if m == 0:
        assert r.half_length == pytest.approx(R_JSON["flci_half_m0"], abs=1e-10)


@pytest.mark.parametrize("m", [0.1, 0.2])
def test_bc_flci_corner_matches_r(m: float) -> None:
    r = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, m, normals=R_DRAWS)
    lo, hi, half = JL["flci"][m]
    assert (r.lb, r.ub, r.half_length) == pytest.approx((lo, hi, half), abs=1e-8)
    if m == 0.1:
        np.testing.assert_allclose(r.weights, JL["flci_optvec_m01"], atol=1e-8)


def test_bc_flci_exact_folded_normal_close_to_r() -> None:
    """The exact folded-normal quantile moves the half-length by the simulation error only;
    the optimal h lies in a flat valley of the half-length, so the centre (which depends
    on h) moves more, ~1e-3 here."""
    r = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 0.02, folded_normal="exact")
    lo, hi = R_JSON["sd_flci"][0.02]
    assert r.half_length == pytest.approx((hi - lo) / 2, rel=2e-3)
    assert r.lb == pytest.approx(lo, abs=2e-3) and r.ub == pytest.approx(hi, abs=2e-3)


def test_bc_numpy_draws_close_to_r() -> None:
    """Production (numpy) draws move the simulated results by the simulation error only:
    the FLCI as much as the exact quantile does (test above), the C-LF sets by a few points
    of HonestDiD's 1000-point grid (3 here). ``"r_simulation"`` is the earlier name of
    ``"simulation"``."""
    for m, (lo, hi) in R_JSON["sd_flci"].items():
        r = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, m)
        assert r.half_length == pytest.approx((hi - lo) / 2, rel=2e-3)
        assert r.lb == pytest.approx(lo, abs=2e-3) and r.ub == pytest.approx(hi, abs=2e-3)
    alias = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 0.02, folded_normal="r_simulation")
    sim = hd.flci_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 0.02, folded_normal="simulation")
    assert (alias.lb, alias.ub) == (sim.lb, sim.ub)
    step = 40 * np.sqrt(BC_SIGMA[NPRE, NPRE]) / 999
    res = hd.sensitivity_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, mbar_vec=list(R_JSON["rm_clf"]))
    for row in res.itertuples():
        lo, hi = R_JSON["rm_clf"][row.mbar]
        assert abs(row.lb - lo) <= 5 * step and abs(row.ub - hi) <= 5 * step, row.mbar


def test_bc_relative_magnitudes_clf_matches_r() -> None:
    res = hd.sensitivity_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, mbar_vec=list(R_JSON["rm_clf"]), normals=R_DRAWS)
    for row in res.itertuples():
        lo, hi = R_JSON["rm_clf"][row.mbar]
        assert row.lb == pytest.approx(lo, abs=1e-8), row.mbar
        assert row.ub == pytest.approx(hi, abs=1e-8), row.mbar
    # Mbar = 2 reaches the end of HonestDiD's default grid (20 sd_theta)
    assert bool(res.iloc[-1].open_upper)


def test_bc_smoothness_conditional_matches_r() -> None:
    res = hd.sensitivity_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, m_vec=[0.0, 0.1, 0.2], method="Conditional")
    for row in res.itertuples():
        lo, hi = JL["sens_conditional"][row.m]
        assert (row.lb, row.ub) == pytest.approx((lo, hi), abs=1e-8)


def test_bc_conditional_grids_match_r() -> None:
    cs = hd.conditional_cs_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 0.1, hybrid="ARP", grid_points=200)
    assert (cs.lb, cs.ub) == pytest.approx(JL["ccs_sd_arp_gp200"], abs=1e-8)
    cs = hd.conditional_cs_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 0.1, l_vec=np.full(4, 0.25),
                              hybrid="ARP", grid_points=100)
    assert (cs.lb, cs.ub) == pytest.approx(JL["ccs_sd_avg_arp_gp100"], abs=1e-8)
    for hybrid in ("ARP", "LF"):  # the two coincide here
        cs = hd.conditional_cs_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, 1.0, hybrid=hybrid, grid_points=200,
                                  normals=R_DRAWS)
        assert (cs.lb, cs.ub) == pytest.approx(JL["ccs_rm_gp200"], abs=1e-8)


@pytest.mark.parametrize("method", ["C-LF", "Conditional"])
@pytest.mark.parametrize("index", [1, 3])
def test_bc_relative_magnitudes_custom_grid_matches_r(method: str, index: int) -> None:
    grid = np.linspace(-1, 1, 100)
    res = hd.sensitivity_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, [0, 0.5, 1, 1.5, 2],
                            l_vec=hd.basis_vector(index, 4), method=method,
                            grid_points=100, grid_lb=-1, grid_ub=1, normals=R_DRAWS)
    for (lo, hi), row in zip(STATA_MD[index], res.itertuples(), strict=True):
        # published to 3 significant digits: the nearest grid point must be ours
        assert row.lb == grid[np.argmin(np.abs(grid - lo))]
        assert row.ub == grid[np.argmin(np.abs(grid - hi))]


def test_bc_breakdown_values() -> None:
    # RM (C-LF): 0 is outside the set at Mbar = 1.5 and inside at 2 (R_JSON)
    bd = hd.breakdown_value_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, tol=1e-3, normals=R_DRAWS)
    assert 1.5 < bd <= 2.0
    grid = dict(grid_lb=-0.2, grid_ub=0.6, grid_points=801, normals=R_DRAWS)
    assert hd.conditional_cs_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, bd + 2e-3, **grid).lb <= 0
    assert hd.conditional_cs_rm(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, bd - 2e-3, **grid).lb > 0
    # SD (FLCI): beyond M = 0.1 the FLCI is the minimum-bias estimator b_1 + b_-1 with
    # half-length M + 1.645 h_0 (JL: lb = 0.11944 at 0.1, 0.01944 at 0.2), so the
    # lower end reaches 0 at M = 0.219444
    bd_sd = hd.breakdown_value_sd(BC_BETAHAT, BC_SIGMA, NPRE, NPOST, tol=1e-6, normals=R_DRAWS)
    assert bd_sd == pytest.approx(0.2 + 0.01944400015, abs=1e-5)


def test_not_significant_has_breakdown_zero() -> None:
    beta = np.array([0.01, 0.02, 0.05])
    sigma = np.diag([0.01, 0.01, 0.01])
    assert hd.breakdown_value_rm(beta, sigma, 2, 1) == 0.0
    assert hd.breakdown_value_sd(beta, sigma, 2, 1) == 0.0


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        hd.original_ci([0.1, 0.2], np.eye(3), 1, 1)
    with pytest.raises(ValueError):
        hd.original_ci([0.1, 0.2], np.array([[1.0, 0.5], [0.0, 1.0]]), 1, 1)
    with pytest.raises(ValueError):
        hd.original_ci([0.1, 0.2], np.eye(2), 1, 1, l_vec=[1, 0])


def test_breakdown_values_by_hand() -> None:
    """With Sigma -> 0 the sets are the identified sets, so the breakdown values follow from
    them. Relative magnitudes, one pre and one post period: the set
    [b_1 - Mbar |b_-1|, b_1 + Mbar |b_-1|] reaches 0 at Mbar = b_1 / |b_-1| = 1.1 / 0.4.
    Smoothness, two pre periods (linear pre-trend through 0): the set 1.2 +/- M
    (test_sd_identified_set_subtracts_linear_extrapolation) reaches 0 at M = 1.2."""
    sigma = 1e-14 * np.array([[1.0, 0.2], [0.2, 1.0]])
    assert hd.breakdown_value_rm([0.4, 1.1], sigma, 1, 1, tol=1e-4) == pytest.approx(2.75, abs=1e-4)
    assert hd.breakdown_value_rm([-0.4, 1.1], sigma, 1, 1, tol=1e-4) == pytest.approx(2.75, abs=1e-4)
    bd = hd.breakdown_value_sd([0.4, 0.2, 1.0], 1e-14 * np.eye(3), 2, 1, tol=1e-6, m_max=10.0, folded_normal="exact")
    assert bd == pytest.approx(1.2, abs=1e-5)


def test_flci_min_bias_closed_form_is_the_optimum() -> None:
    """The KKT closed form of ``min sum|v| s.t. var(v) <= h^2`` is feasible, no worse than
    SLSQP from the same start, and None (not a wrong answer) for a support it cannot hold."""
    from mipa.sensitivity.honest_did.flci import _FLCIProblem

    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(20):
        num_pre, num_post = 4, 2
        a = rng.normal(size=(num_pre + num_post, num_pre + num_post))
        sigma = a @ a.T / 10 + np.eye(num_pre + num_post) * 0.05
        problem = _FLCIProblem(sigma, num_pre, num_post, np.array([0.5, 0.5]))
        for scale in (0.6, 0.9, 1.2):
            h = scale * np.sqrt(problem.rv)
            _, v_slsqp = problem._min_bias_slsqp(h, np.zeros(num_pre - 1))
            exact = problem.kkt_solution(h, v_slsqp)
            if exact is None:
                continue
            checked += 1
            variance = exact @ problem.qv @ exact + problem.gv @ exact + problem.rv
            assert variance <= h * h * (1 + 1e-9)
            assert np.abs(exact).sum() <= np.abs(v_slsqp).sum() + 1e-7
        wrong_support = np.zeros(num_pre - 1)
        wrong_support[0] = -1.0
        h = 0.6 * np.sqrt(problem.rv)
        candidate = problem.kkt_solution(h, wrong_support)
        if candidate is not None:  # only when that support really is optimal
            _, v_slsqp = problem._min_bias_slsqp(h, np.zeros(num_pre - 1))
            assert np.abs(candidate).sum() <= np.abs(v_slsqp).sum() + 1e-7
    assert checked >= 20
