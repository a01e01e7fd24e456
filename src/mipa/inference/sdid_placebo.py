r"""Placebo standard errors of synthetic difference-in-differences.

References
----------
* Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021),
  "Synthetic difference-in-differences", American Economic Review 111(12), 4088-4118
  (AAHIW 2021): Algorithm 4 (placebo variance).
* R package ``synthdid`` (Hirshberg): ``placebo_se``, ``vcov(method = "placebo")``;
  this module reproduces their computations.

Placebo standard error (AAHIW 2021, Algorithm 4; ``synthdid`` ``vcov(method="placebo")``)
------------------------------------------------------------------------------------------
With only controls: permute the ``N0`` controls (``default_rng(seed)``), let the last
``N1`` play treated, re-estimate with the original ``zeta``s and ``min_decrease`` (weights
re-solved, started from the original ``lambda`` and the renormalised original ``omega``
of the remaining controls, as ``placebo_se``), ``replications = 200`` times;
``se = sqrt((R-1)/R) sd(tau*)``; interval ``tau +- z_{1-alpha/2} se`` (as ``synthdid``'s
``confint``/summary). It requires ``N0 > N1`` and assumes homoskedastic errors across
units (AAHIW 2021, sec. 5): with one treated unit it is the only option they offer.

:func:`placebo_job` sets up the weight problems of a set of placebo orderings (also the
joint placebo of :func:`mipa.inference.sdid.sdid_by_unit`); the exhaustive placebo (every
control once) shares one Gram matrix (:class:`mipa.inference.sdid_solver.LooOmega`).
"""

from __future__ import annotations

import numpy as np

from mipa.inference.sdid_fit import Job, SdidFit, Tuning, sdid_tau, solve_many
from mipa.inference.sdid_solver import MAX_ITER, leave_one_out

__all__ = ["DEFAULT_SEED", "placebo_estimates", "placebo_job", "placebo_permutations", "placebo_sd", "placebo_se",
           "placebo_taus_many"]

DEFAULT_SEED = 20260701


def _tuning_of(fit: SdidFit) -> Tuning:
    return Tuning(
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
        # row c: the other controls in order, then c
        return np.concatenate([leave_one_out(n_control), np.arange(n_control)[:, None]], axis=1)
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n_control) for _ in range(replications)])


def placebo_job(
    Y: np.ndarray, fit: SdidFit, perms: np.ndarray, *, n_donors: int | None = None,
    treated_rows: np.ndarray | None = None,
) -> Job:
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
    return Job(Yp, m0, t0, _tuning_of(fit), omega0, lambda0, lambda_key=key,
               loo_controls=controls if loo else None)


def placebo_taus_many(jobs: list[Job], *, max_iter: int, use_sparsify: bool) -> list[np.ndarray]:
    """Placebo estimates of every job, all in one solve."""
    weights = solve_many(jobs, max_iter=max_iter, use_sparsify=use_sparsify)
    return [sdid_tau(job.Y, job.n0, job.t0, om, lam) for job, (om, lam) in zip(jobs, weights, strict=True)]


def _placebo_taus(
    Y: np.ndarray, fit: SdidFit, perms: np.ndarray, *, max_iter: int, use_sparsify: bool,
    n_donors: int | None = None, treated_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Placebo estimates for the orderings ``perms`` of the control rows of ``Y`` (:func:`placebo_job`)."""
    job = placebo_job(Y, fit, perms, n_donors=n_donors, treated_rows=treated_rows)
    return placebo_taus_many([job], max_iter=max_iter, use_sparsify=use_sparsify)[0]


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


def placebo_sd(tau: np.ndarray) -> float:
    """``sqrt((R-1)/R) * sd(tau)`` (``synthdid``'s scaling: the population sd)."""
    R = tau.size
    return float(np.sqrt((R - 1) / R) * np.std(tau, ddof=1))


def placebo_se(
    Y: np.ndarray, fit: SdidFit, *, replications: int = 200, seed: int = DEFAULT_SEED,
    exhaustive: bool = False, max_iter: int = MAX_ITER, use_sparsify: bool = True,
) -> float:
    """``sqrt(vcov(fit, method="placebo"))``: ``sqrt((R-1)/R) * sd(placebo estimates)``."""
    return placebo_sd(
        placebo_estimates(
            Y, fit, replications=replications, seed=seed, exhaustive=exhaustive,
            max_iter=max_iter, use_sparsify=use_sparsify,
        )
    )
