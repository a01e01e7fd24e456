"""What every row of the sensitivity marts says about how it was made: the settings of a run,
each event study's specification, comparison group and covariance source, and the columns.

The event studies and their labels are those of :mod:`mipa.sensitivity.run` (Wooldridge
2021 ETWFE and Callaway & Sant'Anna 2021 with never-treated controls, the classic dynamic
TWFE, Poisson ETWFE after Wooldridge 2023); :class:`SensitivitySettings` holds every option
and seed and is written to each row as JSON, so the same panel gives the same tables.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from mipa.estimators.results import INTERVAL_COLUMNS
from mipa.outcomes import COUNT_OUTCOMES, MAIN_OUTCOMES, OUTCOMES

__all__ = [
    "CONTROL_GROUP", "COUNT_OUTCOMES", "EVENT_STUDY_ESTIMATORS", "HONEST_ESTIMATORS", "MAIN_OUTCOMES", "PLACEBO_SOURCE",
    "RESULT_COLUMNS", "SPECIFICATION", "UNIT", "VCOV_SOURCE", "SensitivitySettings", "described", "quiet",
]

EVENT_STUDY_ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid", "twfe", "poisson_etwfe")
HONEST_ESTIMATORS: tuple[str, ...] = ("etwfe", "csdid")
UNIT = dict(unit="iso3", period="period", first_treat="first_treat")

# how each event study was specified (mart column 'specification')
SPECIFICATION = {
    "etwfe": "cohort_period_cells_never_treated",
    "csdid": "universal_base_period",
    "twfe": "relative_month_dummies_binned_ends",
    "poisson_etwfe": "cohort_period_cells_never_treated_count_scale",
}
CONTROL_GROUP = {"etwfe": "nevertreated", "csdid": "nevertreated", "twfe": "all", "poisson_etwfe": "nevertreated"}
VCOV_SOURCE = {
    "etwfe": "cluster_unit",
    "csdid": "analytic_influence_function",
    "twfe": "cluster_unit",
    "poisson_etwfe": "cluster_unit",
}
PLACEBO_SOURCE = "placebo_rescaled"

RESULT_COLUMNS = [
    "result_table",  # 'event_study' | 'pretrend_test' | 'honest_bounds'
    "estimator",
    "outcome",
    "specification",
    "control_group",
    "event_time",
    *INTERVAL_COLUMNS,
    "band_low",
    "band_high",
    "critical_value",
    "inference",
    "n_clusters",
    "vcov_source",
    "first_lead",
    "last_lead",
    "statistic",
    "df",
    "p_value",
    "f_statistic",
    "df_denominator",
    "p_value_f",
    "n_placebo",
    "restriction",
    "method",
    "parameter",
    "parameter_multiple",
    "m_unit",
    "open_lower",
    "open_upper",
    "breakdown_value",
    "breakdown_multiple",
    "breakdown_limit",
    "pre_window",
    "post_window",
    "note",
    "status",
    "reason",
    "reason_detail",
    "run_settings",
]


@dataclass(frozen=True)
class SensitivitySettings:
    """Options of one sensitivity run; written to every row as JSON."""

    event_window: tuple[int, int] = (-24, 24)
    pretrend_leads: tuple[int, int] = (-24, -2)
    honest_pre_quarters: int = 3
    honest_post_quarters: int = 4
    mbar_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    m_multiples: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    breakdown_mbar_limit: float = 10.0
    breakdown_m_limit_multiple: float = 20.0
    breakdown_tol: float = 1 / 32  # in Mbar, and in multiples of m_unit for M
    honest_grid_points: int = 200
    alpha: float = 0.05
    seed: int = 20260701
    n_band_draws: int = 10_000
    n_placebo: int = 999
    etwfe_control_group: str = "notyettreated"  # Poisson estimates: as the linear ETWFE
    outcomes: tuple[str, ...] = OUTCOMES
    honest_outcomes: tuple[str, ...] = MAIN_OUTCOMES  # verified departures (the appendix): no HonestDiD rows (runtime)
    poisson_outcomes: tuple[str, ...] = COUNT_OUTCOMES

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def quiet(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``fn`` and return its result with the text of the warnings it raised (for the
    mart's note column: a warning that reaches the dbt log alone is lost)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, sorted({str(w.message) for w in caught})



def described(frame: pd.DataFrame, table: str, estimator: str, outcome: str, **more: Any) -> pd.DataFrame:
    """``frame`` with the columns that say which result it is and how it was specified."""
    return frame.assign(result_table=table, estimator=estimator, outcome=outcome,
                        specification=SPECIFICATION[estimator], control_group=CONTROL_GROUP[estimator],
                        vcov_source=VCOV_SOURCE[estimator], **more)
