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
        "marts.fct_return_chain_country_month",
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


HELP = "publishable CSV/Parquet of the panel (counts <5 suppressed, rounded to tens; means to whole days)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help=HELP,
        description="Write the country-month panel and the return-chain mart as CSV and Parquet after "
        "disclosure control: counts under 5 suppressed, the others rounded to tens, mean lead times to "
        "whole days. The warehouse keeps the exact counts.",
    )
    p.add_argument("--db", type=Path, default=None,
                   help="database file to export from (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <project>/exports)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import duckdb

    out = Path(args.out or settings.project_dir() / "exports")
    db = Path(args.db or settings.db_path())
    if problem := settings.missing_warehouse(db, "export"):
        print(problem, file=sys.stderr)
        return 2
    try:
        written = export(db, out)
    except duckdb.CatalogException:
        print(f"mipa export: {db} has no panel marts (marts.fct_country_month); build them with mipa build "
              f"--db {db}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"mipa export: {db} cannot be read ({first}); point --db at a warehouse built by mipa build, "
              "and close programs that hold it open for writing", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or out
        print(f"mipa export: cannot write {where} ({exc.strerror or exc}); choose a writable --out",
              file=sys.stderr)
        return 2
    for path in written:
        print(path, file=sys.stderr)
    return 0
