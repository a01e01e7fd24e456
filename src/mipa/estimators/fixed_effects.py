# Hand-written absorption, not pyfixest: the fixed-effect OLS of mipa.estimators.least_squares runs on it; its first line gives the measured reason.
"""Fixed effects: factor codes, singleton rows, the within transformation and the degrees of
freedom the fixed effects use.

References: Gaure, S. (2013), "OLS with multiple high dimensional category variables",
Computational Statistics & Data Analysis 66, 8-18 (the method of alternating
projections, the algorithm of Stata ``reghdfe`` and R ``fixest``); Correia, S. (2015),
"Singletons, cluster-robust standard errors and fixed effects" (singletons dropped);
Abowd, J. M., Kramarz, F. and Margolis, D. N. (1999), Econometrica 67(2) (mobility groups);
``reghdfe``'s ``estimate_dof`` (the degrees of freedom).

``y = X b + D a + e`` where ``D`` holds one or more sets of fixed-effect dummies (unit,
period). By Frisch-Waugh-Lovell, ``b`` is OLS of ``M_D y`` on ``M_D X`` with ``M_D`` the
annihilator of ``D`` (:mod:`mipa.estimators.least_squares` fits it). :func:`absorb` applies ``M_D``:
with one factor by subtracting group means (exact), with two by the normal equations with
the larger factor eliminated (:func:`two_way_within`, exact on unbalanced panels), with
more by alternating projections, subtracting the group means of each factor in turn until
nothing changes (the tests check it against explicit dummies). Rows that are alone in a
fixed-effect level are dropped first (:func:`drop_singletons`, reghdfe's singletons).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = [
    "FE_MAXITER",
    "FE_TOL",
    "ClusterSums",
    "TwoWayEffects",
    "absorb",
    "absorbed_dof",
    "drop_singletons",
    "factorize",
    "indicator",
    "is_nested",
    "level_factors",
    "mobility_groups",
    "two_way_within",
]

#: Relative tolerance of the alternating projections (max change per sweep / column scale).
FE_TOL = 1e-12
#: Sweeps after which the alternating projections give up (and warn).
FE_MAXITER = 100_000


# --------------------------------------------------------------------------- factors
def factorize(values: np.ndarray | pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes ``0..G-1`` and the number of levels ``G`` of a categorical column."""
    codes, uniques = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError("missing values in a fixed-effect or cluster variable")
    return codes.astype(np.int64), len(uniques)


def indicator(codes: np.ndarray, n_levels: int) -> sparse.csr_matrix:
    """Sparse ``G x N`` matrix with a one where row ``i`` belongs to level ``g``."""
    n = codes.shape[0]
    return sparse.csr_matrix(
        (np.ones(n), (codes, np.arange(n))), shape=(n_levels, n), dtype=float
    )


@dataclass(frozen=True)
class ClusterSums:
    """Row sums within clusters, set up once for a vector of cluster codes.

    Rows sorted by cluster with none empty (a panel sorted by unit): one ``np.add.reduceat``
    over the blocks, which reads an array in whatever memory order it has (the sparse
    indicator product copies a column-major array, such as ``X~``, into row order on
    every call: a third of the wild bootstrap's set-up); otherwise the ``G x N`` sparse
    :func:`indicator`.
    """

    starts: np.ndarray | None
    matrix: sparse.csr_matrix | None

    @classmethod
    def of(cls, codes: np.ndarray, n_clusters: int) -> ClusterSums:
        codes = np.asarray(codes)
        if codes.size and np.all(codes[1:] >= codes[:-1]):
            starts = np.searchsorted(codes, np.arange(n_clusters))
            if np.all(np.diff(np.append(starts, codes.size)) > 0):
                return cls(starts=starts, matrix=None)
        return cls(starts=None, matrix=indicator(codes, n_clusters))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.starts is not None:
            return np.add.reduceat(values, self.starts, axis=0)
        return np.asarray(self.matrix @ values)


def drop_singletons(fe_codes: Sequence[np.ndarray]) -> np.ndarray:
    """Mask of rows kept after iteratively dropping singleton fixed-effect groups.

    A row that is the only row of a fixed-effect level is fitted exactly by its own
    dummy and carries no information on ``b``; Stata ``reghdfe`` drops such rows
    (Correia 2015, "Singletons, cluster-robust standard errors and fixed effects")
    so that N and the small-sample factor do not count them.
    """
    if not fe_codes:
        return np.ones(0, dtype=bool)
    keep = np.ones(fe_codes[0].shape[0], dtype=bool)
    changed = True
    while changed:
        changed = False
        for codes in fe_codes:
            counts = np.bincount(codes[keep], minlength=int(codes.max()) + 1)
            single = keep & (counts[codes] == 1)
            if single.any():
                keep &= ~single
                changed = True
    return keep


