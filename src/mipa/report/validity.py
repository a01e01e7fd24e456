"""Which interval a table or figure shows and what its Monte Carlo measured: the default
(validated) method of ``fct_did_inference``, whether any method of an estimator qualifies at
this design for an outcome, and the notes that name the method and its coverage."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mipa.outcomes import PRIMARY_OUTCOME
from mipa.report import labels
from mipa.report.formatting import (
    MISSING,
    auto_decimals,
    fmt_estimate_ci,
    fmt_interval,
    fmt_number,
    fmt_percent,
    is_missing,
    star,
)

__all__ = [
    "coverage_of",
    "default_inference_row",
    "default_interval_note",
    "interval_note",
    "valid_interval_at_design",
    "validated_effect",
]


def default_inference_row(inference: pd.DataFrame | None, *, estimator: str, outcome: str,
                          scope: str) -> pd.Series | None:
    """The fct_did_inference row of the estimator's default (Monte Carlo-validated) method, or None."""
    if inference is None or inference.empty:
        return None
    rows = inference[(inference["estimator"] == estimator) & (inference["outcome"] == outcome)
                     & (inference["scope"] == scope) & inference["is_default_method"].astype(bool)]
    return None if rows.empty else rows.iloc[0]


def _outcome_rows(rows: pd.DataFrame, outcome: str | None) -> pd.DataFrame:
    """The rows of ``outcome`` when there are any, else those of the coverage Monte Carlo's
    outcome (:data:`~mipa.outcomes.PRIMARY_OUTCOME`), else all: validity and coverage are
    measured per outcome where the Monte Carlo ran it, and an outcome it did not run is read
    with the primary outcome's (as fct_did_inference does)."""
    for want in filter(None, (outcome, PRIMARY_OUTCOME)):
        mine = rows[rows["outcome"] == want]
        if not mine.empty:
            return mine
    return rows


def valid_interval_at_design(inference: pd.DataFrame | None, *, estimator: str, scope: str,
                             outcome: str | None = None) -> bool:
    """Whether any inference method of ``estimator`` qualifies at this design for ``outcome``
    and the scope kind of ``scope`` (fct_did_inference.valid_interval_at_design); True
    without the mart."""
    if inference is None or inference.empty or "valid_interval_at_design" not in inference:
        return True
    rows = inference[(inference["estimator"] == estimator) & ((inference["scope"] == "overall") == (scope == "overall"))]
    rows = _outcome_rows(rows, outcome)
    return bool(rows["valid_interval_at_design"].astype(bool).any()) if not rows.empty else True


def coverage_of(inference: pd.DataFrame | None, estimator: str, method: str, scope: str,
                outcome: str | None = None) -> Any:
    """Monte Carlo coverage of ``estimator`` x ``method`` at the annex design, overall or per
    country, for ``outcome`` (default: the coverage Monte Carlo's outcome)."""
    if inference is None or inference.empty:
        return None
    rows = inference[(inference["estimator"] == estimator) & (inference["inference"] == method)
                     & ((inference["scope"] == "overall") == (scope == "overall"))]
    rows = _outcome_rows(rows, outcome)
    return None if rows.empty else rows["mc_coverage"].iloc[0]


def _method_coverage(inference: pd.DataFrame, estimator: str, *, overall: bool,
                     default: bool) -> tuple[str | None, Any]:
    """(method, Monte Carlo coverage) of the default method, or of the clustered one, on the
    coverage Monte Carlo's outcome."""
    rows = _outcome_rows(inference[(inference["estimator"] == estimator)
                                   & ((inference["scope"] == "overall") == overall)], None)
    rows = rows[rows["is_default_method"].astype(bool)] if default else rows[rows["inference"] == "cluster_unit"]
    if rows.empty:
        return None, None
    return rows["inference"].iloc[0], rows["mc_coverage"].iloc[0]


