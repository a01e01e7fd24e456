r"""Optimal fixed-length confidence intervals (FLCI) under smoothness ``Delta^SD(M)``.

Reference: Armstrong, T. and Kolesar, M. (2018), "Optimal inference in a class of
regression models", Econometrica 86(2), 655-683; Rambachan, A. and Roth, J. (2023),
Review of Economic Studies 90(5), sec. 3.2; R ``HonestDiD`` ``findOptimalFLCI``
(``flci.R``).

The affine estimator ``a + v'beta_hat`` minimises the half-length
``chi = cv_alpha(bias_max / sd) * sd``, ``cv_alpha(t)`` the ``1-alpha`` quantile of
``|N(t, 1)|`` (folded normal) and ``bias_max`` the worst-case bias over ``Delta^SD(M)``.
As HonestDiD: the weights on the pre-periods are parametrised by cumulative sums ``w``
(``sum w = sum_s s l_s``), the worst-case bias is
``M (sum_s |sum_{j<=s} j l_{T-s+j}| - sum_s s l_s + sum_k |sum_{j<=k} w_j|)``; for each
standard deviation ``h`` the bias is minimised subject to ``sd(w) <= h`` (a second-order
cone program; here SLSQP in the cumulative-sum coordinates), and ``h`` runs from the
minimum-variance ``h_min`` to the minimum-bias ``h_0`` with HonestDiD's bisection on
numerical derivatives (``.findOptimalCIDerivativeBisection``).

``cv_alpha`` is simulated as HonestDiD's ``.qfoldednormal`` (``folded_normal="simulation"``,
:data:`~mipa.sensitivity.honest_did.draws.FOLDED_SIMS` standard normals from numpy's
generator seeded with ``seed``, or the injected ``normals``) or exact
(``folded_normal="exact"``, a root of the folded-normal distribution function).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats
from scipy.special import ndtr

from mipa.sensitivity.honest_did.draws import FOLDED_SIMS, NormalSource, normal_draws
from mipa.sensitivity.honest_did.inputs import Vector, validated_inputs

__all__ = ["FLCIResult", "FoldedNormal", "FoldedNormalCV", "flci_sd"]

#: ``"simulation"`` (HonestDiD's) or ``"exact"``; ``"r_simulation"``: the former's earlier name.
FoldedNormal = Literal["simulation", "exact", "r_simulation"]


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


class FoldedNormalCV:
    """``cv_alpha(t)``: the ``p = 1-alpha`` quantile of ``|N(t, 1)|``.

    ``"exact"``: root of ``Phi(q - t) - Phi(-q - t) = p``. ``"simulation"`` (or its
    earlier name ``"r_simulation"``): HonestDiD's ``.qfoldednormal``, the type-7 quantile
    of ``|z + t|`` over ``FOLDED_SIMS`` standard normals ``z``: numpy's generator seeded
    with ``seed``, or the first ``FOLDED_SIMS`` of the injected ``normals`` (R's
    ``set.seed(seed); rnorm(10^6)`` reproduces HonestDiD's digits).
    """

    def __init__(self, p: float, method: FoldedNormal, seed: int = 0, normals: NormalSource | None = None) -> None:
        if method not in ("simulation", "exact", "r_simulation"):
            raise ValueError(f"folded_normal must be 'simulation' or 'exact', not {method!r}")
        self.p = p
        self.method = method
        self.draws = None if method == "exact" else normal_draws(seed, normals)(FOLDED_SIMS)

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
        """``min sum|v|`` s.t. ``var(v) <= h^2``: exactly from the KKT conditions on the
        support and signs of ``v_start`` (the neighbouring ``h``'s solution) when they hold
        (:meth:`kkt_solution`), else SLSQP on ``v = p - m``, ``p, m >= 0``, whose support
        and signs then give the exact solution when they satisfy the conditions. The
        bisection over ``h`` calls this ~35 times per interval; the closed form is exact where
        SLSQP stops at its tolerance, and ~50x cheaper."""
        k = self.n - 1
        if k == 0:
            return self.bias_v(np.zeros(0)), np.zeros(0)
        exact = self.kkt_solution(h, v_start)
        if exact is not None:
            return self.bias_v(exact), exact
        _, v = self._min_bias_slsqp(h, v_start)
        exact = self.kkt_solution(h, v)
        v = v if exact is None else exact
        return self.bias_v(v), v

    def kkt_solution(self, h: float, v_guess: np.ndarray, tol: float = 1e-9) -> np.ndarray | None:
        r"""The minimiser of ``sum|v|`` s.t. ``q(v) = v'Q v + g'v + r <= h^2`` with the support
        ``S`` and signs ``s`` of ``v_guess``, or None when the KKT conditions fail.

        ``v = 0`` when ``q(0) <= h^2``. Otherwise the constraint binds: on ``S``,
        ``s + mu (2 Q_SS v_S + g_S) = 0`` gives ``v_S = a + t b`` with ``a = -Q_SS^{-1} g_S / 2``,
        ``b = -Q_SS^{-1} s / 2`` and ``t = 1/mu = sqrt((h^2 - r_S) / b'Q_SS b)``,
        ``r_S = r - a'Q_SS a`` (the constraint at equality). It is the optimum (the problem is
        convex) when ``sign(v_S) = s`` and the subgradient off ``S`` is in ``[-1, 1]``:
        ``|mu (2 Q v + g)_i| <= 1``.
        """
        h2 = h * h
        k = self.n - 1
        if self.rv <= h2:
            return np.zeros(k)
        scale = max(float(np.abs(v_guess).max()), 1e-300)
        support = np.flatnonzero(np.abs(v_guess) > 1e-7 * scale)
        if support.size == 0:
            return None
        signs = np.sign(v_guess[support])
        q_ss = self.qv[np.ix_(support, support)]
        try:
            a = -np.linalg.solve(q_ss, self.gv[support]) / 2
            b = -np.linalg.solve(q_ss, signs) / 2
        except np.linalg.LinAlgError:
            return None
        r_s = self.rv - float(a @ q_ss @ a)
        curvature = float(b @ q_ss @ b)
        if not (h2 > r_s and curvature > 0):
            return None
        t = np.sqrt((h2 - r_s) / curvature)
        v = np.zeros(k)
        v[support] = a + t * b
        if not np.array_equal(np.sign(v[support]), signs):
            return None
        subgradient = (2 * self.qv @ v + self.gv) / t  # mu (2Qv + g), mu = 1/t
        off = np.setdiff1d(np.arange(k), support)
        if np.any(np.abs(subgradient[off]) > 1 + tol):
            return None
        return v

    def _min_bias_slsqp(self, h: float, v_start: np.ndarray) -> tuple[float, np.ndarray]:
        """``min sum|v|`` s.t. ``var(v) <= h^2`` by SLSQP on ``v = p - m``, ``p, m >= 0``."""
        k = self.n - 1
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
    betahat: Vector, sigma: np.ndarray, num_pre: int, num_post: int, m: float, l_vec: Vector | None = None,
    alpha: float = 0.05,
    folded_normal: FoldedNormal = "simulation",
    seed: int = 0,
    num_points: int = 100,
    normals: NormalSource | None = None,
) -> FLCIResult:
    """Optimal fixed-length CI for ``theta`` under ``Delta^SD(M)`` (HonestDiD ``findOptimalFLCI``).

    ``h* = argmin_{h in [h_min, h_0]} cv_alpha(M b(h) / h) h`` with ``b(h)`` the smallest
    unit-``M`` worst-case bias of an estimator with standard deviation ``<= h``; found by
    HonestDiD's bisection on numerical derivatives (grid of ``num_points`` if that fails).
    Half-length ``cv_alpha(M b(h*) / h*) h*``. ``seed``/``normals``: the folded-normal
    simulation's draws (:class:`FoldedNormalCV`).
    """
    beta, sig, lv = validated_inputs(betahat, sigma, num_pre, num_post, l_vec)
    prob = _FLCIProblem(sig, num_pre, num_post, lv)
    cv = FoldedNormalCV(1 - alpha, folded_normal, seed, normals)
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
