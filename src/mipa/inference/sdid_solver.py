r"""The Frank-Wolfe weight solver of synthetic difference-in-differences.

References
----------
* Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021),
  "Synthetic difference-in-differences", American Economic Review 111(12), 4088-4118
  (AAHIW 2021): Algorithm 1 (the weight problems).
* R package ``synthdid`` (Hirshberg): ``sc.weight.fw``, ``fw.step``, ``sparsify_function``;
  this module reproduces their computations.

What it computes: the unit and time weights of :mod:`mipa.inference.sdid_fit` (and of
the placebo re-fits, :mod:`mipa.inference.sdid_placebo`) as simplex-constrained ridge
problems, many at a time.

Solver (``sc.weight.fw``): the intercept is removed by centring the columns of
``[A | b]`` over rows; Frank-Wolfe on ``f(x) = ||A x - b||^2 + eta ||x||^2``,
``eta = rows * zeta^2``, over the simplex: vertex ``i = argmin grad``, exact line search
``step = -grad'd / (||A d||^2 + eta ||d||^2)`` clipped to ``[0, 1]``. Start: uniform (or
the weights given). Stop after ``max_iter`` steps or when an iteration lowers
``zeta^2 ||x||^2 + ||A x - b||^2 / rows`` by less than ``min_decrease^2``. As
``synthdid``: a first run of at most 100 steps, then ``sparsify`` (weights
``<= max/4`` set to zero, renormalised), then a second run of at most ``max_iter = 1e4``
steps from there.

Computation. Every weight problem (fits and placebo re-fits) runs on its own in compiled
code (:mod:`mipa.inference.frank_wolfe`), in the arithmetic of the first
implementation, so a weight vector does not depend on which other problems are solved
with it. With the exhaustive placebo the unit-weight problems are leave-one-out versions
of one control block: their Gram matrices are rows and columns of that block's one Gram
matrix (:class:`LooOmega`), not ``N0`` separate products. Units sharing a start share
their time-weight problems, solved once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_ITER", "MAX_ITER_PRE_SPARSIFY", "FwSet", "LooOmega", "frank_wolfe", "fw_set", "leave_one_out", "sparsify",
           "two_stage_many"]

MAX_ITER = 10_000
MAX_ITER_PRE_SPARSIFY = 100


def leave_one_out(n: int) -> np.ndarray:
    """``n x (n - 1)``: row ``c`` holds ``0 .. n-1`` without ``c``, in order."""
    position = np.arange(n - 1)[None, :]
    return position + (position >= np.arange(n)[:, None])


def sparsify(x: np.ndarray) -> np.ndarray:
    """``synthdid``'s ``sparsify_function``: zero the weights ``<= max/4``, renormalise (rows)."""
    x = np.array(x, dtype=float, copy=True)
    x[x <= x.max(axis=-1, keepdims=True) / 4] = 0.0
    return x / x.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class FwSet:
    """``P`` problems of :func:`frank_wolfe` of one shape (``n`` rows, ``k`` weights).

    ``A``, ``b`` are centred already when the problem has an intercept; ``G = A'A`` and
    ``c = A'b`` are computed once and serve both stages of :func:`two_stage_many`.
    The interface the solver uses (shared with :class:`LooOmega`): ``size``, ``rows``,
    ``zeta2``, ``tol``, ``dense()`` (``G``, ``c`` per problem) and ``e2(x)``.
    """

    A: np.ndarray  # P x n x k
    b: np.ndarray  # P x n
    G: np.ndarray  # P x k x k
    c: np.ndarray  # P x k
    zeta2: np.ndarray  # P
    tol: np.ndarray  # P

    @property
    def size(self) -> int:
        return self.A.shape[0]

    @property
    def rows(self) -> int:
        return self.A.shape[1]

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        return self.G, self.c

    def e2(self, x: np.ndarray) -> np.ndarray:
        """``||A x - b||^2`` per problem."""
        e0 = np.einsum("pnk,pk->pn", self.A, x) - self.b
        return np.einsum("pn,pn->p", e0, e0)


def fw_set(
    A: np.ndarray, b: np.ndarray, zeta: np.ndarray | float, min_decrease: np.ndarray | float, *,
    intercept: bool,
) -> FwSet:
    """The problems ``A`` (``P x n x k``), ``b`` (``P x n``) ready for the solver: centred over
    the ``n`` rows when they have an intercept, with ``G = A'A`` and ``c = A'b``."""
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    P = A.shape[0]
    if intercept:
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    At = A.transpose(0, 2, 1)
    return FwSet(
        A=A, b=b, G=At @ A, c=np.einsum("pkn,pn->pk", At, b),
        zeta2=np.broadcast_to(np.asarray(zeta, dtype=float) ** 2, (P,)).copy(),
        tol=np.broadcast_to(np.asarray(min_decrease, dtype=float) ** 2, (P,)).copy(),
    )


