"""Fixed-effect OLS kept by hand: the Monte Carlo and randomization tests refit it thousands of times, and it runs 2-3x faster than pyfixest feols on the same panel (make bench); the numbers equal feols to 1e-7 (tests).

Shared least-squares machinery: OLS with fixed effects absorbed, and robust covariances.

Private to :mod:`mipa.estimators` (other packages import :mod:`mipa.estimators.ols`).
Everything here works on plain numpy arrays; the estimator modules
(:mod:`~mipa.estimators.etwfe`, :mod:`~mipa.estimators.twfe`) build the design and turn
the results into tidy tables.

Model
-----
``y = X b + D a + e`` where ``D`` holds one or more sets of fixed-effect dummies (unit,
period). By Frisch-Waugh-Lovell, ``b`` is OLS of ``M_D y`` on ``M_D X`` with ``M_D`` the
annihilator of ``D``, applied by :func:`mipa.estimators.fixed_effects.absorb` (which also
holds the factor codes, the singleton rule and the degrees of freedom of the fixed effects).

Covariances (all sandwiches ``V = B M B`` with bread ``B = (X~'X~)^-1`` and
within-transformed regressors ``X~`` and residuals ``e``):

* cluster-robust, one- or multi-way (Cameron, Gelbach & Miller 2011, "Robust inference
  with multiway clustering", JBES 29(2)): ``M = sum over non-empty subsets S of the
  cluster variables of (-1)^(|S|+1) M_S``, where ``M_S`` is the meat clustered on the
  intersection of the variables in ``S``; small-sample factor as Stata ``reghdfe``
  (Correia), ``q = (N-1)/(N-K) * G_min/(G_min-1)``, with ``K`` the regressors plus the
  fixed-effect degrees of freedom *not nested* in a cluster variable (see
  :func:`absorbed_dof`; ``K`` gets one more when every fixed effect is nested, to count
  the intercept), and ``G_min`` the smallest
  number of clusters. A multi-way ``V`` that is not positive semi-definite is repaired as
  reghdfe does (eigenvalues below zero set to zero; CGM 2011, section 2.3) and flagged.
* Driscoll & Kraay (1998, REStat 80(4)): Newey-West on the period sums
  ``h_t = sum_i x~_it e_it``, ``M = G_0 + sum_{l=1}^{L} (1 - l/(L+1)) (G_l + G_l')`` with
  ``G_l = sum_t h_t h_{t-l}'``, default ``L = floor(4 (T/100)^(2/9))`` as Stata ``xtscc``
  (Hoechle 2007, SJ 7(3)). Small-sample factor ``(N-1)/(N-K) * T/(T-1)`` (periods as
  clusters, as reghdfe's ``vce(dkraay)``), with ``K`` the regressors (period dummies
  included) plus the intercept, the unit effects not counted (``xtscc, fe``);
  inference uses t with ``T-1`` degrees of freedom.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats

from mipa.estimators.fixed_effects import (
    FE_MAXITER,
    FE_TOL,
    ClusterSums,
    TwoWayEffects,
    absorb,
    absorbed_dof,
    drop_singletons,
    factorize,
    indicator,
    is_nested,
    level_factors,
)

__all__ = [
    "COLLINEAR_TOL",
    "FE_MAXITER",
    "FE_TOL",
    "ClusterSums",
    "OLSFit",
    "TwoWayEffects",
    "VcovInfo",
    "absorb",
    "absorbed_dof",
    "cluster_small_sample_factor",
    "cluster_vcov",
    "default_dk_lags",
    "drop_singletons",
    "driscoll_kraay_vcov",
    "factorize",
    "fit_within",
    "independent_columns",
    "intersection_codes",
    "is_nested",
    "level_factors",
    "wald_ci",
]

#: Relative residual variance below which a regressor counts as collinear.
COLLINEAR_TOL = 1e-9


# --------------------------------------------------------------------------- OLS
@dataclass(frozen=True)
class OLSFit:
    """OLS on within-transformed data.

    ``coef`` has one entry per column of the design (NaN where the column was dropped
    as collinear); the other arrays refer to the kept columns only.
    """

    coef: np.ndarray
    kept: np.ndarray  # bool mask over the design's columns
    resid: np.ndarray  # within residuals e = y~ - X~ b
    x_tilde: np.ndarray  # within-transformed kept regressors, N x rank
    bread: np.ndarray  # (X~'X~)^-1, rank x rank
    n_obs: int
    rank: int
    fe_sweeps: int


def independent_columns(
    gram: np.ndarray, raw_sq: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns kept in order, dropping any that is (near) a combination of earlier ones.

    Sequential Cholesky with skipping on the scaled Gram matrix ``C = S^-1 gram S^-1``
    (``S`` = column norms), like Stata's ``invsym`` sweep that reghdfe uses: the later of
    two collinear columns is dropped. A column whose within-transformed sum of squares
    is below ``tol`` times its raw sum of squares is absorbed by the fixed effects and
    dropped first. Fast path: one Cholesky when no pivot falls below ``tol``.

    Returns the mask, the inverse ``L^-1`` of the lower Cholesky factor of ``C``
    restricted to the kept columns, and their scales ``S``; so
    ``gram_kept^-1 = S^-1 L^-T L^-1 S^-1``. (numpy's LAPACK only: scipy ships a second
    OpenBLAS whose threads fight numpy's on a busy machine.)
    """
    p = gram.shape[0]
    diag = np.diag(gram).copy()
    usable = (diag > tol * np.maximum(raw_sq, np.finfo(float).tiny)) & (diag > 0)
    d = np.sqrt(np.where(usable, diag, 1.0))
    C = gram / np.outer(d, d)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return usable, np.zeros((0, 0)), np.zeros(0)
    try:
        L = np.linalg.cholesky(C[np.ix_(idx, idx)])
        if (np.diag(L) ** 2).min() > tol:
            return usable, np.linalg.solve(L, np.eye(idx.size)), d[usable]
    except np.linalg.LinAlgError:
        pass
    # slow path: grow L^-1 one column at a time, skipping dependent columns
    keep: list[int] = []
    Linv = np.zeros((idx.size, idx.size))
    for j in idx:
        k = len(keep)
        l = Linv[:k, :k] @ C[keep, j] if k else np.zeros(0)
        r = C[j, j] - l @ l
        if r > tol:
            root = np.sqrt(r)
            Linv[k, :k] = -(l @ Linv[:k, :k]) / root
            Linv[k, k] = 1.0 / root
            keep.append(int(j))
    mask = np.zeros(p, dtype=bool)
    mask[keep] = True
    k = len(keep)
    return mask, Linv[:k, :k].copy(), d[mask]


