"""The report's Excel workbook: every table of the report, one sheet each, after a first
sheet of notes (source, report date, code version, what each sheet holds, and the
table's caption and notes).

A sheet holds the table's tidy data, the rows of its CSV file, with numbers as numbers
(unrounded; shown with the report's decimals rule) and the report's display text in the
``display`` column where the table has one. The same tables give the same bytes: the
workbook's dates are the report date, and the zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mipa.report import labels
from mipa.report.formatting import DECIMALS, code_version_text, fmt_day, is_missing
from mipa.report.table_model import Table

SHEET_NAME_MAX = 31  # Excel's limit
NOTES_SHEET = {"en": "notes", "nl": "toelichting"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
# columns shown with the count rule (whole numbers); other numbers with the effect rule
COUNT_COLUMNS = frozenset({"n_obs", "n_clusters", "n_treated_clusters", "n_countries", "rows_landed", "rows_staged",
                           "rows_quarantined", "rows_loaded", "n_rows", "event_time", "n_replications",
                           "display_order"})
P_VALUE_COLUMNS = frozenset({"p_value"})

WORDS = {
    "en": {
        "title": "Result tables of the report",
        "source": "Source",
        "report_date": "Report date",
        "code_version": "Code version",
        "database": "Database",
        "fingerprint": "Feed fingerprint (SHA-256)",
        "sheets": "Sheets",
        "col_sheet": "Sheet",
        "col_table": "Table (caption in the report)",
        "col_notes": "Notes",
        "col_file": "Same rows as",
        "about": "Each sheet holds one table's rows as in its CSV file: unrounded numbers, and the text the "
                 "report prints in the column 'display'. The report (index.html) lays them out.",
    },
    "nl": {
        "title": "Resultaattabellen van het rapport",
        "source": "Bron",
        "report_date": "Datum van het rapport",
        "code_version": "Codeversie",
        "database": "Database",
        "fingerprint": "Vingerafdruk van de bestanden (SHA-256)",
        "sheets": "Werkbladen",
        "col_sheet": "Werkblad",
        "col_table": "Tabel (bijschrift in het rapport)",
        "col_notes": "Toelichting",
        "col_file": "Dezelfde rijen als",
        "about": "Elk werkblad bevat de rijen van één tabel zoals in het CSV-bestand: onafgeronde getallen, en in "
                 "de kolom 'display' de tekst die het rapport toont. Het rapport (index.html) zet ze op.",
    },
}


def sheet_names(tables: Sequence[Table], lang: str) -> list[str]:
    """One valid, unique Excel sheet name per table: its file stem without the language
    suffix, shortened to 31 characters."""
    suffix = f"_{lang}"
    taken = {NOTES_SHEET[lang]}
    out = []
    for table in tables:
        stem = table.name[: -len(suffix)] if table.name.endswith(suffix) else table.name
        base = re.sub(r"[\[\]:*?/\\]", "_", stem)[:SHEET_NAME_MAX]
        name, k = base, 2
        while name.lower() in taken:
            tail = f"~{k}"
            name, k = base[: SHEET_NAME_MAX - len(tail)] + tail, k + 1
        taken.add(name.lower())
        out.append(name)
    return out


def _cell_value(value: Any) -> Any:
    """A value openpyxl writes: numbers stay numbers, missing is an empty cell, the rest text."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if isinstance(value, float) and math.isinf(value) else value
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _cell_value(value.item())
    if isinstance(value, dt.datetime):  # pd.Timestamp too: a month start reads as its date
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _number_format(column: str, values: pd.Series) -> str | None:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric:
        return None
    if column in COUNT_COLUMNS:
        return "#,##0"
    d = DECIMALS["p_value"] if column in P_VALUE_COLUMNS else DECIMALS["effect"]
    return "0." + "0" * d


def workbook_facts(data: Any, lang: str, *, day: dt.date, version: dict[str, Any]) -> list[tuple[str, str]]:
    """The notes sheet's first lines: where the numbers come from and which code made them."""
    w = WORDS[labels.check_lang(lang)]
    source = labels.text(lang, "facts_synthetic") if data.synthetic else labels.text(lang, "facts_real")
    if data.synthetic and data.generator_seed is not None:
        source += f" (seed {data.generator_seed})"
    return [
        (w["source"], source),
        (w["report_date"], fmt_day(day, lang)),
        (w["code_version"], code_version_text(version, lang)),
        (w["database"], data.db_name),
        (w["fingerprint"], data.fingerprint),
    ]


def workbook_bytes(tables: Sequence[Table], *, lang: str, facts: Sequence[tuple[str, str]],
                   day: dt.date | None = None) -> bytes:
    """The workbook as bytes: the notes sheet, then one sheet per table in ``tables`` order."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.writer.excel import ExcelWriter

    lang = labels.check_lang(lang)
    w = WORDS[lang]
    wb = Workbook()
    moment = dt.datetime.combine(day or dt.date(2000, 1, 1), dt.time())
    wb.properties.created = wb.properties.modified = moment
    wb.properties.creator = "mipa"
    wb.properties.title = w["title"]
    wb.properties.language = lang
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")

    notes = wb.active
    notes.title = NOTES_SHEET[lang]
    notes.append([w["title"]])
    notes["A1"].font = Font(bold=True, size=13)
    notes.append([])
    for key, value in facts:
        notes.append([key, value])
        notes.cell(notes.max_row, 1).font = bold
    notes.append([])
    notes.append([w["about"]])
    notes.append([])
    notes.append([w["sheets"]])
    notes.cell(notes.max_row, 1).font = bold
    notes.append([w["col_sheet"], w["col_table"], w["col_notes"], w["col_file"]])
    for c in notes[notes.max_row]:
        c.font = bold
    names = sheet_names(tables, lang)
    for name, table in zip(names, tables, strict=True):
        notes.append([name, table.caption, "\n".join(table.notes), f"{table.name}.csv"])
        for c in notes[notes.max_row]:
            c.alignment = wrap
    for col, width in zip("ABCD", (28, 60, 100, 34), strict=True):
        notes.column_dimensions[col].width = width

    for name, table in zip(names, tables, strict=True):
        ws = wb.create_sheet(name)
        frame = table.data.reset_index(drop=True)
        columns = [str(c) for c in frame.columns]
        ws.append(columns)
        for c in ws[1]:
            c.font = bold
        formats = {j: _number_format(col, frame[col]) for j, col in enumerate(frame.columns)}
        for row in frame.itertuples(index=False, name=None):
            ws.append([_cell_value(v) for v in row])
        for j, fmt in formats.items():
            if fmt:
                for (cell,) in ws.iter_rows(min_row=2, min_col=j + 1, max_col=j + 1):
                    cell.number_format = fmt
        ws.freeze_panes = "A2"

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).write_data()
    # zip entries otherwise carry the time of writing: the same tables give the same bytes
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def write_workbook(path: Path, tables: Sequence[Table], *, lang: str, facts: Sequence[tuple[str, str]],
                   day: dt.date | None = None) -> Path:
    Path(path).write_bytes(workbook_bytes(tables, lang=lang, facts=facts, day=day))
    return Path(path)
