r"""The robustness grid: the annex's main DiD estimate under alternative analysis choices.

Each :class:`Variant` changes **one** choice of the baseline analysis (the annex's ETWFE on
``fct_country_month``), so the grid answers "does the conclusion survive if we had decided
X differently?" one decision at a time (a specification curve over a one-at-a-time grid;
Simonsohn, Simmons & Nelson 2020, "Specification curve analysis", Nature Human Behaviour
4, 1208-1214). The dimensions and what each variant does to the panel ``y_it`` (country
``i``, month ``t``, first treated month ``g_i``, ``g_i = 0`` for never treated):

``covid`` (the annex: COVID depressed all flows from 2020-05 to 2022-08)
    * ``covid_excluded``: the COVID months are removed from the panel. Both estimators then
      compare with the last month before the window when a start falls inside it
      (Morocco, 2022-06): ETWFE's reference and CS's base period are the last *observed*
      pre-treatment month.
    * ``covid_modelled``: country-specific COVID level shifts. On the untreated rows
      (``g_i = 0`` or ``t < g_i``) fit ``y_it = s_{i,c(t)} + l_t + e_it`` with
      ``c(t) = 1[t in COVID window]`` (a level per country and COVID spell, month fixed
      effects); ``delta_i = s_{i,1} - s_{i,0}`` is country ``i``'s extra COVID shift.
      The common COVID dip is absorbed by ``l_t`` already, so only the contrasts
      ``delta_i - delta_j`` are identified; they are normalised to mean zero over the
      countries observed in both spells (the others get 0, the average shift). The
      estimators then run on ``y_it - delta_i * c(t)``. The normalisation is a function of
      ``t`` only, which the month effects absorb, so it does not change the estimates.
      The shifts are fitted on untreated rows so that a partnership effect cannot leak
      into them; the standard errors treat them as known (a two-step adjustment, which
      slightly understates the uncertainty).

``anticipation`` (Morocco: the Western Sahara statement came one month before the start)
    ``anticipation_k``, ``k = 1..3``: countries may react ``k`` months before their start.
    As Callaway & Sant'Anna's ``anticipation = k`` (CS2021 Assumption 3; R ``did``): the
    reference (base) period is ``g - 1 - k``, a country is a not-yet-treated control only
    until ``g - k``, and the effect is averaged over the months ``t >= g`` (the months
    ``g - k .. g - 1`` are neither pre-period nor effect). CS gets ``anticipation=k``.
    ETWFE gets the same definition by removing each treated country's months
    ``g - k .. g - 1`` from the sample: this equals ETWFE with the treatment moved to
    ``g - k`` (cells from ``g - k`` on) and the simple effect averaged over ``t >= g``,
    because a cell dummy that covers one country-month fits it exactly and leaves the
    other coefficients unchanged (with two countries in one cohort, EGY and NGA, the
    equality is exact for balanced outcomes).

``start_dates`` (an advisory report dates the Morocco arrangement to 2021, the annex to
    June 2022): one variant per other version of the dates in ``seeds/partnerships.csv``
    (``start_dates_<variant>``); the panel's ``first_treat`` is recomputed from that
    version's MIPA start months.

``control_pool`` (which countries are comparable)
    * ``controls_africa_only``: the never-treated controls are restricted to African
      countries (UN M49 region Africa); every treated country is kept.
    * ``controls_no_neighbours``: never-treated land neighbours of a treated country
      (``seeds/country_neighbours.csv``) are dropped: spillovers (routes and return work
      moving next door) would bias the comparison.

``control_group``
    ``nevertreated_controls`` / ``notyettreated_controls``: both estimators with that
    comparison group. The baseline uses each estimator's annex default (ETWFE
    not-yet-treated, as ``xthdidregress``; CS never-treated, as R ``did``), so one of the
    two equals the baseline for each estimator: ``same_as_baseline`` marks it.

``misa``
    ``misa_controls_removed``: never-treated countries with broader migration cooperation
    (MISA, from 2019) are dropped from the controls: they were treated by a related policy.

Every variant is run with ETWFE (the annex's main estimator; overall ``simple`` ATT, the
average over all treated post-treatment country-months, country-clustered standard errors,
t(G-1) intervals) and Callaway & Sant'Anna (doubly robust, overall ``simple`` ATT,
multiplier-bootstrap intervals), with the options of :class:`~mipa.estimation.
EstimationSettings`, so the baseline rows equal the ``fct_did_estimates`` mart's.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg

from mipa.estimability import REASONS, NotEstimable, attempt, status_columns
from mipa.estimation import OUTCOMES, EstimationSettings, prepare_panel
from mipa.estimators.csdid import callaway_santanna
from mipa.estimators.etwfe import etwfe
from mipa.estimators.results import DidResult

__all__ = [
    "DIMENSIONS",
    "ESTIMATORS",
    "GRID_COLUMNS",
    "Variant",
    "apply_variant",
    "covid_level_shifts",
    "default_grid",
    "drop_anticipation_months",
    "drop_misa_controls",
    "drop_neighbour_controls",
    "exclude_covid_months",
    "keep_african_controls",
    "mipa_starts",
    "remove_covid_level_shifts",
    "run_grid",
    "set_partnership_starts",
]

CovidHandling = Literal["included", "excluded", "modelled"]
ControlPool = Literal["full", "africa_only", "no_neighbours"]
ControlGroup = Literal["nevertreated", "notyettreated"]

# in the order the report shows them
DIMENSIONS: tuple[str, ...] = (
    "baseline", "covid", "anticipation", "start_dates", "control_pool", "control_group", "misa",
)
ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid")
# which inference of each estimator the grid reports (as the annex's tables)
ESTIMATOR_INFERENCE = {"etwfe": "cluster_unit", "csdid": "multiplier_bootstrap"}
NOT_ESTIMABLE = "not_estimable"
AFRICA = "Africa"

GRID_COLUMNS = [
    "variant_id",
    "dimension",
    "variant_label",
    "is_baseline",
    "same_as_baseline",  # the variant's choices resolve to the baseline's for this estimator
    "estimator",
    "outcome",
    "control_group",
    "covid_handling",
    "anticipation_months",
    "partnership_variant",
    "control_pool",
    "misa_controls_removed",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "n_obs",
    "n_clusters",
    "n_treated_clusters",
    "n_control_clusters",
    "inference",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]


@dataclass(frozen=True)
class Variant:
    """One specification of the grid: the baseline with (at most) one choice changed.

    ``partnership_variant=None`` means the start dates the panel was built with (dbt var
    ``partnership_variant``); ``control_group=None`` means each estimator's default in
    :class:`~mipa.estimation.EstimationSettings`.
    """

    variant_id: str
    dimension: str
    label: str
    covid: CovidHandling = "included"
    anticipation: int = 0
    partnership_variant: str | None = None
    control_pool: ControlPool = "full"
    control_group: ControlGroup | None = None
    drop_misa_controls: bool = False

    def resolved(self, estimator: str, settings: EstimationSettings, panel_variant: str) -> dict[str, Any]:
        """The choices this variant makes for one estimator, defaults filled in."""
        default_group = settings.etwfe_control_group if estimator == "etwfe" else settings.cs_control_group
        return {
            "covid_handling": self.covid,
            "anticipation_months": int(self.anticipation),
            "partnership_variant": self.partnership_variant or panel_variant,
            "control_pool": self.control_pool,
            "control_group": self.control_group or default_group,
            "misa_controls_removed": bool(self.drop_misa_controls),
        }


def default_grid(start_date_variants: Iterable[str] = (), max_anticipation: int = 3) -> list[Variant]:
    """The baseline and one variant per alternative choice (see the module docstring).

    ``start_date_variants``: versions of the partnership dates other than the panel's own
    (``partnerships.variant`` values), one ``start_dates_<name>`` variant each.
    """
    grid = [
        Variant("baseline", "baseline", "Baseline (annex): ETWFE, all months, annex start dates, full pool"),
        Variant("covid_excluded", "covid", "COVID months (2020-05 to 2022-08) excluded", covid="excluded"),
        Variant("covid_modelled", "covid", "COVID: country-specific level shifts", covid="modelled"),
    ]
    for k in range(1, max_anticipation + 1):
        grid.append(Variant(f"anticipation_{k}", "anticipation", f"Anticipation of {k} month{'s' * (k > 1)}",
                            anticipation=k))
    for name in sorted(set(start_date_variants)):
        grid.append(Variant(f"start_dates_{name}", "start_dates", f"Start dates: {name}", partnership_variant=name))
    grid += [
        Variant("controls_africa_only", "control_pool", "Controls: African countries only", control_pool="africa_only"),
        Variant("controls_no_neighbours", "control_pool", "Controls: without land neighbours of partners",
                control_pool="no_neighbours"),
        Variant("nevertreated_controls", "control_group", "Control group: never treated", control_group="nevertreated"),
        Variant("notyettreated_controls", "control_group", "Control group: not yet treated",
                control_group="notyettreated"),
        Variant("misa_controls_removed", "misa", "Controls: MISA countries removed", drop_misa_controls=True),
    ]
    ids = [v.variant_id for v in grid]
    if len(set(ids)) != len(ids):
        raise ValueError(f"variant ids are not unique: {ids}")
    return grid


# ---------------------------------------------------------------------------------------
# panel transformations (pure: each returns a new frame)


def _normalise_partnerships(partnerships: pd.DataFrame) -> pd.DataFrame:
    """The staged column names (``stg_reference__partnerships``) from either the staged
    model or the raw seed (``variant``, ``start_month``)."""
    out = partnerships.rename(columns={"variant": "partnership_variant", "start_month": "partnership_start_month"})
    out = out.assign(program=out["program"].str.upper().str.strip(), iso3=out["iso3"].str.upper().str.strip())
    out["partnership_start_month"] = pd.to_datetime(out["partnership_start_month"]).dt.to_period("M").dt.to_timestamp()
    return out


def mipa_starts(partnerships: pd.DataFrame, variant: str) -> dict[str, pd.Timestamp]:
    """First MIPA start month per country in one version of the partnership dates."""
    p = _normalise_partnerships(partnerships)
    rows = p[(p["partnership_variant"] == variant) & (p["program"] == "MIPA")]
    if rows.empty:
        raise KeyError(f"no MIPA rows for partnership variant {variant!r}")
    return rows.groupby("iso3")["partnership_start_month"].min().to_dict()


def _misa_countries(partnerships: pd.DataFrame, variant: str) -> set[str]:
    p = _normalise_partnerships(partnerships)
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


def _drop_controls(panel: pd.DataFrame, countries: Iterable[str]) -> pd.DataFrame:
    """Drop never-treated countries among ``countries``; treated ones always stay."""
    drop = set(countries) - treated_countries(panel)
    return panel[~panel["iso3"].isin(drop)].reset_index(drop=True)


def keep_african_controls(panel: pd.DataFrame, countries: pd.DataFrame) -> pd.DataFrame:
    """Never-treated controls restricted to countries whose region is Africa."""
    african = set(countries.loc[countries["region"] == AFRICA, "iso3"])
    return _drop_controls(panel, set(panel["iso3"]) - african)


def drop_neighbour_controls(panel: pd.DataFrame, neighbours: pd.DataFrame) -> pd.DataFrame:
    """Never-treated controls without the land neighbours of the panel's treated countries."""
    treated = treated_countries(panel)
    next_door = set(neighbours.loc[neighbours["iso3"].isin(treated), "neighbour_iso3"])
    return _drop_controls(panel, next_door)


