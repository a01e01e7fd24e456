r"""Sensitivity of event-study conclusions to violations of parallel trends (HonestDiD).

Reference: Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel
Trends", Review of Economic Studies 90(5), 2555-2591 (RR2023); the inference builds on
Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for Linear Conditional Moment
Inequalities", Review of Economic Studies 90(6) (ARP2023), and Armstrong, T. and Kolesar,
M. (2018), "Optimal inference in a class of regression models", Econometrica 86(2)
(fixed-length confidence intervals). This module reproduces the computations of the R
package ``HonestDiD`` (Rambachan & Roth, github.com/asheshrambachan/HonestDiD), which
the tests check against its published output on the Benzarti & Carloni (2019) example.

Setting
-------
An event study gives ``beta_hat = (beta_pre, beta_post)`` (``num_pre`` leads, reference
period -1 omitted and normalised to 0, then ``num_post`` lags) with covariance
``sigma``; ``beta = tau + delta`` with ``tau_pre = 0``. The target is
``theta = l' tau_post``. A restriction ``delta in Delta`` bounds the post-period bias
``delta_post`` by what the pre-periods show. Periods are indexed ``-num_pre..-1`` and
``1..num_post`` around the omitted reference ``0`` (``delta_0 = 0``), as in HonestDiD.

* Relative magnitudes ``Delta^RM(Mbar)`` (RR2023 eq. 2.1 / sec. 2.4.1):
  ``|delta_{t+1} - delta_t| <= Mbar * max_{s<0} |delta_{s+1} - delta_s|`` for ``t >= 0``.
  Identified set (sharp, union over which pre difference ``s`` is the max and its sign):
  for one pre and one post period,
  ``[beta_post - Mbar |beta_pre|, beta_post + Mbar |beta_pre|]``.
* Smoothness ``Delta^SD(M)`` (RR2023 eq. 2.2): ``|(delta_{t+1} - delta_t) -
  (delta_t - delta_{t-1})| <= M`` for all ``t``; ``M = 0`` allows exactly linear
  trends, so the pre-trend's linear extrapolation is subtracted.

Each restriction is a polyhedron ``{delta : A delta <= d}`` (:func:`create_a_rm`,
:func:`create_a_sd`, HonestDiD's ``.create_A_RM`` / ``.create_A_SD``).

Confidence sets
---------------
* **Original** (:func:`original_ci`): ``l'beta_post +/- z_{1-alpha/2} sqrt(l' Sigma_post
  l)`` (HonestDiD ``constructOriginalCS``).
* **FLCI** (:func:`flci_sd`, for ``Delta^SD``): the affine estimator
  ``a + v'beta_hat`` that minimises the half-length
  ``chi = cv_alpha(bias_max / sd) * sd`` where ``cv_alpha(t)`` is the ``1-alpha``
  quantile of ``|N(t, 1)|`` (folded normal) and ``bias_max`` the worst-case bias over
  ``Delta^SD(M)`` (Armstrong & Kolesar 2018; RR2023 sec. 3.2; HonestDiD
  ``findOptimalFLCI``). As HonestDiD: the weights on the pre-periods are parametrised by
  cumulative sums ``w`` (``sum w = sum_s s l_s``), the worst-case bias is
  ``M (sum_s |sum_{j<=s} j l_{T-s+j}| - sum_s s l_s + sum_k |sum_{j<=k} w_j|)``; for
  each standard deviation ``h`` the bias is minimised subject to ``sd(w) <= h``
  (a second-order cone program; here SLSQP in the cumulative-sum coordinates), and ``h``
  runs from the minimum-variance ``h_min`` to the minimum-bias ``h_0`` with HonestDiD's
  bisection on numerical derivatives (``.findOptimalCIDerivativeBisection``).
* **Conditional / hybrid ARP tests inverted on a grid** (:func:`conditional_cs_rm`,
  :func:`conditional_cs_sd`): ``theta`` is in the set unless the ARP test rejects
  ``E[Y(theta) - X gamma] <= 0`` with ``Y(theta) = A beta_hat - d - A_post Gamma^{-1} e_1
  theta`` and nuisance ``gamma`` (ARP2023; HonestDiD ``.ARP_computeCI``). The test
  statistic is the LP value ``eta = min_{eta, gamma} eta s.t. Y - X gamma <= eta sd(Y)``;
  the conditional critical value is a truncated-normal quantile with truncation
  ``[v_lo, v_up]`` from the optimal vertex of the dual (primal formulas when the LP is
  non-degenerate; otherwise two exact linear-fractional programs, where HonestDiD
  bisects to 1e-6). ``"LF"`` is the conditional /
  least-favourable hybrid (C-LF, RR2023 sec. 3.3 recommended for ``Delta^RM``): reject
  when ``eta`` exceeds the least-favourable ``1-kappa`` critical value (``kappa =
  alpha/10``, from 1000 simulated draws as HonestDiD), otherwise test conditionally at
  size ``(alpha-kappa)/(1-kappa)`` with ``v_up`` capped at that value. ``"ARP"`` is the
  purely conditional test (HonestDiD ``method="Conditional"``). ``Delta^RM`` is the
  union over ``s`` and sign of the sets for ``Delta^RM_{s,+/-}``.

Matching R HonestDiD
--------------------
The simulations use R's random numbers: :func:`r_rnorm` reproduces ``set.seed(seed);
rnorm(n)`` (Mersenne-Twister with R's seeding, inversion normals) bit for bit, and
:func:`r_rmvnorm` ``mvtnorm::rmvnorm`` (``method="eigen"``). So with the defaults
(``seed=0``, 1000 least-favourable draws, ``10^6`` folded-normal draws for the FLCI's
critical value, HonestDiD's default grids) the intervals equal R's to the precision of
the optimisers (the tests reproduce the published BC numbers to 1e-6 or better).
``folded_normal="exact"`` uses the exact folded-normal quantile instead (differs from R
by R's simulation error, ~1e-3 of the half-length; the optimal ``h`` sits in a flat
valley, so the FLCI's centre can move by a similar amount). Differences that
remain: (i) LPs are solved by HiGHS, not lpSolve/glpk; where the dual optimum is not
unique (measure zero in the data) the vertex can differ; (ii) degenerate LPs get exact
truncation bounds (Charnes-Cooper LPs) where HonestDiD bisects to 1e-6 and treats
+/-100 as infinite; (iii) optimal LP bases are cached and reused across the grid and the
simulation draws (exact, since dual feasibility does not depend on the data), which
makes the C-LF sets ~100x faster than a per-point LP; (iv) C-F (FLCI hybrid) and the
sign/monotonicity variants (``Delta^SDB``, ``Delta^SDM``, ``Delta^RMB``, ``Delta^RMM``, ``Delta^SDRM``) are not
implemented; (v) with one post period HonestDiD's no-nuisance LF test uses size
``alpha`` (no ``kappa`` adjustment, no cap at the least-favourable value) in its second
stage; this module reproduces that.

Breakdown values (:func:`breakdown_value_rm`, :func:`breakdown_value_sd`): the smallest
``Mbar`` (``M``) whose robust confidence set contains 0, found by bisection on the
acceptance of ``theta = 0`` (the set grows with ``Mbar``); RR2023 sec. 6.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import ndtr, ndtri

__all__ = [
    "rm_accept",
    "FLCIResult",
    "GridCS",
    "basis_vector",
    "breakdown_value_rm",
    "breakdown_value_sd",
    "conditional_cs_rm",
    "conditional_cs_sd",
    "create_a_rm",
    "create_a_sd",
    "flci_sd",
    "identified_set_rm",
    "identified_set_sd",
    "original_ci",
    "r_rmvnorm",
    "r_rnorm",
    "sd_upper_bound_m_pre",
    "sensitivity_rm",
    "sensitivity_sd",
]

Hybrid = Literal["LF", "ARP"]
FoldedNormal = Literal["r_simulation", "exact"]

#: lambda above this counts as a binding moment (HonestDiD ``tol_lambda``).
_TOL_LAMBDA = 1e-6
#: Least-favourable simulation draws (HonestDiD ``.compute_least_favorable_cv``).
LF_SIMS = 1000
#: Folded-normal simulation draws (HonestDiD ``.qfoldednormal``).
FOLDED_SIMS = 10**6


# =========================================================================== inputs
def basis_vector(index: int, size: int) -> np.ndarray:
    """Unit vector ``e_index`` of length ``size`` (1-based ``index``, as HonestDiD)."""
    v = np.zeros(size)
    v[index - 1] = 1.0
    return v


def _inputs(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(beta, sigma, l)``; ``l`` defaults to the first post period."""
    beta = np.asarray(betahat, dtype=float).ravel()
    sig = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise ValueError("need at least one pre and one post period")
    if beta.size != num_pre + num_post:
        raise ValueError(f"betahat has {beta.size} entries, expected num_pre + num_post")
    if sig.shape != (beta.size, beta.size):
        raise ValueError("sigma must be a square matrix conformable with betahat")
    if not np.allclose(sig, sig.T, rtol=1e-8, atol=1e-14 * max(1.0, np.abs(sig).max())):
        raise ValueError("sigma must be symmetric")
    sig = (sig + sig.T) / 2
    lv = basis_vector(1, num_post) if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if lv.size != num_post:
        raise ValueError("l_vec must have num_post entries")
    return beta, sig, lv


