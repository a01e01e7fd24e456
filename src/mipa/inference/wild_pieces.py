"""The wild cluster bootstrap's weights, its precomputed pieces and the inversion of its test.

References: Roodman, D., Nielsen, M. O., MacKinnon, J. G. and Webb, M. D. (2019), "Fast
and wild: bootstrap inference in Stata using boottest", Stata Journal 19(1), 4-60 (RNMW
2019, sec. 3-5: everything linear in the weights and in the null value, precomputed once;
the interval by inverting the test); MacKinnon, J. G. and Webb, M. D. (2017), J. Applied
Econometrics 32(2), 233-254 and Webb, M. D. (2023), Canadian J. Econ. 56(3) (the six-point
weights); Mammen, E. (1993), Annals of Statistics 21(1) (the two-point law).

:func:`draw_weights` draws the ``G x B`` cluster weights; :func:`bootstrap_pieces` computes
``S0, S1, K0, K1`` of the restricted (or unrestricted) bootstrap of a
:class:`~mipa.inference.wild_contrasts.FittedContrast`; :class:`Draws` holds the per-draw
numbers from which every ``t*_b(r)`` costs O(1); :func:`p_value` and :func:`ci_bound` give
the p-value and the ends of ``{r : p(r) > alpha}``. The formulas are in the docstring of
:mod:`mipa.inference.wild_bootstrap`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.inference.wild_contrasts import FittedContrast

__all__ = [
    "CI_TOL_SE", "DEFAULT_SEED", "MAX_BISECTIONS", "MAX_CI_SE", "BootstrapPieces", "Draws", "NullModel", "WildWeights",
    "bootstrap_pieces", "bootstrap_t", "ci_bound", "cluster_sum", "draw_weights", "draws", "p_value",
    "restricted_residuals",
]

WildWeights = Literal["webb", "rademacher", "mammen"]
NullModel = Literal["constant", "linear"]
DEFAULT_SEED = 20260701
#: Largest |r - theta_hat| / se searched for a confidence bound before calling it unbounded.
MAX_CI_SE = 1e4
#: Bisection stops when the bracket is narrower than this many standard errors.
CI_TOL_SE = 1e-6


# --------------------------------------------------------------------------- weights
# bisection steps of an interval bound: 60 halvings reach any tolerance a double can hold
MAX_BISECTIONS = 60

_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_SQRT5 = np.sqrt(5.0)


def draw_weights(
    n_clusters: int, n_boot: int, *, weights: WildWeights = "webb", seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, bool]:
    """``G x B`` matrix of cluster weights and whether it is a full enumeration.

    * ``webb``: ``{-sqrt(3/2), -1, -sqrt(1/2), sqrt(1/2), 1, sqrt(3/2)}``, each w.p. 1/6
      (MacKinnon & Webb 2017; mean 0, variance 1, fourth moment 7/6).
    * ``rademacher``: ``+-1`` w.p. 1/2; when ``2^G <= B`` all ``2^G`` sign vectors are
      returned once instead (boottest's enumeration; ``B`` becomes ``2^G``).
    * ``mammen``: ``-(sqrt5-1)/2`` w.p. ``(sqrt5+1)/(2 sqrt5)``, else ``(sqrt5+1)/2``
      (Mammen 1993; third moment 1).

    Draws come from ``numpy.random.default_rng(seed)``.
    """
    G, B = int(n_clusters), int(n_boot)
    rng = np.random.default_rng(seed)
    if weights == "webb":
        return _WEBB[rng.integers(0, 6, size=(G, B))], False
    if weights == "rademacher":
        if G < 31 and 2**G <= B:
            signs = np.array(list(itertools.product((-1.0, 1.0), repeat=G))).T
            return signs, True
        return rng.choice(np.array([-1.0, 1.0]), size=(G, B)), False
    if weights == "mammen":
        lo, hi = -(_SQRT5 - 1) / 2, (_SQRT5 + 1) / 2
        p_lo = (_SQRT5 + 1) / (2 * _SQRT5)
        return np.where(rng.random((G, B)) < p_lo, lo, hi), False
    raise ValueError(f"weights must be 'webb', 'rademacher' or 'mammen', not {weights!r}")


# --------------------------------------------------------------------------- algebra
@dataclass(frozen=True)
class BootstrapPieces:
    """What boottest precomputes: everything the bootstrap ``t*`` needs, linear in ``r``.

    ``S0 + r S1`` (length ``G``) and ``K0 + r K1`` (``G x G``) of the module docstring,
    the observed ``theta_hat``, the cluster score sums ``c`` of the observed fit, and the
    small-sample factor ``q``.
    """

    theta: float
    c: np.ndarray
    S0: np.ndarray
    S1: np.ndarray
    K0: np.ndarray
    K1: np.ndarray
    q: float
    n_obs: int

    @property
    def std_error(self) -> float:
        """Cluster-robust ``se = sqrt(q sum_g c_g^2)`` of ``w'b``."""
        return float(np.sqrt(self.q * np.sum(self.c**2)))


def cluster_sum(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Row sums within clusters: ``G x p`` (or length ``G`` for a vector)."""
    return ols.ClusterSums.of(codes, n_clusters)(values)


def restricted_residuals(fc: FittedContrast, null_model: NullModel) -> tuple[np.ndarray, np.ndarray]:
    """``u_r(r) = u0 + r u1``: residuals of the fit with the null imposed (module docstring).

    ``linear``: least squares under ``w'b = r``: ``u_r = e + z (theta_hat - r) / (w'a)``.
    ``constant``: every coefficient in the contrast's support ``O`` (``w_j != 0``) equals
    ``r``, the other coefficients ``F`` free: ``u_r = M_F (y~ - r X~_O 1)
    = e + Q (b_O - r 1)`` with ``Q = M_F X~_O = X~ A[:, O] A[O, O]^-1`` (partitioned
    inverse). Needs ``sum_O w = 1`` so that a common ``r`` gives ``w'b = r``.
    """
    fit = fc.fit
    e = fit.resid
    if null_model == "linear":
        a = fit.bread @ fc.contrast
        z = fit.x_tilde @ a
        waw = float(z @ z)
        return e + z * fc.estimate / waw, -z / waw
    if null_model != "constant":
        raise ValueError(f"null_model must be 'constant' or 'linear', not {null_model!r}")
    own = fc.contrast != 0
    if abs(fc.contrast[own].sum() - 1.0) > 1e-9:
        raise ValueError(
            "null_model='constant' needs contrast weights summing to one (an average of "
            "coefficients, e.g. ETWFE without covariates); use null_model='linear'"
        )
    A = fit.bread
    M = np.linalg.solve(A[np.ix_(own, own)], A[own, :]).T  # A[:, O] A[O, O]^-1, k x |O|
    b_own = fit.coef[fit.kept][own]
    return e + fit.x_tilde @ (M @ b_own), -(fit.x_tilde @ M.sum(axis=1))


def _projected_cluster_products(
    z: np.ndarray, codes: np.ndarray, G: int, fe_codes: list[np.ndarray] | tuple[np.ndarray, ...],
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``u -> [g, h] = sum_{j in h} M_D(z 1_g)_j u_j`` (``G x G``; ``S_g = sum_{j in g} z_j u_j``
    passed in), ``M_D`` the fixed effects' annihilator.

    ``M_D(z 1_g) = z 1_g - D_a f_a[:, g] - D_b f_b[:, g]`` with the effects of
    :class:`~mipa.estimators.ols.TwoWayEffects`, which need only ``D'(z 1_g)``: the sums of ``z``
    per level and cluster. So ``[g, h] = 1[g = h] S_g - (U_a f_a + U_b f_b)[h, g]`` with
    ``U[h, l] = sum_{j in h, level l} u_j``: ``G x levels`` arrays instead of the absorbed
    ``N x G`` matrix (the same numbers to rounding). At most two factors, as the fits.
    """
    if len(fe_codes) > 2:
        raise NotImplementedError("at most two fixed-effect factors")

    def by_level(values: np.ndarray, level: np.ndarray, n_levels: int) -> np.ndarray:  # n_levels x G
        return np.bincount(level * G + codes, weights=values, minlength=n_levels * G).reshape(n_levels, G)

    levels = [(np.asarray(c), int(np.max(c)) + 1) for c in fe_codes]
    if len(levels) == 2:
        effects = ols.TwoWayEffects.from_codes([c for c, _ in levels])
        n_a, n_b = effects.C.shape
        fitted = effects.fitted(by_level(z, effects.codes_a, n_a), by_level(z, effects.codes_b, n_b))
        levels = [(effects.codes_a, n_a), (effects.codes_b, n_b)]
    elif len(levels) == 1:
        level, n_levels = levels[0]
        _, _, inv = ols.level_factors([level])[0]
        fitted = (by_level(z, level, n_levels) * inv[:, None],)
    else:
        fitted = ()

    def first(u: np.ndarray, S: np.ndarray) -> np.ndarray:
        out = np.diag(S)
        for (level, n_levels), f in zip(levels, fitted, strict=True):
            out = out - (by_level(u, level, n_levels).T @ f).T
        return out

    return first


def bootstrap_pieces(
    fc: FittedContrast, *, restricted: bool = True, null_model: NullModel = "constant"
) -> BootstrapPieces:
    """Precompute ``S0, S1, K0, K1`` (RNMW 2019's algorithm; formulas in the module docstring).

    Cost: a few ``N x k`` products once per fitted regression (with one or two fixed-effect
    factors the absorbed ``N x G`` matrix ``M_D [z 1_g]`` is never formed:
    :func:`_projected_cluster_products`). ``restricted=False`` gives the WCU pieces (``S1 = K1 = 0``);
    ``null_model`` chooses the restricted fit (:func:`restricted_residuals`).
    """
    fit = fc.fit
    codes = fc.cluster_codes
    G = fc.n_clusters
    Xt = fit.x_tilde
    a = fit.bread @ fc.contrast
    z = Xt @ a
    waw = float(z @ z)
    if not waw > 0:
        raise NotEstimable("singular_design", "the contrast has zero variance (w'Aw = 0)")
    e = fit.resid
    theta = fc.estimate
    if restricted:
        u0, u1 = restricted_residuals(fc, null_model)
    else:
        u0 = e
        u1 = np.zeros_like(e)
    sums = ols.ClusterSums.of(codes, G)
    first = _projected_cluster_products(z, codes, G, fc.fe_codes)
    Zx = sums(Xt * z[:, None])  # G x k: sum_{i in g} z_i X~_i
    ZxA = Zx @ fit.bread

    def pieces(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = sums(z * u)
        Xu = sums(Xt * u[:, None])  # G x k
        return S, first(u, S) - ZxA @ Xu.T

    S0, K0 = pieces(u0)
    S1, K1 = pieces(u1) if restricted else (np.zeros(G), np.zeros((G, G)))
    c = sums(z * e)
    return BootstrapPieces(
        theta=theta, c=c, S0=S0, S1=S1, K0=K0, K1=K1, q=ols.cluster_small_sample_factor(fit, G, df_a=fc.df_a),
        n_obs=fit.n_obs,
    )


@dataclass(frozen=True)
class Draws:
    """``n0, n1, d00, d01, d11`` of the module docstring, one entry per draw."""

    n0: np.ndarray
    n1: np.ndarray
    d00: np.ndarray
    d01: np.ndarray
    d11: np.ndarray
    q: float

    def t_star(self, r: float) -> np.ndarray:
        """Bootstrap t-statistics ``t*_b(r)`` for the null value ``r``."""
        num = self.n0 + r * self.n1
        den2 = self.q * (self.d00 + 2 * r * self.d01 + r * r * self.d11)
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / np.sqrt(np.maximum(den2, 0.0))


def draws(p: BootstrapPieces, V: np.ndarray) -> Draws:
    P0 = p.K0 @ V
    P1 = p.K1 @ V
    return Draws(
        n0=p.S0 @ V, n1=p.S1 @ V,
        d00=(P0 * P0).sum(axis=0), d01=(P0 * P1).sum(axis=0), d11=(P1 * P1).sum(axis=0),
        q=p.q,
    )


def bootstrap_t(p: BootstrapPieces, V: np.ndarray, r: float) -> np.ndarray:
    """Bootstrap t-statistics for the null ``w'b = r`` and weight matrix ``V`` (``G x B``)."""
    return draws(p, V).t_star(r)


def p_value(d: Draws, p: BootstrapPieces, r: float) -> float:
    """Symmetric bootstrap p-value ``#{|t*_b(r)| >= |t(r)|} / B``."""
    t = (p.theta - r) / p.std_error
    ts = d.t_star(r)
    ts = np.where(np.isfinite(ts), ts, 0.0)
    return float(np.mean(np.abs(ts) >= abs(t) * (1 - 1e-12)))


def ci_bound(d: Draws, p: BootstrapPieces, alpha: float, direction: float) -> float:
    """Outer end of ``{r : p(r) > alpha}`` on one side of ``theta_hat`` (``+-inf`` if none).

    Steps out ``theta_hat + direction * se * 2^k`` until ``p <= alpha`` (at most
    ``MAX_CI_SE`` standard errors), then bisects between the last accepted and the first
    rejected point.
    """
    se = p.std_error
    inside = p.theta
    step = se
    while step <= MAX_CI_SE * se:
        cand = p.theta + direction * step
        if p_value(d, p, cand) <= alpha:
            outside = cand
            break
        inside = cand
        step *= 2
    else:
        return direction * np.inf
    for _ in range(MAX_BISECTIONS):  # a bound also stops at the float spacing of its value
        if abs(outside - inside) <= CI_TOL_SE * se:
            break
        mid = 0.5 * (inside + outside)
        if p_value(d, p, mid) <= alpha:
            outside = mid
        else:
            inside = mid
    return 0.5 * (inside + outside)