def drop_misa_controls(panel: pd.DataFrame, misa_countries: Iterable[str]) -> pd.DataFrame:
    """Never-treated controls without the MISA (broader cooperation) countries."""
    return _drop_controls(panel, misa_countries)


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
        out = drop_misa_controls(out, _misa_countries(partnerships, variant.partnership_variant or panel_variant))
    if variant.covid == "excluded":
        out = exclude_covid_months(out)
    elif variant.covid == "modelled":
        out = remove_covid_level_shifts(out, [o for o in outcomes if o in out.columns])
    elif variant.covid != "included":
        raise ValueError(f"unknown COVID handling {variant.covid!r}")
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# estimation


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


def _run(estimator: str, panel: pd.DataFrame, outcome: str, choices: Mapping[str, Any],
         settings: EstimationSettings) -> tuple[DidResult | None, list[str], NotEstimable | None]:
    """One estimator on one variant panel: (result or None, warnings, why not)."""
    common = {"outcome": outcome, "unit": "iso3", "period": "period", "first_treat": "first_treat",
              "control_group": choices["control_group"], "alpha": settings.alpha}
    k = choices["anticipation_months"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if estimator == "etwfe":
            result, failure = attempt(lambda: etwfe(drop_anticipation_months(panel, k) if k else panel, **common))
        else:
            result, failure = attempt(lambda: callaway_santanna(
                panel, **common, base_period=settings.cs_base_period,
                anticipation=k or settings.cs_anticipation, n_boot=settings.n_boot, seed=settings.seed,
            ))
    return result, [str(w.message) for w in caught], failure


def _compact(settings: Mapping[str, Any], max_items: int = 20) -> dict[str, Any]:
    """An estimator's settings without its long tables (e.g. CS's analytic standard errors
    of every event time): the grid row keeps the options, not the by-products."""
    def short(v: Any) -> bool:
        if isinstance(v, Mapping):
            return False
        return not isinstance(v, list | tuple | set | frozenset | np.ndarray) or len(v) <= max_items
    return {k: v for k, v in settings.items() if short(v)}


def _n_control_clusters(panel: pd.DataFrame, outcome: str) -> int:
    """Never-treated countries of the sample with at least one observed outcome."""
    rows = panel[(panel["first_treat"] <= 0) & panel[outcome].notna()]
    return int(rows["iso3"].nunique())


def run_grid(
    country_month: pd.DataFrame,
    partnerships: pd.DataFrame,
    countries: pd.DataFrame,
    neighbours: pd.DataFrame,
    settings: EstimationSettings | None = None,
    *,
    panel_variant: str = "baseline",
    grid: Sequence[Variant] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every variant x outcome x estimator on ``fct_country_month``: :data:`GRID_COLUMNS`.
    ``progress`` gets a line per variant.

    ``partnerships``: the partnership seed (or ``stg_reference__partnerships``), all
    versions of the dates; ``countries``: ISO3 and region (``dim_country`` or the countries
    seed); ``neighbours``: the ``country_neighbours`` seed; ``panel_variant``: the version
    of the dates ``country_month`` was built with (dbt var ``partnership_variant``). The
    default grid has one start-date variant per other version in ``partnerships``.
    A variant an estimator cannot estimate gets a row with NaN estimate and inference
    ``not_estimable`` (the reason is in ``run_settings``).
    """
    settings = settings or EstimationSettings()
    if grid is None:
        versions = set(_normalise_partnerships(partnerships)["partnership_variant"]) - {panel_variant}
        grid = default_grid(versions)
    baseline = next((v for v in grid if v.dimension == "baseline"), None)
    if baseline is None:
        raise ValueError("the grid has no baseline variant")
    panel = prepare_panel(country_month)
    outcomes = [o for o in settings.outcomes if o in panel.columns]
    rows: list[dict[str, Any]] = []
    for k, variant in enumerate(grid, 1):
        if progress:
            progress(f"robustness: variant {variant.variant_id} ({k}/{len(grid)})")
        vpanel = apply_variant(panel, variant, partnerships=partnerships, countries=countries,
                               neighbours=neighbours, panel_variant=panel_variant, outcomes=outcomes)
        for outcome in outcomes:
            for estimator in ESTIMATORS:
                choices = variant.resolved(estimator, settings, panel_variant)
                result, caught, error = _run(estimator, vpanel, outcome, choices, settings)
                row = _overall_simple(result, estimator, error)
                run_settings = {
                    "variant": asdict(variant),
                    "choices": choices,
                    "estimation": asdict(replace(settings, outcomes=tuple(outcomes))),
                    "estimator": _compact(result.settings) if result is not None else {},
                    "warnings": caught,
                    "error": str(error) if error is not None else None,
                }
                rows.append({
                    "variant_id": variant.variant_id,
                    "dimension": variant.dimension,
                    "variant_label": variant.label,
                    "is_baseline": variant is baseline,
                    "same_as_baseline": choices == baseline.resolved(estimator, settings, panel_variant),
                    "estimator": estimator,
                    "outcome": outcome,
                    **choices,
                    **row,
                    "n_control_clusters": _n_control_clusters(vpanel, outcome),
                    "run_settings": json.dumps(run_settings, sort_keys=True, default=_json_default),
                })
    out = pd.DataFrame(rows, columns=GRID_COLUMNS)
    for col in ("n_obs", "n_clusters", "n_treated_clusters", "n_control_clusters", "anticipation_months"):
        out[col] = out[col].astype("Int64")
    return out


def _overall_simple(result: DidResult | None, estimator: str, failure: NotEstimable | None = None
                   ) -> dict[str, Any]:
    """The overall simple ATT of one run (NaN with inference ``not_estimable`` and the
    reason if none)."""
    empty = {"estimate": np.nan, "std_error": np.nan, "ci_low": np.nan,
             "ci_high": np.nan, "p_value": np.nan, "n_obs": None, "n_clusters": None,
             "n_treated_clusters": None, "inference": NOT_ESTIMABLE}
    if result is None:
        return {**empty, **status_columns(failure or NotEstimable("no_estimate_for_scope"))}
    est = result.estimates
    pick = est[(est["aggregation"] == "simple") & (est["scope"] == "overall")
               & (est["inference"] == ESTIMATOR_INFERENCE[estimator])]
    if len(pick) != 1 or not np.isfinite(float(pick["estimate"].iloc[0])):
        why = (NotEstimable(pick["reason"].iloc[0], pick["reason_detail"].iloc[0])
               if len(pick) == 1 and pick["reason"].iloc[0] in REASONS else NotEstimable("no_estimate_for_scope"))
        return {**empty, **status_columns(why)}
    r = pick.iloc[0]
    return {
        "estimate": float(r["estimate"]),
        "std_error": float(r["std_error"]),
        "ci_low": float(r["ci_low"]),
        "ci_high": float(r["ci_high"]),
        "p_value": float(r["p_value"]),
        "n_obs": int(r["n_obs"]),
        "n_clusters": int(r["n_clusters"]),
        "n_treated_clusters": int(r["n_treated_clusters"]),
        "inference": r["inference"],
        "status": r["status"],
        "reason": r["reason"],
        "reason_detail": r["reason_detail"],
    }