# =========================================================================== R's RNG
def _r_uniforms(n: int, seed: int) -> np.ndarray:
    """``n`` draws of R's ``unif_rand()`` after ``set.seed(seed)`` (Mersenne-Twister).

    R's ``RNG_Init``: ``s <- seed``; 50 times ``s <- 69069 s + 1 (mod 2^32)``; then 625
    more steps fill the seed vector whose first entry is the position (reset to 624)
    and the rest the MT19937 state; outputs are ``genrand_int32 * 2^-32``.
    """
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    key = np.empty(625, dtype=np.uint64)
    for j in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        key[j] = s
    bitgen = np.random.MT19937()
    bitgen.state = {
        "bit_generator": "MT19937",
        "state": {"key": key[1:].astype(np.uint32), "pos": 624},
    }
    u = bitgen.random_raw(n).astype(np.float64) * 2.3283064365386963e-10
    # R's fixup(): keep draws inside (0, 1)
    u[u <= 0.0] = 0.5 * 2.328306437080797e-10
    u[u >= 1.0] = 1.0 - 0.5 * 2.328306437080797e-10
    return u


def r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (default kinds: Mersenne-Twister, Inversion).

    Each normal uses two uniforms: ``u = floor(2^27 u1) + u2``, ``z = Phi^-1(u / 2^27)``
    (R ``norm_rand``, ``INVERSION``).
    """
    raw = _r_uniforms(2 * n, seed)
    big = 134217728.0
    return ndtri((np.floor(big * raw[0::2]) + raw[1::2]) / big)


def r_rmvnorm(n: int, sigma: np.ndarray, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (``method = "eigen"``).

    ``Z R`` with ``Z`` the ``n x p`` matrix of ``rnorm(n p)`` filled by rows and
    ``R = V diag(sqrt(max(lambda, 0))) V'`` the symmetric square root of ``sigma``.
    """
    sig = np.asarray(sigma, dtype=float)
    p = sig.shape[0]
    lam, vec = np.linalg.eigh((sig + sig.T) / 2)
    root = (vec * np.sqrt(np.maximum(lam, 0.0))) @ vec.T
    return r_rnorm(n * p, seed).reshape(n, p) @ root


