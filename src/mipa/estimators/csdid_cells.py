r"""Callaway & Sant'Anna: the ATT(g,t) of every cell with its influence function.

References: Callaway, B. and Sant'Anna, P. H. C. (2021), "Difference-in-Differences with
multiple time periods", Journal of Econometrics 225(2), 200-230 (CS2021); Sant'Anna, P. H.
C. and Zhao, J. (2020), "Doubly robust difference-in-differences estimators", Journal of
Econometrics 219(1), 101-122 (SZ2020); R packages ``did`` (``att_gt``) and ``DRDID``.
Formulas (CS2021 eq. 2.6 / Thm 1, SZ2020 eq. 3.1 and Prop. 3.1):
:func:`mipa.estimators.csdid.callaway_santanna`.

Without covariates every estimator is the difference of the mean changes of the treated
and the controls, computed in closed form for all cells at once,
``psi_i = N [D_i (dY_i - mean_T) / n_T - C_i (dY_i - mean_C) / n_C]``; with covariates each
cell runs the 2x2 estimator of :mod:`mipa.estimators.csdid_twobytwo` and its influence
function is rescaled to all ``N`` units (``N / n1`` on the cell's units, 0 elsewhere).
"""

from __future__ import annotations

import warnings

import numpy as np

from mipa.estimators.csdid_sample import Cells, CSData
from mipa.estimators.csdid_twobytwo import (
    CellEstimationError,
    drdid_panel,
    ipw_panel,
    reg_panel,
)

__all__ = ["estimate_cells"]


def estimate_cells(data: CSData, cells: Cells, est_method: str, with_covariates: bool) -> None:
    """Fill ``cells.att``, ``cells.psi`` (``N x K``, rescaled to all units) and ``cells.valid``;
    a cell that cannot be estimated is NaN, with one warning for all of them."""
    n = data.n_units
    k = len(cells.coh)
    dy = data.y[:, cells.t_idx] - data.y[:, cells.b_idx]  # (N, K), NaN where unobserved
    tm, cm = cells.in_treat, cells.in_ctrl
    n_t = tm.sum(axis=0)
    n_c = cm.sum(axis=0)
    n1 = n_t + n_c
    att = np.full(k, np.nan)
    psi = np.zeros((n, k))
    problems: list[str] = []

    empty = (n_t == 0) | (n_c == 0)
    for j in np.flatnonzero(empty & ~cells.ref):
        problems.append(f"no {'treated' if n_t[j] == 0 else 'control'} units observed")

    if not with_covariates:
        ok = ~empty
        # DRDID's overlap check / trimming with a constant propensity score n_T / n1
        share = np.where(n1 > 0, n_t / np.maximum(n1, 1), 0.0)
        over = ok & (share >= 0.995) & ~cells.ref
        problems.extend(["overlap condition violated"] * int(over.sum()))
        ok &= ~over
        dz = np.where(tm | cm, dy, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_t = (dz * tm).sum(axis=0) / n_t
            mean_c = (dz * cm).sum(axis=0) / n_c
            att_all = mean_t - mean_c
            # psi_i = N [ D_i (dY_i - mean_T) / n_T - C_i (dY_i - mean_C) / n_C ]
            psi_all = n * (
                tm * (dz - mean_t[None, :]) / n_t[None, :]
                - cm * (dz - mean_c[None, :]) / n_c[None, :]
            )
        att[ok] = att_all[ok]
        psi[:, ok] = np.where(tm | cm, psi_all, 0.0)[:, ok]
    else:
        estimator = {"dr": drdid_panel, "ipw": ipw_panel, "reg": reg_panel}[est_method]
        x_all = data.x
        ps_cache: dict = {}
        for j in np.flatnonzero(~empty & ~cells.ref):
            rows = np.flatnonzero(tm[:, j] | cm[:, j])
            d = tm[rows, j].astype(float)
            early = min(cells.t_idx[j], cells.b_idx[j])
            xj = np.column_stack([np.ones(len(rows)), x_all[rows, early, :]])
            try:
                with np.errstate(invalid="raise", divide="raise", over="ignore"):
                    a, inf = estimator(dy[rows, j], d, xj, ps_cache=ps_cache)
            except (CellEstimationError, np.linalg.LinAlgError, FloatingPointError) as exc:
                problems.append(str(exc) or type(exc).__name__)
                continue
            if not np.isfinite(a) or not np.all(np.isfinite(inf)):
                problems.append("non-finite estimate")
                continue
            att[j] = a
            psi[rows, j] = (n / len(rows)) * inf

    # universal base period: the reference cell is 0 by construction, with a zero IF
    att[cells.ref] = 0.0
    psi[:, cells.ref] = 0.0
    if problems:
        kinds = sorted(set(problems))
        warnings.warn(
            f"{len(problems)} ATT(g,t) cells could not be estimated and are NaN "
            f"(left out of the aggregations): {'; '.join(kinds)}",
            stacklevel=4,
        )
    cells.att = att
    cells.psi = psi
    cells.valid = np.isfinite(att)
