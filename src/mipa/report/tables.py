"""The report's tables of estimates, laid out like the annex, built from mart rows.

Each builder takes plain DataFrames (the mart rows) and returns a
:class:`~mipa.report.table_model.Table`: header rows, body rows of cells (display text plus
``data-*`` attributes carrying the unrounded values) and notes, together with the tidy data
behind it for the CSV and Parquet exports. Nothing here touches the database, so the layout
is testable on small frames. The tables without estimates (descriptive statistics, the
run's facts) are in :mod:`mipa.report.facts_tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mipa.outcomes import PRIMARY_OUTCOME
from mipa.report import labels
from mipa.report.formatting import (
    MISSING,
    auto_decimals,
    country_row_label,
    fmt_estimate_ci,
    fmt_estimate_se,
    fmt_int,
    fmt_interval,
    fmt_number,
    fmt_p_value,
    fmt_percent,
    fmt_value_attr,
    is_missing,
    not_estimable_text,
    number_type,
)
from mipa.report.table_model import Cell, Row, Table, value_attrs
from mipa.report.validity import coverage_of, default_inference_row, default_interval_note, valid_interval_at_design

# which inference a table shows when a mart holds several for one estimate
PREFERRED_INFERENCE: dict[str, tuple[str, ...]] = {
    "etwfe": ("cluster_unit_stata", "cluster_unit"),
    "csdid": ("multiplier_bootstrap", "analytic_influence_function"),
    "twfe": ("twoway_cluster", "cluster_unit", "driscoll_kraay"),
}
# overall effects use the simple aggregation; a per-country run reports its country as a
# 'simple' or (one-cohort) 'group' aggregate
OVERALL_AGGREGATIONS = ("simple",)
COUNTRY_AGGREGATIONS = ("simple", "group")
# the annex's table A2 rows, in this order when present
TWFE_INFERENCE_ORDER = ("twoway_cluster", "cluster_unit", "driscoll_kraay")
COUNTRY_MARK = "†"


# ---------------------------------------------------------------------------------------
# choosing the mart row behind a cell


def select_estimate(
    estimates: pd.DataFrame, *, estimator: str, outcome: str, scope: str,
    aggregations: Sequence[str] | None = None, inference: str | None = None,
) -> pd.Series | None:
    """The fct_did_estimates row of one cell, or None.

    Overall effects: aggregation 'simple'. Countries: 'simple', else 'group'. When several
    inference methods remain, :data:`PREFERRED_INFERENCE` decides, then name order.
    """
    if estimates.empty:
        return None
    rows = estimates[
        (estimates["estimator"] == estimator) & (estimates["outcome"] == outcome) & (estimates["scope"] == scope)
    ]
    if inference is not None:
        rows = rows[rows["inference"] == inference]
    if rows.empty:
        return None
    if aggregations is None:
        aggregations = OVERALL_AGGREGATIONS if scope == "overall" else COUNTRY_AGGREGATIONS
    for agg in aggregations:
        picked = rows[rows["aggregation"] == agg]
        if not picked.empty:
            rows = picked
            break
    else:
        return None
    prefs = PREFERRED_INFERENCE.get(estimator, ())
    rank = {name: i for i, name in enumerate(prefs)}
    rows = rows.assign(_rank=[rank.get(i, len(rank)) for i in rows["inference"]])
    rows = rows.sort_values(["_rank", "inference", "control_group"], kind="mergesort")
    return rows.iloc[0].drop("_rank")


def _estimate_attrs(row: pd.Series | None, **keys: str) -> dict[str, str]:
    if row is None:
        return value_attrs(kind="estimate", **keys)
    return value_attrs(
        kind="estimate",
        estimator=row["estimator"],
        outcome=row["outcome"],
        scope=row["scope"],
        aggregation=row["aggregation"],
        inference=row["inference"],
        control_group=row.get("control_group"),
        value=row["estimate"],
        std_error=row.get("std_error"),
        ci_low=row.get("ci_low"),
        ci_high=row.get("ci_high"),
        p_value=row.get("p_value"),
        n_obs=row.get("n_obs"),
    )


def _numbered(lang: str, outcomes: Sequence[str]) -> list[str]:
    return [f"({i}) {labels.outcome(lang, o)}" for i, o in enumerate(outcomes, start=1)]


TIDY_COLUMNS = [
    "table", "row", "row_label", "estimator", "outcome", "aggregation", "scope", "inference",
    "control_group", "estimate", "std_error", "ci_low", "ci_high", "p_value", "n_obs",
    "n_clusters", "n_treated_clusters", "display",
]


def _tidy(table: str, row_key: str, row_label: str, row: pd.Series | None, display: str,
          estimator: str, outcome: str, scope: str) -> dict[str, Any]:
    out = {c: None for c in TIDY_COLUMNS}
    out.update(table=table, row=row_key, row_label=row_label, estimator=estimator, outcome=outcome,
               scope=scope, display=display)
    if row is not None:
        for c in TIDY_COLUMNS[3:-1]:
            if c in row.index:
                out[c] = row[c]
    return out


def partner_labels(partners: pd.DataFrame, lang: str) -> list[tuple[str, str]]:
    """(iso3, 'Marokko (06-2022)') per partner country, in start order."""
    name_col = labels.COUNTRY_NAME_COLUMN[labels.check_lang(lang)]
    return [
        (r["iso3"], country_row_label(r[name_col] or r["iso3"], r["mipa_start_month"]))
        for _, r in partners.iterrows()
    ]


def planted_effect(planted: pd.DataFrame | None, *, outcome: str, scope: str) -> Any:
    """The planted effect of one cell (fct_planted_effects), or None (real feeds, no mart,
    or a scope the generator planted nothing for)."""
    if planted is None or planted.empty:
        return None
    rows = planted[(planted["scope"] == scope) & (planted["outcome"] == outcome)]
    if rows.empty or is_missing(rows["planted_effect"].iloc[0]):
        return None
    return float(rows["planted_effect"].iloc[0])


def planted_text(value: Any, lang: str, *, outcome: str, estimate: Any = None) -> str:
    """``planted 9.3``: the planted effect with the estimate's number of decimals."""
    d = auto_decimals(value, *(() if is_missing(estimate) else (estimate,)), outcome=outcome)
    return labels.text(lang, "planted_short", value=fmt_number(value, d, lang))


