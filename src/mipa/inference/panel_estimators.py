"""Estimators of the treated units' effect on a :class:`~mipa.inference.panel_arrays.PanelArrays`.

An :data:`~mipa.inference.panel_arrays.Estimator` maps a panel to one number, the effect
of its treated units; the placebo tests rerun it on every placebo panel. Fast exact matrix
versions for the Monte Carlo: :func:`imputation_estimator` (Borusyak, Jaravel & Spiess
2024, "Revisiting event-study designs: robust and efficient estimation", Review of
Economic Studies 91(6); equal to Wooldridge's ETWFE with not-yet-treated controls),
:func:`did_estimator` (ETWFE / Callaway & Sant'Anna 2021 with never-treated controls) and
:func:`twfe_estimator` (the classic TWFE coefficient); adapters for the project's
estimators on a long panel: :func:`frame_estimator`, :func:`etwfe_estimator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.estimators import ols
from mipa.estimators.results import DidResult
from mipa.inference.panel_arrays import Estimator, PanelArrays
from mipa.inference.twoway import low_rank_effects, twoway_effects

__all__ = [
    "PlaceboImputation",
    "did_estimator",
    "etwfe_estimator",
    "frame_estimator",
    "imputation_att",
    "imputation_estimator",
    "twfe_estimator",
]


def imputation_att(pa: PanelArrays) -> tuple[float, np.ndarray]:
    """Imputation estimator (Borusyak, Jaravel & Spiess 2024) = ETWFE, not-yet-treated.

    Fit ``y = a_i + g_t`` on the untreated observed cells (:func:`twoway_residuals`),
    impute ``tau_it = y_it - a_i - g_t`` on the treated observed cells. Returns the mean
    over all treated cells (ETWFE's ``simple`` aggregate) and each treated unit's mean
    (NaN for untreated units). Wooldridge (2021) shows the ETWFE regression with a dummy
    per treated (cohort, period) cell gives the same numbers: exactly with
    ``cohort="unit"``, and with ``cohort="group"`` on a balanced panel.
    """
    D = pa.treatment > 0
    obs = np.isfinite(pa.y)
    a, g = twoway_effects(pa.y, obs & ~D)
    tau = np.where(D & obs, pa.y - a[:, None] - g[None, :], np.nan)
    cells = D & obs
    if not cells.any():
        raise NotEstimable("no_post_treatment_data", "no observed treated cell")
    n_cells = cells.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(cells, tau, 0.0).sum(axis=1) / n_cells
    per_unit[n_cells == 0] = np.nan
    return float(tau[cells].mean()), per_unit


def imputation_estimator() -> Estimator:
    """Fast exact ETWFE (not-yet-treated controls, ``simple`` aggregate); see :func:`imputation_att`.

    About 1 ms on 86 x 120 (a ``T x T`` solve), against ~100 ms for the regression.
    Requires no unit treated in the first period and an untreated cell in every period
    (true with never-treated controls). A panel whose treated units have no observed
    cell after their start (a placebo control without a lead time after the start it was
    given) gives NaN, which the placebo tests leave out. Its ``placebo`` attribute
    (:class:`PlaceboImputation`) computes the placebo draws of the randomization tests
    from the controls' sums.
    """

    def estimate(pa: PanelArrays) -> float:
        if not (np.isfinite(pa.y) & (pa.treatment > 0)).any():
            return np.nan
        return imputation_att(pa)[0]

    estimate.placebo = PlaceboImputation  # type: ignore[attr-defined]
    return estimate


class PlaceboImputation:
    """:func:`imputation_att` for placebo draws on one controls-only panel ``base``.

    A draw gives ``J`` controls starts (and, for Ferman-Pinto, new outcome rows); every
    other control keeps all its cells untreated. The complete controls' column sums are
    computed once, so a draw costs ``O(J T)`` plus a small solve, not ``O(N T)``; draws the
    low-rank solve does not fit (many incomplete controls) use :func:`imputation_att`.
    Equal to the full computation up to rounding (tests).
    """

    def __init__(self, base: PanelArrays) -> None:
        self.base = base
        obs = np.isfinite(base.y)
        self.obs = obs
        self.Yo = np.where(obs, base.y, 0.0)
        T = base.y.shape[1]
        self.full = obs.sum(axis=1) == T
        self.colsum = self.Yo[self.full].sum(axis=0)
        self.total = float(self.Yo[self.full].sum())
        self.partial = np.flatnonzero(~self.full & obs.any(axis=1))

    def batches(self, n_rows: int) -> bool:
        """Whether :meth:`many` computes draws of ``n_rows`` placebo controls in one batch:
        every control complete (no gaps) and at least two others complete besides them."""
        T = self.base.y.shape[1]
        return self.partial.size == 0 and int(self.full.sum()) - n_rows >= 2 and n_rows + 1 <= T // 4

    def many(self, rows: np.ndarray, starts: np.ndarray, y_rows: np.ndarray | None = None) -> np.ndarray:
        """:meth:`__call__` for ``R`` draws at once (``rows``: ``R x J``; ``y_rows``: ``R x J x T``
        or None), when :meth:`batches` holds: the same low-rank solve (:func:`low_rank_effects`,
        Woodbury on ``J + 1`` columns) stacked over the draws, one batched ``(J+1) x (J+1)``
        solve instead of ``R`` Python calls; equal up to rounding. A placebo control with no
        untreated cell takes no part in the solve, as in :meth:`__call__`."""
        base = self.base
        rows = np.asarray(rows, dtype=np.intp)
        J = rows.shape[1]
        y_r = base.y[rows] if y_rows is None else np.asarray(y_rows, dtype=float)  # R x J x T
        obs_r = np.isfinite(y_r)
        treated = obs_r & (base.periods[None, None, :] >= np.asarray(starts, dtype=float)[None, :, None])
        untreated = obs_r & ~treated
        Opf = untreated.astype(float)
        Yp = np.where(untreated, y_r, 0.0)
        own = self.Yo[rows]  # the placebo controls' own (complete) rows leave the full units' sums
        g = low_rank_effects(self.colsum[None, :] - own.sum(axis=1), self.total - own.sum(axis=(1, 2)),
                             int(self.full.sum()) - J, untreated, Yp)  # R x T
        n_r = untreated.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            a_r = (Yp.sum(axis=2) - np.einsum("rjt,rt->rj", Opf, g)) / n_r  # NaN without a cell
            tau = y_r - a_r[:, :, None] - g[:, None, :]
            n_treated = treated.sum(axis=(1, 2))
            out = np.where(treated, tau, 0.0).sum(axis=(1, 2)) / n_treated
        return np.where(n_treated > 0, out, np.nan)

    def __call__(self, rows: np.ndarray, starts: np.ndarray, y_rows: np.ndarray | None = None) -> float:
        """The estimate with control ``rows[k]`` treated from ``starts[k]`` (outcome row
        ``y_rows[k]``, default its own)."""
        base, T = self.base, self.base.y.shape[1]
        rows = np.asarray(rows, dtype=np.intp)
        y_r = base.y[rows] if y_rows is None else np.asarray(y_rows, dtype=float)
        obs_r = np.isfinite(y_r)
        treated = obs_r & (base.periods[None, :] >= np.asarray(starts, dtype=float)[:, None])
        if not treated.any():
            return np.nan
        others = np.setdiff1d(self.partial, rows, assume_unique=True)
        full_r = rows[self.full[rows]]
        n_full = int(self.full.sum()) - full_r.size
        if n_full < 1 or others.size + rows.size + 1 > T // 4:
            ft = np.full(base.y.shape[0], np.inf)
            ft[rows] = starts
            y = base.y if y_rows is None else base.y.copy()
            if y_rows is not None:
                y[rows] = y_r
            return imputation_att(replace(base, y=y, first_treat=ft))[0]
        untreated = obs_r & ~treated
        Op = np.vstack([self.obs[others], untreated])
        Yp = np.vstack([self.Yo[others], np.where(untreated, y_r, 0.0)])
        keep = Op.any(axis=1)
        g = low_rank_effects(self.colsum - self.Yo[full_r].sum(axis=0), self.total - float(self.Yo[full_r].sum()),
                              n_full, Op[keep], Yp[keep])
        n_r = untreated.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            a_r = (np.where(untreated, y_r, 0.0).sum(axis=1) - untreated @ g) / n_r  # NaN without a cell
        tau = y_r - a_r[:, None] - g[None, :]
        return float(tau[treated].mean())


def did_estimator() -> Estimator:
    """Fast exact DiD against never-treated controls (ETWFE ``nevertreated`` = CS simple).

    ``tau_it = (y_it - y_i,g-1) - (ybar_Ct - ybar_C,g-1)`` for every treated cell, ``C``
    the never-treated units, averaged over the treated cells (ETWFE's ``simple``
    aggregate with never-treated controls: its post cells are CS 2021's never-treated
    ATT(g, t)). Balanced panels only (raises otherwise: with gaps the regression and the
    2x2 differ); periods must be consecutive.
    """

    def estimate(pa: PanelArrays) -> float:
        if not pa.balanced:
            raise ValueError("did_estimator needs a balanced panel")
        never = ~pa.treated
        cbar = pa.y[never].mean(axis=0)
        total, count = 0.0, 0
        for i in np.flatnonzero(pa.treated):
            k = int(np.searchsorted(pa.periods, pa.first_treat[i]))
            if k == 0:
                raise ValueError("a unit is treated in the first period")
            diff = (pa.y[i, k:] - pa.y[i, k - 1]) - (cbar[k:] - cbar[k - 1])
            total += diff.sum()
            count += diff.size
        return total / count

    return estimate


def twfe_estimator() -> Estimator:
    """Classic TWFE coefficient on ``D_it`` with unit and period effects (as :func:`twfe`).

    Uses :func:`mipa.estimators.ols.fit_within` on the observed cells directly (no
    DataFrame), so it equals ``twfe(...)``'s estimate; a few ms on 86 x 120.
    """

    def estimate(pa: PanelArrays) -> float:
        obs = np.isfinite(pa.y)
        u, t = np.nonzero(obs)
        fit = ols.fit_within(pa.y[obs], pa.treatment[obs][:, None], [u, t])
        return float(fit.coef[0])

    return estimate


def frame_estimator(
    fit: Callable[[pd.DataFrame], DidResult],
    extract: Callable[[DidResult], float] = lambda r: float(r.overall("simple").estimate),
) -> Estimator:
    """Adapter for any estimator on a long panel: ``pa -> extract(fit(pa.to_frame()))``.

    The frame has columns ``unit, period, y, first_treat`` (0 = never treated) and
    ``treated`` (``D_it``); ``fit`` must use those names.
    """

    def estimate(pa: PanelArrays) -> float:
        return float(extract(fit(pa.to_frame())))

    return estimate


def etwfe_estimator(
    control_group: Literal["notyettreated", "nevertreated"] = "notyettreated",
    aggregation: str = "simple",
    cohort: Literal["group", "unit"] = "group",
) -> Estimator:
    """:func:`mipa.estimators.etwfe.etwfe`'s overall effect (the exact regression, ~0.1 s).

    With one treated unit in the panel this is that unit's effect.
    """
    from mipa.estimators.etwfe import etwfe

    def fit(df: pd.DataFrame) -> DidResult:
        return etwfe(
            df, outcome="y", unit="unit", period="period", first_treat="first_treat",
            control_group=control_group, cohort=cohort,
        )

    return frame_estimator(fit, lambda r: float(r.overall(aggregation).estimate))
