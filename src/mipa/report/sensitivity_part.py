"""Report part: pre-trend tests, event studies with leads, HonestDiD bounds, Poisson ETWFE.

Reads the sensitivity marts (``models/marts/sensitivity``, computed by
:mod:`mipa.sensitivity.run`) and ``fct_did_estimates`` for the linear ETWFE next to the
Poisson one; computes nothing but layout. Contract: :mod:`mipa.report.parts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mipa.outcomes import COUNT_OUTCOMES, MAIN_OUTCOMES
from mipa.report import labels
from mipa.report.data import OUTCOME_ORDER, ReportData
from mipa.report.figure_model import BLUE, GREY, ORANGE, VERMILION, FigureSpec, grid_shape, new_figure, style_axes
from mipa.report.figures import draw_event_study_panel, finish_event_study_grid, shown_event_window
from mipa.report.formatting import (
    DECIMALS,
    MISSING,
    auto_decimals,
    fmt_estimate_ci,
    fmt_number,
    fmt_p_value,
    is_missing,
    not_estimable_text,
    number_type,
    star,
)
from mipa.report.html import heading, paragraph
from mipa.report.parts import Part, local_text
from mipa.report.table_model import Cell, Row, Table
from mipa.report.tables import partner_labels, select_estimate
from mipa.report.validity import default_interval_note, interval_note, validated_effect

MARTS: tuple[str, ...] = (
    "marts.fct_did_pretrend_tests",
    "marts.fct_did_event_study_leads_lags",
    "marts.fct_did_honest_bounds",
    "marts.fct_did_poisson_estimates",
    "marts.fct_did_estimates",
)
AFTER = "results"

PRETREND = "marts.fct_did_pretrend_tests"
EVENTS = "marts.fct_did_event_study_leads_lags"
HONEST = "marts.fct_did_honest_bounds"
POISSON = "marts.fct_did_poisson_estimates"
ESTIMATES = "marts.fct_did_estimates"

# rows of the pre-trend table: (estimator, covariance source), in reading order
PRETREND_ROWS: tuple[tuple[str, str], ...] = (
    ("etwfe", "cluster_unit"),
    ("csdid", "analytic_influence_function"),
    ("twfe", "cluster_unit"),
    ("poisson_etwfe", "cluster_unit"),
    ("csdid", "placebo_rescaled"),
)
# event studies drawn here: the main report has ETWFE (not-yet-treated, no leads) and CS;
# CS with a universal base equals never-treated ETWFE on balanced outcomes, so it is left out
FIGURE_ESTIMATORS: tuple[str, ...] = ("etwfe", "twfe", "poisson_etwfe")
HONEST_COLOURS = {"etwfe": BLUE, "csdid": ORANGE}
SEPARATED_MARK = "‡"
# x position of the original interval, left of the Mbar / M grid positions 0, 1, ... in the
# HonestDiD figures
ORIGINAL_X = -1.2

LABELS: dict[str, dict[str, str]] = labels.load_text("sensitivity")


def _t(lang: str, key: str, **values: object) -> str:
    return local_text(LABELS, lang, key, **values)


def _header(texts: Sequence[str]) -> Row:
    return Row([Cell(t, header=True, scope="col") for t in texts])


def _num(text: str, number: str = "", **attrs: Any) -> Cell:
    return Cell(text, classes=("num",), number=number,
                attrs={f"data-{k.replace('_', '-')}": str(v) for k, v in attrs.items() if not is_missing(v)})


# ---------------------------------------------------------------------------------------
# Table S1: pre-trend tests


def pretrend_table(tests: pd.DataFrame, lang: str) -> Table:
    """Rows: estimator and covariance; columns: outcomes; cells: p-value (star if < 0.05)."""
    outcomes = [o for o in OUTCOME_ORDER if o in set(tests["outcome"])]
    header = [_header(["", *[labels.outcome(lang, o) for o in outcomes]])]
    body = []
    for estimator, source in PRETREND_ROWS:
        rows = tests[(tests["estimator"] == estimator) & (tests["vcov_source"] == source)]
        if rows.empty:
            continue
        cells = [Cell(_t(lang, f"row_{estimator}_{source}"), header=True, scope="row")]
        for o in outcomes:
            r = rows[rows["outcome"] == o]
            if r.empty:
                cells.append(_num(MISSING))
                continue
            r = r.iloc[0]
            if not_estimable_text(r, lang):
                cells.append(_num(not_estimable_text(r, lang)))
                continue
            cells.append(_num(fmt_p_value(r["p_value"], lang) + star(r["p_value"]), "p_value",
                              value=repr(float(r["p_value"])), statistic=repr(float(r["statistic"])),
                              df=int(r["df"])))
        body.append(Row(cells))
    first = int(tests["first_lead"].min()) if tests["first_lead"].notna().any() else 0
    last = int(tests["last_lead"].max()) if tests["last_lead"].notna().any() else 0
    placebo = tests.loc[tests["vcov_source"] == "placebo_rescaled", "n_placebo"]
    n_placebo = int(placebo.max()) if len(placebo) and not is_missing(placebo.max()) else 0
    notes = [_t(lang, "note_pretrend_window", first=first, last=last, n_placebo=n_placebo),
             _t(lang, "note_pretrend_placebo"), _t(lang, "note_pretrend_power"), _t(lang, "note_pretrend_star")]
    data = tests[["estimator", "vcov_source", "outcome", "first_lead", "last_lead", "statistic", "df", "p_value",
                  "f_statistic", "p_value_f", "n_clusters", "n_placebo", "status", "reason"]].reset_index(drop=True)
    return Table("table_s1_pretrend_tests", _t(lang, "table_pretrend_caption"), header, body, notes, data,
                 classes=("results",))


# ---------------------------------------------------------------------------------------
# event-study figures


def event_figure(events: pd.DataFrame, lang: str, estimator: str, number: str, synthetic: bool) -> FigureSpec:
    ev = events[events["estimator"] == estimator]
    outcomes = [o for o in OUTCOME_ORDER if o in set(ev["outcome"])]
    name_key = f"est_{estimator}"
    low, high = shown_event_window(ev)  # the caption says what the axes show

    def draw() -> Figure:
        nrows, ncols = grid_shape(len(outcomes))
        fig = new_figure(10, 2.5 * nrows + 0.6, synthetic, lang)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).ravel()
        for ax, o in zip(axes, outcomes, strict=False):
            rows = ev[ev["outcome"] == o].sort_values("event_time")
            draw_event_study_panel(ax, rows, lang, o)
            # separated cells (no event after the start): the effect is minus the counterfactual mean
            sep = rows["inference"].eq("cluster_unit_separated").to_numpy()
            if sep.any():
                ax.plot(rows["event_time"].to_numpy(float)[sep], rows["estimate"].to_numpy(float)[sep], ls="none",
                        marker="o", markersize=3.5, markerfacecolor="white", markeredgecolor=VERMILION,
                        markeredgewidth=0.8)
        finish_event_study_grid(fig, axes, len(outcomes), ncols, lang, has_band=True)
        return fig

    notes = [_t(lang, "fig_event_note"), interval_note(None, estimator, "cluster_unit", lang, scope=None)]
    if estimator == "poisson_etwfe":
        notes.insert(0, _t(lang, "fig_event_poisson_note"))
    return FigureSpec(
        name=f"figure_s{number}_event_study_{estimator}",
        number=f"S{number}",
        caption=_t(lang, "fig_event_caption", number=f"S{number}", estimator=_t(lang, name_key), low=low, high=high),
        alt=_t(lang, "fig_event_alt", outcomes=", ".join(labels.outcome(lang, o).lower() for o in outcomes),
               low=low, high=high),
        draw=draw,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------
# Table S2 and figures: HonestDiD


def _interval(lo: Any, hi: Any, lang: str, outcome: str) -> str:
    if is_missing(lo) or is_missing(hi):
        return MISSING
    d = auto_decimals(lo, hi, outcome=outcome)
    return f"[{fmt_number(lo, d, lang)} {fmt_number(hi, d, lang)}]"


def _breakdown(value: Any, limit: Any, lang: str) -> str:
    if is_missing(value):
        return MISSING if is_missing(limit) else "> " + fmt_number(limit, DECIMALS["ratio"], lang)
    return fmt_number(value, DECIMALS["ratio"], lang)


def _honest_row(bounds: pd.DataFrame, restriction: str, multiple: float) -> pd.Series | None:
    rows = bounds[(bounds["restriction"] == restriction) & np.isclose(bounds["parameter_multiple"], multiple)]
    return None if rows.empty else rows.iloc[0]


def honest_table(bounds: pd.DataFrame, lang: str, *, mbar: float = 1.0, m: float = 1.0) -> Table:
    """Per outcome and estimator: original interval, the sets at ``Mbar = mbar`` and
    ``M = m`` sd, and both breakdown values."""
    header = [_header([_t(lang, "col_outcome_estimator"), _t(lang, "col_original"),
                       _t(lang, "col_rm", mbar=_tick(mbar, lang)), _t(lang, "col_rm_breakdown"),
                       _t(lang, "col_sd", m=_tick(m, lang)), _t(lang, "col_sd_breakdown")])]
    body = []
    for o in [o for o in MAIN_OUTCOMES if o in set(bounds["outcome"])]:
        for estimator in ("etwfe", "csdid"):
            b = bounds[(bounds["outcome"] == o) & (bounds["estimator"] == estimator)]
            if b.empty:
                continue
            orig, rm, sd = _honest_row(b, "original", 0.0), _honest_row(b, "relative_magnitude", mbar), \
                _honest_row(b, "smoothness", m)
            label = f"{labels.outcome(lang, o)}, {_t(lang, f'short_{estimator}')}"
            cells = [Cell(label, header=True, scope="row")]
            effect = number_type("effect", o)
            cells.append(_num(MISSING if orig is None else not_estimable_text(orig, lang) or fmt_estimate_ci(
                orig["estimate"], orig["ci_low"], orig["ci_high"], None, lang=lang, outcome=o), effect))
            cells.append(_num(MISSING if rm is None else _interval(rm["ci_low"], rm["ci_high"], lang, o), effect))
            cells.append(_num(MISSING if rm is None else _breakdown(rm["breakdown_value"], rm["breakdown_limit"], lang),
                              "ratio", value=None if rm is None else rm["breakdown_value"]))
            cells.append(_num(MISSING if sd is None else _interval(sd["ci_low"], sd["ci_high"], lang, o), effect))
            cells.append(_num(MISSING if sd is None else _breakdown(
                sd["breakdown_multiple"], None if is_missing(sd["breakdown_limit"]) else
                sd["breakdown_limit"] / sd["m_unit"], lang), "ratio",
                value=None if sd is None else sd["breakdown_multiple"]))
            body.append(Row(cells))
    notes = [_t(lang, "note_honest_methods"), _t(lang, "note_honest_cov")]
    data = bounds[["estimator", "outcome", "restriction", "method", "parameter", "parameter_multiple", "m_unit",
                   "estimate", "std_error", "ci_low", "ci_high", "contains_zero", "breakdown_value",
                   "breakdown_multiple", "breakdown_limit"]].reset_index(drop=True)
    return Table("table_s2_honest_bounds", _t(lang, "table_honest_caption"), header, body, notes, data,
                 classes=("results",))


def _tick(value: float, lang: str) -> str:
    """``0``, ``0.5``, ``0.25``: as few decimals as the grid value needs."""
    decimals = next(d for d in (0, 1, 2, 3) if abs(round(value, d) - value) < 1e-9)
    return fmt_number(value, decimals, lang)


def honest_figure(bounds: pd.DataFrame, lang: str, restriction: str, number: str, synthetic: bool) -> FigureSpec:
    """Intervals against the allowed violation (equally spaced grid positions, the original
    interval left of them), ETWFE and CS side by side, breakdown values as dashed lines."""
    outcomes = [o for o in MAIN_OUTCOMES if o in set(bounds["outcome"])]
    estimators = [e for e in ("etwfe", "csdid") if e in set(bounds["estimator"])]
    rm = restriction == "relative_magnitude"
    grid = sorted(set(bounds.loc[bounds["restriction"] == restriction, "parameter_multiple"]))
    positions = np.arange(len(grid), dtype=float)

    def draw() -> Figure:
        nrows, ncols = grid_shape(len(outcomes))
        fig = new_figure(10, 2.6 * nrows + 0.6, synthetic, lang)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, o in zip(axes, outcomes, strict=False):
            for k, est in enumerate(estimators):
                b = bounds[(bounds["outcome"] == o) & (bounds["estimator"] == est)]
                colour = HONEST_COLOURS[est]
                shift = (k - (len(estimators) - 1) / 2) * 0.16
                rows = [*b[b["restriction"] == "original"].itertuples(),
                        *b[b["restriction"] == restriction].sort_values("parameter_multiple").itertuples()]
                for r in rows:
                    x = ORIGINAL_X if r.restriction == "original" else float(np.interp(r.parameter_multiple, grid,
                                                                                        positions))
                    ax.plot([x + shift, x + shift], [r.ci_low, r.ci_high], color=colour, lw=2.4,
                            solid_capstyle="butt")
                bd = b.loc[b["restriction"] == restriction, "breakdown_multiple"]
                if len(bd) and not is_missing(bd.iloc[0]) and float(bd.iloc[0]) <= grid[-1]:
                    ax.axvline(float(np.interp(float(bd.iloc[0]), grid, positions)), color=colour, ls="--", lw=0.9)
            ax.axhline(0, color="black", lw=0.7)
            ax.axvline(ORIGINAL_X / 2 - 0.25, color=GREY, lw=0.5)
            ax.set_title(labels.outcome(lang, o), loc="left")
            style_axes(ax, lang)
            ax.set_xticks([ORIGINAL_X, *positions])
            ax.set_xticklabels([_t(lang, "tick_original"), *[_tick(t, lang) for t in grid]])
            ax.set_xlabel(_t(lang, "axis_mbar" if rm else "axis_m"))
            ax.grid(axis="x", visible=False)
        for ax in axes[len(outcomes):]:
            ax.set_visible(False)
        for i, ax in enumerate(axes[: len(outcomes)]):
            if i % ncols == 0:
                ax.set_ylabel(_t(lang, "axis_first_year"))
        handles = [Line2D([], [], color=HONEST_COLOURS[e], lw=2.4, label=_t(lang, f"short_{e}")) for e in estimators]
        handles.append(Line2D([], [], color=GREY, ls="--", lw=0.9, label=_t(lang, "legend_breakdown")))
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
        return fig

    key = "fig_honest_rm_caption" if rm else "fig_honest_sd_caption"
    return FigureSpec(
        name=f"figure_s{number}_honest_{restriction}",
        number=f"S{number}",
        caption=_t(lang, key, number=f"S{number}"),
        alt=_t(lang, "fig_honest_alt", outcomes=", ".join(labels.outcome(lang, o).lower() for o in outcomes)),
        draw=draw,
        notes=[_t(lang, "fig_honest_note")],
    )


# ---------------------------------------------------------------------------------------
# Table S3: Poisson ETWFE


def poisson_table(poisson: pd.DataFrame, estimates: pd.DataFrame, partners: pd.DataFrame, lang: str,
                  inference: pd.DataFrame | None = None) -> Table:
    """Rows: count outcomes; columns: Poisson and linear overall effect, then Poisson per partner.

    With ``inference`` (fct_did_inference) every interval and star is the estimator's
    default (Monte Carlo-validated) method's, the clustered interval beneath it; where no
    method qualifies, the estimate without a star (:func:`~mipa.report.tables.validated_effect`)."""
    outcomes = [o for o in COUNT_OUTCOMES if o in set(poisson["outcome"])]
    countries = partner_labels(partners, lang) if len(partners) else []
    header = [_header(["", _t(lang, "col_poisson"), _t(lang, "col_linear"), *[label for _, label in countries]])]
    body, tidy, notes = [], [], []
    columns = ("estimate", "std_error", "ci_low", "ci_high", "p_value", "inference")

    def cell(row: pd.Series | None, estimator: str, o: str, scope: str, with_interval: bool = True) -> Cell:
        text, subtext, extras = validated_effect(row, inference, estimator=estimator, outcome=o, scope=scope,
                                                 lang=lang, with_interval=with_interval)
        if row is not None:
            text = not_estimable_text(row, lang) or text
            text += SEPARATED_MARK if row["inference"] == "cluster_unit_separated" else ""
            tidy.append({"outcome": o, "scope": scope, "model": estimator, **{c: row[c] for c in columns}, **extras})
        out = _num(text, number_type("effect", o),
                   value=None if row is None or is_missing(row["estimate"]) else repr(float(row["estimate"])))
        return replace(out, subtext=subtext)

    for o in outcomes:
        p = poisson[poisson["outcome"] == o]
        overall = p[(p["scope"] == "overall") & (p["aggregation"] == "simple")]
        row = overall.iloc[0] if len(overall) else None
        linear = select_estimate(estimates, estimator="etwfe", outcome=o, scope="overall") if not estimates.empty else None
        cells = [Cell(labels.outcome(lang, o), header=True, scope="row"), cell(row, "poisson_etwfe", o, "overall"),
                 cell(linear, "etwfe", o, "overall")]
        for iso3, _ in countries:
            c = p[p["scope"] == iso3]
            cells.append(cell(c.iloc[0] if len(c) else None, "poisson_etwfe", o, iso3, with_interval=False))
        body.append(Row(cells))
        if row is not None:
            post = row["zero_post_countries"]
            post_text = (_t(lang, "note_poisson_post_none") if is_missing(post)
                         else _t(lang, "note_poisson_post", countries=post))
            notes.append(_t(lang, "note_poisson_zero", outcome=labels.outcome(lang, o),
                            n=int(row["n_all_zero_countries"]), post=post_text))
    interval_notes = [n for n in (default_interval_note(inference, "poisson_etwfe", lang),) if n]
    if any(t.get("valid_interval_at_design") is False for t in tidy):
        interval_notes.append(labels.text(lang, "note_no_valid_interval"))
    notes = [*interval_notes, _t(lang, "note_poisson_countries", mark=SEPARATED_MARK), labels.text(lang, "note_star"),
             *notes]
    return Table("table_s3_poisson_etwfe", _t(lang, "table_poisson_caption"), header, body, notes,
                 pd.DataFrame(tidy), classes=("results",))


# ---------------------------------------------------------------------------------------


def build(data: ReportData, marts: dict[str, pd.DataFrame], lang: str) -> Part | None:
    """The sensitivity section, or None when the warehouse has none of its marts."""
    have = {k for k in (PRETREND, EVENTS, HONEST, POISSON) if k in marts and not marts[k].empty}
    if not have:
        return None
    blocks: list[Any] = []
    number = 1
    if PRETREND in have:
        blocks += [heading(3, _t(lang, "sub_pretrends")), paragraph(_t(lang, "intro_pretrends")),
                   pretrend_table(marts[PRETREND], lang)]
    if EVENTS in have:
        blocks += [heading(3, _t(lang, "sub_events")), paragraph(_t(lang, "intro_events"))]
        for estimator in FIGURE_ESTIMATORS:
            if (marts[EVENTS]["estimator"] == estimator).any():
                blocks.append(event_figure(marts[EVENTS], lang, estimator, str(number), data.synthetic))
                number += 1
    if HONEST in have:
        blocks += [heading(3, _t(lang, "sub_honest")), paragraph(_t(lang, "intro_honest")),
                   honest_table(marts[HONEST], lang)]
        for restriction in ("relative_magnitude", "smoothness"):
            blocks.append(honest_figure(marts[HONEST], lang, restriction, str(number), data.synthetic))
            number += 1
    if POISSON in have:
        blocks += [heading(3, _t(lang, "sub_poisson")), paragraph(_t(lang, "intro_poisson")),
                   poisson_table(marts[POISSON], marts.get(ESTIMATES, pd.DataFrame()), data.partners, lang,
                                 data.inference)]
    return Part("sensitivity", _t(lang, "title"), _t(lang, "intro"), blocks)
