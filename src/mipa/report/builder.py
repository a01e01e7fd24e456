"""Build one report run: read the marts, draw the figures, lay out the tables, write the
folder ``<out>/<run>/`` (index.html with the report in English and Dutch, tables as CSV and
Parquet, an Excel workbook per language, figures as PNG and SVG, run_facts.json). The Dutch
files carry the suffix ``_nl``; both languages' figures are drawn in one pool of workers.

The folder is written next to its final place and swapped in when complete, so a failed
run never leaves half a report. The same database gives the same bytes on the same day and
checkout: nothing in the output depends on the clock (beyond the report date, a day, which
``SOURCE_DATE_EPOCH`` pins), the machine or the database's path.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from mipa.outcomes import MAIN_ESTIMATOR, MAIN_OUTCOMES, main_estimator
from mipa.report import labels
from mipa.report.conclusions import conclusions
from mipa.report.data import (
    APPENDIX_OUTCOME,
    OUTCOME_ORDER,
    YEARLY_OUTCOME_ORDER,
    ReportData,
    load,
)
from mipa.report.facts_tables import (
    descriptive_table,
    feeds_table,
    files_table,
    quarantine_table,
    settings_table,
    versions_table,
)
from mipa.report.figure_model import FigureSpec, RenderedFigure, render_all
from mipa.report.figures import figure_specs
from mipa.report.formatting import MISSING, code_version_text, fmt_day, fmt_int, fmt_month_long, fmt_month_short
from mipa.report.html import (
    LanguageDocument,
    Section,
    document,
    heading,
    paragraph,
    render_dl,
    render_figure,
    render_table,
)
from mipa.report.parts import Part, load_marts, part_modules
from mipa.report.table_model import Table, assign_number_types
from mipa.report.tables import (
    csdid_n_note,
    effect_table,
    twfe_table,
    yearly_table,
)
from mipa.report.workbook import workbook_facts, write_workbook

TOOLS = ("mipa", "duckdb", "dbt-core", "dbt-duckdb", "numpy", "pandas", "pyarrow", "scipy", "matplotlib")
# numeric columns of the tidy exports (object columns mixing None and numbers break Parquet)
NUMERIC_EXPORT_COLUMNS = (
    "estimate", "std_error", "ci_low", "ci_high", "band_low", "band_high", "p_value", "event_time", "n_obs",
    "n_clusters", "n_treated_clusters", "mean_value", "sd_value", "min_value", "max_value", "share_zero",
    "n_countries", "rows_landed", "rows_staged", "rows_quarantined", "quarantined_share", "rows_loaded", "n_rows",
)
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def report_workers() -> int:
    """Processes that draw the figures: ``MIPA_REPORT_WORKERS``, else one per core (at most
    two: the report runs after the build, so nothing else is busy)."""
    value = os.environ.get("MIPA_REPORT_WORKERS")
    return max(1, int(value)) if value else max(1, min(2, os.cpu_count() or 1))


def log(message: str) -> None:
    print(f"[mipa report] {message}", file=sys.stderr, flush=True)


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in TOOLS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


# the code that makes the numbers: a checkout with changes here is marked as modified
CODE_PATHS = ("src", "models", "python_models", "macros", "seeds", "montecarlo", "dbt_project.yml",
              "pyproject.toml")


def git_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """(short commit, uncommitted changes to the code) of the checkout mipa runs from, or
    (None, False) when mipa is not run from a git checkout or git is absent. Read-only:
    ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from rewriting the index."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[3]
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None, False
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        commit = subprocess.run([git, "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=20, check=True, env=env).stdout.strip()
        status = subprocess.run([git, "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                 *CODE_PATHS], capture_output=True, text=True, timeout=20, check=True, env=env)
    except (OSError, subprocess.SubprocessError):
        return None, False
    return (commit or None), bool(status.stdout.strip())


def code_version() -> dict[str, Any]:
    """The mipa version and, when run from a git checkout, its commit."""
    commit, modified = git_commit()
    return {"mipa": tool_versions()["mipa"], "git_commit": commit, "git_modified": modified}


def report_date() -> dt.date:
    """Today, or the day of ``SOURCE_DATE_EPOCH`` (UTC) for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).date()
        except (ValueError, OverflowError, OSError):
            pass
    return dt.date.today()


def first_screen_facts(data: ReportData, lang: str, *, day: dt.date, version: dict[str, Any]) -> list[tuple[str, str]]:
    """What the reader sees first: when the report was made, which months the data cover,
    and which code made it."""
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    pf = data.panel_facts
    first, last = pf.get("first_event_month"), pf.get("last_event_month")
    if first is None or last is None:
        window = MISSING
    else:
        whole = (first, last) == (pf["first_month"], pf["last_month"])
        window = t("facts_data_window_whole" if whole else "facts_data_window_value",
                   first=fmt_month_long(first, lang), last=fmt_month_long(last, lang),
                   panel_first=fmt_month_long(pf["first_month"], lang), panel_last=fmt_month_long(pf["last_month"], lang))
    return [
        (t("facts_report_date"), fmt_day(day, lang)),
        (t("facts_data_window"), window),
        (t("facts_code_version"), code_version_text(version, lang)),
    ]


def default_run_name(data: ReportData) -> str:
    """``synthetic-<feed fingerprint>``: the same feeds give the same folder (one page holds
    every language)."""
    source = "synthetic" if data.synthetic else "real"
    return f"{source}-{data.fingerprint[:10]}"


def file_suffix(lang: str) -> str:
    """Suffix of a language's files: none for English, ``_nl`` for Dutch."""
    return "" if lang == labels.LANGUAGES[0] else f"_{lang}"


def workbook_name(lang: str) -> str:
    return f"tables{file_suffix(lang)}.xlsx"


# ---------------------------------------------------------------------------------------


def build_tables(data: ReportData, lang: str) -> dict[str, Table]:
    appendix = [o for o in OUTCOME_ORDER if o == APPENDIX_OUTCOME]
    robust_order = [APPENDIX_OUTCOME, *MAIN_OUTCOMES]  # the annex's tables A1 and A2 start with it
    planted = data.planted if data.synthetic else None  # the generator's truth, never on real feeds
    main_rows = data.estimates_of(MAIN_ESTIMATOR)
    main: dict[str, Table] = {} if main_rows.empty else {
        "table2p": effect_table(main_rows, data.partners, lang=lang, estimator=MAIN_ESTIMATOR,
                                outcomes=[o for o in MAIN_OUTCOMES if main_estimator(o) == MAIN_ESTIMATOR],
                                name="table_02p_poisson_etwfe", caption_key="table2p_caption",
                                note_keys=["note_poisson_etwfe"], inference=data.inference, planted=planted),
    }
    return {
        "table1": descriptive_table(data.descriptive, lang=lang, outcomes=MAIN_OUTCOMES,
                                    name="table_01_descriptive", caption_key="table1_caption"),
        "tableA3": descriptive_table(data.descriptive, lang=lang, outcomes=appendix,
                                     name="table_a3_descriptive_verified", caption_key="tableA3_caption"),
        **main,
        "table2": effect_table(data.estimates, data.partners, lang=lang, estimator="etwfe", outcomes=MAIN_OUTCOMES,
                               name="table_02_etwfe", caption_key="table2_caption", note_keys=["note_etwfe"],
                               inference=data.inference, planted=planted),
        "tableA1": effect_table(data.estimates, data.partners, lang=lang, estimator="csdid", outcomes=robust_order,
                                name="table_a1_csdid", caption_key="tableA1_caption", note_keys=["note_csdid"],
                                inference=data.inference, planted=planted,
                                n_note=csdid_n_note(data.estimates, data.partners, lang=lang,
                                                    n_rows=data.panel_facts["n_rows"])),
        "tableA2": twfe_table(data.estimates, lang=lang, outcomes=robust_order, planted=planted),
        "tableA4": effect_table(data.estimates, data.partners, lang=lang, estimator="etwfe", outcomes=appendix,
                                name="table_a4_etwfe_verified", caption_key="tableA4_caption",
                                note_keys=["note_etwfe"], inference=data.inference, planted=planted),
        "yearly": yearly_table(data.yearly, lang=lang, outcomes=YEARLY_OUTCOME_ORDER),
        "feeds": feeds_table(data.reconciliation, data.delivery_files, lang=lang),
        "quarantine": quarantine_table(data.quarantine, lang=lang),
        "files": files_table(data.delivery_files, lang=lang),
        "versions": versions_table(tool_versions(), lang=lang),
        "settings": settings_table(data.estimates, lang=lang),
    }


def _source_facts(data: ReportData, lang: str) -> list[tuple[str, str]]:
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    pf = data.panel_facts
    items = [(t("facts_source"), t("facts_synthetic") if data.synthetic else t("facts_real"))]
    if data.synthetic:
        seed = data.generator_seed
        items.append((t("facts_generator_seed"), "—" if seed is None else str(seed)))
        generator = data.metadata.get("generator")
        if isinstance(generator, dict):
            scalars = [f"{k}={v}" for k, v in sorted(generator.items())
                       if not isinstance(v, (dict, list)) and k != "seed"]
            if scalars:
                items.append((t("facts_generator"), ", ".join(scalars)))
    items += [
        (t("facts_database"), data.db_name),
        (t("facts_fingerprint"), data.fingerprint),
        (t("facts_panel_range"), t("facts_panel_range_value", first_month=fmt_month_long(pf["first_month"], lang),
                                   last_month=fmt_month_long(pf["last_month"], lang), n_months=pf["n_months"])),
        (t("facts_countries"), t("facts_countries_value", n_panel=pf["n_countries"], n_partner=pf["n_partner"],
                                 n_control=pf["n_control"])),
        (t("facts_rows"), fmt_int(pf["n_rows"], lang)),
    ]
    name_col = labels.COUNTRY_NAME_COLUMN[lang]
    partners = ", ".join(f"{r[name_col]} ({fmt_month_short(r['mipa_start_month'])})" for _, r in data.partners.iterrows())
    items.append((t("facts_partners"), partners or "—"))
    if data.covid_months:
        items.append((t("facts_covid"), f"{fmt_month_long(min(data.covid_months), lang)} – "
                                        f"{fmt_month_long(max(data.covid_months), lang)}"))
    return items


def build_parts(db_path: Path, data: ReportData, lang: str,
                marts: dict[str, pd.DataFrame] | None = None) -> list[tuple[str, Part]]:
    """The report parts (:mod:`mipa.report.parts`) with something to show, each with the
    id of the section it follows. ``marts``: the parts' marts, when already read."""
    modules = part_modules()
    if marts is None:
        marts = load_marts(db_path, [name for module in modules for name in module.MARTS])
    out = []
    for module in modules:
        part = module.build(data, {k: v for k, v in marts.items() if k in module.MARTS}, lang)
        if part is not None:
            out.append((module.AFTER, part))
    return out


def part_section(part: Part, rendered: dict[str, RenderedFigure]) -> Section:
    """A part's blocks as HTML: tables rendered, figures replaced by their drawings."""
    section = Section(part.id, part.title, part.intro)
    for block in part.blocks:
        if isinstance(block, Table):
            section.blocks.append(render_table(block))
        elif isinstance(block, str):
            section.blocks.append(block)
        else:
            section.blocks.append(render_figure(rendered[block.name]))
    return section


def build_sections(data: ReportData, lang: str, tables: dict[str, Table],
                   figures: dict[str, list[RenderedFigure]]) -> list[Section]:
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    pf = data.panel_facts
    figs = lambda group: [render_figure(f) for f in figures.get(group, [])]  # noqa: E731

    data_section = Section("data", t("sec_data"), t(
        "intro_data", n_countries=pf["n_countries"], first_month=fmt_month_long(pf["first_month"], lang),
        last_month=fmt_month_long(pf["last_month"], lang), n_rows=fmt_int(pf["n_rows"], lang)))
    data_section.blocks += [render_table(tables["table1"]), render_table(tables["tableA3"]), *figs("data")]

    trends = Section("trends", t("sec_trends"), t("intro_trends"), figs("trends"))
    parallel = Section("parallel", t("sec_parallel"), t("intro_parallel"), figs("parallel"))

    results = Section("results", t("sec_results"), t("intro_results"))
    if "table2p" in tables:
        results.blocks += [heading(3, t("sub_main")), paragraph(t("intro_main")), render_table(tables["table2p"])]
    results.blocks += [heading(3, t("sub_etwfe")), *figs("coefficients"), render_table(tables["table2"])]
    if figures.get("events"):
        results.blocks += [heading(3, t("sub_event")), *figs("events")]
    results.blocks += [heading(3, t("sub_robust")), render_table(tables["tableA1"]), render_table(tables["tableA2"])]
    results.blocks += [heading(3, t("sub_verified")), render_table(tables["tableA4"])]
    results.blocks += [heading(3, t("sub_yearly")), paragraph(t("intro_yearly")), render_table(tables["yearly"])]

    concl = Section("conclusions", t("sec_conclusions"), t("intro_conclusions"))
    concl.blocks.append('<ul class="conclusions">' + "".join(f"<li>{escape(point)}</li>"
                                                             for point in conclusions(data, lang)) + "</ul>")

    facts = Section("facts", t("sec_facts"), t("intro_facts"))
    if data.warnings:
        facts.blocks.append('<div class="warning-box" role="alert">' + "".join(paragraph(w) for w in data.warnings)
                            + "</div>")
    facts.blocks.append(render_dl(_source_facts(data, lang)))
    for key in ("feeds", "quarantine", "files", "settings", "versions"):
        facts.blocks.append(render_table(tables[key]))
    # the parts (inference, sensitivity, robustness) go in after results, before the conclusions
    return [data_section, trends, parallel, results, concl, facts]


# ---------------------------------------------------------------------------------------


def _export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col in NUMERIC_EXPORT_COLUMNS:
            out[col] = pd.to_numeric(out[col], errors="coerce")
        elif out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return out


def write_frame_files(frame: pd.DataFrame, folder: Path, stem: str) -> None:
    frame = _export_frame(frame)
    frame.to_csv(folder / f"{stem}.csv", index=False, lineterminator="\n")
    frame.to_parquet(folder / f"{stem}.parquet", index=False)


def write_table_files(table: Table, folder: Path) -> None:
    write_frame_files(table.data, folder, table.name)


def extra_exports(data: ReportData) -> dict[str, pd.DataFrame]:
    """Results shown only as figures: the event studies, every event time."""
    out = {}
    for est in sorted(set(data.event_study["estimator"])) if not data.event_study.empty else []:
        frame = data.event_study[data.event_study["estimator"] == est]
        out[f"event_study_{est}"] = frame.sort_values(["outcome", "scope", "inference", "event_time"]).reset_index(
            drop=True)
    return out


def run_facts(data: ReportData, lang: str, run: str, tables: dict[str, Table],
              figures: list[RenderedFigure], *, day: dt.date | None = None,
              version: dict[str, Any] | None = None, languages: Sequence[str] = ("en",),
              extra_files: Sequence[str] = ()) -> dict[str, Any]:
    pf = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.panel_facts.items()}
    return {
        "run": run,
        "report_date": (day or report_date()).isoformat(),
        "code_version": version or code_version(),
        "language": lang,  # shown first; the page holds every one of "languages"
        "languages": list(languages),
        "database": data.db_name,
        "load_metadata": data.metadata,
        "synthetic": data.synthetic,
        "generator_seed": data.generator_seed,
        "feed_fingerprint_sha256": data.fingerprint,
        "panel": pf,
        "partners": [{"iso3": r["iso3"], "mipa_start_month": r["mipa_start_month"].date().isoformat()}
                     for _, r in data.partners.iterrows()],
        "estimation_run_settings": sorted(set(data.estimates["run_settings"].dropna()))
        if "run_settings" in data.estimates else [],
        "tool_versions": tool_versions(),
        "warnings": data.warnings,
        "tables": sorted(f"{name}.{ext}" for name in [*(t.name for t in tables.values()), *extra_exports(data)]
                         for ext in ("csv", "parquet")),
        "workbooks": sorted(extra_files),
        "figures": sorted(f"{f.spec.name}.{ext}" for f in figures for ext in ("png", "svg")),
    }


@dataclass
class LanguageBuild:
    """One language's tables, figures and parts, before drawing."""
    lang: str
    tables: dict[str, Table]
    specs: dict[str, list[FigureSpec]]
    parts: list[tuple[str, Part]]


def build_language(db_path: Path, data: ReportData, lang: str, marts: dict[str, pd.DataFrame]) -> LanguageBuild:
    """Lay out one language's tables and parts and specify its figures; the files of every
    language but the first carry its suffix (``table_02_etwfe_nl.csv``)."""
    tables = build_tables(data, lang)
    specs = figure_specs(data, lang)
    parts = build_parts(db_path, data, lang, marts)
    for _, part in parts:
        specs[f"part:{part.id}"] = [b for b in part.blocks if isinstance(b, FigureSpec)]
        for block in part.blocks:
            if isinstance(block, Table):
                tables[block.name] = block
    suffix = file_suffix(lang)
    for table in tables.values():
        assign_number_types(table)
        table.name += suffix
        table.workbook = workbook_name(lang)
    for group in specs.values():
        for spec in group:
            spec.name += suffix
    return LanguageBuild(lang, tables, specs, parts)


def language_document(data: ReportData, build: LanguageBuild, rendered: dict[str, list[RenderedFigure]], *,
                      day: dt.date, code: dict[str, Any]) -> LanguageDocument:
    lang = build.lang
    t = lambda key, **kw: labels.text(lang, key, **kw)  # noqa: E731
    version = tool_versions()["mipa"]
    source_text = t("facts_synthetic") if data.synthetic else t("facts_real")
    if data.synthetic and data.generator_seed is not None:
        source_text += f" (seed {data.generator_seed})"
    source = (f'<p class="source-line"><strong>{escape(t("facts_source"))}:</strong> '
              f"{escape(source_text)} · {escape(data.db_name)}</p>"
              + render_dl(first_screen_facts(data, lang, day=day, version=code), cls="facts first-screen"))
    sections = build_sections(data, lang, build.tables, rendered)
    by_name = {f.spec.name: f for group in rendered.values() for f in group}
    parts = build.parts
    for after, part in parts:
        ids = [sec.id for sec in sections]
        # a part follows its section (and the parts placed there before it)
        at = ids.index(after) + 1 if after in ids else len(sections) - 1
        while at < len(sections) and sections[at].id in {p.id for _, p in parts}:
            at += 1
        sections.insert(at, part_section(part, by_name))
    return LanguageDocument(lang, t("title"), t("subtitle"), source, sections,
                            t("footer", version=version, database=data.db_name))


def build_report(db_path: Path, out_dir: Path, *, lang: str = "en", run_name: str | None = None) -> Path:
    """Write ``<out_dir>/<run>/index.html`` (plus tables, workbooks and figures) from the
    database at ``db_path`` (opened read-only) and return the path of ``index.html``.

    The page holds the report in every language (:data:`labels.LANGUAGES`) with a switch;
    ``lang`` is the one shown first."""
    lang = labels.check_lang(lang)
    started = time.perf_counter()
    log(f"reading {db_path}")
    data = load(Path(db_path))
    for warning in data.warnings:
        log(f"WARNING {warning}")
    run = run_name or default_run_name(data)
    if not RUN_NAME.match(run):
        raise ValueError(f"run name {run!r}: use letters, digits, '.', '_' and '-' only")
    out_dir = Path(out_dir)
    final = out_dir / run
    staging = out_dir / f".{run}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        marts = load_marts(Path(db_path), [name for module in part_modules() for name in module.MARTS])
        builds = [build_language(Path(db_path), data, language, marts) for language in labels.LANGUAGES]
        # every language's figures in one pool: the two workers stay busy to the end
        flat = [(b.lang, group, spec) for b in builds for group, group_specs in b.specs.items()
                for spec in group_specs]
        done = 0

        def written(fig: RenderedFigure, seconds: float) -> None:
            nonlocal done
            done += 1
            (staging / f"{fig.spec.name}.png").write_bytes(fig.png)
            (staging / f"{fig.spec.name}.svg").write_bytes(fig.svg)
            log(f"figure {done}/{len(flat)} {fig.spec.name} ({seconds:.1f}s)")

        drawn = render_all([spec for _, _, spec in flat], workers=report_workers(), on_done=written)
        rendered: dict[str, dict[str, list[RenderedFigure]]] = {b.lang: {} for b in builds}
        for (language, group, _), fig in zip(flat, drawn, strict=True):
            rendered[language].setdefault(group, []).append(fig)
        exports = extra_exports(data)
        all_tables = {t.name: t for b in builds for t in b.tables.values()}
        log(f"writing {len(all_tables) + len(exports)} tables (CSV, Parquet) and {len(builds)} workbooks")
        for table in all_tables.values():
            write_table_files(table, staging)
        for stem, frame in exports.items():
            write_frame_files(frame, staging, stem)
        day, code = report_date(), code_version()
        for b in builds:
            # result tables first, the run facts' reference lists last (as on the page)
            sheets = sorted(b.tables.values(), key=lambda table: table.name.startswith("run_"))
            write_workbook(staging / workbook_name(b.lang), sheets, lang=b.lang,
                           facts=workbook_facts(data, b.lang, day=day, version=code), day=day)
        all_figures = [f for groups in rendered.values() for group in groups.values() for f in group]
        facts = run_facts(data, lang, run, all_tables, all_figures, day=day, version=code,
                          languages=[b.lang for b in builds], extra_files=[workbook_name(b.lang) for b in builds])
        (staging / "run_facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True, default=str) + "\n",
                                                encoding="utf-8")
        docs = [language_document(data, b, rendered[b.lang], day=day, code=code) for b in builds]
        html = document(docs, initial=lang, synthetic=data.synthetic, version=tool_versions()["mipa"])
        (staging / "index.html").write_text(html, encoding="utf-8")
        # swap the finished folder in
        if final.exists():
            old = out_dir / f".{run}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    index = final / "index.html"
    log(f"done in {time.perf_counter() - started:.1f}s: {index}")
    return index
