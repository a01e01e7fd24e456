"""Monte Carlo runs in their own folders: start one (resuming its checkpoint) and read a
finished one back. The drivers of the shipped result files (``scripts/montecarlo.py``,
``scripts/design_study.py``) run one folder per design x group of methods through these."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["read_run", "run_in_folder"]


def run_in_folder(out: Path, *, reps: int, effects: str, estimators: str, outcomes: Sequence[str] = (),
                  effect_form: str | None = None, workers: int | None = None, quiet: bool = True) -> float:
    """``mipa montecarlo`` into ``out`` in a fresh process (resumes from ``out``'s checkpoint;
    one BLAS thread a worker; ``quiet`` False: its progress lines on stderr); returns the wall
    seconds."""
    cmd = [sys.executable, "-m", "mipa.cli", "montecarlo", "--reps", str(reps), "--effects", effects,
           "--estimators", estimators, "--out", str(out)]
    if quiet:
        cmd.append("--quiet")
    if effect_form:
        cmd += ["--effect-form", effect_form]
    for outcome in outcomes:
        cmd += ["--outcome", outcome]
    if workers:
        cmd += ["--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return time.perf_counter() - started


def read_run(folder: Path) -> pd.DataFrame | None:
    """The summary of a finished run with its wall time (``wall_seconds``: every resumed part
    together), or None when the folder holds no finished run."""
    if not (folder / "summary.csv").exists():
        return None
    facts = json.loads((folder / "run.json").read_text())
    summary = pd.read_csv(folder / "summary.csv")
    return summary.assign(wall_seconds=float(facts.get("total_wall_seconds", facts["wall_seconds"])))
