r"""Exact LP machinery of the ARP conditional test with nuisance parameters.

Reference: Andrews, I., Roth, J. and Pakes, A. (2023), "Inference for Linear Conditional
Moment Inequalities", Review of Economic Studies 90(6) (ARP2023), sec. 3-4 and App. D;
R ``HonestDiD`` ``.test_delta_lp_fn``, ``.vlo_vup_dual_fn``.

* :class:`EtaProgram`: the test statistic ``eta(y) = min_{eta, gamma} eta`` s.t.
  ``y - X gamma <= eta sd(Y)`` and its optimal dual vertex, for many ``y`` (HiGHS, with
  optimal bases cached and reused: exact, since dual feasibility does not depend on ``y``).
* :class:`DualBounds`: the truncation bounds ``[v_lo, v_up]`` of the conditional test when
  the LP is degenerate, as two exact linear-fractional programs (Charnes-Cooper LPs) where
  HonestDiD bisects to 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy import optimize

__all__ = ["TOL_LAMBDA", "DualBounds", "EtaProgram"]

#: lambda above this counts as a binding moment (HonestDiD ``tol_lambda``).
TOL_LAMBDA = 1e-6


def _unsolved(todo: np.ndarray, assign: Callable[[int], None], n_cached: int) -> Iterator[int]:
    """The rows an LP must solve: after ``assign`` has given each of the ``n_cached``
    cached bases the rows it solves, the first row still ``todo`` (marked done), until
    none is left (the caller may cache and ``assign`` a new basis in between)."""
    for b in range(n_cached):
        assign(b)
    while todo.any():
        j = int(np.flatnonzero(todo)[0])
        todo[j] = False
        yield j


class EtaProgram:
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
        support = np.flatnonzero(lam > TOL_LAMBDA)
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

        for j in _unsolved(todo, assign, len(self.bases)):
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

        for j in _unsolved(todo, assign, len(self.bases)):
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


class DualBounds:
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
