"""Issue 16: no key bypass, locked and whole builds, exports that leak nothing, and no row
that silently appears or disappears. Each test reproduces one failure of the landed code."""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import write_csv

from mipa.build import BuildError, _quarantine_report, build
from mipa.cli import main
from mipa.contract import FEEDS
from mipa.disclosure import protect_counts
from mipa.ingest import FeedError, ingest

SYNTHETIC_MARKER = "_synthetic.json"

WAREHOUSE_ONLY = ["--exclude", "tag:estimation"]
LOOSE = [*WAREHOUSE_ONLY, "--vars", "{max_quarantine_share: 0.9}"]
PUBLIC_KEY_OF_OLD_CODE = b"mipa-synthetic-feeds-only"


def feed_manifest(raw: Path) -> dict[str, str]:
    """``feed/name`` -> SHA-256 of every file of every feed folder."""
    return {
        f"{feed}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for feed in FEEDS
        for p in sorted((raw / feed).iterdir())
    }


def _sign(raw: Path) -> None:
    """Write the marker the generator writes: a signed manifest of the feed files."""
    from mipa.contract import manifest_signature

    manifest = feed_manifest(raw)
    marker = {"generator": "mipa simulate", "file_sha256": manifest, "signature": manifest_signature(manifest)}
    (raw / SYNTHETIC_MARKER).write_text(json.dumps(marker), encoding="utf-8")


# --- 1. the pseudonymisation key cannot be switched off ---------------------------------


