"""The report's figure machinery (matplotlib, Agg): a :class:`FigureSpec` (number,
caption, alt text, a ``draw`` function), the house style (Okabe-Ito colours, locale tick
labels, year ticks, the COVID shading) and :func:`render`, which draws a spec and returns PNG
bytes and a byte-stable SVG (fixed hash salt, no date in the metadata, text kept as text).
No pyplot: figures are plain ``Figure`` objects, so nothing global is left behind. The
annex's figures are in :mod:`mipa.report.figures`, the parts' own in their modules.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import Locator, MaxNLocator, ScalarFormatter  # noqa: E402

from mipa.report import labels  # noqa: E402

PNG_DPI = 150
RC = {
    "svg.hashsalt": "mipa-report",  # stable ids in the SVG
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "figure.dpi": 100,
}
SVG_METADATA = {"Date": None}  # no timestamp: the same database gives the same bytes
PNG_METADATA = {"Software": None}

# Okabe-Ito colours: distinguishable with colour-vision deficiencies and in greyscale print
BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILION = "#D55E00"
GREY = "#6e6e6e"
COVID_FILL = "#d9d9d9"

@dataclass
class FigureSpec:
    name: str  # file stem and HTML id
    number: str
    caption: str
    alt: str
    draw: Callable[[], Figure]
    notes: list[str] = field(default_factory=list)


@dataclass
class RenderedFigure:
    spec: FigureSpec
    png: bytes
    svg: bytes


class LocaleFormatter(ScalarFormatter):
    """Plain tick labels (no offset, no scientific notation) with a decimal comma in Dutch."""

    def __init__(self, lang: str) -> None:
        super().__init__(useOffset=False, useMathText=False)
        self.set_scientific(False)
        self.lang = lang

    def __call__(self, x: float, pos: int | None = None) -> str:
        text = super().__call__(x, pos).replace("\u2212", "-")
        return text.replace(".", ",") if self.lang == "nl" else text


class YearStartLocator(Locator):
    """Ticks on 1 January of every ``step``-th year (years divisible by ``step``), as
    ``mdates.YearLocator(step)`` places them, by arithmetic: the rrule that YearLocator
    evaluates on every tick query was a sixth of the report's drawing time."""

    def __init__(self, step: int = 1) -> None:
        self.step = int(step)

    def __call__(self) -> list[float]:
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        low, high = sorted((vmin, vmax))
        first = mdates.num2date(low).year
        last = mdates.num2date(high).year + 1
        first -= first % self.step
        years = np.arange(first, last + 1, self.step)
        return list(mdates.date2num(years.astype(str).astype("datetime64[D]")))


def style_axes(ax, lang: str, *, dates: bool = False) -> None:
    ax.yaxis.set_major_formatter(LocaleFormatter(lang))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    if dates:
        ax.xaxis.set_major_locator(YearStartLocator(2))
        ax.xaxis.set_minor_locator(YearStartLocator(1))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))


def new_figure(width: float, height: float, synthetic: bool, lang: str) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    if synthetic:
        # figures leave the report as PNG/SVG files: each carries the warning itself
        # (a figure-level x label, so the constrained layout keeps room for it)
        fig.supxlabel(labels.text(lang, "synthetic_figure"), x=0.995, ha="right", fontsize=7.5,
                      color=VERMILION, fontweight="bold")
    return fig


def grid_shape(n: int, ncols: int = 3) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def covid_spans(months: Sequence[pd.Timestamp]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of consecutive COVID months as (first day, first day after the run)."""
    spans: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for m in sorted(months):
        nxt = m + pd.offsets.MonthBegin(1)
        if spans and spans[-1][1] == m:
            spans[-1] = (spans[-1][0], nxt)
        else:
            spans.append((m, nxt))
    return spans


def shade_covid(ax, spans) -> None:
    for start, end in spans:
        ax.axvspan(start, end, color=COVID_FILL, alpha=0.55, lw=0, zorder=0)


def render(spec: FigureSpec) -> RenderedFigure:
    """Draw one figure; PNG and SVG bytes, the same for the same data.

    The constrained layout is solved once, by the SVG (the page's own copy), and kept for
    the PNG: solving it again for the second file was a fifth of the drawing time."""
    with matplotlib.rc_context(RC):
        fig = spec.draw()
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(svg, format="svg", metadata=SVG_METADATA)
        fig.set_layout_engine("none")
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata=PNG_METADATA)
    return RenderedFigure(spec, png.getvalue(), svg.getvalue())


# the specs a forked worker draws (closures cannot be pickled; a fork inherits them)
_FORKED_SPECS: list[FigureSpec] = []


def _render_forked(index: int) -> tuple[int, bytes, bytes, float]:
    tick = time.perf_counter()
    fig = render(_FORKED_SPECS[index])
    return index, fig.png, fig.svg, time.perf_counter() - tick


def render_all(specs: list[FigureSpec], workers: int = 1,
               on_done: Callable[[RenderedFigure, float], None] | None = None) -> list[RenderedFigure]:
    """:func:`render` for every spec, in ``specs`` order, on up to ``workers`` forked processes.

    Each figure is drawn whole in one process, so the bytes are those of a serial run
    (tested). Falls back to one process where ``fork`` is not available. ``on_done`` is
    called in completion order with the figure and its drawing time.
    """
    import multiprocessing

    workers = max(1, min(int(workers), len(specs)))
    out: list[RenderedFigure | None] = [None] * len(specs)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        global _FORKED_SPECS
        _FORKED_SPECS = list(specs)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for index, png, svg, seconds in pool.imap_unordered(_render_forked, range(len(specs))):
                    out[index] = RenderedFigure(specs[index], png, svg)
                    if on_done:
                        on_done(out[index], seconds)
        finally:
            _FORKED_SPECS = []
        return [f for f in out if f is not None]
    for index, spec in enumerate(specs):
        tick = time.perf_counter()
        out[index] = render(spec)
        if on_done:
            on_done(out[index], time.perf_counter() - tick)
    return [f for f in out if f is not None]


def inline_svg(svg: bytes, *, prefix: str, title: str) -> str:
    """An SVG file as an inline ``<svg>`` element for the HTML page.

    Drops the XML prolog, gives every id a per-figure prefix (ids are page-global in
    HTML, and two matplotlib figures can share clip-path ids), makes the drawing scale
    with the page (viewBox kept, fixed width/height dropped) and adds role and title for
    screen readers.
    """
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)  # RDF: only for files
    text = re.sub(r'(\s)id="', rf'\1id="{prefix}-', text)
    text = re.sub(r'(href=")#', rf"\1#{prefix}-", text)
    text = text.replace("url(#", f"url(#{prefix}-")
    head_end = text.index(">") + 1
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    head = head.replace(
        "<svg", f'<svg role="img" aria-labelledby="{prefix}-title" class="figure-svg" focusable="false"', 1
    )
    return head + f'<title id="{prefix}-title">{escape(title)}</title>' + text[head_end:]
