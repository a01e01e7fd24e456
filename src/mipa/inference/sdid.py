r"""Synthetic difference-in-differences (SDID) for one treated unit or a block sharing a start.

References
----------
* Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021),
  "Synthetic difference-in-differences", American Economic Review 111(12), 4088-4118
  (AAHIW 2021): Algorithm 1 (estimator), Algorithm 4 (placebo variance), Table 1
  (California Proposition 99).
* R package ``synthdid`` (Hirshberg), ``synthdid_estimate``, ``sc_estimate``,
  ``did_estimate``, ``sc.weight.fw``, ``fw.step``, ``placebo_se``: this module reproduces
  its computations (defaults, solver, stopping rule, sparsification, placebo variance).
* Clarke, D., Pailanir, D., Athey, S. and Imbens, G. (2023), "Synthetic difference in
  differences estimation", Stata Journal (Stata ``sdid``): staggered adoption as a
  weighted average of per-cohort SDID estimates.

Estimator (AAHIW 2021, Algorithm 1; one block of ``N1`` treated units, ``N0`` controls,
``T0`` pre- and ``T1`` post-periods; rows 1..N0 of ``Y`` are the controls)
------------------------------------------------------------------------------
* Noise level ``sigma = sd(first differences of Y over controls x pre-periods)``;
  ``zeta_omega = (N1 T1)^(1/4) sigma``, ``zeta_lambda = 1e-6 sigma``;
  ``min_decrease = 1e-5 sigma``.
* Collapsed form ``Yc`` (``(N0+1) x (T0+1)``): controls' pre-period rows, their post mean
  in the last column; last row the treated units' mean.
* Unit weights ``omega`` (simplex, length ``N0``) with an intercept ``omega_0``:
  ``min ||omega_0 + Yc[:N0, :T0]' omega - Yc[N0, :T0]||^2 / T0 + zeta_omega^2 ||omega||^2``.
* Time weights ``lambda`` (simplex, length ``T0``) with intercept:
  ``min ||lambda_0 + Yc[:N0, :T0] lambda - Yc[:N0, T0]||^2 / N0 + zeta_lambda^2 ||lambda||^2``.
* ``tau = (mean_treated - omega' Y_controls) (post mean - lambda' pre)``, i.e.
  ``tau = [-omega, 1/N1]' Y [-lambda, 1/T1]``.

Solver (``sc.weight.fw``): the intercept is removed by centring the columns of
``[A | b]`` over rows; Frank-Wolfe on ``f(x) = ||A x - b||^2 + eta ||x||^2``,
``eta = rows * zeta^2``, over the simplex: vertex ``i = argmin grad``, exact line search
``step = -grad'd / (||A d||^2 + eta ||d||^2)`` clipped to ``[0, 1]``. Start: uniform (or
the weights given). Stop after ``max_iter`` steps or when an iteration lowers
``zeta^2 ||x||^2 + ||A x - b||^2 / rows`` by less than ``min_decrease^2``. As
``synthdid``: a first run of at most 100 steps, then ``sparsify`` (weights
``<= max/4`` set to zero, renormalised), then a second run of at most ``max_iter = 1e4``
steps from there. The iterations are vectorised across problems of one shape (the
placebo replications) with the Gram matrix ``A'A`` maintained incrementally; each
problem follows its own stopping rule, so results equal one-at-a-time runs (up to
rounding).

Variants: ``method="sc"`` (``sc_estimate``: ``lambda = 0``, no unit intercept,
``eta_omega = 1e-6``) and ``method="did"`` (uniform fixed weights).

Placebo standard error (AAHIW 2021, Algorithm 4; ``synthdid`` ``vcov(method="placebo")``)
------------------------------------------------------------------------------------------
With only controls: permute the ``N0`` controls (``default_rng(seed)``), let the last
``N1`` play treated, re-estimate with the original ``zeta``s and ``min_decrease`` (weights
re-solved, started from the original ``lambda`` and the renormalised original ``omega``
of the remaining controls, as ``placebo_se``), ``replications = 200`` times;
``se = sqrt((R-1)/R) sd(tau*)``; interval ``tau +- z_{1-alpha/2} se`` (as ``synthdid``'s
``confint``/summary). It requires ``N0 > N1`` and assumes homoskedastic errors across
units (AAHIW 2021, sec. 5): with one treated unit it is the only option they offer.

Staggered starts and gaps (:func:`sdid_by_unit`)
-------------------------------------------------
For each treated unit ``j`` (first period ``g_j``): ``Y`` = the never-treated units plus
``j``, all periods of the window, ``T0`` = the periods before ``g_j`` (other treated units
never enter, so later partners cannot serve as controls). The overall effect is the
average of the unit estimates weighted by their post-periods ``T1_j`` (the treated cells,
as Stata ``sdid`` weights cohorts); its placebo SE repeats, per replication, the
per-unit placebo for every unit with one shared permutation (``J`` placebo units drawn
from the controls, each given one treated unit's start; Clarke et al. 2023).

SDID needs a balanced block: every control and the treated unit observed in every period.
``on_gaps="skip"`` (default) returns the unit's row with NaN and the reason when any
needed cell is missing (e.g. ``lead_time_days``, NULL in months without confirmations:
SDID is then not run for that outcome); ``on_gaps="drop_controls"`` drops the controls
with a gap (recorded; selection on the outcome's observation pattern) and skips only
when the treated unit has a gap or fewer than ``min_controls`` controls remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimators.results import ESTIMATE_COLUMNS, estimate_row
from mipa.inference.randomization import Estimator, PanelArrays

__all__ = [
    "SdidFit",
    "SdidRow",
    "frank_wolfe",
    "placebo_estimates",
    "placebo_permutations",
    "placebo_se",
    "rows_frame",
    "sdid_by_unit",
    "sdid_estimate",
    "sdid_estimator",
    "sparsify",
]

Method = Literal["sdid", "sc", "did"]
INFERENCE = "sdid_placebo"
DEFAULT_SEED = 20260701
MAX_ITER = 10_000
MAX_ITER_PRE_SPARSIFY = 100


# --------------------------------------------------------------------------- solver
def sparsify(x: np.ndarray) -> np.ndarray:
    """``synthdid``'s ``sparsify_function``: zero the weights ``<= max/4``, renormalise (rows)."""
    x = np.array(x, dtype=float, copy=True)
    x[x <= x.max(axis=-1, keepdims=True) / 4] = 0.0
    return x / x.sum(axis=-1, keepdims=True)


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
    (``grad <- (1-s) grad + s (G_i - c + eta e_i)``); ``x'Gx``, ``||x||^2`` and ``||Ax - b||^2`` follow
    exact scalar recursions (``||A_i - Ax||^2 = G_ii - 2 (Gx)_i + x'Gx`` and
    ``(Ax - b)'(A_i - Ax) = grad_i - grad'x - eta (x_i - ||x||^2)``), so the ``n``-vectors
    are never touched after the start.
    """
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    P, n, k = A.shape
    if intercept:
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    zeta2 = np.broadcast_to(np.asarray(zeta, dtype=float) ** 2, (P,)).copy()
    tol = np.broadcast_to(np.asarray(min_decrease, dtype=float) ** 2, (P,)).copy()
    x0 = np.asarray(x0, dtype=float)
    At = A.transpose(0, 2, 1)
    G = At @ A
    c = np.einsum("pkn,pn->pk", At, b)
    e0 = np.einsum("pnk,pk->pn", A, x0) - b
    e2 = np.einsum("pn,pn->p", e0, e0)
    if P == 1:
        x, it = _fw_one(G[0], c[0], float(e2[0]), n, float(zeta2[0]), x0[0], float(tol[0]), max_iter)
        return x[None], np.array([it])
    return _fw_batch(G, c, e2, n, zeta2, x0, tol, max_iter)


def _fw_one(
    G: np.ndarray, c: np.ndarray, e2: float, n: int, zeta2: float, x0: np.ndarray, tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """One problem of :func:`frank_wolfe` (plain vectors and Python floats)."""
    eta = n * zeta2
    Gc = G - c[None, :]  # row i: G_i - c
    Gc[np.diag_indices_from(Gc)] += eta  # row i: G_i - c + eta e_i
    diag = np.diag(G).tolist()
    cl = c.tolist()
    x = x0.copy()
    grad = G @ x - c + eta * x  # half gradient, kept up to date
    xGx = float(x @ G @ x)
    xx = float(x @ x)
    prev = np.inf
    t = 0
    for t in range(1, max_iter + 1):
        i = int(grad.argmin())
        xi = float(x[i])
        step = 0.0
        if xi != 1.0:
            gi = float(grad[i])
            num = gi - float(grad @ x)
            gxi = gi - eta * xi + cl[i]  # (G x)_i
            dd = diag[i] - 2 * gxi + xGx
            den = dd + eta * (xx - 2 * xi + 1)
            if den > 0:
                step = min(1.0, max(0.0, -num / den))
        if step:
            q = 1 - step
            e2 += 2 * step * (num - eta * (xi - xx)) + step * step * dd
            xGx = q * q * xGx + 2 * step * q * gxi + step * step * diag[i]
            xx = q * q * xx + 2 * step * q * xi + step * step
            x *= q
            x[i] += step
            grad *= q
            grad += step * Gc[i]
        val = zeta2 * xx + e2 / n
        if t >= 2 and not prev - val > tol:
            break
        prev = val
    return x, t


def _fw_batch(
    G: np.ndarray, c: np.ndarray, e2: np.ndarray, n: int, zeta2: np.ndarray, x0: np.ndarray,
    tol: np.ndarray, max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Several problems of :func:`frank_wolfe` at once; stopped problems are compacted away."""
    P, k, _ = G.shape
    eta = n * zeta2
    Gc = G - c[:, None, :]
    Gc[:, np.arange(k), np.arange(k)] += eta[:, None]  # row i: G_i - c + eta e_i
    diag = np.diagonal(G, axis1=1, axis2=2).copy()
    x = np.array(x0, dtype=float, copy=True)
    Gx = np.einsum("pjk,pk->pj", G, x)
    grad = Gx - c + eta[:, None] * x  # half gradient, kept up to date
    xGx = np.einsum("pk,pk->p", x, Gx)
    xx = np.einsum("pk,pk->p", x, x)
    e2 = np.array(e2, dtype=float, copy=True)
    iters = np.zeros(P, dtype=np.int64)
    act = np.arange(P)
    wGc, wdiag, wc, wx, wg = Gc, diag, c, x, grad
    weta, wz2, wtol = eta, zeta2, tol
    wxGx, wxx, we2 = xGx, xx, e2
    wprev = np.full(P, np.inf)
    for t in range(1, max_iter + 1):
        r = np.arange(act.size)
        i = wg.argmin(axis=1)
        xi = wx[r, i]
        gi = wg[r, i]
        num = gi - np.einsum("pk,pk->p", wg, wx)
        gxi = gi - weta * xi + wc[r, i]
        dd = wdiag[r, i] - 2 * gxi + wxGx
        den = dd + weta * (wxx - 2 * xi + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where((xi == 1.0) | (den <= 0), 0.0, np.clip(-num / den, 0.0, 1.0))
        q = 1 - step
        we2 = we2 + 2 * step * (num - weta * (xi - wxx)) + step * step * dd
        wxGx = q * q * wxGx + 2 * step * q * gxi + step * step * wdiag[r, i]
        wxx = q * q * wxx + 2 * step * q * xi + step * step
        wx *= q[:, None]
        wx[r, i] += step
        wg *= q[:, None]
        wg += step[:, None] * wGc[r, i]
        val = wz2 * wxx + we2 / n
        done = ~(wprev - val > wtol) if t >= 2 else np.zeros(act.size, dtype=bool)
        wprev = val
        iters[act] = t
        if t == max_iter:
            x[act] = wx
            break
        if done.any():
            x[act] = wx
            keep = ~done
            act = act[keep]
            if act.size == 0:
                break
            wGc, wdiag, wc, wx, wg = wGc[keep], wdiag[keep], wc[keep], wx[keep], wg[keep]
            weta, wz2, wtol, wprev = weta[keep], wz2[keep], wtol[keep], wprev[keep]
            wxGx, wxx, we2 = wxGx[keep], wxx[keep], we2[keep]
    return x, iters


def _two_stage(
    A: np.ndarray, b: np.ndarray, zeta: np.ndarray | float, x0: np.ndarray, *,
    intercept: bool, min_decrease: np.ndarray | float, max_iter: int, use_sparsify: bool,
) -> np.ndarray:
    """``synthdid``'s weight fit: ``max_iter_pre_sparsify`` steps, sparsify, then ``max_iter``."""
    opts = dict(intercept=intercept, min_decrease=min_decrease)
    if not use_sparsify:
        return frank_wolfe(A, b, zeta, x0, max_iter=max_iter, **opts)[0]
    x, _ = frank_wolfe(A, b, zeta, x0, max_iter=MAX_ITER_PRE_SPARSIFY, **opts)
    return frank_wolfe(A, b, zeta, sparsify(x), max_iter=max_iter, **opts)[0]


# --------------------------------------------------------------------------- estimate
@dataclass(frozen=True)
class SdidFit:
    """An SDID (or SC / DID) estimate with its weights and tuning.

    ``omega``: control weights (length ``N0``); ``lambda_``: pre-period weights (``T0``).
    """

    estimate: float
    omega: np.ndarray = field(repr=False)
    lambda_: np.ndarray = field(repr=False)
    n_control: int
    n_treated: int
    n_pre: int
    n_post: int
    noise_level: float
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    method: str
    omega_intercept: bool
    lambda_intercept: bool


def _noise_level(Y: np.ndarray, n0: int, t0: int) -> float:
    """``sd(apply(Y[1:N0, 1:T0], 1, diff))``: sd (n-1) of the controls' pre-period first differences."""
    d = np.diff(Y[:n0, :t0], axis=1)
    return float(np.std(d, ddof=1)) if d.size > 1 else 0.0


def _collapsed(Y: np.ndarray, n0: int, t0: int) -> np.ndarray:
    """``collapsed.form``: pre-periods + post mean; controls + treated mean. Works on stacks."""
    top = np.concatenate([Y[..., :n0, :t0], Y[..., :n0, t0:].mean(axis=-1, keepdims=True)], axis=-1)
    tr = Y[..., n0:, :]
    bottom = np.concatenate(
        [tr[..., :t0].mean(axis=-2, keepdims=True), tr[..., t0:].mean(axis=(-2, -1))[..., None, None]],
        axis=-1,
    )
    return np.concatenate([top, bottom], axis=-2)


def _tau(Y: np.ndarray, n0: int, t0: int, omega: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``[-omega, 1/N1]' Y [-lambda, 1/T1]`` for a stack of problems."""
    n1, t1 = Y.shape[-2] - n0, Y.shape[-1] - t0
    wu = np.concatenate([-omega, np.full(omega.shape[:-1] + (n1,), 1.0 / n1)], axis=-1)
    wt = np.concatenate([-lam, np.full(lam.shape[:-1] + (t1,), 1.0 / t1)], axis=-1)
    return np.einsum("...n,...nt,...t->...", wu, Y, wt)


@dataclass(frozen=True)
class _Tuning:
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    omega_intercept: bool
    lambda_intercept: bool
    fixed_omega: bool
    fixed_lambda: bool


def _solve(
    Y: np.ndarray, n0: int, t0: int, tune: _Tuning, omega0: np.ndarray, lambda0: np.ndarray,
    *, max_iter: int, use_sparsify: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights for a stack ``Y`` (``P x N x T``) from the starting / fixed weights."""
    Yc = _collapsed(Y, n0, t0)
    lam = lambda0
    if not tune.fixed_lambda:
        lam = _two_stage(
            Yc[:, :n0, :t0], Yc[:, :n0, t0], tune.zeta_lambda, lambda0,
            intercept=tune.lambda_intercept, min_decrease=tune.min_decrease,
            max_iter=max_iter, use_sparsify=use_sparsify,
        )
    om = omega0
    if not tune.fixed_omega:
        om = _two_stage(
            Yc[:, :n0, :t0].transpose(0, 2, 1), Yc[:, n0, :t0], tune.zeta_omega, omega0,
            intercept=tune.omega_intercept, min_decrease=tune.min_decrease,
            max_iter=max_iter, use_sparsify=use_sparsify,
        )
    return om, lam


def sdid_estimate(
    Y: np.ndarray,
    n0: int,
    t0: int,
    *,
    method: Method = "sdid",
    max_iter: int = MAX_ITER,
    use_sparsify: bool = True,
) -> SdidFit:
    """SDID (``synthdid_estimate``), SC (``sc_estimate``) or DID (``did_estimate``) on ``Y``.

    ``Y``: ``N x T`` with the ``n0`` control rows first and the ``t0`` pre-periods first;
    no missing values. Defaults as ``synthdid`` (module docstring).
    """
    Y = np.asarray(Y, dtype=float)
    N, T = Y.shape
    if not (0 < n0 < N and 0 < t0 < T):
        raise ValueError("need at least one control, treated unit, pre- and post-period")
    if not np.isfinite(Y).all():
        raise ValueError("Y has missing values: SDID needs a balanced block")
    n1, t1 = N - n0, T - t0
    sigma = _noise_level(Y, n0, t0)
    eta_omega = {"sdid": (n1 * t1) ** 0.25, "sc": 1e-6, "did": (n1 * t1) ** 0.25}[method]
    tune = _Tuning(
        zeta_omega=eta_omega * sigma,
        zeta_lambda=1e-6 * sigma,
        min_decrease=1e-5 * sigma,
        omega_intercept=method != "sc",
        lambda_intercept=True,
        fixed_omega=method == "did",
        fixed_lambda=method in ("sc", "did"),
    )
    omega0 = np.full((1, n0), 1.0 / n0)
    lambda0 = np.zeros((1, t0)) if method == "sc" else np.full((1, t0), 1.0 / t0)
    om, lam = _solve(Y[None], n0, t0, tune, omega0, lambda0, max_iter=max_iter, use_sparsify=use_sparsify)
    return SdidFit(
        estimate=float(_tau(Y, n0, t0, om[0], lam[0])),
        omega=om[0],
        lambda_=lam[0],
        n_control=n0,
        n_treated=n1,
        n_pre=t0,
        n_post=t1,
        noise_level=sigma,
        zeta_omega=tune.zeta_omega,
        zeta_lambda=tune.zeta_lambda,
        min_decrease=tune.min_decrease,
        method=method,
        omega_intercept=tune.omega_intercept,
        lambda_intercept=tune.lambda_intercept,
    )


def _tuning_of(fit: SdidFit) -> _Tuning:
    return _Tuning(
        zeta_omega=fit.zeta_omega, zeta_lambda=fit.zeta_lambda, min_decrease=fit.min_decrease,
        omega_intercept=fit.omega_intercept, lambda_intercept=fit.lambda_intercept,
        fixed_omega=fit.method == "did", fixed_lambda=fit.method in ("sc", "did"),
    )


def _sum_normalize(x: np.ndarray) -> np.ndarray:
    """``x / sum(x)`` per row, uniform where a row sums to zero (``synthdid``'s ``sum_normalize``)."""
    s = x.sum(axis=-1, keepdims=True)
    uniform = np.full_like(x, 1.0 / x.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s != 0, x / s, uniform)


def placebo_permutations(
    n_control: int, n_treated: int, *, replications: int = 200, seed: int = DEFAULT_SEED,
    exhaustive: bool = False,
) -> np.ndarray:
    """Row ``r``: an ordering of the control rows whose last ``n_treated`` play treated.

    ``exhaustive=False``: ``replications`` permutations from ``default_rng(seed)``
    (``synthdid``'s ``sample(1:N0)``). ``exhaustive=True`` (one treated unit only): every
    control plays treated exactly once (``N0`` rows, the others in their original order),
    which removes the Monte Carlo noise of the random draws: with one treated unit the
    random version only ever samples these ``N0`` placebo problems, with replacement.
    """
    if n_control <= n_treated:
        raise ValueError("the placebo standard error needs more controls than treated units")
    if exhaustive:
        if n_treated != 1:
            raise ValueError("exhaustive placebos need exactly one treated unit")
        base = np.arange(n_control)
        return np.array([np.append(np.delete(base, c), c) for c in range(n_control)])
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n_control) for _ in range(replications)])


def _placebo_taus(
    Y: np.ndarray, fit: SdidFit, perms: np.ndarray, *, max_iter: int, use_sparsify: bool,
    n_donors: int | None = None, treated_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Placebo estimates for the orderings ``perms`` of the control rows of ``Y``.

    Donors: the first ``m0`` of each ordering (``N0 - N1`` unless ``n_donors``); placebo
    treated: the last ``N1`` (or the ordering positions ``treated_rows``). Weights
    re-solved with the fit's tuning, started from its ``lambda`` and the renormalised
    ``omega`` of the donors (``synthdid``'s ``placebo_se``); all orderings in one batched
    solve per weight vector.
    """
    n0, t0 = fit.n_control, fit.n_pre
    m0 = n0 - fit.n_treated if n_donors is None else int(n_donors)
    if treated_rows is None:
        treated_rows = np.arange(n0 - fit.n_treated, n0)
    rows = np.concatenate([perms[:, :m0], perms[:, treated_rows]], axis=1)
    Yp = np.asarray(Y, dtype=float)[:n0][rows]  # R x (m0 + N1) x T
    omega0 = _sum_normalize(fit.omega[perms[:, :m0]])
    lambda0 = np.repeat(fit.lambda_[None], perms.shape[0], axis=0)
    om, lam = _solve(Yp, m0, t0, _tuning_of(fit), omega0, lambda0, max_iter=max_iter, use_sparsify=use_sparsify)
    return _tau(Yp, m0, t0, om, lam)


def placebo_estimates(
    Y: np.ndarray, fit: SdidFit, *, replications: int = 200, seed: int = DEFAULT_SEED,
    exhaustive: bool = False, max_iter: int = MAX_ITER, use_sparsify: bool = True,
) -> np.ndarray:
    """The placebo estimates of ``synthdid``'s ``placebo_se`` (AAHIW 2021, Algorithm 4).

    Orderings from :func:`placebo_permutations`; estimates from the controls only (the
    treated rows of ``Y`` never enter).
    """
    perms = placebo_permutations(
        fit.n_control, fit.n_treated, replications=replications, seed=seed, exhaustive=exhaustive
    )
    return _placebo_taus(Y, fit, perms, max_iter=max_iter, use_sparsify=use_sparsify)


def _placebo_sd(tau: np.ndarray) -> float:
    """``sqrt((R-1)/R) * sd(tau)`` (``synthdid``'s scaling: the population sd)."""
    R = tau.size
    return float(np.sqrt((R - 1) / R) * np.std(tau, ddof=1))


def placebo_se(
    Y: np.ndarray, fit: SdidFit, *, replications: int = 200, seed: int = DEFAULT_SEED,
    exhaustive: bool = False, max_iter: int = MAX_ITER, use_sparsify: bool = True,
) -> float:
    """``sqrt(vcov(fit, method="placebo"))``: ``sqrt((R-1)/R) * sd(placebo estimates)``."""
    return _placebo_sd(
        placebo_estimates(
            Y, fit, replications=replications, seed=seed, exhaustive=exhaustive,
            max_iter=max_iter, use_sparsify=use_sparsify,
        )
    )


# --------------------------------------------------------------------------- panel
@dataclass(frozen=True)
class SdidRow:
    """One SDID result row (a treated unit, or ``overall``); NaN with ``reason`` if not run."""

    scope: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int
    n_clusters: int
    n_treated_clusters: int
    n_pre: int = 0
    n_post: int = 0
    reason: str | None = None
    dropped_controls: tuple[Any, ...] = ()
    fit: SdidFit | None = field(default=None, repr=False)
    inference: str = INFERENCE

    def row(self, aggregation: str = "group") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS`."""
        return estimate_row(self, aggregation)


def _wald(est: float, se: float, alpha: float) -> tuple[float, float, float]:
    z = stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.norm.sf(abs(est / se)) if se > 0 else np.nan
    return est - z * se, est + z * se, float(p)


@dataclass(frozen=True)
class _Block:
    """The balanced matrix for one treated unit: controls first, the unit last."""

    Y: np.ndarray
    t0: int
    controls: np.ndarray  # row indices in the panel
    dropped: tuple[Any, ...]


def _block(
    pa: PanelArrays, j: int, *, on_gaps: str, min_controls: int
) -> tuple[_Block | None, str | None]:
    """Assemble unit ``j``'s SDID block, or say why it cannot be run."""
    controls = np.flatnonzero(~pa.treated)
    t0 = int(np.searchsorted(pa.periods, pa.first_treat[j]))
    if t0 < 2:
        return None, "fewer than two pre-periods"
    if not np.isfinite(pa.y[j]).all():
        return None, "treated unit has missing outcome months"
    complete = np.isfinite(pa.y[controls]).all(axis=1)
    dropped: tuple[Any, ...] = ()
    if not complete.all():
        if on_gaps == "skip":
            return None, f"{int((~complete).sum())} control units have missing outcome months"
        dropped = tuple(pa.units[controls[~complete]].tolist())
        controls = controls[complete]
    if controls.size < min_controls:
        return None, f"only {controls.size} complete control units (< {min_controls})"
    Y = np.vstack([pa.y[controls], pa.y[[j]]])
    return _Block(Y=Y, t0=t0, controls=controls, dropped=dropped), None


def sdid_by_unit(
    pa: PanelArrays,
    *,
    replications: int = 200,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.05,
    on_gaps: Literal["skip", "drop_controls"] = "skip",
    min_controls: int = 10,
    max_iter: int = MAX_ITER,
    overall: bool = True,
    exhaustive: bool = False,
    placebo_max_iter: int | None = None,
) -> list[SdidRow]:
    """SDID for each treated unit on its own start against the never-treated units.

    Unit ``j``: :func:`sdid_estimate` on the never-treated units plus ``j`` (all periods,
    ``T0`` = periods before ``j``'s start), placebo SE with ``replications`` draws from
    ``default_rng(seed + k)`` for the ``k``-th treated unit, normal interval and p-value
    (``synthdid``). With ``overall=True`` a last row ``overall``: the average of the run
    units' estimates weighted by their post-periods, and a placebo SE from
    ``replications`` joint placebo assignments (module docstring); only when every
    treated unit could be run on the same control set. ``replications=0`` skips the
    standard errors; ``exhaustive=True`` uses every control once as the placebo unit for
    the unit rows (:func:`placebo_permutations`; ``N0`` placebo fits instead of
    ``replications``, no seed). ``placebo_max_iter`` caps the Frank-Wolfe steps of the
    placebo re-fits only (default ``max_iter``): they start from the fitted weights, and
    the Monte Carlo needs thousands of them. Rows are in the panel's (sorted) order of the
    treated units.
    """
    placebo_iter = max_iter if placebo_max_iter is None else int(placebo_max_iter)
    rows: list[SdidRow] = []
    fits: list[tuple[int, _Block, SdidFit]] = []
    for k, j in enumerate(np.flatnonzero(pa.treated)):
        label = str(pa.units[j])
        blk, reason = _block(pa, j, on_gaps=on_gaps, min_controls=min_controls)
        if blk is None:
            rows.append(SdidRow(label, *([np.nan] * 5), n_obs=0, n_clusters=0,
                                n_treated_clusters=1, reason=reason))
            continue
        fit = sdid_estimate(blk.Y, blk.controls.size, blk.t0, max_iter=max_iter)
        se = np.nan
        if replications > 1:
            se = placebo_se(blk.Y, fit, replications=replications, seed=seed + k,
                            exhaustive=exhaustive, max_iter=placebo_iter)
        lo, hi, p = _wald(fit.estimate, se, alpha)
        rows.append(
            SdidRow(
                label, fit.estimate, se, lo, hi, p, n_obs=int(blk.Y.size),
                n_clusters=int(blk.Y.shape[0]), n_treated_clusters=1, n_pre=fit.n_pre,
                n_post=fit.n_post, dropped_controls=blk.dropped, fit=fit,
            )
        )
        fits.append((j, blk, fit))
    if overall and fits:
        rows.append(_overall(pa, fits, rows, replications=replications, seed=seed,
                             alpha=alpha, max_iter=placebo_iter))
    return rows


def _overall(
    pa: PanelArrays, fits: list[tuple[int, _Block, SdidFit]], rows: list[SdidRow], *,
    replications: int, seed: int, alpha: float, max_iter: int,
) -> SdidRow:
    """Post-period-weighted average of the unit estimates and its joint placebo SE."""
    n_treated = int(pa.treated.sum())
    w = np.array([f.n_post for _, _, f in fits], dtype=float)
    w /= w.sum()
    est = float(w @ np.array([f.estimate for _, _, f in fits]))
    reason = None
    if len(fits) < n_treated:
        reason = f"{n_treated - len(fits)} treated units not run; average over the others"
    same = all(np.array_equal(b.controls, fits[0][1].controls) for _, b, _ in fits)
    se = np.nan
    controls = fits[0][1].controls
    J = len(fits)
    if replications > 1 and same and controls.size > 2 * J:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(controls.size) for _ in range(replications)])
        m0 = controls.size - J
        draws = np.zeros(replications)
        for k, (_, blk, fit) in enumerate(fits):
            # placebo unit for treated unit k: ordering position m0 + k; donors: the first m0
            draws += w[k] * _placebo_taus(blk.Y, fit, perms, max_iter=max_iter, use_sparsify=True,
                                          n_donors=m0, treated_rows=np.array([m0 + k]))
        se = _placebo_sd(draws)
    elif replications > 1:
        reason = (reason + "; " if reason else "") + "no joint placebo SE (control sets differ)"
    lo, hi, p = _wald(est, se, alpha)
    return SdidRow(
        "overall", est, se, lo, hi, p,
        n_obs=int((controls.size + J) * pa.y.shape[1]),
        n_clusters=int(controls.size + J), n_treated_clusters=J, reason=reason,
    )


def sdid_estimator(max_iter: int = MAX_ITER) -> Estimator:
    """SDID as a randomization-inference estimator: the panel's treated units must share one start.

    ``pa -> tau`` with the never-treated units as controls and the treated units as one
    block (for :func:`mipa.inference.randomization.placebo_in_space`). Raises on gaps.
    """

    def estimate(pa: PanelArrays) -> float:
        tr = np.flatnonzero(pa.treated)
        starts = np.unique(pa.first_treat[tr])
        if starts.size != 1:
            raise ValueError("sdid_estimator needs the treated units to share one start")
        order = np.concatenate([np.flatnonzero(~pa.treated), tr])
        t0 = int(np.searchsorted(pa.periods, starts[0]))
        return sdid_estimate(pa.y[order], int((~pa.treated).sum()), t0, max_iter=max_iter).estimate

    return estimate


def rows_frame(rows: list[SdidRow]) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`ESTIMATE_COLUMNS` (units: ``group``; ``overall``: ``simple``)."""
    return pd.DataFrame(
        [r.row("simple" if r.scope == "overall" else "group") for r in rows], columns=ESTIMATE_COLUMNS
    )
