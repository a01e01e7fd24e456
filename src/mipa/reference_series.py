"""Optional reference series loaded beside the feeds: the monthly air passengers of the
annex's Figure A1 (the COVID-19 dip in travel to and from the partner regions).

The series is not public in a form mipa can download, so it is optional: a CSV with the
columns ``month`` (``YYYY-MM`` or ``YYYY-MM-DD``) and ``passengers`` at
``<raw dir>/reference/air_passengers.csv``, or wherever ``MIPA_AIR_PASSENGERS_CSV``
points. The load step lands it as text in ``landing.air_passengers`` (an empty table when
there is no file); dbt stages it (``stg_reference__air_passengers``) into the mart
``fct_air_passengers`` that the report draws Figure A1 from.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import duckdb

AIR_PASSENGERS_FILE = Path("reference") / "air_passengers.csv"
AIR_PASSENGERS_ENV = "MIPA_AIR_PASSENGERS_CSV"
AIR_PASSENGERS_COLUMNS = ("month", "passengers")
LANDING_TABLE = "landing.air_passengers"


class ReferenceFileError(ValueError):
    """A reference file that cannot be read as documented (file, column, rule)."""


def air_passengers_path(raw_dir: Path) -> Path:
    """Where the series is read from: ``MIPA_AIR_PASSENGERS_CSV``, else the raw folder's
    ``reference/air_passengers.csv``."""
    given = os.environ.get(AIR_PASSENGERS_ENV, "").strip()
    return Path(given) if given else Path(raw_dir) / AIR_PASSENGERS_FILE


def land_air_passengers(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> int:
    """Land the series as text (month, passengers, source_file, row_number) into
    ``landing.air_passengers``; returns the rows landed (0 without a file)."""
    con.execute(f"create or replace table {LANDING_TABLE} (month varchar, passengers varchar, "
                "source_file varchar, row_number bigint)")
    path = air_passengers_path(raw_dir)
    if not path.is_file():
        return 0
    name = path.name if os.environ.get(AIR_PASSENGERS_ENV, "").strip() else AIR_PASSENGERS_FILE.as_posix()
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in AIR_PASSENGERS_COLUMNS if c not in header]
            if missing:
                raise ReferenceFileError(
                    f"{name}: missing column(s) {', '.join(missing)} (rule: air_passengers_columns; "
                    f"expected {', '.join(AIR_PASSENGERS_COLUMNS)}, found {', '.join(header[:8]) or 'no header'})")
            at = [header.index(c) for c in AIR_PASSENGERS_COLUMNS]
            rows = [(row[at[0]] if len(row) > at[0] else None, row[at[1]] if len(row) > at[1] else None, name, i)
                    for i, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise ReferenceFileError(f"{name}: not UTF-8 text (rule: utf8; byte {exc.start})") from None
    if rows:
        con.executemany(f"insert into {LANDING_TABLE} values (?, ?, ?, ?)", rows)
    return len(rows)
