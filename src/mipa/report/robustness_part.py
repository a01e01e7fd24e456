"""Report part: the robustness grid (``marts.fct_did_robustness``) as a specification curve
and tables.

* Figure R1: the specification curve of the primary outcome (forced departures, ETWFE):
  upper panel the estimates with 95% intervals, sorted, the baseline highlighted; lower
  panel a dot matrix of the choice each specification changes from the baseline
  (Simonsohn, Simmons & Nelson 2020, "Specification curve analysis", Nature Human
  Behaviour 4, 1208-1214).
* Figure R2: the same curves (without the matrix, coloured by dimension) for the other
  main outcomes.
* Tables R1 (ETWFE) and R2 (Callaway & Sant'Anna): one row per variant, the estimate
  [95% interval] per main outcome; the CSV/Parquet exports hold every grid row unrounded.

A variant whose choices equal the baseline's for an estimator (``same_as_baseline``) is
the same specification: the curves count it once, the tables mark it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mipa.outcomes import MAIN_OUTCOMES, PRIMARY_OUTCOME
from mipa.report import labels
from mipa.report.data import ReportData
from mipa.report.facts_tables import simple_table
from mipa.report.figure_model import BLUE, GREY, ORANGE, VERMILION, FigureSpec, LocaleFormatter, new_figure, style_axes
from mipa.report.formatting import fmt_estimate_ci, fmt_month_short, is_missing, not_estimable_text, number_type
from mipa.report.html import paragraph
from mipa.report.parts import Part, local_text
from mipa.report.table_model import Table
from mipa.report.validity import interval_note

MARTS: tuple[str, ...] = ("marts.fct_did_robustness", "marts.dim_partnerships")
AFTER = "results"

GRID = "marts.fct_did_robustness"
SEED = "marts.dim_partnerships"
PRIMARY_ESTIMATOR = "etwfe"
TABLE_ESTIMATORS = ("etwfe", "csdid")
SIGNIFICANCE = 0.05  # the annex's star rule
DIMENSION_ORDER = ("baseline", "covid", "anticipation", "start_dates", "control_pool", "control_group", "misa")
# Okabe-Ito colours per dimension (the baseline in vermilion, as highlighted elsewhere)
DIMENSION_COLOURS = {
    "baseline": VERMILION,
    "covid": BLUE,
    "anticipation": ORANGE,
    "start_dates": "#009E73",
    "control_pool": "#CC79A7",
    "control_group": "#56B4E9",
    "misa": GREY,
}

LABELS: dict[str, dict[str, str]] = labels.load_text("robustness")


def _t(lang: str, key: str, **values: object) -> str:
    return local_text(LABELS, lang, key, **values)


def _ordered(grid: pd.DataFrame) -> pd.DataFrame:
    """Grid rows in the report's order: by dimension, then variant id (numbers in order)."""
    rank = {d: i for i, d in enumerate(DIMENSION_ORDER)}
    out = grid.assign(
        _dim=grid["dimension"].map(rank).fillna(len(rank)),
        _k=grid["anticipation_months"].fillna(0),
    )
    return out.sort_values(["_dim", "variant_id", "_k"], kind="mergesort").drop(columns=["_dim", "_k"])


def _start_date_changes(seed: pd.DataFrame | None, version: str, baseline_version: str) -> str:
    """``MAR 2021-07`` for each MIPA start of ``version`` that differs from the baseline's."""
    if seed is None or seed.empty:
        return version
    mipa = seed[seed["program"].str.upper() == "MIPA"]

    def starts(v: str) -> dict[str, str]:
        rows = mipa[mipa["variant"] == v]
        return {r.iso3: fmt_month_short(r.start_month) for r in rows.itertuples(index=False)}

    new, old = starts(version), starts(baseline_version)
    changed = [f"{iso} {month}" for iso, month in sorted(new.items()) if old.get(iso) != month]
    return ", ".join(changed) if changed else version


def variant_label(row: pd.Series, lang: str, seed: pd.DataFrame | None, baseline_version: str) -> str:
    """The report's words for one variant (the mart's English label when unknown)."""
    vid = str(row["variant_id"])
    if row["dimension"] == "anticipation":
        return _t(lang, "v_anticipation", k=int(row["anticipation_months"]))
    if row["dimension"] == "start_dates":
        return _t(lang, "v_start_dates",
                  changes=_start_date_changes(seed, str(row["partnership_variant"]), baseline_version))
    key = f"v_{vid}"
    return _t(lang, key) if key in LABELS[labels.check_lang(lang)] else str(row["variant_label"])


def _curve(grid: pd.DataFrame, outcome: str, estimator: str) -> pd.DataFrame:
    """One outcome's specifications for one estimator, each counted once, sorted by estimate."""
    rows = grid[(grid["outcome"] == outcome) & (grid["estimator"] == estimator) & grid["estimate"].notna()]
    rows = rows[rows["is_baseline"] | ~rows["same_as_baseline"]]
    return rows.sort_values(["estimate", "variant_id"], kind="mergesort").reset_index(drop=True)