def test_dropped_synthetic_marker_does_not_switch_off_the_key(minimal_feeds, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    (minimal_feeds / SYNTHETIC_MARKER).write_text("{}", encoding="utf-8")
    with pytest.raises(FeedError, match="MIPA_PSEUDONYM_KEY is not set") as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert "does not prove the feeds synthetic" in str(err.value)
    assert not (tmp_path / "w.duckdb").exists()


def test_signed_marker_covers_only_the_files_it_was_written_for(minimal_feeds, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    _sign(minimal_feeds)
    assert ingest(minimal_feeds, tmp_path / "a.duckdb").synthetic
    # a real delivery added next to the generated files: the marker no longer verifies
    write_csv(minimal_feeds / "returns" / "returns_real.csv", FEEDS["returns"].required_columns,
              [("R9", "123456789", "MAR", "2023-01-01", "forced")])
    with pytest.raises(FeedError, match="returns/returns_real.csv was not written by the generator"):
        ingest(minimal_feeds, tmp_path / "b.duckdb")
    # a generated file edited afterwards, or the marker's manifest edited to match it
    (minimal_feeds / "returns" / "returns_real.csv").unlink()
    with (minimal_feeds / "returns" / "returns_2022.csv").open("a") as handle:
        handle.write("R8,987654321,MAR,2023-01-01,forced\n")
    with pytest.raises(FeedError, match="returns/returns_2022.csv changed after it was generated"):
        ingest(minimal_feeds, tmp_path / "c.duckdb")
    marker = json.loads((minimal_feeds / SYNTHETIC_MARKER).read_text())
    marker["file_sha256"] = feed_manifest(minimal_feeds)
    (minimal_feeds / SYNTHETIC_MARKER).write_text(json.dumps(marker))
    with pytest.raises(FeedError, match="signature does not match"):
        ingest(minimal_feeds, tmp_path / "d.duckdb")


def test_generated_feeds_verify_and_get_no_public_key(tmp_path, monkeypatch) -> None:
    from mipa.simulate import simulate

    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    raw = tmp_path / "raw"
    simulate(raw, seed=7)
    db = tmp_path / "w.duckdb"
    summary = ingest(raw, db)
    assert summary.synthetic and summary.marker_problem is None
    con = duckdb.connect(str(db), read_only=True)
    source_file, pseudonym = con.execute(
        "select _source_file, person_pseudonym from landing.returns where _source_row = 1 limit 1"
    ).fetchone()
    meta = json.loads(con.execute("select metadata from landing.load_metadata").fetchone()[0])
    con.close()
    assert meta["synthetic"] is True and meta["generator"]["seed"] == 7
    # no public key: hashing the person id under the old public default finds nothing
    person = (raw / source_file).read_text().splitlines()[1].split(",")[1].strip('"')
    assert hmac.new(PUBLIC_KEY_OF_OLD_CODE, person.encode(), hashlib.sha256).hexdigest() != pseudonym
    # a re-run of the generator into its own output is allowed (the marker verifies)
    simulate(raw, seed=7)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_key_is_refused(minimal_feeds, tmp_path, monkeypatch, blank) -> None:
    monkeypatch.setenv("MIPA_PSEUDONYM_KEY", blank)
    with pytest.raises(FeedError, match="MIPA_PSEUDONYM_KEY is set but blank"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


# --- 3. nothing from outside the raw folder, nothing echoed, nothing stored whole -------


def test_symlink_leaving_the_raw_folder_is_refused_unread(minimal_feeds, tmp_path, pseudonym_key) -> None:
    outside = tmp_path / "elsewhere"
    write_csv(outside / "other.csv", FEEDS["returns"].required_columns,
              [("X1", "P1", "MAR", "2023-01-01", "forced")])
    (outside / "passwd").write_text("root:x:0:0:TOPSECRET:/root:/bin/bash\n", encoding="utf-8")
    (minimal_feeds / "returns" / "returns_2023.csv").symlink_to(outside / "other.csv")
    with pytest.raises(FeedError, match=r"returns/returns_2023.csv: is a symbolic link to a file outside") as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    (minimal_feeds / "returns" / "returns_2023.csv").unlink()
    (minimal_feeds / "returns" / "system.csv").symlink_to(outside / "passwd")
    with pytest.raises(FeedError, match="inside_raw_dir") as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert "TOPSECRET" not in str(err.value) and "root:x" not in str(err.value)
    # a link that stays inside the raw folder is an ordinary delivery
    (minimal_feeds / "returns" / "system.csv").unlink()
    write_csv(minimal_feeds / "archive" / "returns_2023.csv", FEEDS["returns"].required_columns,
              [("R5", "P5", "MAR", "2023-01-01", "forced")])
    (minimal_feeds / "returns" / "returns_2023.csv").symlink_to(minimal_feeds / "archive" / "returns_2023.csv")
    assert ingest(minimal_feeds, tmp_path / "w.duckdb").rows("returns") == 3


def test_header_of_a_foreign_file_is_not_echoed_whole(minimal_feeds, tmp_path, pseudonym_key) -> None:
    (minimal_feeds / "returns" / "returns_2023.csv").write_text("S" * 5000 + "\nx\n", encoding="utf-8")
    with pytest.raises(FeedError, match="required_columns") as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert len(str(err.value)) < 600 and "\n" not in str(err.value)


# --- 4. one build per database at a time -------------------------------------------------


def test_second_build_on_the_same_database_stops_clearly(minimal_feeds, tmp_path, pseudonym_key) -> None:
    db = tmp_path / "mipa.duckdb"
    scratch = tmp_path / "mipa.building.duckdb"
    scratch.write_bytes(b"the running build's scratch file")
    lock = os.open(tmp_path / "mipa.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a build in progress holds this
        started = time.monotonic()
        with pytest.raises(BuildError, match="another mipa build is running on .*mipa.duckdb"):
            build(minimal_feeds, db, WAREHOUSE_ONLY)
        assert time.monotonic() - started < 5
    finally:
        os.close(lock)
    assert scratch.read_bytes() == b"the running build's scratch file"  # not deleted as "stale"
    assert not db.exists()


# --- 5. a selective build never replaces the warehouse with a part of it ----------------


def test_selective_build_keeps_the_models_it_does_not_select(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, WAREHOUSE_ONLY)
    tables = "select count(*) from information_schema.tables"
    before = query(db, tables)
    build(minimal_feeds, db, ["--select", "stg_dtenv__returns"])
    assert query(db, tables) == before
    assert query(db, "select count(*) from marts.fct_country_month") == [(240,)]


def test_empty_build_is_refused(minimal_feeds, tmp_path, pseudonym_key) -> None:
    with pytest.raises(BuildError, match="does not accept --empty"):
        build(minimal_feeds, tmp_path / "mipa.duckdb", ["--empty"])


# --- 6. killing mipa ends dbt too --------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(c) for c in text.split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_kill_9_of_mipa_leaves_no_dbt_behind(minimal_feeds, tmp_path, pseudonym_key) -> None:
    env = {**os.environ, "MIPA_RAW_DIR": str(minimal_feeds), "MIPA_DB_PATH": str(tmp_path / "mipa.duckdb")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mipa.cli", "build", "--", *WAREHOUSE_ONLY],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while not children and time.monotonic() < deadline and process.poll() is None:
            children = _children(process.pid)
            time.sleep(0.05)
        assert children, "mipa never started dbt"
        process.send_signal(signal.SIGKILL)  # the parent only, as `kill -9 <pid>`
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(c) for c in children), "dbt kept running after mipa was killed"
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # clean up after the old code
        except ProcessLookupError:
            pass


# --- 7. named errors, no tracebacks, no scratch left -------------------------------------


def _fail_ingest_with(exc: BaseException):
    def fake_ingest(raw_dir: Path, building: Path, second_core_free=None):
        building.write_bytes(b"half a database")
        Path(str(building) + ".wal").write_bytes(b"wal")
        raise exc

    return fake_ingest


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device; free space on"),
        (duckdb.IOException('IO Error: Could not write file "x": No space left on device'), "no space left"),
        (PermissionError(errno.EROFS, "Read-only file system"), "read-only or not writable; make"),
        (duckdb.IOException('IO Error: Cannot open file "x": Permission denied'), "read-only or not writable"),
    ],
)
def test_disk_full_or_read_only_target_is_named_and_scratch_removed(
    minimal_feeds, tmp_path, pseudonym_key, monkeypatch, exc, expected
) -> None:
    db = tmp_path / "mipa.duckdb"
    db.write_bytes(b"last good database")
    monkeypatch.setattr("mipa.build.ingest", _fail_ingest_with(exc))
    with pytest.raises(BuildError) as err:
        build(minimal_feeds, db, WAREHOUSE_ONLY)
    message = str(err.value)
    assert expected in message and "is unchanged" in message and "\n" not in message
    assert db.read_bytes() == b"last good database"
    assert not (tmp_path / "mipa.building.duckdb").exists()
    assert not (tmp_path / "mipa.building.duckdb.wal").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_database_folder_is_named(minimal_feeds, tmp_path, pseudonym_key) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(BuildError, match="read-only or not writable"):
            build(minimal_feeds, folder / "mipa.duckdb", WAREHOUSE_ONLY)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff"])
def test_malformed_synthetic_marker_is_a_named_error(minimal_feeds, tmp_path, monkeypatch, capsys, content) -> None:
    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    (minimal_feeds / SYNTHETIC_MARKER).write_text(content, encoding="latin-1")
    code = main(["build", "--raw-dir", str(minimal_feeds), "--db", str(tmp_path / "mipa.duckdb")])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED" in err and SYNTHETIC_MARKER in err and "Traceback" not in err
    assert not (tmp_path / "mipa.building.duckdb").exists()


def test_malformed_marker_with_a_key_loads_as_real_data(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    (minimal_feeds / SYNTHETIC_MARKER).write_text("{not json", encoding="utf-8")
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert not summary.synthetic and "cannot be read as JSON" in summary.marker_problem
    meta = json.loads(query(tmp_path / "w.duckdb", "select metadata from landing.load_metadata")[0][0])
    assert meta["synthetic"] is False and "synthetic_marker_problem" in meta


# --- 8. the first offending row is the first by number, not by text ---------------------


def test_error_summary_sorts_rows_numerically(tmp_path) -> None:
    db = tmp_path / "failed.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    con.execute(
        """create table marts.fct_quarantined_rows as
           select 'requests' as feed, 'requests/requests_2023.csv' as source_file, cast(i as bigint) as source_row,
                  'unknown_nationality' as quarantine_rule from range(4, 13) t(i)"""
    )
    con.execute(
        """create table marts.fct_feed_reconciliation as
           select 'requests' as feed, 12 as rows_landed, 9 as rows_quarantined, 0 as rows_superseded,
                  0.75 as rejected_share"""
    )
    con.close()
    report = _quarantine_report(db)
    assert "e.g. requests/requests_2023.csv row 4" in report


# --- 9. no row silently appears or disappears -------------------------------------------


def test_files_the_loader_does_not_read_are_listed_with_the_reason(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    rows = "record_id,person_id,nationality,departure_date,departure_type\nR7,P7,MAR,2023-01-01,forced\n"
    (minimal_feeds / "returns" / "returns_2023.csv.gz").write_bytes(gzip.compress(rows.encode()))
    (minimal_feeds / "returns" / "returns_2024.xlsx").write_bytes(b"PK\x03\x04")
    (minimal_feeds / "returns" / "old").mkdir()
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert {f.source_file for f in summary.not_loaded} == {
        "returns/returns_2023.csv.gz", "returns/returns_2024.xlsx", "returns/old"
    }
    listed = dict(
        query(
            tmp_path / "w.duckdb",
            "select source_file, load_status || ': ' || not_loaded_reason from landing.delivery_files "
            "where load_status <> 'loaded'",
        )
    )
    assert listed["returns/returns_2023.csv.gz"].startswith("not_loaded: unsupported file type .csv.gz")
    assert listed["returns/old"].startswith("not_loaded: not a regular file")
    # every entry of every feed folder is in the log
    entries = {f"{p.parent.name}/{p.name}" for feed in FEEDS for p in (minimal_feeds / feed).iterdir()}
    assert entries == {r[0] for r in query(tmp_path / "w.duckdb", "select source_file from landing.delivery_files")}


def test_month_first_dates_contradict_the_declared_order(minimal_feeds, tmp_path, pseudonym_key) -> None:
    write_csv(minimal_feeds / "returns" / "returns_us.csv", FEEDS["returns"].required_columns,
              [("R7", "P7", "MAR", "03-04-2023", "forced"), ("R8", "P8", "MAR", "03-25-2023", "forced")])
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert str(err.value).startswith("returns/returns_us.csv: row 2 departure_date '03-25-2023'")
    assert "rule: date_order" in str(err.value) and "DD-MM-YYYY" in str(err.value)
    # day-first dates, with a day over 12, load
    write_csv(minimal_feeds / "returns" / "returns_us.csv", FEEDS["returns"].required_columns,
              [("R7", "P7", "MAR", "03-04-2023", "forced"), ("R8", "P8", "MAR", "25-03-2023", "forced")])
    assert ingest(minimal_feeds, tmp_path / "w2.duckdb").rows("returns") == 4


def test_declared_missing_values_load_as_null(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    write_csv(minimal_feeds / "returns" / "returns_2023.csv", FEEDS["returns"].required_columns,
              [("R7", "NA", "NA", "2023-01-01", "forced"), ("R8", " n/a ", "Namibia", "N/A", "forced")])
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    rows = query(
        tmp_path / "w.duckdb",
        "select record_id, person_pseudonym, nationality, departure_date from landing.returns "
        "where record_id in ('R7', 'R8') order by record_id",
    )
    assert rows == [("R7", None, None, "2023-01-01"), ("R8", None, "Namibia", None)]


def test_na_nationality_and_huge_fields_end_up_quarantined_and_capped(
    minimal_feeds, tmp_path, pseudonym_key, query
) -> None:
    huge = "X" * 1_000_000
    write_csv(minimal_feeds / "returns" / "returns_2023.csv", FEEDS["returns"].required_columns,
              [("R7", "P7", "NA", "2023-01-01", "forced"), ("R8", "P8", huge, "2023-01-01", "forced"),
               ("R9", "P9", "MAR", "2023-01-01", huge), ("R10", "P10", "NAM", "2023-01-01", "forced")])
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, LOOSE)
    rows = {
        r[0]: r[1:]
        for r in query(
            db,
            "select record_id, quarantine_rule, quarantine_detail, length(nationality_raw) "
            "from marts.fct_quarantined_rows where feed = 'returns'",
        )
    }
    assert rows["R7"][:2] == ("unknown_nationality", "nationality is empty or a declared missing value (NA, N/A, NULL, ...)")
    assert rows["R8"][0] == "unknown_nationality" and rows["R8"][2] < 300 and len(rows["R8"][1]) < 600
    assert rows["R9"][0] == "invalid_departure_type" and len(rows["R9"][1]) < 600
    # NA is no country: only the record delivered as NAM counts for Namibia
    assert query(db, "select sum(forced_departures) from marts.fct_country_month where iso3 = 'NAM'") == [(1,)]


# --- 2. exports: no protected count can be recovered ------------------------------------


def _panel(seed: int = 1, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    confirmations = rng.integers(0, 120, n)
    total_days = rng.integers(1, 400, n) * np.maximum(confirmations, 1) + rng.integers(0, 97, n)
    lead = np.where(confirmations > 0, total_days / np.maximum(confirmations, 1), np.nan)
    forced = rng.integers(0, 40, n)
    independent = rng.integers(0, 40, n)
    return pd.DataFrame({
        "iso3": "MAR",
        "month_start": pd.date_range("2016-01-01", periods=n, freq="D"),
        "requests": rng.integers(0, 200, n), "confirmations": confirmations, "lead_time_days": lead,
        "laissez_passers": rng.integers(0, 30, n), "forced_departures": forced,
        "independent_departures": independent, "unsupervised_departures": rng.integers(0, 30, n),
        "verified_departures": forced + independent, "rejections": rng.integers(0, 30, n),
        "share_rejected": rng.random(n),
    })


def _published(tmp_path: Path, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    from mipa.export import export

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema marts")
    con.register("frame", frame)
    con.execute(
        "create table marts.fct_country_month as select * exclude (rejections, share_rejected) from frame"
    )
    con.execute(
        """create table marts.fct_return_chain_country_month as
           select iso3, month_start, requests, confirmations, rejections, share_rejected, lead_time_days,
                  laissez_passers, forced_departures from frame"""
    )
    con.close()
    export(db, tmp_path / "out")
    return {
        name: pd.read_csv(tmp_path / "out" / f"{name}.csv")
        for name in ("fct_country_month", "fct_return_chain_country_month")
    }


def test_lead_time_times_count_integrality_attack_recovers_nothing(tmp_path) -> None:
    exact = _panel()
    for name, published in _published(tmp_path, exact).items():
        recovered = 0
        for pub, true_n in zip(published.itertuples(), exact["confirmations"], strict=True):
            if pd.isna(pub.confirmations) or pd.isna(pub.lead_time_days) or pub.confirmations == 0:
                continue
            interval = range(max(5, int(pub.confirmations) - 5), int(pub.confirmations) + 5)
            candidates = [n for n in interval if abs(pub.lead_time_days * n - round(pub.lead_time_days * n)) < 1e-6]
            # every count the rounding allows stays possible: the mean tells nothing about it
            assert candidates == list(interval), (name, pub, true_n)
            recovered += len(candidates) == 1
        assert recovered == 0, name


def test_published_flags_never_reveal_an_exact_count(tmp_path) -> None:
    published = _published(tmp_path, _panel())["fct_country_month"]
    flags = published.filter(like="_sdc")
    assert set(np.unique(flags.to_numpy().astype(str))) <= {"rounded", "suppressed", "zero", "missing"}
    # a multiple of ten is flagged like any other rounded count
    out = protect_counts(pd.DataFrame({"n": [10, 14, 15, 20]}), ["n"])
    assert out["n_sdc"].tolist() == ["rounded"] * 4


def test_sums_published_with_their_parts_never_pin_a_protected_count() -> None:
    """verified = forced + independent, each published rounded: for every pair of true
    counts, the pairs consistent with what is published leave each non-zero count at least
    two possible values (secondary disclosure by differencing)."""
    n = 60
    grid = pd.DataFrame([(f, i) for f in range(n) for i in range(n)], columns=["f", "i"])
    grid["v"] = grid["f"] + grid["i"]
    out = protect_counts(grid, ["f", "i", "v"]).astype(object).where(lambda d: d.notna(), None)
    keys = list(zip(out["f"], out["i"], out["v"], strict=True))
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for key, f, i in zip(keys, grid["f"], grid["i"], strict=True):
        groups.setdefault(key, []).append((f, i))
    for key, f, i in zip(keys, grid["f"], grid["i"], strict=True):
        if f >= n - 15 or i >= n - 15:  # the grid's edge would cut intervals short
            continue
        pairs = groups[key]
        for true, possible in ((f, {a for a, _ in pairs}), (i, {b for _, b in pairs}), (f + i, {a + b for a, b in pairs})):
            assert true == 0 or len(possible) >= 2, (f, i, key)
