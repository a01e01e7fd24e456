r"""Run a Monte Carlo: many replications of a :class:`~mipa.montecarlo.design.Design`,
every estimator and inference method of :func:`mipa.inference.suite.inference_table` on
each, and the operating characteristics per method and scope.

Per replication ``r`` and row (estimator, inference, outcome, scope), with the truth
``theta`` of :mod:`mipa.montecarlo.design`:

* ``covered = 1[ci_low <= theta <= ci_high]`` (the interval the marts and the report show);
* ``rejects_zero = 1[0 < ci_low or ci_high < 0]``: the 5% test of "no effect" that the
  interval implies (for the test-inversion methods the same as ``p < 0.05`` up to the
  inversion tolerance). Under ``effects="zero"`` its mean is the size, otherwise the power.

Summary per (estimator, inference, outcome, scope), ``R`` replications:
``coverage = mean(covered)`` with Monte Carlo standard error
``sqrt(coverage (1 - coverage) / R)``; ``rejection_rate = mean(rejects_zero)``;
``median_width`` and ``mean_width`` over the finite intervals and ``share_unbounded``;
``bias = mean(estimate - theta)``; ``rmse``; ``oracle_width = 2 x 1.96 x sd(estimate - theta)``,
the width of the interval an oracle that knew the estimator's sampling sd would report. Scope ``countries`` pools the six
per-country rows (each replication contributes six).

Replications run in worker processes (``workers``; each builds the design's fixed part
once) and are collected in replication order, so the output does not depend on the
number of workers or on timing. ``checkpoint`` (a Parquet path) is rewritten as
replications finish; a run started again with the same file skips the replications it
holds. :func:`run_designs` runs several designs in one pass (each replication of every
design in the same worker), so that what their panels share is computed once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from mipa.inference.suite import InferenceSettings, inference_table
from mipa.montecarlo.design import Design, PanelSampler
from mipa.outcomes import PRIMARY_OUTCOME

REPLICATE_COLUMNS = [
    "replication", "estimator", "inference", "outcome", "scope", "estimate", "ci_low", "ci_high", "p_value",
    "truth", "covered", "rejects_zero", "seconds",
]
SUMMARY_KEYS = ["effects", "estimator", "inference", "outcome", "scope"]

_SAMPLER: dict[Design, PanelSampler] = {}  # per worker process: each design's fixed part, built once


def _sampler(design: Design) -> PanelSampler:
    if design not in _SAMPLER:
        if len(_SAMPLER) >= 8:
            _SAMPLER.clear()
        _SAMPLER[design] = PanelSampler(design)
    return _SAMPLER[design]


def replicate(
    design: Design, replication: int, outcomes: Sequence[str], settings: InferenceSettings
) -> pd.DataFrame:
    """One replication: draw the panel, run every method on every outcome, score the rows."""
    drawn = _sampler(design).draw(replication)
    frames = []
    for outcome in outcomes:
        table = inference_table(drawn.panel, outcome, settings)
        truth = drawn.truth[outcome]
        table["truth"] = [truth.get(scope, np.nan) for scope in table["scope"]]
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    out["replication"] = int(replication)
    lo, hi, truth = out["ci_low"].to_numpy(float), out["ci_high"].to_numpy(float), out["truth"].to_numpy(float)
    valid = np.isfinite(out["estimate"].to_numpy(float)) & ~(np.isnan(lo) | np.isnan(hi))
    out["covered"] = np.where(valid, (lo <= truth) & (truth <= hi), np.nan)
    out["rejects_zero"] = np.where(valid, (lo > 0) | (hi < 0), np.nan)
    return out.reindex(columns=REPLICATE_COLUMNS)


def replicate_designs(
    designs: Sequence[Design], replication: int, outcomes: Sequence[str], settings: InferenceSettings
) -> list[pd.DataFrame]:
    """Replication ``replication`` of each design in turn, in one process: what the designs'
    panels share (their control countries are drawn alike) is then computed once (the
    placebo time weights of SDID, :func:`mipa.inference.sdid_fit.solve_many`). The rows are
    those of :func:`replicate` on each design alone."""
    return [replicate(design, replication, outcomes, settings) for design in designs]


def _worker_init() -> None:
    # one BLAS thread per worker: the processes already use every core
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def run_montecarlo(
    design: Design,
    *,
    reps: int,
    outcomes: Sequence[str] = (PRIMARY_OUTCOME,),
    settings: InferenceSettings | None = None,
    workers: int | None = None,
    first_replication: int = 0,
    checkpoint: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Replications ``first_replication .. first_replication + reps - 1``, one row per
    replication x method x outcome x scope (:data:`REPLICATE_COLUMNS`), sorted."""
    return run_designs([design], reps=reps, outcomes=outcomes, settings=settings, workers=workers,
                       first_replication=first_replication, checkpoints=[checkpoint], progress=progress)[0]


