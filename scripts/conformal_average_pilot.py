"""Pilot Monte Carlo of OVERALL (average over the treated countries) conformal intervals.

Screens variants of :func:`mipa.inference.conformal.conformal_average` at the annex's
design (:class:`mipa.montecarlo.design.PanelSampler`, 86 countries x 120 months, six
partners each its own cohort) and scores them as :mod:`mipa.montecarlo.harness` does:
``covered = ci_low <= truth <= ci_high`` against the planted overall truth, ``rejects_zero
= 0 outside the interval``; the oracle width is ``2 x 1.96 x sd(estimate - truth)`` over the
replications (the harness's) and ``oracle_sd_est`` the same with ``sd(estimate)`` (the
per-country pilot's).

A variant is ``name=key:value;key:value`` (see :func:`parse_variant`), keys:

* ``lags``: Bartlett lags of the influence series (``auto`` = ``floor(T^(1/3))``);
* ``var``: ``influence`` (the module's block statistic, ``studentize="block"``: the
  Bartlett long-run variance of the summed influence series of the block mean
  differences), ``units`` (the sum of the units' own long-run variances, no cross-unit
  covariance), ``none`` (no studentization: the weighted mean difference), ``refit``
  (the module's ``studentize="refit"``: every unit's effect re-estimated on the shifted
  null residuals and studentized by its own sandwich/Bartlett standard error, see
  :func:`_refit_parts`), ``refitunits`` (the same with the sum of the units' own variances);
* ``weights``: ``post`` (post months, the harness's estimand) or ``precision``
  (inverse of each unit's studentized squared standard error; the truth is then
  re-weighted the same way, which the harness would NOT do);
* ``shifts``: ``all`` or ``max<K>`` (only the shifts ``k <= K`` or ``k >= T - K``; diagnosis
  only, not a group);
* ``smooth``: the control-mean smoothing (default 2); ``model``: factor (default) or did.
* ``impl``: ``module`` runs the module's own ``conformal_average`` (with ``option``).

``--outcome`` takes a comma-separated list (one panel draw serves them all).

Columns: coverage with its Wilson 95% interval, ``reject0`` (size under ``zero``),
``median_width``, ``oracle`` and ``ratio = median_width / oracle``, ``bias``, ``rmse``,
``med_se_x3.92/oracle`` (the median studentized standard error over the oracle's) and
``c_eff`` (median of width / (2 se): the permutation critical value the interval amounts
to), ``ms`` per call.

One process: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/conformal_average_pilot.py --reps 150``
(about 0.5 s a replication to draw the panel and ~10-20 ms per variant and outcome).
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

from mipa.estimability import attempt  # noqa: E402
from mipa.inference import conformal as cf  # noqa: E402
from mipa.inference.panel_arrays import PanelArrays  # noqa: E402
from mipa.montecarlo.design import Design, PanelSampler  # noqa: E402

Z = 1.959963984540054


def wilson(p: float, n: int, z: float = Z) -> tuple[float, float]:
    if n == 0 or not np.isfinite(p):
        return np.nan, np.nan
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


class VariantStats(cf.StudentStats):
    """A generalisation of :class:`mipa.inference.conformal.AverageStats` for screening."""

    def __init__(self, fits, weights, *, lags, var="influence", keep=None, estimates=None):
        T = fits[0].used.size
        k = np.arange(T)[:, None]
        t = np.arange(T)[None, :]
        a = np.zeros(T)
        b = np.zeros(T)
        g0 = np.zeros((T, T))
        g1 = np.zeros((T, T))
        per_unit = []
        for idx, (w, f) in enumerate(zip(weights, fits)):
            start = int(np.flatnonzero(f.post)[0])
            span = int(np.flatnonzero(f.post)[-1]) - start + 1
            inside = (((t - start - k) % T) < span) & f.used[None, :]
            outside = ~inside & f.used[None, :]
            n_in, n_out = inside.sum(axis=1), outside.sum(axis=1)
            ok = (n_in >= 1) & (n_out >= 2)
            w_in = np.where(ok, w / np.maximum(n_in, 1), 0.0)[:, None]
            w_out = np.where(ok, w / np.maximum(n_out, 1), 0.0)[:, None]
            est = f.estimate if estimates is None else estimates[idx]
            uhat = f.u0 - est * f.r
            gj = []
            for v, num, g in ((uhat, a, g0), (f.r, b, g1)):
                m_in = (inside * v).sum(axis=1, keepdims=True) / np.maximum(n_in, 1)[:, None]
                m_out = (outside * v).sum(axis=1, keepdims=True) / np.maximum(n_out, 1)[:, None]
                num += np.where(ok, w * (m_in - m_out)[:, 0], 0.0)
                gg = inside * (v - m_in) * w_in - outside * (v - m_out) * w_out
                g += gg
                gj.append(gg)
            per_unit.append(gj)
        if var.startswith("refit"):
            a, b, g0, g1, per_unit = _refit_parts(fits, weights, estimates)
        L = cf.bartlett_lags(T) if lags is None else int(lags)

        def lrv(x, z):
            out = (x * z).sum(axis=1)
            for lag in range(1, min(L, T - 1) + 1):
                out = out + (1 - lag / (L + 1)) * ((x * np.roll(z, -lag, 1)).sum(axis=1)
                                                   + (z * np.roll(x, -lag, 1)).sum(axis=1))
            return out

        if var in ("influence", "refit"):
            q0, q1, q2 = lrv(g0, g0), lrv(g0, g1), lrv(g1, g1)
        elif var in ("units", "refitunits"):
            q0 = sum(lrv(x, x) for x, _ in per_unit)
            q1 = sum(lrv(x, z) for x, z in per_unit)
            q2 = sum(lrv(z, z) for _, z in per_unit)
        elif var == "none":
            q0, q1, q2 = np.ones(T), np.zeros(T), np.zeros(T)
        else:
            raise ValueError(var)
        keep = np.ones(T, bool) if keep is None else keep
        keep[0] = True
        self.a, self.b, self.q0, self.q1, self.q2 = (x[keep] for x in (a, b, q0, q1, q2))
        self.eps = 1e-12 * max(1.0, float(np.abs(self.q0).max()))


def _refit_parts(fits, weights, estimates=None):
    """Studentized refit statistic (Chung & Romano 2013; DiCiccio & Romano 2017): shift the
    null residuals of every unit by the same ``k`` (data moved, design fixed), re-estimate
    each unit's effect as ``c = r'v / r'r`` and form the influence ``r_t e_t / r'r`` of the
    residual ``e = v - c r``; all linear in ``delta``."""
    T = fits[0].used.size
    idx = (np.arange(T)[None, :] + np.arange(T)[:, None]) % T  # [k, t] -> t + k
    a = np.zeros(T)
    b = np.zeros(T)
    g0 = np.zeros((T, T))
    g1 = np.zeros((T, T))
    per_unit = []
    for n, (w, f) in enumerate(zip(weights, fits)):
        est = f.estimate if estimates is None else estimates[n]
        uhat = f.u0 - est * f.r
        r = f.r
        rr = float(r @ r)
        gj = []
        for v, num, g in ((uhat[idx], a, g0), (r[idx], b, g1)):
            c = v @ r / rr
            num += w * c
            gg = w * r[None, :] * (v - c[:, None] * r[None, :]) / rr
            g += gg
            gj.append(gg)
        per_unit.append(gj)
    return a, b, g0, g1, per_unit


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    opts = {"lags": "auto", "var": "influence", "weights": "post", "shifts": "all", "smooth": "2",
            "model": "factor", "impl": "script", "option": ""}
    for part in filter(None, body.split(";")):
        key, _, value = part.partition(":")
        if key not in opts:
            raise ValueError(f"unknown key {key!r} in {text!r}")
        opts[key] = value
    return name or text, opts


def run_variant(pa: PanelArrays, opts: dict, fits_cache: dict, truth: dict) -> dict:
    smooth, model = int(opts["smooth"]), opts["model"]
    if opts["impl"] == "module":
        tick = time.perf_counter()
        kw = {"smooth": smooth, "model": model}
        if opts["option"]:
            for part in opts["option"].split(","):
                key, _, value = part.partition("=")
                kw[key] = None if value == "auto" else (int(value) if value.lstrip("-").isdigit() else value)
        res, _ = cf.conformal_average(pa, **kw)
        return {"estimate": res.estimate, "ci_low": res.ci_low, "ci_high": res.ci_high, "p_value": res.p_value,
                "se": res.std_error, "truth": truth["overall"], "seconds": time.perf_counter() - tick}
    key = (model, smooth)
    if key not in fits_cache:
        fits = []
        for unit in pa.units[pa.treated]:
            fit, _ = attempt(lambda unit=unit: cf.unit_fit(pa, unit, model=model, alpha=0.05, smooth=smooth))
            if fit is not None:
                fits.append(fit)
        fits_cache[key] = fits
    fits = fits_cache[key]
    tick = time.perf_counter()
    est = np.array([f.estimate for f in fits])
    post = np.array([f.post.sum() for f in fits], dtype=float)
    if opts["weights"] == "post":
        w = post
    elif opts["weights"] == "precision":
        se = []
        for f in fits:
            s = VariantStats([f], np.array([1.0]), lags=None)
            se.append(np.sqrt(max(s.q0[0], 0)) / abs(s.b[0]))
        w = 1 / np.square(se)
    else:
        raise ValueError(opts["weights"])
    w = w / w.sum()
    estimate = float(w @ est)
    tr = np.array([truth[f.scope] for f in fits])
    truth_w = float(w @ tr) if opts["weights"] != "post" else truth["overall"]
    lags = None if opts["lags"] == "auto" else int(opts["lags"])
    T = fits[0].used.size
    keep = None
    if opts["shifts"].startswith("max"):  # only shifts k <= K or k >= T - K (diagnosis: near the identity)
        K = int(opts["shifts"][3:])
        kk = np.arange(T)
        keep = (kk <= K) | (kk >= T - K)
    stats = VariantStats(fits, w, lags=lags, var=opts["var"], keep=keep)
    lo, hi, _ = cf.invert(stats, 0.05, 0.0)
    p0 = float(cf.count_at_least(stats(np.array([0.0 - estimate])))[0] / stats.n_shifts)
    se = float(np.sqrt(max(float(stats.q0[0]), 0.0)) / abs(float(stats.b[0])))
    return {"estimate": estimate, "ci_low": estimate + lo, "ci_high": estimate + hi, "p_value": p0, "se": se,
            "truth": truth_w, "seconds": time.perf_counter() - tick}


def run_design(effects: str, reps: int, first: int, outcome: str, variants: list[tuple[str, dict]]) -> pd.DataFrame:
    sampler = PanelSampler(Design(effects=effects))
    rows = []
    started = time.perf_counter()
    for rep in range(first, first + reps):
        drawn = sampler.draw(rep)
        for oc in outcome.split(","):
            pa = PanelArrays.from_frame(drawn.panel, outcome=oc, unit="iso3", period="period",
                                        first_treat="first_treat")
            cache: dict = {}
            for name, opts in variants:
                out = run_variant(pa, opts, cache, drawn.truth[oc])
                rows.append({"effects": effects, "outcome": oc, "variant": name, "replication": rep, **out})
        if (rep - first + 1) % max(1, reps // 5) == 0:
            print(f"[{effects}] {rep - first + 1}/{reps}, {time.perf_counter() - started:.0f}s", file=sys.stderr,
                  flush=True)
    return pd.DataFrame(rows)


def summarize(rep: pd.DataFrame) -> pd.DataFrame:
    out = []
    if "outcome" not in rep:
        rep = rep.assign(outcome="forced_departures")
    for (outcome, effects, variant), g in rep.groupby(["outcome", "effects", "variant"], sort=False):
        lo, hi, th, est = (g[c].to_numpy(float) for c in ("ci_low", "ci_high", "truth", "estimate"))
        ok = ~(np.isnan(lo) | np.isnan(hi))
        cov = float(np.mean((lo[ok] <= th[ok]) & (th[ok] <= hi[ok])))
        rej = float(np.mean((lo[ok] > 0) | (hi[ok] < 0)))
        width = (hi - lo)[ok]
        fin = np.isfinite(width)
        err = est - th
        oracle = 2 * Z * np.std(err, ddof=1)
        c_lo, c_hi = wilson(cov, int(ok.sum()))
        mw = float(np.median(width[fin]))
        out.append({"outcome": outcome, "effects": effects, "variant": variant, "n": int(ok.sum()), "coverage": cov, "cov_lo": c_lo,
                    "cov_hi": c_hi, "reject0": rej, "median_width": mw, "oracle": oracle, "ratio": mw / oracle,
                    "oracle_sd_est": 2 * Z * np.std(est, ddof=1), "unbounded": float(np.mean(~fin)),
                    "bias": float(err.mean()), "rmse": float(np.sqrt(np.mean(err ** 2))),
                    "med_se_x3.92/oracle": float(np.median(g["se"]) * 2 * Z / oracle),
                    "c_eff": float(np.median(width[fin] / (2 * g["se"].to_numpy(float)[ok][fin]))),
                    "ms": 1000 * float(g["seconds"].mean())})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=150)
    p.add_argument("--first-replication", type=int, default=0)
    p.add_argument("--effects", default="annex,homogeneous,zero")
    p.add_argument("--outcome", default="forced_departures")
    p.add_argument("--variant", action="append", default=None, help="name=key:value;key:value (repeatable)")
    p.add_argument("--out", default=None, help="folder for replicates.parquet and summary.csv")
    p.add_argument("--from-replicates", default=None)
    args = p.parse_args(argv)
    variants = [parse_variant(v) for v in (args.variant or ["base="])]
    wall = time.perf_counter()
    if args.from_replicates:
        rep = pd.read_parquet(Path(args.from_replicates) / "replicates.parquet")
    else:
        rep = pd.concat([run_design(e, args.reps, args.first_replication, args.outcome, variants)
                         for e in args.effects.split(",")], ignore_index=True)
    summary = summarize(rep)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        rep.to_parquet(Path(args.out) / "replicates.parquet", index=False)
        summary.to_csv(Path(args.out) / "summary.csv", index=False, float_format="%.6g")
    with pd.option_context("display.width", 250, "display.max_rows", 1000, "display.max_columns", 50):
        print(summary.round(3).to_string(index=False))
    print(f"total wall time {time.perf_counter() - wall:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
