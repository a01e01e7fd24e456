"""Every kind of bad delivery: a clear message (file, row, rule) and either quarantine with
the reason or a clean stop; never a silent drop, never a half-written database."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import write_csv

from mipa.build import build
from mipa.contract import FEEDS
from mipa.ingest import FeedError, ingest

WAREHOUSE_ONLY = ["--exclude", "tag:estimation", "--vars", "{max_quarantine_share: 0.9}"]


# --- file-level problems stop the load, naming the file -------------------------------


def test_non_utf8_file_stops_with_row(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    path = minimal_feeds / "laissez_passers" / "lp_2023.csv"
    path.write_bytes(
        b"record_id,person_id,nationality,issue_date\nL2,P2,MAR,2023-01-01\nL3,P3,Tunesi\xeb,2023-01-01\n"
    )
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert str(err.value).startswith("laissez_passers/lp_2023.csv: row 2 is not valid UTF-8")
    assert "utf8_encoding" in str(err.value)


def test_truncated_parquet_stops_naming_file(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    whole = tmp_path / "whole.parquet"
    duckdb.connect().execute(
        f"""copy (select 'R' || i as record_id, 'P' as person_id, 'MAR' as nationality,
                  date '2023-01-01' as departure_date, 'forced' as departure_type from range(500) t(i))
            to '{whole}' (format parquet)"""
    )
    data = whole.read_bytes()
    (minimal_feeds / "returns" / "returns_2023.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError, match=r"returns/returns_2023.parquet: file cannot be read \(rule: readable_file\)"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


def test_empty_file_is_logged_not_fatal(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    (minimal_feeds / "requests" / "requests_2023.csv").write_bytes(b"")
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    empty = [f for f in summary.files if f.source_file == "requests/requests_2023.csv"]
    assert [(f.status, f.rows) for f in empty] == [("empty_file", 0)]
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute(
        "select load_status from landing.delivery_files where source_file = 'requests/requests_2023.csv'"
    ).fetchall() == [("empty_file",)]


def test_header_only_file_loads_zero_rows(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    write_csv(minimal_feeds / "requests" / "requests_2023.csv", FEEDS["requests"].required_columns, [])
    assert ingest(minimal_feeds, tmp_path / "w.duckdb").rows("requests") == 2


def test_feed_folder_without_files_stops(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    for f in (minimal_feeds / "requests").iterdir():
        f.unlink()
    (minimal_feeds / "requests" / "README.txt").write_text("not a delivery")
    with pytest.raises(FeedError, match="no .csv or .parquet files in feed folder 'requests'"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


def test_missing_raw_directory_stops(tmp_path: Path, pseudonym_key: str) -> None:
    with pytest.raises(FeedError, match="raw directory does not exist"):
        ingest(tmp_path / "nowhere", tmp_path / "w.duckdb")


def test_malformed_csv_row_stops_with_line(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    path = minimal_feeds / "returns" / "returns_2023.csv"
    path.write_text(
        "record_id,person_id,nationality,departure_date,departure_type\n"
        "R7,P7,MAR,2023-01-01,forced\n"
        'R8,P8,"MAR,2023-01-01,forced\n',
        encoding="utf-8",
    )
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert str(err.value).startswith("returns/returns_2023.csv: row 2 cannot be parsed as CSV (rule: csv_format)")


def test_ragged_csv_row_stops_with_row(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    path = minimal_feeds / "returns" / "returns_2023.csv"
    path.write_text(
        "record_id,person_id,nationality,departure_date,departure_type\n"
        "R7,P7,MAR,2023-01-01,forced\n"
        "R8,P8,MAR,2023-01-01,forced,surplus\n",
        encoding="utf-8",
    )
    with pytest.raises(FeedError, match=r"row 2 cannot be parsed as CSV .*Expected Number of Columns: 5 Found: 6"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


# --- row-level problems are quarantined with their reason -------------------------------


def test_every_row_rule_quarantines_with_reason(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str, query) -> None:
    tomorrow = (date.today() + timedelta(days=400)).isoformat()
    write_csv(
        minimal_feeds / "returns" / "returns_2023.csv",
        FEEDS["returns"].required_columns,
        [
            ("R20", "P20", "MAR", tomorrow, "forced"),  # date_in_future
            ("R21", "P21", "MAR", "1990-05-01", "forced"),  # date_before_earliest
            ("R22", "P22", "MAR", "", "forced"),  # missing_date
            ("R23", "P23", "MAR", "12345", "forced"),  # wrong type -> unparseable_date
            ("R23", "P23", "MAR", "2023-01-01", "forced"),  # duplicate within a file: last row wins
        ],
    )
    write_csv(
        minimal_feeds / "nationality_confirmations" / "decisions_2023.csv",
        FEEDS["nationality_confirmations"].required_columns,
        [
            ("C20", "Q404", "MAR", "2023-01-01", "confirmed"),  # request_not_found (orphan)
            ("C21", "Q1", "MAR", "2021-01-01", "confirmed"),  # negative_lead_time
            ("C22", "Q1", "MAR", "2023-01-01", "maybe"),  # invalid_outcome
            ("C23", "Q30", "MAR", "2023-01-01", "confirmed"),  # its request is quarantined
        ],
    )
    write_csv(
        minimal_feeds / "requests" / "requests_2023.csv",
        FEEDS["requests"].required_columns,
        [("Q30", "P30", "Atlantis", "2022-12-01")],  # unknown_nationality
    )
    # the same file delivered twice under another name: every row of the older copy is
    # superseded, nothing double-counts
    shutil.copy(minimal_feeds / "laissez_passers" / "lp_2022.csv", minimal_feeds / "laissez_passers" / "lp_2022_resent.csv")
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    rules = dict(
        query(
            db,
            """select feed || ':' || coalesce(record_id, '') || ':' || cast(source_row as varchar), quarantine_rule
               from marts.fct_quarantined_rows""",
        )
    )
    assert rules == {
        "returns:R20:1": "date_in_future",
        "returns:R21:2": "date_before_earliest",
        "returns:R22:3": "missing_date",
        "returns:R23:4": "duplicate_record_id",
        "nationality_confirmations:C20:1": "request_not_found",
        "nationality_confirmations:C21:2": "negative_lead_time",
        "nationality_confirmations:C22:3": "invalid_outcome",
        "nationality_confirmations:C23:4": "request_quarantined",
        "requests:Q30:1": "unknown_nationality",
        "laissez_passers:L1:1": "duplicate_record_id",
    }
    details = dict(query(db, "select record_id, quarantine_detail from marts.fct_quarantined_rows"))
    assert "Q404 matches no request" in details["C20"]
    assert "is before request_date 2022-01-10" in details["C21"]
    assert "Q30 is quarantined (unknown_nationality)" in details["C23"]
    # raw = staged + quarantined, per feed
    for feed, landed, staged, quarantined in query(
        db, "select feed, rows_landed, rows_staged, rows_quarantined from marts.fct_feed_reconciliation"
    ):
        assert landed == staged + quarantined, feed
    # the re-sent laissez-passer counts once
    assert query(db, "select sum(laissez_passers) from marts.fct_country_month") == [(1,)]
