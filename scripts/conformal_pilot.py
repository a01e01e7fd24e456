"""Pilot Monte Carlo of the per-country conformal intervals (CWZ 2021) at the annex's design.

Draws ``--reps`` panels per effects pattern with the Monte Carlo harness's sampler
(:class:`mipa.montecarlo.design.PanelSampler`: 86 countries x 120 months, six partners each
its own cohort), runs :func:`mipa.inference.conformal.conformal_rows` for every variant
(model x statistic x smoothing of the control mean, ``--variants``, e.g. ``factor:t`` or
``factor:t:2``) on ``--outcome``, scores each interval against the planted per-country
truth as :mod:`mipa.montecarlo.harness` does (``covered = ci_low <= truth <= ci_high``,
``rejects_zero = 0 outside the interval``), summarises with
:func:`mipa.montecarlo.harness.summarize` and adds:

* a Wilson 95% interval for the coverage;
* the oracle width of a country: ``2 x 1.96 x SD`` of the variant's estimate across the
  replications (what a correctly sized normal interval around this estimator would need);
  ``ratio = median width / oracle width``. For the pooled scope ``countries`` the oracle
  width shown is the median of the six countries' oracle widths and ``ratio`` is the median
  over all pooled intervals of ``width / oracle width of its country`` (``ratio_medians``:
  the pooled median width over that median oracle width, the cruder reading).

Under ``--effects zero`` the rejection rate is the size of the test of no effect (under the
other patterns it is the power).

One process, no pool: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/conformal_pilot.py --reps 500``
(about 0.2 s to draw a panel plus ~5 ms (mean), ~60 ms (t) or ~15 ms (s1) per variant for
all six countries; the default six variants take ~9 minutes for 3 x 500 replications).
``--out DIR`` also writes the replicates and the summary there (nothing is written
otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mipa.inference.conformal import conformal_rows, inference_label  # noqa: E402
from mipa.inference.randomization import PanelArrays  # noqa: E402
from mipa.montecarlo.design import Design, PanelSampler  # noqa: E402
from mipa.montecarlo.harness import REPLICATE_COLUMNS, summarize  # noqa: E402

Z = 1.959963984540054


def wilson(p: float, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0 or not np.isfinite(p):
        return np.nan, np.nan
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def run_design(effects: str, reps: int, outcome: str, variants: list[tuple[str, str, int]], first: int,
               n_treated: int) -> tuple[pd.DataFrame, float]:
    sampler = PanelSampler(Design(effects=effects, n_treated=n_treated))  # the outcome is chosen below
    frames = []
    started = time.perf_counter()
    method_seconds = 0.0
    for rep in range(first, first + reps):
        drawn = sampler.draw(rep)
        pa = PanelArrays.from_frame(drawn.panel, outcome=outcome, unit="iso3", period="period",
                                    first_treat="first_treat")
        truth = drawn.truth[outcome]
        for model, statistic, smooth in variants:
            tick = time.perf_counter()
            rows = conformal_rows(pa, model=model, statistic=statistic, smooth=smooth)
            seconds = time.perf_counter() - tick
            method_seconds += seconds
            rows["estimator"] = model
            rows["inference"] = inference_label(model, statistic, smooth)
            rows["outcome"] = outcome
            rows["replication"] = rep
            rows["truth"] = [truth.get(s, np.nan) for s in rows["scope"]]
            rows["seconds"] = seconds
            frames.append(rows)
        if (rep - first + 1) % max(1, reps // 10) == 0:
            print(f"[{effects}] {rep - first + 1}/{reps} replications, {time.perf_counter() - started:.0f}s",
                  file=sys.stderr, flush=True)
    out = pd.concat(frames, ignore_index=True)
    lo, hi, th = (out[c].to_numpy(float) for c in ("ci_low", "ci_high", "truth"))
    estimated = np.isfinite(out["estimate"].to_numpy(float))
    # an empty confidence set (possible with the S_1 statistic: every constant effect is
    # rejected) covers nothing and rejects zero (the harness would leave it out, which
    # flatters); its width is NaN, so the median width is over the non-empty sets
    empty = estimated & np.isnan(lo) & np.isnan(hi)
    out["covered"] = np.where(estimated, (lo <= th) & (th <= hi), np.nan)
    out["rejects_zero"] = np.where(estimated, ((lo > 0) | (hi < 0)) | empty, np.nan)
    return out.reindex(columns=REPLICATE_COLUMNS), method_seconds


def table(replicates: pd.DataFrame, effects: str) -> pd.DataFrame:
    summary = summarize(replicates, Design(effects=effects))
    rep = replicates.copy()
    rep["width"] = rep["ci_high"] - rep["ci_low"]
    rep["empty"] = np.isfinite(rep["estimate"]) & rep["ci_low"].isna() & rep["ci_high"].isna()
    empty = rep.groupby(["inference", "scope"])["empty"].mean()
    empty_pooled = rep.groupby("inference")["empty"].mean()
    sd = rep.groupby(["inference", "scope"])["estimate"].std(ddof=1)
    oracle = (2 * Z * sd).rename("oracle_width")
    rep = rep.join(oracle, on=["inference", "scope"])
    rep["ratio"] = rep["width"] / rep["oracle_width"]
    pooled = rep.groupby("inference").agg(oracle_width=("oracle_width", "median"), ratio=("ratio", "median"))
    rows = []
    for _, s in summary.iterrows():
        lo, hi = wilson(s["coverage"], int(s["n_intervals"]))
        # summarize counts an empty set (NaN bounds) among the unbounded ones: separate them
        share_empty = float(empty_pooled[s["inference"]] if s["scope"] == "countries"
                            else empty[(s["inference"], s["scope"])])
        if s["scope"] == "countries":
            ow, ratio = pooled.loc[s["inference"], "oracle_width"], pooled.loc[s["inference"], "ratio"]
        else:
            ow = oracle.get((s["inference"], s["scope"]), np.nan)
            ratio = s["median_width"] / ow if ow > 0 else np.nan
        rows.append({
            "effects": effects, "inference": s["inference"], "scope": s["scope"], "n": int(s["n_intervals"]),
            "coverage": s["coverage"], "cov_lo": lo, "cov_hi": hi, "reject0": s["rejection_rate"],
            "median_width": s["median_width"], "unbounded": s["share_unbounded"] - share_empty, "empty": share_empty,
            "bias": s["bias"],
            "oracle_width": ow, "ratio": ratio, "ratio_medians": s["median_width"] / ow if ow > 0 else np.nan,
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--effects", default="annex,homogeneous,zero")
    p.add_argument("--outcome", default="forced_departures")
    p.add_argument("--variants", default="did:mean,factor:mean,did:t,factor:t,did:s1,factor:s1",
                   help="comma-separated model:statistic[:smooth] (statistic mean, t or s1; smooth = half-window"
                        " of the control mean's moving average, default 0)")
    p.add_argument("--first-replication", type=int, default=0)
    p.add_argument("--n-treated", type=int, default=6)
    p.add_argument("--out", default=None, help="folder for replicates_<effects>.parquet and summary.csv")
    p.add_argument("--from-replicates", default=None,
                   help="folder of a previous --out: summarise its replicates_<effects>.parquet without drawing")
    args = p.parse_args(argv)
    variants = []
    for v in args.variants.split(","):
        model, statistic, *rest = v.split(":")
        variants.append((model, statistic, int(rest[0]) if rest else 0))
    tables = []
    wall = time.perf_counter()
    for effects in args.effects.split(","):
        tick = time.perf_counter()
        if args.from_replicates:
            reps = pd.read_parquet(Path(args.from_replicates) / f"replicates_{effects}.parquet")
            tables.append(table(reps, effects))
            continue
        reps, method_seconds = run_design(effects, args.reps, args.outcome, variants, args.first_replication,
                                          args.n_treated)
        tables.append(table(reps, effects))
        print(f"[{effects}] {args.reps} replications in {time.perf_counter() - tick:.1f}s "
              f"(conformal methods {method_seconds:.1f}s: "
              f"{1000 * method_seconds / args.reps / len(variants):.1f} ms per variant and replication)",
              file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            reps.to_parquet(Path(args.out) / f"replicates_{effects}.parquet", index=False)
    out = pd.concat(tables, ignore_index=True)
    out["_s"] = out["scope"] != "countries"
    out = out.sort_values(["effects", "inference", "_s", "scope"], kind="mergesort").drop(columns="_s")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        out.to_csv(Path(args.out) / "summary.csv", index=False, float_format="%.6g")
    with pd.option_context("display.width", 220, "display.max_rows", 1000):
        print(out.round(3).to_string(index=False))
    print(f"total wall time {time.perf_counter() - wall:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
