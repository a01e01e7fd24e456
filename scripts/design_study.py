"""Which estimator is unbiased where: bias, RMSE and coverage of every estimator's main
interval on additive and multiplicative (rate-ratio) effects, for forced departures,
confirmations and lead time (a mean over a varying number of confirmations).

Designs: annex and homogeneous effects, each additive and multiplicative, plus no effect;
estimators ETWFE (country-clustered), Callaway & Sant'Anna, TWFE (clustered), Poisson ETWFE
and the conformal factor model (per country and its average). Writes
``reports/montecarlo/designs-<design>/`` per design and ``reports/montecarlo/designs.csv``
(the overall and pooled-country rows), and prints them.

    python scripts/design_study.py --reps 200 --workers 2      # ~13 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ("forced_departures", "confirmations", "lead_time_days")
ESTIMATORS = "etwfe:cluster_unit,csdid,twfe:cluster_unit,poisson_etwfe,conformal"
DESIGNS = (("annex", "additive"), ("annex", "multiplicative"), ("homogeneous", "additive"),
           ("homogeneous", "multiplicative"), ("zero", "additive"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    frames = []
    for effects, form in DESIGNS:
        out = ROOT / "reports" / "montecarlo" / f"designs-{effects}-{form}"
        cmd = [sys.executable, "-m", "mipa.cli", "montecarlo", "--reps", str(args.reps), "--effects", effects,
               "--effect-form", form, "--estimators", ESTIMATORS, "--out", str(out), "--quiet"]
        for outcome in OUTCOMES:
            cmd += ["--outcome", outcome]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        print(f"{effects} {form}: {args.reps} replications in {(time.perf_counter() - started) / 60:.1f} min",
              flush=True)
        summary = pd.read_csv(out / "summary.csv")
        frames.append(summary[summary["scope"].isin(["overall", "countries"])])
    table = pd.concat(frames, ignore_index=True)
    table["width_over_oracle"] = table["median_width"] / table["oracle_width"]
    cols = ["effects", "outcome", "estimator", "inference", "scope", "n_intervals", "mean_truth", "bias", "rmse",
            "coverage", "rejection_rate", "width_over_oracle"]
    table = table[cols].sort_values(["outcome", "scope", "estimator", "effects"], kind="mergesort")
    table.to_csv(ROOT / "reports" / "montecarlo" / "designs.csv", index=False, float_format="%.6g")
    with pd.option_context("display.width", 220, "display.max_rows", 500):
        print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
