r"""The estimation panel of each robustness variant: pure transformations of the panel.

References: Callaway, B. and Sant'Anna, P. H. C. (2021), Journal of Econometrics 225(2),
Assumption 3 (anticipation: the months ``g - k .. g - 1`` are neither pre-period nor
effect, which ETWFE gets by leaving them out); the COVID level shifts are a two-step
adjustment by OLS on the untreated rows (the formulas: :func:`covid_level_shifts` and
:mod:`mipa.sensitivity.robustness`). Each function returns a new frame:
:func:`apply_variant` applies a :class:`~mipa.sensitivity.variants.Variant`'s start dates,
control pool, MISA controls and COVID handling in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import linalg

from mipa.estimation import OUTCOMES, prepare_panel
from mipa.sensitivity.variants import Variant

__all__ = [
    "AFRICA",
    "apply_variant",
    "covid_level_shifts",
    "drop_anticipation_months",
    "drop_controls",
    "drop_misa_controls",
    "drop_neighbour_controls",
    "exclude_covid_months",
    "keep_african_controls",
    "mipa_starts",
    "misa_countries",
    "normalise_partnerships",
    "remove_covid_level_shifts",
    "set_partnership_starts",
    "treated_countries",
]

AFRICA = "Africa"


def normalise_partnerships(partnerships: pd.DataFrame) -> pd.DataFrame:
    """The staged column names (``stg_reference__partnerships``) from either the staged
    model or the raw seed (``variant``, ``start_month``)."""
    out = partnerships.rename(columns={"variant": "partnership_variant", "start_month": "partnership_start_month"})
    out = out.assign(program=out["program"].str.upper().str.strip(), iso3=out["iso3"].str.upper().str.strip())
    out["partnership_start_month"] = pd.to_datetime(out["partnership_start_month"]).dt.to_period("M").dt.to_timestamp()
    return out


def mipa_starts(partnerships: pd.DataFrame, variant: str) -> dict[str, pd.Timestamp]:
    """First MIPA start month per country in one version of the partnership dates."""
    p = normalise_partnerships(partnerships)
    rows = p[(p["partnership_variant"] == variant) & (p["program"] == "MIPA")]
    if rows.empty:
        raise KeyError(f"no MIPA rows for partnership variant {variant!r}")
    return rows.groupby("iso3")["partnership_start_month"].min().to_dict()


def misa_countries(partnerships: pd.DataFrame, variant: str) -> set[str]:
    p = normalise_partnerships(partnerships)
    return set(p.loc[(p["partnership_variant"] == variant) & (p["program"] == "MISA"), "iso3"])


def set_partnership_starts(panel: pd.DataFrame, starts: Mapping[str, pd.Timestamp]) -> pd.DataFrame:
    """The panel with every country's partnership start (and so ``first_treat``, ``mipa``)
    taken from ``starts``; countries not in it are never treated."""
    out = panel.copy()
    start = out["iso3"].map(lambda c: starts.get(c, pd.NaT))
    out["partnership_start_month"] = pd.to_datetime(start)
    month = pd.to_datetime(out["month_start"])
    out["mipa"] = (out["partnership_start_month"].notna() & (month >= out["partnership_start_month"])).astype(int)
    return prepare_panel(out)


def treated_countries(panel: pd.DataFrame) -> set[str]:
    """Countries with a partnership start inside the window (``first_treat > 0``)."""
    return set(panel.loc[panel["first_treat"] > 0, "iso3"])


def drop_controls(panel: pd.DataFrame, countries: Iterable[str]) -> pd.DataFrame:
    """Drop never-treated countries among ``countries``; treated ones always stay."""
    drop = set(countries) - treated_countries(panel)
    return panel[~panel["iso3"].isin(drop)].reset_index(drop=True)


def keep_african_controls(panel: pd.DataFrame, countries: pd.DataFrame) -> pd.DataFrame:
    """Never-treated controls restricted to countries whose region is Africa."""
    african = set(countries.loc[countries["region"] == AFRICA, "iso3"])
    return drop_controls(panel, set(panel["iso3"]) - african)


def drop_neighbour_controls(panel: pd.DataFrame, neighbours: pd.DataFrame) -> pd.DataFrame:
    """Never-treated controls without the land neighbours of the panel's treated countries."""
    treated = treated_countries(panel)
    next_door = set(neighbours.loc[neighbours["iso3"].isin(treated), "neighbour_iso3"])
    return drop_controls(panel, next_door)


def drop_misa_controls(panel: pd.DataFrame, misa_countries: Iterable[str]) -> pd.DataFrame:
    """Never-treated controls without the MISA (broader cooperation) countries."""
    return drop_controls(panel, misa_countries)


