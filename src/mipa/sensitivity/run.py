r"""Event studies, pre-trend tests, HonestDiD bounds and Poisson ETWFE on the country-month panel.

The dbt Python models in ``python_models/sensitivity/`` call :func:`run_event_study_sensitivity`
and :func:`run_poisson`; everything they write is decided here and by
:class:`SensitivitySettings` (seeds included), so the same panel gives the same tables.

Event studies (``result_table = 'event_study'``), months since the start ``e`` in the
window ``[-24, 24]``, reference ``e = -1``, each with pointwise 95% intervals and a sup-t
uniform band over the window (:func:`mipa.sensitivity.event_studies.event_study_table`):

* ``etwfe``: Wooldridge ETWFE with **never-treated** controls (every cohort row but
  ``g - 1`` a cell, so the leads exist; Wooldridge 2021 sec. 7). The main marts' ETWFE
  event study uses not-yet-treated controls and has lags only.
* ``csdid``: Callaway & Sant'Anna, never-treated controls, **universal** base period
  ``g - 1`` (the main marts' CS event study has R ``did``'s varying base, whose leads are
  month-on-month changes and not comparable with the lags).
* ``twfe``: classic dynamic TWFE, relative-month dummies in the window, end bins.
* ``poisson_etwfe``: Poisson ETWFE, never-treated controls, count scale (count outcomes).

Pre-trend tests (``'pretrend_test'``, :mod:`mipa.sensitivity.event_study_rows`): Wald
tests of the leads ``e = -24..-2`` with each estimator's clustered covariance, and for
``csdid`` also the placebo-referenced test (:mod:`mipa.sensitivity.placebo`).

HonestDiD (``'honest_bounds'``, Rambachan & Roth 2023; :mod:`mipa.sensitivity.honest_bounds`)
for ``etwfe`` and ``csdid`` on the annex's five main outcomes: the first year's average
effect, from the event study binned into quarters, under ``Delta^RM(Mbar)`` and
``Delta^SD(M)``, with breakdown values.

Poisson ETWFE (:func:`run_poisson`; Wooldridge 2023): count-scale effects of the count
outcomes, overall (cohorts) and per country (every partner its own cohort), with the
not-yet-treated controls of the linear ETWFE. Countries whose outcome is 0 in every post
month are kept (effect = minus the counterfactual mean), as are zero cells; the rows say
which ones and flag the inference (``cluster_unit_separated``); countries with 0 in every
month are left out of the fit (no information under Poisson) and listed.

The settings, labels and columns are in :mod:`mipa.sensitivity.specification`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimability import STATUS_COLUMNS, NotEstimable, attempt, finalize_status, status_columns
from mipa.estimation import prepare_panel
from mipa.estimators.poisson_etwfe import poisson_etwfe
from mipa.sensitivity.event_studies import settings_json
from mipa.sensitivity.event_study_rows import event_study_rows, event_study_vcovs, pretrend_rows
from mipa.sensitivity.honest_bounds import (
    bracketed_breakdown,
    honest_rows,
    honest_rows_or_reason,
    quarterly_event_study,
)
from mipa.sensitivity.specification import (
    CONTROL_GROUP,
    COUNT_OUTCOMES,
    EVENT_STUDY_ESTIMATORS,
    HONEST_ESTIMATORS,
    MAIN_OUTCOMES,
    PLACEBO_SOURCE,
    RESULT_COLUMNS,
    SPECIFICATION,
    UNIT,
    VCOV_SOURCE,
    SensitivitySettings,
    described,
    quiet,
)

__all__ = [
    "CONTROL_GROUP",
    "COUNT_OUTCOMES",
    "EVENT_STUDY_ESTIMATORS",
    "HONEST_ESTIMATORS",
    "MAIN_OUTCOMES",
    "PLACEBO_SOURCE",
    "RESULT_COLUMNS",
    "SPECIFICATION",
    "UNIT",
    "VCOV_SOURCE",
    "POISSON_COLUMNS",
    "SensitivitySettings",
    "bracketed_breakdown",
    "event_study_rows",
    "event_study_vcovs",
    "honest_rows",
    "poisson_rows",
    "pretrend_rows",
    "quarterly_event_study",
    "run_event_study_sensitivity",
    "run_poisson",
    "zero_post_countries",
]


# --------------------------------------------------------------------------- the run
def run_event_study_sensitivity(
    country_month: pd.DataFrame, settings: SensitivitySettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Event studies, pre-trend tests and HonestDiD bounds on ``fct_country_month`` as one
    long table of :data:`RESULT_COLUMNS` (``result_table`` says which). ``progress`` gets a
    line per outcome done."""
    settings = settings or SensitivitySettings()
    panel = prepare_panel(country_month)
    frames = []
    for k, outcome in enumerate(settings.outcomes, 1):
        if progress:
            progress(f"sensitivity: {outcome} ({k}/{len(settings.outcomes)} outcomes: event studies, pre-trend "
                     f"tests{', HonestDiD' if outcome in settings.honest_outcomes else ''})")
        vcovs = event_study_vcovs(panel, outcome, settings)
        for estimator, fitted in vcovs.items():
            rows, failure = (None, fitted) if isinstance(fitted, NotEstimable) else attempt(
                lambda estimator=estimator, es=fitted[0]: event_study_rows(estimator, outcome, es, settings))
            if rows is None:  # one row says why the whole event study is missing
                frames.append(described(pd.DataFrame([status_columns(failure)]), "event_study", estimator, outcome))
            else:
                frames.append(rows.assign(note="; ".join(fitted[1]) or None))
        frames.append(pretrend_rows(panel, outcome, vcovs, settings))
        if outcome in settings.honest_outcomes:
            for estimator in HONEST_ESTIMATORS:
                fitted = vcovs[estimator]
                rows, failure = (None, fitted) if isinstance(fitted, NotEstimable) else attempt(
                    lambda estimator=estimator, es=fitted[0]: honest_rows_or_reason(estimator, outcome, es, settings))
                if rows is None:
                    rows = described(pd.DataFrame([{"restriction": "original", "method": "normal", "parameter": 0.0,
                                                     "parameter_multiple": 0.0, **status_columns(failure)}]),
                                      "honest_bounds", estimator, outcome)
                frames.append(rows)
    out = pd.concat([f.reindex(columns=RESULT_COLUMNS) for f in frames], ignore_index=True)
    out["run_settings"] = settings.as_json()
    return _typed(_with_status(out))