# --------------------------------------------------------------------------- absorption
Factor = tuple[np.ndarray, sparse.csr_matrix, np.ndarray]


def level_factors(fe_codes: Sequence[np.ndarray]) -> list[Factor]:
    """``(codes, indicator, 1 / rows per level)`` of each factor (0 for a level without rows)."""
    factors = []
    for codes in fe_codes:
        D = indicator(codes, int(codes.max()) + 1)
        counts = np.asarray(D.sum(axis=1)).ravel()
        factors.append((codes, D, np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)))
    return factors


def absorb(
    M: np.ndarray,
    fe_codes: Sequence[np.ndarray],
    *,
    tol: float = FE_TOL,
    maxiter: int = FE_MAXITER,
    copy: bool = True,
) -> tuple[np.ndarray, int]:
    """Within transformation ``M_D M`` by alternating projections.

    Each sweep subtracts, factor by factor, the group means of the current residual
    (``M <- M - D_k (D_k'D_k)^-1 D_k' M``). The sweeps stop when the largest change of
    a sweep is below ``tol`` times the column's scale. Returns the transformed array
    and the number of sweeps: 1 for a single factor (exact); 2 for a balanced two-way
    panel (exact after the first sweep, which the second confirms); more on an
    unbalanced panel. ``copy=False`` transforms a float, C-ordered ``M`` in
    place (C order keeps the sparse group sums from copying).
    """
    if copy:
        out = np.array(M, dtype=float, order="C", copy=True)
    else:
        out = np.asarray(M, dtype=float, order="C")
    if out.ndim == 1:
        out = out[:, None]
    if not fe_codes or out.shape[1] == 0:
        return out, 0
    factors = level_factors(fe_codes)

    def sweep(A: np.ndarray) -> None:
        for codes, D, inv in factors:
            means = (D @ A) * inv[:, None]
            A -= means[codes]

    scale = np.maximum(np.abs(out).max(axis=0), 1.0)
    if len(factors) == 1:
        sweep(out)
        return out, 1
    if len(factors) == 2:
        two_way_within(out, factors)
        return out, 1
    active = np.arange(out.shape[1])
    for it in range(1, maxiter + 1):
        if active.size == out.shape[1]:
            before = out.copy()
            sweep(out)
            change = np.abs(out - before).max(axis=0) / scale
        else:
            sub = out[:, active]
            before = sub.copy()
            sweep(sub)
            out[:, active] = sub
            change = np.abs(sub - before).max(axis=0) / scale[active]
        # the first sweep does the bulk of the work; always check with a second one
        if it > 1:
            active = active[change > tol]
        if active.size == 0:
            return out, it
    warnings.warn(
        f"fixed-effect absorption did not converge in {maxiter} sweeps", RuntimeWarning
    )
    return out, maxiter


def two_way_within(out: np.ndarray, factors: list[Factor]) -> None:
    """Exact two-way within transformation in place, by the normal equations with the
    larger factor eliminated (replaces the alternating projections for two factors: ~4.4
    sweeps per call on the robustness grid's unbalanced panels, one pass here):
    ``M_D x = x - D_a f_a - D_b f_b`` with the effects of :class:`TwoWayEffects`."""
    effects = TwoWayEffects.of(factors)
    f_a, f_b = effects.fitted(effects.D_a @ out, effects.D_b @ out)
    out -= f_a[effects.codes_a]
    out -= f_b[effects.codes_b]


