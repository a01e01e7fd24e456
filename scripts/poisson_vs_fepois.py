"""Wall time of mipa's Poisson ETWFE fit against ``pyfixest.fepois`` on the same model.

The measurement behind the one-line reason at the top of
``src/mipa/estimators/poisson_fit.py`` (why the fit is hand-written). Panel: the default
Monte Carlo design's replication 0 (:class:`mipa.montecarlo.design.PanelSampler`: the
86 countries x 120 months of the annex-calibrated synthetic panel), outcome
``forced_departures``. For each design (not-yet-treated cells; never-treated event-study
cells) both fit the same saturated model on the same rows: unit and period fixed effects
and one dummy per treated cell, the rows that :func:`mipa.estimators.poisson_etwfe.fit_saturated_cells`
keeps after its separation check, clustered by unit.

* ``mipa fit``: :func:`mipa.estimators.poisson_fit.poisson_fe_fit` (coefficients and the
  clustered sandwich);
* ``mipa call``: a whole :func:`mipa.estimators.poisson_etwfe.poisson_etwfe` call (sample,
  separation check, fit, count-scale effects, tables);
* ``fepois``: ``pyfixest.fepois("y ~ cells | u + t", vcov={"CRV1": "u"})`` with its
  defaults, and with the tolerances the tests use to compare coefficients to 1e-6
  (``iwls_tol=1e-12``, ``fixef_tol=1e-13``).

Each time is the best of ``--repeat`` runs after one warm-up run (pyfixest compiles its
numba kernels on first use). Prints the times, the ratio fepois / mipa fit and the
largest coefficient difference.

    .venv/bin/python scripts/poisson_vs_fepois.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mipa.estimators.poisson_etwfe import fit_saturated_cells, poisson_etwfe, poisson_sample
from mipa.estimators.poisson_fit import poisson_fe_fit
from mipa.montecarlo.design import Design, PanelSampler

KW = dict(outcome="forced_departures", unit="iso3", period="period", first_treat="first_treat")


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs after a warm-up run, and the last result."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def compare(panel: pd.DataFrame, control_group: str, repeat: int) -> None:
    import pyfixest as pf

    sample = poisson_sample(panel, **{k: KW[k] for k in ("outcome", "unit", "period", "first_treat")},
                            control_group=control_group, cohort="group")
    sc = fit_saturated_cells(sample)
    act = sc.active
    y, u, z = sample.y[act], sc.u_act, sc.z_all[act]
    rows = pd.DataFrame({"y": y, "u": sample.unit_codes[act], "t": sample.period_codes[act]})
    cells = pd.DataFrame({f"c{c}": (sample.cell_idx[act] == c).astype(float) for c in sc.c_levels})
    data = pd.concat([rows, cells], axis=1)
    fml = "y ~ " + " + ".join(cells.columns) + " | u + t"

    t_fit, fit = best_of(lambda: poisson_fe_fit(y, u, z), repeat)
    t_call, _ = best_of(lambda: poisson_etwfe(panel, **KW, control_group=control_group), repeat)
    t_default, fe_default = best_of(lambda: pf.fepois(fml, data=data, vcov={"CRV1": "u"}), repeat)
    t_tight, fe_tight = best_of(lambda: pf.fepois(fml, data=data, vcov={"CRV1": "u"}, iwls_tol=1e-12,
                                                  iwls_maxiter=100, demeaner=pf.MapDemeaner(fixef_tol=1e-13),
                                                  separation_check=[]), repeat)
    ours = {f"c{c}": fit.coef[sc.c_pos[c]] for c in sc.c_levels if fit.kept[sc.c_pos[c]]}

    def diff(fe: Any) -> float:
        coef = fe.coef()
        return float(max(abs(ours[n] - coef[n]) for n in ours)) if set(ours) == set(coef.index) else np.nan

    print(f"{control_group}: {len(y)} rows, {sc.n_u_act} units, {sc.t_levels.size} periods, {cells.shape[1]} cells")
    print(f"  mipa fit (poisson_fe_fit)          {t_fit:8.3f} s")
    print(f"  mipa call (poisson_etwfe, whole)   {t_call:8.3f} s")
    print(f"  pyfixest fepois, defaults          {t_default:8.3f} s  ratio {t_default / t_fit:6.1f}x  "
          f"max |coef diff| {diff(fe_default):.1e}")
    print(f"  pyfixest fepois, tests' tolerances {t_tight:8.3f} s  ratio {t_tight / t_fit:6.1f}x  "
          f"max |coef diff| {diff(fe_tight):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    panel = PanelSampler(Design()).draw(0).panel
    print(f"panel: {panel.iso3.nunique()} countries x {panel.period.nunique()} months")
    for control_group in ("notyettreated", "nevertreated"):
        compare(panel, control_group, args.repeat)


if __name__ == "__main__":
    main()