# =========================================================================== original CI
def original_ci(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Conventional CI under parallel trends: ``l'b_post +/- z_{1-alpha/2} sd``."""
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    post = slice(num_pre, num_pre + num_post)
    est = float(lv @ beta[post])
    se = float(np.sqrt(lv @ sig[post, post] @ lv))
    z = stats.norm.ppf(1 - alpha / 2)
    return est - z * se, est + z * se


# =========================================================================== restriction sets
def create_a_rm(
    num_pre: int,
    num_post: int,
    mbar: float,
    s: int,
    max_positive: bool = True,
    drop_zero: bool = True,
) -> np.ndarray:
    """Rows of ``A`` with ``A delta <= 0`` iff ``delta in Delta^RM_{s,sign}(Mbar)``.

    ``Delta^RM_{s,+}``: the largest pre-period difference is ``delta_s - delta_{s-1} >= 0``
    (``s = -(num_pre-1)..0``), so ``|delta_{r+1} - delta_r| <= delta_s - delta_{s-1}`` for
    pre differences and ``<= Mbar (delta_s - delta_{s-1})`` for post ones (``-``: the
    sign flipped). Columns: ``delta_{-num_pre}..delta_{num_post}`` without ``delta_0``
    (``drop_zero``). As HonestDiD ``.create_A_RM`` (all-zero rows removed).
    """
    n = num_pre + num_post
    atilde = np.zeros((n, n + 1))
    idx = np.arange(n)
    atilde[idx, idx] = -1.0
    atilde[idx, idx + 1] = 1.0
    v = np.zeros(n + 1)
    v[num_pre + s - 1] = -1.0
    v[num_pre + s] = 1.0
    if not max_positive:
        v = -v
    a_ub = np.vstack([np.tile(v, (num_pre, 1)), np.tile(mbar * v, (num_post, 1))])
    a = np.vstack([atilde - a_ub, -atilde - a_ub])
    a = a[(a**2).sum(axis=1) > 1e-10]
    if drop_zero:
        a = np.delete(a, num_pre, axis=1)
    return a


def create_a_sd(num_pre: int, num_post: int, post_moments_only: bool = False) -> np.ndarray:
    """``A`` with ``A delta <= M`` iff ``delta in Delta^SD(M)`` (HonestDiD ``.create_A_SD``).

    Rows ``+/-(delta_{t+1} - 2 delta_t + delta_{t-1})`` for every interior period of
    ``-num_pre..num_post`` (with ``delta_0 = 0`` dropped from the columns).
    """
    n = num_pre + num_post
    atilde = np.zeros((n - 1, n + 1))
    idx = np.arange(n - 1)
    atilde[idx, idx] = 1.0
    atilde[idx, idx + 1] = -2.0
    atilde[idx, idx + 2] = 1.0
    atilde = np.delete(atilde, num_pre, axis=1)
    if post_moments_only:
        atilde = atilde[(atilde[:, num_pre:] != 0).any(axis=1)]
    return np.vstack([atilde, -atilde])


def _post_rows(a: np.ndarray, num_pre: int) -> np.ndarray:
    """Indices of the rows of ``a`` that involve a post period (``postPeriodMomentsOnly``)."""
    return np.flatnonzero((a[:, num_pre:] != 0).any(axis=1))


# =========================================================================== identified sets
def _idset_lp(
    a: np.ndarray, d: np.ndarray, beta: np.ndarray, num_pre: int, lv: np.ndarray
) -> tuple[float, float] | None:
    """``[l'b_post - max l'delta_post, l'b_post - min l'delta_post]`` over
    ``{A delta <= d, delta_pre = b_pre}``; ``None`` if infeasible."""
    n = a.shape[1]
    obj = np.concatenate([np.zeros(num_pre), lv])
    a_eq = np.hstack([np.eye(num_pre), np.zeros((num_pre, n - num_pre))])
    kw = dict(A_ub=a, b_ub=d, A_eq=a_eq, b_eq=beta[:num_pre], bounds=[(None, None)] * n, method="highs")
    lo = optimize.linprog(obj, **kw)
    hi = optimize.linprog(-obj, **kw)
    if lo.status != 0 or hi.status != 0:
        return None
    est = float(lv @ beta[num_pre:])
    return est + hi.fun, est - lo.fun


def identified_set_rm(
    beta: Sequence[float] | np.ndarray,
    num_pre: int,
    num_post: int,
    mbar: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Identified set of ``theta`` under ``Delta^RM(Mbar)`` for population ``beta``.

    Union over ``s`` and sign of the LP bounds (HonestDiD ``.compute_IDset_DeltaRM``;
    infeasible ``(s, sign)`` pieces, where ``s`` is not the largest pre difference, are
    empty and skipped).
    """
    b, _, lv = _inputs(beta, np.eye(num_pre + num_post), num_pre, num_post, l_vec)
    pieces = []
    for s in range(-(num_pre - 1), 1):
        for pos in (True, False):
            a = create_a_rm(num_pre, num_post, mbar, s, pos)
            r = _idset_lp(a, np.zeros(a.shape[0]), b, num_pre, lv)
            if r is not None:
                pieces.append(r)
    if not pieces:
        est = float(lv @ b[num_pre:])
        return est, est
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


def identified_set_sd(
    beta: Sequence[float] | np.ndarray,
    num_pre: int,
    num_post: int,
    m: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Identified set of ``theta`` under ``Delta^SD(M)`` (HonestDiD ``.compute_IDset_DeltaSD``).

    NaN bounds when ``beta_pre`` itself violates ``Delta^SD(M)`` (empty set).
    """
    b, _, lv = _inputs(beta, np.eye(num_pre + num_post), num_pre, num_post, l_vec)
    a = create_a_sd(num_pre, num_post)
    r = _idset_lp(a, np.full(a.shape[0], float(m)), b, num_pre, lv)
    return (np.nan, np.nan) if r is None else r


# =========================================================================== truncated normal
def _truncnorm_ppf(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of ``N(0,1)`` truncated to ``[lo, hi]`` (TruncatedNormal ``norminvp``)."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    out = np.full(np.broadcast(lo, hi).shape, np.nan)
    ok = hi > lo
    if ok.any():
        out[ok] = stats.truncnorm.ppf(p, np.broadcast_to(lo, out.shape)[ok], np.broadcast_to(hi, out.shape)[ok])
    return out


# =========================================================================== ARP: no nuisance
def _lf_cv_no_nuisance(sigma_y: np.ndarray, kappa: float, seed: int, sims: int = LF_SIMS) -> float:
    """``1-kappa`` quantile of ``max_j xi_j / sd_j``, ``xi ~ N(0, Sigma_Y)`` (R draws)."""
    xi = r_rmvnorm(sims, sigma_y, seed) / np.sqrt(np.diag(sigma_y))
    return float(np.quantile(xi.max(axis=1), 1 - kappa))


def _arp_no_nuisance_accept(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    theta: np.ndarray,
    alpha: float,
    lf_cv: float | None,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ARP test without nuisance parameters (one post period).

    HonestDiD ``.testInIdentifiedSet`` / ``.testInIdentifiedSet_LF_Hybrid``: with
    ``y = beta - e_{post} theta``, normalised moments ``m = (A y - d) / sd``; at the
    largest ``m_j``, ``gamma = A_j / sd_j``, the conditioning set is
    ``{Abar z + Abar c t <= dbar}`` with ``c = Sigma gamma / gamma'Sigma gamma``,
    ``z = (I - c gamma') y``, giving ``[V_lo, V_up]`` for ``t = gamma'y``; reject when
    ``m_j + d_j/sd_j`` exceeds the ``1-alpha`` quantile of ``N(d_j/sd_j, gamma'Sigma gamma)``
    truncated to ``[V_lo, V_up]``. LF hybrid (``lf_cv`` given): reject outright when
    ``m_j > lf_cv``; the second stage keeps size ``alpha`` as HonestDiD does.
    """
    sd_t = np.sqrt(np.diag(a @ sigma @ a.T))
    at = a / sd_t[:, None]
    dt = d / sd_t
    e = np.zeros(beta.size)
    e[num_pre] = 1.0
    y = beta[None, :] - theta[:, None] * e[None, :]  # G x n
    moments = y @ at.T - dt[None, :]  # G x k
    jmax = np.argmax(moments, axis=1)
    mmax = moments[np.arange(theta.size), jmax]
    accept = np.ones(theta.size, dtype=bool)
    for j in np.unique(jmax):
        rows = np.flatnonzero(jmax == j)
        gamma = at[j]
        abar = at - at[j][None, :]
        dbar = dt - dt[j]
        s2 = float(gamma @ sigma @ gamma)
        c = sigma @ gamma / s2
        ac = abar @ c
        yy = y[rows]
        z = yy - (yy @ gamma)[:, None] * c[None, :]
        obj = (dbar[None, :] - z @ abar.T) / np.where(ac == 0, np.nan, ac)[None, :]
        vlo = np.max(np.where(ac < 0, obj, -np.inf), axis=1)
        vup = np.min(np.where(ac > 0, obj, np.inf), axis=1)
        sd_b = np.sqrt(s2)
        crit = dt[j] + sd_b * _truncnorm_ppf(1 - alpha, (vlo - dt[j]) / sd_b, (vup - dt[j]) / sd_b)
        rej = mmax[rows] + dt[j] > crit
        if lf_cv is not None:
            rej |= mmax[rows] > lf_cv
        accept[rows] = ~rej
    return accept


# =========================================================================== ARP: nuisance
class _EtaProgram:
    """``eta(y) = min_{eta, gamma} eta  s.t.  y - X gamma <= eta sd`` for many ``y``.

    Solved with HiGHS; the dual is ``max lambda'y`` over ``P = {lambda >= 0 : W'lambda =
    e_1}``, ``W = [sd, X]``. An optimal basis ``B`` (``m = dim(gamma) + 1`` linearly
    independent binding rows, ``lambda_B = W_B^{-T} e_1 >= 0``) stays optimal for every
    ``y`` whose basic solution ``W_B^{-1} y_B`` is primal feasible (dual feasibility does
    not depend on ``y``), so such ``y`` are solved exactly without an LP. Degenerate
    optima (fewer than ``m`` positive ``lambda``) are cached the same way, their basis
    completed with other binding rows.
    """

    def __init__(self, x: np.ndarray, sd: np.ndarray) -> None:
        self.w = np.column_stack([sd, x])
        self.k, self.m = self.w.shape
        #: (basis rows, W_B^{-1}, lambda over all rows)
        self.bases: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _lp(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        c = np.zeros(self.m)
        c[0] = 1.0
        res = optimize.linprog(
            c, A_ub=-self.w, b_ub=-y, bounds=[(None, None)] * self.m, method="highs"
        )
        if res.status != 0:
            return None
        return res.x, -np.asarray(res.ineqlin.marginals, dtype=float)

    def _basis(self, x: np.ndarray, lam: np.ndarray, y: np.ndarray) -> int | None:
        """Cache an optimal basis: the support of ``lambda`` completed with binding rows."""
        slack = self.w @ x - y
        tol = 1e-9 * max(1.0, float(np.abs(y).max()))
        support = np.flatnonzero(lam > _TOL_LAMBDA)
        order = list(support) + [i for i in np.argsort(np.abs(slack)) if i not in set(support)]
        chosen: list[int] = []
        for i in order:
            if i not in support and abs(slack[i]) > tol:
                break
            if np.linalg.matrix_rank(self.w[[*chosen, i]]) == len(chosen) + 1:
                chosen.append(int(i))
            if len(chosen) == self.m:
                break
        if len(chosen) < self.m or not set(support) <= set(chosen):
            return None
        rows = np.array(sorted(chosen))
        winv = np.linalg.inv(self.w[rows])
        lam_b = np.zeros(self.k)
        lam_b[rows] = winv[0]  # W_B^{-T} e_1
        if (lam_b < -1e-9 * np.abs(lam_b).max()).any():
            return None
        lam_b[lam_b < 0] = 0.0
        self.bases.append((rows, winv, lam_b))
        return len(self.bases) - 1

    def _fits(self, basis: int, y: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        rows, winv, _ = self.bases[basis]
        x = y[:, rows] @ winv.T
        slack = x @ self.w.T - y
        return (slack >= -tol).all(axis=1), x

    def solve(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """``eta`` for every row of ``y``, the basis id of each row (-1: solved by an LP
        whose basis could not be cached, its dual in the returned dict; -2: LP failed)."""
        n = y.shape[0]
        eta = np.full(n, np.nan)
        which = np.full(n, -2, dtype=np.int64)
        duals: dict[int, np.ndarray] = {}
        tol = 1e-10 * max(1.0, float(np.abs(y).max()) if y.size else 1.0)
        todo = np.ones(n, dtype=bool)

        def assign(b: int) -> None:
            idx = np.flatnonzero(todo)
            if idx.size:
                ok, x = self._fits(b, y[idx], tol)
                eta[idx[ok]] = x[ok, 0]
                which[idx[ok]] = b
                todo[idx[ok]] = False

        for b in range(len(self.bases)):
            assign(b)
        while todo.any():
            j = int(np.flatnonzero(todo)[0])
            todo[j] = False
            out = self._lp(y[j])
            if out is None:
                continue
            x, lam = out
            eta[j] = x[0]
            b = self._basis(x, lam, y[j])
            if b is None:
                which[j] = -1
                duals[j] = lam
            else:
                which[j] = b
                assign(b)
        return eta, which, duals

    def dual(self, which: int, duals: dict[int, np.ndarray], j: int) -> np.ndarray:
        """The optimal dual vertex ``lambda`` used for row ``j``."""
        return self.bases[which][2] if which >= 0 else duals[j]


def _lf_cv_nuisance(
    x: np.ndarray, sigma_y: np.ndarray, kappa: float, seed: int, sims: int = LF_SIMS
) -> float:
    """Least-favourable critical value (ARP2023 sec. 5.3; HonestDiD
    ``.compute_least_favorable_cv``): the ``1-kappa`` quantile of ``eta(xi)``,
    ``xi ~ N(0, Sigma_Y)`` (R draws), LP failures dropped."""
    xi = r_rmvnorm(sims, sigma_y, seed)
    eta, _, _ = _EtaProgram(x, np.sqrt(np.diag(sigma_y))).solve(xi)
    return float(np.quantile(eta[np.isfinite(eta)], 1 - kappa))


class _ObjectiveFamily:
    """``max c'z  s.t.  A z = r, z >= 0`` for many objectives ``c`` (fixed feasible set).

    An optimal basis ``B`` (``A_B`` invertible, ``z_B = A_B^{-1} r >= 0``) stays optimal
    for every ``c`` with non-positive reduced costs ``c - A'A_B^{-T} c_B``; such ``c`` are
    solved without an LP. Returns ``-inf`` when the set is empty, ``+inf`` when unbounded.
    """

    def __init__(self, a: np.ndarray, r: np.ndarray) -> None:
        self.a = a
        self.r = r
        self.bases: list[tuple[np.ndarray, np.ndarray, float]] = []  # (cols, A_B^-1, unused)
        self.empty = False

    def _cache(self, z: np.ndarray, c: np.ndarray) -> None:
        m, n = self.a.shape
        support = np.flatnonzero(z > 1e-12 * max(1.0, float(np.abs(z).max())))
        chosen = list(support)
        if np.linalg.matrix_rank(self.a[:, chosen]) < len(chosen):
            return
        for i in np.argsort(-c):
            if len(chosen) == m:
                break
            if i in support:
                continue
            if np.linalg.matrix_rank(self.a[:, [*chosen, i]]) == len(chosen) + 1:
                chosen.append(int(i))
        if len(chosen) < m:
            return
        cols = np.array(chosen)
        ainv = np.linalg.inv(self.a[:, cols])
        if self._optimal(cols, ainv, c[None, :])[0]:
            self.bases.append((cols, ainv, 0.0))

    def _optimal(self, cols: np.ndarray, ainv: np.ndarray, c: np.ndarray) -> np.ndarray:
        reduced = c - (c[:, cols] @ ainv) @ self.a
        tol = 1e-9 * np.maximum(1.0, np.abs(c).max(axis=1))
        return (reduced <= tol[:, None]).all(axis=1)

    def solve(self, c: np.ndarray) -> np.ndarray:
        n = c.shape[0]
        out = np.full(n, np.nan)
        if self.empty:
            return np.full(n, -np.inf)
        todo = np.ones(n, dtype=bool)

        def assign(b: int) -> None:
            cols, ainv, _ = self.bases[b]
            idx = np.flatnonzero(todo)
            if idx.size:
                ok = self._optimal(cols, ainv, c[idx])
                zb = ainv @ self.r
                out[idx[ok]] = c[idx[ok]][:, cols] @ zb
                todo[idx[ok]] = False

        for b in range(len(self.bases)):
            assign(b)
        while todo.any():
            j = int(np.flatnonzero(todo)[0])
            todo[j] = False
            res = optimize.linprog(
                -c[j], A_eq=self.a, b_eq=self.r, bounds=[(0, None)] * self.a.shape[1], method="highs"
            )
            if res.status == 2:
                self.empty = True
                out[:] = -np.inf
                return out
            if res.status != 0:
                out[j] = np.inf
                continue
            out[j] = -res.fun
            n_before = len(self.bases)
            self._cache(res.x, c[j])
            if len(self.bases) > n_before:
                assign(len(self.bases) - 1)
        return out


class _DualBounds:
    """Truncation bounds ``[v_lo, v_up]`` of ``gamma'y`` given the optimal dual vertex
    ``gamma`` (ARP2023 App. D), for many ``y``.

    With ``b = Sigma gamma / gamma'Sigma gamma`` and ``s = y - b gamma'y``, ``gamma``
    remains optimal at ``y(c) = s + b c`` iff ``c (1 - v'b) >= v's`` for every vertex
    ``v`` of the dual polytope ``P = {v >= 0 : W'v = e_1}``; so
    ``v_lo = max_{v'b<1} v's / (1 - v'b)`` and ``v_up = min_{v'b>1} v's / (1 - v'b)``.
    Each is a linear-fractional program over ``P``, solved exactly as an LP by the
    Charnes-Cooper substitution ``mu = t v``, ``t = 1 / |1 - v'b|``; an empty program
    means no truncation on that side (HonestDiD ``.vlo_vup_dual_fn`` approximates the
    same bounds by bisection to 1e-6, with +/-100 standing for +/-inf).
    """

    def __init__(self, gamma: np.ndarray, sigma: np.ndarray, w: np.ndarray) -> None:
        self.gamma = gamma
        self.s2 = float(gamma @ sigma @ gamma)
        self.b = sigma @ gamma / self.s2
        k, m = w.shape
        fams = []
        for sign in (1.0, -1.0):  # t - b'mu = 1 (v_lo) or b'mu - t = 1 (v_up)
            a = np.zeros((m + 1, k + 1))
            a[:m, :k] = w.T
            a[0, k] = -1.0  # W'mu - e_1 t = 0
            a[m, :k] = -sign * self.b
            a[m, k] = sign
            r = np.zeros(m + 1)
            r[m] = 1.0
            fams.append(_ObjectiveFamily(a, r))
        self.lo, self.up = fams

    def bounds(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = y - (y @ self.gamma)[:, None] * self.b[None, :]
        c = np.column_stack([s, np.zeros(s.shape[0])])
        return self.lo.solve(c), -self.up.solve(c)


def _arp_nuisance_accept(
    y_full: np.ndarray,
    a1: np.ndarray,
    x_full: np.ndarray,
    sigma_y_full: np.ndarray,
    rows: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    kappa: float,
    seed: int,
) -> np.ndarray:
    """Acceptance over ``theta`` of the ARP (``"ARP"``) or C-LF (``"LF"``) test of
    ``E[Y - a1 theta - X gamma] <= 0`` on the moments ``rows`` (HonestDiD
    ``.ARP_computeCI`` / ``.lp_conditional_test_fn``).

    ``eta <= 0`` is never rejected and, for C-LF, ``eta > c_LF`` always is; the others
    are tested conditionally. Primal path (``m`` positive duals ``B``, ``X_B`` of full
    rank): ``v_B' = e_1' W_B^{-1} S_B``, ``sigma_B^2 = v_B' Sigma v_B``,
    ``Gamma_B = W_Bc W_B^{-1} S_B - S_Bc``, ``rho = Gamma_B Sigma v_B / sigma_B^2``,
    ``v_lo = max_{rho>0} (v_B'y - (Gamma_B y) / rho)``, ``v_up = min_{rho<0}`` of the
    same. Otherwise (degenerate LP) the dual-vertex bounds of :func:`_vlo_vup_dual`.
    Statistic ``eta / sigma_B``; critical value ``max(0, q_{1-size})`` of ``N(0,1)``
    truncated to ``[v_lo, v_up] / sigma_B``, ``v_up`` capped at ``c_LF`` for C-LF and
    ``size = (alpha - kappa)/(1 - kappa)`` (C-LF) or ``alpha`` (ARP); a statistic outside
    the truncation interval is not rejected (as HonestDiD).
    """
    y = y_full[rows][None, :] - theta[:, None] * a1[rows][None, :]
    x = x_full[rows]
    sig = sigma_y_full[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(sig))
    lf_cv = np.inf
    if hybrid == "LF":
        lf_cv = _lf_cv_nuisance(x, sig, kappa, seed)
        size = (alpha - kappa) / (1 - kappa)
    else:
        size = alpha
    prog = _EtaProgram(x, sd)
    eta, which, duals = prog.solve(y)
    accept = np.ones(theta.size, dtype=bool)  # LP failure or eta <= 0: not rejected
    accept[np.isfinite(eta) & (eta > lf_cv)] = False
    todo = np.isfinite(eta) & (eta > 0) & (eta <= lf_cv)
    kk = prog.k
    for b_id in np.unique(which[todo & (which >= 0)]):
        idx = np.flatnonzero(todo & (which == b_id))
        lam = prog.bases[b_id][2]
        pos = lam > _TOL_LAMBDA
        if pos.sum() != prog.m or np.linalg.matrix_rank(x[pos]) != prog.m - 1:
            continue  # degenerate: dual path below
        todo[idx] = False
        winv = np.linalg.inv(prog.w[pos])
        s_b = np.eye(kk)[pos]
        s_bc = np.eye(kk)[~pos]
        v_b = winv[0] @ s_b
        gamma_b = prog.w[~pos] @ winv @ s_b - s_bc
        s2 = float(v_b @ sig @ v_b)
        sigma_b = np.sqrt(s2)
        rho = gamma_b @ sig @ v_b / s2
        yy = y[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            mm = -(yy @ gamma_b.T) / rho[None, :] + (yy @ v_b)[:, None]
        vlo = np.max(np.where(rho[None, :] > 0, mm, -np.inf), axis=1, initial=-np.inf)
        vup = np.min(np.where(rho[None, :] < 0, mm, np.inf), axis=1, initial=np.inf)
        zlo = vlo / sigma_b
        zup = np.minimum(vup, lf_cv) / sigma_b
        stat = eta[idx] / sigma_b
        inside = (zlo <= stat) & (stat <= zup)
        cval = np.maximum(0.0, _truncnorm_ppf(1 - size, zlo, zup))
        accept[idx] = ~(inside & (stat > cval))
    groups: dict[int, list[int]] = {}
    for j in np.flatnonzero(todo):
        groups.setdefault(int(which[j]) if which[j] >= 0 else -1 - int(j), []).append(int(j))
    for key, members in groups.items():
        idx = np.array(members)
        lam = prog.dual(int(which[idx[0]]), duals, int(idx[0]))
        s2 = float(lam @ sig @ lam)
        if abs(s2) < np.finfo(float).eps:
            accept[idx] = ~(eta[idx] > 0)
            continue
        vlo, vup = _DualBounds(lam, sig, prog.w).bounds(y[idx])
        sigma_b = np.sqrt(s2)
        stat = eta[idx] / sigma_b
        zlo = vlo / sigma_b
        zup = np.minimum(vup, lf_cv) / sigma_b
        inside = (zlo <= stat) & (stat <= zup)
        cval = np.maximum(0.0, _truncnorm_ppf(1 - size, zlo, zup))
        accept[idx] = ~(inside & (stat > cval))
    return accept


def _construct_gamma(lv: np.ndarray) -> np.ndarray:
    """Invertible ``Gamma`` with first row ``l'``: ``l`` then the unit vectors that the
    reduced row echelon form of ``[l, I]`` picks as pivots (HonestDiD ``.construct_Gamma``)."""
    n = lv.size
    rows = [lv]
    for i in range(n):
        cand = np.vstack([*rows, np.eye(n)[i]])
        if np.linalg.matrix_rank(cand) == len(rows) + 1:
            rows.append(np.eye(n)[i])
        if len(rows) == n:
            break
    return np.vstack(rows)


def _arp_ci_nuisance(
    beta: np.ndarray,
    sigma: np.ndarray,
    a: np.ndarray,
    d: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    kappa: float,
    rows: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Set up ``Y = A b - d``, ``[a1, X] = A_post Gamma^{-1}`` and test every ``theta``."""
    gamma = _construct_gamma(lv)
    ag = a[:, num_pre:] @ np.linalg.inv(gamma)
    y = a @ beta - d
    sigma_y = a @ sigma @ a.T
    return _arp_nuisance_accept(y, ag[:, 0], ag[:, 1:], sigma_y, rows, theta, alpha, hybrid, kappa, seed)


# =========================================================================== grid CS
@dataclass(frozen=True)
class GridCS:
    """A confidence set from test inversion on a grid of ``theta`` values.

    ``lb``/``ub`` are the smallest and largest accepted grid points (HonestDiD reports
    these); NaN when nothing is accepted. ``open_lower``/``open_upper``: an end point of
    the grid was accepted, so the set may extend beyond the grid.
    """

    grid: np.ndarray
    accept: np.ndarray

    @property
    def lb(self) -> float:
        return float(self.grid[self.accept].min()) if self.accept.any() else np.nan

    @property
    def ub(self) -> float:
        return float(self.grid[self.accept].max()) if self.accept.any() else np.nan

    @property
    def open_lower(self) -> bool:
        return bool(self.accept[0])

    @property
    def open_upper(self) -> bool:
        return bool(self.accept[-1])


def _sd_theta(sigma: np.ndarray, num_pre: int, lv: np.ndarray) -> float:
    post = slice(num_pre, num_pre + lv.size)
    return float(np.sqrt(lv @ sigma[post, post] @ lv))


def rm_accept(
    beta: np.ndarray,
    sig: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    mbar: float,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    seed: int,
) -> np.ndarray:
    """Union over ``s`` and sign of the ``Delta^RM_{s,+/-}(Mbar)`` acceptance regions."""
    kappa = alpha / 10
    accept = np.zeros(theta.size, dtype=bool)
    for s in range(-(num_pre - 1), 1):
        for pos in (True, False):
            a = create_a_rm(num_pre, num_post, mbar, s, pos)
            d = np.zeros(a.shape[0])
            if num_post == 1:
                keep = np.flatnonzero(a[:, -1] != 0)
                a, d = a[keep], d[keep]
                lf = _lf_cv_no_nuisance(a @ sig @ a.T, kappa, seed) if hybrid == "LF" else None
                acc = _arp_no_nuisance_accept(beta, sig, a, d, num_pre, theta, alpha, lf)
            else:
                rows = _post_rows(a, num_pre)
                acc = _arp_ci_nuisance(beta, sig, a, d, num_pre, num_post, lv, theta, alpha, hybrid, kappa, rows, seed)
            accept |= acc
    return accept


def conditional_cs_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    mbar: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    hybrid: Hybrid = "LF",
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    seed: int = 0,
) -> GridCS:
    """Confidence set for ``theta`` under ``Delta^RM(Mbar)`` (HonestDiD
    ``computeConditionalCS_DeltaRM``; ``hybrid="LF"`` is C-LF, ``"ARP"`` Conditional).

    Default grid: ``grid_points`` values on ``[-20 sd_theta, 20 sd_theta]`` (HonestDiD),
    ``sd_theta = sqrt(l' Sigma_post l)``; pass ``grid_lb``/``grid_ub`` when the effect is
    more than ~20 standard errors from 0. Post-period moments only (HonestDiD's default).
    """
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    sd = _sd_theta(sig, num_pre, lv)
    lo = -20 * sd if grid_lb is None else grid_lb
    hi = 20 * sd if grid_ub is None else grid_ub
    grid = np.linspace(lo, hi, grid_points)
    return GridCS(grid, rm_accept(beta, sig, num_pre, num_post, lv, mbar, grid, alpha, hybrid, seed))


def _sd_accept(
    beta: np.ndarray,
    sig: np.ndarray,
    num_pre: int,
    num_post: int,
    lv: np.ndarray,
    m: float,
    theta: np.ndarray,
    alpha: float,
    hybrid: Hybrid,
    seed: int,
) -> np.ndarray:
    a = create_a_sd(num_pre, num_post)
    d = np.full(a.shape[0], float(m))
    kappa = alpha / 10
    if num_post == 1:
        lf = _lf_cv_no_nuisance(a @ sig @ a.T, kappa, seed) if hybrid == "LF" else None
        return _arp_no_nuisance_accept(beta, sig, a, d, num_pre, theta, alpha, lf)
    rows = _post_rows(a, num_pre)
    return _arp_ci_nuisance(beta, sig, a, d, num_pre, num_post, lv, theta, alpha, hybrid, kappa, rows, seed)


def conditional_cs_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    m: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    hybrid: Hybrid = "LF",
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    seed: int = 0,
) -> GridCS:
    """Confidence set for ``theta`` under ``Delta^SD(M)`` (HonestDiD
    ``computeConditionalCS_DeltaSD`` with ``hybrid_flag`` ``"LF"`` or ``"ARP"``).

    Default grid: the identified set at ``beta = 0`` widened by ``20 sd_theta`` on each
    side (HonestDiD).
    """
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    if grid_lb is None or grid_ub is None:
        id_lo, id_hi = identified_set_sd(np.zeros(beta.size), num_pre, num_post, m, lv)
        sd = _sd_theta(sig, num_pre, lv)
        grid_lb = id_lo - 20 * sd if grid_lb is None else grid_lb
        grid_ub = id_hi + 20 * sd if grid_ub is None else grid_ub
    grid = np.linspace(grid_lb, grid_ub, grid_points)
    return GridCS(grid, _sd_accept(beta, sig, num_pre, num_post, lv, m, grid, alpha, hybrid, seed))


# =========================================================================== FLCI
@dataclass(frozen=True)
class FLCIResult:
    """Fixed-length CI ``center +/- half_length`` under ``Delta^SD(M)``.

    ``weights`` is HonestDiD's ``optimalVec`` (pre-period weights then ``l``), so
    ``center = weights' beta_hat``; ``h`` the estimator's standard deviation bound and
    ``max_bias`` its worst-case bias (``M`` times the unit-``M`` bias).
    """

    lb: float
    ub: float
    center: float
    half_length: float
    weights: np.ndarray
    h: float
    max_bias: float


@functools.lru_cache(maxsize=4)
def _folded_draws(seed: int) -> np.ndarray:
    """R's ``set.seed(seed); rnorm(10^6)`` (cached, read-only)."""
    z = r_rnorm(FOLDED_SIMS, seed)
    z.flags.writeable = False
    return z


class _FoldedNormalCV:
    """``cv_alpha(t)``: the ``p = 1-alpha`` quantile of ``|N(t, 1)|``.

    ``"exact"``: root of ``Phi(q - t) - Phi(-q - t) = p``. ``"r_simulation"``: HonestDiD's
    ``.qfoldednormal``, the type-7 quantile of ``|z + t|`` over R's ``rnorm(10^6)`` after
    ``set.seed(seed)``.
    """

    def __init__(self, p: float, method: FoldedNormal, seed: int) -> None:
        self.p = p
        self.method = method
        self.draws = _folded_draws(seed) if method == "r_simulation" else None

    def __call__(self, t: float) -> float:
        t = abs(float(t))
        if self.draws is not None:
            return float(np.quantile(np.abs(self.draws + t), self.p))
        if t == 0:
            return float(stats.norm.ppf((1 + self.p) / 2))
        f = lambda q: ndtr(q - t) - ndtr(-q - t) - self.p  # noqa: E731  (stats.norm.cdf is ndtr, 20x slower per call)
        return float(optimize.brentq(f, t, t + 10.0, xtol=1e-14, rtol=1e-15))


class _FLCIProblem:
    """Worst-case bias and variance of HonestDiD's affine estimators (``flci.R``).

    Pre-period weights ``l_pre = D w`` (``D``: first differences) with cumulative sums
    ``u = L w`` and ``u_T = sum w = c = sum_s s l_s``; variance
    ``l_pre' S_pre l_pre + 2 l_pre' S_pre,post l + l' S_post l``; unit-``M`` bias
    ``const + sum_k |u_k|``. Optimisation over ``v = u_{1..T-1}`` (``u_T = c`` fixed).
    """

    def __init__(self, sigma: np.ndarray, num_pre: int, num_post: int, lv: np.ndarray) -> None:
        n = num_pre
        self.n = n
        pre = slice(0, n)
        post = slice(n, n + num_post)
        dmat = np.eye(n) - np.eye(n, k=-1)  # w -> l_pre
        self.dmat = dmat
        s_pre = sigma[pre, pre]
        self.q = dmat.T @ s_pre @ dmat
        self.g = 2 * dmat.T @ sigma[pre, post] @ lv
        self.r = float(lv @ sigma[post, post] @ lv)
        self.c = float(np.arange(1, num_post + 1) @ lv)
        t = num_post
        self.const = float(
            sum(abs(np.arange(1, s + 1) @ lv[t - s:]) for s in range(1, t + 1)) - self.c
        )
        # w = D u, u = (v, c): w = Dv v + dc c
        self.dv = dmat[:, : n - 1]
        self.dc = dmat[:, n - 1] * self.c
        # variance as quadratic in v: v'Qv v + gv'v + rv
        self.qv = self.dv.T @ self.q @ self.dv
        self.gv = 2 * self.dv.T @ self.q @ self.dc + self.dv.T @ self.g
        self.rv = float(self.dc @ self.q @ self.dc + self.g @ self.dc + self.r)

    def var_v(self, v: np.ndarray) -> float:
        return float(v @ self.qv @ v + self.gv @ v + self.rv)

    def w_of_v(self, v: np.ndarray) -> np.ndarray:
        return self.dv @ v + self.dc

    def bias_v(self, v: np.ndarray) -> float:
        return self.const + abs(self.c) + float(np.abs(v).sum())

    def h_min(self) -> tuple[float, np.ndarray]:
        """Minimum-variance estimator: ``min v'Qv v + gv'v`` (closed form)."""
        if self.n == 1:
            return np.sqrt(self.rv), np.zeros(0)
        v = np.linalg.lstsq(2 * self.qv, -self.gv, rcond=None)[0]
        return float(np.sqrt(max(self.var_v(v), 0.0))), v

    def h_0(self) -> float:
        """Standard deviation of the minimum-bias estimator ``w = (0, ..., 0, c)``."""
        w = np.zeros(self.n)
        w[-1] = self.c
        lpre = self.dmat @ w
        return float(np.sqrt(w @ self.q @ w + self.g @ w + self.r)) if lpre.size else np.sqrt(self.r)

    def min_bias(self, h: float, v_start: np.ndarray) -> tuple[float, np.ndarray]:
        """``min sum|v|`` s.t. ``var(v) <= h^2`` (SLSQP on ``v = p - m``, ``p, m >= 0``)."""
        k = self.n - 1
        if k == 0:
            return self.bias_v(np.zeros(0)), np.zeros(0)
        h2 = h * h
        scale = max(h2, np.finfo(float).tiny)
        x0 = np.concatenate([np.maximum(v_start, 0), np.maximum(-v_start, 0)])

        def cons(x: np.ndarray) -> float:
            v = x[:k] - x[k:]
            return (h2 - self.var_v(v)) / scale

        def cons_jac(x: np.ndarray) -> np.ndarray:
            v = x[:k] - x[k:]
            gr = -(2 * self.qv @ v + self.gv) / scale
            return np.concatenate([gr, -gr])

        res = optimize.minimize(
            lambda x: x.sum(),
            x0,
            jac=lambda x: np.ones_like(x),
            method="SLSQP",
            bounds=[(0, None)] * (2 * k),
            constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
            options={"ftol": 1e-15, "maxiter": 2000},
        )
        v = res.x[:k] - res.x[k:]
        return self.bias_v(v), v


def flci_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    m: float,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    folded_normal: FoldedNormal = "r_simulation",
    seed: int = 0,
    num_points: int = 100,
) -> FLCIResult:
    """Optimal fixed-length CI for ``theta`` under ``Delta^SD(M)`` (HonestDiD ``findOptimalFLCI``).

    ``h* = argmin_{h in [h_min, h_0]} cv_alpha(M b(h) / h) h`` with ``b(h)`` the smallest
    unit-``M`` worst-case bias of an estimator with standard deviation ``<= h``; found by
    HonestDiD's bisection on numerical derivatives (grid of ``num_points`` if that fails).
    Half-length ``cv_alpha(M b(h*) / h*) h*``.
    """
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    prob = _FLCIProblem(sig, num_pre, num_post, lv)
    cv = _FoldedNormalCV(1 - alpha, folded_normal, seed)
    h_min, v_min = prob.h_min()
    h0 = prob.h_0()
    cache: dict[float, tuple[float, np.ndarray]] = {}

    def bias_at(h: float) -> tuple[float, np.ndarray]:
        if h not in cache:
            start = v_min
            if cache:
                near = min(cache, key=lambda x: abs(x - h))
                start = cache[near][1]
            if h <= h_min * (1 + 1e-14):
                cache[h] = (prob.bias_v(v_min), v_min)
            else:
                cache[h] = prob.min_bias(h, start)
        return cache[h]

    def f(h: float) -> float:
        return cv(m * bias_at(h)[0] / h) * h

    h_star = _derivative_bisection(f, h_min, h0, num_points)
    if h_star is None:
        grid = np.linspace(h_min, h0, num_points)
        vals = np.array([f(h) for h in grid])
        h_star = float(grid[int(np.argmin(vals))])
    bias, v = bias_at(h_star)
    half = cv(m * bias / h_star) * h_star
    w = prob.w_of_v(v) if num_pre > 1 else np.array([prob.c])
    weights = np.concatenate([prob.dmat @ w, lv])
    center = float(weights @ beta)
    return FLCIResult(center - half, center + half, center, half, weights, h_star, m * bias)


def _derivative_bisection(
    f: Callable[[float], float], a: float, b: float, num_points: int
) -> float | None:
    """HonestDiD ``.findOptimalCIDerivativeBisection``: minimise a convex ``f`` on ``[a, b]``
    by bisection on central numerical derivatives; ``None`` when the checks fail."""
    if not b > a:
        return a
    failtol = np.finfo(float).eps ** 0.5
    dif = min((b - a) / num_points, abs(b) * np.finfo(float).eps ** (1 / 3))
    fa, fb = f(a), f(b)
    fpa = (f(a + dif) - fa) / dif
    fpb = (f(b - dif) - fb) / -dif
    maxiter = 10 * int(np.ceil(np.log(abs(b - a) / dif) / np.log(2)))
    if fpa > fpb or np.isnan(fa) or np.isnan(fb):
        return None
    if fpb < 0:
        return b
    if fpa > 0:
        return a
    it = 1
    while abs(b - a) > dif:
        it += 1
        x = (a + b) / 2
        fpx = (f(x + dif) - f(x - dif)) / (2 * dif)
        if fpx > fpb + failtol or fpx + failtol < fpa or it > maxiter:
            return None
        if fpx > 0:
            b = x
        else:
            a = x
    return (a + b) / 2


# =========================================================================== wrappers
def sd_upper_bound_m_pre(
    betahat: Sequence[float] | np.ndarray, sigma: np.ndarray, num_pre: int, alpha: float = 0.05
) -> float:
    """Upper bound for ``M`` from the pre-period (HonestDiD ``DeltaSD_upperBound_Mpre``):
    ``max_j (A b_pre)_j + z_{1-alpha} se_j`` over the pre-period second differences."""
    if num_pre < 2:
        raise ValueError("need at least two pre periods")
    beta = np.asarray(betahat, dtype=float)[:num_pre]
    sig = np.asarray(sigma, dtype=float)[:num_pre, :num_pre]
    a = create_a_sd(num_pre, 0)
    se = np.sqrt(np.diag(a @ sig @ a.T))
    return float(np.max(a @ beta + stats.norm.ppf(1 - alpha) * se))


def sensitivity_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    mbar_vec: Sequence[float] | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["C-LF", "Conditional"] = "C-LF",
    alpha: float = 0.05,
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Robust CIs over ``Mbar`` (HonestDiD ``createSensitivityResults_relativeMagnitudes``,
    bound = deviation from parallel trends). Default ``Mbar``: 10 values on ``[0, 2]``.

    Columns ``lb, ub, method, delta, mbar, open_lower, open_upper``.
    """
    mbars = np.linspace(0, 2, 10) if mbar_vec is None else np.asarray(mbar_vec, dtype=float)
    hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
    rows = []
    for mb in mbars:
        cs = conditional_cs_rm(
            betahat, sigma, num_pre, num_post, float(mb), l_vec, alpha, hybrid,
            grid_points, grid_lb, grid_ub, seed,
        )
        rows.append({"lb": cs.lb, "ub": cs.ub, "method": method, "delta": "DeltaRM",
                     "mbar": float(mb), "open_lower": cs.open_lower, "open_upper": cs.open_upper})
    return pd.DataFrame(rows)


def sensitivity_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    m_vec: Sequence[float] | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["FLCI", "C-LF", "Conditional"] = "FLCI",
    alpha: float = 0.05,
    folded_normal: FoldedNormal = "r_simulation",
    seed: int = 0,
    grid_points: int = 1000,
) -> pd.DataFrame:
    """Robust CIs over ``M`` (HonestDiD ``createSensitivityResults``, ``Delta^SD``).

    Default ``M``: 10 values on ``[0, M_ub]`` with ``M_ub`` from
    :func:`sd_upper_bound_m_pre` (``[0, sd(b_{-1})]`` with one pre period), as HonestDiD.
    Columns ``lb, ub, method, delta, m, open_lower, open_upper``.
    """
    if m_vec is None:
        if num_pre == 1:
            mvals = np.linspace(0, float(np.sqrt(np.asarray(sigma)[0, 0])), 10)
        else:
            mvals = np.linspace(0, sd_upper_bound_m_pre(betahat, sigma, num_pre, 0.05), 10)
    else:
        mvals = np.asarray(m_vec, dtype=float)
    rows = []
    for mv in mvals:
        if method == "FLCI":
            r = flci_sd(betahat, sigma, num_pre, num_post, float(mv), l_vec, alpha, folded_normal, seed)
            lb, ub, ol, ou = r.lb, r.ub, False, False
        else:
            hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
            cs = conditional_cs_sd(betahat, sigma, num_pre, num_post, float(mv), l_vec, alpha,
                                   hybrid, grid_points, seed=seed)
            lb, ub, ol, ou = cs.lb, cs.ub, cs.open_lower, cs.open_upper
        rows.append({"lb": lb, "ub": ub, "method": method, "delta": "DeltaSD", "m": float(mv),
                     "open_lower": ol, "open_upper": ou})
    return pd.DataFrame(rows)


def bisect_threshold(contains_zero: Callable[[float], bool], lo: float, hi: float, tol: float) -> float:
    """Narrow ``(lo, hi]`` (``contains_zero(lo)`` false, ``contains_zero(hi)`` true; assumed
    monotone) to width ``tol`` by bisection; the upper end."""
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if contains_zero(mid):
            hi = mid
        else:
            lo = mid
    return hi


def expand_and_bisect(
    contains_zero: Callable[[float], bool], lo: float, hi: float, tol: float, limit: float
) -> float:
    """Smallest ``x > lo`` with ``contains_zero(x)`` (``contains_zero(lo)`` false): doubling
    ``hi`` until the set contains 0 (``inf`` beyond ``limit``), then :func:`bisect_threshold`."""
    while not contains_zero(hi):
        if hi >= limit:
            return np.inf
        lo, hi = hi, min(2 * hi, limit)
    return bisect_threshold(contains_zero, lo, hi, tol)


def _bisect_breakdown(
    contains_zero: Callable[[float], bool], start: float, tol: float, limit: float
) -> float:
    """Smallest ``x >= 0`` with ``contains_zero(x)`` (assumed monotone): doubling from
    ``start`` until the set contains 0 (``inf`` beyond ``limit``), then bisection to ``tol``."""
    if contains_zero(0.0):
        return 0.0
    return expand_and_bisect(contains_zero, 0.0, start, tol, limit)


def breakdown_value_rm(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["C-LF", "Conditional"] = "C-LF",
    alpha: float = 0.05,
    mbar_max: float = 100.0,
    tol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Smallest ``Mbar`` at which ``theta = 0`` is in the ``Delta^RM(Mbar)`` set (``0`` when
    the original conclusion is not significant, ``inf`` beyond ``mbar_max``). The test of
    ``theta = 0`` is evaluated directly (no grid)."""
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
    zero = np.zeros(1)
    return _bisect_breakdown(
        lambda mb: bool(rm_accept(beta, sig, num_pre, num_post, lv, mb, zero, alpha, hybrid, seed)[0]),
        1.0,
        tol,
        mbar_max,
    )


def breakdown_value_sd(
    betahat: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    method: Literal["FLCI", "C-LF", "Conditional"] = "FLCI",
    alpha: float = 0.05,
    m_max: float | None = None,
    tol: float | None = None,
    folded_normal: FoldedNormal = "r_simulation",
    seed: int = 0,
) -> float:
    """Smallest ``M`` at which the ``Delta^SD(M)`` set contains 0 (search from
    ``sd_theta`` upwards, ``inf`` beyond ``m_max``, default ``1000 sd_theta``; ``tol``
    defaults to ``1e-4 sd_theta``)."""
    beta, sig, lv = _inputs(betahat, sigma, num_pre, num_post, l_vec)
    sd = _sd_theta(sig, num_pre, lv)
    m_max = 1000 * sd if m_max is None else m_max
    tol = 1e-4 * sd if tol is None else tol
    if method == "FLCI":
        def has_zero(mv: float) -> bool:
            r = flci_sd(beta, sig, num_pre, num_post, mv, lv, alpha, folded_normal, seed)
            return r.lb <= 0 <= r.ub
    else:
        hybrid: Hybrid = "LF" if method == "C-LF" else "ARP"
        zero = np.zeros(1)

        def has_zero(mv: float) -> bool:
            return bool(_sd_accept(beta, sig, num_pre, num_post, lv, mv, zero, alpha, hybrid, seed)[0])

    return _bisect_breakdown(has_zero, sd, tol, m_max)

