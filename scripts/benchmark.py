"""Benchmark figures (printed, never asserted): generator speed, dbt build time, panel build
on --scale 100 data against a bare DuckDB GROUP BY, and estimator wall times against the
`csdid` package on the same panel.

    make bench                       # everything (the scale-100 part takes a few minutes)
    python scripts/benchmark.py --skip-scale
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from mipa import settings  # noqa: E402
from mipa.build import build  # noqa: E402
from mipa.estimation import OUTCOMES, EstimationSettings, prepare_panel  # noqa: E402
from mipa.estimators.csdid import callaway_santanna  # noqa: E402
from mipa.estimators.etwfe import etwfe  # noqa: E402
from mipa.estimators.twfe import twfe  # noqa: E402
from mipa.simulate import simulate  # noqa: E402


def line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def bench_generator(root: Path) -> Path:
    raw = root / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    started = time.perf_counter()
    summary = simulate(raw)
    seconds = time.perf_counter() - started
    events = int(summary.events)
    line("generator, default (events, seconds, events/s)", f"{events:,} in {seconds:.2f} s = {events / seconds:,.0f}/s")
    return raw


def bench_build(raw: Path, root: Path) -> Path:
    db = root / "mipa.duckdb"
    started = time.perf_counter()
    result = build(raw, db)
    total = time.perf_counter() - started
    line("mipa build, default data (load + dbt build incl. estimation)", f"{total:.1f} s")
    line("  of which load (ingest)", f"{result.seconds_ingest:.1f} s")
    line("  of which dbt build", f"{result.seconds_dbt:.1f} s")
    return db


BARE_GROUP_BY = """
select nationality, date_trunc('month', cast(departure_date as date)) as month_start,
       count(*) filter (where departure_type = 'forced') as forced,
       count(*) filter (where departure_type = 'independent') as independent
