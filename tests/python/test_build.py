"""The build end to end on small hand-written feeds: values, quarantine, atomic swap."""

from __future__ import annotations

import shutil

import pytest
from conftest import write_csv

from mipa.build import BuildError, build
from mipa.contract import FEEDS

# these tiny panels have no never-treated country: the estimation models are built in
# the synthetic end-to-end test instead
WAREHOUSE_ONLY = ["--exclude", "tag:estimation"]
LOOSE = [*WAREHOUSE_ONLY, "--vars", "{max_quarantine_share: 0.9}"]


def test_panel_counts_lead_time_and_treatment(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    rows = query(
        db,
        """select strftime(month_start, '%Y-%m'), requests, confirmations, lead_time_days,
                  laissez_passers, forced_departures, verified_departures, mipa, months_since_start
           from marts.fct_country_month
           where iso3 = 'MAR' and month_start between '2022-01-01' and '2022-06-01'
           order by month_start""",
    )
    assert rows == [
        ("2022-01", 1, 0, None, 0, 0, 0, 0, -5),
        ("2022-02", 0, 0, None, 0, 0, 0, 0, -4),
        ("2022-03", 0, 1, 50.0, 0, 0, 0, 0, -3),  # Q1 2022-01-10 -> C1 2022-03-01; C2 rejected
        ("2022-04", 0, 0, None, 1, 0, 0, 0, -2),
        ("2022-05", 0, 0, None, 0, 1, 1, 0, -1),
        ("2022-06", 0, 0, None, 0, 0, 0, 1, 0),
    ]
    # MAR and TUN appear in the feeds: 2 panel countries x 120 months
    assert query(db, "select count(*), count(distinct iso3) from marts.fct_country_month") == [(240, 2)]
    # the unsupervised TUN departure is no verified departure but counts in the yearly total
    assert query(
        db,
        "select total_departures, forced_departures from marts.fct_country_year "
        "where iso3 = 'TUN' and calendar_year = 2022",
    ) == [(1, 0)]


def test_bad_rows_are_quarantined_with_file_row_and_rule(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    write_csv(
        minimal_feeds / "returns" / "returns_2023.csv",
        FEEDS["returns"].required_columns,
        [
            ("R10", "P10", " marokkaanse ", "2023-01-05", "Forced"),  # valid after normalising
            ("R11", "P11", "Atlantis", "2023-01-05", "forced"),
            ("R12", "P12", "MAR", "2023-02-30", "forced"),
            ("R13", "P13", "MAR", "2023-01-05", "deported"),
            ("R1", "P1", "MAR", "2022-05-03", "forced"),  # corrected re-delivery of R1
            ("", "P14", "MAR", "2023-01-05", "forced"),
        ],
    )
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, LOOSE)
    quarantined = query(
        db,
        """select source_file, source_row, quarantine_rule from marts.fct_quarantined_rows
           where feed = 'returns' order by source_file, source_row""",
    )
    assert quarantined == [
        ("returns/returns_2022.csv", 1, "duplicate_record_id"),
        ("returns/returns_2023.csv", 2, "unknown_nationality"),
        ("returns/returns_2023.csv", 3, "unparseable_date"),
        ("returns/returns_2023.csv", 4, "invalid_departure_type"),
        ("returns/returns_2023.csv", 6, "missing_record_id"),
    ]
    assert query(
        db, "select rows_landed, rows_staged, rows_quarantined from marts.fct_feed_reconciliation where feed = 'returns'"
    ) == [(8, 3, 5)]
    # the corrected copy (2022-05-03) counts, once
    assert query(
        db,
        "select sum(forced_departures) from marts.fct_country_month where iso3 = 'MAR' and month_start = '2022-05-01'",
    ) == [(1,)]


def test_too_many_quarantined_rows_fail_the_build_and_keep_last_good_db(
    minimal_feeds, tmp_path, pseudonym_key, query
) -> None:
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    before = db.read_bytes()
    write_csv(
        minimal_feeds / "requests" / "requests_2023.csv",
        FEEDS["requests"].required_columns,
        [(f"Q{i}", "P", "Narnia", "2023-01-01") for i in range(100, 110)],
    )
    with pytest.raises(BuildError) as err:
        build(minimal_feeds, db, WAREHOUSE_ONLY)
    message = str(err.value)
    assert "is unchanged" in message
    assert "unknown_nationality" in message and "requests/requests_2023.csv row 1" in message
    assert db.read_bytes() == before
    assert query(db, "select count(*) from marts.fct_country_month") == [(240,)]
    assert (tmp_path / "mipa.failed.duckdb").exists()


def test_rebuild_from_same_feeds_gives_identical_marts(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    build(minimal_feeds, first, WAREHOUSE_ONLY)
    build(minimal_feeds, second, WAREHOUSE_ONLY)
    sql = "select * from marts.fct_country_month order by iso3, month_start"
    assert query(first, sql) == query(second, sql)


def test_missing_required_column_stops_before_dbt(minimal_feeds, tmp_path, pseudonym_key) -> None:
    bad = minimal_feeds / "nationality_confirmations" / "decisions_2023.csv"
    write_csv(bad, ("record_id", "nationality", "decision_date", "outcome"), [("C9", "MAR", "2023-01-01", "confirmed")])
    from mipa.ingest import FeedError

    with pytest.raises(FeedError, match="decisions_2023.csv: missing required column"):
        build(minimal_feeds, tmp_path / "mipa.duckdb", WAREHOUSE_ONLY)
    assert not (tmp_path / "mipa.duckdb").exists()
    shutil.rmtree(minimal_feeds)


def test_the_background_parse_leaves_dbt_build_a_current_manifest(tmp_path, capfd) -> None:
    """start_parse uses the build's profile, vars and target, so the build's own dbt command
    parses only what changed instead of the whole project; it creates no database file."""
    from mipa import settings
    from mipa.build import building_path, finish_parse, run_dbt, start_parse

    db = tmp_path / "wh.duckdb"
    parse = start_parse(db)
    finish_parse(parse)
    assert parse.returncode == 0
    assert not building_path(db).exists() and not db.exists()
    capfd.readouterr()
    assert run_dbt(["parse"], building_path(db), settings.project_dir()) == 0
    out = capfd.readouterr().out
    assert "Performance info" in out  # dbt ran and reported
    assert "Unable to do partial parsing" not in out
    # another database (another profile) is a full parse: the check above can fail
    assert run_dbt(["parse"], tmp_path / "other.duckdb", settings.project_dir()) == 0
    assert "Unable to do partial parsing because profile has changed" in capfd.readouterr().out


def test_the_background_session_says_when_its_parse_is_done(tmp_path) -> None:
    """The load starts a second feed only once the parse has freed its core: the session is
    busy at first, then signals and waits (alive) for the build."""
    import time

    from mipa.build import finish_parse, parse_finished, start_parse

    parse = start_parse(tmp_path / "wh.duckdb")
    try:
        assert not parse_finished(parse)  # a parse takes seconds; this is its first instant
        deadline = time.monotonic() + 120
        while not parse_finished(parse) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert parse_finished(parse)
        assert parse.poll() is None  # idle, waiting for the build on stdin
    finally:
        finish_parse(parse)
    assert parse.returncode == 0
    assert parse_finished(None) and parse_finished(parse)  # nothing to wait for