def add_planted(cell: Cell, entry: dict[str, Any] | None, planted: pd.DataFrame | None, lang: str, *,
                 outcome: str, scope: str, estimate: Any) -> bool:
    """Put the planted effect beside an estimate cell (and into its tidy row); True if any."""
    value = planted_effect(planted, outcome=outcome, scope=scope)
    if value is None:
        return False
    cell.planted = planted_text(value, lang, outcome=outcome, estimate=estimate)
    cell.attrs["data-planted"] = fmt_value_attr(value)
    if entry is not None:
        entry["planted_effect"] = value
    return True


# ---------------------------------------------------------------------------------------
# Tables 2, A1, A4: overall and per-country effects with intervals


def effect_table(
    estimates: pd.DataFrame, partners: pd.DataFrame, *, lang: str, estimator: str,
    outcomes: Sequence[str], name: str, caption_key: str, note_keys: Sequence[str],
    inference: pd.DataFrame | None = None, planted: pd.DataFrame | None = None, n_note: str | None = None,
) -> Table:
    """Rows: the overall effect, then one row per partner country (illustrative), then N.
    Columns: outcomes. Cells ``estimate* [ci_low ci_high]``.

    With ``inference`` (the fct_did_inference mart) a cell shows the estimate and interval of
    the estimator's default inference method (the one the Monte Carlo validated) and,
    on a smaller second line, the annex's interval from fct_did_estimates; the cell's
    ``data-*`` attributes keep the fct_did_estimates row, ``data-default-*`` the default one.

    With ``planted`` (fct_planted_effects, synthetic feeds) every estimate cell also shows
    the effect the generator planted (``data-planted``, tidy column ``planted_effect``).
    ``n_note`` is a note on what the N row counts (added to the notes)."""
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    ncol = len(outcomes) + 1
    header = [Row([Cell("", header=True, scope="col"), *[Cell(h, header=True, scope="col") for h in _numbered(lang, outcomes)]])]
    body: list[Row] = []
    tidy: list[dict[str, Any]] = []
    no_valid: list[tuple[str, str]] = []
    any_planted = False

    def effect_row(scope: str, label: str, classes: tuple[str, ...] = ()) -> Row:
        nonlocal any_planted
        cells = [Cell(label, header=True, scope="row", attrs={"data-scope": scope})]
        for o in outcomes:
            row = select_estimate(estimates, estimator=estimator, outcome=o, scope=scope)
            text = MISSING if row is None else not_estimable_text(row, lang) or fmt_estimate_ci(
                row["estimate"], row["ci_low"], row["ci_high"], row["p_value"], lang=lang, outcome=o)
            attrs = _estimate_attrs(row, estimator=estimator, outcome=o, scope=scope)
            default = default_inference_row(inference, estimator=estimator, outcome=o, scope=scope)
            subtext = ""
            if row is not None and not not_estimable_text(row, lang) and not valid_interval_at_design(
                    inference, estimator=estimator, scope=scope, outcome=o):
                # no method is valid here: the estimate without a star, and how often the
                # annex's interval covered at this design
                text = fmt_number(row["estimate"], auto_decimals(row["estimate"], outcome=o), lang)
                coverage = coverage_of(inference, estimator, str(row["inference"]), scope, o)
                subtext = labels.text(lang, "no_valid_interval")
                if not is_missing(coverage):
                    subtext += "; " + labels.text(lang, "measured_coverage",
                                                  method=labels.inference(lang, str(row["inference"])),
                                                  coverage=fmt_percent(coverage, 1, lang))
                attrs["data-valid-interval"] = "false"
                no_valid.append((o, scope))
            elif default is not None and default["inference"] != (None if row is None else row["inference"]) \
                    and not is_missing(default["estimate"]):
                annex_text = text
                text = fmt_interval(default["estimate"], default["ci_low"], default["ci_high"], lang=lang, outcome=o)
                if row is not None:
                    subtext = f"{labels.text(lang, 'clustered_short')} " + fmt_interval(
                        row["estimate"], row["ci_low"], row["ci_high"], lang=lang, outcome=o, with_estimate=False)
                attrs.update({
                    "data-default-inference": str(default["inference"]),
                    "data-default-value": fmt_value_attr(default["estimate"]),
                    "data-default-ci-low": fmt_value_attr(default["ci_low"]),
                    "data-default-ci-high": fmt_value_attr(default["ci_high"]),
                    "data-default-mc-coverage": fmt_value_attr(default.get("mc_coverage")),
                })
            cell = Cell(text, classes=("num", "estimate"), attrs=attrs, subtext=subtext,
                        number=number_type("effect", o))
            cells.append(cell)
            entry = _tidy(name, scope, label, row, text, estimator, o, scope)
            any_planted |= add_planted(cell, entry, planted, lang, outcome=o, scope=scope,
                                        estimate=None if row is None else row["estimate"])
            if attrs.get("data-valid-interval") == "false":
                entry.update(valid_interval_at_design=False, mc_coverage=coverage)
            elif subtext:
                entry.update(display_annex=annex_text, default_inference=default["inference"],
                             default_estimate=default["estimate"], default_ci_low=default["ci_low"],
                             default_ci_high=default["ci_high"], default_mc_coverage=default.get("mc_coverage"))
            tidy.append(entry)
        return Row(cells, classes)

    body.append(Row([Cell(t("row_overall_group"), header=True, scope="rowgroup", colspan=ncol)], ("group",)))
    body.append(effect_row("overall", t("row_overall")))
    countries = partner_labels(partners, lang)
    if countries:
        body.append(Row([Cell(f"{t('row_country_group')} {COUNTRY_MARK}", header=True, scope="rowgroup",
                              colspan=ncol)], ("group",)))
        body.append(Row([Cell(f"{COUNTRY_MARK} {t('country_note')}", colspan=ncol, classes=("illustrative-note",))],
                        ("note-row",)))
        for iso3, label in countries:
            body.append(effect_row(iso3, label, ("illustrative",)))
    n_cells = [Cell(t("row_n"), header=True, scope="row")]
    for o in outcomes:
        row = select_estimate(estimates, estimator=estimator, outcome=o, scope="overall")
        n = None if row is None else row["n_obs"]
        n_cells.append(Cell(fmt_int(n, lang), classes=("num",), number="count",
                            attrs=value_attrs(kind="n_obs", estimator=estimator, outcome=o, scope="overall", value=n)))
    body.append(Row(n_cells, ("n-row",)))
    notes = [t(k) for k in note_keys] + [t("note_star"), f"{COUNTRY_MARK} {t('country_note')}"]
    default_note = default_interval_note(inference, estimator, lang)
    if default_note and any("default_inference" in row and row["default_inference"] for row in tidy):
        # the brackets no longer hold the clustered interval: describe the estimator only
        notes = [t(f"{k}_estimator") if f"{k}_estimator" in labels.TEXT[lang] else t(k) for k in note_keys]
        notes += [t("note_star"), f"{COUNTRY_MARK} {t('country_note')}"]
        notes.insert(0, default_note)
    if no_valid:
        notes.insert(0, t("note_no_valid_interval"))
    if all(select_estimate(estimates, estimator=estimator, outcome=o, scope="overall") is None for o in outcomes):
        notes.insert(0, t("missing_estimates", estimator=labels.estimator(lang, estimator)))
    if n_note:
        notes.append(n_note)
    if any_planted:
        notes.append(t("note_planted"))
    extra = [c for c in ("display_annex", "default_inference", "default_estimate", "default_ci_low",
                         "default_ci_high", "default_mc_coverage", "valid_interval_at_design", "mc_coverage",
                         "planted_effect")
             if any(c in row for row in tidy)]
    return Table(name, t(caption_key), header, body, notes, pd.DataFrame(tidy, columns=TIDY_COLUMNS + extra),
                 classes=("results",))


