r"""The permutation statistics of CWZ 2021 and their exact inversion over the null effect.

Reference: Chernozhukov, V., Wüthrich, K. and Zhu, Y. (2021), "An exact and robust
conformal inference method for counterfactual and synthetic controls", Journal of the
American Statistical Association 116(536), 1849-1864 (CWZ 2021); the studentized
statistic: Chung, E. and Romano, J. P. (2013), "Exact and asymptotically robust
permutation tests", Annals of Statistics 41(2).

Under the null effect ``theta0`` a unit's residuals are linear in it,
``u(theta0) = u0 - theta0 r`` (:func:`residual_parts`, for the ``did`` and ``factor``
counterfactual models). Over the cyclic shifts ``k`` of the periods, :class:`BlockStats`
gives the post-mean and ``S_1`` statistics (piecewise linear in ``theta0``) and
:class:`StudentStats` the studentized one (a ratio of quadratics, Bartlett long-run
variances by :func:`block_hac`); each lists every point where some ``S_k - S_0`` can change
sign, and :func:`invert` evaluates ``p(theta0)`` at and between those points, so the set
``{theta0 : p(theta0) > alpha}`` is exact (no grid). The formulas are in the docstring of
:mod:`mipa.inference.conformal` ("Test of one constant effect", "Exact inversion").
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = [
    "MODELS",
    "SCORE_MODELS",
    "STATISTICS",
    "BlockStats",
    "StudentStats",
    "bartlett_lags",
    "block_hac",
    "block_sums",
    "count_at_least",
    "cyclic_lrv",
    "cyclic_sums",
    "invert",
    "make_stats",
    "moving_average",
    "residual_parts",
    "score_weights",
]

Model = Literal["did", "factor", "ratio", "poisson"]
Statistic = Literal["mean", "t", "s1"]
MODELS: tuple[str, ...] = ("did", "factor", "ratio", "poisson")
#: models whose scale is fitted by the Poisson score (an oblique projection); ``poisson`` is
#: ``ratio`` on Poisson ETWFE's month profile instead of the raw never-treated mean
SCORE_MODELS: tuple[str, ...] = ("ratio", "poisson")
STATISTICS: tuple[str, ...] = ("mean", "t", "s1")


def moving_average(x: np.ndarray, h: int) -> np.ndarray:
    """Centred moving average over ``2h + 1`` points, over the points that exist at the ends."""
    if h <= 0:
        return np.asarray(x, dtype=float)
    k = np.ones(2 * h + 1)
    return np.convolve(x, k, "same") / np.convolve(np.ones(len(x)), k, "same")


def residual_parts(y: np.ndarray, cbar: np.ndarray, post: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """``u0 = M (y - o)`` and ``r = M D`` on the last axis (batched over leading axes)."""
    D = post.astype(float)
    if model == "did":
        z = y - cbar
        u0 = z - z.mean(axis=-1, keepdims=True)
        r = np.broadcast_to(D - D.mean(), u0.shape)
        return u0, np.array(r)
    if model == "factor":
        xc = cbar - cbar.mean(axis=-1, keepdims=True)
        sxx = (xc * xc).sum(axis=-1, keepdims=True)

        def annihilate(v: np.ndarray) -> np.ndarray:
            vc = v - v.mean(axis=-1, keepdims=True)
            return vc - xc * ((xc * vc).sum(axis=-1, keepdims=True) / sxx)

        return annihilate(y), annihilate(np.broadcast_to(D, y.shape))
    if model in SCORE_MODELS:
        # M = I - c 1'/(1'c): the scale b = sum(v) / sum(c) of the Poisson score, not OLS
        total = cbar.sum(axis=-1, keepdims=True)

        def rescale(v: np.ndarray) -> np.ndarray:
            return v - cbar * (v.sum(axis=-1, keepdims=True) / total)

        return rescale(y), rescale(np.broadcast_to(D, y.shape))
    raise ValueError(f"model must be one of {MODELS}, not {model!r}")


def score_weights(r: np.ndarray, cbar: np.ndarray, post: np.ndarray, model: str) -> np.ndarray:
    """``s = M'D``: the effect's estimate on residuals ``v`` is ``s'v / s'r``.

    ``did`` and ``factor`` are OLS (``M`` symmetric), so ``s = r`` (Frisch-Waugh). ``ratio``
    fits the scale by the Poisson score ``sum_t (y_t - b c_t) = 0`` (the exponential-mean
    QMLE of ``y = b c_t``; an oblique ``M``), so ``s = D - 1 (c'D) / (1'c)`` and the effect
    is ``D'u0 / D'r``: the post mean of ``y - b_pre c`` with ``b_pre = sum_pre y / sum_pre c``.
    """
    if model not in SCORE_MODELS:
        return r
    D = post.astype(float)
    share = (cbar * D).sum(axis=-1, keepdims=True) / cbar.sum(axis=-1, keepdims=True)
    return np.broadcast_to(D - share, r.shape).copy()


def block_sums(v: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """Sums of ``v`` over the cyclically shifted post blocks: ``[..., k]`` = sum over
    ``t = T0 .. T-1`` of ``v[..., (t + k) mod T]``, ``k = 0 .. T-1``."""
    T = v.shape[-1]
    c = np.concatenate([np.zeros(v.shape[:-1] + (1,)), np.cumsum(np.concatenate([v, v], axis=-1), axis=-1)], axis=-1)
    k = np.arange(T)
    return c[..., t0 + k + t1] - c[..., t0 + k]


class BlockStats:
    """``S_k(theta)`` for every shift ``k`` at any ``theta`` (vectorised), for the
    statistics that are piecewise linear in ``theta`` (``mean``, ``s1``)."""

    def __init__(self, u0: np.ndarray, r: np.ndarray, t0: int, t1: int, statistic: str) -> None:
        self.u0, self.r, self.t0, self.t1, self.statistic = u0, r, t0, t1, statistic
        if statistic == "mean":
            self.A = block_sums(u0, t0, t1) / t1
            self.B = block_sums(r, t0, t1) / t1
        elif statistic != "s1":
            raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")

    @property
    def n_shifts(self) -> int:
        return self.u0.size

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)[:, None]
        if self.statistic == "mean":
            return np.abs(self.A[None, :] - theta * self.B[None, :])
        out = np.empty((theta.shape[0], self.u0.size))
        for s in range(0, theta.shape[0], 512):  # bounded memory
            u = np.abs(self.u0[None, :] - theta[s:s + 512] * self.r[None, :])
            out[s:s + 512] = block_sums(u, self.t0, self.t1) / math.sqrt(self.t1)
        return out

    def kinks(self) -> np.ndarray:
        if self.statistic == "mean":
            num, den = self.A, self.B
        else:
            num, den = self.u0, self.r
        ok = np.abs(den) > 1e-12 * max(1.0, float(np.abs(den).max()))
        return num[ok] / den[ok]

    def events(self, center: float) -> np.ndarray:
        """Every ``theta`` where some ``S_k - S_0`` changes sign: the kinks, and the zeros
        of the pieces between them (each piece is linear, so they are exact)."""
        K = np.unique(np.append(self.kinks(), center))
        span = float(K[-1] - K[0]) + 1.0 + abs(center)
        G = np.concatenate([[K[0] - span], K, [K[-1] + span]])
        D = self(G)
        D = D - D[:, :1]
        roots = [G]
        d1, d2 = D[:-1], D[1:]
        m, k = np.nonzero(d1 * d2 < 0)
        if m.size:
            roots.append(G[m] + (G[m + 1] - G[m]) * d1[m, k] / (d1[m, k] - d2[m, k]))
        # beyond the outer kinks each S_k - S_0 stays linear: zeros further out
        for a, b, side in ((0, 1, -1), (-2, -1, 1)):
            slope = (D[b] - D[a]) / (G[b] - G[a])
            base = D[a] if side < 0 else D[b]
            at = G[a] if side < 0 else G[b]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = at - base / slope
            roots.append(z[np.isfinite(z) & ((z < at) if side < 0 else (z > at))])
        return np.concatenate(roots)


def cyclic_sums(v: np.ndarray, start: int, n: int) -> np.ndarray:
    """``[..., k]`` = sum of ``v[..., (start + k + i) mod T]`` over ``i = 0 .. n-1``."""
    T = v.shape[-1]
    c = np.concatenate([np.zeros(v.shape[:-1] + (1,)), np.cumsum(np.concatenate([v, v, v], axis=-1), axis=-1)],
                       axis=-1)
    k = np.arange(T)
    return c[..., start + k + n] - c[..., start + k]


def bartlett_lags(n: int) -> int:
    """Default Bartlett bandwidth of a block of ``n`` periods: ``floor(n^(1/3))``, below ``n``."""
    return max(0, min(n - 1, int(math.floor(n ** (1 / 3) + 1e-9))))


def block_hac(x: np.ndarray, z: np.ndarray, start: int, n: int, lags: int) -> np.ndarray:
    """Bartlett long-run covariance of ``x`` and ``z`` inside every shifted cyclic block
    (start ``start + k``, ``n`` periods), each series demeaned in its block, times
    ``n / (n - 1)``: ``sum_{|l| <= L} (1 - |l|/(L+1)) gamma_l``, ``gamma_l`` the lag-``l``
    cross-covariance (``1/n`` normalised). Symmetric in ``x``, ``z``."""
    mx, mz = cyclic_sums(x, start, n) / n, cyclic_sums(z, start, n) / n
    out = (cyclic_sums(x * z, start, n) - n * mx * mz) / n
    n_lags = min(lags, n - 1)
    if n_lags < 1:
        return out * n / (n - 1)
    # every lag at once (row l: lag l + 1), the same sums as lag by lag: row l of a cumulative
    # sum is that row's own, and the lags still enter ``out`` one after the other
    T = x.shape[-1]
    lag = np.arange(1, n_lags + 1)
    k = np.arange(T)
    lead = (k[None, :] + lag[:, None]) % T  # np.roll(b, -lag)
    lo = start + k[None, :] + np.zeros_like(lag)[:, None]
    hi = lo + (n - lag)[:, None]

    def window_sums(v: np.ndarray) -> np.ndarray:  # cyclic_sums of each row, its own n - lag
        rows = np.broadcast_to(v, (n_lags, T))
        c = np.concatenate([np.zeros((n_lags, 1)), np.cumsum(np.concatenate([rows, rows, rows], axis=-1), axis=-1)],
                           axis=-1)
        return np.take_along_axis(c, hi, axis=-1) - np.take_along_axis(c, lo, axis=-1)

    terms = []
    for a, b, ma, mb in ((x, z, mx, mz), (z, x, mz, mx)):
        b_lead = b[lead]
        terms.append(window_sums(a * b_lead) - mb * window_sums(a) - ma * window_sums(b_lead)
                     + (n - lag)[:, None] * ma * mb)
    for row in range(n_lags):
        w = 1 - lag[row] / (lags + 1)
        for s in terms:
            out = out + w * s[row] / n
    return out * n / (n - 1)


class StudentStats:
    """The studentized statistic ``|t_k(theta)|`` (module docstring, ``statistic="t"``).

    For block ``k`` (the shifted post block, ``T1`` periods) and its complement (``T0``
    periods, also a cyclic block): ``t_k = (m_in - m_out) / sqrt(V_in / T1 + V_out / T0)``
    with ``m`` the means of ``u(theta)`` and ``V`` their Bartlett long-run variances
    (:func:`block_hac`). Since ``u(theta) = u0 - theta r``: ``m_in - m_out = a_k - theta b_k``
    and ``V_in/T1 + V_out/T0 = q0_k - 2 theta q1_k + theta^2 q2_k``, so
    ``t_k^2 >= t_0^2`` is the sign of a quartic in ``theta`` whose real roots are the only
    places where the count changes.
    """

    def __init__(self, u0: np.ndarray, r: np.ndarray, t0: int, t1: int, lags: int | None) -> None:
        self.u0, self.r, self.t0, self.t1 = u0, r, t0, t1
        lin, lout = (bartlett_lags(t1), bartlett_lags(t0)) if lags is None else (min(lags, t1 - 1), min(lags, t0 - 1))
        self.a = cyclic_sums(u0, t0, t1) / t1 - cyclic_sums(u0, 0, t0) / t0
        self.b = cyclic_sums(r, t0, t1) / t1 - cyclic_sums(r, 0, t0) / t0
        q = []
        for x, z in ((u0, u0), (u0, r), (r, r)):
            q.append(block_hac(x, z, t0, t1, lin) / t1 + block_hac(x, z, 0, t0, lout) / t0)
        self.q0, self.q1, self.q2 = q
        # a block whose residuals do not vary would divide by zero: a tiny floor
        self.eps = 1e-12 * max(1.0, float(np.abs(self.q0).max()))

    @property
    def n_shifts(self) -> int:
        """The number of cyclic shifts: one per entry of the statistic's arrays."""
        return self.a.size

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        th = np.asarray(theta, dtype=float)[:, None]
        d = self.a[None, :] - th * self.b[None, :]
        Q = self.q0[None, :] - 2 * th * self.q1[None, :] + th * th * self.q2[None, :]
        return np.abs(d) / np.sqrt(np.maximum(Q, 0.0) + self.eps)

    def events(self, center: float) -> np.ndarray:
        """Real roots of ``d_k^2 Q_0 - d_0^2 Q_k`` for every ``k``, the zero of ``d_0``, and ``center``."""
        def sq(a, b):  # (a - theta b)^2, ascending powers
            return np.stack([a * a, -2 * a * b, b * b], axis=-1)

        def quad(k):
            return np.stack([self.q0[k] + self.eps, -2 * self.q1[k], self.q2[k]], axis=-1)

        def mul(p, q):
            out = np.zeros(np.broadcast_shapes(p.shape[:-1], q.shape[:-1]) + (5,))
            for i in range(3):
                for j in range(3):
                    out[..., i + j] += p[..., i] * q[..., j]
            return out

        k = np.arange(1, self.a.size)
        poly = mul(sq(self.a[k], self.b[k]), quad(0)[None, :]) - mul(sq(self.a[0], self.b[0])[None, :], quad(k))
        out = [np.array([center])]
        if self.b[0] != 0:
            out.append(np.array([self.a[0] / self.b[0]]))
        scale = np.abs(poly).max(axis=1, keepdims=True)
        poly = np.where(np.abs(poly) > 1e-13 * scale, poly, 0.0)
        z = polynomial_roots(poly[:, ::-1])
        out.append(z.real[np.abs(z.imag) <= 1e-9 * (1 + np.abs(z.real))])
        return np.concatenate(out)


