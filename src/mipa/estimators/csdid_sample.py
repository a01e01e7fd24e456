r"""Callaway & Sant'Anna: options, panel preparation, cohorts and ATT(g,t) cells, as R ``did``.

References: Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with
multiple time periods", Journal of Econometrics 225(2), 200-230 (CS2021); R package ``did``
(``att_gt``'s pre-processing, ``pre_process_did``). The rules (never-treated units, units
treated in the first period, no never-treated units, unbalanced panels, the cells' base
periods and control groups) are stated in :func:`mipa.estimators.csdid.callaway_santanna`.

* :func:`prepare_data`: the wide ``N x T`` outcome (and covariate) arrays, each unit's first
  treated period and what was dropped (:class:`CSData`);
* :func:`build_cohorts`: cohorts by first treated period, or one per treated unit;
* :func:`build_cells`: every ATT(g,t) cell with its base period and the treated and control
  units observed in both periods (:class:`Cells`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable

__all__ = ["CSData", "Cells", "Cohorts", "build_cells", "build_cohorts", "fmt_period", "prepare_data",
           "validate_options"]


@dataclass
class CSData:
    """The panel as arrays after the sample rules (:func:`prepare_data`)."""

    unit_ids: np.ndarray  # (N,) unit ids, sorted
    tlist: np.ndarray  # (T,) sorted periods
    y: np.ndarray  # (N, T) outcome, NaN = not observed
    x: np.ndarray | None  # (N, T, p) covariates, or None
    g: np.ndarray  # (N,) first treatment period, inf = never treated
    control_only_g: float | None  # cohort kept as control only (no never-treated units)
    dropped_units: list[str]
    notes: list[str]

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)


@dataclass
class Cohorts:
    """The treated cohorts: labels, ``att_gt`` keys, first treated periods, unit membership."""

    labels: list[str]  # scope labels
    att_gt_keys: list[Any]  # value in the att_gt 'group' column
    g: np.ndarray  # (C,) first treatment period
    members: np.ndarray  # (N, C) bool


@dataclass
class Cells:
    """The ATT(g,t) cells; ``att``, ``psi`` and ``valid`` are filled by
    :func:`mipa.estimators.csdid_cells.estimate_cells`."""

    coh: np.ndarray  # (K,) cohort index
    g: np.ndarray  # (K,) first treatment period
    t_idx: np.ndarray  # (K,) index of t in tlist
    b_idx: np.ndarray  # (K,) index of the base period
    t: np.ndarray  # (K,) period value
    post: np.ndarray  # (K,) bool, g <= t
    ref: np.ndarray  # (K,) bool, universal-base reference cell (t == base)
    in_treat: np.ndarray  # (N, K) bool, treated units observed in the cell
    in_ctrl: np.ndarray  # (N, K) bool, control units observed in the cell
    att: np.ndarray | None = None  # (K,)
    psi: np.ndarray | None = None  # (N, K) influence functions (0 outside the cell)
    valid: np.ndarray | None = None  # (K,) bool, estimable (not NaN)

    @property
    def n_obs(self) -> np.ndarray:
        return (self.in_treat | self.in_ctrl).sum(axis=0)


def validate_options(control_group, base_period, anticipation, est_method, n_boot, alpha,
                     cohort, multiplier) -> None:
    """Raise ``ValueError`` for an option :func:`mipa.estimators.csdid.callaway_santanna` does not take."""
    choices = {
        "control_group": (control_group, ("nevertreated", "notyettreated")),
        "base_period": (base_period, ("varying", "universal")),
        "est_method": (est_method, ("dr", "ipw", "reg")),
        "cohort": (cohort, ("group", "unit")),
        "multiplier": (multiplier, ("rademacher", "mammen")),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if isinstance(anticipation, bool) or int(anticipation) != anticipation or anticipation < 0:
        raise ValueError(f"anticipation must be a non-negative integer, got {anticipation!r}")
    if int(n_boot) < 2:
        raise ValueError("n_boot must be at least 2")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")


def prepare_data(panel: pd.DataFrame, outcome: str, unit: str, period: str, first_treat: str,
                 covariates: list[str], anticipation: int, control_group: str) -> CSData:
    """The wide arrays of the panel after R ``did``'s sample rules (warnings say what was
    dropped); data conditions raise :class:`~mipa.estimability.NotEstimable`, invalid input
    ``ValueError`` / ``KeyError``."""
    needed = [unit, period, first_treat, outcome, *covariates]
    missing = [c for c in dict.fromkeys(needed) if c not in panel.columns]
    if missing:
        raise KeyError(f"columns not in the panel: {missing}")
    df = panel[list(dict.fromkeys(needed))]
    if len(df) == 0:
        raise ValueError("the panel is empty")
    if df[unit].isna().any() or df[period].isna().any():
        raise ValueError(f"{unit!r} and {period!r} must not be missing")
    if df.duplicated([unit, period]).any():
        raise ValueError(f"more than one row per ({unit}, {period})")

    per = pd.to_numeric(df[period]).to_numpy(dtype=float)
    if not np.all(np.isfinite(per)) or np.any(per != np.round(per)):
        raise ValueError(f"{period!r} must be integer-valued (e.g. a month index)")
    ft = pd.to_numeric(df[first_treat]).to_numpy(dtype=float)
    ft = np.where(np.isnan(ft) | (ft == 0), np.inf, ft)

    try:
        codes, unit_ids = pd.factorize(df[unit], sort=True)
    except TypeError:
        codes, unit_ids = pd.factorize(df[unit], sort=False)
    unit_ids = np.asarray(unit_ids)
    tlist, t_codes = np.unique(per, return_inverse=True)
    n, n_t = len(unit_ids), len(tlist)

    g = np.full(n, np.nan)
    g[codes] = ft
    if not np.array_equal(g[codes], ft):
        raise ValueError(f"{first_treat!r} must be constant within each unit")

    y = np.full((n, n_t), np.nan)
    y[codes, t_codes] = pd.to_numeric(df[outcome]).to_numpy(dtype=float)
    x = None
    if covariates:
        x = np.full((n, n_t, len(covariates)), np.nan)
        x[codes, t_codes, :] = df[covariates].apply(pd.to_numeric).to_numpy(dtype=float)
        bad = np.isnan(x).any(axis=2)
        y[bad] = np.nan  # a unit-period without covariates is not observed
    if np.isinf(y).any():
        raise ValueError(f"{outcome!r} has infinite values")

    notes: list[str] = []
    # units first treated after the last period (+ anticipation) are never treated (R did)
    g = np.where(g > tlist[-1] + anticipation, np.inf, g)

    control_only_g = None
    if not np.isinf(g).any():
        latest = float(np.max(g))
        keep_t = tlist < latest - anticipation
        if not keep_t.any():
            raise NotEstimable("no_control_units", "no never-treated units and no period before the last cohort")
        tlist, y = tlist[keep_t], y[:, keep_t]
        if x is not None:
            x = x[:, keep_t, :]
        if control_group == "nevertreated":
            g = np.where(g == latest, np.inf, g)
            msg = (f"no never-treated units: the last cohort (first_treat={latest:g}) is used "
                   f"as never-treated and periods from {latest - anticipation:g} on are dropped")
        else:
            control_only_g = latest
            msg = (f"no never-treated units: periods from {latest - anticipation:g} on are "
                   f"dropped and the last cohort (first_treat={latest:g}) is a control only")
        warnings.warn(msg, stacklevel=4)
        notes.append(msg)

    early = np.isfinite(g) & (g <= tlist[0] + anticipation)
    dropped: list[str] = []
    if early.any():
        dropped = [str(u) for u in unit_ids[early]]
        msg = (f"dropped {int(early.sum())} units already treated in the first period"
               + (f" (anticipation = {anticipation})" if anticipation else "") + f": {dropped}")
        warnings.warn(msg, stacklevel=4)
        notes.append(msg)
        keep = ~early
        unit_ids, g, y = unit_ids[keep], g[keep], y[keep]
        if x is not None:
            x = x[keep]

    treated = np.isfinite(g) & (g != (control_only_g if control_only_g is not None else np.nan))
    if not treated.any():
        raise NotEstimable("no_treated_units", "no treated unit with an untreated period is left")
    if len(tlist) < 2:
        raise NotEstimable("too_few_pre_periods", "need at least two periods")
    return CSData(unit_ids, tlist, y, x, g, control_only_g, dropped, notes)


def fmt_period(v: float) -> Any:
    """A period or event time as an int when it is whole, else a float (for the tables)."""
    return int(v) if float(v).is_integer() else float(v)


def build_cohorts(data: CSData, cohort: str, unit_labels: Mapping | None) -> Cohorts:
    """Cohorts by first treated period (``"group"``) or one per treated unit (``"unit"``,
    ordered by start, then label)."""
    treated = np.isfinite(data.g)
    if data.control_only_g is not None:
        treated &= data.g != data.control_only_g
    if cohort == "group":
        gs = np.unique(data.g[treated])
        members = data.g[:, None] == gs[None, :]
        keys = [fmt_period(v) for v in gs]
        labels = [str(k) for k in keys]
        return Cohorts(labels, keys, gs, members)

    idx = np.flatnonzero(treated)
    labels_all = [
        str(unit_labels[u]) if unit_labels is not None and u in unit_labels else str(u)
        for u in data.unit_ids[idx]
    ]
    order = sorted(range(len(idx)), key=lambda i: (data.g[idx[i]], labels_all[i]))
    idx = idx[order]
    labels = [labels_all[i] for i in order]
    if len(set(labels)) != len(labels):
        raise ValueError("unit labels of treated units must be unique")
    members = np.zeros((data.n_units, len(idx)), dtype=bool)
    members[idx, np.arange(len(idx))] = True
    return Cohorts(labels, list(labels), data.g[idx].astype(float), members)


def build_cells(data: CSData, cohorts: Cohorts, base_period: str, control_group: str,
                anticipation: int) -> Cells:
    """Every ATT(g,t) cell of every cohort with its base period (``varying`` or
    ``universal``) and the treated and control units observed in both periods."""
    tlist = data.tlist
    n_t = len(tlist)
    n_c = len(cohorts.g)
    # pret: last period index with tlist + anticipation < g (exists: early units dropped)
    pret = np.array([np.flatnonzero(tlist + anticipation < gv)[-1] for gv in cohorts.g])

    if base_period == "varying":
        t_grid = np.arange(1, n_t)
    else:
        t_grid = np.arange(n_t)
    coh = np.repeat(np.arange(n_c), len(t_grid))
    t_idx = np.tile(t_grid, n_c)
    g = cohorts.g[coh]
    t = tlist[t_idx]
    post = g <= t
    if base_period == "varying":
        b_idx = np.where(post, pret[coh], t_idx - 1)
    else:
        b_idx = pret[coh]
    ref = t_idx == b_idx

    members = cohorts.members[:, coh]  # (N, K)
    # observed in both periods (a missing covariate already blanked its unit-period)
    obs = ~np.isnan(data.y[:, t_idx]) & ~np.isnan(data.y[:, b_idx])
    never = np.isinf(data.g)
    if control_group == "nevertreated":
        ctrl = np.broadcast_to(never[:, None], members.shape)
    else:
        cutoff = np.maximum(t, tlist[b_idx]) + anticipation
        ctrl = (data.g[:, None] > cutoff[None, :]) & ~members
    return Cells(
        coh=coh, g=g, t_idx=t_idx, b_idx=b_idx, t=t, post=post, ref=ref,
        in_treat=members & obs, in_ctrl=ctrl & obs,
    )