def _draw_curve(ax, curve: pd.DataFrame, *, lang: str, marker_size: float = 4.5) -> None:
    x = np.arange(len(curve))
    for xi, r in zip(x, curve.itertuples(index=False), strict=True):
        colour = DIMENSION_COLOURS.get(r.dimension, GREY)
        base = bool(r.is_baseline)
        ax.plot([xi, xi], [r.ci_low, r.ci_high], color=colour, lw=2.2 if base else 1.3, solid_capstyle="butt")
        ax.plot([xi], [r.estimate], marker="D" if base else "o", color=colour,
                markersize=marker_size * (1.5 if base else 1.0), markeredgecolor="black" if base else colour,
                markeredgewidth=0.8 if base else 0.0, zorder=3)
    ax.axhline(0, color="black", lw=0.8)
    base = curve.loc[curve["is_baseline"], "estimate"]
    if len(base):  # the baseline's level across the curve: how far each variant moves it
        ax.axhline(float(base.iloc[0]), color=VERMILION, lw=0.8, ls=":")
    ax.set_xlim(-0.7, len(curve) - 0.3)
    style_axes(ax, lang)


def _dimension_handles(dimensions: list[str], lang: str) -> list[Line2D]:
    return [Line2D([], [], color=DIMENSION_COLOURS.get(d, GREY), marker="D" if d == "baseline" else "o",
                   lw=1.3, markersize=5, label=_t(lang, f"dim_{d}")) for d in dimensions]


def specification_curve_figure(grid: pd.DataFrame, data: ReportData, lang: str, seed: pd.DataFrame | None,
                               baseline_version: str) -> FigureSpec:
    """Figure R1: the primary outcome's curve with the dot matrix of changed choices."""
    curve = _curve(grid, PRIMARY_OUTCOME, PRIMARY_ESTIMATOR)
    # matrix rows: the changed choices in grid order, the baseline on top
    order = _ordered(curve)
    row_labels = [variant_label(r, lang, seed, baseline_version) for _, r in order.iterrows()]
    row_of = {vid: i for i, vid in enumerate(order["variant_id"])}
    outcome_name = labels.outcome(lang, PRIMARY_OUTCOME)

    def draw() -> Figure:
        height = 2.6 + 0.16 * len(row_labels)
        fig = new_figure(10, height + 0.6, data.synthetic, lang)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.6, 0.16 * len(row_labels) + 0.2])
        _draw_curve(top, curve, lang=lang)
        top.set_ylabel(labels.text(lang, "axis_effect"))
        top.set_title(outcome_name, loc="left")
        for xi, r in enumerate(curve.itertuples(index=False)):
            bottom.plot([xi], [row_of[r.variant_id]], marker="s", markersize=4.5, ls="",
                        color=DIMENSION_COLOURS.get(r.dimension, GREY))
        bottom.set_ylim(len(row_labels) - 0.5, -0.5)
        bottom.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
        bottom.set_xticks(range(len(curve)), [str(i + 1) for i in range(len(curve))], fontsize=6.5)
        bottom.grid(axis="x", visible=True)
        bottom.set_xlabel(_t(lang, "axis_rank"))
        bottom.set_ylabel(_t(lang, "axis_changed"), fontsize=7.5)
        dims = [d for d in DIMENSION_ORDER if d in set(curve["dimension"])]
        fig.legend(handles=_dimension_handles(dims, lang), loc="outside upper center", ncols=len(dims))
        return fig

    return FigureSpec(
        name="figure_r1_specification_curve",
        number="R1",
        caption=_t(lang, "fig1_caption", outcome=outcome_name),
        alt=_t(lang, "fig1_alt", outcome=outcome_name.lower(), n=len(curve)),
        draw=draw,
        notes=[_t(lang, "fig_note"), interval_note(data.inference, "etwfe", "cluster_unit", lang)],
    )