def polynomial_roots(coefficients: np.ndarray) -> np.ndarray:
    """The roots of every row's polynomial (highest power first), together: ``np.roots`` of
    each row, stacked, with one eigenvalue call per degree instead of one per row (the same
    companion matrices, so the same roots; a zero row has none)."""
    rows = np.asarray(coefficients, dtype=float)
    nonzero = rows != 0
    found = []
    if not nonzero.any():
        return np.array([], dtype=complex)
    has = nonzero.any(axis=1)
    first = np.where(has, nonzero.argmax(axis=1), -1)
    last = np.where(has, rows.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1), -1)
    for lead, tail in sorted(set(zip(first[has].tolist(), last[has].tolist(), strict=True))):
        p = rows[(first == lead) & (last == tail), lead:tail + 1]
        n = p.shape[1]
        if n > 1:
            A = np.zeros((p.shape[0], n - 1, n - 1))
            A[:, np.arange(1, n - 1), np.arange(n - 2)] = 1.0
            A[:, 0, :] = -p[:, 1:] / p[:, :1]
            found.append(np.linalg.eigvals(A).astype(complex).ravel())
        trailing = rows.shape[1] - 1 - tail
        if trailing:
            found.append(np.zeros(p.shape[0] * trailing, dtype=complex))
    return np.concatenate(found) if found else np.array([], dtype=complex)


