"""Load raw feed files into the ``landing`` schema of a DuckDB database.

This is the extract-load step before dbt: it reads every delivery file as text, checks
the file-level contract (folder present, file readable, required columns present),
replaces person identifiers by keyed-hash pseudonyms, and records for each row the
file it came from and its row number, so every later rule can name file and row.
Row-level rules (dates, nationality, duplicates, ...) are dbt's job: rows that break
them are quarantined there, not dropped here.

Every entry of a feed folder is loaded or listed in ``landing.delivery_files`` with the
reason it was not; links that leave the raw folder stop the load unread; the contract's
missing values (``NA``, ``N/A``, ...) load as NULL; a file whose dates contradict the
declared day-first order stops the load. The person-id key is required unless the feeds
carry the generator's signed marker (the folder scan, the marker, the key and the keyed hash:
:mod:`mipa.deliveries`).

A feed folder's mapping file (``_mapping.yml``, :mod:`mipa.mapping`) translates an export's
own column names, date format, codes and missing values into the contract while each
file is loaded; it is listed in ``landing.delivery_files`` with status ``mapping``.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mipa.contract import (
    DATE_ORDER,
    FEEDS,
    MAPPING_FILE,
    MISSING_VALUES,
    FeedSpec,
)
from mipa.deliveries import (
    FeedEntry,
    FeedError,
    pseudonym_sql,
    resolve_pseudonym_key,
    scan_feed,
    verify_synthetic_marker,
)
from mipa.mapping import FeedMapping, MappingError, load_mapping
from mipa.reference_series import ReferenceFileError, land_air_passengers

LANDING_SCHEMA = "landing"
# rows of a delivery file read, checked and inserted at a time
BATCH_ROWS = 100_000
# feeds loaded at once (each keeps about one core busy; the machines have two)
LOAD_THREADS = 2


@dataclass
class FileLoad:
    feed: str
    source_file: str
    rows: int
    status: str  # 'loaded' | 'empty_file' | 'not_loaded' | 'mapping'
    sha256: str | None
    identical_to: str | None = None
    reason: str | None = None  # why a file was not loaded


@dataclass
class IngestSummary:
    raw_dir: Path
    synthetic: bool
    files: list[FileLoad] = field(default_factory=list)
    marker_problem: str | None = None  # why a _synthetic.json present did not verify
    mappings: list[FileLoad] = field(default_factory=list)  # the feeds' mapping files, applied

    def rows(self, feed: str) -> int:
        return sum(f.rows for f in self.files if f.feed == feed)

    @property
    def not_loaded(self) -> list[FileLoad]:
        return [f for f in self.files if f.status == "not_loaded"]


def _csv_header(path: Path, delimiter: str = ",") -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def _relation_sql(path: Path, delimiter: str = ",") -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}')"
    # The dialect is the contract's (comma unless a mapping says otherwise, double quotes),
    # not sniffed: a sniffer guesses around a broken row instead of reporting it. Every
    # column is read as text; types are checked row by row in dbt, so a bad value
    # quarantines one row instead of the file.
    columns = ", ".join(
        "'{}': 'VARCHAR'".format(name.replace("'", "''")) for name in _csv_header(path, delimiter)
    )
    delim = delimiter.replace("'", "''")
    return (
        f"read_csv('{quoted}', header = true, auto_detect = false, columns = {{{columns}}}, "
        f"delim = '{delim}', quote = '\"', escape = '\"', strict_mode = true)"
    )


def _csv_error(exc: BaseException, source_file: str) -> FeedError:
    """DuckDB reports file lines (header = line 1); the contract counts data rows."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    detail = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and "Original Line" not in ln]
    where = f"row {int(line.group(1)) - 1} " if line else ""
    reason = detail[0] if detail else _first_line(exc)
    return FeedError(f"{source_file}: {where}cannot be parsed as CSV (rule: csv_format): {reason}")


def _shown_columns(present: list[str]) -> str:
    """Column names for a message, capped: a file that is no delivery must not be echoed."""
    names = [n if len(n) <= 40 else n[:40] + "..." for n in present[:12]]
    more = f" and {len(present) - 12} more" if len(present) > 12 else ""
    return (", ".join(names) + more) if names else "none"


# a non-ISO date: first field, second field, four-digit year (any of - / . between)
_DAY_FIRST_LIKE = r"^\s*(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})(?:[^0-9]|$)"


