"""Source freshness and volume checks on the landed feeds (``landing.<feed>``).

* **freshness** is dbt's: ``dbt source freshness`` with the feeds' ``warn_after`` (45 days)
  and ``loaded_at_query`` (``models/staging/dtenv/_dtenv__sources.yml``,
  ``macros/feed_freshness.sql``): the newest event date of a feed (its ``*_date`` column,
  parsed as staging parses it; dates after the reference date ignored) older than
  ``warn_after`` before the reference date warns. :func:`check_freshness` runs it against
  the database with the reference date as var ``freshness_reference_date`` and turns
  dbt's ``sources.json`` into rows.
* **volume**: records (distinct ``record_id``) per event month in the last complete month
  before the reference date, against the median of the previous ``volume.history_months``
  months (zero-filled, from the feed's first month on). Outside
  ``[median / factor, median x factor]`` warns.

Both return tidy DataFrames (``CHECK_COLUMNS``): one row per feed and check, status
``ok``, ``warn`` or ``not_checked`` (nothing to check: no records in the month nor in the
months before it, or no earlier month to compare with). They only warn: a late or thin
delivery is news for the people who use the panel, not a reason to stop it.

The reference date defaults to today for real feeds. Feeds proven synthetic (the
generator's verified marker, ``landing.load_metadata``) are measured against their own
delivery calendar: the first day after the generated window, as if the export had been
delivered the day the window closed (:func:`reference_date_for`).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mipa.contract import FEEDS

CHECK_COLUMNS = ["feed", "check", "status", "observed", "threshold", "message"]
NOT_CHECKED = "not_checked"
# where the feeds' freshness is defined (dbt sources: warn_after, loaded_at_query)
SOURCES_FILE = "models/staging/dtenv/_dtenv__sources.yml"
SOURCE_NAME = "dtenv"
DEFAULT_FACTOR = 3.0
DEFAULT_HISTORY_MONTHS = 12


def event_date_column(feed: str) -> str:
    """The feed's event date: its one ``*_date`` column in the contract."""
    cols = [c for c in FEEDS[feed].required_columns if c.endswith("_date")]
    if len(cols) != 1:  # pragma: no cover - guards a contract change
        raise ValueError(f"feed {feed}: expected one *_date column, found {cols}")
    return cols[0]


def parse_date_sql(column: str) -> str:
    """The staging parse (macro ``try_cast_date``) as a DuckDB expression."""
    return (
        f"coalesce(try_cast(trim({column}) as date), "
        f"try_cast(try_cast(trim({column}) as timestamp) as date), "
        f"try_cast(try_strptime(trim({column}), '%d-%m-%Y') as date))"
    )


@dataclass(frozen=True)
class FreshnessSettings:
    """The volume check's settings (the ``volume:`` section of the quality config); the
    freshness thresholds are the dbt sources' ``warn_after``."""

    factor: float = DEFAULT_FACTOR
    factor_by_feed: dict[str, float] = field(default_factory=dict)
    history_months: int = DEFAULT_HISTORY_MONTHS

    def factor_for(self, feed: str) -> float:
        return float(self.factor_by_feed.get(feed, self.factor))

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> FreshnessSettings:
        """From the ``volume:`` section of the quality config."""
        if "freshness" in raw:
            raise ValueError(
                f"freshness: the freshness thresholds are dbt's, not this file's: set warn_after in {SOURCES_FILE} "
                "and remove the freshness section"
            )
        vol = raw.get("volume") or {}
        by_feed = dict(vol.get("factor_by_feed") or {})
        unknown = set(by_feed) - set(FEEDS)
        if unknown:
            raise ValueError(f"volume.factor_by_feed: unknown feeds {sorted(unknown)} (feeds: {', '.join(FEEDS)})")
        factors = [vol.get("factor", DEFAULT_FACTOR), *by_feed.values()]
        if any(not isinstance(f, (int, float)) or f <= 1 for f in factors):
            raise ValueError("volume.factor: factors must be numbers > 1")
        history = vol.get("history_months", DEFAULT_HISTORY_MONTHS)
        if not isinstance(history, int) or history < 1:
            raise ValueError("volume.history_months must be a whole number >= 1")
        return cls(
            factor=float(vol.get("factor", DEFAULT_FACTOR)),
            factor_by_feed={k: float(v) for k, v in by_feed.items()},
            history_months=history,
        )


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


