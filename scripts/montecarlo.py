"""The full Monte Carlo behind the report's coverage column (benchmark-style: prints figures).

Runs ``--reps`` replications (default 500) of the annex design three times, with the annex's
per-country effects, with their average for every partner and with no effect, every
estimator and inference method of the
``fct_did_inference`` mart on forced departures, and writes

* ``reports/montecarlo/<effects>-<group>/``: replicates.parquet (resumable), summary.csv, run.json;
* ``montecarlo/inference_coverage.csv``: the summary the report shows next to every interval
  (with ``--write-results``; the committed file records the run's size and wall time). dbt
  reads it in place as the source ``montecarlo.inference_coverage`` (data, not a seed); this
  script is the only thing that writes it. ``--write-seed`` is a deprecated alias.

The default group ``all`` runs every estimator and method in one pass over the three designs
(annex, homogeneous and zero effects): each replication's panels are drawn once, every
method runs on them, and the same worker runs a replication number for all three designs,
so that what their panels share (the control countries, hence SDID's placebo time weights)
is computed once. Each design still gets its own folder, rows and summary. The other groups run (and resume) a part separately, e.g. to add a method
without rerunning the rest: ``fast`` (ETWFE, Callaway & Sant'Anna, TWFE with every
inference method), ``conformal`` (the per-country conformal intervals and their overall
average, Poisson ETWFE clustered), ``sdid`` (synthetic DiD with the exhaustive placebo, the
slowest), ``conformal_ratio`` (the ratio model) and ``poisson_conformal`` (Poisson ETWFE's
own effects with conformal intervals). The results file holds every method of the finished
runs, a method found in several runs taken from the first (``all`` first):

    python scripts/montecarlo.py --reps 500                             # every method, one pass
    python scripts/montecarlo.py --reps 500 --groups poisson_conformal --workers 1
    python scripts/montecarlo.py --groups "" --write-results          # results from finished runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mipa.montecarlo.runs import read_run, run_in_folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("montecarlo") / "inference_coverage.csv"  # relative to ROOT; read by dbt as a source
# a group's run folder resumes only the methods it ran first: a method added later gets its own group
GROUPS = {
    "all": "",  # every estimator and method
    "fast": "etwfe,csdid,twfe",
    "conformal": "conformal:conformal_average_factor_t_ma2,conformal:conformal_average_factor_refit_ma2,"
                 "conformal:conformal_factor_t_ma2,poisson_etwfe:cluster_unit",
    "sdid": "sdid",
    "conformal_ratio": "conformal:conformal_average_ratio_refit,conformal:conformal_ratio_t",
    "poisson_conformal": "poisson_etwfe:conformal_average_poisson_refit,poisson_etwfe:conformal_poisson_t",
}
DESIGNS = ("annex", "homogeneous", "zero")
RESULT_COLUMNS = ["effects", "estimator", "inference", "outcome", "scope", "n_replications", "n_intervals", "coverage",
                  "coverage_mcse", "rejection_rate", "median_width", "oracle_width", "share_unbounded", "bias",
                  "rmse", "wall_seconds"]


def run_dir(effects: str, group: str) -> Path:
    return ROOT / "reports" / "montecarlo" / f"{effects}-{group}"


def run_group(group: str, reps: int, workers: int | None) -> float:
    """Every design x one estimator group through one ``mipa montecarlo`` pass (each
    design resumes from its own folder's checkpoint)."""
    return run_in_folder(run_dir("{effects}", group), reps=reps, effects=",".join(DESIGNS), estimators=GROUPS[group],
                         workers=workers, quiet=False)


def in_group(group: str, estimator: str, inference: str) -> bool:
    """Whether ``estimator:inference`` is one of the group's (a bare estimator takes all its methods)."""
    if not GROUPS[group]:
        return True
    tokens = GROUPS[group].split(",")
    return estimator in tokens or f"{estimator}:{inference}" in tokens


def collect(dirs: list[Path]) -> pd.DataFrame:
    """The summaries of finished runs, each row with its run's wall time."""
    frames = []
    for folder in dirs:
        summary = read_run(folder)
        if summary is None:
            continue
        group = folder.name.split("-", 1)[-1]
        if group in GROUPS:  # a run folder holds only its group's estimators and methods
            summary = summary[[in_group(group, e, m) for e, m in zip(summary["estimator"], summary["inference"],
                                                                      strict=True)]]
        frames.append(summary)
    table = pd.concat(frames, ignore_index=True)
    return table.drop_duplicates(["effects", "estimator", "inference", "outcome", "scope"], keep="first")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--groups", default="all",
                        help=f"comma-separated, of: {', '.join(GROUPS)} (empty: run nothing)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--write-results", action="store_true",
                        help=f"write {RESULTS.as_posix()} from every finished run folder")
    parser.add_argument("--write-seed", action="store_true", help="deprecated alias of --write-results")
    parser.add_argument("--from", dest="sources", action="append", type=Path, default=None,
                        help="run folders to collect (default: reports/montecarlo/<design>-<group> for all)")
    args = parser.parse_args()
    if args.write_seed:
        print(f"--write-seed is deprecated: use --write-results (the results are {RESULTS.as_posix()}, "
              "a dbt source, not a seed)", file=sys.stderr)
        args.write_results = True
    for group in [g for g in args.groups.split(",") if g]:
        seconds = run_group(group, args.reps, args.workers)
        print(f"{group:>4}: {args.reps} replications of {', '.join(DESIGNS)} in {seconds / 60:.1f} min", flush=True)
    dirs = args.sources or [run_dir(e, g) for g in GROUPS for e in DESIGNS]
    dirs = [d for d in dirs if (d / "summary.csv").exists()]
    if not dirs:
        print("no finished Monte Carlo run found", file=sys.stderr)
        return 1
    table = collect(dirs)
    shown = table[table["scope"].isin(["overall", "countries"])]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(shown[["effects", "estimator", "inference", "scope", "n_intervals", "coverage", "rejection_rate",
                     "median_width", "share_unbounded", "bias"]].round(3).to_string(index=False))
    walls = table.drop_duplicates(["effects", "wall_seconds"])["wall_seconds"]
    print(f"wall time of the runs: {walls.sum() / 60:.1f} min ({', '.join(f'{w / 60:.1f}' for w in walls)})")
    if args.write_results:
        (ROOT / RESULTS).parent.mkdir(exist_ok=True)
        table.reindex(columns=RESULT_COLUMNS).to_csv(ROOT / RESULTS, index=False, float_format="%.6g",
                                                     lineterminator="\n")
        print(f"wrote {RESULTS.as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
