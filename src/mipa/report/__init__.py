"""The report: one self-contained HTML page per run, rebuilt from the marts of a built
warehouse, with the result tables (CSV, Parquet) and figures (PNG, SVG) beside it."""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    # lazily: the CLI imports mipa.report.labels for its help text without loading matplotlib
    if name == "build_report":
        from mipa.report.builder import build_report

        return build_report
    raise AttributeError(name)
