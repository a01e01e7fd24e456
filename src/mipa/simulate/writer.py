"""Turn generated cases into raw-feed tables and write them as delivery files.

Raw feed contract (one folder per feed, one file per calendar year of the feed's own
date column, every column text):

=========================  ===================================================================
folder / file              columns
=========================  ===================================================================
returns/returns_YYYY       record_id, person_id, nationality, departure_date, departure_type
requests/requests_YYYY     record_id, person_id, nationality, request_date
nationality_confirmations/ record_id, request_id, nationality, decision_date, outcome
  nationality_confirmations_YYYY
laissez_passers/           record_id, person_id, nationality, issue_date
  laissez_passers_YYYY
=========================  ===================================================================

``layout="dutch"`` writes the same rows as a Dutch case-management export might: Dutch
column names, Dutch codes (``Gedwongen``, ``Zelfstandig aantoonbaar``, ``Zonder toezicht``,
``Bevestigd``, ``Afgewezen``), dates ``DD-MM-YYYY``, ``onbekend`` for an empty value and
``;`` between CSV fields, with a ``_mapping.yml`` per feed that reads it as the contract
(:data:`DUTCH_LAYOUT`, :func:`dutch_mapping`).
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mipa.simulate.model import DEPARTURE_TYPES, CountryEvents

FEEDS = {
    "returns": ["record_id", "person_id", "nationality", "departure_date", "departure_type"],
    "requests": ["record_id", "person_id", "nationality", "request_date"],
    "nationality_confirmations": ["record_id", "request_id", "nationality", "decision_date", "outcome"],
    "laissez_passers": ["record_id", "person_id", "nationality", "issue_date"],
}
DATE_COLUMN = {
    "returns": "departure_date",
    "requests": "request_date",
    "nationality_confirmations": "decision_date",
    "laissez_passers": "issue_date",
}
ID_PREFIX = {
    "returns": "RET",
    "requests": "REQ",
    "nationality_confirmations": "NCF",
    "laissez_passers": "LPS",
}
PERSON_PREFIX = "P"
OUTCOME_LABELS = np.array(["rejected", "confirmed"])

LAYOUTS = ("contract", "dutch")
# the Dutch layout: per feed, the export's name of every contract column
DUTCH_COLUMNS = {
    "returns": {"record_id": "Zaaknummer", "person_id": "V-nummer", "nationality": "Nationaliteit",
                "departure_date": "Vertrekdatum", "departure_type": "Soort vertrek"},
    "requests": {"record_id": "Aanvraagnummer", "person_id": "V-nummer", "nationality": "Nationaliteit",
                 "request_date": "Datum aanvraag"},
    "nationality_confirmations": {"record_id": "Besluitnummer", "request_id": "Aanvraagnummer",
                                  "nationality": "Nationaliteit", "decision_date": "Datum besluit",
                                  "outcome": "Uitkomst"},
    "laissez_passers": {"record_id": "LP-nummer", "person_id": "V-nummer", "nationality": "Nationaliteit",
                        "issue_date": "Datum afgifte"},
}
DUTCH_CODES = {
    "departure_type": {"forced": "Gedwongen", "independent": "Zelfstandig aantoonbaar",
                       "unsupervised": "Zonder toezicht"},
    "outcome": {"confirmed": "Bevestigd", "rejected": "Afgewezen"},
}
DUTCH_DATE_FORMAT = "DD-MM-YYYY"
DUTCH_MISSING = "onbekend"
DUTCH_DELIMITER = ";"


def dutch_mapping(feed: str, fmt: str) -> dict:
    """The mapping file (as a dict) that reads the Dutch layout of ``feed`` as the contract."""
    mapping: dict = {"columns": dict(DUTCH_COLUMNS[feed]), "date_format": DUTCH_DATE_FORMAT}
    codes = {
        column: {dutch.lower(): code for code, dutch in table.items()}
        for column, table in DUTCH_CODES.items()
        if column in FEEDS[feed]
    }
    if codes:
        mapping["codes"] = codes
    mapping["missing_values"] = [DUTCH_MISSING]
    if fmt == "csv":
        mapping["delimiter"] = DUTCH_DELIMITER
    return mapping


def id_width(scale: float) -> int:
    """Digits of the zero-padded sequence in record and person ids."""
    return 8 + max(0, int(np.ceil(np.log10(max(scale, 1.0)))))


def make_ids(prefix: str, start: int, n: int, width: int) -> pa.Array:
    numbers = pa.array(np.arange(start, start + n, dtype=np.int64))
    digits = pc.utf8_lpad(pc.cast(numbers, pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def iso_dates(days: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(days.astype(np.int32), type=pa.date32()), pa.string())


def schema(feed: str, layout: str = "contract") -> pa.Schema:
    names = FEEDS[feed] if layout == "contract" else [DUTCH_COLUMNS[feed][c] for c in FEEDS[feed]]
    return pa.schema([(c, pa.string()) for c in names])


def to_dutch(feed: str, table: pa.Table) -> pa.Table:
    """A feed table in the contract layout, written the Dutch way (same rows, same order).

    Only what the contract would read is translated: a value that is no contract code or
    no calendar date (the dirty mode's defects) is written as it is."""
    columns = []
    for name in FEEDS[feed]:
        values = table.column(name).combine_chunks()
        if name in DUTCH_CODES:
            codes = DUTCH_CODES[name]
            index = pc.index_in(values, value_set=pa.array(list(codes), type=pa.string()))
            dutch = pc.take(pa.array(list(codes.values()), type=pa.string()), index)
            values = pc.if_else(pc.is_valid(index), dutch, values)
        if name == DATE_COLUMN[feed]:
            parsed = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True)
            valid = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), values), False)
            values = pc.if_else(valid, pc.strftime(parsed, format="%d-%m-%Y"), values)
        values = pc.if_else(pc.fill_null(pc.equal(values, ""), False), DUTCH_MISSING, values)
        columns.append(values)
    return pa.Table.from_arrays(columns, schema=schema(feed, "dutch"))


