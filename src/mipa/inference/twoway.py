"""Exact two-way fixed-effects fit ``y_it = a_i + g_t`` on a subset of a panel's cells.

Reference: the normal equations of the two-way error-components model with the unit
effects eliminated (e.g. Wansbeek, T. and Kapteyn, A. (1989), "Estimation of the
error-components model with incomplete panels", Journal of Econometrics 41(3), 341-361),
solved by Woodbury's identity when most units are complete. It is the untreated-cells fit
of the imputation estimator (Borusyak, Jaravel & Spiess 2024;
:func:`mipa.inference.panel_estimators.imputation_att`) and of the Ferman-Pinto rescaling
(:mod:`mipa.inference.randomization`), and serves the placebo pre-trend test
(:mod:`mipa.sensitivity.placebo`).
"""

from __future__ import annotations

import numpy as np

from mipa.inference.panel_arrays import PanelArrays

__all__ = ["low_rank_effects", "twoway_effects", "twoway_residuals"]


def twoway_residuals(pa: PanelArrays, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS of ``y_it = a_i + g_t`` on the cells in ``cells`` (``N x T`` bool), exactly.

    Eliminating ``a_i = mean_{t in O_i}(y_it - g_t)`` leaves the ``T x T`` normal equations
    ``S g = r`` with ``S = diag(sum_i O_it) - sum_i o_i o_i' / n_i`` and
    ``r = sum_i (o_i y_i - o_i (o_i'y_i) / n_i)`` (``o_i`` = indicator of unit ``i``'s cells,
    ``n_i`` their number); ``S`` has the constant in its null space, so ``(S + 11'/T) g = r``
    picks the solution with ``sum g = 0`` (the cells must connect all periods).
    Returns ``a`` (NaN for a unit with no cell), ``g`` (NaN for a period with no cell)
    and the residual matrix (NaN outside ``cells``). Exact on unbalanced panels.

    Solved by :func:`twoway_effects`: when most units have every period (the placebo
    draws of the randomization tests: only the placebo units lose their post months) the
    ``F`` units with all ``T`` cells add ``F (I - 11'/T)`` to ``S``, so
    ``S + 11'/T = diag(d) + U C U'`` with ``U = [1, o_j]`` over the ``m`` other units and
    Woodbury's identity solves it in ``O(T m^2)`` instead of ``O(N T^2 + T^3)``.
    """
    O = cells & np.isfinite(pa.y)
    a, g = twoway_effects(pa.y, O)
    resid = np.where(O, pa.y - a[:, None] - g[None, :], np.nan)
    return a, g, resid


def twoway_effects(y: np.ndarray, O: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``g`` of :func:`twoway_residuals` on the observed cells ``O`` (bool)."""
    T = y.shape[1]
    Yo = np.where(O, y, 0.0)
    n_i = O.sum(axis=1)
    has = n_i > 0
    full = n_i == T
    n_full = int(full.sum())
    partial = has & ~full
    a = np.full(y.shape[0], np.nan)
    g = np.full(T, np.nan)
    ybar = Yo[has].sum(axis=1) / n_i[has]
    if n_full >= 1 and int(partial.sum()) + 1 <= T // 4:
        g = low_rank_effects(Yo[full].sum(axis=0), float(Yo[full].sum()), n_full, O[partial], Yo[partial])
        a[has] = ybar - (O[has] @ g) / n_i[has]
        return a, g
    col = O.any(axis=0)
    Oi, Yi, ni = O[has][:, col].astype(float), Yo[has][:, col], n_i[has]
    S = np.diag(Oi.sum(axis=0)) - (Oi / ni[:, None]).T @ Oi
    r = Yi.sum(axis=0) - Oi.T @ ybar
    Tc = int(col.sum())
    g_col = np.linalg.solve(S + np.full((Tc, Tc), 1.0 / Tc), r)
    g[col] = g_col
    a[has] = ybar - (Oi @ g_col) / ni
    return a, g


def low_rank_effects(
    full_colsum: np.ndarray, full_total: float | np.ndarray, n_full: int, Op: np.ndarray, Yp: np.ndarray
) -> np.ndarray:
    """``g`` of :func:`twoway_residuals` from the ``n_full`` complete units' column sums and
    total and the other units' cells ``Op`` (bool) and values ``Yp`` (0 off their cells):
    Woodbury's identity on ``diag(d) + U C U'`` (see :func:`twoway_residuals`).

    Leading axes before ``m x T`` (``Op``, ``Yp``; ``full_colsum`` ``... x T``, ``full_total``
    ``...``) are independent problems, solved in one batch (the placebo draws of
    :class:`~mipa.inference.panel_estimators.PlaceboImputation`). A unit with no cell takes
    no part (its column of ``U`` is zero and its entry of ``C^-1`` set to 1)."""
    T = full_colsum.shape[-1]
    Opf = Op.astype(float)
    n_p = Opf.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_mean = np.where(n_p > 0, Yp.sum(axis=-1) / n_p, 0.0)
    OpT = np.swapaxes(Opf, -1, -2)  # ... x T x m
    r = full_colsum - np.asarray(full_total, dtype=float)[..., None] / T + Yp.sum(axis=-2) - (
        OpT @ row_mean[..., None])[..., 0]
    d = n_full + Opf.sum(axis=-2)
    c0 = -(n_full - 1) / T  # the full units' -F 11'/T and the +11'/T that fixes sum g = 0
    c_units = np.where(n_p > 0, -n_p, 1.0)
    if c0 == 0:
        U, c_inv = OpT, c_units
    else:
        U = np.concatenate([np.ones((*OpT.shape[:-1], 1)), OpT], axis=-1)
        c_inv = np.concatenate([np.full((*n_p.shape[:-1], 1), 1.0 / c0), c_units], axis=-1)
    DU = U / d[..., None]
    Dr = r / d
    M = np.swapaxes(U, -1, -2) @ DU
    diagonal = np.arange(M.shape[-1])
    M[..., diagonal, diagonal] += c_inv
    solution = np.linalg.solve(M, np.swapaxes(U, -1, -2) @ Dr[..., None])
    return Dr - (DU @ solution)[..., 0]
