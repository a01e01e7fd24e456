"""Source freshness and volume checks on the landed feeds (``landing.<feed>``).

* **freshness**: the newest event date of a feed (its ``*_date`` column, parsed the way
  staging parses it: ``YYYY-MM-DD`` with an optional time part, or ``DD-MM-YYYY``; dates
  after the reference date are ignored) older than ``freshness.max_age_days`` days before
  the reference date warns.
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
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mipa.contract import FEEDS

CHECK_COLUMNS = ["feed", "check", "status", "observed", "threshold", "message"]
NOT_CHECKED = "not_checked"
DEFAULT_MAX_AGE_DAYS = 45
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
    max_age_days: dict[str, int] = field(default_factory=dict)
    default_max_age_days: int = DEFAULT_MAX_AGE_DAYS
    factor: float = DEFAULT_FACTOR
    factor_by_feed: dict[str, float] = field(default_factory=dict)
    history_months: int = DEFAULT_HISTORY_MONTHS

    def max_age(self, feed: str) -> int:
        return int(self.max_age_days.get(feed, self.default_max_age_days))

    def factor_for(self, feed: str) -> float:
        return float(self.factor_by_feed.get(feed, self.factor))

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> FreshnessSettings:
        """From the ``freshness:`` and ``volume:`` sections of the quality config."""
        fresh = raw.get("freshness") or {}
        vol = raw.get("volume") or {}
        ages = dict(fresh.get("max_age_days") or {})
        default_age = ages.pop("default", DEFAULT_MAX_AGE_DAYS)
        by_feed = dict(vol.get("factor_by_feed") or {})
        for section, keys in (("freshness.max_age_days", ages), ("volume.factor_by_feed", by_feed)):
            unknown = set(keys) - set(FEEDS)
            if unknown:
                raise ValueError(f"{section}: unknown feeds {sorted(unknown)} (feeds: {', '.join(FEEDS)})")
        values = [default_age, *ages.values()]
        if any(not isinstance(v, int) or v < 0 for v in values):
            raise ValueError("freshness.max_age_days: ages must be whole days >= 0")
        factors = [vol.get("factor", DEFAULT_FACTOR), *by_feed.values()]
        if any(not isinstance(f, (int, float)) or f <= 1 for f in factors):
            raise ValueError("volume.factor: factors must be numbers > 1")
        history = vol.get("history_months", DEFAULT_HISTORY_MONTHS)
        if not isinstance(history, int) or history < 1:
            raise ValueError("volume.history_months must be a whole number >= 1")
        return cls(
            max_age_days={k: int(v) for k, v in ages.items()},
            default_max_age_days=int(default_age),
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


def check_freshness(
    con: duckdb.DuckDBPyConnection, settings: FreshnessSettings, reference_date: date
) -> pd.DataFrame:
    rows = []
    present = _landing_tables(con)
    for feed in FEEDS:
        limit = settings.max_age(feed)
        if feed not in present:
            rows.append((feed, "freshness", "warn", float("nan"), float(limit),
                         f"landing.{feed} not found"))
            continue
        parsed = parse_date_sql(event_date_column(feed))
        newest, future = con.execute(
            f"select max(d) filter (where d <= ?), count(*) filter (where d > ?) "
            f"from (select {parsed} as d from landing.{feed})",
            [reference_date, reference_date],
        ).fetchone()
        note = f" ({future} rows dated after the reference date ignored)" if future else ""
        if newest is None:
            rows.append((feed, "freshness", "warn", float("nan"), float(limit),
                         f"no parseable {event_date_column(feed)} on or before {reference_date}{note}"))
            continue
        age = (reference_date - newest).days
        status = "warn" if age > limit else "ok"
        rows.append((feed, "freshness", status, float(age), float(limit),
                     f"newest {event_date_column(feed)} {newest} is {age} day{'' if age == 1 else 's'} before "
                     f"{reference_date} (max {limit}){note}"))
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
    db: Path | str | duckdb.DuckDBPyConnection,
    settings: FreshnessSettings,
    reference_date: date | None = None,
) -> pd.DataFrame:
    """Freshness and volume of every feed (reference date default: :func:`reference_date_for`)."""
    own = not isinstance(db, duckdb.DuckDBPyConnection)
    con = duckdb.connect(str(db), read_only=True) if own else db
    try:
        reference_date, _ = reference_date_for(con, reference_date)
        return pd.concat(
            [check_freshness(con, settings, reference_date), check_volume(con, settings, reference_date)],
            ignore_index=True,
        )
    finally:
        if own:
            con.close()


def summarise(checks: pd.DataFrame) -> str:
    warned = checks[checks["status"] == "warn"]
    skipped = int((checks["status"] == NOT_CHECKED).sum())
    note = f", {skipped} with nothing to check" if skipped else ""
    lines = [f"freshness and volume: {len(checks)} checks, {len(warned)} warnings{note}"]
    for row in checks.itertuples(index=False):
        status = "SKIP" if row.status == NOT_CHECKED else row.status.upper()
        lines.append(f"  {status:<4} {row.feed:<26} {row.check:<9} {row.message}")
    return "\n".join(lines)
