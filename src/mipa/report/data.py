"""Read everything the report shows from a built warehouse, over one read-only connection.

The report reads marts only (``marts.*``), with plain selects: every figure, mean and
count it shows is computed in dbt, so the lineage from the feeds to the page is dbt's
(``models/marts/_report__exposures.yml`` declares what the report reads).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mipa.outcomes import OUTCOMES

# order of the annex's tables; verified departures is its appendix 4
OUTCOME_ORDER: tuple[str, ...] = OUTCOMES
APPENDIX_OUTCOME = "verified_departures"
YEARLY_OUTCOME_ORDER: tuple[str, ...] = (
    "forced_departures",
    "independent_departures",
    "unsupervised_departures",
    "total_departures",
)

REQUIRED_TABLES = (
    "marts.fct_country_month",
    "marts.dim_country",
    "marts.dim_month",
    "marts.fct_panel_descriptive_statistics",
    "marts.fct_treatment_group_means",
    "marts.fct_panel_summary",
    "marts.fct_feed_reconciliation",
    "marts.fct_quarantine_rule_counts",
    "marts.fct_delivery_files",
    "marts.fct_load_metadata",
)
# the estimation marts: a warehouse built without them (dbt --exclude tag:estimation) still
# gets a report, with the results marked as not estimated
ESTIMATION_TABLES: dict[str, tuple[str, ...]] = {
    "marts.fct_did_estimates": ("estimator", "outcome", "aggregation", "scope", "estimate", "std_error", "ci_low",
                            "ci_high", "p_value", "n_obs", "n_clusters", "n_treated_clusters", "inference",
                            "control_group", "run_settings"),
    "marts.fct_did_event_study": ("estimator", "outcome", "scope", "event_time", "estimate", "std_error", "ci_low",
                              "ci_high", "band_low", "band_high", "inference", "control_group", "run_settings"),
    "marts.fct_did_yearly": ("outcome", "treatment", "estimate", "std_error", "ci_low", "ci_high", "p_value", "n_obs",
                         "n_clusters"),
}


# read when present: older warehouses and warehouses built without estimation lack them
OPTIONAL_TABLES: tuple[str, ...] = ("marts.fct_did_inference", "marts.fct_planted_effects",
                                    "marts.fct_did_poisson_estimates")


def tables_read() -> tuple[str, ...]:
    """Every mart :func:`load` reads (the report parts declare theirs in ``MARTS``)."""
    return (*REQUIRED_TABLES, *ESTIMATION_TABLES, *OPTIONAL_TABLES)


class ReportDataError(RuntimeError):
    """The database lacks a table the report needs (not built, or built without estimation)."""


@dataclass
class ReportData:
    db_name: str
    metadata: dict[str, Any]
    countries: pd.DataFrame  # panel countries with names and partnership starts
    partners: pd.DataFrame  # partner countries in the panel, in start order
    descriptive: pd.DataFrame
    outcome_values: pd.DataFrame  # long: outcome, value (non-null), for the histograms
    country_series: pd.DataFrame  # partner countries x month x outcome
    control_means: pd.DataFrame  # month x outcome: mean of never-treated countries
    group_means: pd.DataFrame  # month x group x outcome (parallel trends)
    covid_months: list[pd.Timestamp]
    panel_facts: dict[str, Any]
    estimates: pd.DataFrame
    event_study: pd.DataFrame
    yearly: pd.DataFrame
    reconciliation: pd.DataFrame
    quarantine: pd.DataFrame  # feed x rule counts, with an example row
    delivery_files: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    # fct_did_inference: every estimator x inference method, with the Monte Carlo's verdict
    # (optional: older warehouses and warehouses built without estimation lack it)
    inference: pd.DataFrame = field(default_factory=pd.DataFrame)
    # fct_planted_effects: on synthetic feeds the generator's planted effect per scope
    # ('overall' or a partner's ISO3) and outcome (optional: empty on real feeds and in
    # warehouses built before the mart existed)
    planted: pd.DataFrame = field(default_factory=pd.DataFrame)
    # fct_did_poisson_estimates: Poisson ETWFE, the main estimator on the counts (optional:
    # warehouses built without it)
    poisson: pd.DataFrame = field(default_factory=pd.DataFrame)

    def estimates_of(self, estimator: str) -> pd.DataFrame:
        """The effect rows of one estimator's mart: Poisson ETWFE's own, else fct_did_estimates."""
        return self.poisson if estimator == "poisson_etwfe" else self.estimates

    @property
    def synthetic(self) -> bool:
        return bool(self.metadata.get("synthetic", False))

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the delivered files' hashes, in feed and file order."""
        digest = hashlib.sha256()
        files = self.delivery_files.sort_values(["feed", "source_file"])
        for feed, name, sha in zip(files["feed"], files["source_file"], files["file_sha256"], strict=True):
            digest.update(f"{feed}\t{name}\t{sha}\n".encode())
        return digest.hexdigest()

    @property
    def generator_seed(self) -> Any:
        return find_key(self.metadata.get("generator"), "seed")


