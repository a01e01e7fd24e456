"""``mipa report``: write the HTML report of a built warehouse."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mipa import settings
from mipa.report.labels import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write the HTML report (tables, figures, run facts) of a built warehouse",
        description=(
            "Read the marts of a built warehouse (read-only) and write <out>/<run>/index.html, "
            "one self-contained page in English and Dutch with a language switch, with the result "
            "tables as CSV, Parquet and an Excel workbook per language and every figure as PNG and "
            "SVG in the same folder."
        ),
    )
    p.add_argument("--db", type=Path, default=None, help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("--out", type=Path, default=None, help="reports folder (default: <project>/reports)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language the page opens in; both are in it (default: en)")
    p.add_argument("--run", default=None,
                   help="run folder name (default: synthetic|real-<feed fingerprint>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mipa.report.builder import build_report
    from mipa.report.data import ReportDataError

    db = Path(args.db or settings.db_path())
    out = Path(args.out or settings.project_dir() / "reports")
    try:
        index = build_report(db, out, lang=args.lang, run_name=args.run)
    except (ReportDataError, ValueError) as exc:
        print(f"[mipa report] FAILED: {exc}", file=sys.stderr)
        return 1
    print(index)
    return 0