@dataclass(frozen=True)
class LooOmega:
    """Unit weights of the ``N0`` leave-one-out placebo problems of one control block.

    Problem ``c``: the control ``c`` plays treated, the others (in order) are the donors.
    With the columns of ``Z`` the controls' pre-periods (centred over time with an
    intercept) and ``F = Z'Z``: ``G = F`` without row and column ``c``, ``c_vec = F[-c, c]``
    (one Gram matrix for the block instead of ``N0`` products).
    """

    Z: np.ndarray  # n x N0
    F: np.ndarray  # N0 x N0
    zeta2: np.ndarray  # P = N0
    tol: np.ndarray

    @property
    def size(self) -> int:
        return self.F.shape[0]

    @property
    def rows(self) -> int:
        return self.Z.shape[0]


    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        N0, F = self.size, self.F
        G = np.empty((N0, N0 - 1, N0 - 1))
        for c in range(N0):  # F without row and column c, as four block copies
            G[c, :c, :c] = F[:c, :c]
            G[c, :c, c:] = F[:c, c + 1:]
            G[c, c:, :c] = F[c + 1:, :c]
            G[c, c:, c:] = F[c + 1:, c + 1:]
        return G, F[leave_one_out(N0), np.arange(N0)[:, None]]

    def e2(self, x: np.ndarray) -> np.ndarray:
        """``||Z_donors x_c - Z_c||^2`` for each control ``c``."""
        N0 = self.size
        full = np.zeros((N0, N0))
        full[~np.eye(N0, dtype=bool)] = np.asarray(x, dtype=float).ravel()
        e0 = full @ self.Z.T - self.Z.T  # row c: donors' fit minus control c
        return np.einsum("pn,pn->p", e0, e0)


def frank_wolfe(
    A: np.ndarray,
    b: np.ndarray,
    zeta: np.ndarray | float,
    x0: np.ndarray,
    *,
    intercept: bool,
    min_decrease: np.ndarray | float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``synthdid``'s ``sc.weight.fw`` for a batch of problems of one shape.

    ``A``: ``P x n x k``, ``b``: ``P x n``, ``x0``: ``P x k`` (on the simplex), ``zeta`` and
    ``min_decrease`` scalars or length ``P``. Minimises
    ``zeta^2 ||x||^2 + ||A x - b||^2 / n`` over the simplex (``intercept``: columns of
    ``[A | b]`` centred over the ``n`` rows first), by Frank-Wolfe with exact line search
    on ``||A x - b||^2 + eta ||x||^2``, ``eta = n zeta^2``; each problem stops after
    ``max_iter`` steps or once a step lowers the objective by ``<= min_decrease^2``.
    Returns the weights (``P x k``) and the number of steps taken by each problem.

    Bookkeeping (so that a step costs a few length-``k`` vector operations): with
    ``G = A'A``, ``c = A'b`` and ``x <- (1-s) x + s e_i``, only the half gradient
    ``grad = G x - c + eta x`` is kept as a vector
    (``grad <- (1-s) grad + s R_i``, ``R_i = G_i - c + eta e_i``); ``x'Gx``, ``||x||^2``
    and ``||Ax - b||^2`` follow exact scalar recursions
    (``||A_i - Ax||^2 = G_ii - 2 (Gx)_i + x'Gx`` and
    ``(Ax - b)'(A_i - Ax) = grad_i - grad'x - eta (x_i - ||x||^2)``), so the
    ``n``-vectors are never touched after the start.
    """
    fw = fw_set(A, b, zeta, min_decrease, intercept=intercept)
    return _fw_run([fw], [np.asarray(x0, dtype=float)], max_iter)[0]


def _fw_run(sets: list, x0s: list[np.ndarray], max_iter: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run every problem of every set from ``x0s``; ``(weights, steps)`` per set.

    Each problem runs on its own in compiled code (:mod:`mipa.inference.frank_wolfe`),
    so a weight vector does not depend on which other problems are solved with it.
    """
    from mipa.inference.frank_wolfe import solve_stack  # numba: loaded only when SDID runs

    out = []
    for fw, x0 in zip(sets, x0s, strict=True):
        G, c = fw.dense()
        x0 = np.ascontiguousarray(x0, dtype=float)
        out.append(solve_stack(np.ascontiguousarray(G), np.ascontiguousarray(c), fw.e2(x0), int(fw.rows),
                               fw.zeta2, x0, fw.tol, int(max_iter)))
    return out


def two_stage_many(
    sets: list, x0s: list[np.ndarray], *, max_iter: int, use_sparsify: bool
) -> list[np.ndarray]:
    """``synthdid``'s weight fit for every set: ``max_iter_pre_sparsify`` steps, sparsify,
    then ``max_iter`` (each stage one run over all sets, see :func:`_fw_run`)."""
    if not sets:
        return []
    if not use_sparsify:
        return [x for x, _ in _fw_run(sets, x0s, max_iter)]
    first = [x for x, _ in _fw_run(sets, x0s, MAX_ITER_PRE_SPARSIFY)]
    return [x for x, _ in _fw_run(sets, [sparsify(x) for x in first], max_iter)]
