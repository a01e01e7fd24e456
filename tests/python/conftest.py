"""Shared fixtures: write small feed folders as real files, and build them with dbt."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import pytest

from mipa.contract import FEEDS

REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference"


def write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(header))
        writer.writerows(rows)
    return path


@pytest.fixture
def minimal_feeds(tmp_path: Path) -> Path:
    """A raw directory with one clean delivery per feed (Moroccan cases in 2022)."""
    raw = tmp_path / "raw"
    write_csv(
        raw / "requests" / "requests_2022.csv",
        FEEDS["requests"].required_columns,
        [("Q1", "P1", "MAR", "2022-01-10"), ("Q2", "P2", "MAR", "2015-03-01")],
    )
    write_csv(
        raw / "nationality_confirmations" / "decisions_2022.csv",
        FEEDS["nationality_confirmations"].required_columns,
        [("C1", "Q1", "MAR", "2022-03-01", "confirmed"), ("C2", "Q2", "MAR", "2022-03-15", "rejected")],
    )
    write_csv(
        raw / "laissez_passers" / "lp_2022.csv",
        FEEDS["laissez_passers"].required_columns,
        [("L1", "P1", "MAR", "2022-04-01")],
    )
    write_csv(
        raw / "returns" / "returns_2022.csv",
        FEEDS["returns"].required_columns,
        [("R1", "P1", "MAR", "2022-05-02", "forced"), ("R2", "P3", "TUN", "2022-05-03", "unsupervised")],
    )
    return raw


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "test-key-not-secret"
    monkeypatch.setenv("MIPA_PSEUDONYM_KEY", key)
    return key


@pytest.fixture
def query() -> Callable[[Path, str], list[tuple]]:
    def run(db: Path, sql: str) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    return run
