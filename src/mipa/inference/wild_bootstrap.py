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
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.estimators.etwfe import EtwfeFit, etwfe_fit
from mipa.estimators.results import estimate_row
from mipa.estimators.twfe import prepare_rows as twfe_rows

__all__ = [
    "FittedContrast",
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

WildWeights = Literal["webb", "rademacher", "mammen"]
NullModel = Literal["constant", "linear"]
DEFAULT_SEED = 20260701
#: Largest |r - theta_hat| / se searched for a confidence bound before calling it unbounded.
MAX_CI_SE = 1e4
#: Bisection stops when the bracket is narrower than this many standard errors.
CI_TOL_SE = 1e-6


# --------------------------------------------------------------------------- design
@dataclass(frozen=True)
class FittedContrast:
    """A fitted fixed-effects regression and the linear combination ``w'b`` under test.

    ``contrast`` is ``w`` over the fit's kept coefficients. ``df_a`` is the absorbed
    degrees of freedom for the small-sample factor (:func:`ols.absorbed_dof`).
    """

    fit: ols.OLSFit
    contrast: np.ndarray
    fe_codes: tuple[np.ndarray, ...]
    cluster_codes: np.ndarray
    df_a: int
    n_treated_clusters: int
    label: str = "overall"

    @property
    def estimate(self) -> float:
        """``theta_hat = w'b``."""
        return float(self.contrast @ self.fit.coef[self.fit.kept])

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_codes.max()) + 1


def fit_contrast(
    y: np.ndarray,
    X: np.ndarray | sparse.spmatrix,
    fe_codes: Sequence[np.ndarray],
    cluster_codes: np.ndarray,
    contrast: np.ndarray,
    *,
    n_treated_clusters: int,
    label: str = "overall",
) -> FittedContrast:
    """Fit ``y`` on ``X`` with ``fe_codes`` absorbed and attach ``w`` (over all columns of X).

    A ``w`` that loads on a column dropped as collinear is an error (its coefficient is
    not identified). Clusters are re-coded to ``0..G-1``.
    """
    fe = tuple(np.asarray(c) for c in fe_codes)
    fit = ols.fit_within(y, X, fe)
    w = np.asarray(contrast, dtype=float)
    if w.shape != fit.kept.shape:
        raise ValueError(f"contrast has {w.shape[0]} entries, the design {fit.kept.size} columns")
    if np.any(w[~fit.kept] != 0):
        raise NotEstimable("not_identified", "the contrast loads on a coefficient dropped as collinear "
                           "with the fixed effects")
    cl, _ = ols.factorize(cluster_codes)
    return FittedContrast(
        fit=fit,
        contrast=w[fit.kept],
        fe_codes=fe,
        cluster_codes=cl,
        df_a=ols.absorbed_dof(list(fe), [cl]),
        n_treated_clusters=int(n_treated_clusters),
        label=label,
    )


def etwfe_contrasts(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str] = (),
    control_group: Literal["notyettreated", "nevertreated"] = "notyettreated",
    cohort: Literal["group", "unit"] = "group",
    rows: Sequence[tuple[str, str]] | None = None,
    unit_labels: Mapping[Any, str] | pd.Series | None = None,
) -> list[FittedContrast]:
    """The ETWFE regression of :func:`mipa.estimators.etwfe.etwfe` and some of its aggregates.

    Builds exactly the rows, design and aggregation weights of ``etwfe`` (same options),
    fits once, and returns one contrast per estimate row ``(aggregation, scope)`` in
    ``rows`` (default: ``("simple", "overall")`` and every ``group`` row but the group
    overall): ``w = W_row @ grad`` with ``W_row`` the row's weights over cells and
    ``grad`` the cells' gradient in the kept coefficients (identity without covariates).
    So each ``estimate`` and cluster standard error equal that row of
    ``etwfe(...).estimates``. Clusters = units; ``n_treated_clusters`` counts the treated
    units behind the row. With ``cohort="unit"`` the ``group`` rows are the countries.
    A row with no estimate (no observed post cell, or no identified cell: the same rows
    ``etwfe`` reports as not estimable) is a :class:`~mipa.estimability.NotEstimable` in
    its place; unidentified cells are left out of every aggregate, as in ``etwfe``.
    """
    fit = etwfe_fit(
        panel, outcome=outcome, unit=unit, period=period, first_treat=first_treat, covariates=covariates,
        control_group=control_group, cohort=cohort, unit_labels=unit_labels,
    )
    return fit_contrasts(fit, rows)


