"""Warehouse commands: ``mipa build`` and ``mipa run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mipa import settings


def register(subparsers: argparse._SubParsersAction) -> None:
    help_build = "load raw feeds and dbt build the warehouse (atomic: never breaks the last good db)"
    p = subparsers.add_parser(
        "build",
        help=help_build,
        description=help_build[0].upper() + help_build[1:] + ". Loads every feed folder (through its "
        "_mapping.yml if it has one), builds every dbt model and test into a new file and swaps it in "
        "only when all passed. Extra dbt arguments go after --, e.g. mipa build -- --select fct_country_month.",
    )
    p.add_argument("--raw-dir", type=Path, default=None, help="raw feeds (default: $MIPA_RAW_DIR or data/raw)")
    p.add_argument("--db", type=Path, default=None, help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, help="extra arguments passed to dbt build after --")
    p.set_defaults(func=run_build)

    help_run = "generate synthetic feeds if none are given, then build, estimate, report and validate"
    r = subparsers.add_parser(
        "run",
        help=help_run,
        description=help_run[0].upper() + help_run[1:] + ". What make run does: the report's path is "
        "printed at the end; exit 1 when the build or an error-level data-quality check fails.",
    )
    r.add_argument("--raw-dir", type=Path, default=None,
                   help="raw feeds; synthetic ones are generated here when it is empty (default: $MIPA_RAW_DIR "
                        "or data/raw)")
    r.add_argument("--db", type=Path, default=None,
                   help="database file (default: $MIPA_DB_PATH or data/mipa.duckdb)")
    r.add_argument("--seed", type=int, default=None, help="generator seed when feeds are generated")
    r.add_argument("--lang", choices=["en", "nl"], default="en",
                   help="language the report opens in; it holds English and Dutch (default: en)")
    r.set_defaults(func=run_all)


def _extra(args: argparse.Namespace) -> list[str]:
    extra = list(getattr(args, "dbt_args", []) or [])
    return extra[1:] if extra[:1] == ["--"] else extra


def _raw_dir_problem(raw: Path, command: str) -> str | None:
    if raw.exists() and not raw.is_dir():
        return f"mipa {command}: raw folder {raw} is a file; point --raw-dir (or MIPA_RAW_DIR) at the folder of feed folders"
    if command == "build" and not raw.exists():
        return (
            f"mipa build: raw folder {raw} does not exist; point --raw-dir (or MIPA_RAW_DIR) at the folder of feed "
            "folders, or write synthetic feeds there with mipa simulate"
        )
    return None


def run_build(args: argparse.Namespace) -> int:
    from mipa.build import BuildError, build
    from mipa.ingest import FeedError

    problem = _raw_dir_problem(Path(args.raw_dir or settings.raw_dir()), "build")
    if problem:
        print(problem, file=sys.stderr)
        return 2
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
    problem = _raw_dir_problem(raw, "run")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    db = Path(args.db or settings.db_path())
    parse = None
    if not raw.exists() or not any(raw.iterdir()):
        from mipa.build import start_parse
        from mipa.simulate import simulate

        print(f"[mipa run] no feeds in {raw}: generating synthetic feeds", file=sys.stderr)
        # dbt parses the project on the other core while the feeds are generated
        parse = start_parse(db)
        kwargs = {} if args.seed is None else {"seed": args.seed}
        try:
            simulate(raw, **kwargs)
        except BaseException:
            from mipa.build import finish_parse

            finish_parse(parse, stop=True)
            raise
    try:
        build(raw, db, parse=parse)
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
