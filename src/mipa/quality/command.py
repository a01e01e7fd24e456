"""``mipa validate``: data-quality gates on a built warehouse.

Runs the Great Expectations suites of ``quality/expectations.yml`` on the landed feeds and
the country-month panel, and the freshness and volume checks of the feeds; prints every
failure, writes GX Data Docs (``index.html``), a self-contained page of all results
(``summary.html``) and the check tables (CSV) to ``<reports>/<run>/data_docs/``. Exit 1
when an error-level expectation fails, exit 2 when the config or database cannot be read;
warnings are printed and the run passes. Freshness and volume are measured against
--reference-date, else the synthetic feeds' delivery date, else today.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from mipa import settings


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="data-quality gates: GX suites on feeds and panel, freshness and volume (exit 1 on errors)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", type=Path, default=None,
                   help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("--config", type=Path, default=None,
                   help="expectations config (default: <project>/quality/expectations.yml)")
    p.add_argument("--reports", type=Path, default=None,
                   help="reports folder (default: <project>/reports)")
    p.add_argument("--run", default="latest", help="run folder name (default: latest)")
    p.add_argument("--reference-date", type=_iso_date, default=None,
                   help="date freshness and volume are measured against (YYYY-MM-DD; default: the "
                        "synthetic feeds' delivery date, or today for real feeds)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mipa.quality import expectations as ex  # noqa: PLC0415 - GX import is slow
    from mipa.quality import freshness  # noqa: PLC0415

    started = time.perf_counter()
    if not args.run or args.run in (".", "..") or any(c in args.run for c in "/\\"):
        print(f"[mipa validate] FAILED: --run must be a plain folder name, got {args.run!r}", file=sys.stderr)
        return 2
    db = Path(args.db or settings.db_path())
    if problem := settings.missing_warehouse(db, "validate"):
        print(f"[mipa validate] FAILED: {problem}", file=sys.stderr)
        return 2
    try:
        config = ex.load_config(args.config)
    except ex.QualityConfigError as exc:
        print(f"[mipa validate] FAILED: {exc}", file=sys.stderr)
        return 2
    reports = Path(args.reports or settings.project_dir() / "reports")
    out = reports / args.run / "data_docs"
    if out.exists():
        shutil.rmtree(out)  # this folder is written by validate only: start clean
    out.mkdir(parents=True)

    reference_date, basis = freshness.reference_date_for(db, args.reference_date)
    # dbt source freshness is a child process that mostly parses the project: it runs
    # while this process validates the expectations (two busy processes, two cores)
    with ThreadPoolExecutor(max_workers=1) as pool:
        source_checks = pool.submit(freshness.run_source_checks, db, config.freshness, reference_date)
        try:
            frames = ex.read_tables(db, config)
            outcome = ex.run_validation(frames, config, data_docs_dir=out, run_name=args.run)
        except ex.QualityConfigError as exc:
            print(f"[mipa validate] FAILED: {exc}", file=sys.stderr)
            return 1
        checks = source_checks.result()

    outcome.results.to_csv(out / "expectations.csv", index=False)
    checks.to_csv(out / "freshness.csv", index=False)
    summary = {
        "database": str(db),
        "config": str(config.path),
        "run": args.run,
        "reference_date": str(reference_date),
        "reference_date_basis": basis,
        "expectations": int(len(outcome.results)),
        "errors": outcome.errors["expectation"].tolist(),
        "warnings": outcome.warnings["expectation"].tolist(),
        "source_warnings": [f"{r.feed}:{r.check}" for r in checks[checks.status == "warn"].itertuples()],
        "success": outcome.success,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    facts = {k: summary[k] for k in ("database", "config", "reference_date", "seconds")}
    page = out / "summary.html"
    page.write_text(ex.render_html(outcome, checks, facts), encoding="utf-8")

    print(ex.summarise(outcome))
    print(f"freshness and volume measured against {reference_date} ({basis})")
    print(freshness.summarise(checks))
    print(f"data docs: {page} (self-contained); GX site: {outcome.data_docs_index or out}")
    if not outcome.success:
        names = ", ".join(outcome.errors["expectation"])
        print(f"[mipa validate] FAILED: error-level expectations failed: {names}", file=sys.stderr)
        return 1
    print(f"[mipa validate] passed ({len(outcome.warnings)} expectation warnings, "
          f"{int((checks.status == 'warn').sum())} freshness/volume warnings) in {summary['seconds']} s")
    return 0
