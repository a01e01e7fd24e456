"""Report part: the annex's Figure A1, air passengers per month around COVID-19.

The series is optional (``mipa.reference_series``): with rows in ``marts.fct_air_passengers``
the part draws Figure A1; without them it keeps the figure's place with one sentence
saying why it is missing and how to add it.
"""

from __future__ import annotations

from html import escape

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from mipa.reference_series import AIR_PASSENGERS_ENV, AIR_PASSENGERS_FILE
from mipa.report import labels
from mipa.report.data import ReportData
from mipa.report.figure_model import (
    BLUE,
    COVID_FILL,
    FigureSpec,
    covid_spans,
    new_figure,
    shade_covid,
    style_axes,
)
from mipa.report.formatting import fmt_int, fmt_month_long
from mipa.report.parts import Part, local_text

MARTS = ("marts.fct_air_passengers",)
AFTER = "trends"
MART = MARTS[0]
FIGURE_NAME = "figure_A1_air_passengers"

LABELS: dict[str, dict[str, str]] = labels.load_text("covid")


def _t(lang: str, key: str, **values: object) -> str:
    return local_text(LABELS, lang, key, **values)


def air_passenger_figure(series: pd.DataFrame, data: ReportData, lang: str) -> FigureSpec:
    series = series.sort_values("month_start")
    months = pd.to_datetime(series["month_start"])
    first, last = fmt_month_long(months.iloc[0], lang), fmt_month_long(months.iloc[-1], lang)
    files = ", ".join(sorted(set(series["source_file"].dropna()))) if "source_file" in series else ""

    def draw() -> Figure:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        fig = new_figure(10, 3.2, data.synthetic, lang)
        ax = fig.subplots()
        shade_covid(ax, covid_spans(data.covid_months))
        ax.plot(months, series["passengers"].to_numpy(float), color=BLUE, lw=1.2)
        ax.set_ylabel(_t(lang, "axis"))
        style_axes(ax, lang, dates=True)
        # passengers run into the millions: thousands separators of the language
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: fmt_int(value, lang)))
        ax.set_ylim(bottom=0)
        handles = [Line2D([], [], color=BLUE, lw=1.2, label=_t(lang, "legend_series")),
                   Patch(color=COVID_FILL, label=labels.text(lang, "legend_covid"))]
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
        return fig

    return FigureSpec(
        name=FIGURE_NAME,
        number="A1",
        caption=_t(lang, "caption"),
        alt=_t(lang, "alt", first=first, last=last),
        draw=draw,
        notes=[_t(lang, "note_source", file=files or "—", n=len(series))],
    )


def build(data: ReportData, marts: dict[str, pd.DataFrame], lang: str) -> Part:
    covid = sorted(data.covid_months)
    intro = _t(lang, "intro", covid_first=fmt_month_long(covid[0], lang),
               covid_last=fmt_month_long(covid[-1], lang)) if covid else ""
    part = Part(id="covid", title=_t(lang, "title"), intro=intro)
    series = marts.get(MART)
    if series is not None and not series.empty and series["passengers"].notna().any():
        part.blocks.append(air_passenger_figure(series.dropna(subset=["month_start", "passengers"]), data, lang))
    else:
        # the figure's place, so that the numbering says what is missing and why
        text = _t(lang, "missing", file=AIR_PASSENGERS_FILE.as_posix(), env=AIR_PASSENGERS_ENV)
        part.blocks.append(f'<p class="figure-missing" id="{FIGURE_NAME}" role="note">{escape(text)}</p>')
    return part