def fit_within(
    y: np.ndarray,
    X: np.ndarray | sparse.spmatrix,
    fe_codes: Sequence[np.ndarray],
    *,
    tol: float = FE_TOL,
    collinear_tol: float = COLLINEAR_TOL,
) -> OLSFit:
    """OLS of ``y`` on ``X`` with the fixed effects ``fe_codes`` absorbed.

    ``b = (X~'X~)^-1 X~'y~`` with ``~`` the within transformation of :func:`absorb`.
    Because the transformation is a symmetric idempotent projection, ``X~'X~ = X'X~``
    and ``X~'y~ = X'y~``; with a sparse ``X`` (cell dummies) these products cost only
    the non-zeros of ``X``. Collinear columns (including ones the fixed effects absorb)
    are dropped and get a NaN coefficient, as ``reghdfe`` omits them.
    """
    y = np.asarray(y, dtype=float)
    is_sparse = sparse.issparse(X)
    if is_sparse:
        Xs = sparse.csc_matrix(X, dtype=float)
        n, p = Xs.shape
        raw_sq = np.asarray(Xs.multiply(Xs).sum(axis=0)).ravel()
    else:
        Xd = np.asarray(X, dtype=float)
        if Xd.ndim == 1:
            Xd = Xd[:, None]
        n, p = Xd.shape
        raw_sq = (Xd**2).sum(axis=0)
    if is_sparse:
        coo = Xs.tocoo()
        X_t = np.zeros((n, p))
        X_t[coo.row, coo.col] = coo.data
    else:
        X_t = np.array(Xd, dtype=float, order="C", copy=True)
    X_t, sweeps = absorb(X_t, fe_codes, tol=tol, copy=False)
    y_t, _ = absorb(y, fe_codes, tol=tol)
    y_t = y_t[:, 0]
    if is_sparse:
        gram = np.asarray(Xs.T @ X_t)
        xty = np.asarray(Xs.T @ y_t).ravel()
    else:
        gram = X_t.T @ X_t
        xty = X_t.T @ y_t
    gram = (gram + gram.T) / 2
    if p:
        kept, Linv, scale = independent_columns(gram, raw_sq, collinear_tol)
    else:
        kept, Linv, scale = np.zeros(0, bool), np.zeros((0, 0)), np.zeros(0)
    Xk = X_t[:, kept]
    coef = np.full(p, np.nan)
    if kept.any():
        # gram_kept^-1 = S^-1 C^-1 S^-1 with C^-1 = L^-T L^-1
        c_inv = Linv.T @ Linv
        bread = c_inv / np.outer(scale, scale)
        bread = (bread + bread.T) / 2
        bk = bread @ xty[kept]
        coef[kept] = bk
        resid = y_t - Xk @ bk
    else:
        bread = np.zeros((0, 0))
        resid = y_t.copy()
    return OLSFit(
        coef=coef,
        kept=kept,
        resid=resid,
        x_tilde=Xk,
        bread=bread,
        n_obs=n,
        rank=int(kept.sum()),
        fe_sweeps=sweeps,
    )


