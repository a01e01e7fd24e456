"""Mapping files: an export with its own column names, date format, codes and missing
values, read as the raw feed contract without editing code or SQL.

A feed folder may hold one mapping file, ``_mapping.yml`` (``mipa.contract.MAPPING_FILE``),
next to its deliveries. It is a translation applied while each delivery file is loaded, so
``landing.<feed>`` holds the contract's columns and codes and everything downstream (dbt,
quality checks, estimation) is unchanged::

    # returns/_mapping.yml
    columns:                      # contract column: column of the export
      record_id: zaaknummer
      person_id: v_nummer
      nationality: nationaliteit
      departure_date: vertrekdatum
      departure_type: vertreksoort
    date_format: DD-MM-YYYY       # field order of the export's dates
    codes:
      departure_type:             # export value: contract code
        gedwongen: forced
        zelfstandig aantoonbaar: independent
        zonder toezicht: unsupervised
    missing_values: [onbekend]    # also "no value", besides the contract's list
    delimiter: ";"                # CSV field separator (default ",")

Every key is optional; a column not listed keeps its contract name. The file is validated
before anything is loaded, and a mapping that does not fit a delivery (a mapped column
missing, a date that contradicts the declared format) stops the load with one line naming
the delivery file, the column and the rule. Row-level problems stay dbt's: a code the
mapping does not list is kept as delivered, so it passes only if it is a contract code and
is otherwise quarantined (``invalid_departure_type``, ``invalid_outcome``) with the value
as delivered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from mipa.contract import CODES, FEEDS, MAPPING_FILE, MISSING_VALUES

KEYS = ("columns", "date_format", "codes", "missing_values", "delimiter", "notes")
DATE_FORMATS = "DD-MM-YYYY, MM-DD-YYYY, YYYY-MM-DD, DDMMYYYY or YYYYMMDD"
_FIELD = {"DD": "day", "MM": "month", "YYYY": "year"}
_SEPARATOR = r"[-/. ]"
# two one- or two-digit fields, then a four-digit year: the shape a day-first and a
# month-first export share
_TWO_FIELDS_THEN_YEAR = r"^\s*\d{1,2}[-/. ]\d{1,2}[-/. ]\d{4}(?:[ T]|$)"


class MappingError(Exception):
    """A mapping file is invalid, or does not fit a delivery file: the load stops."""


@dataclass(frozen=True)
class DateFormat:
    """The field order of an export's dates, e.g. ``MM-DD-YYYY``."""

    text: str
    order: tuple[str, str, str]  # ('day', 'month', 'year') for DD-MM-YYYY
    separated: bool  # fields separated by - / . or a space (any of them, in the values)

    @property
    def pattern(self) -> str:
        digits = {"day": r"\d{1,2}", "month": r"\d{1,2}"} if self.separated else {"day": r"\d{2}", "month": r"\d{2}"}
        digits["year"] = r"\d{4}"
        body = (_SEPARATOR if self.separated else "").join(f"(?P<{f}>{digits[f]})" for f in self.order)
        # a time part after the date is allowed and dropped
        return rf"^\s*{body}(?:[ T].*)?\s*$"

    @property
    def covers_two_fields_then_year(self) -> bool:
        """Whether every ``a-b-YYYY`` value is read by this format (day- or month-first)."""
        return self.separated and self.order[2] == "year"


def parse_date_format(text: object) -> DateFormat | None:
    """``DD-MM-YYYY`` and the like; None when ``text`` is no supported format."""
    if not isinstance(text, str):
        return None
    value = text.strip().upper()
    match = re.fullmatch(r"(DD|MM|YYYY)([-/. ]?)(DD|MM|YYYY)\2(DD|MM|YYYY)", value)
    if not match or sorted((match[1], match[3], match[4])) != ["DD", "MM", "YYYY"]:
        return None
    order = (_FIELD[match[1]], _FIELD[match[3]], _FIELD[match[4]])
    return DateFormat(value, order, bool(match[2]))  # type: ignore[arg-type]


def normalize_code(value: str) -> str:
    """The matching key of a code: white space folded, trimmed, lower case."""
    return re.sub(r"[\s\u00a0]+", " ", value).strip().lower()


