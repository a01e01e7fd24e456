"""The annex's figures, rebuilt from the marts: the histogram, the trends, the three-group
means, the coefficients and the event studies, each a
:class:`~mipa.report.figure_model.FigureSpec` that :func:`~mipa.report.figure_model.render`
draws (:func:`figure_specs`: all of them, by report section).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mipa.outcomes import COUNT_OUTCOMES, MAIN_OUTCOMES
from mipa.report import labels
from mipa.report.data import OUTCOME_ORDER, ReportData
from mipa.report.figure_model import (
    BLUE,
    COVID_FILL,
    GREY,
    ORANGE,
    VERMILION,
    FigureSpec,
    LocaleFormatter,
    covid_spans,
    grid_shape,
    new_figure,
    shade_covid,
    style_axes,
)
from mipa.report.formatting import fmt_month_long, fmt_percent
from mipa.report.tables import PREFERRED_INFERENCE, partner_labels, select_estimate
from mipa.report.validity import interval_note

GROUP_STYLE = {
    "never": (GREY, "-", "legend_never"),
    "notyet": (ORANGE, "--", "legend_notyet"),
    "already": (BLUE, "-", "legend_already"),
}
TREND_NUMBERS = {"forced_departures": "2", "laissez_passers": "3", "confirmations": "4", "requests": "5",
                 "verified_departures": "A2"}
PARALLEL_NUMBERS = {"forced_departures": "6", "laissez_passers": "7", "confirmations": "8",
                    "lead_time_days": "9", "requests": "10", "verified_departures": "A3"}
EVENT_ESTIMATORS = ("etwfe", "csdid")
# months around the start shown in the event-study figures (all event times are in the CSV)
EVENT_WINDOW = (-36, 48)


def _month_range_text(data: ReportData, lang: str) -> tuple[str, str]:
    return (fmt_month_long(data.panel_facts["first_month"], lang),
            fmt_month_long(data.panel_facts["last_month"], lang))


# ---------------------------------------------------------------------------------------
# Figure 1: histograms without zeros


def histogram_figure(data: ReportData, lang: str) -> FigureSpec:
    outcomes = [o for o in OUTCOME_ORDER if o in set(data.descriptive["outcome"])]
    share = dict(zip(data.descriptive["outcome"], data.descriptive["share_zero"], strict=True))
    shares = ", ".join(f"{labels.outcome(lang, o)} {fmt_percent(share[o], 1, lang)}" for o in outcomes)

    def draw() -> Figure:
        nrows, ncols = grid_shape(len(outcomes))
        fig = new_figure(10, 2.6 * nrows + 0.3, data.synthetic, lang)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, o in zip(axes, outcomes, strict=False):
            values = data.outcome_values.loc[data.outcome_values["outcome"] == o, "value"].to_numpy(float)
            positive = values[values != 0]
            if positive.size:
                top = float(positive.max())
                if o == "lead_time_days":
                    bins = 40
                else:  # whole counts: one bin per value up to 40 bins
                    width = max(1, math.ceil(top / 40))
                    bins = np.arange(0.5, top + width + 0.5, width)
                ax.hist(positive, bins=bins, color=BLUE, edgecolor="white", linewidth=0.3)
            else:
                ax.text(0.5, 0.5, labels.text(lang, "no_data"), ha="center", va="center", transform=ax.transAxes)
            ax.set_title(labels.outcome(lang, o), loc="left")
            ax.set_xlabel(labels.text(lang, "fig1_panel_note", share=fmt_percent(share[o], 1, lang)),
                          fontsize=7.5, color=GREY)
            ax.set_ylabel(labels.text(lang, "axis_frequency"))
            style_axes(ax, lang)
            ax.xaxis.set_major_formatter(LocaleFormatter(lang))
        for ax in axes[len(outcomes):]:
            ax.set_visible(False)
        return fig

    return FigureSpec(
        name="figure_01_histograms",
        number="1",
        caption=labels.text(lang, "fig1_caption"),
        alt=labels.text(lang, "fig1_alt", outcomes=", ".join(labels.outcome(lang, o) for o in outcomes)),
        draw=draw,
        notes=[labels.text(lang, "fig1_zero_share", shares=shares)],
    )


# ---------------------------------------------------------------------------------------
# Figures 2-5, A2: each partner country against the control mean


def trend_figure(data: ReportData, lang: str, outcome: str) -> FigureSpec:
    countries = partner_labels(data.partners, lang)
    starts = dict(zip(data.partners["iso3"], data.partners["mipa_start_month"], strict=True))
    first, last = _month_range_text(data, lang)
    number = TREND_NUMBERS.get(outcome, "")

    def draw() -> Figure:
        nrows, ncols = grid_shape(len(countries))
        fig = new_figure(10, 2.3 * nrows + 0.6, data.synthetic, lang)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).ravel()
        control = data.control_means
        spans = covid_spans(data.covid_months)
        for ax, (iso3, label) in zip(axes, countries, strict=False):
            series = data.country_series[data.country_series["iso3"] == iso3]
            shade_covid(ax, spans)
            ax.plot(pd.to_datetime(control["month_start"]), control[outcome], color=GREY, lw=0.9)
            ax.plot(pd.to_datetime(series["month_start"]), series[outcome], color=BLUE, lw=1.1)
            if pd.notna(starts.get(iso3)):
                ax.axvline(pd.Timestamp(starts[iso3]), color=VERMILION, ls="--", lw=1.1)
            ax.set_title(label, loc="left")
            style_axes(ax, lang, dates=True)
            ax.set_ylim(bottom=0)
        for ax in axes[len(countries):]:
            ax.set_visible(False)
        for i, ax in enumerate(axes[: len(countries)]):
            if i % ncols == 0:
                ax.set_ylabel(labels.text(lang, "axis_count"))
        handles = [
            Line2D([], [], color=BLUE, lw=1.1, label=labels.text(lang, "legend_country")),
            Line2D([], [], color=GREY, lw=0.9, label=labels.text(lang, "legend_control")),
            Line2D([], [], color=VERMILION, ls="--", lw=1.1, label=labels.text(lang, "legend_start")),
            Patch(color=COVID_FILL, label=labels.text(lang, "legend_covid")),
        ]
        fig.legend(handles=handles, loc="outside upper center", ncols=4)
        return fig

    return FigureSpec(
        name=f"figure_{number.zfill(2)}_trend_{outcome}",
        number=number,
        caption=labels.text(lang, "fig_trend_caption", number=number, outcome=labels.outcome(lang, outcome)),
        alt=labels.text(lang, "fig_trend_alt", outcome=labels.outcome(lang, outcome).lower(), first_month=first,
                        last_month=last, countries=", ".join(label for _, label in countries)),
        draw=draw,
    )


# ---------------------------------------------------------------------------------------
# Figures 6-10, A3: parallel trends


def parallel_figure(data: ReportData, lang: str, outcome: str) -> FigureSpec:
    first, last = _month_range_text(data, lang)
    number = PARALLEL_NUMBERS.get(outcome, "")

    def draw() -> Figure:
        fig = new_figure(10, 3.4, data.synthetic, lang)
        ax = fig.subplots()
        shade_covid(ax, covid_spans(data.covid_months))
        wide = data.group_means.pivot(index="month_start", columns="treatment_group", values=outcome)
        wide.index = pd.to_datetime(wide.index)
        handles = []
        for group, (colour, style, key) in GROUP_STYLE.items():
            if group in wide:
                ax.plot(wide.index, wide[group], color=colour, ls=style, lw=1.2)
                handles.append(Line2D([], [], color=colour, ls=style, lw=1.2, label=labels.text(lang, key)))
        handles.append(Patch(color=COVID_FILL, label=labels.text(lang, "legend_covid")))
        ax.set_ylabel(labels.text(lang, "axis_mean"))
        style_axes(ax, lang, dates=True)
        ax.set_ylim(bottom=0)
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
        return fig

    return FigureSpec(
        name=f"figure_{number.zfill(2)}_parallel_{outcome}",
        number=number,
        caption=labels.text(lang, "fig_parallel_caption", number=number, outcome=labels.outcome(lang, outcome)),
        alt=labels.text(lang, "fig_parallel_alt", outcome=labels.outcome(lang, outcome).lower(),
                        first_month=first, last_month=last),
        draw=draw,
    )


# ---------------------------------------------------------------------------------------
# Figure 11: the overall ETWFE effect per outcome


def coefficient_figure(data: ReportData, lang: str, outcomes: Sequence[str] = MAIN_OUTCOMES) -> FigureSpec:
    def draw() -> Figure:
        fig = new_figure(10, 2.9, data.synthetic, lang)
        axes = np.atleast_1d(fig.subplots(1, len(outcomes), squeeze=False)).ravel()
        for ax, o in zip(axes, outcomes, strict=True):
            row = select_estimate(data.estimates, estimator="etwfe", outcome=o, scope="overall")
            ax.axhline(0, color="black", lw=0.8)
            if row is not None:
                est, lo, hi = float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"])
                ax.errorbar([0], [est], yerr=[[est - lo], [hi - est]], fmt="o", color=BLUE, ecolor=BLUE,
                            elinewidth=2, capsize=4, markersize=6)
                pad = max(abs(lo), abs(hi), 1e-9) * 0.15
                ax.set_ylim(min(lo, 0) - pad, max(hi, 0) + pad)
            else:
                ax.text(0, 0.5, labels.text(lang, "no_data"), ha="center", transform=ax.get_yaxis_transform())
            ax.set_xlim(-1, 1)
            ax.set_xticks([])
            ax.grid(axis="x", visible=False)
            ax.set_title(labels.outcome(lang, o), fontsize=8.5)
            style_axes(ax, lang)
        axes[0].set_ylabel(labels.text(lang, "axis_effect"))
        return fig

    return FigureSpec(
        name="figure_11_etwfe_overall",
        number="11",
        caption=labels.text(lang, "fig11_caption"),
        alt=labels.text(lang, "fig11_alt", outcomes=", ".join(labels.outcome(lang, o).lower() for o in outcomes)),
        draw=draw,
        notes=[labels.text(lang, "fig11_note"), interval_note(data.inference, "etwfe", "cluster_unit", lang)],
    )


# ---------------------------------------------------------------------------------------
# event studies


def draw_event_study_panel(ax, rows: pd.DataFrame, lang: str, outcome: str) -> None:
    """One outcome's event study: estimates, pointwise interval, uniform band where given,
    zero line and the start (between -1 and 0)."""
    x = rows["event_time"].to_numpy(float)
    band = rows[["band_low", "band_high"]].notna().all(axis=1).to_numpy()
    if band.any():
        ax.fill_between(x, rows["band_low"].to_numpy(float), rows["band_high"].to_numpy(float),
                        where=band, color=BLUE, alpha=0.13, lw=0, step=None)
    ax.fill_between(x, rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float), color=BLUE, alpha=0.3, lw=0)
    ax.plot(x, rows["estimate"].to_numpy(float), color=BLUE, lw=1, marker="o", markersize=1.8)
    ax.axhline(0, color="black", lw=0.7)
    ax.axvline(-0.5, color=VERMILION, ls="--", lw=0.9)
    ax.set_title(labels.outcome(lang, outcome), loc="left")
    style_axes(ax, lang)
    ax.xaxis.set_major_formatter(LocaleFormatter(lang))


def finish_event_study_grid(fig: Figure, axes: Sequence, n_used: int, ncols: int, lang: str, has_band: bool,
                            extra_handles: Sequence = ()) -> None:
    """Hide unused panels, label the outer axes, add the legend above the grid."""
    for ax in axes[n_used:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n_used]):
        if i >= n_used - ncols:
            ax.set_xlabel(labels.text(lang, "axis_event_time"))
            ax.tick_params(labelbottom=True)
        if i % ncols == 0:
            ax.set_ylabel(labels.text(lang, "axis_effect"))
    handles = [
        Line2D([], [], color=BLUE, lw=1, marker="o", markersize=3, label=labels.text(lang, "legend_estimate")),
        Patch(color=BLUE, alpha=0.3, lw=0, label=labels.text(lang, "legend_ci")),
    ]
    if has_band:
        handles.append(Patch(color=BLUE, alpha=0.13, lw=0, label=labels.text(lang, "legend_band")))
    handles.append(Line2D([], [], color=VERMILION, ls="--", lw=0.9, label=labels.text(lang, "legend_start")))
    handles += list(extra_handles)
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))


def shown_event_window(rows: pd.DataFrame) -> tuple[int, int]:
    """The event times a figure plots (first, last): what its caption must say, since an
    estimator may have no leads (ETWFE starts at 0) or fewer lags than the window."""
    times = rows["event_time"].dropna() if not rows.empty else pd.Series(dtype=float)
    if times.empty:
        return EVENT_WINDOW
    return int(times.min()), int(times.max())


def event_study_figure(data: ReportData, lang: str, estimator: str, number: str) -> FigureSpec:
    ev = data.event_study[(data.event_study["estimator"] == estimator) & (data.event_study["scope"] == "overall")]
    outcomes = [o for o in OUTCOME_ORDER if o in set(ev["outcome"])]
    ev = ev[ev["event_time"].between(*EVENT_WINDOW)]
    has_band = bool(ev["band_low"].notna().any()) if not ev.empty else False
    low, high = shown_event_window(ev)

    def draw() -> Figure:
        nrows, ncols = grid_shape(len(outcomes))
        fig = new_figure(10, 2.5 * nrows + 0.6, data.synthetic, lang)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).ravel()
        for ax, o in zip(axes, outcomes, strict=False):
            rows = ev[ev["outcome"] == o].sort_values("event_time")
            # one inference per outcome: the preferred one when there are several
            infs = sorted(set(rows["inference"]))
            if len(infs) > 1:
                prefs = [i for i in PREFERRED_INFERENCE.get(estimator, ()) if i in infs]
                rows = rows[rows["inference"] == (prefs[0] if prefs else infs[0])]
            draw_event_study_panel(ax, rows, lang, o)
        finish_event_study_grid(fig, axes, len(outcomes), ncols, lang, has_band)
        return fig

    rows = data.event_study
    methods = sorted(rows.loc[rows["estimator"] == estimator, "inference"].dropna().unique()) if "inference" in rows else []
    return FigureSpec(
        name=f"figure_{number.zfill(2)}_event_study_{estimator}",
        number=number,
        caption=labels.text(lang, "fig_event_caption", number=number, estimator=labels.estimator(lang, estimator),
                            low=low, high=high),
        alt=labels.text(lang, "fig_event_alt", outcomes=", ".join(labels.outcome(lang, o).lower() for o in outcomes),
                        band=labels.text(lang, "fig_event_band_alt") if has_band else ""),
        draw=draw,
        notes=[labels.text(lang, "fig_event_note"),
               labels.text(lang, "fig_event_window", low=low, high=high, window_low=EVENT_WINDOW[0],
                           window_high=EVENT_WINDOW[1], file=f"event_study_{estimator}.csv"),
               *[interval_note(data.inference, estimator, str(m), lang, scope=None) for m in methods]],
    )


# ---------------------------------------------------------------------------------------


def figure_specs(data: ReportData, lang: str) -> dict[str, list[FigureSpec]]:
    """Every figure, grouped by report section, in reading order."""
    trends = [trend_figure(data, lang, o) for o in COUNT_OUTCOMES] if len(data.partners) else []
    parallel = [parallel_figure(data, lang, o) for o in OUTCOME_ORDER]
    events = []
    number = 12
    for est in EVENT_ESTIMATORS:
        if not data.event_study.empty and (data.event_study["estimator"] == est).any():
            events.append(event_study_figure(data, lang, est, str(number)))
            number += 1
    return {
        "data": [histogram_figure(data, lang)],
        "trends": trends,
        "parallel": parallel,
        "coefficients": [coefficient_figure(data, lang)],
        "events": events,
    }