# --------------------------------------------------------------------------- covariances
def _cluster_sums(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``G x p`` matrix of the score sums ``s_g = sum_{i in g} x~_i e_i`` per cluster."""
    return ClusterSums.of(codes, int(codes.max()) + 1)(scores)


@dataclass(frozen=True)
class VcovInfo:
    """What a covariance estimate used (for the tables and run settings)."""

    n_clusters: int  # G_min for clustering, T for Driscoll-Kraay
    df: int  # degrees of freedom of the t reference distribution
    small_sample_factor: float
    psd_fixed: bool = False
    lags: int | None = None


def _fix_psd(V: np.ndarray) -> tuple[np.ndarray, bool]:
    """Set negative eigenvalues to zero (CGM 2011, sec. 2.3; reghdfe ``fix_psd``)."""
    V = (V + V.T) / 2
    if V.size == 0:
        return V, False
    lam, U = np.linalg.eigh(V)
    if lam.min() < 0:
        lam = np.where(lam >= 0, lam, 0.0)
        return (U * lam) @ U.T, True
    return V, False


def intersection_codes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Codes ``0..G-1`` of the combinations of several code columns, in sorted order (what
    ``factorize`` of the tuples gives), by one mixed-radix integer per row."""
    combined = np.zeros(np.asarray(columns[0]).shape[0], dtype=np.int64)
    for column in columns:
        levels, codes = np.unique(np.asarray(column), return_inverse=True)
        combined = combined * levels.size + codes.astype(np.int64)
    return np.unique(combined, return_inverse=True)[1].astype(np.int64)


def cluster_small_sample_factor(fit: OLSFit, n_clusters: int, *, df_a: int) -> float:
    """reghdfe's ``q = (N-1)/(N-K) * G/(G-1)``, ``K = rank + df_a + [df_a == 0]``
    (:func:`cluster_vcov`, with ``G`` the fewest clusters of its variables)."""
    N = fit.n_obs
    K = fit.rank + df_a + (1 if df_a == 0 else 0)
    return (N - 1) / (N - K) * n_clusters / (n_clusters - 1)


def cluster_vcov(
    fit: OLSFit,
    cluster_codes: Sequence[np.ndarray],
    *,
    df_a: int,
    contrast: np.ndarray | None = None,
    fix_psd: bool = True,
) -> tuple[np.ndarray, VcovInfo]:
    """Cluster-robust covariance, one- or multi-way, with reghdfe's small-sample factor.

    ``V = q * B (sum_S (-1)^(|S|+1) M_S) B`` over the non-empty subsets ``S`` of the
    cluster variables (CGM 2011, eq. 2.11), ``M_S = sum_g s_g s_g'`` clustered on the
    intersection of the variables in ``S``, and

    ``q = (N-1)/(N-K) * G_min/(G_min-1)``, ``K = rank + df_a + [df_a == 0]``

    (reghdfe ``reghdfe_cluster``; ``df_a`` from :func:`absorbed_dof`; the ``[df_a == 0]``
    term counts the intercept when every fixed effect is nested). With unit and period
    effects and unit clusters ``K = rank + T``, the same ``K`` as
    ``xtreg, fe vce(cluster unit)`` with period dummies and a constant.

    With ``contrast`` (``m x rank``, over the kept coefficients) the result is the
    covariance ``C V C'`` of ``C b``, computed as ``q sum_S +/- (S_S B C')'(S_S B C')``
    without forming ``V`` (cheap when there are many coefficients and few clusters).
    A multi-way result with a negative eigenvalue is repaired (negative eigenvalues set
    to zero, CGM 2011 sec. 2.3, as reghdfe does for the full ``V``) and flagged.
    """
    BC = fit.bread if contrast is None else fit.bread @ np.asarray(contrast, dtype=float).T
    scores = fit.x_tilde * fit.resid[:, None]
    V = np.zeros((BC.shape[1], BC.shape[1]))
    for size in range(1, len(cluster_codes) + 1):
        sign = 1.0 if size % 2 else -1.0
        for subset in itertools.combinations(cluster_codes, size):
            codes = subset[0] if size == 1 else intersection_codes(subset)
            A = _cluster_sums(scores, codes) @ BC
            V += sign * (A.T @ A)
    g_min = min(int(c.max()) + 1 for c in cluster_codes)
    q = cluster_small_sample_factor(fit, g_min, df_a=df_a)
    V = q * (V + V.T) / 2
    fixed = False
    if len(cluster_codes) > 1 and fix_psd:
        V, fixed = _fix_psd(V)
        if fixed:
            warnings.warn(
                "multi-way clustered covariance was not positive semi-definite; negative "
                "eigenvalues set to zero (Cameron, Gelbach & Miller 2011; as reghdfe)",
                RuntimeWarning,
            )
    return V, VcovInfo(n_clusters=g_min, df=g_min - 1, small_sample_factor=q, psd_fixed=fixed)


def default_dk_lags(n_periods: int) -> int:
    """Stata ``xtscc`` default lag length ``floor(4 (T/100)^(2/9))`` (Hoechle 2007)."""
    return int(np.floor(4 * (n_periods / 100) ** (2 / 9)))


def driscoll_kraay_vcov(
    fit: OLSFit,
    time_codes: np.ndarray,
    *,
    lags: int | None = None,
    extra_k: int,
) -> tuple[np.ndarray, VcovInfo]:
    """Driscoll-Kraay covariance (Newey-West over the period sums of the scores).

    ``h_t = sum_i x~_it e_it``; ``S = G_0 + sum_{l=1}^{L} (1 - l/(L+1)) (G_l + G_l')``,
    ``G_l = sum_{t>l} h_t h_{t-l}'``; ``V = q B S B`` with
    ``q = (N-1)/(N-K) * T/(T-1)``, ``K = rank + extra_k``; with period effects absorbed
    the caller passes ``extra_k = T`` (``T - 1`` period dummies and the intercept of
    ``xtscc y x i.period, fe``, whose within regression does not count the unit effects).
    Periods are taken in the order of their codes (sorted period values), so the lag
    structure assumes consecutive periods.
    """
    T = int(time_codes.max()) + 1
    L = default_dk_lags(T) if lags is None else int(lags)
    if not 0 <= L < T:
        raise ValueError(f"Driscoll-Kraay lag length must be in [0, {T - 1}], got {L}")
    scores = fit.x_tilde * fit.resid[:, None]
    h = indicator(time_codes, T) @ scores  # T x rank, ordered by period
    S = h.T @ h
    for lag in range(1, L + 1):
        w = 1.0 - lag / (L + 1)
        G = h[lag:].T @ h[:-lag]
        S += w * (G + G.T)
    N = fit.n_obs
    K = fit.rank + extra_k
    q = (N - 1) / (N - K) * T / (T - 1)
    V = q * fit.bread @ S @ fit.bread
    return (V + V.T) / 2, VcovInfo(n_clusters=T, df=T - 1, small_sample_factor=q, lags=L)


# --------------------------------------------------------------------------- inference
def wald_ci(
    estimate: np.ndarray | float,
    std_error: np.ndarray | float,
    *,
    df: float | None,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wald interval and two-sided p-value from a t (``df``) or normal (``df=None``) law.

    ``ci = est +/- c * se`` with ``c`` the ``1 - alpha/2`` quantile;
    ``p = 2 * P(|T| > |est/se|)``. Stata reports clustered regressions with t on
    ``G-1`` degrees of freedom (``regress``/``xtreg``/``reghdfe``, hence ``jwdid``).
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    dist = stats.norm if df is None else stats.t(df)
    c = dist.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * dist.sf(np.abs(est / se))
    return est - c * se, est + c * se, p
