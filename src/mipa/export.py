"""Published exports of the panel: CSV and Parquet after disclosure control.

``mipa export`` writes ``<out>/<table>.csv`` and ``.parquet`` for the country-month panel
and the analysts' return-chain mart, every count suppressed under 5 and rounded to tens,
the mean lead time suppressed with its confirmations and otherwise rounded to whole days,
so that no protected count can be recovered from a derived value, a flag or a sum
(:mod:`mipa.disclosure`). The internal database keeps exact counts.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mipa import settings

if TYPE_CHECKING:  # the CLI's help must not load duckdb or pandas
    import duckdb
    import pandas as pd


@dataclass(frozen=True)
class ExportSpec:
    table: str
    key_columns: tuple[str, ...]
    count_columns: tuple[str, ...]
    dependent_columns: tuple[tuple[str, str], ...] = ()
    drop_columns: tuple[str, ...] = ()


EXPORTS = (
    ExportSpec(
        "marts.fct_country_month",
        ("iso3", "month_start"),
        ("requests", "confirmations", "laissez_passers", "forced_departures", "independent_departures",
         "unsupervised_departures", "verified_departures"),
        (("lead_time_days", "confirmations"),),
    ),
    ExportSpec(
        "marts.mart_return_chain__country_month",
        ("iso3", "month_start"),
        ("requests", "confirmations", "rejections", "laissez_passers", "forced_departures"),
        (("lead_time_days", "confirmations"),),
        # a share of rejections reveals small counts through its denominator
        drop_columns=("share_rejected",),
    ),
)


def protected_table(con: duckdb.DuckDBPyConnection, spec: ExportSpec) -> pd.DataFrame:
    frame = con.execute(f"select * from {spec.table} order by {', '.join(spec.key_columns)}").df()
    frame = frame.drop(columns=list(spec.drop_columns))
    from mipa.disclosure import protect_counts

    return protect_counts(frame, spec.count_columns, dependent_columns=dict(spec.dependent_columns))


def export(db_path: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        for spec in EXPORTS:
            table = protected_table(con, spec)
            stem = out_dir / spec.table.split(".")[-1]
            table.to_csv(stem.with_suffix(".csv"), index=False)
            table.to_parquet(stem.with_suffix(".parquet"), index=False)
            written += [stem.with_suffix(".csv"), stem.with_suffix(".parquet")]
    finally:
        con.close()
    return written


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="publishable CSV/Parquet of the panel (counts <5 suppressed, rounded to tens; "
                                        "means to whole days)")
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="default: <project>/exports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = args.out or settings.project_dir() / "exports"
    for path in export(args.db or settings.db_path(), out):
        print(path, file=sys.stderr)
    return 0
