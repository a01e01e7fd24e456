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

The grid's variants are in :mod:`mipa.sensitivity.variants`, what each does to the panel
in :mod:`mipa.sensitivity.variant_panels`; this module runs the grid (:func:`run_grid`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import REASONS, NotEstimable, attempt, status_columns
from mipa.estimation import EstimationSettings, prepare_panel
from mipa.estimators.csdid import callaway_santanna
from mipa.estimators.etwfe import etwfe
from mipa.estimators.results import INTERVAL_COLUMNS, DidResult
from mipa.processes import progress_line, run_in_child_process
from mipa.sensitivity.variant_panels import (
    AFRICA,
    apply_variant,
    covid_level_shifts,
    drop_anticipation_months,
    drop_misa_controls,
    drop_neighbour_controls,
    exclude_covid_months,
    keep_african_controls,
    mipa_starts,
    normalise_partnerships,
    remove_covid_level_shifts,
    set_partnership_starts,
    treated_countries,
)
from mipa.sensitivity.variants import DIMENSIONS, ControlGroup, ControlPool, CovidHandling, Variant, default_grid

__all__ = [
    "AFRICA",
    "DIMENSIONS",
    "ESTIMATORS",
    "dbt_grid_model",
    "GRID_COLUMNS",
    "ControlGroup",
    "ControlPool",
    "CovidHandling",
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
    "treated_countries",
]

ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid")
# which inference of each estimator the grid reports (as the annex's tables)
ESTIMATOR_INFERENCE = {"etwfe": "cluster_unit", "csdid": "multiplier_bootstrap"}
NOT_ESTIMABLE = "not_estimable"

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
    *INTERVAL_COLUMNS,
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
    estimators: Sequence[str] = ESTIMATORS,
) -> pd.DataFrame:
    """Every variant x outcome x estimator on ``fct_country_month``: :data:`GRID_COLUMNS`.
    ``progress`` gets a line per variant; ``estimators``: a subset of :data:`ESTIMATORS`
    (each estimator's rows depend on nothing of the others').

    ``partnerships``: the partnership seed (or ``stg_reference__partnerships``), all
    versions of the dates; ``countries``: ISO3 and region (``dim_country`` or the countries
    seed); ``neighbours``: the ``country_neighbours`` seed; ``panel_variant``: the version
    of the dates ``country_month`` was built with (dbt var ``partnership_variant``). The
    default grid has one start-date variant per other version in ``partnerships``.
    A variant an estimator cannot estimate gets a row with NaN estimate and inference
    ``not_estimable`` (the reason is in ``run_settings``).
    """
    settings = settings or EstimationSettings()
    unknown = set(estimators) - set(ESTIMATORS)
    if unknown:
        raise ValueError(f"estimators must be among {ESTIMATORS}, not {sorted(unknown)}")
    if grid is None:
        versions = set(normalise_partnerships(partnerships)["partnership_variant"]) - {panel_variant}
        grid = default_grid(versions)
    baseline = next((v for v in grid if v.dimension == "baseline"), None)
    if baseline is None:
        raise ValueError("the grid has no baseline variant")
    panel = prepare_panel(country_month)
    outcomes = [o for o in settings.outcomes if o in panel.columns]
    rows: list[dict[str, Any]] = []
    for k, variant in enumerate(grid, 1):
        if progress:
            progress(f"robustness ({', '.join(estimators)}): variant {variant.variant_id} ({k}/{len(grid)})")
        vpanel = apply_variant(panel, variant, partnerships=partnerships, countries=countries,
                               neighbours=neighbours, panel_variant=panel_variant, outcomes=outcomes)
        for outcome in outcomes:
            for estimator in estimators:
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


def dbt_grid_model(frames: Sequence[pd.DataFrame], config: Mapping[str, Any], estimators: Sequence[str]) -> pd.DataFrame:
    """The body of the dbt Python models ``int_did__robustness_<estimator>``: the grid for
    ``estimators`` on the model's refs ``frames`` (country-month panel, partnerships,
    countries, neighbours) with its ``config`` (``n_boot``, ``seed``, the two control
    groups, ``partnership_variant``), run in a child process (dbt runs Python models in its
    own process, under one interpreter lock). The model reads refs and config itself: dbt
    passes only what a model's own code names."""
    settings = EstimationSettings(
        n_boot=int(config["n_boot"]),
        seed=int(config["seed"]),
        etwfe_control_group=config["etwfe_control_group"],
        cs_control_group=config["cs_control_group"],
    )
    return run_in_child_process(run_grid, *frames, settings, panel_variant=config["partnership_variant"],
                                progress=progress_line, estimators=tuple(estimators))
