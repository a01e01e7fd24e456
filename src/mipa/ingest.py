"""Load raw feed files into the ``landing`` schema of a DuckDB database.

This is the extract-load step before dbt: it reads every delivery file as text, checks
the file-level contract (folder present, file readable, required columns present),
replaces person identifiers by keyed-hash pseudonyms, and records for each row the
file it came from and its row number, so every later rule can name file and row.
Row-level rules (dates, nationality, duplicates, ...) are dbt's job: rows that break
them are quarantined there, not dropped here.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from mipa.contract import DATA_FILE_SUFFIXES, FEEDS, FeedSpec

LANDING_SCHEMA = "landing"
SYNTHETIC_MARKER = "_synthetic.json"
# Only for feeds the generator wrote (marked by SYNTHETIC_MARKER): synthetic person ids
# identify nobody, so a public default key is harmless there and nowhere else.
SYNTHETIC_DEFAULT_KEY = "mipa-synthetic-feeds-only"


class FeedError(Exception):
    """A delivery breaks the file-level contract: the build stops with this message."""


@dataclass
class FileLoad:
    feed: str
    source_file: str
    rows: int
    status: str  # 'loaded' | 'empty_file'
    sha256: str
    identical_to: str | None = None


@dataclass
class IngestSummary:
    raw_dir: Path
    synthetic: bool
    files: list[FileLoad] = field(default_factory=list)

    def rows(self, feed: str) -> int:
        return sum(f.rows for f in self.files if f.feed == feed)


def resolve_pseudonym_key(raw_dir: Path) -> bytes:
    """Key for the person-id hash: env ``MIPA_PSEUDONYM_KEY``; a default only for synthetic feeds."""
    key = os.environ.get("MIPA_PSEUDONYM_KEY", "")
    if key:
        return key.encode("utf-8")
    if (raw_dir / SYNTHETIC_MARKER).exists():
        return SYNTHETIC_DEFAULT_KEY.encode("utf-8")
    raise FeedError(
        f"{raw_dir}: MIPA_PSEUDONYM_KEY is not set. Real feeds hold person identifiers, which "
        "are replaced by a keyed hash on load; set the key in the environment "
        "(keep it secret and stable across runs, or person links between runs break)."
    )


def pseudonymise(values: pa.Array, key: bytes) -> pa.Array:
    """HMAC-SHA256(key, person_id) as hex, NULL kept NULL (RFC 2104 keyed hash).

    A keyed hash keeps one person's records linkable across feeds while the original
    identifier cannot be recovered or re-derived without the key.
    """
    out = [
        None if v is None else hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()
        for v in values.to_pylist()
    ]
    return pa.array(out, type=pa.string())


def discover_files(raw_dir: Path, feed: str) -> list[Path]:
    """Delivery files of one feed in name order: later names are later deliveries."""
    folder = raw_dir / feed
    if not folder.is_dir():
        raise FeedError(
            f"{folder}: feed folder '{feed}' is missing (rule: feed_folder_present). "
            f"Expected one folder per feed under {raw_dir}: {', '.join(FEEDS)}."
        )
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_FILE_SUFFIXES
    )
    if not files:
        raise FeedError(
            f"{folder}: no .csv or .parquet files in feed folder '{feed}' (rule: feed_has_files)."
        )
    return files


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _relation_sql(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}')"
    # The dialect is the contract's (comma, double quotes), not sniffed: a sniffer guesses
    # around a broken row instead of reporting it. Every column is read as text; types are
    # checked row by row in dbt, so a bad value quarantines one row instead of the file.
    columns = ", ".join(
        "'{}': 'VARCHAR'".format(name.replace("'", "''")) for name in _csv_header(path)
    )
    return (
        f"read_csv('{quoted}', header = true, auto_detect = false, columns = {{{columns}}}, "
        "delim = ',', quote = '\"', escape = '\"', strict_mode = true)"
    )


def _csv_error(exc: duckdb.Error, source_file: str) -> FeedError:
    """DuckDB reports file lines (header = line 1); the contract counts data rows."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    detail = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and "Original Line" not in ln]
    where = f"row {int(line.group(1)) - 1} " if line else ""
    reason = detail[0] if detail else _first_line(exc)
    return FeedError(f"{source_file}: {where}cannot be parsed as CSV (rule: csv_format): {reason}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
) -> int:
    if path.suffix.lower() == ".csv":
        check_utf8(path, source_file)
    relation = _relation_sql(path)
    try:
        present = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
    except duckdb.Error as exc:
        raise FeedError(
            f"{source_file}: file cannot be read (rule: readable_file): {_first_line(exc)}"
        ) from exc
    # column names are matched case-insensitively and without surrounding spaces
    by_key = {c.strip().lower(): c for c in present}
    missing = [c for c in spec.required_columns if c not in by_key]
    if missing:
        raise FeedError(
            f"{source_file}: missing required column(s) {', '.join(missing)} "
            f"(rule: required_columns; feed '{spec.name}' needs {', '.join(spec.required_columns)}; "
            f"found {', '.join(present) or 'none'})"
        )
    select_list = ", ".join(
        f'cast("{by_key[c]}" as varchar) as {c}' for c in spec.required_columns
    )
    try:
        table = con.execute(f"select {select_list} from {relation}").fetch_arrow_table()
    except duckdb.Error as exc:
        if path.suffix.lower() == ".csv":
            raise _csv_error(exc, source_file) from exc
        raise FeedError(
            f"{source_file}: file cannot be read (rule: readable_file): {_first_line(exc)}"
        ) from exc
    if spec.person_column is not None:
        index = table.schema.get_field_index(spec.person_column)
        hashed = pseudonymise(table.column(index).combine_chunks(), key)
        table = table.set_column(index, "person_pseudonym", hashed)
    n = table.num_rows
    table = table.append_column("_source_file", pa.array([source_file] * n, type=pa.string()))
    # row numbers count data rows from 1, header excluded, in file order
    table = table.append_column("_source_row", pa.array(range(1, n + 1), type=pa.int64()))
    table = table.append_column("_file_order", pa.array([file_order] * n, type=pa.int32()))
    con.register("_incoming", table)
    try:
        con.execute(f"insert into {LANDING_SCHEMA}.{spec.name} by name select * from _incoming")
    finally:
        con.unregister("_incoming")
    return n


