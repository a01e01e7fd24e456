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

The computation is split by responsibility: :mod:`mipa.inference.sdid_fit` (the estimate
of one block, AAHIW 2021 Algorithm 1, and the SC / DID variants),
:mod:`mipa.inference.sdid_solver` (the Frank-Wolfe weight solver, ``sc.weight.fw``) and
:mod:`mipa.inference.sdid_placebo` (the placebo standard error, Algorithm 4); this module
runs them per treated unit on a panel.

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
from mipa.estimators.results import ESTIMATE_COLUMNS, IntervalRow, estimate_row
from mipa.inference.randomization import Estimator, PanelArrays
from mipa.inference.sdid_fit import Method, SdidFit, fit_many, sdid_estimate
from mipa.inference.sdid_placebo import (
    DEFAULT_SEED,
    placebo_estimates,
    placebo_job,
    placebo_permutations,
    placebo_sd,
    placebo_se,
    placebo_taus_many,
)
from mipa.inference.sdid_solver import MAX_ITER, frank_wolfe, sparsify

__all__ = [
    "DEFAULT_SEED",
    "MAX_ITER",
    "Method",
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

INFERENCE = "sdid_placebo"


# --------------------------------------------------------------------------- panel
@dataclass(frozen=True)
class SdidRow(IntervalRow):
    """One SDID result row (a treated unit, or ``overall``).

    ``status``/``reason``/``reason_detail`` as :mod:`mipa.estimability`: a row that could
    not be estimated has NaN numbers, ``status = 'not_estimable'`` and a key of
    :data:`~mipa.estimability.REASONS` (see :func:`sdid_by_unit` for which one when).
    """

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
    fits = fit_many([(blk.Y, blk.controls.size, blk.t0) for _, _, blk in runnable], max_iter=max_iter)
    ses = [np.nan] * len(runnable)
    if replications > 1 and runnable:
        jobs = [
            placebo_job(blk.Y, fit, placebo_permutations(fit.n_control, fit.n_treated, replications=replications,
                                                         seed=seed + k, exhaustive=exhaustive))
            for (k, _, blk), fit in zip(runnable, fits, strict=True)
        ]
        ses = [placebo_sd(tau) for tau in placebo_taus_many(jobs, max_iter=placebo_iter, use_sparsify=True)]
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
        jobs = [placebo_job(blk.Y, fit, perms, n_donors=m0, treated_rows=np.array([m0 + k]))
                for k, (_, blk, fit) in enumerate(fits)]
        taus = placebo_taus_many(jobs, max_iter=max_iter, use_sparsify=True)
        draws = np.zeros(replications)
        for k, tau in enumerate(taus):
            draws += w[k] * tau
        se = placebo_sd(draws)
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