def fit_contrasts(fit: EtwfeFit, rows: Sequence[tuple[str, str]] | None = None) -> list[FittedContrast]:
    """:func:`etwfe_contrasts` of an ETWFE fit already made (:func:`mipa.estimators.etwfe.etwfe_fit`)."""
    meta, W, _, _ = fit.aggregation
    grad = fit.gradient
    if rows is None:
        rows = [("simple", "overall")] + [
            ("group", m["scope"]) for m in meta if m["aggregation"] == "group" and m["scope"] != "overall"
        ]
    out: list[FittedContrast | NotEstimable] = []
    for aggregation, scope in rows:
        hits = [k for k, m in enumerate(meta) if m["aggregation"] == aggregation and m["scope"] == scope]
        if len(hits) > 1:
            raise KeyError(f"more than one ETWFE estimate row ({aggregation!r}, {scope!r})")
        if not hits:
            out.append(NotEstimable("no_post_treatment_data", f"{fit.outcome} has no observed post-treatment "
                                    f"cell for {scope}"))
            continue
        w_cells = W[hits[0]]
        if not np.isfinite(w_cells).all():
            out.append(NotEstimable("not_identified", f"no cell of {scope}'s {aggregation} effect is identified"))
            continue
        used = w_cells != 0
        out.append(
            FittedContrast(
                fit=fit.ols,
                contrast=w_cells[used] @ grad[used],
                fe_codes=fit.fe_codes,
                cluster_codes=fit.unit_codes,
                df_a=fit.df_a,
                n_treated_clusters=int(meta[hits[0]]["n_treated_clusters"]),
                label=scope,
            )
        )
    return out


def etwfe_contrast(
    panel: pd.DataFrame,
    *,
    aggregation: str = "simple",
    scope: str = "overall",
    **options: Any,
) -> FittedContrast:
    """One aggregate ``(aggregation, scope)`` of ETWFE; options as :func:`etwfe_contrasts`.
    Raises :class:`~mipa.estimability.NotEstimable` when that aggregate has no estimate."""
    out = etwfe_contrasts(panel, rows=[(aggregation, scope)], **options)[0]
    if isinstance(out, NotEstimable):
        raise out
    return out


def twfe_contrast(
    panel: pd.DataFrame, *, outcome: str, unit: str, period: str, treatment: str = "mipa"
) -> FittedContrast:
    """The classic TWFE coefficient of :func:`mipa.estimators.twfe.twfe` (one treatment).

    Same rows as ``twfe`` (missing outcome or treatment dropped, singletons dropped);
    ``w`` picks the treatment coefficient; clusters = units.
    """
    df, _ = twfe_rows(panel, outcome=outcome, unit=unit, period=period, treatments=[treatment])
    u, _ = ols.factorize(df[unit].to_numpy())
    t, _ = ols.factorize(df[period].to_numpy())
    d = df[treatment].to_numpy(dtype=float)
    treated = int(df.loc[d != 0, unit].nunique())
    return fit_contrast(
        df[outcome].to_numpy(dtype=float), d[:, None], [u, t], u, np.ones(1),
        n_treated_clusters=treated,
    )


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


