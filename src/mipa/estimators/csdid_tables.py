r"""Callaway & Sant'Anna: the output tables (``estimates``, ``event_study``, ``att_gt``) of a fit.

References: Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with
multiple time periods", Journal of Econometrics 225(2), 200-230 (CS2021); R package ``did``.
Pointwise intervals are normal (``estimate +- z se``), the event study's uniform band
``estimate +- c se`` with the bootstrap's sup-t critical value ``c``; the columns and
counts are stated in :func:`mipa.estimators.csdid.callaway_santanna` (Returns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mipa.estimability import finalize_status
from mipa.estimators.csdid_aggregate import ANALYTIC, BOOTSTRAP, Agg, Boot, analytic_se
from mipa.estimators.csdid_sample import Cells, Cohorts, CSData, fmt_period
from mipa.estimators.results import (
    ATT_GT_COLUMNS,
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    DidResult,
    normal_ci,
)

__all__ = ["assemble"]


def assemble(data: CSData, cohorts: Cohorts, cells: Cells, aggs: Agg, boot: Boot | None,
             *, outcome: str, control_group: str, alpha: float,
             settings: dict[str, Any]) -> DidResult:
    """The :class:`~mipa.estimators.results.DidResult` of a fit: bootstrap inference when
    ``boot`` is given, analytic otherwise (the analytic standard errors are always kept in
    ``settings["analytic_std_error"]``)."""
    level = 1 - alpha
    n = data.n_units
    n_t = len(data.tlist)
    k = len(cells.coh)
    used_any = cells.in_treat | cells.in_ctrl
    onehot = np.zeros((k, n_t))
    onehot[np.arange(k), cells.t_idx] += 1.0
    onehot[np.arange(k), cells.b_idx] += 1.0
    estimable = cells.valid & ~cells.ref

    cache: dict[bytes, int] = {}

    def n_obs_of(sel):
        # unit-period observations entering at least one estimated cell of the row
        s = sel & estimable
        key = s.tobytes()
        if key not in cache:
            used = used_any[:, s].astype(float) @ onehot[s]
            cache[key] = int((used > 0).sum())
        return cache[key]

    def n_treated_of(sel):
        cs = np.unique(cells.coh[sel])
        return int(cohorts.members[:, cs].any(axis=1).sum()) if len(cs) else 0

    se_agg_a = analytic_se(aggs.psi)
    se_cell_a = np.where(cells.valid, analytic_se(cells.psi), np.nan)
    if boot is None:
        label, se_agg, se_cell = ANALYTIC, se_agg_a, se_cell_a
    else:
        label, se_agg, se_cell = BOOTSTRAP, boot.se_aggs, boot.se_cells

    is_event = np.array([kd == "event" for kd in aggs.kind])
    rows = np.flatnonzero(~is_event)
    lo, hi, p = normal_ci(aggs.est[rows], se_agg[rows], level)
    estimates = pd.DataFrame({
        "aggregation": [aggs.kind[j] for j in rows],
        "scope": [aggs.scope[j] for j in rows],
        "estimate": aggs.est[rows],
        "std_error": se_agg[rows],
        "ci_low": lo,
        "ci_high": hi,
        "p_value": p,
        "n_obs": [n_obs_of(aggs.cell_sets[j]) for j in rows],
        "n_clusters": n,
        "n_treated_clusters": [n_treated_of(aggs.cell_sets[j]) for j in rows],
        "inference": label,
    })
    estimates = finalize_status(estimates)[ESTIMATE_COLUMNS]

    ev = np.flatnonzero(is_event)
    lo, hi, _ = normal_ci(aggs.est[ev], se_agg[ev], level)
    if boot is None:
        band_lo = band_hi = np.full(len(ev), np.nan)
    else:
        band_lo = aggs.est[ev] - boot.crit_event * se_agg[ev]
        band_hi = aggs.est[ev] + boot.crit_event * se_agg[ev]
    event_times = [fmt_period(e) for e in aggs.event_times]
    event_study = pd.DataFrame({
        "scope": "overall",
        "event_time": event_times,
        "estimate": aggs.est[ev],
        "std_error": se_agg[ev],
        "ci_low": lo,
        "ci_high": hi,
        "band_low": band_lo,
        "band_high": band_hi,
        "inference": label,
    })[EVENT_STUDY_COLUMNS]

    lo, hi, _ = normal_ci(cells.att, se_cell, level)
    att_gt = pd.DataFrame({
        "group": [cohorts.att_gt_keys[c] for c in cells.coh],
        "period": [fmt_period(v) for v in cells.t],
        "event_time": [fmt_period(v) for v in cells.t - cells.g],
        "estimate": cells.att,
        "std_error": se_cell,
        "ci_low": lo,
        "ci_high": hi,
        "n_obs": cells.n_obs,
        "inference": label,
    })[ATT_GT_COLUMNS]

    def _f(v):
        return None if not np.isfinite(v) else float(v)

    settings = {
        "estimator": "csdid",
        "outcome": outcome,
        **settings,
        "n_units": n,
        "n_periods": n_t,
        "n_cells": int(k),
        "n_cells_missing": int((~cells.valid).sum()),
        "cohorts": {lab: fmt_period(gv) for lab, gv in zip(cohorts.labels, cohorts.g)},
        "dropped_units": data.dropped_units,
        "notes": data.notes,
        "pointwise_critical_value": float(stats.norm.ppf(1 - alpha / 2)),
        "uniform_critical_value": None if boot is None else float(boot.crit_event),
        # the analytic (influence-function) standard errors, also when the tables carry
        # the bootstrap ones: [aggregation, scope, se] and [event_time, se]
        "analytic_std_error": {
            "estimates": [[aggs.kind[j], aggs.scope[j], _f(se_agg_a[j])] for j in rows],
            "event_study": [[e, _f(se_agg_a[j])] for e, j in zip(event_times, ev)],
        },
    }
    return DidResult(
        estimator="csdid",
        outcome=outcome,
        control_group=control_group,
        estimates=estimates,
        event_study=event_study,
        att_gt=att_gt,
        settings=settings,
    )
