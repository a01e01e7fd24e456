"""Check synthetic feeds against the annex's descriptive table (independent of dbt).

``panel_from_feeds`` rebuilds the country-month panel straight from the raw files with
DuckDB, using the panel definitions of the domain brief:

* units: the analysis-pool countries (from ``_synthetic.json`` -> countries.panel when the
  folder is synthetic, else ``in_analysis_pool`` in seeds/countries.csv) x the months of
  the window (default 2016-01 .. 2025-12);
* ``requests``: requests by month of request_date;
* ``confirmations``: decisions with outcome 'confirmed' by month of decision_date;
* ``lead_time_days``: mean of (decision_date - request_date) in days over that month's
  confirmed decisions (joined on request_id = requests.record_id); NULL when none;
* ``laissez_passers``: by month of issue_date;
* ``forced_departures``: returns with departure_type 'forced' by month of departure_date;
* ``verified_departures``: departure_type 'forced' or 'independent'.

It expects clean feeds (ISO3 nationalities); rows with unparseable dates are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mipa.outcomes import COUNT_OUTCOMES, OUTCOMES
from mipa.simulate.countries import load_countries

# Table 1 and A3 of the annex (share_zero in percent)
TARGETS: dict[str, dict[str, float]] = {
    "forced_departures": {"obs": 10320, "mean": 0.6, "sd": 3.0, "min": 0, "max": 93, "share_zero": 83.8, "countries": 86},
    "laissez_passers": {"obs": 10320, "mean": 0.8, "sd": 3.6, "min": 0, "max": 92, "share_zero": 85.6, "countries": 86},
    "confirmations": {"obs": 10320, "mean": 1.1, "sd": 4.9, "min": 0, "max": 213, "share_zero": 80.6, "countries": 86},
    "lead_time_days": {"obs": 2000, "mean": 97, "sd": 189, "min": 0, "max": 2620, "share_zero": 3.5, "countries": 70},
    "requests": {"obs": 10320, "mean": 2.5, "sd": 7.4, "min": 0, "max": 177, "share_zero": 61.9, "countries": 86},
    "verified_departures": {"obs": 10320, "mean": 2.5, "sd": 8.8, "min": 0, "max": 179, "share_zero": 63.7, "countries": 86},
}
# mean within 15 % (relative), sd within 25 % (relative), share of zeros within 3 points,
# lead-time observations within 15 % (relative)
TOLERANCES = {"mean": 0.15, "sd": 0.25, "share_zero": 3.0, "obs_lead_time": 0.15}


def _source(raw: Path, feed: str) -> str:
    folder = raw / feed
    if any(folder.glob("*.parquet")):
        return f"read_parquet('{(folder / '*.parquet').as_posix()}', union_by_name = true)"
    return (
        f"read_csv('{(folder / '*.csv').as_posix()}', header = true, all_varchar = true, "
        "union_by_name = true, nullstr = '')"
    )


def panel_countries(raw_dir: str | Path) -> list[str]:
    marker = Path(raw_dir) / "_synthetic.json"
    if marker.exists():
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("countries", {}).get("panel"):
            return list(meta["countries"]["panel"])
    seeds = load_countries()
    return sorted(seeds.loc[seeds["in_analysis_pool"], "iso3"])


def panel_from_feeds(
    raw_dir: str | Path,
    countries: list[str] | None = None,
    start: str = "2016-01",
    end: str = "2025-12",
) -> pd.DataFrame:
    """Country-month panel (iso3, month, outcomes) computed from the raw feed files."""
    raw = Path(raw_dir)
    countries = countries or panel_countries(raw)
    months = pd.period_range(start, end, freq="M")
    con = duckdb.connect()
    try:
        con.register("panel_countries", pd.DataFrame({"iso3": countries}))
        con.register("panel_months", pd.DataFrame({"month": months.to_timestamp().date}))
        sql = f"""
        with
        returns as (
            select nationality as iso3, try_cast(departure_date as date) as day, departure_type
            from {_source(raw, 'returns')}
        ),
        requests as (
            select record_id, nationality as iso3, try_cast(request_date as date) as day
            from {_source(raw, 'requests')}
        ),
        decisions as (
            select request_id, nationality as iso3, try_cast(decision_date as date) as day, outcome
            from {_source(raw, 'nationality_confirmations')}
        ),
        lps as (
            select nationality as iso3, try_cast(issue_date as date) as day
            from {_source(raw, 'laissez_passers')}
        ),
        n_requests as (
            select iso3, date_trunc('month', day) as month, count(*) as n
            from requests where day is not null group by all
        ),
        confirmed as (
            select d.iso3, date_trunc('month', d.day) as month,
                   date_diff('day', r.day, d.day) as lead_days
            from decisions d left join requests r on r.record_id = d.request_id
            where d.outcome = 'confirmed' and d.day is not null
        ),
        n_confirmed as (
            select iso3, month, count(*) as n, avg(lead_days) as lead_time_days
            from confirmed group by all
        ),
        n_lps as (
            select iso3, date_trunc('month', day) as month, count(*) as n
            from lps where day is not null group by all
        ),
        n_returns as (
            select iso3, date_trunc('month', day) as month,
                   count(*) filter (where departure_type = 'forced') as forced,
                   count(*) filter (where departure_type in ('forced', 'independent')) as verified
            from returns where day is not null group by all
        )
        select c.iso3, m.month,
               coalesce(q.n, 0) as requests,
               coalesce(k.n, 0) as confirmations,
               k.lead_time_days,
               coalesce(l.n, 0) as laissez_passers,
               coalesce(r.forced, 0) as forced_departures,
               coalesce(r.verified, 0) as verified_departures
        from panel_countries c
        cross join panel_months m
        left join n_requests q on q.iso3 = c.iso3 and q.month = m.month
        left join n_confirmed k on k.iso3 = c.iso3 and k.month = m.month
        left join n_lps l on l.iso3 = c.iso3 and l.month = m.month
        left join n_returns r on r.iso3 = c.iso3 and r.month = m.month
        order by c.iso3, m.month
        """
        panel = con.execute(sql).df()
    finally:
        con.close()
    panel["month"] = pd.to_datetime(panel["month"]).dt.to_period("M")
    for col in COUNT_OUTCOMES:
        panel[col] = panel[col].astype(np.int64)
    panel["lead_time_days"] = panel["lead_time_days"].astype(float)
    return panel.reset_index(drop=True)


def describe_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """obs, mean, sd, min, max, share_zero (percent) and countries per outcome."""
    rows = {}
    for outcome in OUTCOMES:
        values = panel[outcome].astype(float)
        ok = values.notna()
        v = values[ok]
        rows[outcome] = {
            "obs": int(ok.sum()),
            "mean": float(v.mean()) if len(v) else np.nan,
            "sd": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
            "min": float(v.min()) if len(v) else np.nan,
            "max": float(v.max()) if len(v) else np.nan,
            "share_zero": float(100 * (v == 0).mean()) if len(v) else np.nan,
            "countries": int(panel.loc[ok, "iso3"].nunique()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")[["obs", "mean", "sd", "min", "max", "share_zero", "countries"]]


def compare(described: pd.DataFrame) -> pd.DataFrame:
    """Target vs achieved per outcome and statistic, with the tolerance and a pass flag.

    ``deviation`` is relative for obs / mean / sd and in points for share_zero;
    ``score`` = |deviation| / tolerance (<= 1 passes)."""
    rows = []
    for outcome in OUTCOMES:
        for stat in ("obs", "mean", "sd", "min", "max", "share_zero", "countries"):
            target = TARGETS[outcome][stat]
            achieved = float(described.loc[outcome, stat])
            tol = None
            if stat == "mean":
                tol = TOLERANCES["mean"]
            elif stat == "sd":
                tol = TOLERANCES["sd"]
            elif stat == "share_zero":
                tol = TOLERANCES["share_zero"]
            elif stat == "obs" and outcome == "lead_time_days":
                tol = TOLERANCES["obs_lead_time"]
            elif stat == "obs":
                tol = 0.0
            if stat == "share_zero":
                deviation = achieved - target
            elif stat in ("obs", "mean", "sd", "max"):
                deviation = achieved / target - 1 if target else np.nan
            else:
                deviation = achieved - target
            if tol is None:
                score, ok = np.nan, True
            elif tol == 0:
                score, ok = (0.0 if deviation == 0 else np.inf), deviation == 0
            else:
                score = abs(deviation) / tol
                ok = score <= 1
            rows.append({"outcome": outcome, "statistic": stat, "target": target, "achieved": achieved,
                         "deviation": deviation, "tolerance": tol, "score": score, "ok": bool(ok)})
    return pd.DataFrame(rows)


def calibration_failures(described: pd.DataFrame) -> list[str]:
    table = compare(described)
    bad = table[~table["ok"]]
    return [
        f"{r.outcome}.{r.statistic}: achieved {r.achieved:.3f} vs target {r.target} (tolerance {r.tolerance})"
        for r in bad.itertuples()
    ]


def did_check(panel: pd.DataFrame, iso3: str, start: str, outcome: str) -> float:
    """Post-minus-pre change of one country minus that of the never-treated controls."""
    start_p = pd.Period(start, "M")
    controls = panel[~panel["iso3"].isin(_treated_default())]
    post = panel["month"] >= start_p
    unit = panel["iso3"] == iso3
    d_unit = panel.loc[unit & post, outcome].mean() - panel.loc[unit & ~post, outcome].mean()
    c_post = controls["month"] >= start_p
    d_ctrl = controls.loc[c_post, outcome].mean() - controls.loc[~c_post, outcome].mean()
    return float(d_unit - d_ctrl)


def _treated_default() -> list[str]:
    return ["MAR", "TUR", "EGY", "NGA", "IRQ", "TUN"]
