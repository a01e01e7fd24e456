"""The aggregates of ETWFE: weights over the cells, the scope labels and the rows' status.

Reference: Wooldridge, J. M. (2021), SSRN 3906345, sections 6-7, as Stata ``jwdid``'s
``estat simple / group / event / calendar`` and R ``etwfe``'s ``emfx``; the group and
calendar overall effects as Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-
differences with multiple time periods", Journal of Econometrics 225(2), 200-230 (cohorts
weighted by their units; unweighted means over event times and periods). Each aggregate
is ``w'att`` over the identified cells (:func:`aggregation_matrix`), and
:func:`aggregate_status` says which rows left cells out or have none. Poisson ETWFE
(:mod:`mipa.estimators.poisson_etwfe`) shares the weights.

Aggregates are linear combinations ``w'b`` of the coefficients with delta-method
variance ``w'Vw`` (exact, as ``w`` does not depend on ``b``):

* ``simple``: average over all treated post-treatment rows, i.e. post cells weighted by
  their number of observed rows (``jwdid estat simple``, ``etwfe emfx("simple")``).
* ``group``: per cohort, its post cells weighted by rows; ``overall`` = cohorts weighted
  by their number of units (Callaway & Sant'Anna's ``P(G = g)``).
* ``dynamic``: per event time ``e = t - g``, cells weighted by rows (``estat event``,
  ``emfx("event")``); ``overall`` = unweighted mean of the ``e >= 0`` effects (as CS).
  The per-``e`` effects are the event-study table; with never-treated controls it has
  the leads ``e < -1`` and the reference ``e = -1`` (estimate 0, no standard error).
* ``calendar``: per period, the post cells of that period weighted by rows
  (``estat calendar``); ``overall`` = unweighted mean over periods (as CS). Its
  per-period rows carry the period (as text) in ``scope``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable, status_columns
from mipa.estimators.etwfe_sample import Cohort, scope_label

__all__ = ["Aggregation", "aggregate_status", "aggregation_matrix", "cohort_labels", "rows_weights", "unit_label_map"]


class Aggregation(NamedTuple):
    """Weights of the aggregates over the cells (rows ``x`` cells): a row's effect is
    ``weights @ att``, its variance ``w V w'``.

    ``meta``: one dict per row of the estimates table (``aggregation``, ``scope``,
    ``n_treated_clusters``, ``cells_left_out``), ``weights`` its rows; ``event_meta``
    (``event_time``) and ``event_weights``: the event-study rows.
    """

    meta: list[dict[str, Any]]
    weights: np.ndarray
    event_meta: list[dict[str, Any]]
    event_weights: np.ndarray


def cohort_labels(
    cells: pd.DataFrame, cohort: Cohort, unit_labels: Mapping[Any, str] | pd.Series | None = None
) -> dict[Any, str]:
    """Scope label of every cohort key of ``cells``: the unit's label (``unit_labels[u]``
    or ``str(u)``) with ``cohort="unit"``, else the first treated period as text."""
    if cohort == "unit":
        return unit_label_map(cells["key"], unit_labels)
    return {k: scope_label(k) for k in pd.unique(cells["key"])}


def rows_weights(cells: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Weights over all cells: rows share within ``mask``, zero elsewhere; all NaN when
    ``mask`` is empty (the aggregate has no identified cell)."""
    w = np.where(mask, cells["n_obs"].to_numpy(dtype=float), 0.0)
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), np.nan)


