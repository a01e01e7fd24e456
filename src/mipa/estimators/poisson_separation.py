r"""Separation in Poisson ETWFE: which rows have no finite maximum-likelihood fit, and why.

Which rows of the Poisson ETWFE design (unit and period dummies, one dummy per treated
cell: :mod:`mipa.estimators.poisson_etwfe`) have no finite maximum-likelihood fit:
:func:`detect_separation` applies the rules below and returns the rows left in the fit;
:func:`separation_report` says what it found in ``settings["separation"]``.

Separation (why the annex dropped Poisson)
------------------------------------------
The Poisson MLE does not exist when the outcome is 0 in every row of a set that some
direction of the parameters can push to ``-inf`` without moving the other rows
(Correia, Guimaraes & Zylkin 2019, "Verifying the existence of maximum likelihood
estimates for generalized linear models", arXiv:1903.01633; ``ppmlhdfe`` and fixest drop
such rows). Checked iteratively on the rows still in the fit and reported in
``settings["separation"]`` (nothing is dropped silently):

* ``all_zero_units``: units with ``y = 0`` in every period: ``a_i = -inf``, rows left out
  of the fit and, as fixest leaves them out of the estimation sample, of the cell averages.
  A partner with 0 in every month has no per-country estimate (``all_zero_outcome``).
* ``all_zero_periods``: periods with ``y = 0`` for every unit: ``l_t = -inf``, rows left
  out of the fit and of the cell averages.
* ``zero_cells``: treated cells whose observed outcomes are all 0, e.g. a country with no
  forced returns in a post month, or in every post month: ``tau_c = -inf``, rows left out
  of the fit (they fit exactly). The effect is well defined at the boundary:
  ``ATT_c = -mean_{r in c} b_r``, minus the counterfactual mean, with ``b_r`` estimated from
  the unit's other rows and the period effect (fixest stops at a large negative
  ``tau_c``, the same count-scale effect to rounding). Its delta-method standard error
  has no ``tau_c`` term (the derivative in ``tau_c`` is 0 at ``-inf``) and is flagged
  unreliable: ``inference = "cluster_unit_separated"`` on the cell and on every aggregate
  that puts weight on it.
* ``zero_baseline_units``: a treated unit whose cells are its own (``cohort="unit"``
  or a one-unit cohort) and whose untreated rows are all 0: ``a_i = -inf`` and
  ``tau = +inf``; its rows are left out and ``ATT_c`` = mean observed count (the
  counterfactual is 0), flagged as above.
* ``zero_control_periods``: a period in which every comparison (non-cell) row is 0 while
  a treated cell has events: ``l_t = -inf`` and that period's ``tau = +inf``. The
  comparison rows are left out, the cells' counterfactual is 0 and ``ATT_c`` is the cell's
  fitted (= mean observed) count, flagged as above. Typical with a small control pool.
* ``other_separated_rows``: any separation left after these rules, found by the linear
  programme of Correia et al. (rows with ``y = 0`` and ``x'd < 0`` for a direction ``d``
  with ``x'd = 0`` on every row with ``y > 0``): the rows are left out of the fit (fitted
  mean 0); a cell counterfactual that this makes inestimable leaves its cell unidentified.

With dummies only there is no other kind of separation. Singleton rows (alone in their
unit or period) are dropped first, as :mod:`mipa.estimators.etwfe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from mipa.estimators.results import plain

__all__ = ["SEPARATION_TOL", "Separation", "detect_separation", "separation_report"]

#: x'd below which the linear programme calls a row separated (x'd is in [-1, 0])
SEPARATION_TOL = 1e-6


@dataclass
class Separation:
    """Rows in the fit (``active``), rows that count in the cell averages (``counted``),
    rows whose counterfactual mean is 0 at the boundary (``cf_zero``) and rows whose fitted
    mean is the observation (``mu_observed``), with what was found and why."""

    active: np.ndarray
    counted: np.ndarray
    cf_zero: np.ndarray
    mu_observed: np.ndarray
    all_zero_units: list[Any] = field(default_factory=list)
    all_zero_periods: list[Any] = field(default_factory=list)
    zero_cells: list[int] = field(default_factory=list)
    zero_baseline_units: list[Any] = field(default_factory=list)
    zero_baseline_cells: list[int] = field(default_factory=list)
    zero_control_periods: list[Any] = field(default_factory=list)
    zero_control_cells: list[int] = field(default_factory=list)
    other_separated_rows: int = 0


def _drop_all_zero(sep: Separation, codes: np.ndarray, n_levels: int, values: np.ndarray, w: np.ndarray,
                   found: list[Any]) -> bool:
    """Leave out the rows of the units (or periods) whose rows in the fit are all 0 (their
    effect is ``-inf``): out of the fit and the averages, counterfactual 0. Appends the
    levels to ``found``; False when there is none."""
    zero = (np.bincount(codes[sep.active], minlength=n_levels) > 0) & (
        np.bincount(codes, weights=w, minlength=n_levels) <= 0)
    if not zero.any():
        return False
    found += [plain(values[k]) for k in np.flatnonzero(zero)]
    rows = zero[codes] & ~sep.mu_observed
    sep.active &= ~rows
    sep.counted &= ~rows
    sep.cf_zero |= rows
    return True


def detect_separation(
    y: np.ndarray, unit: np.ndarray, period: np.ndarray, cell: np.ndarray, n_cells: int,
    unit_values: np.ndarray, period_values: np.ndarray,
) -> Separation:
    """The rules of the module docstring, applied until none fires, then the linear
    programme for anything left."""
    n = y.size
    sep = Separation(active=np.ones(n, dtype=bool), counted=np.ones(n, dtype=bool),
                      cf_zero=np.zeros(n, dtype=bool), mu_observed=np.zeros(n, dtype=bool))
    n_u, n_t = int(unit.max()) + 1, int(period.max()) + 1
    in_any_cell = cell >= 0
    cell0 = np.maximum(cell, 0)
    changed = True
    while changed:
        changed = False
        act = sep.active
        w = np.where(act, y, 0.0)
        if (_drop_all_zero(sep, unit, n_u, unit_values, w, sep.all_zero_units)
                or _drop_all_zero(sep, period, n_t, period_values, w, sep.all_zero_periods)):
            changed = True
            continue
        if not n_cells:
            break
        inc = act & in_any_cell
        cnt_c = np.bincount(cell[inc], minlength=n_cells)
        zero_c = (cnt_c > 0) & (np.bincount(cell[inc], weights=y[inc], minlength=n_cells) <= 0)
        if zero_c.any():
            sep.zero_cells += [int(c) for c in np.flatnonzero(zero_c)]
            sep.active &= ~(in_any_cell & zero_c[cell0])
            changed = True
            continue
        # treated units whose cells are their own and whose untreated rows are all 0
        units_per_cell = pd.Series(unit[inc]).groupby(cell[inc]).nunique()
        exclusive = np.zeros(n_cells, dtype=bool)
        exclusive[units_per_cell.index.to_numpy()] = units_per_cell.to_numpy() == 1
        ctrl = act & ~in_any_cell
        cnt_ctrl = np.bincount(unit[ctrl], minlength=n_u)
        tot_ctrl = np.bincount(unit[ctrl], weights=y[ctrl], minlength=n_u)
        has_cells = np.bincount(unit[inc], minlength=n_u) > 0
        all_excl = np.ones(n_u, dtype=bool)
        np.logical_and.at(all_excl, unit[inc], exclusive[cell[inc]])
        bad = has_cells & all_excl & (cnt_ctrl > 0) & (tot_ctrl <= 0)
        if bad.any():
            sep.zero_baseline_units += [plain(unit_values[u]) for u in np.flatnonzero(bad)]
            sep.zero_baseline_cells += [int(c) for c in np.unique(cell[inc & bad[unit]])]
            rows = bad[unit]
            sep.mu_observed |= rows & in_any_cell
            sep.cf_zero |= rows & in_any_cell
            sep.active &= ~rows
            changed = True
            continue
        # periods whose comparison rows are all 0 while a treated cell has events
        cnt_pc = np.bincount(period[ctrl], minlength=n_t)
        tot_pc = np.bincount(period[ctrl], weights=y[ctrl], minlength=n_t)
        tot_pt = np.bincount(period[inc], weights=y[inc], minlength=n_t)
        zero_ct = (cnt_pc > 0) & (tot_pc <= 0) & (tot_pt > 0)
        if zero_ct.any():
            sep.zero_control_periods += [plain(period_values[t]) for t in np.flatnonzero(zero_ct)]
            sep.zero_control_cells += [int(c) for c in np.unique(cell[inc & zero_ct[period]])]
            sep.active &= ~(ctrl & zero_ct[period])
            sep.cf_zero |= in_any_cell & zero_ct[period]
            changed = True
            continue
    act = sep.active
    if act.any() and (y[act] <= 0).any() and not _cannot_separate(y[act], unit[act], period[act], cell[act]):
        extra = _lp_separated(y[act], unit[act], period[act], cell[act], n_u, n_t, n_cells)
        if extra.any():
            sep.active[np.flatnonzero(act)[extra]] = False
            sep.other_separated_rows = int(extra.sum())
    return sep


def _cannot_separate(y: np.ndarray, unit: np.ndarray, period: np.ndarray, cell: np.ndarray) -> bool:
    """A certificate that :func:`_lp_separated` finds nothing, without the programme.

    ``x'd = u_unit + v_period + w_cell`` must vanish on every row with ``y > 0``. When the
    positive rows outside the cells link every unit and period of the rows into one
    connected graph, that forces ``u = a``, ``v = -a``; when every cell has a positive row,
    it forces ``w = 0``. Then ``x'd = 0`` on every row and none is separated.
    """
    pos = y > 0
    plain_pos = pos & (cell < 0)
    in_cell = cell >= 0
    if in_cell.any() and not np.all(np.isin(np.unique(cell[in_cell]), cell[in_cell & pos])):
        return False
    units, u_codes = np.unique(unit, return_inverse=True)
    periods, t_codes = np.unique(period, return_inverse=True)
    if not plain_pos.any():
        return False
    n_u, n_t = units.size, periods.size
    edges = sparse.coo_matrix((np.ones(int(plain_pos.sum())), (u_codes[plain_pos], n_u + t_codes[plain_pos])),
                              shape=(n_u + n_t, n_u + n_t))
    n_components, _ = connected_components(edges, directed=False)
    return n_components == 1


def _lp_separated(y: np.ndarray, unit: np.ndarray, period: np.ndarray, cell: np.ndarray,
                  n_u: int, n_t: int, n_c: int) -> np.ndarray:
    """Rows separated in the design of unit, period and cell dummies (Correia, Guimaraes &
    Zylkin 2019, sec. 3): ``max sum_{y=0} -x'd`` subject to ``x'd = 0`` where ``y > 0`` and
    ``-1 <= x'd <= 0`` where ``y = 0``; rows with ``x'd < 0`` are separated. Repeated on the
    rows left until nothing is found (an optimum need not show every separated row)."""
    n = y.size
    rows = np.concatenate([np.arange(n), np.arange(n), np.flatnonzero(cell >= 0)])
    cols = np.concatenate([unit, n_u + period, n_u + n_t + cell[cell >= 0]])
    x = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n_u + n_t + max(n_c, 0)))
    separated = np.zeros(n, dtype=bool)
    for _ in range(50):
        zero = ~separated & (y <= 0)
        pos = ~separated & (y > 0)
        if not zero.any():
            break
        a_ub = x[zero]
        c = np.asarray(a_ub.sum(axis=0)).ravel()
        res = linprog(
            c, A_ub=sparse.vstack([a_ub, -a_ub]).tocsr(),
            b_ub=np.concatenate([np.zeros(a_ub.shape[0]), np.ones(a_ub.shape[0])]),
            A_eq=x[pos] if pos.any() else None, b_eq=np.zeros(int(pos.sum())) if pos.any() else None,
            bounds=(None, None), method="highs",
        )
        if res.status != 0 or res.x is None:
            break
        found = (a_ub @ res.x) < -SEPARATION_TOL
        if not found.any():
            break
        separated[np.flatnonzero(zero)[found]] = True
    return separated


def separation_report(sep: Separation, cells: pd.DataFrame, group_col: list[Any]) -> dict[str, Any]:
    """JSON-able account of the separation checks."""
    def cell_list(ids: list[int]) -> list[dict[str, Any]]:
        return [{"group": plain(group_col[i]), "period": plain(cells["period"].iloc[i]),
                 "event_time": int(cells["event_time"].iloc[i])} for i in sorted(ids)]

    return {
        "rows_left_out": int((~sep.active).sum()),
        "all_zero_units": sep.all_zero_units,
        "all_zero_units_reason": "outcome 0 in every period: unit effect -inf; rows left out of the fit and the averages",
        "all_zero_periods": sep.all_zero_periods,
        "all_zero_periods_reason": "outcome 0 for every unit: period effect -inf; rows left out of the fit and the averages",
        "zero_cells": cell_list(sep.zero_cells),
        "zero_cells_reason": "treated outcome 0 in every row of the cell: tau = -inf; ATT = -counterfactual mean, SE unreliable",
        "zero_baseline_units": sep.zero_baseline_units,
        "zero_baseline_cells": cell_list(sep.zero_baseline_cells),
        "zero_baseline_reason": "untreated rows of a unit with its own cells all 0: counterfactual 0, ATT = observed mean, SE unreliable",
        "zero_control_periods": sep.zero_control_periods,
        "zero_control_cells": cell_list(sep.zero_control_cells),
        "zero_control_reason": "every comparison row of the period 0 while a treated cell has events: counterfactual 0, "
                               "ATT = fitted (observed) mean, SE unreliable",
        "other_separated_rows": sep.other_separated_rows,
        "other_separated_reason": "rows separated in the dummy design (linear programme); left out of the fit",
    }
