"""Benchmark figures (printed, never asserted): issue 15's targets, each measured in this run
beside its target and, where there is one, a peer measured on the same data in the same run.

* ``mipa run`` end to end (simulate, load, dbt build with every estimator, inference method,
  sensitivity and robustness model, the report in English and Dutch on one page, validation);
* the Monte Carlo: ``--mc-reps`` replications of the three designs in one pass with every
  estimator and method, extrapolated to 500 replications on the same workers;
* ``mipa --help`` and ``import mipa``;
* ETWFE against pyfixest ``feols`` and Callaway & Sant'Anna against ``csdid`` on the same panel;
* SDID against ``synthdid``;
* the panel build on each ``--scale`` x the default volume (default 10 and 100, CSV feeds) against a bare DuckDB
  count of distinct records per nationality and month over the same files, with peak RSS.

A table of every figure against its target closes the output.

    make bench                       # everything (the scale-100 part takes a few minutes)
    python scripts/benchmark.py --skip-scale --mc-reps 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from mipa import settings  # noqa: E402
from mipa.build import build  # noqa: E402
from mipa.contract import FEEDS  # noqa: E402
from mipa.deliveries import pseudonym_sql  # noqa: E402
from mipa.estimation import OUTCOMES, EstimationSettings, prepare_panel  # noqa: E402
from mipa.estimators.csdid import callaway_santanna  # noqa: E402
from mipa.estimators.etwfe import etwfe  # noqa: E402
from mipa.estimators.twfe import twfe  # noqa: E402
from mipa.simulate import simulate  # noqa: E402

# (figure, measured, target, peer or ratio, met) rows of the closing table
TARGETS: list[tuple[str, str, str, str, str]] = []


def line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def target(figure: str, measured: str, goal: str, peer: str, met: bool | None) -> None:
    TARGETS.append((figure, measured, goal, peer, "-" if met is None else ("yes" if met else "NO")))


def _mipa(*args: str, env: dict | None = None, capture: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    exe = Path(sys.executable).with_name("mipa")
    started = time.perf_counter()
    done = subprocess.run([str(exe), *args], env={**os.environ, **(env or {})}, text=True,
                          capture_output=capture, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:] if capture else []
        raise RuntimeError(f"mipa {' '.join(args)} exited {done.returncode}: {' | '.join(tail)}")
    return seconds, done


def bench_cli() -> None:
    """``mipa --help`` and ``import mipa`` (best of three, new processes)."""
    helps = [_mipa("--help")[0] for _ in range(3)]
    line("mipa --help (best of 3)", f"{min(helps):.3f} s")
    target("mipa --help", f"{min(helps):.2f} s", "< 0.5 s", "", min(helps) < 0.5)
    imports = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import mipa"], check=True)
        imports.append(time.perf_counter() - started)
    line("python -c 'import mipa' (best of 3, interpreter start incl.)", f"{min(imports):.3f} s")
    target("import mipa", f"{min(imports):.2f} s", "< 1 s", "", min(imports) < 1.0)


def bench_run(root: Path) -> Path:
    """``mipa run`` on new synthetic feeds (its report holds both languages): wall, CPU, peak RSS."""
    raw, db = root / "run_raw", root / "run.duckdb"
    shutil.rmtree(raw, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, done = _mipa("run", "--raw-dir", str(raw), "--db", str(db))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = seconds
    line("mipa run (simulate, build, estimate, report en + nl, validate)", f"{seconds:.1f} s")
    line("  CPU seconds (all processes), cores used", f"{cpu:.0f} s, {cpu / total:.2f} of {os.cpu_count()}")
    line("  peak RSS of the largest child process", f"{after.ru_maxrss / 1024:,.0f} MiB")
    results = settings.project_dir() / "target" / "run_results.json"
    if results.exists():
        timings = sorted(((r.get("execution_time", 0.0), r["unique_id"]) for r in json.loads(results.read_text())["results"]),
                         reverse=True)[:6]
        for secs, uid in timings:
            line(f"  dbt node {uid.split('.')[-1]}", f"{secs:.1f} s")
    target("mipa run, both report languages", f"{total:.0f} s", "< 60 s", f"CPU {cpu:.0f} s on {os.cpu_count()} cores",
           total < 60)
    return db


def bench_montecarlo(root: Path, reps: int, workers: int) -> None:
    """A reduced Monte Carlo (the three designs in one pass, every estimator and method, as
    ``scripts/montecarlo.py`` runs it), run at two sizes in this run: the difference gives
    the cost of a replication of the three designs, the rest is the fixed cost of the run
    (worker start-up, imports, compiled code loading)."""
    small = 2 * workers

    def run(n: int) -> float:
        out = root / f"montecarlo-{n}"
        shutil.rmtree(out, ignore_errors=True)
        return _mipa("montecarlo", "--reps", str(n), "--effects", "annex,homogeneous,zero", "--workers",
                     str(workers), "--out", str(out / "{effects}"))[0]

    reps = max(reps, small + workers)
    seconds_small, seconds = run(small), run(reps)
    per_rep = (seconds - seconds_small) / (reps - small)
    fixed = max(seconds_small - small * per_rep, 0.0)
    full = fixed + per_rep * 500
    line(f"Monte Carlo, every estimator, 3 designs in one pass, {workers} workers: {small} and {reps} replications",
         f"{seconds_small:.1f} s and {seconds:.1f} s")
    line("  a replication of the 3 designs (both workers busy) / the fixed cost of the run",
         f"{per_rep:.2f} s / {fixed:.1f} s")
    line("  extrapolated: 500 replications x 3 designs", f"{full / 60:.1f} min")
    target("Monte Carlo, 500 reps x 3 designs (extrapolated)", f"{full / 60:.1f} min", "< 10 min",
           f"{per_rep / 3:.2f} s a design-replication, from {reps}", full < 600)


def bench_etwfe_feols(db: Path) -> None:
    """ETWFE (not-yet-treated, cohort cells) against the same regression in pyfixest."""
    import numpy as np

    con = duckdb.connect(str(db), read_only=True)
    panel = prepare_panel(con.execute("select * from marts.fct_country_month").df())
    con.close()
    common = {"unit": "iso3", "period": "period", "first_treat": "first_treat"}
    warnings.simplefilter("ignore")
    y = "forced_departures"
    mine = _time(lambda: etwfe(panel, outcome=y, **common), repeat=3)
    est = etwfe(panel, outcome=y, **common).overall()["estimate"]
    try:
        import pyfixest as pf
    except ImportError:
        line("pyfixest", "not installed (make install-dev) - comparison skipped")
        return
    data = panel[["iso3", "period", "first_treat", y]].dropna().copy()
    post = (data["first_treat"] > 0) & (data["period"] >= data["first_treat"])
    data["cell"] = np.where(post, "g" + data["first_treat"].astype(int).astype(str) + "_t"
                            + data["period"].astype(str), "ref")

    def run_feols():
        return pf.feols(f"{y} ~ i(cell, ref='ref') | iso3 + period", data=data, vcov={"CRV1": "iso3"})

    run_feols()  # pyfixest compiles on first use: time the second call
    theirs = _time(run_feols, repeat=3)
    fit = run_feols()
    coefs = fit.coef()
    counts = data.loc[post, "cell"].value_counts()
    names = {c: next((k for k in coefs.index if str(k).endswith(f"::{c}") or str(k).endswith(f"[T.{c}]")), None)
             for c in counts.index}
    simple = float(sum(coefs[names[c]] * n for c, n in counts.items() if names[c]) / counts.sum())
    line("ETWFE, forced departures (mipa)", f"{mine:.3f} s")
    line("  pyfixest feols, same cells and fixed effects", f"{theirs:.3f} s (simple ATT differs by {abs(simple - est):.1e})")
    line("  ratio feols / mipa", f"{theirs / mine:.2f}x")
    target("ETWFE vs pyfixest feols", f"{mine:.2f} s", "at least as fast", f"feols {theirs:.2f} s = {theirs / mine:.2f}x",
           theirs >= mine)


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


# the peer: read the same CSV files and count distinct records per nationality and month
BARE_GROUP_BY = """
select nationality, date_trunc('month', cast(departure_date as date)) as month_start,
       count(distinct record_id) filter (where departure_type = 'forced') as forced,
       count(distinct record_id) filter (where departure_type = 'independent') as independent
