"""Report part: intervals that hold with six partner countries (issue: inference).

Reads ``fct_did_inference`` (every estimator with every inference method, and each method's
Monte Carlo coverage), ``int_inference__method_choice`` and the coverage seed, and shows

* the overall effects with every inference method, the default (valid) one first and the
  annex's clustered interval beside it, each with its measured coverage and size;
* per-country effects: synthetic DiD (the per-country estimator of record) and ETWFE with
  its default and its clustered interval;
* the Monte Carlo table (estimator x method x scope) and a coverage figure;
* which estimator is unbiased where (:mod:`mipa.report.designs_table`).

Where a method does not reach 93-97% coverage, the table says so next to the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mipa.outcomes import MAIN_OUTCOMES
from mipa.report import designs_table, labels
from mipa.report.data import ReportData
from mipa.report.figure_model import BLUE, GREY, VERMILION, FigureSpec, new_figure
from mipa.report.formatting import (
    MISSING,
    fmt_int,
    fmt_interval,
    fmt_number,
    fmt_percent,
    is_missing,
    not_estimable_text,
)
from mipa.report.parts import Part, local_text
from mipa.report.table_model import Cell, Row, Table
from mipa.report.tables import add_planted, partner_labels

MARTS = ("marts.fct_did_inference", "marts.fct_inference_coverage", designs_table.MART)
AFTER = "results"

ESTIMATOR_ORDER = ("etwfe", "csdid", "twfe", "poisson_etwfe", "sdid", "conformal")
GOAL = (0.93, 0.97)

LABELS: dict[str, dict[str, str]] = labels.load_text("inference")

# short names: the row labels also carry the method
ESTIMATOR_LABELS = {
    "en": {"etwfe": "ETWFE", "csdid": "Callaway & Sant'Anna", "twfe": "TWFE", "sdid": "Synthetic DiD",
           "conformal": "Counterfactual model", "poisson_etwfe": "Poisson ETWFE"},
    "nl": {"etwfe": "ETWFE", "csdid": "Callaway & Sant'Anna", "twfe": "TWFE", "sdid": "Synthetische DiD",
           "conformal": "Tegenfeitelijk model", "poisson_etwfe": "Poisson-ETWFE"},
}


def _t(lang: str, key: str, **values: object) -> str:
    return local_text(LABELS, lang, key, **values)


def inference_label(lang: str, name: str) -> str:
    return labels.inference(lang, name)


def estimator_label(lang: str, name: str) -> str:
    return ESTIMATOR_LABELS[labels.check_lang(lang)].get(name) or labels.estimator(lang, name)


def fmt_row_interval(row: pd.Series | None, lang: str, outcome: str) -> str:
    """``3.0* [2.2 3.7]`` (∞ for unbounded); ``—`` when the method could not run."""
    if row is None:
        return MISSING
    return not_estimable_text(row, lang) or fmt_interval(
        row["estimate"], row["ci_low"], row["ci_high"], lang=lang, outcome=outcome)


BELOW, ABOVE = "▼", "▲"


def _goal_mark(coverage: Any) -> str:
    if is_missing(coverage):
        return ""
    if float(coverage) < GOAL[0]:
        return BELOW
    if float(coverage) > GOAL[1]:
        return ABOVE
    return ""


def _method_cell_text(lang: str, estimator: str, inference: str, row: pd.Series | None) -> str:
    text = f"{estimator_label(lang, estimator)}: {inference_label(lang, inference)}"
    tags = []
    if row is not None and bool(row.get("is_default_method")):
        tags.append(_t(lang, "default"))
    if inference == "cluster_unit" and estimator == "etwfe":
        tags.append(_t(lang, "annex_method"))
    return text + (f" ({', '.join(tags)})" if tags else "")


def _coverage_text(row: pd.Series | None, lang: str) -> str:
    if row is None or is_missing(row.get("mc_coverage")):
        return MISSING
    mark = _goal_mark(row["mc_coverage"])
    return fmt_percent(row["mc_coverage"], 1, lang) + (f" {mark}" if mark else "")


def _methods(inference: pd.DataFrame, scope_kind: str) -> list[tuple[str, str]]:
    """(estimator, inference) pairs present for a scope kind: default first per estimator."""
    rows = inference[(inference["scope"] == "overall") == (scope_kind == "overall")]
    out = []
    for est in ESTIMATOR_ORDER:
        sub = rows[rows["estimator"] == est].drop_duplicates("inference")
        if sub.empty:
            continue
        sub = sub.assign(_d=~sub["is_default_method"].astype(bool))
        out += [(est, m) for m in sub.sort_values(["_d", "inference"], kind="mergesort")["inference"]]
    return out


def _pick(inference: pd.DataFrame, estimator: str, method: str, outcome: str, scope: str) -> pd.Series | None:
    rows = inference[(inference["estimator"] == estimator) & (inference["inference"] == method)
                     & (inference["outcome"] == outcome) & (inference["scope"] == scope)]
    return None if rows.empty else rows.iloc[0]


def _attrs(row: pd.Series | None, **keys: str) -> dict[str, str]:
    out = {f"data-{k.replace('_', '-')}": str(v) for k, v in keys.items()}
    if row is not None:
        for col in ("estimate", "ci_low", "ci_high", "mc_coverage"):
            value = row.get(col)
            out[f"data-{col.replace('_', '-')}"] = "" if is_missing(value) else repr(float(value))
    return out


def overall_table(inference: pd.DataFrame, lang: str, outcomes: Sequence[str],
                  planted: pd.DataFrame | None = None) -> Table:
    """Every estimator x inference method's overall effect; on synthetic runs with the
    planted effect beside each estimate (``planted``: fct_planted_effects)."""
    header = [Row([Cell(_t(lang, "col_method"), header=True, scope="col"),
                   *[Cell(labels.outcome(lang, o), header=True, scope="col") for o in outcomes],
                   Cell(_t(lang, "col_coverage"), header=True, scope="col"),
                   Cell(_t(lang, "col_size"), header=True, scope="col")])]
    body, tidy = [], []
    any_planted = False
    for estimator, method in _methods(inference, "overall"):
        first = _pick(inference, estimator, method, outcomes[0], "overall")
        label = _method_cell_text(lang, estimator, method, first)
        cells = [Cell(label, header=True, scope="row", attrs={"data-estimator": estimator, "data-inference": method})]
        for o in outcomes:
            row = _pick(inference, estimator, method, o, "overall")
            text = fmt_row_interval(row, lang, o)
            cell = Cell(text, classes=("num", "estimate"),
                        attrs=_attrs(row, estimator=estimator, inference=method, outcome=o, scope="overall"))
            cells.append(cell)
            entry = {"estimator": estimator, "inference": method, "outcome": o, "scope": "overall",
                     **({} if row is None else {c: row[c] for c in ("estimate", "ci_low", "ci_high", "p_value",
                                                                    "is_default_method", "mc_coverage",
                                                                    "mc_size")}),
                     "display": text}
            any_planted |= add_planted(cell, entry, planted, lang, outcome=o, scope="overall",
                                       estimate=None if row is None else row["estimate"])
            tidy.append(entry)
        cells.append(Cell(_coverage_text(first, lang), classes=("num",), number="percent"))
        size = None if first is None else first.get("mc_size")
        cells.append(Cell(fmt_percent(size, 1, lang), classes=("num",), number="percent"))
        classes = ("default-method",) if first is not None and bool(first["is_default_method"]) else ()
        body.append(Row(cells, classes))
    notes = [_t(lang, "note_default"), _t(lang, "note_marks"), _t(lang, "note_star"), _t(lang, "note_inversion")]
    if any_planted:
        notes.append(labels.text(lang, "note_planted"))
    return Table("table_i1_overall_inference", _t(lang, "overall_caption"), header, body, notes,
                 pd.DataFrame(tidy), classes=("results",))


def country_table(inference: pd.DataFrame, partners: pd.DataFrame, lang: str, outcomes: Sequence[str],
                  planted: pd.DataFrame | None = None) -> Table:
    """Per-country effects of the per-country methods; on synthetic runs with the planted
    effect beside each estimate (``planted``: fct_planted_effects)."""
    ncol = len(outcomes) + 2
    header = [Row([Cell("", header=True, scope="col"),
                   *[Cell(labels.outcome(lang, o), header=True, scope="col") for o in outcomes],
                   Cell(_t(lang, "col_coverage"), header=True, scope="col")])]
    body, tidy = [], []
    any_planted = False
    countries = partner_labels(partners, lang)
    methods = [(e, m) for e, m in _methods(inference, "countries") if e in ("conformal", "sdid", "etwfe")]
    # the conformal intervals first (the per-country method the Monte Carlo checked), then SDID,
    # then ETWFE's default, then the annex's clustered intervals
    methods.sort(key=lambda em: (em[0] != "conformal", em[0] != "sdid",
                                 em[1] != "cluster_unit" and not _is_default(inference, *em),
                                 em[1] == "cluster_unit"))
    for estimator, method in methods:
        some = inference[(inference["estimator"] == estimator) & (inference["inference"] == method)
                         & (inference["scope"] != "overall")]
        first = None if some.empty else some.iloc[0]
        group = _method_cell_text(lang, estimator, method, first)
        coverage = _coverage_text(first, lang)
        body.append(Row([Cell(group, header=True, scope="rowgroup", colspan=ncol - 1),
                         Cell(coverage, classes=("num",), number="percent")], ("group",)))
        for iso3, label in countries:
            cells = [Cell(label, header=True, scope="row", attrs={"data-scope": iso3})]
            for o in outcomes:
                row = _pick(inference, estimator, method, o, iso3)
                text = fmt_row_interval(row, lang, o)
                cell = Cell(text, classes=("num", "estimate"),
                            attrs=_attrs(row, estimator=estimator, inference=method, outcome=o, scope=iso3))
                cells.append(cell)
                entry = {"estimator": estimator, "inference": method, "outcome": o, "scope": iso3,
                         **({} if row is None else {c: row[c] for c in ("estimate", "ci_low", "ci_high",
                                                                        "p_value", "is_default_method",
                                                                        "mc_coverage", "mc_size")}),
                         "display": text}
                any_planted |= add_planted(cell, entry, planted, lang, outcome=o, scope=iso3,
                                           estimate=None if row is None else row["estimate"])
                tidy.append(entry)
            cells.append(Cell("", classes=("num",)))
            body.append(Row(cells))
    notes = [_t(lang, "note_country"), _t(lang, "note_default"), _t(lang, "note_marks"), _t(lang, "note_star"),
             _t(lang, "note_inversion")]
    if any_planted:
        notes.append(labels.text(lang, "note_planted"))
    return Table("table_i2_country_inference", _t(lang, "country_caption"), header, body, notes,
                 pd.DataFrame(tidy), classes=("results",))


def _is_default(inference: pd.DataFrame, estimator: str, method: str) -> bool:
    rows = inference[(inference["estimator"] == estimator) & (inference["inference"] == method)
                     & (inference["scope"] != "overall")]
    return bool(rows["is_default_method"].any()) if not rows.empty else False


def wilson_interval(share: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson (1927) score interval of a share from ``n`` trials: never of width 0 at 0 or 1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def coverage_frame(coverage: pd.DataFrame) -> pd.DataFrame:
    """One row per estimator x method x scope kind: coverage (annex effects) and size (none)."""
    if coverage.empty:
        return pd.DataFrame()
    keys = ["estimator", "inference", "outcome", "scope"]
    kinds = coverage[coverage["scope"].isin(["overall", "countries"])]
    annex = kinds[kinds["effects"] == "annex"].set_index(keys)
    zero = kinds[kinds["effects"] == "zero"].set_index(keys)
    homogeneous = kinds[kinds["effects"] == "homogeneous"].set_index(keys)
    if "oracle_width" not in annex:
        annex = annex.assign(oracle_width=np.nan)
    out = annex[["n_replications", "n_intervals", "coverage", "coverage_mcse", "median_width", "oracle_width",
                 "share_unbounded", "bias", "rmse", "wall_seconds"]].join(
        zero[["rejection_rate", "coverage", "wall_seconds"]].rename(
            columns={"rejection_rate": "size", "coverage": "coverage_null", "wall_seconds": "wall_seconds_null"}),
        how="outer").join(homogeneous[["coverage"]].rename(columns={"coverage": "coverage_homogeneous"}), how="left")
    low, high = wilson_interval(out["coverage"].to_numpy(float), out["n_intervals"].to_numpy(float))
    out = out.assign(coverage_ci_low=low, coverage_ci_high=high)
    out = out.reset_index()
    order = {e: k for k, e in enumerate(ESTIMATOR_ORDER)}
    out["_e"] = out["estimator"].map(order).fillna(len(order))
    out["_s"] = (out["scope"] != "overall").astype(int)
    return out.sort_values(["_s", "_e", "inference"], kind="mergesort").drop(columns=["_e", "_s"]).reset_index(drop=True)


# number types of the Monte Carlo table's columns after the method (formatting.DECIMALS)
MONTECARLO_NUMBERS = ("", "percent", "percent", "percent", "effect", "ratio", "percent", "effect", "effect", "count")


def montecarlo_table(frame: pd.DataFrame, lang: str) -> Table:
    cols = [_t(lang, k) for k in ("col_method", "col_scope", "col_cov_annex", "col_cov_homogeneous",
                                  "col_size_null", "col_width", "col_width_oracle", "col_unbounded", "col_bias",
                                  "col_rmse", "col_reps")]
    rows = []
    for _, r in frame.iterrows():
        rows.append([
            f"{estimator_label(lang, r['estimator'])}: {inference_label(lang, r['inference'])}",
            _t(lang, "scope_overall") if r["scope"] == "overall" else _t(lang, "scope_countries"),
            f"{fmt_percent(r['coverage'], 1, lang)} [{fmt_percent(r['coverage_ci_low'], 1, lang, sign=False)}, "
            f"{fmt_percent(r['coverage_ci_high'], 1, lang, sign=False)}]",
            fmt_percent(r.get("coverage_homogeneous"), 1, lang), fmt_percent(r.get("size"), 1, lang),
            fmt_number(r["median_width"], 2, lang),
            fmt_number(r["median_width"] / r["oracle_width"], 2, lang) if not is_missing(r.get("oracle_width"))
            else MISSING,
            fmt_percent(r["share_unbounded"], 1, lang),
            fmt_number(r["bias"], 2, lang), fmt_number(r["rmse"], 2, lang), fmt_int(r["n_replications"], lang),
        ])
    header = [Row([Cell(c, header=True, scope="col") for c in cols])]
    body = []
    for values, (_, r) in zip(rows, frame.iterrows(), strict=True):
        cells = [Cell(values[0], header=True, scope="row")]
        cells += [Cell(v, classes=("num",), number=kind) for v, kind in zip(values[1:], MONTECARLO_NUMBERS, strict=True)]
        ok = (GOAL[0] <= float(r["coverage"]) <= GOAL[1]) and not is_missing(r.get("size")) and \
            (0.03 <= float(r["size"]) <= 0.07) and not is_missing(r.get("coverage_homogeneous")) and \
            (GOAL[0] <= float(r["coverage_homogeneous"]) <= GOAL[1]) and not is_missing(r.get("oracle_width")) and \
            float(r["median_width"]) <= 1.5 * float(r["oracle_width"])
        body.append(Row(cells, ("meets-goal",) if ok else ()))
    reps = int(frame["n_replications"].max()) if len(frame) else 0
    mcse = fmt_number(100 * math.sqrt(0.95 * 0.05 / max(reps, 1)), 1, lang)
    return Table("table_i3_montecarlo", _t(lang, "mc_caption"), header, body, [_t(lang, "note_mc", reps=reps, mcse=mcse)],
                 frame, classes=("results",))


def coverage_figure(frame: pd.DataFrame, lang: str, synthetic: bool) -> FigureSpec:
    def draw() -> Figure:
        fig = new_figure(10, 4.2, synthetic, lang)
        axes = fig.subplots(1, 2, sharex=True)
        for ax, kind in zip(axes, ("overall", "countries"), strict=True):
            sub = frame[frame["scope"] == kind].reset_index(drop=True)
            y = np.arange(len(sub))[::-1]
            ax.axvspan(GOAL[0], GOAL[1], color="#d9d9d9", zorder=0)
            ax.axvline(0.95, color="black", lw=0.8)
            ax.scatter(sub["coverage"].to_numpy(float), y, color=BLUE, zorder=3, s=28)
            ax.scatter(1 - sub["size"].to_numpy(float), y, facecolors="none", edgecolors=VERMILION, zorder=3, s=28)
            ax.set_yticks(y)
            ax.set_yticklabels([f"{estimator_label(lang, e)}: {inference_label(lang, m)}"
                                for e, m in zip(sub["estimator"], sub["inference"], strict=True)], fontsize=7.5)
            ax.set_xlim(0, 1.02)
            ax.set_title(_t(lang, "scope_overall") if kind == "overall" else _t(lang, "scope_countries"),
                         fontsize=9)
            ax.set_xlabel(_t(lang, "axis_coverage"), fontsize=8, color=GREY)
            ticks = [0, 0.25, 0.5, 0.75, 0.95]
            ax.set_xticks(ticks)
            ax.set_xticklabels([fmt_percent(v, 0, lang) for v in ticks], fontsize=7.5)
        return fig

    return FigureSpec(name="figure_i1_coverage", number="I1", caption=_t(lang, "fig_caption"),
                      alt=_t(lang, "fig_alt"), draw=draw, notes=[_t(lang, "fig_note")])


def _wall_text(frame: pd.DataFrame, lang: str) -> str:
    if frame.empty:
        return MISSING
    return f"{fmt_number(_total_wall(frame) / 60, 0, lang)} min"


def _total_wall(frame: pd.DataFrame) -> float:
    """Each Monte Carlo run (estimator group x design) reported its wall time on all its rows."""
    walls = set(frame["wall_seconds"].dropna().round(3)) | set(frame["wall_seconds_null"].dropna().round(3))
    return float(sum(walls))


def build(data: ReportData, marts: dict[str, pd.DataFrame], lang: str) -> Part | None:
    inference = marts.get("marts.fct_did_inference")
    if inference is None or inference.empty:
        return None
    coverage = coverage_frame(marts.get("marts.fct_inference_coverage", pd.DataFrame()))
    outcomes = [o for o in MAIN_OUTCOMES if o in set(inference["outcome"])]
    if coverage.empty:
        intro = _t(lang, "intro_missing")
    else:
        intro = _t(lang, "intro", reps=fmt_int(coverage["n_replications"].max(), lang), wall=_wall_text(coverage, lang))
    part = Part("inference", _t(lang, "title"), intro)
    planted = data.planted if data.synthetic else None  # the generator's truth, never on real feeds
    part.blocks.append(overall_table(inference, lang, outcomes, planted))
    if len(data.partners):
        part.blocks.append(country_table(inference, data.partners, lang, outcomes, planted))
    if not coverage.empty:
        part.blocks.append(coverage_figure(coverage, lang, data.synthetic))
        part.blocks.append(montecarlo_table(coverage, lang))
    designs = designs_table.designs_table(
        marts.get(designs_table.MART, pd.DataFrame()), lang, outcomes,
        lambda lang, e, m: f"{estimator_label(lang, e)}: {inference_label(lang, m)}")
    if designs is not None:
        part.blocks.append(designs)
    return part
