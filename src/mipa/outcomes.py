"""The panel's outcomes, defined once for the estimation, the simulation, the Monte Carlo and
the report (the dbt panel model ``int_panel__country_month`` holds the same columns)."""

from __future__ import annotations

# the annex's outcomes, in the order of its tables; verified departures is its appendix 4
OUTCOMES: tuple[str, ...] = (
    "forced_departures",
    "laissez_passers",
    "confirmations",
    "lead_time_days",
    "requests",
    "verified_departures",
)
# the annex's main table: every outcome but verified departures (its appendix)
MAIN_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "verified_departures")
# the annex's headline outcome: the report's conclusions and robustness curve lead with it, and
# the coverage Monte Carlo runs every inference method on it
PRIMARY_OUTCOME = "forced_departures"
# the outcomes that are counts (lead time is a mean over a varying number of confirmations)
COUNT_OUTCOMES: tuple[str, ...] = tuple(o for o in OUTCOMES if o != "lead_time_days")

# the estimator the report leads with on a count outcome: Poisson ETWFE (Wooldridge 2023). The
# counts move with multiplicative country and month effects (the COVID dip), so parallel trends
# hold in ratios, not in levels: in the design study (montecarlo/estimator_designs.csv, forced
# departures) ETWFE in levels is biased by 0.44-0.71 sampling SDs in every design (0.71 with no
# effect planted), Poisson ETWFE by under 0.03, and only Poisson ETWFE has intervals that qualify
# overall and per country (Table I1).
MAIN_ESTIMATOR = "poisson_etwfe"
# the annex's estimator, replicated in Table 2; the main one for lead time, which is not a count
ANNEX_ESTIMATOR = "etwfe"


def main_estimator(outcome: str) -> str:
    """The estimator the report's headline uses for ``outcome``: :data:`MAIN_ESTIMATOR` on a
    count, the annex's :data:`ANNEX_ESTIMATOR` otherwise."""
    return MAIN_ESTIMATOR if outcome in COUNT_OUTCOMES else ANNEX_ESTIMATOR


__all__ = ["ANNEX_ESTIMATOR", "COUNT_OUTCOMES", "MAIN_ESTIMATOR", "MAIN_OUTCOMES", "OUTCOMES", "PRIMARY_OUTCOME",
           "main_estimator"]
