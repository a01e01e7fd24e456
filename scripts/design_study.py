"""Which estimator is unbiased where: bias, RMSE and coverage of every estimator's main
interval on additive and multiplicative (rate-ratio) effects, for forced departures,
confirmations and lead time (a mean over a varying number of confirmations).

Designs: annex and homogeneous effects, each additive and multiplicative, plus no effect;
estimators ETWFE (country-clustered), Callaway & Sant'Anna, TWFE (clustered), Poisson ETWFE
and the conformal factor and ratio models (per country and their averages), and Poisson ETWFE's
own effects with conformal intervals; the group ``other_outcomes`` runs the candidate intervals
on the remaining outcomes (laissez-passers, requests, verified departures) with additive
effects, the designs the method choice reads. Each design x
group of methods runs (and resumes) in ``reports/montecarlo/designs-<effects>-<form>[-<group>]/``;
the script prints the overall and pooled-country rows and writes them to
``reports/montecarlo/designs.csv``, and with ``--write-results`` to
``montecarlo/estimator_designs.csv``, which dbt reads as the source
``montecarlo.estimator_designs`` (data, not a seed; this script is the only writer):

    python scripts/design_study.py --reps 500 --workers 2 --write-results   # ~75 min on 2 cores
    python scripts/design_study.py --groups "" --write-results              # from finished runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mipa.montecarlo.runs import read_run, run_in_folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("montecarlo") / "estimator_designs.csv"  # relative to ROOT; read by dbt as a source
OUTCOMES = ("forced_departures", "confirmations", "lead_time_days")
# a run folder resumes only the methods it ran first: methods added later get their own group
GROUPS = {
    "main": "etwfe:cluster_unit,csdid,twfe:cluster_unit,poisson_etwfe:cluster_unit,"
            "conformal:conformal_average_factor_t_ma2,"
            "conformal:conformal_average_factor_refit_ma2,conformal:conformal_factor_t_ma2",
    "ratio": "conformal:conformal_average_ratio_refit,conformal:conformal_ratio_t",
    "poisson": "poisson_etwfe:conformal_average_poisson_refit,poisson_etwfe:conformal_poisson_t",
    # the outcomes the study above leaves out, on the designs the method choice reads (additive):
    # each default interval then carries its own outcome's coverage, not forced departures'
    "other_outcomes": "etwfe:cluster_unit,poisson_etwfe,conformal:conformal_average_factor_t_ma2,"
                      "conformal:conformal_average_factor_refit_ma2,conformal:conformal_factor_t_ma2,"
                      "conformal:conformal_average_ratio_refit,conformal:conformal_ratio_t",
}
DESIGNS = (("annex", "additive"), ("annex", "multiplicative"), ("homogeneous", "additive"),
           ("homogeneous", "multiplicative"), ("zero", "additive"))
GROUP_OUTCOMES = {"other_outcomes": ("laissez_passers", "requests", "verified_departures")}
GROUP_DESIGNS = {"other_outcomes": (("annex", "additive"), ("homogeneous", "additive"), ("zero", "additive"))}
RESULT_COLUMNS = ["effects", "effect_form", "outcome", "estimator", "inference", "scope", "n_replications",
                  "n_intervals", "mean_truth", "bias", "rmse", "coverage", "coverage_mcse", "rejection_rate",
                  "median_width", "oracle_width", "wall_seconds"]


def run_dir(effects: str, form: str, group: str) -> Path:
    suffix = "" if group == "main" else f"-{group}"
    return ROOT / "reports" / "montecarlo" / f"designs-{effects}-{form}{suffix}"


def run(effects: str, form: str, group: str, reps: int, workers: int | None) -> None:
    seconds = run_in_folder(run_dir(effects, form, group), reps=reps, effects=effects, estimators=GROUPS[group],
                            outcomes=GROUP_OUTCOMES.get(group, OUTCOMES), effect_form=form, workers=workers)
    print(f"{effects} {form} {group}: {reps} replications in {seconds / 60:.1f} min", flush=True)


def collect() -> pd.DataFrame:
    """The overall and pooled-country rows of every finished run, with the run's wall time."""
    frames = []
    for effects, form in DESIGNS:
        for group in GROUPS:
            summary = read_run(run_dir(effects, form, group))
            if summary is not None:
                frames.append(summary[summary["scope"].isin(["overall", "countries"])].assign(
                    effects=effects, effect_form=form))
    if not frames:
        raise SystemExit("no finished design run found")
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["outcome", "scope", "estimator", "inference", "effects", "effect_form"],
                             kind="mergesort").reset_index(drop=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help=f"comma-separated, of: {', '.join(GROUPS)} (empty: run nothing)")
    parser.add_argument("--write-results", action="store_true", help=f"write {RESULTS.as_posix()}")
    args = parser.parse_args()
    for group in [g for g in args.groups.split(",") if g]:
        for effects, form in GROUP_DESIGNS.get(group, DESIGNS):
            run(effects, form, group, args.reps, args.workers)
    table = collect()
    table["width_over_oracle"] = table["median_width"] / table["oracle_width"]
    cols = ["effects", "effect_form", "outcome", "estimator", "inference", "scope", "n_intervals", "mean_truth",
            "bias", "rmse", "coverage", "rejection_rate", "width_over_oracle"]
    table[cols].to_csv(ROOT / "reports" / "montecarlo" / "designs.csv", index=False, float_format="%.6g")
    with pd.option_context("display.width", 220, "display.max_rows", 500):
        print(table[cols].round(3).to_string(index=False))
    if args.write_results:
        table.reindex(columns=RESULT_COLUMNS).to_csv(ROOT / RESULTS, index=False, float_format="%.6g",
                                                     lineterminator="\n")
        print(f"wrote {RESULTS.as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