def _landing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'landing'"
        ).fetchall()
    }


def _future_rows(db: Path, reference_date: date) -> tuple[set[str], dict[str, int]]:
    """The landed feeds, and per feed the rows dated after the reference date (dbt's
    freshness ignores them; the message says how many)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        present = _landing_tables(con)
        future = {}
        for feed in FEEDS:
            if feed in present:
                parsed = parse_date_sql(event_date_column(feed))
                future[feed] = con.execute(
                    f"select count(*) from (select {parsed} as d from landing.{feed}) where d > ?", [reference_date]
                ).fetchone()[0]
        return present, future
    finally:
        con.close()


def _threshold_days(criteria: dict[str, Any]) -> float:
    """dbt's warn_after in days (NaN when not set)."""
    warn = criteria.get("warn_after") or {}
    seconds = {"minute": 60, "hour": 3600, "day": 86400}.get(str(warn.get("period")))
    if seconds is None or warn.get("count") is None:
        return float("nan")
    return warn["count"] * seconds / 86400


def dbt_source_freshness(db: Path, reference_date: date, project: Path | None = None) -> dict[str, dict[str, Any]]:
    """``dbt source freshness`` of the feeds against ``reference_date``: feed -> its
    result in dbt's ``sources.json`` (status, age in seconds, criteria, error)."""
    from mipa import settings  # noqa: PLC0415 - settings reads the environment
    from mipa.build import run_dbt  # noqa: PLC0415 - build imports the loader

    project = Path(project or settings.project_dir())
    with tempfile.TemporaryDirectory(prefix="mipa-freshness-") as tmp:
        out = Path(tmp) / "sources.json"
        args = ["--quiet", "source", "freshness", "--select", f"source:{SOURCE_NAME}",
                "--vars", json.dumps({"freshness_reference_date": reference_date.isoformat()}),
                "--target-path", tmp, "--log-path", tmp, "--output", str(out)]
        code = run_dbt(args, Path(db), project)
        if not out.is_file():
            raise RuntimeError(f"dbt source freshness failed (exit {code}) on {db} and wrote no results")
        results = json.loads(out.read_text(encoding="utf-8"))["results"]
    return results_by_feed(results, project)


def results_by_feed(results: list[dict[str, Any]], project: Path) -> dict[str, dict[str, Any]]:
    """dbt's source freshness results of the feeds, keyed by feed name."""
    prefix = f"source.{project_name(project)}.{SOURCE_NAME}."
    return {r["unique_id"][len(prefix):]: r for r in results if r["unique_id"].startswith(prefix)}


def project_name(project: Path) -> str:
    import yaml  # noqa: PLC0415

    return str(yaml.safe_load((project / "dbt_project.yml").read_text(encoding="utf-8"))["name"])


def stored_freshness(db: Path, reference_date: date, project: Path | None = None) -> dict[str, dict[str, Any]] | None:
    """The results ``mipa build`` stored from its own ``dbt source freshness`` run
    (``landing.source_freshness``, :func:`mipa.build.store_source_freshness`), when they
    were measured against ``reference_date``: dbt's default reference date is the synthetic
    delivery date, else the day it ran. ``None`` when there are none or they do not apply."""
    from mipa import settings  # noqa: PLC0415 - settings reads the environment
    from mipa.build import FRESHNESS_TABLE  # noqa: PLC0415 - build imports the loader

    con = duckdb.connect(str(db), read_only=True)
    try:
        schema, table = FRESHNESS_TABLE.split(".")
        exists = con.execute("select count(*) from information_schema.tables where table_schema = ? "
                             "and table_name = ?", [schema, table]).fetchone()[0]
        if not exists:
            return None
        measured_on, results = con.execute(f"select measured_on, results from {FRESHNESS_TABLE}").fetchone()
        measured_against = synthetic_delivery_date(con) or measured_on
    finally:
        con.close()
    if measured_against != reference_date:
        return None
    return results_by_feed(json.loads(results), Path(project or settings.project_dir()))


