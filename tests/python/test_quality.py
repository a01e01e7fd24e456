"""Data-quality gates (``mipa validate``, ``src/mipa/quality``).

Each test builds a small DuckDB database directly (``landing.<feed>`` as ingest lands it:
text columns plus ``_source_file``, ``_source_row``, ``_file_order``; and
``marts.fct_country_month``), without dbt, and a small expectations config, so every
expected outcome is known by construction.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from mipa.contract import FEEDS
from mipa.quality import command
from mipa.quality.expectations import QualityConfigError, load_config, parse_config
from mipa.quality.freshness import FreshnessSettings, check_volume, run_source_checks

VALID_TYPES = "(?i)^\\s*(?:forced|independent|unsupervised)\\s*$"

TEST_CONFIG = {
    "version": 1,
    "suites": {
        "landing_returns": {
            "table": "landing.returns",
            "expectations": [
                {"name": "returns_not_empty", "type": "expect_table_row_count_to_be_between",
                 "kwargs": {"min_value": 1}, "severity": "error"},
                {"name": "returns_record_id_present", "type": "expect_column_values_to_not_be_null",
                 "kwargs": {"column": "record_id", "mostly": 0.95}, "severity": "error"},
                {"name": "returns_departure_type_valid", "type": "expect_column_values_to_match_regex",
                 "kwargs": {"column": "departure_type", "regex": VALID_TYPES, "mostly": 0.95},
                 "severity": "warning"},
            ],
        },
        "marts_fct_country_month": {
            "table": "marts.fct_country_month",
            "expectations": [
                {"name": "panel_treated_and_untreated", "type": "expect_column_distinct_values_to_equal_set",
                 "kwargs": {"column": "mipa", "value_set": [0, 1]}, "severity": "error"},
                {"name": "forced_departures_mean", "type": "expect_column_mean_to_be_between",
                 "kwargs": {"column": "forced_departures", "min_value": 0.5, "max_value": 2.0},
                 "severity": "warning"},
                {"name": "lead_time_days_ceiling", "type": "expect_column_values_to_be_between",
                 "kwargs": {"column": "lead_time_days", "max_value": 3650}, "severity": "error"},
            ],
        },
    },
    "volume": {"factor": 3, "history_months": 12},
}

COUNTRIES = ("MAR", "TUN", "GHA")


# --- building test databases -----------------------------------------------------------------


def landing_frame(feed: str, rows: list[tuple]) -> pd.DataFrame:
    """Rows in contract column order (person column already a pseudonym), plus load columns."""
    spec = FEEDS[feed]
    cols = ["person_pseudonym" if c == spec.person_column else c for c in spec.required_columns]
    df = pd.DataFrame(rows, columns=cols, dtype=object)
    df["_source_file"] = f"{feed}/{feed}_2025.csv"
    df["_source_row"] = range(1, len(df) + 1)
    df["_file_order"] = 1
    return df


def returns_rows(dates: list[str], types: list[str | None] | None = None, ids: list | None = None):
    types = types or ["forced"] * len(dates)
    ids = ids or [f"R{i}" for i in range(len(dates))]
    return [(rid, f"p{i}", "MAR", d, t) for i, (rid, d, t) in enumerate(zip(ids, dates, types, strict=True))]


def default_landing() -> dict[str, list[tuple]]:
    return {
        "returns": returns_rows(
            ["2025-05-02"] * 40, ["forced", "independent", "unsupervised", "forced"] * 10
        ),
        "requests": [(f"Q{i}", f"p{i}", "MAR", "2025-05-03") for i in range(5)],
        "nationality_confirmations": [(f"C{i}", f"Q{i}", "MAR", "2025-05-20", "confirmed") for i in range(5)],
        "laissez_passers": [(f"L{i}", f"p{i}", "MAR", "2025-05-21") for i in range(5)],
    }


def panel_frame() -> pd.DataFrame:
    """3 countries x 120 months; MAR treated from 2022-06; forced mean 1.0; lead times <= 200."""
    months = pd.date_range("2016-01-01", periods=120, freq="MS")
    rows = []
    for iso3 in COUNTRIES:
        for k, m in enumerate(months):
            start = pd.Timestamp("2022-06-01") if iso3 == "MAR" else None
            since = None if start is None else (m.year - start.year) * 12 + m.month - start.month
            forced = k % 3  # 0, 1, 2: mean 1
            conf = k % 2
            rows.append({
                "iso3": iso3, "month_start": m.date(), "month_index": k + 1,
                "requests": 2, "confirmations": conf,
                "lead_time_days": 100.0 + k if conf else None,
                "laissez_passers": 1, "forced_departures": forced, "independent_departures": 1,
                "unsupervised_departures": 0, "verified_departures": forced + 1,
                "mipa": int(since is not None and since >= 0), "misa": 0,
            })
    return pd.DataFrame(rows)


def make_db(path: Path, landing: dict[str, list[tuple]] | None = None,
            panel: pd.DataFrame | None = None) -> Path:
    landing = default_landing() | (landing or {})
    panel = panel_frame() if panel is None else panel
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema landing; create schema marts")
        for feed, rows in landing.items():
            df = landing_frame(feed, rows)  # noqa: F841 - read by DuckDB's replacement scan
            con.execute(f"create table landing.{feed} as select * from df")
        con.execute("create table marts.fct_country_month as select * from panel")
    finally:
        con.close()
    return path


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def validate(db: Path, config: Path, reports: Path, run: str = "t", ref: str = "2025-06-15") -> int:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "validate", "--db", str(db), "--config", str(config), "--reports", str(reports),
        "--run", run, "--reference-date", ref,
    ])
    return args.func(args)


def with_severity(config: dict, name: str, severity: str) -> dict:
    out = yaml.safe_load(yaml.safe_dump(config))
    for suite in out["suites"].values():
        for e in suite["expectations"]:
            if e["name"] == name:
                e["severity"] = severity
    return out


# --- config ---------------------------------------------------------------------------------


def test_shipped_config_covers_every_feed_and_the_panel():
    config = load_config()  # <project>/quality/expectations.yml
    tables = {s.table for s in config.suites}
    assert {f"landing.{feed}" for feed in FEEDS} | {"marts.fct_country_month"} <= tables
    severities = {e.severity for s in config.suites for e in s.expectations}
    assert severities == {"error", "warning"}
    assert config.freshness.factor == 3


def test_freshness_thresholds_are_the_dbt_sources_not_the_quality_config():
    sources = yaml.safe_load((Path(__file__).resolve().parents[2] / "models/staging/dtenv/_dtenv__sources.yml")
                             .read_text(encoding="utf-8"))["sources"][0]
    assert sources["config"]["freshness"]["warn_after"] == {"count": 45, "period": "day"}
    assert {t["name"] for t in sources["tables"] if "loaded_at_query" in t.get("config", {})} == set(FEEDS)
    with pytest.raises(ValueError, match="freshness thresholds are dbt's"):
        FreshnessSettings.from_config({"freshness": {"max_age_days": {"default": 45}}})


def test_bad_severity_is_rejected_with_the_expectation_named():
    bad = with_severity(TEST_CONFIG, "returns_record_id_present", "fatal")
    with pytest.raises(QualityConfigError, match="returns_record_id_present.*severity"):
        parse_config(bad)


# --- expectations ---------------------------------------------------------------------------


def test_clean_tables_pass(tmp_path, capsys):
    db = make_db(tmp_path / "clean.duckdb")
    rc = validate(db, write_config(tmp_path / "q.yml", TEST_CONFIG), tmp_path / "reports")
    out = capsys.readouterr().out
    assert rc == 0
    assert "6 passed, 0 errors, 0 warnings" in out
    results = pd.read_csv(tmp_path / "reports" / "t" / "data_docs" / "expectations.csv")
    assert results["success"].all() and len(results) == 6


def test_error_level_failure_fails_the_run_naming_the_expectations(tmp_path, capsys):
    # 10 of 40 record ids missing (75% present < mostly 0.95); one lead time of 5000 days
    ids = [None] * 10 + [f"R{i}" for i in range(30)]
    panel = panel_frame()
    panel.loc[5, "lead_time_days"] = 5000.0
    db = make_db(tmp_path / "bad.duckdb", {"returns": returns_rows(["2025-05-02"] * 40, ids=ids)}, panel)
    rc = validate(db, write_config(tmp_path / "q.yml", TEST_CONFIG), tmp_path / "reports")
    captured = capsys.readouterr()
    assert rc == 1
    assert "ERROR   landing.returns returns_record_id_present" in captured.out
    assert "25% unexpected (10 of 40)" in captured.out
    assert "ERROR   marts.fct_country_month lead_time_days_ceiling" in captured.out
    assert "returns_record_id_present, lead_time_days_ceiling" in captured.err


def test_warning_level_failure_does_not_fail_the_run(tmp_path, capsys):
    # 8 of 40 departure types invalid (80% valid < mostly 0.95): a warning
    types = ["deported"] * 8 + ["forced"] * 32
    db = make_db(tmp_path / "warn.duckdb", {"returns": returns_rows(["2025-05-02"] * 40, types)})
    rc = validate(db, write_config(tmp_path / "q.yml", TEST_CONFIG), tmp_path / "reports")
    out = capsys.readouterr().out
    assert rc == 0
    assert "WARNING landing.returns returns_departure_type_valid" in out
    assert "1 warnings" in out


def test_severity_is_read_from_the_config(tmp_path, capsys):
    types = ["deported"] * 8 + ["forced"] * 32
    ids = [None] * 10 + [f"R{i}" for i in range(30)]
    db = make_db(tmp_path / "sev.duckdb", {"returns": returns_rows(["2025-05-02"] * 40, types, ids)})
    reports = tmp_path / "reports"
    # shipped severities: the record-id failure is an error
    assert validate(db, write_config(tmp_path / "a.yml", TEST_CONFIG), reports) == 1
    # demote it to a warning: the same data passes
    demoted = with_severity(TEST_CONFIG, "returns_record_id_present", "warning")
    assert validate(db, write_config(tmp_path / "b.yml", demoted), reports) == 0
    # promote the departure-type check to an error: it fails again, named
    promoted = with_severity(demoted, "returns_departure_type_valid", "error")
    capsys.readouterr()
    assert validate(db, write_config(tmp_path / "c.yml", promoted), reports) == 1
    assert "returns_departure_type_valid" in capsys.readouterr().err


def test_data_docs_are_written(tmp_path):
    db = make_db(tmp_path / "docs.duckdb")
    validate(db, write_config(tmp_path / "q.yml", TEST_CONFIG), tmp_path / "reports", run="docs")
    docs = tmp_path / "reports" / "docs" / "data_docs"
    index = (docs / "index.html").read_text(encoding="utf-8")  # GX's site
    assert "landing_returns" in index and "marts_fct_country_month" in index
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 2  # one validation page per suite
    summary = (docs / "summary.html").read_text(encoding="utf-8")  # self-contained page
    assert "returns_record_id_present" in summary and "lead_time_days_ceiling" in summary
    assert "<script" not in summary and "<link" not in summary
    assert (docs / "freshness.csv").exists() and (docs / "summary.json").exists()


# --- freshness and volume -------------------------------------------------------------------


def test_freshness_warns_for_a_stale_feed(tmp_path):
    ref = date(2025, 6, 15)
    db = make_db(tmp_path / "fresh.duckdb", {
        "returns": returns_rows(["2025-06-10", "2025-01-03"]),
        # newest as DD-MM-YYYY (12 June); a date after the reference date is ignored
        "requests": [("Q1", "p1", "MAR", "12-06-2025"), ("Q2", "p2", "MAR", "2030-01-01"),
                     ("Q3", "p3", "MAR", "2025-02-01")],
        "nationality_confirmations": [("C1", "Q1", "MAR", "2025-05-31T10:00:00", "confirmed")],
        "laissez_passers": [("L1", "p1", "MAR", "2025-01-31"), ("L2", "p2", "MAR", "not a date")],
    })
    settings = FreshnessSettings.from_config(TEST_CONFIG)
    checks = run_source_checks(db, settings, reference_date=ref)
    fresh = checks[checks["check"] == "freshness"].set_index("feed")
    assert fresh.loc["returns", "observed"] == 5
    assert fresh.loc["requests", "observed"] == 3
    assert "1 rows dated after the reference date ignored" in fresh.loc["requests", "message"]
    assert fresh.loc["nationality_confirmations", "observed"] == 15
    assert fresh.loc["laissez_passers", "observed"] == (ref - date(2025, 1, 31)).days == 135
    assert fresh["status"].to_dict() == {
        "returns": "ok", "requests": "ok", "nationality_confirmations": "ok", "laissez_passers": "warn",
    }
    assert (fresh["threshold"] == 45).all()
    assert list(checks.columns) == ["feed", "check", "status", "observed", "threshold", "message"]


def monthly_returns(counts_by_month: dict[str, int]) -> list[tuple]:
    dates, ids = [], []
    for month, n in counts_by_month.items():
        first = date.fromisoformat(f"{month}-01")
        for i in range(n):
            dates.append(str(first + timedelta(days=i % 28)))
            ids.append(f"R{month}-{i}")
    return returns_rows(dates, ids=ids)


HISTORY = [f"{y}-{m:02d}" for y, m in [(2024, m) for m in range(5, 13)] + [(2025, m) for m in range(1, 5)]]


def volume_checks(db: Path, reference_date: date) -> pd.DataFrame:
    # the volume check alone: run_source_checks also runs dbt's freshness, tested above
    con = duckdb.connect(str(db), read_only=True)
    try:
        return check_volume(con, FreshnessSettings.from_config(TEST_CONFIG), reference_date)
    finally:
        con.close()


def volume_of(tmp_path: Path, name: str, counts: dict[str, int]) -> pd.Series:
    db = make_db(tmp_path / f"{name}.duckdb", {"returns": monthly_returns(counts)})
    checks = volume_checks(db, date(2025, 6, 15))
    return checks[checks["feed"] == "returns"].iloc[0]


def test_volume_warns_on_a_fivefold_jump(tmp_path):
    # 100 records in each of the 12 months before May 2025 (the last complete month), then 500
    row = volume_of(tmp_path, "jump", {m: 100 for m in HISTORY} | {"2025-05": 500})
    assert row["status"] == "warn"
    assert row["observed"] == 5.0 and row["threshold"] == 3
    assert "jump" in row["message"] and "median 100" in row["message"]


def test_volume_warns_on_a_drop(tmp_path):
    row = volume_of(tmp_path, "drop", {m: 100 for m in HISTORY} | {"2025-05": 20})
    assert row["status"] == "warn" and row["observed"] == 0.2 and "drop" in row["message"]


def test_volume_does_not_warn_on_normal_variation(tmp_path):
    varying = [80, 120, 95, 105, 110, 90, 100, 85, 115, 100, 92, 108]  # median 100
    counts = dict(zip(HISTORY, varying, strict=True)) | {"2025-05": 130}
    row = volume_of(tmp_path, "normal", counts)
    assert row["status"] == "ok"
    assert row["observed"] == pytest.approx(1.3)


def test_volume_counts_records_not_redelivered_rows(tmp_path):
    # the last month delivered twice (same record ids): still 100 records, no jump
    counts = {m: 100 for m in HISTORY} | {"2025-05": 100}
    rows = monthly_returns(counts)
    rows += [r for r in rows if r[3].startswith("2025-05")]
    db = make_db(tmp_path / "dup.duckdb", {"returns": rows})
    row = volume_checks(db, date(2025, 6, 15)).set_index("feed").loc["returns"]
    assert row["status"] == "ok" and row["observed"] == 1.0


def test_missing_table_or_column_fails_with_a_readable_message(tmp_path, capsys):
    db = make_db(tmp_path / "nopanel.duckdb")
    con = duckdb.connect(str(db))
    con.execute("drop table marts.fct_country_month")
    con.close()
    config = yaml.safe_load(yaml.safe_dump(TEST_CONFIG))
    config["suites"]["landing_returns"]["expectations"].append(
        {"name": "returns_missing_column", "type": "expect_column_values_to_not_be_null",
         "kwargs": {"column": "no_such_column"}, "severity": "warning"}
    )
    rc = validate(db, write_config(tmp_path / "q.yml", config), tmp_path / "reports")
    out = capsys.readouterr().out
    assert rc == 1
    missing = "could not be evaluated: table marts.fct_country_month not found"
    assert f"panel_treated_and_untreated: {missing}" in out
    assert "WARNING landing.returns returns_missing_column: could not be evaluated" in out
    assert "no_such_column" in out


@pytest.mark.slow
def test_shipped_config_passes_the_calibrated_synthetic_warehouse(synthetic_warehouse, tmp_path):
    # the default synthetic feeds end 2025-12-31 and are calibrated to the annex's Table 1,
    # which the shipped bands are built around: no error, no warning, every feed fresh
    _, db = synthetic_warehouse
    config = Path(__file__).resolve().parents[2] / "quality" / "expectations.yml"
    assert validate(db, config, tmp_path / "reports", run="synthetic", ref="2026-01-10") == 0
    docs = tmp_path / "reports" / "synthetic" / "data_docs"
    results = pd.read_csv(docs / "expectations.csv")
    assert results.loc[~results["success"], "expectation"].tolist() == []
    checks = pd.read_csv(docs / "freshness.csv")
    assert (checks["status"] == "ok").all(), checks.to_string()


# --- synthetic calendar and checks with nothing to check -----------------------------------


def _mark(db: Path, metadata: dict) -> None:
    import json

    con = duckdb.connect(str(db))
    try:
        con.execute("create table landing.load_metadata (metadata json)")
        con.execute("insert into landing.load_metadata values (?)", [json.dumps(metadata)])
    finally:
        con.close()


SYNTHETIC_METADATA = {"synthetic": True, "generator": {"settings": {"window": {"start": "2016-01", "end": "2025-05"}}}}


def test_synthetic_feeds_are_measured_against_their_delivery_calendar(tmp_path):
    from mipa.quality.freshness import reference_date_for

    counts = {m: 100 for m in HISTORY} | {"2025-05": 100}
    synthetic = make_db(tmp_path / "synthetic.duckdb", {"returns": monthly_returns(counts)})
    _mark(synthetic, SYNTHETIC_METADATA)
    assert reference_date_for(synthetic, today=date(2026, 5, 1))[0] == date(2025, 6, 1)
    checks = run_source_checks(synthetic, FreshnessSettings.from_config(TEST_CONFIG))
    returns = checks[checks["feed"] == "returns"].set_index("check")
    assert returns.loc["freshness", "status"] == "ok"
    assert "before 2025-06-01" in returns.loc["freshness", "message"]  # not today
    assert returns.loc["volume", "status"] == "ok" and returns.loc["volume", "message"].startswith("2025-05:")
    # a given date wins; real feeds (no verified marker) are measured against today
    assert reference_date_for(synthetic, date(2025, 1, 1)) == (date(2025, 1, 1), "given")
    real = make_db(tmp_path / "real.duckdb")
    _mark(real, {"synthetic": False})
    assert reference_date_for(real, today=date(2026, 5, 1)) == (date(2026, 5, 1), "today")


def test_validate_prints_the_synthetic_reference_date(tmp_path, capsys):
    db = make_db(tmp_path / "synthetic.duckdb")
    _mark(db, SYNTHETIC_METADATA)
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", "--db", str(db), "--config", str(write_config(tmp_path / "q.yml", TEST_CONFIG)),
                              "--reports", str(tmp_path / "reports"), "--run", "t"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "measured against 2025-06-01 (synthetic delivery calendar" in out
    assert "WARN returns" not in out


def test_volume_with_nothing_to_check_says_so(tmp_path):
    # records only long before the last complete month: 0 in 2025-05 and in the 12 months before
    row = volume_of(tmp_path, "empty", {"2023-01": 50})
    assert row["status"] == "not_checked"
    assert "nothing to check" in row["message"] and "ok" not in row["message"]
    # no month before the last complete one: nothing to compare with
    row = volume_of(tmp_path, "first", {"2025-05": 40})
    assert row["status"] == "not_checked" and "no earlier month to compare with" in row["message"]
    # something after nothing is still news
    row = volume_of(tmp_path, "jump", {"2023-01": 50, "2025-05": 40})
    assert row["status"] == "warn" and "jump" in row["message"]


def test_validate_with_missing_database_is_a_user_error(tmp_path, capsys):
    assert validate(tmp_path / "nope.duckdb", write_config(tmp_path / "q.yml", TEST_CONFIG), tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "mipa build" in err and "`" not in err


def test_the_builds_freshness_run_is_read_back_only_for_its_reference_date(tmp_path):
    from mipa import settings
    from mipa.build import FRESHNESS_TABLE, run_dbt, store_source_freshness
    from mipa.quality.freshness import check_freshness, dbt_source_freshness, stored_freshness

    counts = {m: 100 for m in HISTORY} | {"2025-05": 100}
    db = make_db(tmp_path / "built.duckdb", {"returns": monthly_returns(counts)})
    _mark(db, SYNTHETIC_METADATA)
    assert stored_freshness(db, date(2025, 6, 1)) is None  # nothing stored yet
    # what the build's dbt process does after a successful build: dbt source freshness, stored
    out = tmp_path / "sources.json"
    run_dbt(["--quiet", "source", "freshness", "--output", str(out)], db, settings.project_dir())
    assert store_source_freshness(db, out, "test")
    stored = stored_freshness(db, date(2025, 6, 1))
    direct = dbt_source_freshness(db, date(2025, 6, 1))
    assert sorted(stored) == sorted(direct) and "returns" in stored
    for feed in direct:
        assert stored[feed]["status"] == direct[feed]["status"]
        assert stored[feed]["max_loaded_at_time_ago_in_s"] == pytest.approx(
            direct[feed]["max_loaded_at_time_ago_in_s"], abs=120)
    # another reference date is measured anew, not read from the build's run
    assert stored_freshness(db, date(2025, 7, 1)) is None
    # what validate shows comes from the stored run: a changed stored status shows through
    con = duckdb.connect(str(db))
    try:
        results = json.loads(con.execute(f"select results from {FRESHNESS_TABLE}").fetchone()[0])
        for result in results:
            result["status"] = "warn"
        con.execute(f"update {FRESHNESS_TABLE} set results = ?", [json.dumps(results)])
    finally:
        con.close()
    checks = check_freshness(db, date(2025, 6, 1))
    assert checks.set_index("feed").loc["returns", "status"] == "warn"
