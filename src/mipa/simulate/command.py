"""``mipa simulate``: write synthetic raw feeds (CLI)."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "generate synthetic raw return-service feeds with known planted effects"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help=HELP,
        description="Generate synthetic raw return-service feeds with known planted effects."
        " Writes one folder per feed (returns, requests, nationality_confirmations,"
        " laissez_passers) with one delivery file per year, plus truth.csv and _synthetic.json.",
    )
    p.add_argument("--out", default=os.environ.get("MIPA_RAW_DIR", "data/raw"),
                   help="output folder (default: $MIPA_RAW_DIR or data/raw)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's seed)")
    p.add_argument("--config", default=None, help="YAML file merged over the default config")
    p.add_argument("--scenario", choices=["default", "hard"], default="default",
                   help="preset: 'hard' = late and empty partners, an all-zero outcome, a tiny control pool")
    p.add_argument("--format", dest="fmt", choices=["csv", "parquet"], default=None,
                   help="file format (default: csv; parquet when --scale > 1)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply case loads (and effects) by N; streamed in bounded memory")
    p.add_argument("--dirty", action="store_true", help="inject messy-delivery defects")
    p.add_argument("--dirty-rate", type=float, default=None,
                   help="share of rows affected in dirty mode (default: config dirty.rate = 0.02)")
    p.add_argument("--effects", choices=["default", "zero"], default="default",
                   help="'zero' plants no effects (null simulation)")
    p.add_argument("--effect-scale", type=float, default=None,
                   help="multiply all planted effects (default: config effect_scale = 1)")
    p.add_argument("--layout", choices=["contract", "dutch"], default="contract",
                   help="'dutch' = Dutch column names, codes and dates, with a _mapping.yml per feed")
    p.add_argument("--force", action="store_true",
                   help="overwrite feed folders in --out even without a _synthetic.json marker")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """A one-line description of an argument the generator cannot use, or None."""
    import yaml

    from mipa.simulate.config import load_config

    if args.scale <= 0:
        return f"--scale must be > 0, got {args.scale:g}"
    if args.dirty_rate is not None and not 0 <= args.dirty_rate <= 1:
        return f"--dirty-rate must be a share between 0 and 1, got {args.dirty_rate:g}"
    if args.config is not None:
        try:
            load_config(args.config, args.scenario)
        except OSError as exc:
            return f"--config {args.config} cannot be read ({exc.strerror or exc}); give a YAML file"
        except (ValueError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0]
            return f"--config {args.config} is not a YAML mapping of settings ({first}); see src/mipa/simulate/default.yml"
    return None


def run(args: argparse.Namespace) -> int:
    from mipa.simulate.runner import simulate

    problem = _usage_problem(args)
    if problem:
        print(f"mipa simulate: {problem}", file=sys.stderr)
        return 2

    effect_scale = 0.0 if args.effects == "zero" else args.effect_scale
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        summary = simulate(
            args.out,
            seed=args.seed,
            scale=args.scale,
            dirty=args.dirty,
            fmt=args.fmt,
            config=args.config,
            scenario=args.scenario,
            effect_scale=effect_scale,
            dirty_rate=args.dirty_rate,
            force=args.force,
            progress=progress,
            layout=args.layout,
        )
    except FileExistsError as exc:
        print(f"mipa simulate: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{feed} {n:,}" for feed, n in summary.counts.items())
    print(
        f"wrote {summary.files} files to {summary.out_dir}: {counts}; "
        f"{summary.events:,} events in {summary.seconds:.1f}s ({summary.events_per_second:,.0f}/s)"
    )
    if summary.dirty_counts:
        print("dirty rows: " + ", ".join(f"{k} {v:,}" for k, v in summary.dirty_counts.items()))
    return 0