from read_parquet('{raw}/returns/*.parquet') group by all;
select nationality, date_trunc('month', cast(request_date as date)), count(*)
from read_parquet('{raw}/requests/*.parquet') group by all;
select nationality, date_trunc('month', cast(decision_date as date)), count(*)
from read_parquet('{raw}/nationality_confirmations/*.parquet') where outcome = 'confirmed' group by all;
select nationality, date_trunc('month', cast(issue_date as date)), count(*)
from read_parquet('{raw}/laissez_passers/*.parquet') group by all;
"""


def bench_scale(root: Path, scale: int) -> None:
    raw = root / f"raw_x{scale}"
    shutil.rmtree(raw, ignore_errors=True)
    started = time.perf_counter()
    summary = simulate(raw, scale=scale, fmt="parquet")
    seconds = time.perf_counter() - started
    line(f"generator, --scale {scale} parquet (events/s)", f"{int(summary.events):,} in {seconds:.1f} s = {summary.events / seconds:,.0f}/s")
    line("  peak RSS of this process so far", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")

    con = duckdb.connect()
    started = time.perf_counter()
    for statement in BARE_GROUP_BY.format(raw=raw).split(";"):
        if statement.strip():
            con.execute(statement).fetchall()
    bare = time.perf_counter() - started
    line(f"bare DuckDB GROUP BY over the x{scale} files", f"{bare:.2f} s")

    db = root / f"mipa_x{scale}.duckdb"
    started = time.perf_counter()
    result = build(raw, db, ["--select", "+fct_country_month", "+dim_country", "--exclude", "tag:estimation"])
    panel = time.perf_counter() - started
    line(f"panel build on x{scale} (load + dbt build to fct_country_month, tests incl.)", f"{panel:.1f} s")
    line("  of which load (ingest, pseudonymisation)", f"{result.seconds_ingest:.1f} s")
    line("  ratio panel build / bare GROUP BY", f"{panel / bare:.0f}x")


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bench_estimators(db: Path) -> None:
    con = duckdb.connect(str(db), read_only=True)
    panel = prepare_panel(con.execute("select * from marts.fct_country_month").df())
    con.close()
    cfg = EstimationSettings()
    labels = dict(zip(panel["iso3"], panel["iso3"], strict=True))
    common = {"unit": "iso3", "period": "period", "first_treat": "first_treat"}
    warnings.simplefilter("ignore")
    timings = {
        "ETWFE (overall + per country)": lambda y: (
            etwfe(panel, outcome=y, **common),
            etwfe(panel, outcome=y, **common, cohort="unit", unit_labels=labels),
        ),
        "Callaway & Sant'Anna DR, 999 draws (overall + per country)": lambda y: (
            callaway_santanna(panel, outcome=y, **common, n_boot=cfg.n_boot, seed=cfg.seed),
            callaway_santanna(panel, outcome=y, **common, n_boot=cfg.n_boot, seed=cfg.seed, cohort="unit", unit_labels=labels),
        ),
        "TWFE (cluster, two-way, Driscoll-Kraay)": lambda y: twfe(panel, outcome=y, unit="iso3", period="period", treatments=("mipa",), vcov="all"),
    }
    total = 0.0
    for name, fn in timings.items():
        seconds = _time(lambda: [fn(y) for y in OUTCOMES], repeat=2)
        total += seconds
        line(f"{name}, all 6 outcomes", f"{seconds:.2f} s")
    line("whole estimation step, all 6 outcomes", f"{total:.2f} s (target < 10 s)")

    mine = _time(lambda: callaway_santanna(panel, outcome="forced_departures", **common, n_boot=999, seed=cfg.seed), repeat=3)
    line("mipa csdid, one outcome, ATT(g,t) + 999 bootstrap draws", f"{mine:.3f} s")
    simple = callaway_santanna(panel, outcome="forced_departures", **common, n_boot=999, seed=cfg.seed).overall()
    line("  its simple ATT (SE), to compare with csdid's printout", f"{simple['estimate']:.4f} ({simple['std_error']:.4f})")
    try:
        from csdid.att_gt import ATTgt
    except ImportError:
        line("csdid package", "not installed (pip install csdid) - comparison skipped")
        return
    data = panel[["iso3", "period", "first_treat", "forced_departures"]].copy()
    data["unit_id"] = pd.factorize(data["iso3"])[0] + 1

    def run_csdid() -> None:
        model = ATTgt(yname="forced_departures", tname="period", idname="unit_id", gname="first_treat",
                      data=data, control_group=["nevertreated"], biters=999)
        model.fit(est_method="dr", bstrap=True)
        model.aggte(typec="simple")

    theirs = _time(run_csdid, repeat=1)
    line("csdid package, same outcome, ATT(g,t) + bootstrap + simple", f"{theirs:.3f} s")
    line("  speed-up of mipa over csdid", f"{theirs / mine:.1f}x (target >= 5x)")


def bench_sdid(db: Path) -> None:
    """SDID per country with the exhaustive placebo SE, next to the ``synthdid`` package."""
    con = duckdb.connect(str(db), read_only=True)
    panel = prepare_panel(con.execute("select * from marts.fct_country_month").df())
    con.close()
    bench_sdid_panel(panel)


def bench_sdid_panel(panel: pd.DataFrame, outcome: str = "forced_departures") -> None:
    """Per-country SDID with placebo SE on one outcome (as the marts run it); the first
    partner alone against ``synthdid-py``'s estimate + placebo SE with as many fits."""
    import numpy as np

    from mipa.inference import sdid
    from mipa.inference.randomization import PanelArrays

    pa = PanelArrays.from_frame(panel, outcome=outcome, unit="iso3", period="period", first_treat="first_treat")
    kw = {"replications": 200, "seed": 20260701, "exhaustive": True, "overall": False, "on_gaps": "skip"}
    treated = np.flatnonzero(pa.treated)
    controls = np.flatnonzero(~pa.treated & np.isfinite(pa.y).all(axis=1))
    every = _time(lambda: sdid.sdid_by_unit(pa, **kw))
    line(f"SDID + placebo SE, {outcome}, all {treated.size} countries", f"{every:.2f} s (every control once)")
    j = treated[0]
    unit = str(pa.units[j])
    alone = pa.select(np.append(controls, j))
    mine = _time(lambda: sdid.sdid_by_unit(alone, **kw), repeat=2)
    line(f"  one country ({unit})", f"{mine:.2f} s ({controls.size} controls = placebo fits)")
    try:
        import synthdid
    except ImportError:
        line("synthdid package", "not installed (pip install synthdid-py) - comparison skipped")
        return
    Y = np.vstack([pa.y[controls], pa.y[[j]]])
    t0 = int(np.searchsorted(pa.periods, pa.first_treat[j]))

    def run_synthdid() -> None:
        est = synthdid.synthdid_estimate(Y, controls.size, t0)
        synthdid.vcov(est, method="placebo", replications=controls.size, random_state=20260701)

    theirs = _time(run_synthdid)
    line(f"synthdid package, {unit}, estimate + placebo SE", f"{theirs:.2f} s ({controls.size} random placebo fits)")
    line("  speed-up of mipa SDID over synthdid (same country, fits)", f"{theirs / mine:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.workdir or settings.project_dir() / "data" / "bench"
    root.mkdir(parents=True, exist_ok=True)
    print(f"mipa benchmark ({os.cpu_count()} cores; figures, not assertions)", flush=True)
    raw = bench_generator(root)
    db = bench_build(raw, root)
    bench_estimators(db)
    bench_sdid(db)
    if not args.skip_scale:
        bench_scale(root, args.scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