@dataclass
class FeedChunk:
    """One feed's rows of one chunk of countries, plus helper arrays kept out of the file."""

    table: pa.Table
    year: np.ndarray  # delivery year of every row
    country: np.ndarray  # index into the chunk's country list
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Counters:
    """Running sequence numbers, so ids stay unique across chunks."""

    width: int
    person: int = 1
    records: dict[str, int] = field(default_factory=lambda: {f: 1 for f in FEEDS})

    def take(self, feed: str, n: int) -> int:
        start = self.records[feed]
        self.records[feed] += n
        return start


def assemble(events: list[CountryEvents], counters: Counters, years_of) -> dict[str, FeedChunk]:
    """Concatenate the cases of a chunk of countries into the four feed tables.

    Rows are sorted by date (then country) and numbered in that order; person ids and
    request links are made global."""
    iso = pa.array([e.iso3 for e in events], type=pa.string())
    person_offset = np.cumsum([0] + [e.n_persons for e in events])[:-1] + counters.person
    counters.person += int(sum(e.n_persons for e in events))

    def cat(attr, dtype=np.int64):
        return np.concatenate([getattr(e, attr) for e in events]).astype(dtype) if events else np.empty(0, dtype)

    def cidx(attr):
        return np.concatenate([np.full(getattr(e, attr).size, i, np.int32) for i, e in enumerate(events)])

    def persons(attr):
        return np.concatenate([getattr(e, attr) + off for e, off in zip(events, person_offset)])

    width = counters.width
    out: dict[str, FeedChunk] = {}

    # requests first: decisions need their record ids
    r_day, r_c, r_p = cat("requests_day"), cidx("requests_day"), persons("requests_person")
    order = np.lexsort((np.arange(r_day.size), r_c, r_day))
    start = counters.take("requests", r_day.size)
    req_number = np.empty(r_day.size, np.int64)
    req_number[order] = start + np.arange(r_day.size)
    out["requests"] = FeedChunk(
        table=pa.table(
            {
                "record_id": make_ids(ID_PREFIX["requests"], start, r_day.size, width),
                "person_id": _person_ids(r_p[order], width),
                "nationality": iso.take(pa.array(r_c[order])),
                "request_date": iso_dates(r_day[order]),
            },
            schema=schema("requests"),
        ),
        year=years_of(r_day[order]),
        country=r_c[order],
        extra={"day": r_day[order]},
    )

    # decisions: decision i of a country belongs to request i of that country
    req_offset = np.cumsum([0] + [e.requests_day.size for e in events])[:-1]
    d_day, d_c, d_out = cat("decisions_day"), cidx("decisions_day"), cat("decisions_outcome", np.int8)
    d_req = np.concatenate([np.arange(e.decisions_day.size) + off for e, off in zip(events, req_offset)])
    order = np.lexsort((np.arange(d_day.size), d_c, d_day))
    start = counters.take("nationality_confirmations", d_day.size)
    prefix = ID_PREFIX["requests"]
    out["nationality_confirmations"] = FeedChunk(
        table=pa.table(
            {
                "record_id": make_ids(ID_PREFIX["nationality_confirmations"], start, d_day.size, width),
                "request_id": _numbered(prefix, req_number[d_req[order]], width),
                "nationality": iso.take(pa.array(d_c[order])),
                "decision_date": iso_dates(d_day[order]),
                "outcome": pa.array(OUTCOME_LABELS).take(pa.array(d_out[order])),
            },
            schema=schema("nationality_confirmations"),
        ),
        year=years_of(d_day[order]),
        country=d_c[order],
        extra={"day": d_day[order], "request_day": r_day[d_req[order]]},
    )

    for feed, day_attr, person_attr in (
        ("laissez_passers", "lp_day", "lp_person"),
        ("returns", "returns_day", "returns_person"),
    ):
        day, c, p = cat(day_attr), cidx(day_attr), persons(person_attr)
        order = np.lexsort((np.arange(day.size), c, day))
        start = counters.take(feed, day.size)
        columns = {
            "record_id": make_ids(ID_PREFIX[feed], start, day.size, width),
            "person_id": _person_ids(p[order], width),
            "nationality": iso.take(pa.array(c[order])),
            DATE_COLUMN[feed]: iso_dates(day[order]),
        }
        if feed == "returns":
            columns["departure_type"] = pa.array(DEPARTURE_TYPES).take(pa.array(cat("returns_type", np.int8)[order]))
        out[feed] = FeedChunk(
            table=pa.table(columns, schema=schema(feed)),
            year=years_of(day[order]),
            country=c[order],
            extra={"day": day[order]},
        )
    return out


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers.astype(np.int64)), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _person_ids(numbers: np.ndarray, width: int) -> pa.Array:
    return _numbered(PERSON_PREFIX, numbers, width)