def other_outcomes_figure(grid: pd.DataFrame, data: ReportData, lang: str) -> FigureSpec | None:
    """Figure R2: small multiples of the other main outcomes' curves."""
    outcomes = [o for o in MAIN_OUTCOMES if o != PRIMARY_OUTCOME and not _curve(grid, o, PRIMARY_ESTIMATOR).empty]
    if not outcomes:
        return None

    def draw() -> Figure:
        fig = new_figure(10, 2.8 * ((len(outcomes) + 1) // 2) + 0.5, data.synthetic, lang)
        axes = np.atleast_1d(fig.subplots((len(outcomes) + 1) // 2, 2, squeeze=False)).ravel()
        dims: set[str] = set()
        for ax, o in zip(axes, outcomes, strict=False):
            curve = _curve(grid, o, PRIMARY_ESTIMATOR)
            dims |= set(curve["dimension"])
            _draw_curve(ax, curve, lang=lang, marker_size=3.5)
            ax.set_title(labels.outcome(lang, o), loc="left")
            ax.set_xticks([])
            ax.grid(axis="x", visible=False)
            ax.set_xlabel(_t(lang, "axis_rank"), fontsize=7.5)
            ax.set_ylabel(labels.text(lang, "axis_effect"))
            ax.yaxis.set_major_formatter(LocaleFormatter(lang))
        for ax in axes[len(outcomes):]:
            ax.set_visible(False)
        shown = [d for d in DIMENSION_ORDER if d in dims]
        fig.legend(handles=_dimension_handles(shown, lang), loc="outside upper center", ncols=len(shown))
        return fig

    return FigureSpec(
        name="figure_r2_specification_curves",
        number="R2",
        caption=_t(lang, "fig2_caption"),
        alt=_t(lang, "fig2_alt", outcomes=", ".join(labels.outcome(lang, o).lower() for o in outcomes)),
        draw=draw,
        notes=[_t(lang, "fig_note"), interval_note(data.inference, "etwfe", "cluster_unit", lang)],
    )


def grid_table(grid: pd.DataFrame, lang: str, estimator: str, number: str, seed: pd.DataFrame | None,
               baseline_version: str) -> Table:
    """One row per variant: the estimate [95% interval] per main outcome."""
    rows_of = _ordered(grid[grid["estimator"] == estimator])
    outcomes = [o for o in MAIN_OUTCOMES if o in set(rows_of["outcome"])]
    body = []
    for vid in pd.unique(rows_of["variant_id"]):
        variant = rows_of[rows_of["variant_id"] == vid]
        first = variant.iloc[0]
        label = variant_label(first, lang, seed, baseline_version)
        if bool(first["same_as_baseline"]) and not bool(first["is_baseline"]):
            label += _t(lang, "same_mark")
        cells = [label]
        for o in outcomes:
            r = variant[variant["outcome"] == o]
            if r.empty:
                cells.append("—")
                continue
            if is_missing(r["estimate"].iloc[0]):
                cells.append(not_estimable_text(r.iloc[0], lang) or "—")
                continue
            r = r.iloc[0]
            cells.append(fmt_estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], r["p_value"], lang=lang, outcome=o))
        body.append(cells)
    columns = [_t(lang, "col_variant"), *[labels.outcome(lang, o) for o in outcomes]]
    tidy = rows_of.drop(columns=["run_settings"]).reset_index(drop=True)
    table = simple_table(
        f"table_{number.lower()}_robustness_{estimator}",
        _t(lang, "table_caption", number=number, estimator=labels.estimator(lang, estimator)),
        columns, body, numbers=["", *[number_type("effect", o) for o in outcomes]], data=tidy,
    )
    table.notes += [_t(lang, "note_stars"), _t(lang, "note_same"), _t(lang, "note_definitions"),
                    _t(lang, "note_export")]
    return table


def summary_lines(grid: pd.DataFrame, lang: str) -> list[str]:
    """Per main outcome: how many specifications are positive and significant, per estimator."""
    lines = []
    for o in MAIN_OUTCOMES:
        counts = {}
        for est in TABLE_ESTIMATORS:
            c = _curve(grid, o, est)
            significant = c["p_value"] < SIGNIFICANCE
            counts[est] = {
                "positive": int((c["estimate"] > 0).sum()),
                "total": len(c),
                "sig_positive": int((significant & (c["estimate"] > 0)).sum()),
                "sig_negative": int((significant & (c["estimate"] < 0)).sum()),
            }
        if counts["etwfe"]["total"] == 0:
            continue
        lines.append(_t(lang, "summary", outcome=labels.outcome(lang, o), **counts["etwfe"],
                        **{f"cs_{k}": v for k, v in counts["csdid"].items()}))
    return lines


def build(data: ReportData, marts: dict[str, pd.DataFrame], lang: str) -> Part | None:
    grid = marts.get(GRID)
    if grid is None or grid.empty:
        return None
    seed = marts.get(SEED)
    base_rows = grid[grid["is_baseline"]]
    baseline_version = str(base_rows["partnership_variant"].iloc[0]) if len(base_rows) else "baseline"
    blocks: list = [paragraph(line) for line in summary_lines(grid, lang)]
    if not _curve(grid, PRIMARY_OUTCOME, PRIMARY_ESTIMATOR).empty:
        blocks.append(specification_curve_figure(grid, data, lang, seed, baseline_version))
    other = other_outcomes_figure(grid, data, lang)
    if other is not None:
        blocks.append(other)
    for number, est in zip(("R1", "R2"), TABLE_ESTIMATORS, strict=True):
        if (grid["estimator"] == est).any():
            blocks.append(grid_table(grid, lang, est, number, seed, baseline_version))
    return Part(id="robustness", title=_t(lang, "title"), intro=_t(lang, "intro"), blocks=blocks)
