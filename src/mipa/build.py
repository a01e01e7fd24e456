"""Build the warehouse from raw feeds without ever breaking the last good database.

The build loads the feeds and runs ``dbt build`` into a new file next to the database;
only when every model and test has passed is the new file moved over the old one
(``os.replace``, atomic on one file system). A failed or killed build leaves the last
good database untouched; the failed attempt is kept as ``<name>.failed.duckdb`` for
inspection.

One build at a time per database: the build holds an exclusive lock on ``<name>.lock``
(``flock``, released by the kernel when the process ends, however it ends), so its
scratch files are its own. A selective build (``--select``, ``--exclude``, ...) starts
from a copy of the last good database, so the models it does not select are kept.
dbt runs as a child that the kernel ends when the build process dies.

``dbt parse`` needs no data: it runs beside the load (and beside the generator in
``mipa run``), with the build's profile, vars and target, so ``dbt build`` then parses only
what changed (:func:`start_parse`; a full parse is 4-8 s on one core).

After a passing ``dbt build`` the build also runs ``dbt source freshness`` on the new file
with the build's own target path, profile and vars, so dbt parses only what changed (a
second full parse was ~8 s of ``mipa validate``), and keeps dbt's results in
``landing.source_freshness`` for ``mipa validate`` to read (:data:`FRESHNESS_TABLE`).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mipa import settings
from mipa.dbt_session import PARSED_FD_VARIABLE
from mipa.ingest import FeedError, IngestSummary, ingest

# dbt options that build only part of the project
SELECTION_FLAGS = (
    "-s", "--select", "-m", "--models", "--model", "--exclude", "--selector",
    "--resource-type", "--resource-types", "--exclude-resource-type", "--exclude-resource-types",
)


# dbt's source freshness results of the build (sources.json "results") and the day it ran
FRESHNESS_TABLE = "landing.source_freshness"
# read ends of the pipes each background dbt session closes after its parse, by pid
_PARSE_SIGNALS: dict[int, int] = {}


class BuildError(Exception):
    """The build failed; the previous database is unchanged."""


@dataclass
class BuildSummary:
    db_path: Path
    ingest: IngestSummary
    seconds_ingest: float
    seconds_dbt: float


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def is_selective(dbt_args: list[str] | None) -> bool:
    """Whether the dbt arguments build only part of the project."""
    return any(_flag_name(a) in SELECTION_FLAGS for a in dbt_args or [])


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel kill the child when this process dies (Linux
    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a ``kill -9`` of mipa leaves no dbt behind."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def dbt_env(db_file: Path, project: Path) -> dict[str, str]:
    """The environment of a dbt command against ``db_file`` (the profile reads the path)."""
    env = dict(os.environ)
    env["MIPA_DB_PATH"] = str(db_file)
    env["MIPA_PROJECT_DIR"] = str(project)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not sys.stderr.isatty():  # no colour codes in logs and CI output
        env.setdefault("DBT_USE_COLORS", "false")
    return env


def run_dbt(
    args: list[str], db_file: Path, project: Path, extra_env: dict[str, str] | None = None
) -> int:
    """Run one dbt command against ``db_file``; output streams to the terminal."""
    env = dbt_env(db_file, project)
    env.update(extra_env or {})
    cmd = [_dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(cmd, env=env, cwd=project, check=False, preexec_fn=_die_with_parent()).returncode


def building_path(db_path: Path) -> Path:
    """The scratch file a build of ``db_path`` builds into before it replaces ``db_path``."""
    return db_path.with_name(db_path.stem + ".building.duckdb")


def vars_args(dbt_args: list[str] | None) -> list[str]:
    """The ``--vars`` option of the build's dbt arguments (empty when none): every dbt
    command of one build passes the same vars, or dbt's saved manifest is not reused."""
    args = list(dbt_args or [])
    return next(([arg] if arg.startswith("--vars=") else args[i:i + 2]
                 for i, arg in enumerate(args) if arg == "--vars" or arg.startswith("--vars=")), [])


def start_parse(db_path: Path, project: Path | None = None, dbt_args: list[str] | None = None) -> subprocess.Popen:
    """The build's dbt process (:mod:`mipa.dbt_session`), started in the background: it
    parses the project with the build's profile (its building file), vars and target path
    while the feeds load, then waits for :func:`run_build_session` (or
    :func:`finish_parse`, which ends it after the parse)."""
    project = Path(project or settings.project_dir())
    env = dbt_env(building_path(Path(db_path)), project)
    cmd = [sys.executable, "-m", "mipa.dbt_session", str(project), *vars_args(dbt_args)]
    # the session closes its end of this pipe when the parse is done (or when it ends)
    parsed_read, parsed_write = os.pipe()
    env[PARSED_FD_VARIABLE] = str(parsed_write)
    try:
        session = subprocess.Popen(cmd, env=env, cwd=project, stdin=subprocess.PIPE, text=True,
                                   preexec_fn=_die_with_parent(), pass_fds=(parsed_write,))
    except BaseException:
        os.close(parsed_read)
        raise
    finally:
        os.close(parsed_write)
    _PARSE_SIGNALS[session.pid] = parsed_read
    return session