@dataclass(frozen=True)
class FeedMapping:
    """The validated mapping of one feed."""

    feed: str
    source: str  # e.g. 'returns/_mapping.yml'
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> export column
    date_format: DateFormat | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> normalized value -> code
    missing_values: tuple[str, ...] = ()  # besides the contract's, trimmed and lower case
    delimiter: str = ","

    def export_column(self, column: str) -> str:
        """The export's name of a contract column."""
        return self.columns.get(column, column)

    def translate(self, table: pa.Table, source_file: str, first_row: int = 1) -> pa.Table:
        """Codes and dates of one loaded file (contract column names) into the contract's;
        ``first_row``: the file's row number of the table's first row (for messages)."""
        for column, codes in self.codes.items():
            index = table.schema.get_field_index(column)
            table = table.set_column(index, column, _translate_codes(table.column(index), codes))
        if self.date_format is not None:
            column = FEEDS[self.feed].date_column
            index = table.schema.get_field_index(column)
            values = self._translate_dates(table.column(index), column, source_file, first_row)
            table = table.set_column(index, column, values)
        return table

    def _translate_dates(self, values: pa.ChunkedArray, column: str, source_file: str, first_row: int) -> pa.Array:
        fmt = self.date_format
        assert fmt is not None
        text = values.combine_chunks()
        parts = pc.extract_regex(text, fmt.pattern)
        matched = pc.fill_null(pc.is_valid(parts), False)
        day = pc.cast(pc.struct_field(parts, "day"), pa.int32())
        month = pc.cast(pc.struct_field(parts, "month"), pa.int32())
        contradicts = pc.fill_null(pc.and_(pc.greater(month, 12), pc.less_equal(day, 12)), False)
        def where(row: int) -> str:
            return f"{source_file}: row {row + first_row} column {self.export_column(column)} '{text[row].as_py().strip()[:20]}'"

        _raise_at_first(contradicts, lambda row: (
            f"{where(row)} has {month[row].as_py()} in the month position of date_format {fmt.text} declared in "
            f"{self.source} (rule: date_order); the file's dates are in another order: correct date_format in the "
            "mapping."
        ))
        if not fmt.covers_two_fields_then_year:
            other = pc.and_(pc.invert(matched), pc.fill_null(pc.match_substring_regex(text, _TWO_FIELDS_THEN_YEAR), False))
            _raise_at_first(other, lambda row: (
                f"{where(row)} is not in date_format {fmt.text} declared in {self.source} and cannot be told "
                "day-first from month-first (rule: date_format); correct date_format in the mapping or re-export the "
                "file."
            ))
        iso = pc.binary_join_element_wise(
            pc.struct_field(parts, "year"),
            pc.utf8_lpad(pc.struct_field(parts, "month"), width=2, padding="0"),
            pc.utf8_lpad(pc.struct_field(parts, "day"), width=2, padding="0"),
            "-",
        )
        # a real calendar date only (strptime rolls 2023-02-31 over to March: compare back);
        # anything else is kept as delivered, for dbt to quarantine as unparseable_date
        parsed = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
        valid = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), iso), False)
        return pc.if_else(pc.and_(matched, valid), iso, text)


def _raise_at_first(mask: pa.Array, message: Callable[[int], str]) -> None:
    """Raise :class:`MappingError` with ``message(row)`` at the first (0-based) row where
    ``mask`` is true."""
    row = pc.index(mask, True).as_py()
    if row is not None and row >= 0:
        raise MappingError(message(row))


def _translate_codes(values: pa.ChunkedArray, codes: dict[str, str]) -> pa.Array:
    text = values.combine_chunks()
    key = pc.utf8_lower(pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"[\s\x{00a0}]+", " ")))
    index = pc.index_in(key, value_set=pa.array(list(codes), type=pa.string()))
    mapped = pc.take(pa.array(list(codes.values()), type=pa.string()), index)
    return pc.if_else(pc.is_valid(index), mapped, text)


