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
from mipa.report.figures import (
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

LABELS = {
    "en": {
        "title": "COVID-19 and air travel",
        "intro": "COVID-19 depressed travel, and with it departures, from {covid_first} to {covid_last} "
                 "(the grey band in the figures): air passengers show when traffic returned to a new normal level.",
        "caption": "Figure A1. Air passengers per month",
        "alt": "Line chart of air passengers per month from {first} to {last}, with the COVID-19 months shaded.",
        "axis": "Passengers per month",
        "legend_series": "Air passengers",
        "note_source": "Source: {file} ({n} months), loaded by mipa build into marts.fct_air_passengers.",
        "missing": "Figure A1 (air passengers per month, the annex's picture of the COVID-19 dip) is not shown: "
                   "this run has no passenger series, which mipa cannot download; to add it, put a CSV with the "
                   "columns month (YYYY-MM) and passengers at <raw dir>/{file} (or name the file in {env}) and "
                   "run mipa build again.",
    },
    "nl": {
        "title": "COVID-19 en luchtverkeer",
        "intro": "COVID-19 drukte het reizen, en daarmee het vertrek, van {covid_first} tot en met {covid_last} "
                 "(de grijze band in de figuren): het aantal vliegtuigpassagiers laat zien wanneer het verkeer een "
                 "nieuw normaal niveau bereikte.",
        "caption": "Figuur A1. Vliegtuigpassagiers per maand",
        "alt": "Lijngrafiek van het aantal vliegtuigpassagiers per maand van {first} tot en met {last}, met de "
               "COVID-19-maanden grijs.",
        "axis": "Passagiers per maand",
        "legend_series": "Vliegtuigpassagiers",
        "note_source": "Bron: {file} ({n} maanden), door mipa build geladen in marts.fct_air_passengers.",
        "missing": "Figuur A1 (vliegtuigpassagiers per maand, het beeld van de COVID-19-dip in de bijlage) ontbreekt: "
                   "deze run heeft geen passagiersreeks, die mipa niet kan downloaden; voeg haar toe als CSV met de "
                   "kolommen month (JJJJ-MM) en passengers in <raw dir>/{file} (of noem het bestand in {env}) en "
                   "draai mipa build opnieuw.",
    },
}


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