def aggregation_matrix(
    cells: pd.DataFrame, labels: Mapping[Any, str], identified: np.ndarray | None = None
) -> Aggregation:
    """Weight matrices for the estimates table and the event-study table (the rows of
    ``simple``, ``group``, ``dynamic`` and ``calendar`` described in the module docstring).

    Returns (estimate row meta, W_est) and (event row meta, W_event), each ``W`` of
    shape ``rows x n_cells``; a row's effect is ``W @ att``. Cells not ``identified``
    (their dummy is collinear with the fixed effects) get weight 0: every aggregate is
    over the identified cells, and a row with none is all NaN. Each meta row counts the
    cells it left out (``cells_left_out``).
    """
    ident = np.ones(len(cells), dtype=bool) if identified is None else np.asarray(identified, dtype=bool)
    post = cells["event_time"].to_numpy() >= 0
    meta: list[dict[str, Any]] = []
    W: list[np.ndarray] = []
    unit_codes, _ = pd.factorize(pd.Series([u for us in cells["units"] for u in us]))
    lengths = np.fromiter((len(us) for us in cells["units"]), dtype=np.int64, count=len(cells))
    # cells x units (a few hundred x ~100): dense, so a row selection is one fast pass
    incidence = np.zeros((len(cells), int(unit_codes.max()) + 1 if unit_codes.size else 0), dtype=bool)
    incidence[np.repeat(np.arange(len(cells)), lengths), unit_codes] = True

    def units_of(mask: np.ndarray) -> int:
        return int(incidence[mask].any(axis=0).sum())

    def add(agg: str, scope: str, w: np.ndarray, mask: np.ndarray) -> None:
        meta.append({"aggregation": agg, "scope": scope, "n_treated_clusters": units_of(mask & ident),
                     "cells_left_out": int((mask & ~ident).sum())})
        W.append(w)

    def mean_of(rows: list[np.ndarray]) -> np.ndarray:
        usable = [w for w in rows if np.isfinite(w).all()]
        return np.vstack(usable).mean(axis=0) if usable else np.full(len(cells), np.nan)

    add("simple", "overall", rows_weights(cells, post & ident), post)

    keys = cells["key"].to_numpy()
    group_rows: list[np.ndarray] = []
    group_units: list[int] = []
    for k in pd.unique(keys):
        m = post & (keys == k)
        if not m.any():
            continue
        w = rows_weights(cells, m & ident)
        add("group", labels[k], w, m)
        if np.isfinite(w).all():
            group_rows.append(w)
            group_units.append(units_of(m & ident))
    if group_rows:
        pi = np.asarray(group_units, dtype=float)
        add("group", "overall", (pi / pi.sum()) @ np.vstack(group_rows), post)
    else:
        add("group", "overall", np.full(len(cells), np.nan), post)

    e = cells["event_time"].to_numpy()
    ev_meta: list[dict[str, Any]] = []
    ev_W: list[np.ndarray] = []
    for ei in np.unique(e):
        m = e == ei
        ev_meta.append({"event_time": int(ei)})
        ev_W.append(rows_weights(cells, m & ident))
    add("dynamic", "overall", mean_of([w for mt, w in zip(ev_meta, ev_W, strict=True) if mt["event_time"] >= 0]),
        post)

    t = cells["period"].to_numpy()
    cal = []
    for ti in np.unique(t[post]):
        m = post & (t == ti)
        w = rows_weights(cells, m & ident)
        add("calendar", scope_label(ti), w, m)
        cal.append(w)
    add("calendar", "overall", mean_of(cal), post)
    return Aggregation(meta, np.vstack(W), ev_meta, np.vstack(ev_W))



def aggregate_status(
    estimates: pd.DataFrame, cells: pd.DataFrame, identified: np.ndarray, unit_labels: Mapping[Any, str] | None
) -> pd.DataFrame:
    """Status columns: rows over no identified cell are not estimable; rows that left
    unidentified cells out say how many and which."""
    missing = cells.loc[~identified]
    names = [
        f"{unit_labels[k] if unit_labels is not None else scope_label(g)}@{scope_label(p)}"
        for k, g, p in zip(missing["key"], missing["g"], missing["period"], strict=True)
    ]
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    status = []
    for left_out, value in zip(estimates.pop("cells_left_out"), estimates["estimate"], strict=True):
        if not np.isfinite(value):
            failure = NotEstimable("not_identified", "no cell of this aggregate is identified (collinear with the "
                                   "fixed effects: no comparison country observed in its months)")
            status.append(status_columns(failure))
        elif left_out:
            status.append(status_columns(None, f"{left_out} unidentified cell(s) left out of the aggregate "
                                               f"(cohort@period): {listed}"))
        else:
            status.append(status_columns(None))
    return pd.concat([estimates.reset_index(drop=True), pd.DataFrame(status)], axis=1)


def unit_label_map(
    keys: pd.Series, unit_labels: Mapping[Any, str] | pd.Series | None
) -> dict[Any, str]:
    """Label of each treated unit: ``unit_labels[u]`` when given, else ``str(u)``."""
    out: dict[Any, str] = {}
    for k in pd.unique(keys):
        if unit_labels is not None and k in unit_labels:
            out[k] = str(unit_labels[k])
        else:
            out[k] = scope_label(k)
    return out
