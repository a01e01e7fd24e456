"""When a quantity cannot be estimated: the documented reasons, and how a run says so.

Real deliveries routinely hold panels on which one number cannot be computed: a partner
that started in the last months of the window, an outcome never observed after a start,
a count that is zero in every month, a control pool too small for a placebo method. Such
a *data condition* must never stop the run: the affected (estimator, outcome, scope) row
is written with the estimate NULL, ``status = 'not_estimable'`` and a ``reason`` from
:data:`REASONS`, and everything else is computed. A *bug* (a wrong column name, a type
error, a broken invariant) still fails loudly: only :class:`NotEstimable` and the
numerical failures in :data:`NUMERICAL_FAILURES` are turned into reasons.

Status values (``status`` column of every result mart):

* ``estimated``: the number is there; ``reason`` is NULL, or ``cells_left_out`` when
  some cells of an aggregate were not identified and the aggregate is over the rest
  (``reason_detail`` names them).
* ``not_estimable``: estimate, standard error and interval are NULL; ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

STATUS_ESTIMATED = "estimated"
STATUS_NOT_ESTIMABLE = "not_estimable"
STATUSES: tuple[str, ...] = (STATUS_ESTIMATED, STATUS_NOT_ESTIMABLE)

# code -> words (the report prints the words; the README lists the same table)
REASONS: dict[str, str] = {
    "no_treated_units": "no partner country has an untreated and a treated month in the panel window",
    "no_post_treatment_data": "the outcome is not observed in any month from the partnership start on",
    "no_pre_treatment_data": "the outcome is not observed in any month before the partnership start",
    "no_control_units": "no control country is observed in the months the comparison needs",
    "too_few_controls": "too few control countries for this method to reach its level",
    "too_few_post_periods": "too few months after the start for this method",
    "too_few_pre_periods": "too few months before the start for this method",
    "constant_outcome": "the outcome does not vary where this method needs variation",
    "all_zero_outcome": "the count is zero in every month where the model needs events",
    "not_identified": "the effect is not identified: its cells are collinear with the fixed effects",
    "singular_design": "the design or covariance matrix is singular",
    "fit_not_converged": "the fit did not converge",
    "cells_left_out": "some cells of the aggregate are not identified and were left out",
    "no_estimate_for_scope": "the estimator returned no estimate for this scope",
    "no_variance": "the estimate has no standard error: too few countries or cells to estimate its variance",
    "not_a_count": "the model is for counts and this outcome is not one (lead time is a mean of days)",
}

# numerical failures that arise from the data (collinearity, non-convergence), never from a bug
NUMERICAL_FAILURES: tuple[type[BaseException], ...] = (np.linalg.LinAlgError, FloatingPointError)


class NotEstimable(ValueError):
    """A data condition under which the requested quantity has no estimate.

    A ``ValueError``, so callers that only knew the estimators' input errors keep working.

    ``reason`` must be a key of :data:`REASONS`; ``detail`` says which country, cell or
    month, in words.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"undocumented not-estimable reason {reason!r}; add it to REASONS")
        self.reason = reason
        self.detail = detail or REASONS[reason]
        super().__init__(f"{reason}: {self.detail}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # pickled with its two fields (a model's child process sends it back to dbt)
        return (type(self), (self.reason, self.detail))


T = TypeVar("T")


def attempt(fn: Callable[[], T]) -> tuple[T | None, NotEstimable | None]:
    """Run ``fn``; a data condition comes back as the second item instead of raising.

    :class:`NotEstimable` passes through as it is; a numerical failure of
    :data:`NUMERICAL_FAILURES` becomes ``singular_design`` with its message. Every other
    exception is a bug and propagates.
    """
    try:
        with np.errstate(all="ignore"):
            return fn(), None
    except NotEstimable as exc:
        return None, exc
    except NUMERICAL_FAILURES as exc:
        return None, NotEstimable("singular_design", f"{type(exc).__name__}: {exc}")


def status_columns(failure: NotEstimable | None, note: str | None = None) -> dict[str, Any]:
    """The ``status``, ``reason``, ``reason_detail`` values of a row.

    ``failure`` None and no ``note``: estimated. ``note`` (with no failure): estimated over
    the identified cells only, reason ``cells_left_out``.
    """
    if failure is not None:
        return {"status": STATUS_NOT_ESTIMABLE, "reason": failure.reason, "reason_detail": failure.detail}
    if note:
        return {"status": STATUS_ESTIMATED, "reason": "cells_left_out", "reason_detail": note}
    return {"status": STATUS_ESTIMATED, "reason": None, "reason_detail": None}


STATUS_COLUMNS: tuple[str, ...] = ("status", "reason", "reason_detail")


def finalize_status(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the status columns of rows that have none, from the numbers themselves.

    A row without an estimate is ``not_estimable`` (reason ``no_estimate_for_scope``
    unless one was given); a row with an estimate but no standard error is
    ``estimated`` with reason ``no_variance``. Rows that carry a status keep it, but an
    estimate-less row is never called estimated. Returns a copy with the three columns.
    """
    out = frame.copy()
    cols = list(STATUS_COLUMNS)
    for col in cols:
        if col not in out.columns:
            out[col] = None
    given = out[cols].astype(object)
    given = given.where(given.notna(), None)
    status, reason, detail = (given[col].to_numpy(dtype=object).copy() for col in cols)
    est = pd.to_numeric(out["estimate"], errors="coerce").to_numpy(dtype=float)
    se = (pd.to_numeric(out["std_error"], errors="coerce").to_numpy(dtype=float)
          if "std_error" in out.columns else np.zeros(len(out)))
    no_estimate = ~np.isfinite(est)
    unset = np.array([v is None for v in status], dtype=bool)
    fill = unset | (no_estimate & (status == STATUS_ESTIMATED))
    # rows without an estimate keep a given reason unless it only describes an estimate
    failed = fill & no_estimate
    kept = np.array([r in REASONS and r not in ("cells_left_out", "no_variance") for r in reason], dtype=bool)
    reason[failed & ~kept] = "no_estimate_for_scope"
    status[failed] = STATUS_NOT_ESTIMABLE
    no_detail = failed & np.array([v is None for v in detail], dtype=bool)
    detail[no_detail] = [REASONS[r] for r in reason[no_detail]]
    estimated = fill & ~no_estimate
    status[estimated] = STATUS_ESTIMATED
    no_variance = estimated & ~np.isfinite(se) & np.array([r is None for r in reason], dtype=bool)
    reason[no_variance] = "no_variance"
    detail[no_variance] = REASONS["no_variance"]
    for col, values in zip(cols, (status, reason, detail), strict=True):
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out
