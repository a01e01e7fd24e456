r"""The synthetic difference-in-differences estimate of one block (and the SC and DID variants).

References
----------
* Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021),
  "Synthetic difference-in-differences", American Economic Review 111(12), 4088-4118
  (AAHIW 2021): Algorithm 1 (estimator).
* R package ``synthdid`` (Hirshberg): ``synthdid_estimate``, ``sc_estimate``, ``did_estimate``;
  this module reproduces their computations.

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

Variants: ``method="sc"`` (``sc_estimate``: ``lambda = 0``, no unit intercept,
``eta_omega = 1e-6``) and ``method="did"`` (uniform fixed weights).

:func:`fit_many` fits several blocks in one solve (the same numbers as one by one);
:func:`solve_many` is the batch of weight problems behind it and the placebo re-fits
(:mod:`mipa.inference.sdid_placebo`), solved by :mod:`mipa.inference.sdid_solver`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mipa.inference.sdid_solver import MAX_ITER, FwSet, LooOmega, fw_set, two_stage_many

__all__ = ["Method", "Job", "SdidFit", "Tuning", "collapsed", "fit_many", "sdid_estimate", "sdid_tau", "solve_many"]

Method = Literal["sdid", "sc", "did"]


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


def collapsed(Y: np.ndarray, n0: int, t0: int) -> np.ndarray:
    """``collapsed.form``: pre-periods + post mean; controls + treated mean. Works on stacks."""
    top = np.concatenate([Y[..., :n0, :t0], Y[..., :n0, t0:].mean(axis=-1, keepdims=True)], axis=-1)
    tr = Y[..., n0:, :]
    bottom = np.concatenate(
        [tr[..., :t0].mean(axis=-2, keepdims=True), tr[..., t0:].mean(axis=(-2, -1))[..., None, None]],
        axis=-1,
    )
    return np.concatenate([top, bottom], axis=-2)


def sdid_tau(Y: np.ndarray, n0: int, t0: int, omega: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``[-omega, 1/N1]' Y [-lambda, 1/T1]`` for a stack of problems."""
    n1, t1 = Y.shape[-2] - n0, Y.shape[-1] - t0
    wu = np.concatenate([-omega, np.full(omega.shape[:-1] + (n1,), 1.0 / n1)], axis=-1)
    wt = np.concatenate([-lam, np.full(lam.shape[:-1] + (t1,), 1.0 / t1)], axis=-1)
    return np.einsum("...n,...nt,...t->...", wu, Y, wt)


@dataclass(frozen=True)
class Tuning:
    """The regularisation, stopping rule and variant of one block's weight problems."""

    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    omega_intercept: bool
    lambda_intercept: bool
    fixed_omega: bool
    fixed_lambda: bool


@dataclass(frozen=True)
class Job:
    """One weight solve: a stack ``Y`` (``P x N x T``), its split, tuning and starts.

    ``lambda_key``: jobs with equal keys have the same time-weight problems (same control
    rows, ``T0``, tuning, start and orderings), which are then solved once.
    ``loo_controls``: the stack is the exhaustive placebo of this control block (problem
    ``c``: control ``c`` treated, the others donors in order); its unit-weight problems are
    then rows and columns of the block's one Gram matrix
    (:class:`mipa.inference.sdid_solver.LooOmega`).
    """

    Y: np.ndarray
    n0: int
    t0: int
    tune: Tuning
    omega0: np.ndarray
    lambda0: np.ndarray
    lambda_key: Any = None
    loo_controls: np.ndarray | None = None  # exhaustive placebos: the N0 x T control block


#: Time weights solved lately, by :func:`_solved_key` (a content key: the same key is the same
#: problem). The Monte Carlo runs its three designs on each replication in turn; their
#: control countries are drawn alike, so the placebo time-weight problems (controls only)
#: recur and are read from here instead of re-solved: a quarter of SDID's time a design.
_SOLVED_LAMBDAS: OrderedDict[Any, np.ndarray] = OrderedDict()
SOLVED_LAMBDAS_KEPT = 32


def _solved_key(job: Job, max_iter: int, use_sparsify: bool) -> Any:
    """Everything the time weights of ``job`` depend on besides its ``lambda_key``."""
    return (job.lambda_key, job.Y.shape[1:], job.tune, job.lambda0.tobytes(), int(max_iter), bool(use_sparsify))


