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
steps from there.

Computation. Every weight problem (fits and placebo re-fits) runs on its own in compiled
code (:mod:`mipa.inference._frank_wolfe`), in the arithmetic of the first
implementation, so a weight vector does not depend on which other problems are solved
with it. With the exhaustive placebo the unit-weight problems are leave-one-out versions
of one control block: their Gram matrices are rows and columns of that block's one Gram
matrix (:class:`_LooOmega`), not ``N0`` separate products. Units sharing a start share
their time-weight problems, solved once.

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
``on_gaps="skip"`` (default) returns the unit's row with NaN, ``status =
'not_estimable'`` and the reason when any needed cell is missing (e.g.
``lead_time_days``, NULL in months without confirmations: SDID is then not run for that
outcome); ``on_gaps="drop_controls"`` drops the controls with a gap (recorded; selection
on the outcome's observation pattern) and skips only when the treated unit has a gap or
fewer than ``min_controls`` controls remain. The reasons (:mod:`mipa.estimability`) and
when each is used: :func:`sdid_by_unit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimability import STATUS_COLUMNS, STATUS_ESTIMATED, STATUS_NOT_ESTIMABLE, NotEstimable
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


@dataclass(frozen=True)
class _FwSet:
    """``P`` problems of :func:`frank_wolfe` of one shape (``n`` rows, ``k`` weights).

    ``A``, ``b`` are centred already when the problem has an intercept; ``G = A'A`` and
    ``c = A'b`` are computed once and serve both stages of :func:`_two_stage_many`.
    The interface the solver uses (shared with :class:`_LooOmega`): ``size``, ``rows``,
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


def _fw_set(
    A: np.ndarray, b: np.ndarray, zeta: np.ndarray | float, min_decrease: np.ndarray | float, *,
    intercept: bool,
) -> _FwSet:
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    P = A.shape[0]
    if intercept:
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    At = A.transpose(0, 2, 1)
    return _FwSet(
        A=A, b=b, G=At @ A, c=np.einsum("pkn,pn->pk", At, b),
        zeta2=np.broadcast_to(np.asarray(zeta, dtype=float) ** 2, (P,)).copy(),
        tol=np.broadcast_to(np.asarray(min_decrease, dtype=float) ** 2, (P,)).copy(),
    )


@dataclass(frozen=True)
class _LooOmega:
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

    def _donors(self) -> np.ndarray:
        N0 = self.size
        return np.array([np.delete(np.arange(N0), c) for c in range(N0)]).reshape(N0, N0 - 1)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        d = self._donors()
        return self.F[d[:, :, None], d[:, None, :]], self.F[d, np.arange(self.size)[:, None]]

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
    fw = _fw_set(A, b, zeta, min_decrease, intercept=intercept)
    return _fw_run([fw], [np.asarray(x0, dtype=float)], max_iter)[0]


def _fw_run(sets: list, x0s: list[np.ndarray], max_iter: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run every problem of every set from ``x0s``; ``(weights, steps)`` per set.

    Each problem runs on its own in compiled code (:mod:`mipa.inference._frank_wolfe`),
    so a weight vector does not depend on which other problems are solved with it.
    """
    from mipa.inference._frank_wolfe import solve_stack  # numba: loaded only when SDID runs

    out = []
    for fw, x0 in zip(sets, x0s, strict=True):
        G, c = fw.dense()
        x0 = np.ascontiguousarray(x0, dtype=float)
        out.append(solve_stack(np.ascontiguousarray(G), np.ascontiguousarray(c), fw.e2(x0), int(fw.rows),
                               fw.zeta2, x0, fw.tol, int(max_iter)))
    return out


def _two_stage_many(
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


@dataclass(frozen=True)
class _Job:
    """One weight solve: a stack ``Y`` (``P x N x T``), its split, tuning and starts.

    ``lambda_key``: jobs with equal keys have the same time-weight problems (same control
    rows, ``T0``, tuning, start and orderings), which are then solved once.
    ``loo_controls``: the stack is the exhaustive placebo of this control block (problem
    ``c``: control ``c`` treated, the others donors in order); its unit-weight problems are
    then rows and columns of the block's one Gram matrix (:class:`_LooOmega`).
    """

    Y: np.ndarray
    n0: int
    t0: int
    tune: _Tuning
    omega0: np.ndarray
    lambda0: np.ndarray
    lambda_key: Any = None
    loo_controls: np.ndarray | None = None  # exhaustive placebos: the N0 x T control block


def _solve_many(
    jobs: list[_Job], *, max_iter: int, use_sparsify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights ``(omega, lambda)`` for every job, all weight problems in one solve."""
    sets: list[_FwSet] = []
    starts: list[np.ndarray] = []
    slots: list[tuple[int | None, int | None]] = []
    shared: dict[Any, int] = {}
    for job in jobs:
        n0, t0, tune = job.n0, job.t0, job.tune
        C = job.loo_controls
        Yc = _collapsed(job.Y, n0, t0) if C is None else None
        P = job.Y.shape[0]
        lam_slot = om_slot = None
        if not tune.fixed_lambda:
            if job.lambda_key is not None and job.lambda_key in shared:
                lam_slot = shared[job.lambda_key]
            else:
                lam_slot = len(sets)
                # per problem: centring over the donors makes every placebo's Gram its own
                # (a rank-one downdate of one Gram would turn the exact zeros of a month in
                # which all donors agree into rounding noise, and Frank-Wolfe's choice among
                # tied months with them)
                Yc = _collapsed(job.Y, n0, t0) if Yc is None else Yc
                sets.append(_fw_set(Yc[:, :n0, :t0], Yc[:, :n0, t0], tune.zeta_lambda, tune.min_decrease,
                                    intercept=tune.lambda_intercept))
                starts.append(job.lambda0)
                if job.lambda_key is not None:
                    shared[job.lambda_key] = lam_slot
        if not tune.fixed_omega:
            om_slot = len(sets)
            if C is not None:
                Z = C[:, :t0].T
                if tune.omega_intercept:
                    Z = Z - Z.mean(axis=0)
                sets.append(_LooOmega(Z=Z, F=Z.T @ Z, zeta2=np.full(P, tune.zeta_omega**2),
                                      tol=np.full(P, tune.min_decrease**2)))
            else:
                sets.append(_fw_set(Yc[:, :n0, :t0].transpose(0, 2, 1), Yc[:, n0, :t0], tune.zeta_omega,
                                    tune.min_decrease, intercept=tune.omega_intercept))
            starts.append(job.omega0)
        slots.append((om_slot, lam_slot))
    xs = _two_stage_many(sets, starts, max_iter=max_iter, use_sparsify=use_sparsify)
    return [
        (job.omega0 if om is None else xs[om], job.lambda0 if lam is None else xs[lam])
        for job, (om, lam) in zip(jobs, slots, strict=True)
    ]


def _setup(Y: np.ndarray, n0: int, t0: int, method: Method) -> tuple[np.ndarray, float, _Tuning]:
    """Checks, noise level and tuning of :func:`sdid_estimate`."""
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
    return Y, sigma, tune


def _fit_many(
    problems: list[tuple[np.ndarray, int, int]], *, method: Method = "sdid", max_iter: int = MAX_ITER,
    use_sparsify: bool = True,
) -> list[SdidFit]:
    """:func:`sdid_estimate` for several ``(Y, n0, t0)``.

    An estimate is the same bit for bit however many units are fitted together. Problems
    with the same control rows and ``t0`` share their time weights (solved once).
    """
    jobs, setups = [], []
    for Y, n0, t0 in problems:
        Y, sigma, tune = _setup(Y, n0, t0, method)
        omega0 = np.full((1, n0), 1.0 / n0)
        lambda0 = np.zeros((1, t0)) if method == "sc" else np.full((1, t0), 1.0 / t0)
        key = (n0, t0, Y[:n0].tobytes())
        jobs.append(_Job(Y[None], n0, t0, tune, omega0, lambda0, lambda_key=key))
        setups.append((Y, n0, t0, sigma, tune))
    weights = _solve_many(jobs, max_iter=max_iter, use_sparsify=use_sparsify)
    fits = []
    for (Y, n0, t0, sigma, tune), (om, lam) in zip(setups, weights, strict=True):
        fits.append(SdidFit(
            estimate=float(_tau(Y, n0, t0, om[0], lam[0])),
            omega=om[0],
            lambda_=lam[0],
            n_control=n0,
            n_treated=Y.shape[0] - n0,
            n_pre=t0,
            n_post=Y.shape[1] - t0,
            noise_level=sigma,
            zeta_omega=tune.zeta_omega,
            zeta_lambda=tune.zeta_lambda,
            min_decrease=tune.min_decrease,
            method=method,
            omega_intercept=tune.omega_intercept,
            lambda_intercept=tune.lambda_intercept,
        ))
    return fits


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
    return _fit_many([(Y, n0, t0)], method=method, max_iter=max_iter, use_sparsify=use_sparsify)[0]


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


def _placebo_job(
    Y: np.ndarray, fit: SdidFit, perms: np.ndarray, *, n_donors: int | None = None,
    treated_rows: np.ndarray | None = None,
) -> _Job:
    """The weight problems of the placebo orderings ``perms`` of the control rows of ``Y``.

    Donors: the first ``m0`` of each ordering (``N0 - N1`` unless ``n_donors``); placebo
    treated: the last ``N1`` (or the ordering positions ``treated_rows``). Weights
    re-solved with the fit's tuning, started from its ``lambda`` and the renormalised
    ``omega`` of the donors (``synthdid``'s ``placebo_se``).
    """
    n0, t0 = fit.n_control, fit.n_pre
    m0 = n0 - fit.n_treated if n_donors is None else int(n_donors)
    if treated_rows is None:
        treated_rows = np.arange(n0 - fit.n_treated, n0)
    rows = np.concatenate([perms[:, :m0], perms[:, treated_rows]], axis=1)
    controls = np.asarray(Y, dtype=float)[:n0]
    Yp = controls[rows]  # R x (m0 + N1) x T
    omega0 = _sum_normalize(fit.omega[perms[:, :m0]])
    lambda0 = np.repeat(fit.lambda_[None], perms.shape[0], axis=0)
    # the time weights see only the donors: equal for every fit with these controls and T0
    key = ("placebo", t0, m0, controls.tobytes(), rows[:, :m0].tobytes(), fit.lambda_.tobytes(),
           fit.zeta_lambda, fit.min_decrease, fit.lambda_intercept)
    loo = (n_donors is None and fit.n_treated == 1 and perms.shape[0] == n0
           and np.array_equal(perms, placebo_permutations(n0, 1, exhaustive=True)))
    return _Job(Yp, m0, t0, _tuning_of(fit), omega0, lambda0, lambda_key=key,
                loo_controls=controls if loo else None)


def _placebo_taus_many(jobs: list[_Job], *, max_iter: int, use_sparsify: bool) -> list[np.ndarray]:
    """Placebo estimates of every job, all in one solve."""
    weights = _solve_many(jobs, max_iter=max_iter, use_sparsify=use_sparsify)
    return [_tau(job.Y, job.n0, job.t0, om, lam) for job, (om, lam) in zip(jobs, weights, strict=True)]


def _placebo_taus(
    Y: np.ndarray, fit: SdidFit, perms: np.ndarray, *, max_iter: int, use_sparsify: bool,
    n_donors: int | None = None, treated_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Placebo estimates for the orderings ``perms`` of the control rows of ``Y`` (:func:`_placebo_job`)."""
    job = _placebo_job(Y, fit, perms, n_donors=n_donors, treated_rows=treated_rows)
    return _placebo_taus_many([job], max_iter=max_iter, use_sparsify=use_sparsify)[0]


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
    """One SDID result row (a treated unit, or ``overall``).

    ``status``/``reason``/``reason_detail`` as :mod:`mipa.estimability`: a row that could
    not be estimated has NaN numbers, ``status = 'not_estimable'`` and a key of
    :data:`~mipa.estimability.REASONS` (see :func:`sdid_by_unit` for which one when).
    """

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
    status: str = STATUS_ESTIMATED
    reason_detail: str | None = None

    def row(self, aggregation: str = "group") -> dict[str, Any]:
        """A row with the columns of :data:`mipa.estimators.results.ESTIMATE_COLUMNS` and
        the status columns ``status``, ``reason``, ``reason_detail``."""
        out = estimate_row(self, aggregation)
        out.update(status=self.status, reason=self.reason, reason_detail=self.reason_detail)
        return out


def _not_estimable(scope: str, failure: NotEstimable, n_treated_clusters: int = 1) -> SdidRow:
    return SdidRow(scope, *([np.nan] * 5), n_obs=0, n_clusters=0, n_treated_clusters=n_treated_clusters,
                   reason=failure.reason, status=STATUS_NOT_ESTIMABLE, reason_detail=failure.detail)


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


def _months(n: int) -> str:
    return f"{n} month" + ("" if n == 1 else "s")


def _block(pa: PanelArrays, j: int, *, on_gaps: str, min_controls: int) -> _Block:
    """Assemble unit ``j``'s SDID block, or raise :class:`NotEstimable` saying why not."""
    label = str(pa.units[j])
    t0 = int(np.searchsorted(pa.periods, pa.first_treat[j]))
    T = pa.periods.size
    seen = np.isfinite(pa.y[j])
    if t0 >= T:  # a start after the last period: PanelArrays calls such a unit never treated
        raise NotEstimable("no_post_treatment_data", f"{label} starts after the last month of the window")
    if not seen[t0:].any():
        raise NotEstimable("no_post_treatment_data", f"the outcome of {label} is not observed in any month "
                           "from its start on")
    if t0 == 0:
        raise NotEstimable("no_pre_treatment_data", f"{label} starts in the first month of the window")
    if not seen[:t0].any():
        raise NotEstimable("no_pre_treatment_data", f"the outcome of {label} is not observed in any month "
                           "before its start")
    if t0 < 2:
        raise NotEstimable("too_few_pre_periods", f"{label} has 1 month before its start; SDID's noise "
                           "level needs at least 2")
    if not seen[t0:].all():
        raise NotEstimable("too_few_post_periods", f"the outcome of {label} is observed in "
                           f"{int(seen[t0:].sum())} of its {_months(T - t0)} from the start on; SDID needs "
                           "every month (a balanced block)")
    if not seen[:t0].all():
        raise NotEstimable("too_few_pre_periods", f"the outcome of {label} is observed in "
                           f"{int(seen[:t0].sum())} of its {_months(t0)} before the start; SDID needs "
                           "every month (a balanced block)")
    controls = np.flatnonzero(~pa.treated)
    if controls.size == 0:
        raise NotEstimable("no_control_units", "the panel has no never-treated country")
    complete = np.isfinite(pa.y[controls]).all(axis=1)
    dropped: tuple[Any, ...] = ()
    if not complete.all():
        if on_gaps == "skip":
            raise NotEstimable("no_control_units", f"{int((~complete).sum())} of {controls.size} control "
                               "units have missing outcome months and on_gaps='skip' needs every control "
                               f"observed in every month ({int(complete.sum())} complete)")
        dropped = tuple(pa.units[controls[~complete]].tolist())
        controls = controls[complete]
    if controls.size == 0:
        raise NotEstimable("no_control_units", "no control unit is observed in every month")
    need = max(2, int(min_controls))
    if controls.size < need:
        raise NotEstimable("too_few_controls", f"only {controls.size} complete control units (< {need})")
    Y = np.vstack([pa.y[controls], pa.y[[j]]])
    return _Block(Y=Y, t0=t0, controls=controls, dropped=dropped)


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
    treated units. All units' fits run as one solve, then all their placebo re-fits as
    another (the same numbers as unit by unit).

    Data conditions never raise: every treated unit gets a row, and a unit that cannot be
    run has NaN numbers, ``status = 'not_estimable'`` and one of these reasons (checked in
    this order; ``reason_detail`` names the unit and the months):

    * ``no_post_treatment_data``: the unit's outcome is missing in every month from its
      start on.
    * ``no_pre_treatment_data``: the unit starts in the first month of the window, or its
      outcome is missing in every month before the start.
    * ``too_few_pre_periods``: one month before the start (the noise level needs two).
    * ``too_few_post_periods``: the outcome is missing in some month from the start on
      (SDID needs a balanced block; a start in the last month, with that month observed,
      is run: one post period).
    * ``too_few_pre_periods``: the outcome is missing in some month before the start.
    * ``no_control_units``: no never-treated unit; or, with ``on_gaps="skip"``, any
      control with a missing month (today's rule for ``lead_time_days``, NULL in months
      without confirmations: SDID is not run on such an outcome); or, with
      ``"drop_controls"``, no control observed in every month.
    * ``too_few_controls``: fewer than ``max(2, min_controls)`` complete controls.

    A unit row without a standard error (``replications <= 1``) has reason
    ``no_variance``; the ``overall`` row says in ``reason``/``reason_detail`` when units
    were left out of the average (``cells_left_out``) or it has no joint placebo SE
    (``no_variance``), and is ``not_estimable`` (``no_estimate_for_scope``) when no unit
    could be run.
    """
    placebo_iter = max_iter if placebo_max_iter is None else int(placebo_max_iter)
    treated = np.flatnonzero(pa.treated)
    rows: list[SdidRow | None] = [None] * treated.size
    runnable: list[tuple[int, int, _Block]] = []
    for k, j in enumerate(treated):
        try:
            runnable.append((k, j, _block(pa, j, on_gaps=on_gaps, min_controls=min_controls)))
        except NotEstimable as failure:
            rows[k] = _not_estimable(str(pa.units[j]), failure)
    fits = _fit_many([(blk.Y, blk.controls.size, blk.t0) for _, _, blk in runnable], max_iter=max_iter)
    ses = [np.nan] * len(runnable)
    if replications > 1 and runnable:
        jobs = [
            _placebo_job(blk.Y, fit, placebo_permutations(fit.n_control, fit.n_treated, replications=replications,
                                                          seed=seed + k, exhaustive=exhaustive))
            for (k, _, blk), fit in zip(runnable, fits, strict=True)
        ]
        ses = [_placebo_sd(tau) for tau in _placebo_taus_many(jobs, max_iter=placebo_iter, use_sparsify=True)]
    for (k, j, blk), fit, se in zip(runnable, fits, ses, strict=True):
        lo, hi, p = _wald(fit.estimate, se, alpha)
        no_se = not np.isfinite(se)
        rows[k] = SdidRow(
            str(pa.units[j]), fit.estimate, se, lo, hi, p, n_obs=int(blk.Y.size),
            n_clusters=int(blk.Y.shape[0]), n_treated_clusters=1, n_pre=fit.n_pre,
            n_post=fit.n_post, dropped_controls=blk.dropped, fit=fit,
            reason="no_variance" if no_se else None,
            reason_detail=f"no placebo standard error (replications={replications})" if no_se else None,
        )
    out: list[SdidRow] = [r for r in rows if r is not None]
    if overall:
        fitted = [(j, blk, fit) for (_, j, blk), fit in zip(runnable, fits, strict=True)]
        out.append(_overall(pa, fitted, replications=replications, seed=seed, alpha=alpha,
                            max_iter=placebo_iter))
    return out


def _overall(
    pa: PanelArrays, fits: list[tuple[int, _Block, SdidFit]], *,
    replications: int, seed: int, alpha: float, max_iter: int,
) -> SdidRow:
    """Post-period-weighted average of the unit estimates and its joint placebo SE."""
    n_treated = int(pa.treated.sum())
    if not fits:
        why = ("no treated unit in the panel" if n_treated == 0
               else f"none of the {n_treated} treated units could be run")
        return _not_estimable("overall", NotEstimable("no_estimate_for_scope", why), n_treated_clusters=0)
    w = np.array([f.n_post for _, _, f in fits], dtype=float)
    w /= w.sum()
    est = float(w @ np.array([f.estimate for _, _, f in fits]))
    notes: list[str] = []
    reason = None
    if len(fits) < n_treated:
        reason = "cells_left_out"
        run = {str(pa.units[j]) for j, _, _ in fits}
        left = [str(u) for u in pa.units[pa.treated] if str(u) not in run]
        notes.append(f"{len(left)} treated units not run ({', '.join(left)}); average over the others")
    same = all(np.array_equal(b.controls, fits[0][1].controls) for _, b, _ in fits)
    se = np.nan
    controls = fits[0][1].controls
    J = len(fits)
    if replications > 1 and same and controls.size > 2 * J:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(controls.size) for _ in range(replications)])
        m0 = controls.size - J
        # placebo unit for treated unit k: ordering position m0 + k; donors: the first m0
        jobs = [_placebo_job(blk.Y, fit, perms, n_donors=m0, treated_rows=np.array([m0 + k]))
                for k, (_, blk, fit) in enumerate(fits)]
        taus = _placebo_taus_many(jobs, max_iter=max_iter, use_sparsify=True)
        draws = np.zeros(replications)
        for k, tau in enumerate(taus):
            draws += w[k] * tau
        se = _placebo_sd(draws)
    elif replications > 1 and not same:
        notes.append("no joint placebo SE (control sets differ)")
    elif replications > 1:
        notes.append(f"no joint placebo SE ({controls.size} controls for {J} treated units; needs more "
                     f"than {2 * J})")
    else:
        notes.append(f"no placebo standard error (replications={replications})")
    if reason is None and not np.isfinite(se):
        reason = "no_variance"
    lo, hi, p = _wald(est, se, alpha)
    return SdidRow(
        "overall", est, se, lo, hi, p,
        n_obs=int((controls.size + J) * pa.y.shape[1]),
        n_clusters=int(controls.size + J), n_treated_clusters=J, reason=reason,
        reason_detail="; ".join(notes) if notes else None,
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
    """The rows as a DataFrame: :data:`ESTIMATE_COLUMNS` and the status columns (units:
    ``group``; ``overall``: ``simple``)."""
    columns = list(ESTIMATE_COLUMNS) + [c for c in STATUS_COLUMNS if c not in ESTIMATE_COLUMNS]
    return pd.DataFrame([r.row("simple" if r.scope == "overall" else "group") for r in rows], columns=columns)
