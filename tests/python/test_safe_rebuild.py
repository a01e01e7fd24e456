"""A build killed part-way leaves the last good database readable and unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mipa.build import build

WAREHOUSE_ONLY = ["--exclude", "tag:estimation"]


def test_killed_build_leaves_last_good_database(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str, query) -> None:
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    good = db.read_bytes()
    building = tmp_path / "mipa.building.duckdb"
    env = {**os.environ, "MIPA_RAW_DIR": str(minimal_feeds), "MIPA_DB_PATH": str(db)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mipa.cli", "build", "--", *WAREHOUSE_ONLY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so the kill reaches dbt, the build's child, too
    )
    # wait until dbt is writing the new file, then kill the whole process group
    deadline = time.monotonic() + 60
    while not building.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)
    assert process.poll() is None, "the build finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    assert db.read_bytes() == good
    assert query(db, "select count(*) from marts.fct_country_month") == [(240,)]
    # the next build starts clean from the debris and swaps in a good database
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    assert query(db, "select count(*) from marts.fct_country_month") == [(240,)]
    assert not building.exists()