def exclude_covid_months(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel without the COVID months (``is_covid_period``)."""
    return panel[~panel["is_covid_period"].astype(bool)].reset_index(drop=True)


def drop_anticipation_months(panel: pd.DataFrame, months: int) -> pd.DataFrame:
    """The panel without each treated country's ``months`` months before its start
    (``g - months <= t < g``): the ETWFE form of an anticipation of ``months``."""
    if months < 0:
        raise ValueError("months must be >= 0")
    g = panel["first_treat"]
    t = panel["period"]
    window = (g > 0) & (t >= g - months) & (t < g)
    return panel[~window].reset_index(drop=True)


def covid_level_shifts(panel: pd.DataFrame, outcome: str) -> pd.Series:
    r"""Country-specific COVID level shifts ``delta_i`` of one outcome (module docstring).

    OLS of ``y_it = s_{i,c(t)} + l_t + e_it`` on the untreated rows with an observed
    outcome; ``delta_i = s_{i,1} - s_{i,0}``, normalised to mean zero over the countries
    observed both in and outside the COVID window; 0 for the others. Indexed by ISO3.
    """
    untreated = (panel["first_treat"] <= 0) | (panel["period"] < panel["first_treat"])
    rows = panel[untreated & panel[outcome].notna()]
    covid = rows["is_covid_period"].astype(bool).to_numpy()
    both = rows.groupby("iso3")["is_covid_period"].agg(lambda s: s.astype(bool).nunique() == 2)
    shifts = pd.Series(0.0, index=pd.Index(sorted(panel["iso3"].unique()), name="iso3"))
    if not both.any():
        return shifts
    spell_codes, spells = pd.factorize(pd.MultiIndex.from_arrays([rows["iso3"].to_numpy(), covid]), sort=True)
    period_codes, periods = pd.factorize(rows["period"].to_numpy(), sort=True)
    n = len(rows)
    # spell dummies and month dummies (the first month left out: the spells hold the level)
    x = np.zeros((n, len(spells) + len(periods) - 1))
    x[np.arange(n), spell_codes] = 1.0
    later = period_codes > 0
    x[np.flatnonzero(later), len(spells) + period_codes[later] - 1] = 1.0
    coef = linalg.lstsq(x, rows[outcome].to_numpy(float), lapack_driver="gelsy")[0]
    level = pd.Series(coef[: len(spells)], index=spells)
    identified = [c for c in both.index if both[c]]
    delta = pd.Series({c: level[(c, True)] - level[(c, False)] for c in identified})
    shifts.loc[delta.index] = delta - delta.mean()
    return shifts


def remove_covid_level_shifts(panel: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """``y_it - delta_i * 1[t in COVID window]`` for each outcome (:func:`covid_level_shifts`)."""
    out = panel.copy()
    covid = out["is_covid_period"].astype(bool).to_numpy()
    for outcome in outcomes:
        delta = out["iso3"].map(covid_level_shifts(panel, outcome)).fillna(0.0).to_numpy()
        out[outcome] = out[outcome].astype(float) - delta * covid
    return out


def apply_variant(
    panel: pd.DataFrame,
    variant: Variant,
    *,
    partnerships: pd.DataFrame,
    countries: pd.DataFrame,
    neighbours: pd.DataFrame,
    panel_variant: str = "baseline",
    outcomes: Sequence[str] = OUTCOMES,
) -> pd.DataFrame:
    """The estimation panel of one variant (everything but anticipation, which each
    estimator handles itself: see :func:`estimate_variant`).

    ``panel`` is :func:`mipa.estimation.prepare_panel` of ``fct_country_month``, built
    with the dates of ``panel_variant``. Order: start dates, then the control pool and
    MISA controls (which depend on who is treated), then COVID (whose shifts are fitted
    on the resulting sample).
    """
    out = panel
    if variant.partnership_variant and variant.partnership_variant != panel_variant:
        out = set_partnership_starts(out, mipa_starts(partnerships, variant.partnership_variant))
    if variant.control_pool == "africa_only":
        out = keep_african_controls(out, countries)
    elif variant.control_pool == "no_neighbours":
        out = drop_neighbour_controls(out, neighbours)
    elif variant.control_pool != "full":
        raise ValueError(f"unknown control pool {variant.control_pool!r}")
    if variant.drop_misa_controls:
        out = drop_misa_controls(out, misa_countries(partnerships, variant.partnership_variant or panel_variant))
    if variant.covid == "excluded":
        out = exclude_covid_months(out)
    elif variant.covid == "modelled":
        out = remove_covid_level_shifts(out, [o for o in outcomes if o in out.columns])
    elif variant.covid != "included":
        raise ValueError(f"unknown COVID handling {variant.covid!r}")
    return out.reset_index(drop=True)
