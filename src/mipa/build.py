"""Build the warehouse from raw feeds without ever breaking the last good database.

The build loads the feeds and runs ``dbt build`` into a new file next to the database;
only when every model and test has passed is the new file moved over the old one
(``os.replace``, atomic on one file system). A failed or killed build leaves the last
good database untouched; the failed attempt is kept as ``<name>.failed.duckdb`` for
inspection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mipa import settings
from mipa.ingest import FeedError, IngestSummary, ingest


class BuildError(Exception):
    """The build failed; the previous database is unchanged."""


@dataclass
class BuildSummary:
    db_path: Path
    ingest: IngestSummary
    seconds_ingest: float
    seconds_dbt: float


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    args: list[str], db_file: Path, project: Path, extra_env: dict[str, str] | None = None
) -> int:
    """Run one dbt command against ``db_file``; output streams to the terminal."""
    env = dict(os.environ)
    env["MIPA_DB_PATH"] = str(db_file)
    env["MIPA_PROJECT_DIR"] = str(project)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(extra_env or {})
    cmd = [_dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(cmd, env=env, cwd=project, check=False).returncode


def _quarantine_report(db_file: Path) -> str:
    try:
        con = duckdb.connect(str(db_file), read_only=True)
    except duckdb.Error:
        return ""
    try:
        rows = con.execute(
            """select feed, quarantine_rule, count(*) as n, min(source_file || ' row ' ||
                      cast(source_row as varchar)) as first_row
               from marts.dq_quarantined_rows group by 1, 2 order by 1, 3 desc"""
        ).fetchall()
        share = con.execute(
            "select feed, rows_landed, rows_quarantined, rows_superseded, rejected_share "
            "from marts.dq_feed_reconciliation order by feed"
        ).fetchall()
    except duckdb.Error:
        return ""
    finally:
        con.close()
    lines = ["Quarantined rows by feed and rule (first offending row):"]
    lines += [f"  {f:<26} {r:<24} {n:>8}  e.g. {first}" for f, r, n, first in rows]
    lines += ["Rows rejected by a rule per feed (quarantined minus superseded re-deliveries):"]
    lines += [f"  {f:<26} {q - d:>8} of {n:>9} = {s:.2%}" for f, n, q, d, s in share]
    return "\n".join(lines)


def build(
    raw_dir: Path | None = None,
    db_path: Path | None = None,
    dbt_args: list[str] | None = None,
) -> BuildSummary:
    """Load ``raw_dir`` and build every dbt model and test into ``db_path`` atomically."""
    raw_dir = Path(raw_dir or settings.raw_dir())
    db_path = Path(db_path or settings.db_path())
    project = settings.project_dir()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    building = db_path.with_name(db_path.stem + ".building.duckdb")
    failed = db_path.with_name(db_path.stem + ".failed.duckdb")
    for stale in (building, Path(str(building) + ".wal")):
        stale.unlink(missing_ok=True)

    started = time.perf_counter()
    print(f"[mipa build] loading feeds from {raw_dir}", file=sys.stderr, flush=True)
    try:
        summary = ingest(raw_dir, building)
    except FeedError:
        building.unlink(missing_ok=True)
        raise
    loaded = time.perf_counter()
    for feed in sorted({f.feed for f in summary.files}):
        files = [f for f in summary.files if f.feed == feed]
        print(
            f"[mipa build]   {feed:<26} {summary.rows(feed):>10} rows from {len(files)} file(s)",
            file=sys.stderr,
            flush=True,
        )
    print(f"[mipa build] running dbt build into {building.name}", file=sys.stderr, flush=True)
    code = run_dbt(["build", *(dbt_args or [])], building, project)
    finished = time.perf_counter()
    if code != 0:
        report = _quarantine_report(building)
        os.replace(building, failed)
        raise BuildError(
            f"dbt build failed (exit {code}); {db_path} is unchanged. "
            f"The failed attempt is kept in {failed} for inspection.\n{report}"
        )
    os.replace(building, db_path)
    print(f"[mipa build] done: {db_path}", file=sys.stderr, flush=True)
    return BuildSummary(db_path, summary, loaded - started, finished - loaded)
