"""``mipa montecarlo``: coverage, size, width and bias of every interval (CLI)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HELP = "Monte Carlo of every estimator and inference method at the annex's design."


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "montecarlo",
        help=HELP,
        description=HELP + " Draws panels from the feed generator's model (86 countries x 120 months, the"
        " partners' start months), runs every method of the fct_did_inference mart on each and writes"
        " replicates.parquet, summary.csv and run.json to --out.",
    )
    p.add_argument("--reps", type=int, default=100, help="replications (default 100)")
    p.add_argument("--effects", default="annex",
                   help="planted effects: annex (the annex's per-country ones), homogeneous (their average"
                        " for every partner) or zero (none: the size); several, comma-separated, run in one"
                        " pass that computes what their panels share once (--out then holds {effects})")
    p.add_argument("--effect-scale", type=float, default=1.0, help="multiply the planted effects")
    p.add_argument("--effect-form", choices=["additive", "multiplicative"], default="additive",
                   help="planted effects: the same change every post month, or a constant rate ratio")
    p.add_argument("--n-treated", type=int, default=6, help="keep the first N partners in start order (1-6)")
    p.add_argument("--outcome", action="append", dest="outcomes",
                   help="outcome column (repeatable; default forced_departures)")
    p.add_argument("--estimators", default=None,
                   help="comma-separated estimators to run (etwfe,csdid,twfe,sdid,conformal; default all;"
                        " sdid is the slowest, ~8 s a replication)")
    p.add_argument("--seed", type=int, default=None, help="design seed (default: the generator's)")
    p.add_argument("--first-replication", type=int, default=0, help="number of the first replication")
    p.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--out", default=None,
                   help="output folder, {effects} replaced by each design's (default reports/montecarlo/{effects})")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


N_PARTNERS = 6  # the annex's partner countries, in start order


EFFECTS = ("annex", "homogeneous", "zero")


def effects_list(args: argparse.Namespace) -> list[str]:
    return [e.strip() for e in str(args.effects).split(",") if e.strip()]


def usage_problem(args: argparse.Namespace, outcomes: tuple[str, ...] | list[str]) -> str | None:
    """One line saying which argument cannot be used and what to give instead, or None."""
    effects = effects_list(args)
    wrong = [e for e in effects if e not in EFFECTS]
    if not effects or wrong:
        return f"unknown --effects {', '.join(wrong) or repr(args.effects)}; choose from {', '.join(EFFECTS)}"
    if len(set(effects)) != len(effects):
        return f"--effects names a design twice: {args.effects}"
    if len(effects) > 1 and args.out is not None and "{effects}" not in args.out:
        return "--out must hold {effects} when several --effects run together (one folder each)"
    unknown = [o for o in (args.outcomes or []) if o not in outcomes]
    if unknown:
        return f"unknown --outcome {', '.join(unknown)}; choose from {', '.join(outcomes)}"
    if args.reps < 1:
        return f"--reps must be at least 1, got {args.reps}"
    if not 1 <= args.n_treated <= N_PARTNERS:
        return f"--n-treated must be between 1 and {N_PARTNERS} (the annex's partners), got {args.n_treated}"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.first_replication < 0:
        return f"--first-replication must be 0 or more, got {args.first_replication}"
    return None


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from mipa import __version__
    from mipa.inference.suite import InferenceSettings
    from mipa.montecarlo.design import PANEL_OUTCOMES, Design
    from mipa.montecarlo.harness import only_estimators, run_designs, stderr_progress, summarize
    from mipa.outcomes import PRIMARY_OUTCOME

    problem = usage_problem(args, PANEL_OUTCOMES)
    if problem:
        print(f"mipa montecarlo: {problem}", file=sys.stderr)
        return 2
    outcomes = args.outcomes or [PRIMARY_OUTCOME]
    designs = []
    for effects in effects_list(args):
        options = {"effects": effects, "effect_scale": args.effect_scale, "effect_form": args.effect_form,
                   "n_treated": args.n_treated}
        if args.seed is not None:
            options["seed"] = args.seed
        designs.append(Design(**options))
    try:
        settings = only_estimators(InferenceSettings(), args.estimators.split(",") if args.estimators else None)
    except ValueError as exc:
        print(f"mipa montecarlo: {exc}", file=sys.stderr)
        return 2
    template = args.out or os.path.join("reports", "montecarlo", "{effects}")
    outs = [Path(template.replace("{effects}", design.effects)) for design in designs]
    previous = []
    for out in outs:
        out.mkdir(parents=True, exist_ok=True)
        previous.append(_previous_wall_seconds(out / "run.json", out / "replicates.parquet"))
    started = time.perf_counter()
    replicates = run_designs(
        designs, reps=args.reps, outcomes=outcomes, settings=settings, workers=args.workers,
        first_replication=args.first_replication, checkpoints=[out / "replicates.parquet" for out in outs],
        progress=None if args.quiet else stderr_progress,
    )
    seconds = time.perf_counter() - started
    # a joint run's time is shared equally: each design's folder holds its part
    share = seconds / len(designs)
    for design, out, rows, before in zip(designs, outs, replicates, previous, strict=True):
        summary = summarize(rows, design)
        summary.to_csv(out / "summary.csv", index=False, float_format="%.6g", lineterminator="\n")
        facts = {
            "design": design.describe(),
            "replications": args.reps,
            "first_replication": args.first_replication,
            "outcomes": outcomes,
            "inference_settings": json.loads(settings.as_json()),
            "workers": args.workers or os.cpu_count(),
            "wall_seconds": round(share, 1),
            # a resumed run adds the time of the parts before it
            "total_wall_seconds": round(before + share, 1),
            "joint_run": {"designs": [d.effects for d in designs], "wall_seconds": round(seconds, 1)},
            "mipa_version": __version__,
        }
        (out / "run.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        shown = summary[["outcome", "estimator", "inference", "scope", "n_intervals", "coverage", "rejection_rate",
                         "median_width", "share_unbounded", "bias"]]
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(f"== {design.label}")
            print(shown.round(3).to_string(index=False))
    print(f"{args.reps} replications of {len(designs)} design(s) in {seconds:.0f}s; wrote "
          f"{', '.join(str(out) for out in outs)} (summary.csv, replicates.parquet, run.json)")
    return 0


def _previous_wall_seconds(run_json: Path, checkpoint: Path) -> float:
    """Time already spent on the replications a resumed run takes from its checkpoint."""
    if not (run_json.exists() and checkpoint.exists()):
        return 0.0
    facts = json.loads(run_json.read_text(encoding="utf-8"))
    return float(facts.get("total_wall_seconds", facts.get("wall_seconds", 0.0)))