def _close_parse_signal(parse: subprocess.Popen) -> None:
    fd = _PARSE_SIGNALS.pop(parse.pid, None)
    if fd is not None:
        os.close(fd)


def parse_finished(parse: subprocess.Popen | None) -> bool:
    """Whether the background session of :func:`start_parse` is past its parse (idle until
    the build), without waiting; True for no session."""
    fd = None if parse is None else _PARSE_SIGNALS.get(parse.pid)
    if fd is None:
        return True
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def run_build_session(session: subprocess.Popen, dbt_args: list[str], freshness_output: Path | None) -> int:
    """``dbt build`` with ``dbt_args`` in the parsed session of :func:`start_parse`, then
    (after a successful build) ``dbt source freshness`` into ``freshness_output``; dbt
    build's exit code."""
    assert session.stdin is not None
    session.stdin.write(json.dumps({"build": list(dbt_args),
                                    "freshness_output": None if freshness_output is None else str(freshness_output)})
                        + "\n")
    session.stdin.close()
    code = session.wait()
    _close_parse_signal(session)
    return code


def finish_parse(parse: subprocess.Popen | None, *, stop: bool = False) -> None:
    """End a background session after its parse and wait for it (``stop=True``: end it now,
    when the build failed first)."""
    if parse is None:
        return
    _close_parse_signal(parse)
    if stop and parse.poll() is None:
        parse.terminate()
    if parse.stdin is not None and not parse.stdin.closed:
        try:
            parse.stdin.close()
        except OSError:
            pass
    parse.wait()


def store_source_freshness(db_file: Path, results_file: Path, context: str) -> bool:
    """dbt's ``sources.json`` at ``results_file`` (the build's own ``dbt source freshness``
    run, :mod:`mipa.dbt_session`) into :data:`FRESHNESS_TABLE` of ``db_file``: one row,
    ``measured_on`` date and ``results`` JSON. When dbt wrote none: a warning naming
    ``context``, no table (``mipa validate`` then runs dbt itself) and False."""
    if not results_file.is_file():
        print(f"[mipa build] WARNING dbt source freshness wrote no results ({context}); "
              "mipa validate will run it", file=sys.stderr, flush=True)
        return False
    results = json.loads(results_file.read_text(encoding="utf-8"))["results"]
    con = duckdb.connect(str(db_file))
    try:
        con.execute(f"create or replace table {FRESHNESS_TABLE} (measured_on date, results varchar)")
        con.execute(f"insert into {FRESHNESS_TABLE} values (?, ?)", [dt.date.today(), json.dumps(results)])
    finally:
        con.close()
    return True


