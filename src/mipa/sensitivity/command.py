"""``mipa robustness``: rebuild the robustness grid of a built warehouse, print it, write it as CSV.

The grid (``marts.fct_did_robustness``) is rebuilt with ``dbt build --select +fct_did_robustness``
on a *copy* of the warehouse (``<db>.building.duckdb``), so the seeds (partnership date
versions, country neighbours), the panel and the grid are rebuilt from the landed feeds
and tested; only when everything passed does the copy replace the warehouse
(``os.replace``, as ``mipa build``). A failed build leaves the warehouse untouched and keeps
the attempt as ``<db>.failed.duckdb``. The other marts are carried over from the warehouse
as they were: after changing the baseline start dates or the panel models, run
``mipa build`` (which also builds the grid) instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mipa import settings

if TYPE_CHECKING:  # the CLI's help must not load pandas
    import pandas as pd

GRID_SELECTOR = "+fct_did_robustness"
GRID_TABLE = "marts.fct_did_robustness"
CI_LEVEL_TEXT = "95% CI"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "robustness",
        help="rebuild the robustness grid (fct_did_robustness) of a built warehouse, print it and write it as CSV",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--db", type=Path, default=None, help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("--out", type=Path, default=None,
                   help="CSV file of the grid (default: <project>/reports/robustness/fct_did_robustness.csv)")
    p.add_argument("--no-build", action="store_true", help="read the grid as it is; do not rebuild it")
    p.add_argument("--estimator", choices=["etwfe", "csdid", "all"], default="all",
                   help="estimators in the printed table (the CSV always holds all)")
    p.set_defaults(func=run)


def rebuild_grid(db: Path) -> None:
    """``dbt build --select +fct_did_robustness`` on a copy of ``db``; the copy replaces ``db``
    only when every model and test passed. Raises RuntimeError otherwise."""
    building = db.with_name(db.stem + ".building.duckdb")
    failed = db.with_name(db.stem + ".failed.duckdb")
    for stale in (building, Path(str(building) + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(db, building)
    print(f"[mipa robustness] dbt build --select {GRID_SELECTOR} into {building.name}", file=sys.stderr, flush=True)
    from mipa.build import run_dbt

    code = run_dbt(["build", "--select", GRID_SELECTOR], building, settings.project_dir())
    if code != 0:
        os.replace(building, failed)
        raise RuntimeError(f"dbt build failed (exit {code}); {db} is unchanged, the attempt is kept in {failed}")
    os.replace(building, db)


def read_grid(db: Path) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"select * from {GRID_TABLE}").df()
    finally:
        con.close()


def _cell(row: pd.Series) -> str:
    import pandas as pd

    if pd.isna(row["estimate"]):
        return "not estimable"
    star = "*" if row["p_value"] < 0.05 else " "
    return f"{row['estimate']:9.2f}{star} [{row['ci_low']:8.2f}, {row['ci_high']:8.2f}]"


def format_grid(grid: pd.DataFrame, estimators: list[str]) -> str:
    """The grid as text: per outcome one line per variant, estimate* [95% CI] per estimator."""
    order = list(dict.fromkeys(grid["variant_id"]))  # the grid's own order
    lines = []
    width = max(len(v) for v in order) + 2
    for outcome in dict.fromkeys(grid["outcome"]):
        rows = grid[grid["outcome"] == outcome]
        lines.append("")
        lines.append(f"{outcome}  (estimate, * p < 0.05, [{CI_LEVEL_TEXT}])")
        lines.append(" " * width + "".join(f"{e:<34}" for e in estimators))
        for vid in order:
            cells = []
            for est in estimators:
                r = rows[(rows["variant_id"] == vid) & (rows["estimator"] == est)]
                cells.append(f"{_cell(r.iloc[0]) if len(r) else '':<34}")
            lines.append(f"{vid:<{width}}" + "".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    db = Path(args.db or settings.db_path())
    if not db.exists():
        print(f"[mipa robustness] FAILED: {db} does not exist: run `mipa build` first", file=sys.stderr)
        return 1
    if not args.no_build:
        try:
            rebuild_grid(db)
        except RuntimeError as exc:
            print(f"[mipa robustness] FAILED: {exc}", file=sys.stderr)
            return 1
    import duckdb

    try:
        grid = read_grid(db)
    except duckdb.Error as exc:
        print(f"[mipa robustness] FAILED: cannot read {GRID_TABLE} from {db}: {exc}", file=sys.stderr)
        return 1
    from mipa.estimation import OUTCOMES
    from mipa.sensitivity.robustness import DIMENSIONS, ESTIMATORS

    # the grid's order: dimensions as in the report, outcomes as in the annex's tables
    ranks = {"dimension": DIMENSIONS, "outcome": OUTCOMES, "estimator": ESTIMATORS}
    keys = {f"_{c}": grid[c].map({v: i for i, v in enumerate(order)}) for c, order in ranks.items()}
    grid = grid.assign(**keys).sort_values(["_dimension", "variant_id", "_outcome", "_estimator"], kind="mergesort")
    grid = grid.drop(columns=list(keys)).reset_index(drop=True)
    out = Path(args.out or settings.project_dir() / "reports" / "robustness" / "fct_did_robustness.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.to_csv(out, index=False)
    estimators = ["etwfe", "csdid"] if args.estimator == "all" else [args.estimator]
    print(format_grid(grid, estimators))
    print(f"\n[mipa robustness] {len(grid)} rows written to {out}", file=sys.stderr)
    return 0
