"""Run every estimator on the country-month panel and lay the results out for the marts.

The dbt Python models in ``python_models/`` call these functions; they hold no estimator
logic of their own. Every run is determined by :class:`EstimationSettings` (bootstrap draws
and seed included), so the same panel gives the same tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mipa.estimability import NotEstimable, attempt, finalize_status, status_columns
from mipa.estimators.csdid import callaway_santanna
from mipa.estimators.etwfe import etwfe
from mipa.estimators.results import INTERVAL_COLUMNS, DidResult
from mipa.estimators.twfe import twfe, yearly_twfe
from mipa.outcomes import OUTCOMES

# annex 11.2: four return outcomes of the yearly exploratory panel, one regression each
YEARLY_OUTCOMES: tuple[str, ...] = (
    "forced_departures",
    "independent_departures",
    "unsupervised_departures",
    "total_departures",
)
YEARLY_TREATMENTS: tuple[str, ...] = ("misa", "mipa")

RESULT_COLUMNS = [
    "result_table",  # 'estimate' | 'event_study' | 'att_gt'
    "estimator",
    "outcome",
    "control_group",
    "aggregation",
    "scope",
    "cohort",
    "period_month",
    "event_time",
    *INTERVAL_COLUMNS,
    "band_low",
    "band_high",
    "p_value",
    "n_obs",
    "n_clusters",
    "n_treated_clusters",
    "inference",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]


@dataclass(frozen=True)
class EstimationSettings:
    """Options of one estimation run; written to every result row as JSON."""

    n_boot: int = 999
    seed: int = 20260701
    alpha: float = 0.05
    etwfe_control_group: str = "notyettreated"  # Stata jwdid / xthdidregress default
    cs_control_group: str = "nevertreated"  # R did default, as the annex ran it
    cs_base_period: str = "varying"
    cs_anticipation: int = 0
    outcomes: tuple[str, ...] = OUTCOMES

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def prepare_panel(country_month: pd.DataFrame) -> pd.DataFrame:
    """Long estimation panel from ``fct_country_month``.

    ``period`` = ``month_index`` (1 = first month of the window); ``first_treat`` = the
    month index of the partnership start, 0 for never-treated countries. A start after the
    window is never treated within it; a start before the window would leave no
    pre-period and is dropped by the estimators with a warning.
    """
    panel = country_month.copy()
    start = pd.to_datetime(panel["partnership_start_month"])
    month = pd.to_datetime(panel["month_start"])
    months_since = (month.dt.year - start.dt.year) * 12 + (month.dt.month - start.dt.month)
    first_treat = panel["month_index"] - months_since
    panel["period"] = panel["month_index"].astype(int)
    panel["first_treat"] = first_treat.where(start.notna(), 0).astype(float)
    last = panel["period"].max()
    panel.loc[panel["first_treat"] > last, "first_treat"] = 0.0
    return panel.sort_values(["iso3", "period"]).reset_index(drop=True)


def _period_to_month(panel: pd.DataFrame) -> dict[int, str]:
    pairs = panel[["period", "month_start"]].drop_duplicates()
    return {
        int(p): pd.Timestamp(m).strftime("%Y-%m-%d")
        for p, m in zip(pairs["period"], pairs["month_start"], strict=True)
    }


def _cohort_label(group: object, months: dict[int, str]) -> str:
    """A cohort is a start period (shown as its month) or, per country, an ISO3 label."""
    if isinstance(group, str):
        return group
    value = float(group)
    if np.isfinite(value) and int(value) in months:
        return months[int(value)][:7]
    return str(group)


def result_rows(
    result: DidResult, *, months: dict[int, str], settings: EstimationSettings, scopes: Iterable[str] | None = None
) -> pd.DataFrame:
    """Flatten one :class:`DidResult` into rows of :data:`RESULT_COLUMNS`.

    ``scopes`` keeps only estimate rows with those scopes (e.g. only 'overall' from a
    cohort run, only country rows from a per-country run). The event study of a run is
    overall by construction, so it is kept only when 'overall' is among the scopes.
    """
    base = {
        "estimator": result.estimator,
        "outcome": result.outcome,
        "control_group": result.control_group,
        "run_settings": settings.as_json(),
    }
    est = result.estimates.copy()
    if scopes is not None:
        est = est[est["scope"].isin(list(scopes))]
    est = est.assign(result_table="estimate", cohort=None, period_month=None, event_time=np.nan,
                     band_low=np.nan, band_high=np.nan, **base)

    ev = result.event_study.copy()
    if scopes is not None and "overall" not in set(scopes):
        ev = ev.iloc[0:0]
    ev = ev.assign(result_table="event_study", aggregation="dynamic", cohort=None, period_month=None,
                   p_value=np.nan, n_obs=np.nan, n_clusters=np.nan, n_treated_clusters=np.nan, **base)

    cells = result.att_gt.copy()
    cells = cells.assign(
        result_table="att_gt",
        aggregation="cell",
        scope=[_cohort_label(g, months) for g in cells["group"]],
        cohort=[_cohort_label(g, months) for g in cells["group"]],
        period_month=[months.get(int(p)) for p in cells["period"]],
        band_low=np.nan,
        band_high=np.nan,
        p_value=np.nan,
        n_clusters=np.nan,
        n_treated_clusters=np.nan,
        **base,
    )
    frames = [f for f in (est, ev, cells) if len(f)]
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    out = pd.concat([f.reindex(columns=RESULT_COLUMNS) for f in frames], ignore_index=True)
    if "p_value" in out and out["p_value"].isna().any():
        from mipa.estimators.results import normal_ci

        _, _, p = normal_ci(out["estimate"].to_numpy(float), out["std_error"].to_numpy(float))
        out["p_value"] = out["p_value"].fillna(pd.Series(p, index=out.index))
    return out


def diagnose_scope(panel: pd.DataFrame, outcome: str, scope: str, estimator: str | None = None) -> NotEstimable:
    """Why ``scope`` ('overall' or a partner's ISO3) has no estimate on ``outcome``, read
    off the prepared panel: no treated country, no observed month after (or before) the
    start, or, when the data show neither, that the estimator gave none."""
    treated = panel[panel["first_treat"] > 0]
    who = "any partner country"
    if scope != "overall":
        treated = treated[treated["iso3"] == scope]
        who = scope
        if treated.empty:
            return NotEstimable("no_treated_units", f"{scope} has no partnership start inside the panel window")
    if treated.empty:
        return NotEstimable("no_treated_units", "no partner country starts inside the panel window")
    observed = treated[outcome].notna().to_numpy()
    post = (treated["period"] >= treated["first_treat"]).to_numpy()
    if not (observed & post).any():
        return NotEstimable("no_post_treatment_data", f"{outcome} of {who} is not observed in any month from the start on")
    if not (observed & ~post).any():
        return NotEstimable("no_pre_treatment_data", f"{outcome} of {who} is not observed in any month before the start")
    base = (treated["period"] == treated["first_treat"] - 1).to_numpy()
    if estimator == "csdid" and not (observed & base).any():
        return NotEstimable("no_pre_treatment_data", f"{outcome} of {who} is not observed in the month before the "
                            "start, the base period every Callaway & Sant'Anna comparison needs")
    if estimator == "csdid":
        controls = panel[(panel["first_treat"] <= 0) & panel[outcome].notna()]
        bases = set((treated["first_treat"] - 1).astype(int))
        if not controls["period"].isin(bases).any():
            return NotEstimable("no_control_units", f"no never-treated country has {outcome} in the month before "
                                f"{who}'s start, the base period of Callaway & Sant'Anna's comparisons")
    return NotEstimable("no_estimate_for_scope", f"the estimator returned no {outcome} estimate for {who}")


@dataclass(frozen=True)
class RunSpec:
    """One estimator run on one outcome, and the estimate rows it must produce."""

    estimator: str
    control_group: str
    per_country: bool
    aggregations: tuple[str, ...]
    inferences: tuple[str, ...]

    def expected(self, treated: Sequence[str]) -> list[tuple[str, str, str]]:
        """(aggregation, scope, inference) of every row the marts must hold for this run."""
        scopes = list(treated) if self.per_country else ["overall"]
        return [(a, sc, i) for a in self.aggregations for sc in scopes for i in self.inferences]


def run_specs(settings: EstimationSettings) -> tuple[RunSpec, ...]:
    """The five runs behind ``fct_did_estimates``: ETWFE and CS overall and per country, TWFE."""
    staggered = ("simple", "group", "dynamic", "calendar")
    cs_inference = "multiplier_bootstrap" if settings.n_boot > 0 else "analytic_influence_function"
    return (
        RunSpec("etwfe", settings.etwfe_control_group, False, staggered, ("cluster_unit",)),
        RunSpec("etwfe", settings.etwfe_control_group, True, ("group",), ("cluster_unit",)),
        RunSpec("csdid", settings.cs_control_group, False, staggered, (cs_inference,)),
        RunSpec("csdid", settings.cs_control_group, True, ("group",), (cs_inference,)),
        RunSpec("twfe", "all", False, ("simple",), ("cluster_unit", "twoway_cluster", "driscoll_kraay")),
    )


def _run(spec: RunSpec, panel: pd.DataFrame, outcome: str, settings: EstimationSettings) -> DidResult:
    common = {"outcome": outcome, "unit": "iso3", "period": "period", "first_treat": "first_treat"}
    per_country = {"cohort": "unit", "unit_labels": dict(zip(panel["iso3"], panel["iso3"], strict=True))}
    extra = per_country if spec.per_country else {}
    if spec.estimator == "etwfe":
        return etwfe(panel, **common, control_group=spec.control_group, alpha=settings.alpha, **extra)
    if spec.estimator == "csdid":
        return callaway_santanna(
            panel, **common, control_group=spec.control_group, base_period=settings.cs_base_period,
            anticipation=settings.cs_anticipation, n_boot=settings.n_boot, seed=settings.seed,
            alpha=settings.alpha, **extra,
        )
    return twfe(panel, outcome=outcome, unit="iso3", period="period", treatments=("mipa",), vcov="all",
                alpha=settings.alpha)


def estimate_outcome(panel: pd.DataFrame, outcome: str, settings: EstimationSettings) -> list[DidResult]:
    """Every estimator on one outcome: overall (cohort) and per-country (unit) runs.

    Unbalanced outcomes (``lead_time_days`` is NULL in months without confirmations):
    ETWFE and TWFE drop the missing country-months from the regression; Callaway &
    Sant'Anna uses, for each ATT(g,t), the countries observed in both periods of the 2x2.
    Raises :class:`~mipa.estimability.NotEstimable` when a run has no estimate at all
    (:func:`run_monthly` turns that into rows with a reason).
    """
    return [_run(spec, panel, outcome, settings) for spec in run_specs(settings)]


def complete_rows(
    rows: pd.DataFrame,
    expected: Sequence[tuple[str, str, str]],
    failure: NotEstimable | None,
    panel: pd.DataFrame,
    outcome: str,
    fill: dict[str, object],
) -> pd.DataFrame:
    """Add a not-estimable row for every expected (aggregation, scope, inference) that
    ``rows`` lacks: with the run's own failure when the whole run failed, else with the
    reason :func:`diagnose_scope` reads off the panel. ``fill`` holds the constant columns
    (estimator, outcome, control group, ...)."""
    have = set(zip(rows.get("aggregation", []), rows.get("scope", []), rows.get("inference", []), strict=True))
    extra = []
    for aggregation, scope, inference in expected:
        if (aggregation, scope, inference) in have:
            continue
        why = failure if failure is not None else diagnose_scope(panel, outcome, scope, fill.get("estimator"))
        extra.append({**fill, "aggregation": aggregation, "scope": scope, "inference": inference,
                      **status_columns(why)})
    if not extra:
        return rows
    frames = [f for f in (rows, pd.DataFrame(extra)) if len(f)]
    return pd.concat(frames, ignore_index=True)


def run_monthly(country_month: pd.DataFrame, settings: EstimationSettings | None = None) -> pd.DataFrame:
    """All estimators x all outcomes on ``fct_country_month``, as one long table.

    Every (estimator, outcome, aggregation, scope, inference) of :func:`run_specs` gets a
    row: a run that cannot be estimated (a data condition, :mod:`mipa.estimability`)
    leaves rows with a NULL estimate and the reason, and every other run is computed.
    """
    settings = settings or EstimationSettings()
    panel = prepare_panel(country_month)
    months = _period_to_month(panel)
    treated = sorted(set(panel.loc[panel["first_treat"] > 0, "iso3"]))
    frames = []
    for outcome in settings.outcomes:
        for spec in run_specs(settings):
            result, failure = attempt(lambda spec=spec, outcome=outcome: _run(spec, panel, outcome, settings))
            scopes = treated if spec.per_country else (None if spec.estimator == "twfe" else ["overall"])
            rows = (result_rows(result, months=months, settings=settings, scopes=scopes) if result is not None
                    else pd.DataFrame(columns=RESULT_COLUMNS))
            fill = {"result_table": "estimate", "estimator": spec.estimator, "outcome": outcome,
                    "control_group": spec.control_group, "run_settings": settings.as_json()}
            frames.append(complete_rows(rows, spec.expected(treated), failure, panel, outcome, fill))
    out = pd.concat(frames, ignore_index=True).reindex(columns=RESULT_COLUMNS)
    return finalize_status(out)


def run_yearly(country_year: pd.DataFrame) -> pd.DataFrame:
    """Annex 11.2: each return outcome on MISA and on MIPA, one regression each, with
    country and year fixed effects and country-clustered standard errors."""
    frames = []
    for treatment in YEARLY_TREATMENTS:
        table = yearly_twfe(
            country_year, outcomes=YEARLY_OUTCOMES, unit="iso3", period="calendar_year", treatments=(treatment,)
        )
        frames.append(table)
    return pd.concat(frames, ignore_index=True)