def _scalar_text(value: object) -> str | None:
    """A YAML scalar as text: strings and integers; None for anything else (booleans, ...)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None


def load_mapping(path: Path, feed: str) -> FeedMapping:
    """Read and validate the mapping file of ``feed``; :class:`MappingError` names the
    mapping file, the key and the rule."""
    spec = FEEDS[feed]
    source = f"{feed}/{path.name}"

    def fail(rule: str, what: str) -> MappingError:
        return MappingError(f"{source}: {what} (rule: {rule})")

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise fail("mapping_file", "is not UTF-8 text; save the mapping file as UTF-8") from exc
    except OSError as exc:
        raise fail("mapping_file", f"cannot be read: {exc.strerror or type(exc).__name__}; check its permissions") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise fail("mapping_yaml", f"is not valid YAML{where}: {problem}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise fail("mapping_yaml", f"must be a YAML mapping with the keys {', '.join(KEYS)}")
    for key in doc:
        if key not in KEYS:
            raise fail("mapping_keys", f"unknown key '{key}'; a mapping has the keys {', '.join(KEYS)}")

    columns: dict[str, str] = {}
    given = doc.get("columns") or {}
    if not isinstance(given, dict):
        raise fail("mapping_columns", "'columns' must map contract columns to the export's column names")
    seen: dict[str, str] = {}
    for column, name in given.items():
        if column not in spec.required_columns:
            raise fail(
                "mapping_columns",
                f"columns: '{column}' is not a column of feed '{feed}' (its columns: {', '.join(spec.required_columns)})",
            )
        name_text = _scalar_text(name)
        if name_text is None or not name_text.strip():
            raise fail("mapping_columns", f"columns: {column} must name a column of the export (quote it if in doubt)")
        lowered = name_text.strip().lower()
        if lowered in seen:
            raise fail("mapping_columns", f"columns: {seen[lowered]} and {column} both read column '{name_text}'")
        seen[lowered] = column
        columns[column] = name_text.strip()

    date_format = None
    if "date_format" in doc:
        date_format = parse_date_format(doc["date_format"])
        if date_format is None:
            raise fail(
                "mapping_date_format",
                f"date_format '{doc['date_format']}' is not supported; use one of {DATE_FORMATS} "
                "(any of - / . or a space between the fields)",
            )

    missing = []
    given_missing = doc.get("missing_values") or []
    if isinstance(given_missing, (str, int)) and not isinstance(given_missing, bool):
        given_missing = [given_missing]
    if not isinstance(given_missing, list):
        raise fail("mapping_missing_values", "missing_values must be a list of texts, e.g. [onbekend, '9999']")
    for value in given_missing:
        value_text = _scalar_text(value)
        if value_text is None:
            raise fail("mapping_missing_values", f"missing_values: {value!r} is not a text; quote it")
        missing.append(value_text.strip().lower())
    missing_set = set(missing) | set(MISSING_VALUES)

    codes: dict[str, dict[str, str]] = {}
    given_codes = doc.get("codes") or {}
    if not isinstance(given_codes, dict):
        raise fail("mapping_codes", "'codes' must map a coded column to its translations")
    coded = [c for c in spec.required_columns if c in CODES]
    for column, table in given_codes.items():
        if column not in coded:
            allowed = f"only {', '.join(coded)}" if coded else "no column"
            raise fail("mapping_codes", f"codes: '{column}' is not a coded column; feed '{feed}' has {allowed}")
        if not isinstance(table, dict) or not table:
            raise fail("mapping_codes", f"codes: {column} must map the export's values to {', '.join(CODES[column])}")
        translations: dict[str, str] = {}
        for value, code in table.items():
            value_text = _scalar_text(value)
            if value_text is None:
                raise fail("mapping_codes", f"codes: {column}: {value!r} is not a text; quote it (YAML reads yes/no as true/false)")
            key = normalize_code(value_text)
            if code not in CODES[column]:
                raise fail(
                    "mapping_codes",
                    f"codes: {column}: '{value_text}' maps to '{code}', which is not one of {', '.join(CODES[column])}",
                )
            if key in missing_set:
                raise fail("mapping_codes", f"codes: {column}: '{value_text}' is also a missing value")
            if translations.get(key, code) != code:
                raise fail("mapping_codes", f"codes: {column}: '{value_text}' maps to both {translations[key]} and {code}")
            translations[key] = code
        codes[column] = translations

    delimiter = doc.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise fail("mapping_delimiter", f"delimiter must be one character such as ',' or ';', got {delimiter!r}")
    if "notes" in doc and not isinstance(doc["notes"], str):
        raise fail("mapping_keys", "notes must be a text")

    return FeedMapping(feed, source, columns, date_format, codes, tuple(dict.fromkeys(missing)), delimiter)


def mapping_path(raw_dir: Path, feed: str) -> Path:
    return Path(raw_dir) / feed / MAPPING_FILE


def write_mapping(path: Path, mapping: dict, comment: str = "") -> None:
    """Write a mapping file (used by the generator's Dutch layout)."""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, default_flow_style=False)
    path.write_text(header + body, encoding="utf-8")
