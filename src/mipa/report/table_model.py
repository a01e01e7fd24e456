"""The report's table model: a :class:`Table` of header and body :class:`Row` s of
:class:`Cell` s (display text plus ``data-*`` attributes carrying the unrounded values), its
notes and the tidy data behind it (the CSV and Parquet exports). The builders in
:mod:`mipa.report.tables` (estimates) and :mod:`mipa.report.facts_tables` (descriptive
statistics and the run's facts) fill it; :mod:`mipa.report.html` and the workbook render it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mipa.report.formatting import DECIMALS, fmt_value_attr, is_missing, number_type

__all__ = ["Cell", "Row", "Table", "assign_number_types", "col_header", "value_attrs"]


@dataclass
class Cell:
    text: str
    header: bool = False
    scope: str | None = None  # th scope: col | row | colgroup | rowgroup
    colspan: int = 1
    rowspan: int = 1
    classes: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)
    subtext: str = ""  # a second, smaller line (e.g. the annex's clustered interval)
    planted: str = ""  # synthetic runs: the planted effect, on its own line beside the estimate
    number: str = ""  # type of the numbers in the cell (formatting.DECIMALS); "" for text


@dataclass
class Row:
    cells: list[Cell]
    classes: tuple[str, ...] = ()


@dataclass
class Table:
    name: str  # file stem of the exports and the HTML id
    caption: str
    header: list[Row]
    body: list[Row]
    notes: list[str] = field(default_factory=list)
    data: pd.DataFrame = field(default_factory=pd.DataFrame)  # tidy, unrounded
    classes: tuple[str, ...] = ()
    decimals: dict[str, int] = field(default_factory=dict)  # this table's departures from DECIMALS
    workbook: str = ""  # file name of the workbook that holds this table (set by the builder)

    @property
    def decimal_rule(self) -> dict[str, int]:
        """Decimals per number type for every cell of this table."""
        return {**DECIMALS, **self.decimals}

    @property
    def n_columns(self) -> int:
        return max((sum(c.colspan for c in r.cells) for r in self.header + self.body), default=0)


def assign_number_types(table: Table) -> Table:
    """Estimate cells (class ``estimate``) without a number type take the effect rule of
    their outcome (``data-outcome``): days for lead time."""
    for row in table.body:
        for cell in row.cells:
            if not cell.number and "estimate" in cell.classes:
                cell.number = number_type("effect", cell.attrs.get("data-outcome"))
    return table


def col_header(texts: Sequence[str]) -> Row:
    return Row([Cell(t, header=True, scope="col") for t in texts])


def value_attrs(**values: Any) -> dict[str, str]:
    """``data-*`` attributes; names use dashes; missing values are left out."""
    out = {}
    for key, value in values.items():
        if is_missing(value) and not isinstance(value, str):
            continue
        out["data-" + key.replace("_", "-")] = fmt_value_attr(value) if not isinstance(value, str) else value
    return out