def _resumed(checkpoint: Path | None, wanted: list[int], outcomes: Sequence[str],
             say: Callable[[str], None]) -> tuple[list[pd.DataFrame], set[int]]:
    """The rows a checkpoint already holds for ``wanted`` and their replications."""
    if checkpoint is None or not Path(checkpoint).exists():
        return [], set()
    previous = pd.read_parquet(checkpoint)
    previous = previous[previous["replication"].isin(wanted) & previous["outcome"].isin(list(outcomes))]
    if not len(previous):
        return [], set()
    have = set(previous["replication"].unique())
    say(f"montecarlo: {len(have)} replications taken from {checkpoint}")
    return [previous], have


def run_designs(
    designs: Sequence[Design],
    *,
    reps: int,
    outcomes: Sequence[str] = (PRIMARY_OUTCOME,),
    settings: InferenceSettings | None = None,
    workers: int | None = None,
    first_replication: int = 0,
    checkpoints: Sequence[Path | None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[pd.DataFrame]:
    """:func:`run_montecarlo` for several designs in one pass: each replication number is
    drawn for every design by the same worker (:func:`replicate_designs`), so that what the
    designs share is computed once. One checkpoint per design (or None); the rows of each
    design are those of its own run."""
    settings = settings or InferenceSettings()
    say = progress or (lambda _msg: None)
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * len(designs)
    if len(checkpoints) != len(designs):
        raise ValueError("one checkpoint (or None) per design")
    wanted = list(range(first_replication, first_replication + reps))
    done: list[list[pd.DataFrame]] = []
    todo: dict[int, list[int]] = {}  # replication -> designs that still need it
    for d, checkpoint in enumerate(checkpoints):
        rows, have = _resumed(checkpoint, wanted, outcomes, say)
        done.append(rows)
        for rep in wanted:
            if rep not in have:
                todo.setdefault(rep, []).append(d)
    tasks = sorted(todo.items())
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    names = ",".join(design.effects for design in designs)
    started = time.perf_counter()
    last_write = started

    def save(force: bool = False) -> None:
        nonlocal last_write
        if not force and time.perf_counter() - last_write < 30:
            return
        for checkpoint, rows in zip(checkpoints, done, strict=True):
            if checkpoint is None or not rows:
                continue
            Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{checkpoint}.tmp")
            pd.concat(rows, ignore_index=True).to_parquet(tmp, index=False)
            os.replace(tmp, checkpoint)
        last_write = time.perf_counter()

    def report(n: int) -> None:
        elapsed = time.perf_counter() - started
        eta = elapsed / n * (len(tasks) - n)
        say(f"montecarlo [{names}]: {n}/{len(tasks)} replications, {_fmt_seconds(elapsed)} elapsed, "
            f"~{_fmt_seconds(eta)} left")

    def keep(which: list[int], frames: list[pd.DataFrame]) -> None:
        for d, frame in zip(which, frames, strict=True):
            done[d].append(frame)

    step = max(1, len(tasks) // 20)
    if workers == 1:
        for n, (rep, which) in enumerate(tasks, 1):
            keep(which, replicate_designs([designs[d] for d in which], rep, tuple(outcomes), settings))
            save()
            if n % step == 0 or n == len(tasks):
                report(n)
    elif tasks:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
            futures = {pool.submit(replicate_designs, [designs[d] for d in which], rep, tuple(outcomes), settings):
                       which for rep, which in tasks}
            for n, future in enumerate(as_completed(futures), 1):
                keep(futures[future], future.result())
                save()
                if n % step == 0 or n == len(tasks):
                    report(n)
    save(force=True)
    out = []
    for rows in done:
        if not rows:
            out.append(pd.DataFrame(columns=REPLICATE_COLUMNS))
            continue
        frame = pd.concat(rows, ignore_index=True)
        out.append(frame.sort_values(["replication", "outcome"], kind="mergesort").reset_index(drop=True))
    return out


def summarize(replicates: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Coverage, rejection rate, width, bias and RMSE per method and scope (module docstring)."""
    rows = replicates.copy()
    pooled = rows[rows["scope"] != "overall"].assign(scope="countries")
    rows = pd.concat([rows, pooled], ignore_index=True)
    rows["effects"] = design.label
    rows["width"] = rows["ci_high"] - rows["ci_low"]
    rows["error"] = rows["estimate"] - rows["truth"]
    out = []
    for key, grp in rows.groupby(SUMMARY_KEYS[1:], sort=False, dropna=False):
        scored = grp[grp["covered"].notna()]
        n = len(scored)
        cov = float(scored["covered"].mean()) if n else np.nan
        width = scored["width"].to_numpy(float)
        finite = np.isfinite(width)
        err = grp["error"].to_numpy(float)
        err = err[np.isfinite(err)]
        out.append({
            "effects": design.label,
            **dict(zip(SUMMARY_KEYS[1:], key, strict=True)),
            "n_replications": int(grp["replication"].nunique()),
            "n_intervals": n,
            "coverage": cov,
            "coverage_mcse": float(np.sqrt(cov * (1 - cov) / n)) if n else np.nan,
            "rejection_rate": float(scored["rejects_zero"].mean()) if n else np.nan,
            "median_width": float(np.median(width[finite])) if finite.any() else np.nan,
            # the oracle interval: estimate +- 1.96 x the estimator's sampling sd in this run
            "oracle_width": float(2 * 1.959964 * np.std(err, ddof=1)) if err.size > 1 else np.nan,
            "mean_width": float(width[finite].mean()) if finite.any() else np.nan,
            "share_unbounded": float((~finite).mean()) if n else np.nan,
            "mean_truth": float(grp["truth"].mean()),
            "bias": float(err.mean()) if err.size else np.nan,
            "rmse": float(np.sqrt((err**2).mean())) if err.size else np.nan,
            "mean_seconds": float(grp.drop_duplicates("replication")["seconds"].mean()),
        })
    summary = pd.DataFrame(out)
    method_order = {m: k for k, m in enumerate(dict.fromkeys(zip(replicates["estimator"], replicates["inference"],
                                                                 strict=True)))}
    summary["_m"] = [method_order[(e, m)] for e, m in zip(summary["estimator"], summary["inference"], strict=True)]
    summary["_s"] = [0 if s == "overall" else 1 if s == "countries" else 2 for s in summary["scope"]]
    summary = summary.sort_values(["outcome", "_m", "_s", "scope"], kind="mergesort")
    return summary.drop(columns=["_m", "_s"]).reset_index(drop=True)


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def only_estimators(settings: InferenceSettings, estimators: Sequence[str] | None) -> InferenceSettings:
    """``settings`` restricted to some estimators (None = all): ``etwfe`` keeps every method
    of ETWFE, ``etwfe:cluster_unit`` only that one (bias and RMSE need one method)."""
    if not estimators:
        return settings
    known = {e for e, _ in settings.methods} | {f"{e}:{m}" for e, m in settings.methods}
    unknown = sorted(set(estimators) - known)
    if unknown:
        raise ValueError(f"unknown estimator(s) {unknown}; choose from {sorted(known)}")
    wanted = set(estimators)
    return replace(settings, methods=tuple(m for m in settings.methods if m[0] in wanted or f"{m[0]}:{m[1]}" in wanted))
