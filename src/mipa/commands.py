"""Warehouse commands: ``mipa build`` and ``mipa run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mipa import settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build", help="load raw feeds and dbt build the warehouse (atomic: never breaks the last good db)"
    )
    p.add_argument("--raw-dir", type=Path, default=None, help="raw feeds (default: $MIPA_RAW_DIR or data/raw)")
    p.add_argument("--db", type=Path, default=None, help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, help="extra arguments passed to dbt build after --")
    p.set_defaults(func=run_build)

    r = subparsers.add_parser(
        "run", help="generate synthetic feeds if none are given, then build, estimate and report"
    )
    r.add_argument("--raw-dir", type=Path, default=None)
    r.add_argument("--db", type=Path, default=None)
    r.add_argument("--seed", type=int, default=None, help="generator seed when feeds are generated")
    r.add_argument("--lang", choices=["en", "nl"], default="en", help="report language")
    r.set_defaults(func=run_all)


def _extra(args: argparse.Namespace) -> list[str]:
    extra = list(getattr(args, "dbt_args", []) or [])
    return extra[1:] if extra[:1] == ["--"] else extra


def run_build(args: argparse.Namespace) -> int:
    from mipa.build import BuildError, build
    from mipa.ingest import FeedError

    try:
        build(args.raw_dir, args.db, _extra(args))
    except (FeedError, BuildError) as exc:
        print(f"[mipa build] FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the last resort: name the file and the cause, no traceback
        print(f"[mipa build] FAILED: {_os_error(exc)}", file=sys.stderr)
        return 1
    return 0


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return (
        f"{where}{exc.strerror or exc}; check that the file or folder exists, is readable and "
        "writable, and that the disk has space. The last good database is unchanged."
    )


def run_all(args: argparse.Namespace) -> int:
    from mipa.build import BuildError, build
    from mipa.ingest import FeedError

    raw = Path(args.raw_dir or settings.raw_dir())
    if not raw.exists() or not any(raw.iterdir()):
        from mipa.simulate import simulate

        print(f"[mipa run] no feeds in {raw}: generating synthetic feeds", file=sys.stderr)
        kwargs = {} if args.seed is None else {"seed": args.seed}
        simulate(raw, **kwargs)
    db = Path(args.db or settings.db_path())
    try:
        build(raw, db)
    except (FeedError, BuildError) as exc:
        print(f"[mipa run] FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"[mipa run] FAILED: {_os_error(exc)}", file=sys.stderr)
        return 1
    from mipa.report import build_report

    reports = settings.project_dir() / "reports"
    report = build_report(db, reports, lang=args.lang)
    # the quality gate's Data Docs go next to the report of the same run
    from mipa.quality.command import run as validate

    gate = validate(
        argparse.Namespace(db=db, config=None, reports=reports, run=report.parent.name, reference_date=None)
    )
    print(f"[mipa run] report: {report}", file=sys.stderr)
    print(report)
    return gate
