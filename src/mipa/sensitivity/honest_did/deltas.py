r"""Restriction sets ``Delta`` on the bias ``delta`` as polyhedra, and their identified sets.

Reference: Rambachan, A. and Roth, J. (2023), "A More Credible Approach to Parallel
Trends", Review of Economic Studies 90(5), 2555-2591 (RR2023), sec. 2.4; R ``HonestDiD``
``.create_A_RM``, ``.create_A_SD``, ``.compute_IDset_DeltaRM``, ``.compute_IDset_DeltaSD``.

Periods are indexed ``-num_pre..-1`` and ``1..num_post`` around the omitted reference
``0`` (``delta_0 = 0``, its column dropped).

* Relative magnitudes ``Delta^RM(Mbar)`` (RR2023 eq. 2.1):
  ``|delta_{t+1} - delta_t| <= Mbar * max_{s<0} |delta_{s+1} - delta_s|`` for ``t >= 0``,
  the union over which pre difference ``s`` is the largest and its sign of the polyhedra
  ``Delta^RM_{s,+/-}`` = ``{A delta <= 0}`` (:func:`create_a_rm`).
* Smoothness ``Delta^SD(M)`` (RR2023 eq. 2.2): ``|(delta_{t+1} - delta_t) -
  (delta_t - delta_{t-1})| <= M`` for all ``t`` = ``{A delta <= M}`` (:func:`create_a_sd`).

The identified set of ``theta = l' tau_post`` for a population ``beta`` is
``[l'b_post - max l'delta_post, l'b_post - min l'delta_post]`` over the ``delta`` in the
set with ``delta_pre = beta_pre`` (two LPs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize

from mipa.sensitivity.honest_did.inputs import validated_inputs

__all__ = ["create_a_rm", "create_a_sd", "identified_set_rm", "identified_set_sd", "post_rows"]


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


def post_rows(a: np.ndarray, num_pre: int) -> np.ndarray:
    """Indices of the rows of ``a`` that involve a post period (``postPeriodMomentsOnly``)."""
    return np.flatnonzero((a[:, num_pre:] != 0).any(axis=1))


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
    b, _, lv = validated_inputs(beta, np.eye(num_pre + num_post), num_pre, num_post, l_vec)
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
    b, _, lv = validated_inputs(beta, np.eye(num_pre + num_post), num_pre, num_post, l_vec)
    a = create_a_sd(num_pre, num_post)
    r = _idset_lp(a, np.full(a.shape[0], float(m)), b, num_pre, lv)
    return (np.nan, np.nan) if r is None else r