def _cluster_sum(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Row sums within clusters: ``G x p`` (or length ``G`` for a vector)."""
    ind = sparse.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_clusters, codes.size)
    )
    return np.asarray(ind @ values)


def _restricted_residuals(fc: FittedContrast, null_model: NullModel) -> tuple[np.ndarray, np.ndarray]:
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


def bootstrap_pieces(
    fc: FittedContrast, *, restricted: bool = True, null_model: NullModel = "constant"
) -> BootstrapPieces:
    """Precompute ``S0, S1, K0, K1`` (RNMW 2019's algorithm; formulas in the module docstring).

    Cost: one absorption of the ``N x G`` matrix ``[z 1_g]`` and a few ``N x k`` products,
    once per fitted regression. ``restricted=False`` gives the WCU pieces (``S1 = K1 = 0``);
    ``null_model`` chooses the restricted fit (:func:`_restricted_residuals`).
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
        u0, u1 = _restricted_residuals(fc, null_model)
    else:
        u0 = e
        u1 = np.zeros_like(e)
    # M_D(z 1_g) for all g at once (exact: same alternating projections as the fit)
    Zg = np.zeros((z.size, G))
    Zg[np.arange(z.size), codes] = z
    if fc.fe_codes:
        Zg, _ = ols.absorb(Zg, fc.fe_codes, copy=False)
    Zx = _cluster_sum(Xt * z[:, None], codes, G)  # G x k: sum_{i in g} z_i X~_i
    ZxA = Zx @ fit.bread

    def pieces(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = _cluster_sum(z * u, codes, G)
        first = _cluster_sum(Zg * u[:, None], codes, G).T  # [g, h] = sum_{j in h} M_D(z1_g)_j u_j
        Xu = _cluster_sum(Xt * u[:, None], codes, G)  # G x k
        return S, first - ZxA @ Xu.T

    S0, K0 = pieces(u0)
    S1, K1 = pieces(u1) if restricted else (np.zeros(G), np.zeros((G, G)))
    c = _cluster_sum(z * e, codes, G)
    _, info = ols.cluster_vcov(fit, [codes], df_a=fc.df_a, contrast=fc.contrast[None, :])
    return BootstrapPieces(
        theta=theta, c=c, S0=S0, S1=S1, K0=K0, K1=K1, q=info.small_sample_factor,
        n_obs=fit.n_obs,
    )


@dataclass(frozen=True)
class _Draws:
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


def _draws(p: BootstrapPieces, V: np.ndarray) -> _Draws:
    P0 = p.K0 @ V
    P1 = p.K1 @ V
    return _Draws(
        n0=p.S0 @ V, n1=p.S1 @ V,
        d00=(P0 * P0).sum(axis=0), d01=(P0 * P1).sum(axis=0), d11=(P1 * P1).sum(axis=0),
        q=p.q,
    )


def bootstrap_t(p: BootstrapPieces, V: np.ndarray, r: float) -> np.ndarray:
    """Bootstrap t-statistics for the null ``w'b = r`` and weight matrix ``V`` (``G x B``)."""
    return _draws(p, V).t_star(r)


def _p_value(d: _Draws, p: BootstrapPieces, r: float) -> float:
    """Symmetric bootstrap p-value ``#{|t*_b(r)| >= |t(r)|} / B``."""
    t = (p.theta - r) / p.std_error
    ts = d.t_star(r)
    ts = np.where(np.isfinite(ts), ts, 0.0)
    return float(np.mean(np.abs(ts) >= abs(t) * (1 - 1e-12)))


def _bound(d: _Draws, p: BootstrapPieces, alpha: float, direction: float) -> float:
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
        if _p_value(d, p, cand) <= alpha:
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
        if _p_value(d, p, mid) <= alpha:
            outside = mid
        else:
            inside = mid
    return 0.5 * (inside + outside)


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class WildBootstrapResult:
    """One WCR (or WCU) test and interval for ``w'b``.

    ``std_error`` is the cluster-robust standard error that studentizes ``t`` and every
    ``t*``; the interval is *not* ``estimate +- 1.96 std_error`` but the bootstrap test
    inverted. ``ci_low``/``ci_high`` are ``-inf``/``inf`` when no null value within
    ``MAX_CI_SE`` standard errors is rejected (see the module docstring: expected with
    one treated cluster).
    """

    scope: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
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
    d = _draws(pieces, V)
    se = pieces.std_error
    if not np.isfinite(se) or not np.isfinite(pieces.theta):
        raise NotEstimable("no_variance", "the cluster-robust standard error of the contrast is not finite")
    if se <= 1e-10 * max(1.0, abs(pieces.theta)):
        raise NotEstimable("constant_outcome", "the contrast has (numerically) zero variance: the outcome does not "
                           "vary where the effect is identified")
    p_null = _p_value(d, pieces, null)
    if ci and se > 0:
        lo = _bound(d, pieces, alpha, -1.0)
        hi = _bound(d, pieces, alpha, 1.0)
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
