"""The one result type shared by every estimator.

A :class:`DidResult` holds tidy tables, so the dbt Python models can write them to
marts without reshaping, and tests can select rows by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

# an estimate with its standard error and interval: every result table has these four
INTERVAL_COLUMNS = ["estimate", "std_error", "ci_low", "ci_high"]

ESTIMATE_COLUMNS = [
    "aggregation",  # 'simple' | 'group' | 'dynamic' | 'calendar'
    "scope",  # 'overall' or a group / unit label (ISO3 for the country panel)
    *INTERVAL_COLUMNS,
    "p_value",
    "n_obs",  # observations used by the fit that produced the row
    "n_clusters",  # clusters behind the standard error
    "n_treated_clusters",  # treated clusters behind the estimate
    "inference",  # how std_error / CI were obtained
    "status",  # 'estimated' | 'not_estimable' (mipa.estimability)
    "reason",  # a key of mipa.estimability.REASONS, or None
    "reason_detail",  # the reason in words, for this row
]

@dataclass(frozen=True)
class IntervalRow:
    """The leading fields of an inference method's result row: scope, estimate, standard
    error, interval and p-value (the method's own fields follow)."""

    scope: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float


EVENT_STUDY_COLUMNS = [
    "scope",
    "event_time",  # period - first treatment period
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "band_low",  # uniform (simultaneous) band; NaN when the method gives none
    "band_high",
    "inference",
]

ATT_GT_COLUMNS = [
    "group",  # cohort: first treatment period (or unit label for per-unit cohorts)
    "period",
    "event_time",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "n_obs",
    "inference",
]


def plain(v: Any) -> Any:
    """A numpy scalar as the python scalar (for JSON-able ``settings``); anything else as it is."""
    return v.item() if hasattr(v, "item") else v


def estimate_row(source: Any, aggregation: str, **values: Any) -> dict[str, Any]:
    """One row of :data:`ESTIMATE_COLUMNS` from an inference result's attributes.

    Columns given in ``values`` override the attribute of the same name (e.g. a method
    that has no standard error passes ``std_error=np.nan``).
    """
    values["aggregation"] = aggregation
    optional = {"status", "reason", "reason_detail"}
    return {
        c: values[c] if c in values else (getattr(source, c, None) if c in optional else getattr(source, c))
        for c in ESTIMATE_COLUMNS
    }


def estimate_frame(
    meta: list[dict[str, Any]], estimate: np.ndarray, std_error: np.ndarray, ci_low: np.ndarray,
    ci_high: np.ndarray, p_value: np.ndarray, *, n_obs: Any, n_clusters: Any, inference: Any,
) -> pd.DataFrame:
    """The aggregate rows ``meta`` (one dict per row: ``aggregation``, ``scope``, ...) with
    their numbers under the names of :data:`ESTIMATE_COLUMNS`.

    ``n_obs``, ``n_clusters`` and ``inference`` are one value for all rows or one per row.
    The status columns and the final column order are the caller's (the ETWFE estimators
    of :mod:`mipa.estimators.etwfe` and :mod:`mipa.estimators.poisson_etwfe`).
    """
    frame = pd.DataFrame(meta)
    frame["estimate"] = estimate
    frame["std_error"] = std_error
    frame["ci_low"] = ci_low
    frame["ci_high"] = ci_high
    frame["p_value"] = p_value
    frame["n_obs"] = n_obs
    frame["n_clusters"] = n_clusters
    frame["inference"] = inference
    return frame


def event_study_frame(
    event_time: list[Any], estimate: np.ndarray, std_error: np.ndarray, ci_low: np.ndarray,
    ci_high: np.ndarray, *, inference: Any, reference: bool,
) -> pd.DataFrame:
    """The ``overall`` event study in :data:`EVENT_STUDY_COLUMNS`, sorted by event time,
    without a uniform band.

    ``reference``: the design normalises event time ``-1`` (never-treated controls, every
    cohort row but ``g - 1`` saturated); when there are leads before it, its row is added
    with estimate 0, no standard error and ``inference = "reference"``.
    """
    frame = pd.DataFrame({
        "scope": "overall", "event_time": event_time, "estimate": estimate, "std_error": std_error,
        "ci_low": ci_low, "ci_high": ci_high, "band_low": np.nan, "band_high": np.nan, "inference": inference,
    })
    if reference and (frame["event_time"] < -1).any():
        ref = pd.DataFrame([{"scope": "overall", "event_time": -1, "estimate": 0.0, "std_error": np.nan,
                             "ci_low": np.nan, "ci_high": np.nan, "band_low": np.nan, "band_high": np.nan,
                             "inference": "reference"}])
        frame = pd.concat([frame, ref], ignore_index=True)
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)[EVENT_STUDY_COLUMNS]


def normal_ci(
    estimate: np.ndarray | float, std_error: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wald interval and two-sided p-value from the normal approximation.

    ci = estimate +/- z_{1-(1-level)/2} * se;  p = 2 * (1 - Phi(|estimate / se|)).
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    return est - z * se, est + z * se, p


@dataclass(frozen=True)
class DidResult:
    """Output of one estimator run on one outcome.

    Attributes
    ----------
    estimator: 'etwfe', 'csdid', 'twfe', ...
    outcome: name of the outcome column.
    control_group: 'notyettreated' or 'nevertreated' (or 'all' for classic TWFE).
    estimates: aggregated effects, columns :data:`ESTIMATE_COLUMNS`.
    event_study: effects by event time, columns :data:`EVENT_STUDY_COLUMNS`.
    att_gt: the underlying cell effects, columns :data:`ATT_GT_COLUMNS`.
    settings: the options the run used (for the marts' run-settings column).
    """

    estimator: str
    outcome: str
    control_group: str
    estimates: pd.DataFrame
    event_study: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=EVENT_STUDY_COLUMNS)
    )
    att_gt: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ATT_GT_COLUMNS))
    settings: dict[str, Any] = field(default_factory=dict)

    def overall(self, aggregation: str = "simple") -> pd.Series:
        """The overall row of one aggregation."""
        rows = self.estimates[
            (self.estimates["aggregation"] == aggregation) & (self.estimates["scope"] == "overall")
        ]
        if len(rows) != 1:
            raise KeyError(f"no single overall row for aggregation {aggregation!r}")
        return rows.iloc[0]

    def cell(self, group: Any, period: Any) -> pd.Series:
        """One ATT(g, t) row."""
        rows = self.att_gt[(self.att_gt["group"] == group) & (self.att_gt["period"] == period)]
        if len(rows) != 1:
            raise KeyError(f"no single ATT({group}, {period}) cell")
        return rows.iloc[0]
