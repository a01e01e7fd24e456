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

__all__ = ["COUNT_OUTCOMES", "MAIN_OUTCOMES", "OUTCOMES", "PRIMARY_OUTCOME"]
