r"""Restricted wild cluster bootstrap (WCR) for a linear combination of fixed-effects coefficients.

References
----------
* Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008), "Bootstrap-based improvements
  for inference with clustered errors", REStat 90(3), 414-427 (CGM 2008): the wild
  cluster bootstrap-t with the null imposed (WCR).
* MacKinnon, J. G. and Webb, M. D. (2017), "Wild bootstrap inference for wildly different
  cluster sizes", J. Applied Econometrics 32(2), 233-254; Webb, M. D. (2023), "Reworking
  wild bootstrap-based inference for clustered errors", Canadian J. Econ. 56(3) (the
  six-point weights, for few clusters).
* MacKinnon, J. G. and Webb, M. D. (2018), "The wild bootstrap for few (treated)
  clusters", Econometrics Journal 21(2), 114-135 (MW 2018).
* Roodman, D., Nielsen, M. O., MacKinnon, J. G. and Webb, M. D. (2019), "Fast and wild:
  bootstrap inference in Stata using boottest", Stata Journal 19(1), 4-60 (RNMW 2019):
  the algorithm (everything linear in the weights, precomputed once) and the confidence
  interval by inverting the bootstrap test over the null value.
* Conley, T. G. and Taber, C. R. (2011), "Inference with 'difference in differences' with
  a small number of policy changes", REStat 93(1), 113-125.

Model and test
--------------
``y = X b + D a + e`` with fixed effects ``D`` absorbed as in :mod:`mipa.estimators.ols`
(``X~ = M_D X``), clusters ``g = 1..G`` (countries), and the hypothesis
``H0: theta = w'b = r``. Write ``A = (X~'X~)^-1``, ``a = A w``, ``z = X~ a`` (one number
per row) and ``c_g = sum_{i in g} z_i e_i``. The statistic is

    t(r) = (theta_hat - r) / se,   se^2 = q * sum_g c_g^2

(the cluster-robust standard error of ``w'b``, ``q`` = reghdfe's small-sample factor of
:func:`mipa.estimators.ols.cluster_vcov`; ``q`` appears in ``t`` and in every ``t*`` and
cancels out of the p-value).

WCR draw ``v`` (one weight per cluster, ``E v = 0``, ``E v^2 = 1``):
``y* = X b_r + D a_r + u_r * v_g`` with ``(b_r, a_r, u_r)`` a least-squares fit with the
null imposed. Two ways to impose it (``null_model``):

* ``"linear"`` (boottest's): only ``w'b = r``; ``b_r = b - a (theta_hat - r) / (w'a)``,
  ``u_r(r) = e + z (theta_hat - r) / (w'a)`` (note ``w'a = sum_i z_i^2``).
* ``"constant"`` (default): every coefficient the contrast averages (``O``: ``w_j != 0``,
  weights summing to one) equals ``r``, the others (``F``) re-fitted:
  ``u_r(r) = M_F (y~ - r X~_O 1) = e + Q (b_O - r 1)``, ``Q = X~ A[:, O] A[O, O]^-1``.
  For one coefficient (TWFE) the two coincide.

Why ``constant`` for ETWFE: its cell dummies saturate the treated post-period rows (with
one country per cohort every treated row has its own dummy), so their unrestricted
residuals are exactly zero. Neither the clustered standard error nor a bootstrap that
imposes only ``w'b = r`` ever sees the treated rows' own noise, which is what drives the
error of the average: in a simulation of the annex design (86 x 120, six starts,
Gaussian noise, heteroskedastic units, 100 replications) the ``linear`` WCR interval
covered the truth 71% of the time, the clustered one 41%. With the constant-effect null
the treated rows get residuals ``y~ - r d~ - ...`` that carry their noise; the same
simulation gave 98% (96% with homoskedastic units). It tests the sharp hypothesis "the
effect is ``r`` in every averaged cell" -- the constant-additive-effect assumption that
randomization inference also makes -- rather than only "the average is ``r``".
Linear in ``r`` either way: ``u_r(r) = u0 + r u1``.

Re-estimating on ``y*`` gives (RNMW 2019, sec. 3-5)

    w'b* - r          = sum_h v_h S_h,      S_h = sum_{i in h} z_i u_r,i
    c*_g              = sum_h K_gh v_h,     K_gh = sum_{j in h} [M_D(z 1_g)]_j u_r,j
                                                   - (sum_{i in g} z_i X~_i') A (sum_{j in h} X~_j u_r,j)
    t*(r)             = (S'v) / sqrt(q * sum_g (K v)_g^2).

The second line is the cluster score of the bootstrap residual
``u* = M_[X,D] y* = M_D(u_r v) - X~ A X~'(u_r v)``. ``M_D(z 1_g)`` matters only when
some fixed effect is not nested in the clusters (the period effects here); it is computed
once for all ``g`` by the same alternating projections (exact on unbalanced panels).
Because ``u_r`` is linear in ``r``, so are ``S = S0 + r S1`` and ``K = K0 + r K1``. With
the ``G x B`` weight matrix ``V`` drawn once, ``n0 = S0'V, n1 = S1'V`` and
``P0 = K0 V, P1 = K1 V`` are precomputed; then for any ``r`` each ``t*_b(r)`` costs O(1):

    t*_b(r) = (n0_b + r n1_b) / sqrt(q (d00_b + 2 r d01_b + r^2 d11_b)),
    d00 = colsum(P0^2), d01 = colsum(P0 P1), d11 = colsum(P1^2).

p-value (symmetric, boottest's default): ``p(r) = #{b: |t*_b(r)| >= |t(r)|} / B``.
Confidence set: ``{r: p(r) > alpha}``, found by stepping out from ``theta_hat`` in both
directions until ``p <= alpha`` and bisecting (``p`` is a step function of ``r``; the
bounds are located to ``1e-6 * se``). The same precomputation gives the unrestricted
bootstrap (WCU, ``restricted=False``: ``u_r = e`` for every ``r``, ``t*`` centred at
``theta_hat``), whose interval is ``theta_hat -/+ c* se`` with ``c*`` the bootstrap
quantile of ``|t*|``.

Weights: Webb's six points ``+-sqrt(1/2), +-1, +-sqrt(3/2)`` with probability 1/6 each
(default: with few clusters the two-point laws have too few distinct draws),
Rademacher ``+-1``, Mammen's two-point law. With Rademacher and ``2^G <= B`` every sign
vector is enumerated once (as boottest does), so the test is exact for that law.

Known behaviour with few treated clusters -- read before trusting an interval
----------------------------------------------------------------------------
MW 2018 show that when only ``G1`` clusters are treated, the WCR test *under*-rejects
(its p-values are too large, its intervals too wide, often unbounded) and the
unrestricted WCU *over*-rejects, increasingly so as ``G1`` falls; with ``G1 = 1`` the WCR
essentially never rejects at 5%. The reason: with the null imposed, ``S_h`` and ``K`` are
dominated by the treated clusters, so ``t*`` mimics the few treated clusters' scores
whatever the data say. This is a property of the method, not of this implementation.
In the simulation above (six treated countries, effect 1, unit noise sd around 1) the
overall WCR interval covered 98% (conservative, usable); the per-country WCR intervals
covered 100% with a median width of 41 -- uninformative. Use randomization inference
(:mod:`mipa.inference.randomization`) or SDID's placebo interval for single countries.
A per-country interval is ``-inf``/``inf`` when no null within ``MAX_CI_SE`` standard
errors is rejected.

The computation is split by responsibility: :mod:`mipa.inference.wild_contrasts` (the
regression and ``w``), :mod:`mipa.inference.wild_pieces` (the weights, the precomputed
pieces and the test inversion); this module runs the test and reports it
(:func:`wild_cluster_bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mipa.estimability import NotEstimable
from mipa.estimators.results import IntervalRow, estimate_row
from mipa.inference.wild_contrasts import (
    FittedContrast,
    etwfe_contrast,
    etwfe_contrasts,
    fit_contrast,
    fit_contrasts,
    twfe_contrast,
)
from mipa.inference.wild_pieces import (
    CI_TOL_SE,
    DEFAULT_SEED,
    MAX_BISECTIONS,
    MAX_CI_SE,
    BootstrapPieces,
    NullModel,
    WildWeights,
    bootstrap_pieces,
    bootstrap_t,
    ci_bound,
    draw_weights,
    draws,
    p_value,
)

__all__ = [
    "CI_TOL_SE",
    "DEFAULT_SEED",
    "MAX_BISECTIONS",
    "MAX_CI_SE",
    "BootstrapPieces",
    "FittedContrast",
    "NullModel",
    "WildBootstrapResult",
    "WildWeights",
    "bootstrap_pieces",
    "bootstrap_t",
    "draw_weights",
    "etwfe_contrast",
    "etwfe_contrasts",
    "fit_contrast",
    "fit_contrasts",
    "twfe_contrast",
    "wild_cluster_bootstrap",
]


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class WildBootstrapResult(IntervalRow):
    """One WCR (or WCU) test and interval for ``w'b``.

    ``std_error`` is the cluster-robust standard error that studentizes ``t`` and every
    ``t*``; the interval is *not* ``estimate +- 1.96 std_error`` but the bootstrap test
    inverted. ``ci_low``/``ci_high`` are ``-inf``/``inf`` when no null value within
    ``MAX_CI_SE`` standard errors is rejected (see the module docstring: expected with
    one treated cluster).
    """

    null: float
    t_stat: float
    n_obs: int
    n_clusters: int
    n_treated_clusters: int
    n_boot: int
    weights: str
    restricted: bool
    enumerated: bool
    seed: int
    alpha: float
    null_model: str = "constant"

    @property
    def inference(self) -> str:
        """``wild_cluster_bootstrap_<weights>`` (WCR, constant-effect null); variants say so."""
        kind = "wild_cluster_bootstrap"
        if not self.restricted:
            kind += "_unrestricted"
        elif self.null_model == "linear":
            kind += "_linear_null"
        return f"{kind}_{self.weights}"

    def row(self, aggregation: str = "simple") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS`."""
        return estimate_row(self, aggregation)