def _with_status(out: pd.DataFrame) -> pd.DataFrame:
    """Status of every row: a test row is estimated when it has a statistic; the event
    study's reference month (estimate 0 by construction) needs no standard error."""
    is_test = (out["result_table"] == "pretrend_test").to_numpy()
    reference = (out["inference"] == "reference").to_numpy()
    probe = out.assign(
        estimate=np.where(is_test, out["statistic"], out["estimate"]),
        std_error=np.where(is_test | reference, 0.0, out["std_error"]),
    )
    done = finalize_status(probe)
    return out.assign(**{c: done[c] for c in STATUS_COLUMNS})


_INTEGER_COLUMNS = ("event_time", "n_clusters", "first_lead", "last_lead", "df", "n_placebo")
_BOOLEAN_COLUMNS = ("open_lower", "open_upper")
_TEXT_COLUMNS = ("result_table", "estimator", "outcome", "specification", "control_group", "inference",
                 "vcov_source", "restriction", "method", "pre_window", "post_window", "note", "status", "reason",
                 "reason_detail", "run_settings")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column (nullable integers and booleans), so that every result table
    of the union lands in the warehouse with the same column types."""
    out = frame.copy()
    for col in out.columns:
        if col in _INTEGER_COLUMNS:
            out[col] = pd.array(out[col].astype(float).round(), dtype="Int64")
        elif col in _BOOLEAN_COLUMNS:
            out[col] = out[col].astype("boolean")
        elif col in _TEXT_COLUMNS:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        else:
            out[col] = out[col].astype(float)
    return out


# --------------------------------------------------------------------------- Poisson ETWFE
POISSON_COLUMNS = [
    "estimator",
    "outcome",
    "aggregation",
    "scope",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "rate_ratio",
    "rate_ratio_ci_low",
    "rate_ratio_ci_high",
    "n_obs",
    "n_clusters",
    "n_treated_clusters",
    "inference",
    "control_group",
    "n_all_zero_countries",
    "all_zero_countries",
    "n_zero_cells",
    "zero_post_countries",
    "zero_baseline_countries",
    "separation_handling",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]
SEPARATION_HANDLING = (
    "kept: a treated cell with 0 in every row has effect minus its counterfactual mean "
    "(tau = -inf, standard error unreliable); a treated country with 0 in every month before "
    "its start has counterfactual 0 (effect = its mean count); countries with 0 in every month "
    "carry no information under Poisson and are left out of the fit, listed"
)


def zero_post_countries(panel: pd.DataFrame, outcome: str) -> list[str]:
    """Partner countries whose ``outcome`` is 0 in every observed month from their start on
    (the case that made the annex drop Poisson); partners never observed after the start
    are not listed."""
    treated = panel[(panel["first_treat"] > 0) & (panel["period"] >= panel["first_treat"])]
    post = treated.dropna(subset=[outcome]).groupby("iso3")[outcome].max()
    return sorted(str(c) for c in post.index[post <= 0])


def _text(values: Sequence[Any]) -> str | None:
    """Comma-separated text of ``values``; None when there are none."""
    return ", ".join(str(v) for v in values) if len(values) else None


def poisson_rows(panel: pd.DataFrame, outcome: str, settings: SensitivitySettings) -> pd.DataFrame:
    """Overall (cohort) and per-country Poisson ETWFE rows of one count outcome.

    Always the four overall aggregations (simple, group, dynamic, calendar) and one
    ``group`` row per partner country (``first_treat > 0``), whether or not they can be
    estimated. The cohort fit gives the overall rows and the per-country fit (each partner
    its own cohort) the country rows, each attempted on its own
    (:func:`mipa.estimability.attempt`): a data condition
    (:class:`~mipa.estimability.NotEstimable`, a singular matrix) gives rows with NULL
    numbers and the status columns filled, anything else propagates. When the joint
    per-country fit fails as a whole, each partner is fitted alone with the other partners'
    post-start months left out; in the per-country model those months are their own cells
    and fit exactly, so the partner's estimate is the same (only ``N`` in the small-sample
    factor differs).
    """
    common = dict(outcome=outcome, **UNIT, control_group=settings.etwfe_control_group, alpha=settings.alpha)
    labels = dict(zip(panel["iso3"], panel["iso3"], strict=True))
    partners = sorted(str(c) for c in panel.loc[panel["first_treat"] > 0, "iso3"].unique())
    zero_post = zero_post_countries(panel, outcome)
    totals = panel.dropna(subset=[outcome]).groupby("iso3")[outcome].sum()
    all_zero = sorted(str(c) for c in totals.index[totals <= 0])
    handling = (SEPARATION_HANDLING + "; a month in which every comparison country has 0 while a partner has "
                "events has counterfactual 0 (effect = the partner's fitted count, inference flagged)")
    aggregations = ("simple", "group", "dynamic", "calendar")
    numbers = ["estimate", "std_error", "ci_low", "ci_high", "p_value", "rate_ratio", "rate_ratio_ci_low",
               "rate_ratio_ci_high", "n_obs", "n_clusters", "n_treated_clusters"]

    def fitted(data: pd.DataFrame, **kw: Any) -> tuple[Any, list[str], NotEstimable | None]:
        out, failure = attempt(lambda: quiet(lambda: poisson_etwfe(data, **common, **kw)))
        return (None, [], failure) if out is None else (out[0], out[1], None)

    def missing(aggregation: str, scope: str, failure: NotEstimable, fit: Any = None) -> dict[str, Any]:
        row: dict[str, Any] = {"aggregation": aggregation, "scope": scope, **dict.fromkeys(numbers, np.nan),
                               "inference": None, **status_columns(failure)}
        if fit is not None:
            row.update(n_obs=fit.settings["n_obs"], n_clusters=fit.settings["n_units"], n_treated_clusters=0)
        return row

    def zero_cells(fit: Any, scope: str | None) -> int:
        cells = fit.settings["separation"]["zero_cells"] if fit is not None else []
        return sum(1 for c in cells if c["event_time"] >= 0 and (scope is None or str(c["group"]) == scope))

    def why_no_row(iso: str, fit: Any) -> NotEstimable:
        rows = panel[(panel["iso3"] == iso)].dropna(subset=[outcome])
        g = float(panel.loc[panel["iso3"] == iso, "first_treat"].iloc[0])
        if not (rows["period"] < g).any():
            return NotEstimable("no_pre_treatment_data", f"{iso}: {outcome} is not observed before its start")
        if not (rows["period"] >= g).any():
            return NotEstimable("no_post_treatment_data", f"{iso}: {outcome} is not observed from its start on")
        if fit is not None and fit.settings.get("last_cohort_as_control") == g:
            return NotEstimable("no_control_units", f"{iso}: no never-treated country; the last partner is the "
                                                    "comparison until its start and has no comparison after it")
        if (rows[outcome] <= 0).all():
            return NotEstimable("all_zero_outcome", f"{iso}: {outcome} is 0 in every month")
        return NotEstimable("no_estimate_for_scope", f"{iso}: no cell of this partner is left in the fit")

    # overall: the cohort fit
    cohort_fit, notes_g, fail_g = fitted(panel)
    if cohort_fit is not None:
        est = cohort_fit.estimates
        overall = est[est["scope"] == "overall"].copy()
        have = set(overall["aggregation"])
        extra = [missing(a, "overall", NotEstimable("no_estimate_for_scope"), cohort_fit)
                 for a in aggregations if a not in have]
        overall = pd.concat([overall, pd.DataFrame(extra)], ignore_index=True) if extra else overall
        sep = cohort_fit.settings["separation"]
        overall["n_zero_cells"] = zero_cells(cohort_fit, None)
        overall["zero_baseline_countries"] = _text([str(u) for u in sep["zero_baseline_units"]])
    else:
        overall = pd.DataFrame([missing(a, "overall", fail_g) for a in aggregations])
        overall["n_zero_cells"] = 0
        overall["zero_baseline_countries"] = None
    overall["zero_post_countries"] = _text(zero_post)

    # per country: the joint per-unit fit, else each partner alone
    unit_fit, notes_u, fail_u = fitted(panel, cohort="unit", unit_labels=labels)
    refitted: dict[str, str] = {}
    country_rows = []
    for iso in partners:
        fit, failure = unit_fit, fail_u
        if fit is None:
            others_post = (panel["first_treat"] > 0) & (panel["iso3"] != iso) & (panel["period"] >= panel["first_treat"])
            fit, _, failure = fitted(panel[~others_post], cohort="unit", unit_labels=labels)
            refitted[iso] = "estimated alone" if fit is not None else f"{failure.reason} alone"
        if fit is None:
            row = missing("group", iso, failure)
            zb = False
        else:
            est = fit.estimates
            match = est[(est["aggregation"] == "group") & (est["scope"] == iso)]
            row = match.iloc[0].to_dict() if len(match) else missing("group", iso, why_no_row(iso, fit), fit)
            zb = iso in {str(u) for u in fit.settings["separation"]["zero_baseline_units"]}
        row.update(n_zero_cells=zero_cells(fit, iso), zero_post_countries=iso if iso in zero_post else None,
                   zero_baseline_countries=iso if zb else None)
        country_rows.append(row)
    country = pd.DataFrame(country_rows, columns=list(overall.columns) if not country_rows else None)

    fit_settings = (settings_json({k: v for k, v in cohort_fit.settings.items() if k != "cells_log_scale"})
                    if cohort_fit is not None else {"failure": str(fail_g)})
    run_settings = json.dumps({**json.loads(settings.as_json()), "notes": notes_g + notes_u, "fit": fit_settings,
                               "per_country_fit": ("joint" if unit_fit is not None else
                                                   {"joint_failure": str(fail_u), "partners": refitted})},
                              sort_keys=True, default=str)
    out = pd.concat([overall, country], ignore_index=True)
    return out.assign(
        estimator="poisson_etwfe", outcome=outcome, control_group=settings.etwfe_control_group,
        n_all_zero_countries=len(all_zero), all_zero_countries=_text(all_zero),
        separation_handling=handling, run_settings=run_settings,
    )


def run_poisson(country_month: pd.DataFrame, settings: SensitivitySettings | None = None) -> pd.DataFrame:
    """Poisson ETWFE (count scale) for every count outcome, as rows of :data:`POISSON_COLUMNS`:
    per outcome the four overall aggregations and one row per partner country, each either
    estimated or ``not_estimable`` with a documented reason (:mod:`mipa.estimability`)."""
    settings = settings or SensitivitySettings()
    panel = prepare_panel(country_month)
    frames = [poisson_rows(panel, outcome, settings) for outcome in settings.poisson_outcomes]
    out = pd.concat(frames, ignore_index=True).reindex(columns=POISSON_COLUMNS)
    for col in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "rate_ratio", "rate_ratio_ci_low",
                "rate_ratio_ci_high", "n_obs", "n_clusters", "n_treated_clusters"):
        out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
    for col in ("n_all_zero_countries", "n_zero_cells"):
        out[col] = out[col].astype(np.int64)
    for col in ("estimator", "outcome", "aggregation", "scope", "inference", "control_group", "all_zero_countries",
                "zero_post_countries", "zero_baseline_countries", "separation_handling", *STATUS_COLUMNS,
                "run_settings"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out.reset_index(drop=True)
