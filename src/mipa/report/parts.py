"""Report parts: self-contained sections that read their own marts.

The core sections (data, trends, results, run facts) live in :mod:`mipa.report.builder`.
Later analyses (inference with few treated countries, sensitivity, the robustness grid)
each come as one module that declares the marts it reads and builds one :class:`Part`
from them: a section whose blocks are HTML fragments, :class:`~mipa.report.table_model.Table`
objects (rendered and exported as CSV/Parquet by the builder) and
:class:`~mipa.report.figure_model.FigureSpec` objects (drawn and exported as PNG/SVG).

A part module defines::

    MARTS: tuple[str, ...]          # e.g. ("marts.fct_did_inference",)
    AFTER: str                      # id of the section the part follows, e.g. "results"
    LABELS: dict[str, dict[str, str]]  # its own words, one dict per language (same keys)
    def build(data: ReportData, marts: dict[str, pd.DataFrame], lang: str) -> Part | None

``marts`` holds the declared tables that exist in the database (a warehouse built without
the estimation tag has none of them); ``build`` returns None when there is nothing to show.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Union

import duckdb
import pandas as pd

from mipa.report import labels
from mipa.report.figure_model import FigureSpec
from mipa.report.table_model import Table

Block = Union[str, Table, FigureSpec]

# in reading order
PART_MODULES: tuple[str, ...] = (
    "mipa.report.covid_part",
    "mipa.report.inference_part",
    "mipa.report.sensitivity_part",
    "mipa.report.robustness_part",
)


@dataclass
class Part:
    id: str  # HTML id of the section
    title: str
    intro: str = ""
    blocks: list[Block] = field(default_factory=list)


def part_modules() -> list[ModuleType]:
    """The part modules, in :data:`PART_MODULES` order."""
    return [importlib.import_module(name) for name in PART_MODULES]


def load_marts(db_path: Path, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The tables among ``names`` ("schema.table") that exist, read over one read-only
    connection, each sorted by all its columns so that the report is byte-stable."""
    if not names:
        return {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        present = {
            r[0]
            for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables"
            ).fetchall()
        }
        out = {}
        for name in sorted(set(names)):
            if name not in present:
                continue
            schema, table = name.split(".", 1)
            frame = con.execute(f'select * from "{schema}"."{table}"').df()
            if len(frame.columns):
                frame = frame.sort_values(list(frame.columns), kind="mergesort", na_position="last")
            out[name] = frame.reset_index(drop=True)
        return out
    finally:
        con.close()


def local_text(table: Mapping[str, Mapping[str, str]], lang: str, key: str, **values: object) -> str:
    """``key`` from a part's own ``LABELS`` in ``lang``, with ``{placeholders}`` filled."""
    template = table[labels.check_lang(lang)][key]
    return template.format(**values) if values else template