def validated_effect(row: pd.Series | None, inference: pd.DataFrame | None, *, estimator: str, outcome: str,
                     scope: str, lang: str, with_interval: bool = True) -> tuple[str, str, dict[str, Any]]:
    """``(text, subtext, tidy extras)`` of an effect cell outside Table 2's layout: where a
    method of ``estimator`` qualifies at this design (fct_did_inference), the default
    method's estimate and interval (the star: the interval excludes zero) with the row's own
    interval beneath; where none does, the estimate without a star and the measured
    coverage of the row's method; without the mart, the row's own numbers. ``with_interval``
    False: the estimate and its star only (per-country columns)."""
    if row is None or is_missing(row["estimate"]):
        return MISSING, "", {}
    own = (fmt_estimate_ci(row["estimate"], row["ci_low"], row["ci_high"], row["p_value"], lang=lang, outcome=outcome)
           if with_interval else fmt_number(row["estimate"], auto_decimals(outcome=outcome), lang) + star(row["p_value"]))
    if inference is None or inference.empty or not (inference["estimator"] == estimator).any():
        return own, "", {}
    number = fmt_number(row["estimate"], auto_decimals(row["estimate"], outcome=outcome) if with_interval
                        else auto_decimals(outcome=outcome), lang)
    if not valid_interval_at_design(inference, estimator=estimator, scope=scope, outcome=outcome):
        coverage = coverage_of(inference, estimator, str(row["inference"]), scope, outcome)
        subtext = labels.text(lang, "no_valid_interval")
        if with_interval and not is_missing(coverage):
            subtext += "; " + labels.text(lang, "measured_coverage", method=labels.inference(lang, str(row["inference"])),
                                          coverage=fmt_percent(coverage, 1, lang))
        return number, subtext, {"valid_interval_at_design": False, "mc_coverage": coverage}
    default = default_inference_row(inference, estimator=estimator, outcome=outcome, scope=scope)
    if default is None or is_missing(default["estimate"]) or default["inference"] == row["inference"]:
        return own, "", {}
    extras = {"default_inference": default["inference"], "default_estimate": default["estimate"],
              "default_ci_low": default["ci_low"], "default_ci_high": default["ci_high"],
              "default_mc_coverage": default.get("mc_coverage")}
    text = fmt_interval(default["estimate"], default["ci_low"], default["ci_high"], lang=lang, outcome=outcome)
    if not with_interval:
        return text.split(" [")[0], "", extras
    subtext = f"{labels.text(lang, 'clustered_short')} " + fmt_interval(
        row["estimate"], row["ci_low"], row["ci_high"], lang=lang, outcome=outcome, with_estimate=False)
    return text, subtext, extras


def default_interval_note(inference: pd.DataFrame | None, estimator: str, lang: str) -> str | None:
    """The note under a table whose cells show the default method's intervals."""
    if inference is None or inference.empty or not (inference["estimator"] == estimator).any():
        return None
    m_all, c_all = _method_coverage(inference, estimator, overall=True, default=True)
    m_cty, c_cty = _method_coverage(inference, estimator, overall=False, default=True)
    _, cl_all = _method_coverage(inference, estimator, overall=True, default=False)
    _, cl_cty = _method_coverage(inference, estimator, overall=False, default=False)
    name = lambda m: MISSING if m is None else labels.inference(lang, m)  # noqa: E731
    return labels.text(
        lang, "note_default_interval", overall=name(m_all), overall_coverage=fmt_percent(c_all, 1, lang),
        countries=name(m_cty), countries_coverage=fmt_percent(c_cty, 1, lang),
        clustered_overall=fmt_percent(cl_all, 1, lang), clustered_countries=fmt_percent(cl_cty, 1, lang),
    )


def interval_note(inference: pd.DataFrame | None, estimator: str, method: str, lang: str, *,
                  scope: str | None = "overall") -> str:
    """The sentence under a figure that draws intervals: their method and the Monte Carlo's
    coverage of that nominal 95% interval (``scope=None``: intervals the Monte Carlo does
    not score, such as event-time ones, said so)."""
    name = labels.inference(lang, method)
    coverage = None if scope is None else coverage_of(inference, estimator, method, scope)
    if is_missing(coverage):
        return labels.text(lang, "fig_interval_unmeasured", method=name)
    valid = 0.93 <= float(coverage) <= 0.97
    return labels.text(lang, "fig_interval_coverage", method=name, coverage=fmt_percent(float(coverage), 1, lang),
                       verdict=labels.text(lang, "fig_interval_valid" if valid else "fig_interval_not_valid"))