def count_at_least(S: np.ndarray) -> np.ndarray:
    """``sum_k 1[S_k >= S_0]`` per row (with a relative tolerance for rounding ties)."""
    tol = 1e-9 * np.maximum(1.0, np.abs(S).max(axis=1, keepdims=True))
    return (S >= S[:, :1] - tol).sum(axis=1)


def invert(stats: BlockStats | StudentStats, alpha: float, center: float) -> tuple[float, float, bool]:
    """Exact ``{theta : p(theta) > alpha}``: ``p`` is evaluated at every point where it can
    change (``stats.events``) and between them; returns the bounds and convexity."""
    E = stats.events(center)
    E = np.unique(E[np.isfinite(E)])
    far = 1.0 + float(np.abs(E).max())
    P = np.concatenate([[E[0] - far], np.sort(np.concatenate([E, (E[:-1] + E[1:]) / 2])), [E[-1] + far]])
    T = stats.n_shifts
    accept = np.zeros(P.size, dtype=bool)
    for s in range(0, P.size, 4096):
        accept[s:s + 4096] = count_at_least(stats(P[s:s + 4096])) / T > alpha
    if not accept.any():  # every constant effect rejected (possible with s1 and t)
        return np.nan, np.nan, True
    idx = np.flatnonzero(accept)
    lo = -np.inf if accept[0] else float(P[idx[0]])
    hi = np.inf if accept[-1] else float(P[idx[-1]])
    convex = bool(idx[-1] - idx[0] + 1 == idx.size)
    return lo, hi, convex


def make_stats(u0: np.ndarray, r: np.ndarray, t0: int, t1: int, statistic: str,
               lags: int | None) -> BlockStats | StudentStats:
    """The statistic ``statistic`` over the cyclic shifts of ``u0 - theta r``."""
    if statistic == "t":
        return StudentStats(u0, r, t0, t1, lags)
    return BlockStats(u0, r, t0, t1, statistic)


def cyclic_lrv(x: np.ndarray, z: np.ndarray, lags: int) -> np.ndarray:
    """Bartlett long-run covariance of the SUM over the last axis of two series (rows: one
    per shift), with cyclic lags: ``sum_t x_t z_t + sum_{l=1..L} (1 - l/(L+1)) sum_t
    (x_t z_{t+l} + z_t x_{t+l})``, indices mod ``T``."""
    T = x.shape[-1]
    out = (x * z).sum(axis=-1)
    for lag in range(1, min(lags, T - 1) + 1):
        out = out + (1 - lag / (lags + 1)) * ((x * np.roll(z, -lag, -1)).sum(axis=-1)
                                              + (z * np.roll(x, -lag, -1)).sum(axis=-1))
    return out

