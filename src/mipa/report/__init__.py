"""The report: one self-contained HTML page per run, rebuilt from the marts of a built
warehouse, with the result tables (CSV, Parquet) and figures (PNG, SVG) beside it."""

from __future__ import annotations

from mipa.report.builder import build_report

__all__ = ["build_report"]
