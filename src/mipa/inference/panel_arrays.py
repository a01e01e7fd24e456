"""A unit x period outcome matrix with each unit's first treated period: the panel of the
placebo, conformal and SDID methods.

The randomization tests (:mod:`mipa.inference.randomization`), conformal inference
(:mod:`mipa.inference.conformal`) and SDID (:mod:`mipa.inference.sdid`) refit their
estimators thousands of times on placebo panels; they work on :class:`PanelArrays`
(an ``N x T`` outcome matrix, NaN for a missing cell) instead of a long DataFrame, and an
:data:`Estimator` is any callable ``PanelArrays -> float`` giving the effect of the
panel's treated units (:mod:`mipa.inference.panel_estimators`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Estimator", "PanelArrays"]


@dataclass(frozen=True)
class PanelArrays:
    """A unit x period outcome matrix and each unit's first treated period.

    ``y``: ``N x T`` floats, NaN where the outcome is missing. ``first_treat``: length
    ``N``, the first treated period (a value of ``periods``) or ``inf`` when never
    treated within the window. ``units``/``periods``: labels, ``periods`` sorted.
    """

    y: np.ndarray
    first_treat: np.ndarray
    units: np.ndarray
    periods: np.ndarray

    @classmethod
    def from_frame(
        cls, panel: pd.DataFrame, *, outcome: str, unit: str, period: str, first_treat: str
    ) -> PanelArrays:
        """Pivot a long panel. ``first_treat`` 0, NaN or after the last period = never treated."""
        if panel.duplicated([unit, period]).any():
            raise ValueError("panel has more than one row per unit and period")
        wide = panel.pivot(index=unit, columns=period, values=outcome).sort_index(axis=1)
        g = pd.to_numeric(panel.groupby(unit)[first_treat].first(), errors="raise").astype(float)
        if (panel.groupby(unit)[first_treat].nunique(dropna=False) > 1).any():
            raise ValueError(f"{first_treat!r} must be constant within each unit")
        g = g.reindex(wide.index)
        periods = wide.columns.to_numpy()
        g = g.where(~(g.isna() | (g == 0) | (g > periods.max())), np.inf)
        return cls(
            y=wide.to_numpy(dtype=float),
            first_treat=g.to_numpy(dtype=float),
            units=wide.index.to_numpy(),
            periods=periods,
        )

    @property
    def treated(self) -> np.ndarray:
        """Mask of units treated within the window."""
        return np.isfinite(self.first_treat)

    @property
    def treatment(self) -> np.ndarray:
        """``N x T`` 0/1 matrix ``D_it = 1[t >= first_treat_i]``."""
        return (self.periods[None, :] >= self.first_treat[:, None]).astype(float)

    @property
    def balanced(self) -> bool:
        return bool(np.isfinite(self.y).all())

    def treated_position(self, unit: Any) -> int:
        """Row of treated ``unit``; KeyError if it is not in the panel, ValueError if untreated."""
        pos = np.flatnonzero(self.units == unit)
        if pos.size != 1:
            raise KeyError(f"unit {unit!r} not in the panel")
        if not self.treated[pos[0]]:
            raise ValueError(f"unit {unit!r} is not treated")
        return int(pos[0])

    def select(self, rows: np.ndarray | Sequence[int]) -> PanelArrays:
        """The panel of the given unit rows (index array or boolean mask)."""
        idx = np.asarray(rows)
        return replace(self, y=self.y[idx], first_treat=self.first_treat[idx], units=self.units[idx])

    def with_first_treat(self, first_treat: np.ndarray) -> PanelArrays:
        return replace(self, first_treat=np.asarray(first_treat, dtype=float))

    def to_frame(
        self, *, outcome: str = "y", unit: str = "unit", period: str = "period",
        first_treat: str = "first_treat", treatment: str = "treated",
    ) -> pd.DataFrame:
        """Long panel (missing cells left out); never treated as ``first_treat = 0``."""
        N, T = self.y.shape
        ft = np.where(np.isfinite(self.first_treat), self.first_treat, 0.0)
        df = pd.DataFrame(
            {
                unit: np.repeat(self.units, T),
                period: np.tile(self.periods, N),
                outcome: self.y.ravel(),
                first_treat: np.repeat(ft, T),
                treatment: self.treatment.ravel(),
            }
        )
        return df[np.isfinite(df[outcome].to_numpy())].reset_index(drop=True)


Estimator = Callable[[PanelArrays], float]
