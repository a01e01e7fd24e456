"""Shared fixtures: write small feed folders as real files, and build them with dbt."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import pandas as pd
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


def read_frame(db: Path, sql: str) -> pd.DataFrame:
    """The result of ``sql`` on the database at ``db``, opened read-only, as a DataFrame."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


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


@pytest.fixture(scope="session")
def synthetic_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default synthetic feeds built into a warehouse with every mart, through the CLI
    as a user would run it; built once per test session and shared by the slow tests.

    Set ``MIPA_TEST_WAREHOUSE`` to a folder holding ``raw/`` and ``mipa.duckdb`` to reuse one.
    """
    import os
    import subprocess
    import sys

    from mipa import settings

    given = os.environ.get("MIPA_TEST_WAREHOUSE")
    if given:
        return Path(given) / "raw", Path(given) / "mipa.duckdb"
    root = tmp_path_factory.mktemp("synthetic_warehouse")
    raw, db = root / "raw", root / "mipa.duckdb"
    env = {
        **os.environ,
        "MIPA_RAW_DIR": str(raw),
        "MIPA_DB_PATH": str(db),
        "MIPA_PROJECT_DIR": str(settings.project_dir()),
        "OPENBLAS_NUM_THREADS": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cli = [sys.executable, "-m", "mipa.cli"]
    subprocess.run([*cli, "simulate", "--out", str(raw), "--quiet"], env=env, check=True)
    subprocess.run([*cli, "build"], env=env, check=True)
    return raw, db