def wild_cluster_bootstrap(
    fc: FittedContrast,
    *,
    null: float = 0.0,
    weights: WildWeights = "webb",
    n_boot: int = 999,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    restricted: bool = True,
    null_model: NullModel = "constant",
    ci: bool = True,
) -> WildBootstrapResult:
    """Wild cluster bootstrap-t test of ``w'b = null`` and its inverted confidence interval.

    Parameters
    ----------
    fc: the regression and contrast (:func:`etwfe_contrast`, :func:`twfe_contrast`,
        :func:`fit_contrast`).
    null: ``r`` of ``H0: w'b = r`` for the reported p-value.
    weights, n_boot, seed: the weight law, number of draws and seed (:func:`draw_weights`).
    alpha: 1 - confidence level.
    restricted: True for WCR (null imposed; CGM 2008, RNMW 2019), False for WCU.
    null_model: how the null is imposed on the bootstrap DGP: ``"constant"`` (default:
        every coefficient the contrast averages equals ``r``; needed for ETWFE, see the
        module docstring) or ``"linear"`` (only ``w'b = r``, boottest's restriction).
        The two coincide for a single coefficient (TWFE).
    ci: False skips the interval (NaN), e.g. in a Monte Carlo that only needs p-values.

    The same ``G x B`` weights serve every null value, so the interval is the exact set
    ``{r : p(r) > alpha}`` for those draws (up to the bisection tolerance).
    """
    V, enumerated = draw_weights(fc.n_clusters, n_boot, weights=weights, seed=seed)
    pieces = bootstrap_pieces(fc, restricted=restricted, null_model=null_model)
    d = draws(pieces, V)
    se = pieces.std_error
    if not np.isfinite(se) or not np.isfinite(pieces.theta):
        raise NotEstimable("no_variance", "the cluster-robust standard error of the contrast is not finite")
    if se <= 1e-10 * max(1.0, abs(pieces.theta)):
        raise NotEstimable("constant_outcome", "the contrast has (numerically) zero variance: the outcome does not "
                           "vary where the effect is identified")
    p_null = p_value(d, pieces, null)
    if ci and se > 0:
        lo = ci_bound(d, pieces, alpha, -1.0)
        hi = ci_bound(d, pieces, alpha, 1.0)
    else:
        lo = hi = np.nan
    return WildBootstrapResult(
        scope=fc.label,
        estimate=pieces.theta,
        std_error=se,
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=p_null,
        null=float(null),
        t_stat=float((pieces.theta - null) / se) if se > 0 else np.nan,
        n_obs=pieces.n_obs,
        n_clusters=fc.n_clusters,
        n_treated_clusters=fc.n_treated_clusters,
        n_boot=int(V.shape[1]),
        weights=weights,
        restricted=restricted,
        enumerated=enumerated,
        seed=int(seed),
        alpha=float(alpha),
        null_model=null_model,
    )
