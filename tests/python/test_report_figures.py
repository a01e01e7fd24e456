"""Figures drawn on several processes are the bytes a serial run draws, in spec order."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from mipa.report.figure_model import FigureSpec, render, render_all


def _spec(k: int) -> FigureSpec:
    def draw() -> Figure:
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        x = np.linspace(0, 1, 50)
        ax.plot(x, np.sin((k + 1) * 3 * x), label=f"k={k}")
        ax.legend()
        return fig

    return FigureSpec(name=f"figure_{k}", number=str(k), caption=f"Figure {k}", alt=f"sine {k}", draw=draw)


def test_forked_figures_equal_serial_ones_in_spec_order():
    specs = [_spec(k) for k in range(5)]
    serial = [render(s) for s in specs]
    seen = []
    parallel = render_all(specs, workers=2, on_done=lambda fig, seconds: seen.append(fig.spec.name))
    assert [f.spec.name for f in parallel] == [s.name for s in specs]
    assert [(f.png, f.svg) for f in parallel] == [(f.png, f.svg) for f in serial]
    assert sorted(seen) == sorted(s.name for s in specs)
    # distinct figures really differ (the comparison above can fail)
    assert len({f.png for f in parallel}) == len(specs)


def test_one_worker_draws_in_process():
    specs = [_spec(k) for k in range(2)]
    assert [f.svg for f in render_all(specs, workers=1)] == [render(s).svg for s in specs]


def test_year_start_ticks_are_matplotlibs_year_ticks():
    import matplotlib.dates as mdates

    from mipa.report.figure_model import YearStartLocator

    for low, high in [("2016-01-01", "2024-12-01"), ("2015-07-15", "2025-03-01"), ("2019-12-31", "2020-01-02"),
                      ("2000-02-01", "2031-11-30")]:
        vmin, vmax = mdates.datestr2num(low), mdates.datestr2num(high)
        for step in (1, 2, 5):
            ours = [t for t in YearStartLocator(step).tick_values(vmin, vmax) if vmin <= t <= vmax]
            # matplotlib's tick_values takes datetimes (its __call__ converts the view limits)
            theirs = [t for t in mdates.YearLocator(step).tick_values(mdates.num2date(vmin), mdates.num2date(vmax))
                      if vmin <= t <= vmax]
            assert ours == theirs, (low, high, step)