from read_csv('{raw}/returns/*.csv') group by all;
select nationality, date_trunc('month', cast(request_date as date)), count(distinct record_id)
from read_csv('{raw}/requests/*.csv') group by all;
select nationality, date_trunc('month', cast(decision_date as date)), count(distinct record_id)
from read_csv('{raw}/nationality_confirmations/*.csv') where outcome = 'confirmed' group by all;
select nationality, date_trunc('month', cast(issue_date as date)), count(distinct record_id)
from read_csv('{raw}/laissez_passers/*.csv') group by all;
"""


def bench_scale(root: Path, scale: int) -> float:
    """The panel build on ``scale`` times the default volume next to a bare DuckDB count; returns its peak RSS (MiB)."""
    raw = root / f"raw_x{scale}"
    shutil.rmtree(raw, ignore_errors=True)
    started = time.perf_counter()
    summary = simulate(raw, scale=scale, fmt="csv")  # the delivered format
    seconds = time.perf_counter() - started
    line(f"generator, --scale {scale} CSV (events/s)", f"{int(summary.events):,} in {seconds:.1f} s = {summary.events / seconds:,.0f}/s")
    line("  peak RSS of this process so far", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")

    con = duckdb.connect()
    started = time.perf_counter()
    for statement in BARE_GROUP_BY.format(raw=raw).split(";"):
        if statement.strip():
            con.execute(statement).fetchall()
    bare = time.perf_counter() - started
    line(f"bare DuckDB count of distinct records over the x{scale} CSV files", f"{bare:.2f} s")
    # what the load cannot do without: the keyed hash (HMAC-SHA256) of every person id,
    # the same DuckDB expression the load uses, over the same files (any key: same cost)
    started = time.perf_counter()
    for spec in FEEDS.values():
        if spec.person_column is not None:
            hashed = pseudonym_sql(f'"{spec.person_column}"', b"k" * 32)
            con.execute(f"select max({hashed}) from read_csv('{raw}/{spec.name}/*.csv', all_varchar = true)").fetchall()
    hashing = time.perf_counter() - started
    line(f"  the keyed pseudonym of every person id alone (x{scale})", f"{hashing:.2f} s = {hashing / bare:.1f}x the bare count")

    db = root / f"mipa_x{scale}.duckdb"
    started = time.perf_counter()
    # a new process, so its peak RSS is the build's own (dbt is its child)
    code = ("import sys, json, resource, time; from pathlib import Path; from mipa.build import build; "
            "t = time.perf_counter(); r = build(Path(sys.argv[1]), Path(sys.argv[2]), ['--select', "
            "'+fct_country_month', '+dim_country', 'country_neighbours', '--exclude', 'tag:estimation']); "
            "print(json.dumps({'ingest': r.seconds_ingest, 'seconds': time.perf_counter() - t, 'rss_self': "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'rss_children': "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
    log = root / f"panel_x{scale}.log"
    with log.open("w", encoding="utf-8") as output:  # a file, not a pipe: nothing blocks while sampling
        build = subprocess.Popen([sys.executable, "-c", code, str(raw), str(db)], stdout=output,
                                 stderr=subprocess.STDOUT, text=True)
        total_peak, largest_peak = _sample_tree_rss(build)
    if build.wait() != 0:
        raise RuntimeError(f"panel build on x{scale} failed; its output is in {log}")
    facts = json.loads(log.read_text(encoding="utf-8").strip().splitlines()[-1])
    panel = time.perf_counter() - started
    # sampled from /proc: getrusage's maxrss of a forked child counts the parent's pages at
    # the fork (this process holds the generated feeds), which overstated the build's memory
    rss = total_peak
    line(f"panel build on x{scale} (load + dbt build to fct_country_month, tests incl.)", f"{panel:.1f} s")
    line("  of which load (ingest, pseudonymisation)", f"{facts['ingest']:.1f} s")
    line("  of which dbt (start, parse, models and tests to fct_country_month)", f"{panel - facts['ingest']:.1f} s")
    line("  ratio panel build / bare GROUP BY", f"{panel / bare:.0f}x")
    line("  3x the bare count, against the keyed pseudonyms alone", f"{3 * bare:.1f} s vs {hashing:.1f} s")
    line("  peak RSS of the build, its processes together / the largest one", f"{total_peak:,.0f} / {largest_peak:,.0f} MiB")
    target(f"panel build x{scale} vs bare DuckDB", f"{panel:.0f} s", "within 3x", f"bare {bare:.1f} s = {panel / bare:.0f}x",
           panel / bare <= 3)
    target(f"peak RSS of the x{scale} build", f"{rss:,.0f} MiB", "< 1 GiB", "", rss < 1024)
    return rss


def _sample_tree_rss(proc: subprocess.Popen, every: float = 0.05) -> tuple[float, float]:
    """Peak resident memory (MiB) of ``proc`` and all its descendants while it runs, read
    from /proc every ``every`` seconds: the peak of their sum and of the largest one."""
    def rss_kib(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
                for text in handle:
                    if text.startswith("VmRSS:"):
                        return int(text.split()[1])
        except OSError:
            pass
        return 0

    def descendants(root: int) -> list[int]:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                        parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = [root], [root]
        while frontier:
            frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
            tree += frontier
        return tree

    total_peak = largest_peak = 0
    while proc.poll() is None:
        sizes = [rss_kib(pid) for pid in descendants(proc.pid)]
        total_peak = max(total_peak, sum(sizes))
        largest_peak = max(largest_peak, max(sizes, default=0))
        time.sleep(every)
    return total_peak / 1024, largest_peak / 1024


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
    line("  speed-up of mipa over csdid", f"{theirs / mine:.1f}x (target >= 20x)")
    target("Callaway & Sant'Anna vs csdid", f"{mine:.2f} s", ">= 20x faster", f"csdid {theirs:.1f} s = {theirs / mine:.0f}x",
           theirs / mine >= 20)


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
    parser.add_argument("--scale", default="10,100",
                        help="volumes of the scale step, comma-separated (RSS must stay flat between the first and last)")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--mc-reps", type=int, default=20, help="replications of the timed Monte Carlo (0: skip)")
    parser.add_argument("--skip-run", action="store_true", help="skip the timed mipa run")
    args = parser.parse_args(argv)
    root = args.workdir or settings.project_dir() / "data" / "bench"
    root.mkdir(parents=True, exist_ok=True)
    print(f"mipa benchmark ({os.cpu_count()} cores; figures, not assertions)", flush=True)
    bench_cli()
    if not args.skip_run:
        bench_run(root)
    raw = bench_generator(root)
    db = bench_build(raw, root)
    bench_estimators(db)
    bench_etwfe_feols(db)
    bench_sdid(db)
    if args.mc_reps:
        bench_montecarlo(root, args.mc_reps, workers=min(2, os.cpu_count() or 1))
    if not args.skip_scale:
        scales = [int(v) for v in str(args.scale).split(",") if v.strip()]
        rss = {scale: bench_scale(root, scale) for scale in scales}
        if len(scales) > 1:
            low, high = scales[0], scales[-1]
            ratio = rss[high] / rss[low]
            target(f"peak RSS flat from x{low} to x{high}", f"{ratio:.2f}x", "flat (<= 1.25x)",
                   f"{rss[low]:,.0f} -> {rss[high]:,.0f} MiB", ratio <= 1.25)
    print("\nTargets (issue 15), measured in this run:", flush=True)
    print(f"{'figure':<46} {'measured':>10} {'target':>18}  {'peer / ratio':<34} met", flush=True)
    for figure, measured, goal, peer, met in TARGETS:
        print(f"{figure:<46} {measured:>10} {goal:>18}  {peer:<34} {met}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