def check_freshness(db: Path | str, reference_date: date, project: Path | None = None) -> pd.DataFrame:
    """Freshness of every feed, by ``dbt source freshness``, as :data:`CHECK_COLUMNS` rows:
    status ``ok`` or ``warn``, observed age and the ``warn_after`` threshold in days. The
    build's own run is used when it measured against ``reference_date``
    (:func:`stored_freshness`), else dbt runs now (:func:`dbt_source_freshness`)."""
    db = Path(db)
    present, future = _future_rows(db, reference_date)
    results = stored_freshness(db, reference_date, project)
    if results is None:
        results = dbt_source_freshness(db, reference_date, project)
    rows = []
    for feed in FEEDS:
        column = event_date_column(feed)
        result = results.get(feed, {})
        limit = _threshold_days(result.get("criteria") or {})
        if feed not in present:
            rows.append((feed, "freshness", "warn", float("nan"), limit, f"landing.{feed} not found"))
            continue
        note = f" ({future[feed]} rows dated after the reference date ignored)" if future.get(feed) else ""
        status = result.get("status")
        if status not in ("pass", "warn", "error"):
            detail = result.get("error") or f"no result for source {SOURCE_NAME}.{feed}"
            rows.append((feed, "freshness", "warn", float("nan"), limit,
                         f"dbt source freshness failed: {str(detail).splitlines()[0]}"))
            continue
        # NULL newest date: dbt measures from 0001-01-01
        if str(result.get("max_loaded_at", "")).startswith("0001-"):
            rows.append((feed, "freshness", "warn", float("nan"), limit,
                         f"no parseable {column} on or before {reference_date}{note}"))
            continue
        age = round(float(result["max_loaded_at_time_ago_in_s"]) / 86400)
        newest = reference_date - timedelta(days=age)
        rows.append((feed, "freshness", "ok" if status == "pass" else "warn", float(age), limit,
                     f"newest {column} {newest} is {age} day{'' if age == 1 else 's'} before "
                     f"{reference_date} (max {limit:g}){note}"))
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def monthly_volume(con: duckdb.DuckDBPyConnection, feed: str) -> pd.Series:
    """Distinct record ids per event month (month start -> count), months with records only."""
    parsed = parse_date_sql(event_date_column(feed))
    df = con.execute(
        f"select date_trunc('month', d)::date as month, count(distinct record_id) as n "
        f"from (select record_id, {parsed} as d from landing.{feed}) "
        f"where d is not null group by 1 order by 1"
    ).df()
    return pd.Series(df["n"].to_numpy(), index=[pd.Timestamp(m).date() for m in df["month"]], dtype=float)