def csdid_n_note(estimates: pd.DataFrame, partners: pd.DataFrame, *, lang: str, n_rows: Any,
                 outcome: str = PRIMARY_OUTCOME) -> str | None:
    """Table A1's note on its N: Callaway & Sant'Anna's n_obs counts the country-months
    entering its post-start comparisons, not the panel (None without csdid rows)."""
    row = select_estimate(estimates, estimator="csdid", outcome=outcome, scope="overall")
    if row is None or is_missing(row.get("n_obs")):
        return None
    countries = []
    for iso3, label in partner_labels(partners, lang):
        r = select_estimate(estimates, estimator="csdid", outcome=outcome, scope=iso3)
        if r is not None and not is_missing(r.get("n_obs")):
            countries.append(f"{label.split(' (')[0]} {fmt_int(r['n_obs'], lang)}")
    return labels.text(lang, "note_csdid_n", n=fmt_int(row["n_obs"], lang), n_rows=fmt_int(n_rows, lang),
                       outcome=labels.outcome(lang, outcome).lower(),
                       countries=", ".join(countries) if countries else MISSING)


# ---------------------------------------------------------------------------------------
# Table A2: classic TWFE, estimate (SE) per inference method


def twfe_table(estimates: pd.DataFrame, *, lang: str, outcomes: Sequence[str], name: str = "table_a2_twfe",
               planted: pd.DataFrame | None = None) -> Table:
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    header = [Row([Cell("", header=True, scope="col"), *[Cell(h, header=True, scope="col") for h in _numbered(lang, outcomes)]])]
    rows = estimates[(estimates["estimator"] == "twfe") & (estimates["scope"] == "overall")] if not estimates.empty else estimates
    present = sorted(set(rows["inference"]) if not rows.empty else set(),
                     key=lambda i: (TWFE_INFERENCE_ORDER.index(i) if i in TWFE_INFERENCE_ORDER else 99, i))
    body: list[Row] = []
    tidy: list[dict[str, Any]] = []
    any_planted = False
    for inf in present:
        label = f"{t('row_overall')}: {labels.inference(lang, inf)}"
        cells = [Cell(label, header=True, scope="row", attrs={"data-inference": inf})]
        for o in outcomes:
            aggs = sorted(set(rows.loc[(rows["outcome"] == o) & (rows["inference"] == inf), "aggregation"]))
            pref = [a for a in ("simple", "coefficient") if a in aggs] + [a for a in aggs if a not in ("simple", "coefficient")]
            row = select_estimate(estimates, estimator="twfe", outcome=o, scope="overall",
                                  aggregations=pref, inference=inf) if pref else None
            text = MISSING if row is None else not_estimable_text(row, lang) or fmt_estimate_se(
                row["estimate"], row["std_error"], row["p_value"], lang=lang, outcome=o)
            cell = Cell(text, classes=("num", "estimate"), number=number_type("effect", o),
                        attrs=_estimate_attrs(row, estimator="twfe", outcome=o, scope="overall", inference=inf))
            cells.append(cell)
            entry = _tidy(name, inf, label, row, text, "twfe", o, "overall")
            any_planted |= add_planted(cell, entry, planted, lang, outcome=o, scope="overall",
                                        estimate=None if row is None else row["estimate"])
            tidy.append(entry)
        body.append(Row(cells))
    n_cells = [Cell(t("row_n"), header=True, scope="row")]
    for o in outcomes:
        sub = rows[rows["outcome"] == o] if not rows.empty else rows
        n = None if sub.empty else sub.sort_values("inference")["n_obs"].iloc[0]
        n_cells.append(Cell(fmt_int(n, lang), classes=("num",), number="count",
                            attrs=value_attrs(kind="n_obs", estimator="twfe", outcome=o, scope="overall", value=n)))
    body.append(Row(n_cells, ("n-row",)))
    notes = [t("note_twfe"), t("note_star")]
    if not present:
        notes.insert(0, t("missing_estimates", estimator=labels.estimator(lang, "twfe")))
    if any_planted:
        notes.append(t("note_planted"))
    return Table(name, t("tableA2_caption"), header, body, notes,
                 pd.DataFrame(tidy, columns=TIDY_COLUMNS + (["planted_effect"] if any_planted else [])),
                 classes=("results",))