def ingest(raw_dir: Path, db_path: Path) -> IngestSummary:
    """Load all feeds of ``raw_dir`` into ``landing.<feed>`` tables of ``db_path``.

    Raises :class:`FeedError` naming the file and rule when a delivery cannot be read.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FeedError(f"{raw_dir}: raw directory does not exist (set MIPA_RAW_DIR).")
    key = resolve_pseudonym_key(raw_dir)
    summary = IngestSummary(raw_dir=raw_dir, synthetic=(raw_dir / SYNTHETIC_MARKER).exists())
    con = duckdb.connect(str(db_path))
    try:
        con.execute(f"create schema if not exists {LANDING_SCHEMA}")
        for spec in FEEDS.values():
            _create_landing_table(con, spec)
            seen: dict[str, str] = {}
            for order, path in enumerate(discover_files(raw_dir, spec.name), start=1):
                source_file = f"{spec.name}/{path.name}"
                sha = _file_sha256(path)
                if path.stat().st_size == 0:
                    summary.files.append(FileLoad(spec.name, source_file, 0, "empty_file", sha))
                    continue
                rows = _load_file(con, spec, path, source_file, order, key)
                summary.files.append(
                    FileLoad(spec.name, source_file, rows, "loaded", sha, seen.get(sha))
                )
                seen.setdefault(sha, source_file)
        _write_file_log(con, summary)
    finally:
        con.close()
    return summary


def _write_file_log(con: duckdb.DuckDBPyConnection, summary: IngestSummary) -> None:
    con.execute(
        f"""create or replace table {LANDING_SCHEMA}.delivery_files (
            feed varchar, source_file varchar, file_sha256 varchar, rows_loaded bigint,
            load_status varchar, identical_to_file varchar)"""
    )
    if summary.files:
        con.executemany(
            f"insert into {LANDING_SCHEMA}.delivery_files values (?, ?, ?, ?, ?, ?)",
            [
                (f.feed, f.source_file, f.sha256, f.rows, f.status, f.identical_to)
                for f in summary.files
            ],
        )
    meta = {"synthetic": summary.synthetic}
    marker = summary.raw_dir / SYNTHETIC_MARKER
    if marker.exists():
        meta["generator"] = json.loads(marker.read_text(encoding="utf-8"))
    con.execute(f"create or replace table {LANDING_SCHEMA}.load_metadata (metadata json)")
    con.execute(
        f"insert into {LANDING_SCHEMA}.load_metadata values (?)", [json.dumps(meta, sort_keys=True)]
    )