@dataclass(frozen=True)
class TwoWayEffects:
    """The least-squares effects of two factors, from the data's sums per level.

    With ``D = [D_a, D_b]`` (``n_a >= n_b`` levels), ``N_a = D_a'D_a``, ``N_b = D_b'D_b``
    (diagonal counts) and ``C = D_a'D_b``, the fitted effects of ``x`` solve
    ``S f_b = D_b'x - C' N_a^{-1} D_a'x`` with ``S = N_b - C' N_a^{-1} C`` (the Schur
    complement, ``n_b x n_b``; singular by one per connected component of the two factors,
    so its pseudo-inverse: the fitted values ``D f`` do not depend on the normalisation)
    and ``f_a = N_a^{-1} (D_a'x - C f_b)``. Only the sums ``D_a'x`` and ``D_b'x`` enter, so a
    caller that has them another way (the wild bootstrap's cluster-by-level sums) needs no
    ``N``-row array.
    """

    codes_a: np.ndarray
    codes_b: np.ndarray
    D_a: sparse.csr_matrix
    D_b: sparse.csr_matrix
    inv_a: np.ndarray
    C: np.ndarray
    S_pinv: np.ndarray

    @classmethod
    def of(cls, factors: list[Factor]) -> TwoWayEffects:
        """From :func:`level_factors` of the two factors (either order); kept for the last
        panels by their codes (:data:`_TWO_WAY_EFFECTS`)."""
        key = tuple(codes.tobytes() for codes, _, _ in factors)
        if key in _TWO_WAY_EFFECTS:
            return _TWO_WAY_EFFECTS[key]
        (codes_a, D_a, inv_a), (codes_b, D_b, _) = sorted(factors, key=lambda f: -f[1].shape[0])
        C = (D_a @ D_b.T).toarray()
        S = np.diag(np.asarray(D_b.sum(axis=1)).ravel()) - C.T @ (C * inv_a[:, None])
        w, V = np.linalg.eigh(S)
        keep = w > 1e-10 * max(float(w.max()), 1.0)
        effects = cls(codes_a=codes_a, codes_b=codes_b, D_a=D_a, D_b=D_b, inv_a=inv_a, C=C,
                      S_pinv=(V[:, keep] / w[keep]) @ V[:, keep].T)
        if len(_TWO_WAY_EFFECTS) >= 8:
            _TWO_WAY_EFFECTS.pop(next(iter(_TWO_WAY_EFFECTS)))
        _TWO_WAY_EFFECTS[key] = effects
        return effects

    @classmethod
    def from_codes(cls, fe_codes: Sequence[np.ndarray]) -> TwoWayEffects:
        """From the two factors' level codes."""
        return cls.of(level_factors(fe_codes))

    def fitted(self, sum_a: np.ndarray, sum_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f_a, f_b)`` from ``D_a'x`` (``n_a x p``) and ``D_b'x`` (``n_b x p``)."""
        sum_a = np.asarray(sum_a)
        f_b = self.S_pinv @ (np.asarray(sum_b) - self.C.T @ (sum_a * self.inv_a[:, None]))
        f_a = (sum_a - self.C @ f_b) * self.inv_a[:, None]
        return f_a, f_b


# the effects of the panels absorbed lately, by their codes: the estimators of one panel
# (ETWFE, TWFE, their wild bootstraps) share its fixed effects
_TWO_WAY_EFFECTS: dict[tuple[bytes, ...], TwoWayEffects] = {}


def mobility_groups(a: np.ndarray, b: np.ndarray) -> int:
    """Connected components of the bipartite graph of two factors (Abowd et al. 1999)."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    adj = sparse.coo_matrix((np.ones(a.shape[0]), (a, na + b)), shape=(na + nb, na + nb))
    n_comp, _ = connected_components(adj, directed=False)
    # isolated vertices (levels with no rows) would count as components; there are none
    # because codes come from factorize on the rows used.
    return int(n_comp)


def is_nested(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True when every level of ``inner`` lies within a single level of ``outer``."""
    pairs = pd.DataFrame({"i": inner, "o": outer}).drop_duplicates()
    return bool(pairs["i"].is_unique)


def absorbed_dof(fe_codes: Sequence[np.ndarray], cluster_codes: Sequence[np.ndarray]) -> int:
    """Degrees of freedom used by the fixed effects, as Stata ``reghdfe`` counts them.

    reghdfe ``estimate_dof`` with its default ``dof(all)``: a fixed effect that is a
    cluster variable or nested within one costs nothing (its parameters are not
    estimable beyond the cluster sums; Wooldridge 2010, sec. 20.3). Of the remaining
    factors the first costs all its levels, and each later one its levels less the
    mobility groups it forms with the first (exact for two factors, the only case
    used here). So with unit and period effects and unit clusters, ``df_a = T``: the
    period effects count in full because the unit effects that would make one of them
    redundant are nested.
    """
    if len(fe_codes) > 2:
        raise NotImplementedError("at most two fixed-effect factors")
    remaining = [f for f in fe_codes if not any(is_nested(f, c) for c in cluster_codes)]
    dof = 0
    for k, codes in enumerate(remaining):
        levels = int(codes.max()) + 1
        dof += levels if k == 0 else levels - mobility_groups(remaining[0], codes)
    return dof