def find_key(obj: Any, key: str) -> Any:
    """First value of ``key`` in a nested dict (breadth first), or None."""
    queue = [obj]
    while queue:
        item = queue.pop(0)
        if isinstance(item, dict):
            if key in item:
                return item[key]
            queue.extend(item.values())
    return None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
    ).fetchall()
    return {r[0] for r in rows}


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _dedupe(frame: pd.DataFrame, keys: list[str], name: str, warnings: list[str]) -> pd.DataFrame:
    """Keep one row per key (the first after a full sort) and say so when there were more."""
    if frame.empty:
        return frame
    sort_cols = [c for c in frame.columns if c != "run_settings"]
    frame = frame.sort_values(sort_cols, kind="mergesort", na_position="last").reset_index(drop=True)
    dup = frame.duplicated(keys, keep="first")
    if dup.any():
        warnings.append(
            f"{name}: {int(dup.sum())} rows repeat the key ({', '.join(keys)}); the report shows "
            "the first of each after sorting. Fix the mart (its uniqueness test should fail)."
        )
        frame = frame[~dup].reset_index(drop=True)
    return frame


def load(db_path: Path) -> ReportData:
    db_path = Path(db_path)
    if not db_path.exists():
        raise ReportDataError(f"{db_path}: database not found (run `mipa build` first)")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        missing = [t for t in REQUIRED_TABLES if t not in _tables(con)]
        if missing:
            raise ReportDataError(
                f"{db_path}: missing {', '.join(missing)}; build the warehouse with the estimation "
                "models (`mipa build`)"
            )
        return _load(con, db_path)
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, db_path: Path) -> ReportData:
    warnings: list[str] = []
    meta_rows = con.execute("select metadata from marts.fct_load_metadata").fetchall()
    metadata = json.loads(meta_rows[0][0]) if meta_rows and meta_rows[0][0] else {}

    # countries of the panel, with both names and the partnership start inside the panel
    countries = _df(
        con,
        """select iso3, country_name_en, country_name_nl, region, subregion, mipa_start_month,
                  misa_start_month, mipa_start_month as partnership_start_month
           from marts.dim_country
           where is_panel_country
           order by iso3""",
    )
    partners = countries[countries["mipa_start_month"].notna()].copy()
    partners["mipa_start_month"] = pd.to_datetime(partners["mipa_start_month"])
    partners = partners.sort_values(["mipa_start_month", "iso3"], kind="mergesort").reset_index(drop=True)
    partner_iso = partners["iso3"].tolist()

    descriptive = _df(con, "select * from marts.fct_panel_descriptive_statistics order by display_order, outcome")

    cols = ", ".join(OUTCOME_ORDER)
    # every non-missing value of each outcome, long (the histograms): the panel reshaped
    panel = _df(con, f"select {cols} from marts.fct_country_month")
    outcome_values = (
        panel.melt(value_vars=list(OUTCOME_ORDER), var_name="outcome", value_name="value")
        .dropna(subset=["value"])
        .astype({"value": "float64"})
        .sort_values(["outcome", "value"], kind="mergesort")
        .reset_index(drop=True)
    )

    country_series = _df(
        con,
        f"""select iso3, month_start, mipa, {cols}
            from marts.fct_country_month
            where iso3 in (select unnest(?::varchar[]))
            order by iso3, month_start""",
        [partner_iso],
    )
    # the never-treated group of the parallel-trend means is the trend figures' control mean
    control_means = _df(
        con,
        f"""select month_start, n_countries, {cols}
            from marts.fct_treatment_group_means
            where treatment_group = 'never'
            order by month_start""",
    )
    group_means = _df(
        con,
        f"""select month_start, treatment_group, n_countries, {cols}
            from marts.fct_treatment_group_means
            order by month_start, treatment_group""",
    )
    covid = con.execute("select month_start from marts.dim_month where is_covid_period order by month_start").fetchall()
    covid_months = [pd.Timestamp(r[0]) for r in covid]

    facts = con.execute(
        """select first_month, last_month, n_months, n_rows, n_countries, n_control, n_partner,
                  first_event_month, last_event_month
           from marts.fct_panel_summary"""
    ).fetchone()
    panel_facts = {
        "first_month": facts[0],
        "last_month": facts[1],
        "n_months": int(facts[2]),
        "n_rows": int(facts[3]),
        "n_countries": int(facts[4]),
        "n_control": int(facts[5]),
        "n_partner": int(facts[6]),
        # the data's window: the first and last panel month in which any feed recorded an
        # event (the panel itself may start or end with empty months)
        "first_event_month": facts[7],
        "last_event_month": facts[8],
    }

    present = _tables(con)

    def estimation(table: str) -> pd.DataFrame:
        if table in present:
            return _df(con, f"select * from {table}")
        warnings.append(f"{table} is missing: the warehouse was built without the estimation models.")
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ESTIMATION_TABLES[table]})

    estimates = _dedupe(
        estimation("marts.fct_did_estimates"),
        ["estimator", "outcome", "aggregation", "scope", "inference", "control_group"],
        "fct_did_estimates",
        warnings,
    )
    event_study = _dedupe(
        estimation("marts.fct_did_event_study"),
        ["estimator", "outcome", "scope", "event_time", "inference"],
        "fct_did_event_study",
        warnings,
    )
    yearly = _dedupe(estimation("marts.fct_did_yearly"), ["outcome", "treatment"], "fct_did_yearly", warnings)
    reconciliation = _df(con, "select * from marts.fct_feed_reconciliation order by feed")
    quarantine = _df(
        con,
        """select feed, quarantine_rule, n_rows, example
           from marts.fct_quarantine_rule_counts
           order by feed, n_rows desc, quarantine_rule""",
    )
    delivery_files = _df(con, "select * from marts.fct_delivery_files order by feed, source_file")
    inference = (_df(con, "select * from marts.fct_did_inference order by estimator, inference, outcome, scope")
                 if "marts.fct_did_inference" in present else pd.DataFrame())
    planted = pd.DataFrame()
    if "marts.fct_planted_effects" in present:
        planted = _df(con, "select scope, outcome, planted_effect, n_post_months from marts.fct_planted_effects "
                           "order by scope, outcome")
    elif bool(metadata.get("synthetic", False)):
        warnings.append("marts.fct_planted_effects is missing: rebuild the warehouse (`mipa build`) to show the "
                        "planted effects beside the estimates.")

    poisson = pd.DataFrame()
    if "marts.fct_did_poisson_estimates" in present:
        poisson = _dedupe(_df(con, "select * from marts.fct_did_poisson_estimates"),
                          ["estimator", "outcome", "aggregation", "scope", "inference", "control_group"],
                          "fct_did_poisson_estimates", warnings)

    return ReportData(
        db_name=db_path.name,
        metadata=metadata,
        countries=countries,
        partners=partners,
        descriptive=descriptive,
        outcome_values=outcome_values,
        country_series=country_series,
        control_means=control_means,
        group_means=group_means,
        covid_months=covid_months,
        panel_facts=panel_facts,
        estimates=estimates,
        event_study=event_study,
        yearly=yearly,
        reconciliation=reconciliation,
        quarantine=quarantine,
        delivery_files=delivery_files,
        warnings=warnings,
        inference=inference,
        planted=planted,
        poisson=poisson,
    )