class FeedWriter:
    """Delivery files per feed and year; CSV or Parquet, opened lazily, streamed."""

    def __init__(self, out_dir: Path, fmt: str, layout: str = "contract"):
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"unknown format {fmt!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.layout = layout
        self._sinks: dict[tuple[str, int], tuple[object, object]] = {}
        self.rows: dict[str, int] = {}  # relative file path -> rows
        self.labels: dict[str, np.ndarray] = {}  # relative file path -> rows per dirty label

    def path(self, feed: str, year: int) -> Path:
        return self.out_dir / feed / f"{feed}_{year}.{self.fmt}"

    def relpath(self, feed: str, year: int) -> str:
        return f"{feed}/{feed}_{year}.{self.fmt}"

    def write(self, feed: str, table: pa.Table, year: np.ndarray, labels: np.ndarray | None = None) -> None:
        if table.num_rows == 0:
            return
        if labels is None:
            labels = np.zeros(table.num_rows, np.int8)
        if self.layout == "dutch":
            table = to_dutch(feed, table)
        order = np.argsort(year, kind="stable")
        years = year[order]
        bounds = np.flatnonzero(np.diff(years)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [years.size]])
        for s, e in zip(starts, ends):
            y = int(years[s])
            part = table.take(pa.array(order[s:e]))
            self._sink(feed, y).write_table(part)
            key = self.relpath(feed, y)
            self.rows[key] = self.rows.get(key, 0) + part.num_rows
            tally = np.bincount(labels[order[s:e]].astype(np.int64), minlength=16)
            self.labels[key] = self.labels.get(key, np.zeros(16, np.int64)) + tally

    def _sink(self, feed: str, year: int):
        key = (feed, year)
        if key not in self._sinks:
            path = self.path(feed, year)
            path.parent.mkdir(parents=True, exist_ok=True)
            layout_schema = schema(feed, self.layout)
            if self.fmt == "csv":
                fh = open(path, "wb")
                delimiter = DUTCH_DELIMITER if self.layout == "dutch" else ","
                options = pacsv.WriteOptions(quoting_style="needed", delimiter=delimiter)
                writer = pacsv.CSVWriter(fh, layout_schema, write_options=options)
            else:
                fh = None
                writer = pq.ParquetWriter(path, layout_schema, compression="zstd")
            self._sinks[key] = (writer, fh)
        return self._sinks[key][0]

    def close(self) -> None:
        for writer, fh in self._sinks.values():
            writer.close()
            if fh is not None:
                fh.close()
        self._sinks.clear()

    def redeliver(self, relpath: str, new_relpath: str) -> int:
        """Copy a closed delivery file under a new name; returns its rows."""
        shutil.copyfile(self.out_dir / relpath, self.out_dir / new_relpath)
        self.rows[new_relpath] = self.rows[relpath]
        self.labels[new_relpath] = self.labels[relpath].copy()
        return self.rows[relpath]


def write_truth(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["iso3", "outcome", "partnership_start_month", "planted_effect"])
    for r in rows:
        writer.writerow([r["iso3"], r["outcome"], r["partnership_start_month"], f"{r['planted_effect']:.4f}"])
    path.write_text(buf.getvalue(), encoding="utf-8")