def check_date_order(table: pa.Table, column: str, source_file: str, first_row: int = 1) -> None:
    """Stop on a date that contradicts the contract's day-first order (``DATE_ORDER``).

    ``03-25-2023`` cannot be day-first; in the same file ``03-04-2023`` would then be read
    as 3 April instead of 4 March. One such row shows the export is month-first. ``first_row``:
    the file's row number of the table's first row (a file is checked batch by batch)."""
    values = table.column(column).combine_chunks()
    parts = pc.extract_regex(values, _DAY_FIRST_LIKE)
    day = pc.cast(pc.struct_field(parts, "a"), pa.int32())
    month = pc.cast(pc.struct_field(parts, "b"), pa.int32())
    contradicts = pc.and_(pc.greater(month, 12), pc.less_equal(day, 12))
    index = pc.index(pc.fill_null(contradicts, False), True).as_py()
    if index is None or index < 0:
        return
    value = values[index].as_py().strip()[:20]
    raise FeedError(
        f"{source_file}: row {index + first_row} {column} '{value}' has {int(month[index].as_py())} in the month "
        f"position of the declared date order {DATE_ORDER} (rule: date_order); the file looks "
        "month-first, so its other dates would be read with day and month swapped. Re-export it with "
        "ISO dates (YYYY-MM-DD) or day-first."
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_utf8(path: Path, source_file: str) -> None:
    """Stop on the first byte sequence that is not UTF-8, naming the data row.

    Checked before parsing so the message points at the row to fix, not at a parser state.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: exc.start].count(b"\n")
                raise FeedError(
                    f"{source_file}: row {line - 1} is not valid UTF-8 (rule: utf8_encoding; "
                    f"byte 0x{chunk[exc.start]:02x}); re-export the file as UTF-8"
                ) from exc
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise FeedError(
                f"{source_file}: file ends inside a multi-byte character (rule: utf8_encoding)"
            ) from exc


def _create_landing_table(con: duckdb.DuckDBPyConnection, spec: FeedSpec) -> None:
    columns = [
        "person_pseudonym varchar" if c == spec.person_column else f"{c} varchar"
        for c in spec.required_columns
    ]
    columns += ["_source_file varchar", "_source_row bigint", "_file_order integer"]
    con.execute(f"create or replace table {LANDING_SCHEMA}.{spec.name} ({', '.join(columns)})")


def _load_file(
    con: duckdb.DuckDBPyConnection,
    spec: FeedSpec,
    path: Path,
    source_file: str,
    file_order: int,
    key: bytes,
    mapping: FeedMapping | None = None,
) -> int:
    if path.suffix.lower() == ".csv":
        check_utf8(path, source_file)
    relation = _relation_sql(path, mapping.delimiter if mapping else ",")
    try:
        present = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
    except duckdb.Error as exc:
        raise FeedError(
            f"{source_file}: file cannot be read (rule: readable_file): {_first_line(exc)}"
        ) from exc
    # column names are matched case-insensitively and without surrounding spaces
    by_key = {c.strip().lower(): c for c in present}
    export = {c: (mapping.export_column(c) if mapping else c) for c in spec.required_columns}
    missing = [c for c in spec.required_columns if export[c].strip().lower() not in by_key]
    if missing:
        hint = ""
        if len(present) == 1 and ";" in present[0]:
            hint = f"; the header holds ';': set delimiter: ';' in {spec.name}/{MAPPING_FILE}"
        if mapping and any(c in mapping.columns for c in missing):
            names = ", ".join(f"{export[c]} (for {c})" for c in missing)
            raise FeedError(
                f"{source_file}: missing column(s) {names} named in {mapping.source} (rule: mapping_columns; "
                f"found {_shown_columns(present)}){hint}"
            )
        mapped = f"; if the export names them otherwise, map them in {spec.name}/{MAPPING_FILE}" if not hint else ""
        raise FeedError(
            f"{source_file}: missing required column(s) {', '.join(export[c] for c in missing)} "
            f"(rule: required_columns; feed '{spec.name}' needs {', '.join(spec.required_columns)}; "
            f"found {_shown_columns(present)}){hint}{mapped}"
        )
    # values of the contract's missing-value list (NA, N/A, NULL, ...) and of the feed's
    # mapping load as NULL
    declared = MISSING_VALUES + (mapping.missing_values if mapping else ())
    missing_list = ", ".join("'" + v.replace("'", "''") + "'" for v in dict.fromkeys(declared))
    column_sql = {c: '"' + by_key[export[c].strip().lower()].replace('"', '""') + '"' for c in spec.required_columns}
    select_list = ", ".join(
        f"case when lower(trim(cast({column_sql[c]} as varchar))) in ({missing_list}) then null "
        f"else cast({column_sql[c]} as varchar) end as {c}"
        for c in spec.required_columns
    )
    def unreadable(exc: BaseException) -> FeedError:
        if path.suffix.lower() == ".csv":
            return _csv_error(exc, source_file)
        return FeedError(f"{source_file}: file cannot be read (rule: readable_file): {_first_line(exc)}")

    columns = "*"
    if spec.person_column is not None:
        person = f'"{spec.person_column}"'
        columns = f"* exclude ({person}), {pseudonym_sql(person, key)} as person_pseudonym"
    # the file streams in batches, so the load's memory does not grow with a file's size;
    # the batches are inserted through a second connection while the read stays open
    try:
        batches = con.execute(f"select {select_list} from {relation}").fetch_record_batch(BATCH_ROWS)
    except duckdb.Error as exc:
        raise unreadable(exc) from exc
    writer = con.cursor()
    n = 0
    try:
        while True:
            try:
                batch = batches.read_next_batch()
            except StopIteration:
                break
            except (duckdb.Error, OSError) as exc:  # a read error met in a later batch
                raise unreadable(exc) from exc
            table = pa.Table.from_batches([batch])
            if mapping is not None:
                try:
                    table = mapping.translate(table, source_file, first_row=n + 1)
                except MappingError as exc:
                    raise FeedError(str(exc)) from exc
            if mapping is None or mapping.date_format is None:
                check_date_order(table, spec.date_column, source_file, first_row=n + 1)
            rows = table.num_rows
            table = table.append_column("_source_file", pa.repeat(pa.scalar(source_file, pa.string()), rows))
            # row numbers count data rows from 1, header excluded, in file order
            table = table.append_column("_source_row", pa.array(np.arange(n + 1, n + rows + 1, dtype=np.int64)))
            table = table.append_column("_file_order", pa.repeat(pa.scalar(file_order, pa.int32()), rows))
            writer.register("_incoming", table)
            try:
                writer.execute(f"insert into {LANDING_SCHEMA}.{spec.name} by name select {columns} from _incoming")
            finally:
                writer.unregister("_incoming")
            n += rows
    finally:
        writer.close()
    return n


def _load_feed(
    con: duckdb.DuckDBPyConnection, spec: FeedSpec, entries: list[FeedEntry], mapping: FeedMapping | None,
    key: bytes,
) -> tuple[list[FileLoad], list[FileLoad]]:
    """Load one feed's delivery files, in name order, into ``landing.<feed>`` on a cursor of
    its own; returns the file log and the mapping file's entry."""
    files: list[FileLoad] = []
    mappings: list[FileLoad] = []
    cursor = con.cursor()
    try:
        _create_landing_table(cursor, spec)
        seen: dict[str, str] = {}
        order = 0
        for entry in entries:
            if entry.is_mapping:
                loads = sum(1 for e in entries if e.loadable)
                mappings.append(
                    FileLoad(
                        spec.name, entry.source_file, 0, "mapping", entry.sha256,
                        reason=f"the feed's mapping file, applied to its {loads} delivery file(s); not a delivery",
                    )
                )
                continue
            if not entry.loadable:
                files.append(FileLoad(spec.name, entry.source_file, 0, "not_loaded", entry.sha256, reason=entry.reason))
                continue
            order += 1
            if entry.path.stat().st_size == 0:
                files.append(FileLoad(spec.name, entry.source_file, 0, "empty_file", entry.sha256))
                continue
            rows = _load_file(cursor, spec, entry.path, entry.source_file, order, key, mapping)
            files.append(FileLoad(spec.name, entry.source_file, rows, "loaded", entry.sha256, seen.get(entry.sha256)))
            seen.setdefault(entry.sha256, entry.source_file)
    finally:
        cursor.close()
    return files, mappings


def _load_feeds(
    con: duckdb.DuckDBPyConnection, entries: dict[str, list[FeedEntry]], mappings: dict[str, FeedMapping],
    key: bytes, second_core_free: Callable[[], bool] | None,
) -> list[tuple[list[FileLoad], list[FileLoad]]]:
    """:func:`_load_feed` for every feed, in feed order, up to :data:`LOAD_THREADS` feeds at
    a time: a file's read, checks and insert keep one core busy, so a second feed loads
    beside the first once ``second_core_free()`` (polled) says so. Each feed's rows go in
    file order into its own table, so the tables do not depend on it. After a failure no
    further feed starts; the error raised is the first failed feed's in feed order (every
    feed before it had started, so this does not depend on timing either)."""
    pending = list(FEEDS.values())
    lock = threading.Lock()
    done: dict[str, tuple[list[FileLoad], list[FileLoad]]] = {}
    failed: dict[str, BaseException] = {}

    def worker() -> None:
        while True:
            with lock:
                if failed or not pending:
                    return
                spec = pending.pop(0)
            try:
                done[spec.name] = _load_feed(con, spec, entries[spec.name], mappings.get(spec.name), key)
            except BaseException as exc:  # re-raised below, in feed order
                with lock:
                    failed[spec.name] = exc

    free = second_core_free or (lambda: True)
    with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
        running = [pool.submit(worker)]
        while len(running) < LOAD_THREADS and not all(r.done() for r in running):
            if free():
                running.append(pool.submit(worker))
            else:
                wait(running, timeout=0.05)
        wait(running)
    for spec in FEEDS.values():
        if spec.name in failed:
            raise failed[spec.name]
    return [done[spec.name] for spec in FEEDS.values()]


def ingest(raw_dir: Path, db_path: Path, second_core_free: Callable[[], bool] | None = None) -> IngestSummary:
    """Load all feeds of ``raw_dir`` into ``landing.<feed>`` tables of ``db_path``.

    Raises :class:`FeedError` naming the file and rule when a delivery cannot be read.
    ``second_core_free``: whether a second feed may load beside the first now (the build
    passes its dbt parse's end: never more busy processes than cores); default always.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FeedError(f"{raw_dir}: raw directory does not exist (set MIPA_RAW_DIR).")
    entries = {name: scan_feed(raw_dir, name) for name in FEEDS}
    found = {e.source_file: e.sha256 for feed_entries in entries.values() for e in feed_entries}
    mappings = load_mappings(entries)
    synthetic, marker, problem = verify_synthetic_marker(raw_dir, found)
    key = resolve_pseudonym_key(raw_dir, synthetic, problem)
    summary = IngestSummary(raw_dir=raw_dir, synthetic=synthetic, marker_problem=problem)
    con = duckdb.connect(str(db_path))
    # bounded memory at any volume (as the dbt profile): DuckDB spills to disk beyond it
    limit = os.environ.get("MIPA_DUCKDB_MEMORY_LIMIT", "400MB").strip()
    size = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", limit, flags=re.IGNORECASE)
    if size is None:
        raise FeedError(f"MIPA_DUCKDB_MEMORY_LIMIT={limit!r} (rule: memory_limit): give a size such as 1GB or 512MB")
    # the load only streams rows into tables: half of dbt's limit is as fast and keeps the
    # build's peak lower (100x: 22 s either way, peak RSS 814 -> 537 MiB)
    con.execute(f"set memory_limit = '{float(size.group(1)) / 2:g}{size.group(2)}'")
    try:
        con.execute(f"create schema if not exists {LANDING_SCHEMA}")
        con.execute("set threads = 1")  # one core per feed being loaded (_load_feeds)
        for files, feed_mappings in _load_feeds(con, entries, mappings, key, second_core_free):
            summary.files.extend(files)
            summary.mappings.extend(feed_mappings)
        try:  # the optional air-passenger series of Figure A1 (landing.air_passengers, empty without it)
            land_air_passengers(con, raw_dir)
        except ReferenceFileError as exc:
            raise FeedError(str(exc)) from None
        _write_file_log(con, summary, marker if synthetic else None)
    finally:
        con.close()
    return summary


def load_mappings(entries: dict[str, list[FeedEntry]]) -> dict[str, FeedMapping]:
    """The validated mapping of every feed that has one; an invalid one stops the load."""
    out = {}
    for feed, feed_entries in entries.items():
        for entry in feed_entries:
            if entry.is_mapping:
                try:
                    out[feed] = load_mapping(entry.path, feed)
                except MappingError as exc:
                    raise FeedError(str(exc)) from exc
    return out


def _write_file_log(con: duckdb.DuckDBPyConnection, summary: IngestSummary, marker: dict | None) -> None:
    con.execute(
        f"""create or replace table {LANDING_SCHEMA}.delivery_files (
            feed varchar, source_file varchar, file_sha256 varchar, rows_loaded bigint,
            load_status varchar, identical_to_file varchar, not_loaded_reason varchar)"""
    )
    logged = summary.files + summary.mappings
    if logged:
        con.executemany(
            f"insert into {LANDING_SCHEMA}.delivery_files values (?, ?, ?, ?, ?, ?, ?)",
            [(f.feed, f.source_file, f.sha256, f.rows, f.status, f.identical_to, f.reason) for f in logged],
        )
    meta: dict = {"synthetic": summary.synthetic}
    if marker is not None:
        meta["generator"] = {k: v for k, v in marker.items() if k not in ("file_sha256", "signature")}
    if summary.marker_problem:
        meta["synthetic_marker_problem"] = summary.marker_problem
    con.execute(f"create or replace table {LANDING_SCHEMA}.load_metadata (metadata json)")
    con.execute(
        f"insert into {LANDING_SCHEMA}.load_metadata values (?)", [json.dumps(meta, sort_keys=True)]
    )