def _quarantine_report(db_file: Path) -> str:
    try:
        con = duckdb.connect(str(db_file), read_only=True)
    except duckdb.Error:
        return ""
    try:
        # the first row in delivery order: file name, then row number as a number
        rows = con.execute(
            """select feed, quarantine_rule, count(*) as n,
                      first(source_file || ' row ' || cast(source_row as varchar)
                            order by source_file, source_row) as first_row
               from marts.fct_quarantined_rows group by 1, 2 order by 1, 3 desc, 2"""
        ).fetchall()
        share = con.execute(
            "select feed, rows_landed, rows_quarantined, rows_superseded, rejected_share "
            "from marts.fct_feed_reconciliation order by feed"
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


def _scratch(path: Path) -> list[Path]:
    return [path, Path(str(path) + ".wal")]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _os_error_message(exc: OSError | duckdb.Error, step: str, folder: Path, db_path: Path) -> str:
    """One line: what failed, why, and what to do; the last good database is unchanged."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left" in text:
        why, todo = "no space left on the device", f"free space on {folder} (the build needs about twice the database's size)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) or "Permission denied" in text or "Read-only" in text:
        why, todo = "the folder is read-only or not writable", f"make {folder} writable or build into another --db"
    else:
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        why, todo = getattr(exc, "strerror", None) or first, "fix the cause and build again"
    return f"{step} failed: {why}; {todo}. {db_path} is unchanged and the scratch files were removed."


MIN_FREE_BYTES = 64 * 1024 * 1024


def _disk_nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < MIN_FREE_BYTES
    except OSError:
        return False


@contextmanager
def build_lock(db_path: Path) -> Iterator[Path]:
    """Hold ``<db>.lock`` exclusively for the whole build; a second build stops at once."""
    lock_path = db_path.with_name(db_path.stem + ".lock")
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield lock_path
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BuildError(_os_error_message(exc, f"creating the build lock {lock_path}", db_path.parent, db_path)) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise BuildError(
                f"another mipa build is running on {db_path} (pid {holder}; lock {lock_path}); "
                "wait for it to finish, or build into another --db."
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield lock_path
    finally:
        os.close(fd)  # releases the lock


def build(
    raw_dir: Path | None = None,
    db_path: Path | None = None,
    dbt_args: list[str] | None = None,
    parse: subprocess.Popen | None = None,
) -> BuildSummary:
    """Load ``raw_dir`` and build every dbt model and test into ``db_path`` atomically.
    ``parse``: a :func:`start_parse` already running for this build (else one starts here,
    beside the load)."""
    raw_dir = Path(raw_dir or settings.raw_dir())
    db_path = Path(db_path or settings.db_path())
    project = settings.project_dir()
    dbt_args = list(dbt_args or [])
    if "--empty" in dbt_args:
        raise BuildError(
            "mipa build does not accept --empty: an empty build would replace the warehouse's data "
            "with empty tables; run dbt directly against a scratch database instead."
        )
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(_os_error_message(exc, f"creating {db_path.parent}", db_path.parent, db_path)) from exc
    with build_lock(db_path):
        parse = parse or start_parse(db_path, project, dbt_args)
        try:
            return _locked_build(raw_dir, db_path, project, dbt_args, parse)
        finally:
            finish_parse(parse, stop=True)


def _locked_build(
    raw_dir: Path, db_path: Path, project: Path, dbt_args: list[str], parse: subprocess.Popen | None = None
) -> BuildSummary:
    building = building_path(db_path)
    failed = db_path.with_name(db_path.stem + ".failed.duckdb")
    folder = db_path.parent
    # under the lock, a scratch file left here is debris of a killed build, never another's
    _remove(_scratch(building))

    started = time.perf_counter()
    selective = is_selective(dbt_args)
    try:
        if selective and db_path.exists():
            # a selective build rebuilds what it selects on top of the last good database,
            # so the models it leaves out are kept instead of vanishing from the warehouse
            print(
                f"[mipa build] selective build: starting from a copy of {db_path.name}",
                file=sys.stderr,
                flush=True,
            )
            shutil.copyfile(db_path, building)
        print(f"[mipa build] loading feeds from {raw_dir}", file=sys.stderr, flush=True)
        summary = ingest(raw_dir, building, second_core_free=lambda: parse_finished(parse))
    except FeedError:
        _remove(_scratch(building))
        raise
    except (OSError, duckdb.Error) as exc:
        _remove(_scratch(building))
        raise BuildError(_os_error_message(exc, f"loading the feeds into {building}", folder, db_path)) from exc
    loaded = time.perf_counter()
    for feed in sorted({f.feed for f in summary.files}):
        files = [f for f in summary.files if f.feed == feed and f.status != "not_loaded"]
        print(
            f"[mipa build]   {feed:<26} {summary.rows(feed):>10} rows from {len(files)} file(s)",
            file=sys.stderr,
            flush=True,
        )
    for skipped in summary.not_loaded:
        print(
            f"[mipa build]   WARNING {skipped.source_file}: not loaded ({skipped.reason}); "
            "listed in landing.delivery_files",
            file=sys.stderr,
            flush=True,
        )
    if summary.marker_problem:
        print(
            f"[mipa build]   WARNING _synthetic.json does not verify ({summary.marker_problem}): "
            "the feeds are treated as real data",
            file=sys.stderr,
            flush=True,
        )
    print(f"[mipa build] running dbt build into {building.name}", file=sys.stderr, flush=True)
    freshness = Path(tempfile.mkdtemp(prefix="mipa-freshness-")) / "sources.json"
    try:
        if parse is None or parse.poll() is not None:
            finish_parse(parse)
            parse = start_parse(db_path, project, dbt_args)
        code = run_build_session(parse, dbt_args, freshness)
    except OSError as exc:
        shutil.rmtree(freshness.parent, ignore_errors=True)
        _remove(_scratch(building))
        raise BuildError(_os_error_message(exc, "starting dbt", folder, db_path)) from exc
    finished = time.perf_counter()
    if code == 0:
        store_source_freshness(building, freshness, "the build's dbt process")
    shutil.rmtree(freshness.parent, ignore_errors=True)
    if code != 0:
        report = _quarantine_report(building)
        if _disk_nearly_full(folder):
            # dbt most likely failed for want of space: keeping the attempt would keep it full
            _remove(_scratch(building))
            failed_note = (
                f"The disk holding {folder} is (nearly) full, which is the likely cause: the failed "
                "attempt was removed; free space and build again."
            )
        else:
            try:
                os.replace(building, failed)
            except OSError:
                _remove(_scratch(building))
                failed_note = "The failed attempt could not be kept."
            else:
                failed_note = f"The failed attempt is kept in {failed} for inspection."
        raise BuildError(
            f"dbt build failed (exit {code}); {db_path} is unchanged. {failed_note}\n{report}"
        )
    try:
        os.replace(building, db_path)
    except OSError as exc:
        _remove(_scratch(building))
        raise BuildError(_os_error_message(exc, f"replacing {db_path} with the new build", folder, db_path)) from exc
    print(f"[mipa build] done: {db_path}", file=sys.stderr, flush=True)
    return BuildSummary(db_path, summary, loaded - started, finished - loaded)