def check_volume(
    con: duckdb.DuckDBPyConnection, settings: FreshnessSettings, reference_date: date
) -> pd.DataFrame:
    rows = []
    present = _landing_tables(con)
    month = _add_months(_month_start(reference_date), -1)  # last complete month
    label = month.strftime("%Y-%m")
    for feed in FEEDS:
        factor = settings.factor_for(feed)
        if feed not in present:
            rows.append((feed, "volume", "warn", float("nan"), factor, f"landing.{feed} not found"))
            continue
        counts = monthly_volume(con, feed)
        first = min(counts.index) if len(counts) else None
        history_months = [
            m for m in (_add_months(month, -k) for k in range(1, settings.history_months + 1))
            if first is not None and m >= first
        ]
        observed = float(counts.get(month, 0.0))
        if not history_months:
            rows.append((feed, "volume", NOT_CHECKED, float("nan"), factor,
                         f"{label}: {observed:.0f} records and no earlier month to compare with: not checked"))
            continue
        median = statistics.median(float(counts.get(m, 0.0)) for m in history_months)
        span = f"median {median:g} over the previous {len(history_months)} months"
        if median == 0 and observed == 0:
            rows.append((feed, "volume", NOT_CHECKED, float("nan"), factor,
                         f"{label}: 0 records and a median of 0 over the previous "
                         f"{len(history_months)} months: nothing to check"))
            continue
        if median == 0:
            rows.append((feed, "volume", "warn", float("inf"), factor,
                         f"{label}: {observed:.0f} records, {span}; jump from (almost) none"))
            continue
        ratio = observed / median
        if ratio > factor:
            status, what = "warn", f"jump: {ratio:.2f} x the median (> {factor:g} x)"
        elif ratio < 1 / factor:
            status, what = "warn", f"drop: {ratio:.2f} x the median (< 1/{factor:g})"
        else:
            status, what = "ok", f"{ratio:.2f} x the median"
        rows.append((feed, "volume", status, ratio, factor,
                     f"{label}: {observed:.0f} records, {span}; {what}"))
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def synthetic_delivery_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The delivery date of feeds proven synthetic: the first day after the generated
    window (``landing.load_metadata``); None for real feeds or without metadata."""
    try:
        row = con.execute("select metadata from landing.load_metadata limit 1").fetchone()
    except duckdb.Error:
        return None
    try:
        meta = json.loads(row[0]) if row and row[0] else {}
        if not meta.get("synthetic"):
            return None
        year, month = (int(x) for x in str(meta["generator"]["settings"]["window"]["end"])[:7].split("-"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return _add_months(date(year, month, 1), 1)


def reference_date_for(
    db: Path | str | duckdb.DuckDBPyConnection, given: date | None = None, today: date | None = None
) -> tuple[date, str]:
    """The date freshness and volume are measured against, and where it comes from:
    the given date; else the synthetic feeds' delivery date; else today."""
    if given is not None:
        return given, "given"
    own = not isinstance(db, duckdb.DuckDBPyConnection)
    con = duckdb.connect(str(db), read_only=True) if own else db
    try:
        synthetic = synthetic_delivery_date(con)
    finally:
        if own:
            con.close()
    if synthetic is not None:
        return synthetic, "synthetic delivery calendar: the day after the generated window"
    return today or date.today(), "today"


def run_source_checks(
    db: Path | str,
    settings: FreshnessSettings,
    reference_date: date | None = None,
) -> pd.DataFrame:
    """Freshness (dbt's) and volume of every feed (reference date default:
    :func:`reference_date_for`). ``db`` is the database file: dbt opens it itself."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        raise TypeError("run_source_checks needs the database path, not a connection: dbt opens the file")
    reference_date, _ = reference_date_for(db, reference_date)
    freshness = check_freshness(db, reference_date)
    con = duckdb.connect(str(db), read_only=True)
    try:
        volume = check_volume(con, settings, reference_date)
    finally:
        con.close()
    return pd.concat([freshness, volume], ignore_index=True)


def summarise(checks: pd.DataFrame) -> str:
    warned = checks[checks["status"] == "warn"]
    skipped = int((checks["status"] == NOT_CHECKED).sum())
    note = f", {skipped} with nothing to check" if skipped else ""
    lines = [f"freshness and volume: {len(checks)} checks, {len(warned)} warnings{note}"]
    for row in checks.itertuples(index=False):
        status = "SKIP" if row.status == NOT_CHECKED else row.status.upper()
        lines.append(f"  {status:<4} {row.feed:<26} {row.check:<9} {row.message}")
    return "\n".join(lines)