# ---------------------------------------------------------------------------------------
# annex 11.2: yearly exploratory panel


def yearly_table(yearly: pd.DataFrame, *, lang: str, outcomes: Sequence[str], name: str = "table_11_2_yearly") -> Table:
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    treatments = [tr for tr in ("misa", "mipa") if tr in set(yearly["treatment"])] if not yearly.empty else []
    treatments += sorted(set(yearly["treatment"]) - set(treatments)) if not yearly.empty else []
    header = [
        Row([Cell("", header=True, scope="col"),
             *[Cell(labels.treatment(lang, tr), header=True, scope="colgroup", colspan=2) for tr in treatments]]),
        Row([Cell(t("col_outcome"), header=True, scope="col"),
             *[c for _ in treatments for c in (Cell(t("col_coef_se"), header=True, scope="col"),
                                               Cell(t("col_p_value"), header=True, scope="col"))]]),
    ]
    present = [o for o in outcomes if o in set(yearly["outcome"])] if not yearly.empty else []
    present += sorted(set(yearly["outcome"]) - set(present)) if not yearly.empty else []
    body: list[Row] = []
    tidy = []
    for o in present:
        cells = [Cell(labels.outcome(lang, o, yearly=True), header=True, scope="row", attrs={"data-outcome": o})]
        for tr in treatments:
            sub = yearly[(yearly["outcome"] == o) & (yearly["treatment"] == tr)]
            if sub.empty:
                cells += [Cell(MISSING, classes=("num",)), Cell(MISSING, classes=("num",))]
                continue
            r = sub.iloc[0]
            attrs = value_attrs(kind="yearly", outcome=o, treatment=tr, value=r["estimate"],
                                 std_error=r["std_error"], p_value=r["p_value"], n_obs=r["n_obs"])
            coef = not_estimable_text(r, lang) or fmt_estimate_se(r["estimate"], r["std_error"], r["p_value"], lang=lang)
            cells.append(Cell(coef, classes=("num", "estimate"), attrs=attrs, number=number_type("effect", o)))
            cells.append(Cell(fmt_p_value(r["p_value"], lang), classes=("num",), number="p_value",
                              attrs=value_attrs(kind="yearly_p", outcome=o, treatment=tr, value=r["p_value"])))
            tidy.append({"table": name, "outcome": o, "label": labels.outcome(lang, o, yearly=True), "treatment": tr,
                         **{c: r[c] for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "n_obs", "n_clusters")
                            if c in r.index},
                         "display": coef})
        body.append(Row(cells))
    n_cells = [Cell(t("row_n"), header=True, scope="row")]
    for tr in treatments:
        sub = yearly[yearly["treatment"] == tr]
        n = sub["n_obs"].max() if not sub.empty else None
        clusters = sub["n_clusters"].max() if ("n_clusters" in sub and not sub.empty) else None
        n_cells.append(Cell(fmt_int(n, lang), classes=("num",), number="count",
                            attrs=value_attrs(kind="n_obs", treatment=tr, value=n)))
        n_cells.append(Cell(f"{fmt_int(clusters, lang)} {t('col_n_clusters').lower()}" if not is_missing(clusters) else "",
                            classes=("num",), number="count"))
    body.append(Row(n_cells, ("n-row",)))
    notes = [t("note_yearly"), t("note_star")]
    return Table(name, t("table_yearly_caption"), header, body, notes, pd.DataFrame(tidy), classes=("results",))


