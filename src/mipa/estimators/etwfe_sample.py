"""The regression rows of ETWFE: the panel's validation and the sample rules.

Reference: Wooldridge, J. M. (2021), "Two-way fixed effects, the two-way Mundlak
regression, and difference-in-differences estimators", SSRN 3906345; the rules are those
of Stata ``jwdid`` / R ``etwfe`` (units treated in the first period dropped, a
``first_treat`` after the last period never treated, the last cohort as the control group
when there is no never-treated unit) and of ``reghdfe`` (Correia 2015, "Singletons,
cluster-robust standard errors and fixed effects": rows alone in a fixed-effect level
dropped). Poisson ETWFE (:mod:`mipa.estimators.poisson_etwfe`) applies the same rules, and
the classic TWFE (:mod:`mipa.estimators.twfe`) the same validation and singleton drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable
from mipa.estimators.fixed_effects import drop_singletons, factorize
from mipa.estimators.results import plain

__all__ = ["Cohort", "ControlGroup", "drop_singleton_rows", "panel_rows", "prepare_rows", "scope_label"]

ControlGroup = Literal["notyettreated", "nevertreated"]
Cohort = Literal["group", "unit"]


def panel_rows(panel: pd.DataFrame, columns: Sequence[str], *, unit: str, period: str) -> pd.DataFrame:
    """A copy of ``columns`` of ``panel`` (each once), checked: every column present
    (``KeyError``), no missing ``unit`` or ``period`` and one row per unit and period
    (``ValueError``)."""
    missing = [c for c in columns if c not in panel.columns]
    if missing:
        raise KeyError(f"columns not in panel: {missing}")
    df = panel[list(dict.fromkeys(columns))].copy()
    if df[[unit, period]].isna().any().any():
        raise ValueError("unit and period must not be missing")
    if df.duplicated([unit, period]).any():
        raise ValueError("panel has more than one row per unit and period")
    return df


def prepare_rows(
    panel: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    period: str,
    first_treat: str,
    covariates: Sequence[str],
    control_group: ControlGroup,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate the panel and return the regression rows with a numeric ``_g`` column,
    and a dict saying what was dropped (for the run settings).

    Shared with :mod:`mipa.estimators.poisson_etwfe`, so both estimators apply the same
    sample rules. ``_g`` is the first treated period, ``inf`` for never treated (``first_treat`` 0,
    NaN, or after the last period). Units treated in or before the first period have no
    untreated row and are dropped (no cell of theirs is identified).
    """
    df = panel_rows(panel, [unit, period, outcome, first_treat, *covariates], unit=unit, period=period)
    if not pd.api.types.is_integer_dtype(df[period]):
        as_int = df[period].astype("int64")
        if not np.array_equal(as_int.to_numpy(), df[period].to_numpy()):
            raise ValueError(f"period column {period!r} must hold integers")
        df[period] = as_int
    g = pd.to_numeric(df[first_treat], errors="raise").astype(float)
    if (g.groupby(df[unit]).nunique(dropna=False) > 1).any():
        raise ValueError(f"{first_treat!r} must be constant within each unit")
    t_min, t_max = df[period].min(), df[period].max()
    g = g.where(~(g.isna() | (g == 0) | (g > t_max)), np.inf)
    df["_g"] = g.to_numpy()
    info: dict[str, Any] = {}
    always = df.loc[df["_g"] <= t_min, unit].unique()
    if len(always):
        info["dropped_always_treated_units"] = [plain(u) for u in always]
        df = df[df["_g"] > t_min]
    n_rows = len(df)
    df = df.dropna(subset=[outcome, *covariates])
    info["dropped_missing_rows"] = int(n_rows - len(df))
    never = np.isinf(df["_g"])
    if not never.any():
        if control_group == "nevertreated":
            raise NotEstimable("no_control_units", "no never-treated country is observed: use not-yet-treated controls")
        # The last cohort is the control group until it is treated (R etwfe's gref).
        last = df["_g"].max()
        df = df[df[period] < last].copy()
        df.loc[df["_g"] == last, "_g"] = np.inf
        info["last_cohort_as_control"] = plain(last)
    if not np.isfinite(df["_g"]).any():
        raise NotEstimable("no_treated_units", "no treated unit has an observed untreated period")
    return df.reset_index(drop=True), info


def drop_singleton_rows(
    df: pd.DataFrame, *, unit: str, period: str, info: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray, int, np.ndarray, int]:
    """Drop the rows alone in their unit or period (iteratively, as reghdfe drops
    singletons), counted in ``info["dropped_singleton_rows"]``; returns the rows kept and
    their unit and period codes with the numbers of levels.

    Shared with :mod:`mipa.estimators.poisson_etwfe`, which applies the same rule to the
    rows of :func:`prepare_rows`.
    """
    unit_codes, n_units = factorize(df[unit].to_numpy())
    period_codes, n_periods = factorize(df[period].to_numpy())
    keep = drop_singletons([unit_codes, period_codes])
    if not keep.all():
        info["dropped_singleton_rows"] = int((~keep).sum())
        df = df[keep].reset_index(drop=True)
        unit_codes, n_units = factorize(df[unit].to_numpy())
        period_codes, n_periods = factorize(df[period].to_numpy())
    return df, unit_codes, int(n_units), period_codes, int(n_periods)


def scope_label(v: Any) -> str:
    """Scope text for a group or period value: ``2004`` rather than ``2004.0``."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)