def solve_many(
    jobs: list[Job], *, max_iter: int, use_sparsify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights ``(omega, lambda)`` for every job, all weight problems in one solve.

    Jobs with equal ``lambda_key`` share one time-weight solve, also across calls: the
    last :data:`SOLVED_LAMBDAS_KEPT` solved sets are kept (same key, same problems, same
    numbers bit for bit).
    """
    sets: list[FwSet] = []
    starts: list[np.ndarray] = []
    slots: list[tuple[int | None, int | None]] = []
    shared: dict[Any, int] = {}
    known: dict[int, np.ndarray] = {}  # job index -> time weights solved by an earlier call
    for index, job in enumerate(jobs):
        n0, t0, tune = job.n0, job.t0, job.tune
        C = job.loo_controls
        Yc = collapsed(job.Y, n0, t0) if C is None else None
        P = job.Y.shape[0]
        lam_slot = om_slot = None
        if not tune.fixed_lambda:
            solved = _solved_key(job, max_iter, use_sparsify) if job.lambda_key is not None else None
            if solved is not None and solved in _SOLVED_LAMBDAS:
                _SOLVED_LAMBDAS.move_to_end(solved)
                known[index] = _SOLVED_LAMBDAS[solved]
            elif job.lambda_key is not None and job.lambda_key in shared:
                lam_slot = shared[job.lambda_key]
            else:
                lam_slot = len(sets)
                # per problem: centring over the donors makes every placebo's Gram its own
                # (a rank-one downdate of one Gram would turn the exact zeros of a month in
                # which all donors agree into rounding noise, and Frank-Wolfe's choice among
                # tied months with them)
                Yc = collapsed(job.Y, n0, t0) if Yc is None else Yc
                sets.append(fw_set(Yc[:, :n0, :t0], Yc[:, :n0, t0], tune.zeta_lambda, tune.min_decrease,
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
                sets.append(LooOmega(Z=Z, F=Z.T @ Z, zeta2=np.full(P, tune.zeta_omega**2),
                                     tol=np.full(P, tune.min_decrease**2)))
            else:
                sets.append(fw_set(Yc[:, :n0, :t0].transpose(0, 2, 1), Yc[:, n0, :t0], tune.zeta_omega,
                                   tune.min_decrease, intercept=tune.omega_intercept))
            starts.append(job.omega0)
        slots.append((om_slot, lam_slot))
    xs = two_stage_many(sets, starts, max_iter=max_iter, use_sparsify=use_sparsify)
    out = []
    for index, (job, (om, lam)) in enumerate(zip(jobs, slots, strict=True)):
        if index in known:
            lam_weights = known[index]
        elif lam is None:
            lam_weights = job.lambda0
        else:
            lam_weights = xs[lam]
            if job.lambda_key is not None:
                lam_weights.setflags(write=False)  # kept: nobody may change it in place
                _SOLVED_LAMBDAS[_solved_key(job, max_iter, use_sparsify)] = lam_weights
                while len(_SOLVED_LAMBDAS) > SOLVED_LAMBDAS_KEPT:
                    _SOLVED_LAMBDAS.popitem(last=False)
        out.append((job.omega0 if om is None else xs[om], lam_weights))
    return out


def _setup(Y: np.ndarray, n0: int, t0: int, method: Method) -> tuple[np.ndarray, float, Tuning]:
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
    tune = Tuning(
        zeta_omega=eta_omega * sigma,
        zeta_lambda=1e-6 * sigma,
        min_decrease=1e-5 * sigma,
        omega_intercept=method != "sc",
        lambda_intercept=True,
        fixed_omega=method == "did",
        fixed_lambda=method in ("sc", "did"),
    )
    return Y, sigma, tune


def fit_many(
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
        jobs.append(Job(Y[None], n0, t0, tune, omega0, lambda0, lambda_key=key))
        setups.append((Y, n0, t0, sigma, tune))
    weights = solve_many(jobs, max_iter=max_iter, use_sparsify=use_sparsify)
    fits = []
    for (Y, n0, t0, sigma, tune), (om, lam) in zip(setups, weights, strict=True):
        fits.append(SdidFit(
            estimate=float(sdid_tau(Y, n0, t0, om[0], lam[0])),
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
    return fit_many([(Y, n0, t0)], method=method, max_iter=max_iter, use_sparsify=use_sparsify)[0]
