"""The report's tables that hold no estimate: descriptive statistics (annex Tables 1 and
A3) and the run's facts (feeds, quarantine, files, versions, settings), built from mart
rows into :class:`~mipa.report.table_model.Table` s. Nothing here touches the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from mipa.report import labels
from mipa.report.formatting import DECIMALS, fmt_int, fmt_number, fmt_percent, number_type
from mipa.report.table_model import Cell, Row, Table, col_header, value_attrs

__all__ = ["descriptive_table", "feeds_table", "files_table", "quarantine_table", "settings_table", "simple_table",
           "versions_table"]


# ---------------------------------------------------------------------------------------
# Table 1 / A3: descriptive statistics


def descriptive_table(
    stats: pd.DataFrame, *, lang: str, outcomes: Iterable[str], name: str, caption_key: str
) -> Table:
    """Annex Table 1: observations, mean, sd, min, max, % zero and countries per outcome."""
    t = lambda key: labels.text(lang, key)  # noqa: E731
    header = col_header(
        [t("col_variable"), t("col_n_obs"), t("col_mean"), t("col_sd"), t("col_min"), t("col_max"),
         t("col_share_zero"), t("col_n_countries")]
    )
    wanted = list(outcomes)
    rows = stats[stats["outcome"].isin(wanted)].copy()
    rows["_order"] = rows["outcome"].map({o: i for i, o in enumerate(wanted)})
    rows = rows.sort_values("_order", kind="mergesort")
    body = []
    for r in rows.itertuples(index=False):
        o = r.outcome
        # mean and sd with the statistic rule; minimum and maximum of counts are counts;
        # lead time's statistics are days
        stat = number_type("statistic", o)
        extreme = "days" if stat == "days" else "count"

        def num(col: str, kind: str, value: Any) -> Cell:
            d = DECIMALS[kind]
            text = fmt_percent(value, d, lang, sign=False) if kind == "percent" else fmt_number(value, d, lang)
            return Cell(text, classes=("num",), attrs=value_attrs(outcome=o, column=col, value=value), number=kind)

        body.append(Row([
            Cell(labels.outcome(lang, o), header=True, scope="row", attrs={"data-outcome": o}),
            num("n_obs", "count", r.n_obs),
            num("mean_value", stat, r.mean_value),
            num("sd_value", stat, r.sd_value),
            num("min_value", extreme, r.min_value),
            num("max_value", extreme, r.max_value),
            num("share_zero", "percent", r.share_zero),
            num("n_countries", "count", r.n_countries),
        ]))
    data = rows.drop(columns="_order").reset_index(drop=True)
    data.insert(1, "label", [labels.outcome(lang, o) for o in data["outcome"]])
    return Table(name, labels.text(lang, caption_key), [header], body, data=data, classes=("descriptive",))


# ---------------------------------------------------------------------------------------
# run facts


def simple_table(name: str, caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 *, numeric: Sequence[bool] | None = None, data: pd.DataFrame | None = None,
                 row_headers: bool = True, numbers: Sequence[str] | None = None,
                 decimals: dict[str, int] | None = None) -> Table:
    """A plain table of display strings; the first column is the row header. ``numbers``:
    the number type of each column (formatting.DECIMALS; "" for text), which the display
    strings follow; ``numeric`` only right-aligns (a column of numbers without a type, e.g.
    an estimate with its interval, takes ``effect``)."""
    numbers = list(numbers) if numbers is not None else ["effect" if n else "" for n in (numeric or [False] * len(columns))]
    body = []
    for values in rows:
        cells = []
        for j, value in enumerate(values):
            if j == 0 and row_headers:
                cells.append(Cell(str(value), header=True, scope="row"))
            else:
                cells.append(Cell(str(value), classes=("num",) if numbers[j] else (), number=numbers[j]))
        body.append(Row(cells))
    return Table(name, caption, [col_header(columns)], body,
                 data=data if data is not None else pd.DataFrame(list(rows), columns=list(columns)),
                 classes=("facts",), decimals=dict(decimals or {}))


# quarantined shares are small: the run-facts table shows them to a hundredth of a percent
QUARANTINE_PERCENT_DECIMALS = 2


def feeds_table(reconciliation: pd.DataFrame, files: pd.DataFrame, *, lang: str) -> Table:
    t = lambda key: labels.text(lang, key)  # noqa: E731
    n_files = files.groupby("feed").size() if not files.empty else pd.Series(dtype=int)
    rows = []
    for r in reconciliation.itertuples(index=False):
        rows.append([
            labels.feed(lang, r.feed),
            fmt_int(n_files.get(r.feed, 0), lang),
            fmt_int(r.rows_landed, lang),
            fmt_int(r.rows_staged, lang),
            fmt_int(r.rows_quarantined, lang),
            fmt_percent(r.quarantined_share, QUARANTINE_PERCENT_DECIMALS, lang),
            t("yes") if r.is_reconciled else t("no"),
        ])
    cols = [t("col_feed"), t("col_files"), t("col_rows_landed"), t("col_rows_staged"), t("col_rows_quarantined"),
            t("col_quarantined_share"), t("col_reconciled")]
    return simple_table("run_feeds", t("facts_feeds_caption"), cols, rows,
                        numbers=["", "count", "count", "count", "count", "percent", ""], data=reconciliation.copy(),
                        decimals={"percent": QUARANTINE_PERCENT_DECIMALS})


def quarantine_table(quarantine: pd.DataFrame, *, lang: str) -> Table:
    t = lambda key: labels.text(lang, key)  # noqa: E731
    rows = [[labels.feed(lang, r.feed), r.quarantine_rule, fmt_int(r.n_rows, lang), r.example]
            for r in quarantine.itertuples(index=False)]
    table = simple_table("run_quarantine", t("facts_quarantine_caption"),
                         [t("col_feed"), t("col_rule"), t("col_count"), t("col_example")], rows,
                         numbers=["", "", "count", ""], data=quarantine.copy())
    if quarantine.empty:
        table.notes.append(t("none_quarantined"))
    return table


def files_table(files: pd.DataFrame, *, lang: str) -> Table:
    t = lambda key: labels.text(lang, key)  # noqa: E731
    rows = [[r.source_file, labels.feed(lang, r.feed), fmt_int(r.rows_loaded, lang), labels.load_status(lang, r.load_status),
             (r.file_sha256 or "")[:16], r.identical_to_file or ""] for r in files.itertuples(index=False)]
    return simple_table("run_files", t("facts_files_caption"),
                        [t("col_file"), t("col_feed"), t("col_rows"), t("col_status"), t("col_sha"), t("col_identical")],
                        rows, numbers=["", "", "count", "", "", ""], data=files.copy())


def versions_table(versions: dict[str, str], *, lang: str) -> Table:
    t = lambda key: labels.text(lang, key)  # noqa: E731
    rows = [[k, v] for k, v in versions.items()]
    return simple_table("run_versions", t("facts_versions_caption"), [t("col_tool"), t("col_version")], rows)


def settings_table(estimates: pd.DataFrame, *, lang: str) -> Table:
    """One column per distinct run_settings JSON (normally one), one row per setting."""
    t = lambda key: labels.text(lang, key)  # noqa: E731
    if estimates.empty or "run_settings" not in estimates:
        return simple_table("run_settings", t("facts_settings_caption"), [t("col_setting"), t("col_value")], [])
    groups: dict[str, list[str]] = {}
    for settings_json, est in sorted(set(zip(estimates["run_settings"].fillna("{}"), estimates["estimator"]))):
        groups.setdefault(settings_json, []).append(est)
    parsed = []
    for settings_json in sorted(groups):
        try:
            parsed.append(json.loads(settings_json))
        except json.JSONDecodeError:
            parsed.append({"run_settings": settings_json})
    keys = sorted({k for p in parsed for k in p})

    def show(v: Any) -> str:
        if isinstance(v, (list, tuple)):
            return ", ".join(map(str, v))
        if isinstance(v, dict):
            return json.dumps(v, sort_keys=True)
        return "" if v is None else str(v)

    rows = [[k, *[show(p.get(k)) for p in parsed]] for k in keys]
    if len(parsed) > 1:
        rows.append([t("col_estimators"), *[", ".join(groups[s]) for s in sorted(groups)]])
        cols = [t("col_setting"), *[f"{t('col_value')} {i}" for i in range(1, len(parsed) + 1)]]
    else:
        cols = [t("col_setting"), t("col_value")]
    data = pd.DataFrame([{"run_settings": s, "estimators": ",".join(groups[s])} for s in sorted(groups)])
    return simple_table("run_settings", t("facts_settings_caption"), cols, rows, data=data)

