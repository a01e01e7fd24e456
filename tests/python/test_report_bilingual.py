"""The report's remaining issue-18 items, fast where they can be:

* one page with both languages and a CSS-only switch (ids kept apart, print in the language
  shown);
* one rule for decimals per table, checked cell by cell (also on the built report, slow);
* the Excel workbook (notes sheet, one sheet per table, same bytes for the same tables);
* Figure A1 from the optional air-passenger series, or its place with one sentence;
* the series' load step and its staging SQL on DuckDB in memory.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from openpyxl import load_workbook

from mipa import settings
from mipa.reference_series import AIR_PASSENGERS_ENV, ReferenceFileError, land_air_passengers
from mipa.report import builder, covid_part
from mipa.report.facts_tables import descriptive_table, simple_table
from mipa.report.formatting import DECIMALS, auto_decimals, fmt_estimate_ci
from mipa.report.html import LanguageDocument, Section, document, heading, render_table
from mipa.report.table_model import Cell, Row, Table
from mipa.report.workbook import sheet_names, workbook_bytes

# ---------------------------------------------------------------------------------------
# the decimals checker: every number of every typed cell against its table's rule


class _Cells(HTMLParser):
    """(table rule, cell number type, cell text, language) of every ``td`` of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.lang_stack: list[str] = []
        self.tag_stack: list[tuple[str, str | None]] = []
        self.rule: dict[str, int] | None = None
        self.cell: dict | None = None
        self.cells: list[dict] = []
        self.tables: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        lang = a.get("lang")
        if tag in ("br", "input", "meta"):
            return
        self.tag_stack.append((tag, lang))
        if tag == "table":
            self.rule = json.loads(a["data-decimals"]) if "data-decimals" in a else None
            self.tables.append({"rule": self.rule, "lang": self.lang})
        if tag == "td":
            self.cell = {"rule": self.rule, "number": a.get("data-number", ""), "text": "",
                         "num": "num" in (a.get("class") or "").split(), "lang": self.lang}

    @property
    def lang(self) -> str:
        return next((lang for _, lang in reversed(self.tag_stack) if lang), "en")

    def handle_endtag(self, tag):
        while self.tag_stack:
            open_tag, _ = self.tag_stack.pop()
            if open_tag == tag:
                break
        if tag == "td" and self.cell is not None:
            self.cells.append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += " " + data


NUMBER = {"en": re.compile(r"(?<![\w.,])-?\d{1,3}(?:,\d{3})*(?:\.(\d+))?(?![\d])"),
          "nl": re.compile(r"(?<![\w.,])-?\d{1,3}(?:\.\d{3})*(?:,(\d+))?(?![\d])")}


def decimal_violations(html: str) -> tuple[list[str], int]:
    """Cells whose numbers break their table's rule, and how many numbers were checked.
    A number followed by ``%`` takes the percent rule; every other number the cell's type.
    A right-aligned (``num``) cell with digits must have a type."""
    parser = _Cells()
    parser.feed(html)
    bad, checked = [], 0
    for table in parser.tables:
        if table["rule"] is None:
            bad.append("a table without data-decimals")
    for cell in parser.cells:
        text = cell["text"].replace("\u2212", "-")
        if not cell["number"]:
            if cell["num"] and re.search(r"\d", text) and not re.search(r"not estimable|niet schatbaar", text):
                bad.append(f"untyped number cell: {text.strip()!r}")
            continue
        rule = cell["rule"]
        for m in NUMBER[cell["lang"]].finditer(text):
            after = text[m.end():m.end() + 1]
            kind = "percent" if after == "%" else cell["number"]
            got = len(m.group(1) or "")
            checked += 1
            if got != rule[kind]:
                bad.append(f"{kind} {m.group(0)!r} has {got} decimals, rule {rule[kind]}: {text.strip()!r}")
    return bad, checked


def test_one_rule_for_effects_whatever_their_size() -> None:
    assert auto_decimals(150.0) == auto_decimals(0.4) == auto_decimals(16.1) == DECIMALS["effect"] == 2
    assert auto_decimals(97.3, outcome="lead_time_days") == DECIMALS["days"] == 0
    assert fmt_estimate_ci(0.106, 0.033, 0.177, 0.004) == "0.11* [0.03 0.18]"
    assert fmt_estimate_ci(16.14, 15.5, 16.8, 0.001) == "16.14* [15.50 16.80]"
    assert fmt_estimate_ci(-46.2, -192.4, 100.1, 0.5, lang="nl", outcome="lead_time_days") == "-46 [-192 100]"


def test_decimals_checker_catches_a_cell_off_the_rule() -> None:
    table = simple_table("t", "T", ["what", "n", "share"], [["a", "1,234", "5.0%"], ["b", "12", "7.25%"]],
                         numbers=["", "count", "percent"])
    bad, checked = decimal_violations(render_table(table))
    assert checked == 4 and len(bad) == 1 and "7.25" in bad[0]
    table.decimals = {"percent": 2}  # the table's own rule for shares: now 5.0% is off
    bad, _ = decimal_violations(render_table(table))
    assert len(bad) == 1 and "5.0%" in bad[0]
    untyped = Table("u", "U", [], [Row([Cell("3.14", classes=("num",))])])
    assert decimal_violations(render_table(untyped))[0] == ["untyped number cell: '3.14'"]


def test_descriptive_table_follows_its_rule_in_both_languages() -> None:
    stats = pd.DataFrame([{"outcome": "forced_departures", "n_obs": 10320, "mean_value": 0.634, "sd_value": 3.01,
                           "min_value": 0.0, "max_value": 93.0, "share_zero": 0.8381, "n_countries": 86},
                          {"outcome": "lead_time_days", "n_obs": 2000, "mean_value": 97.2, "sd_value": 189.4,
                           "min_value": 0.5, "max_value": 2620.25, "share_zero": 0.035, "n_countries": 70}])
    for lang in ("en", "nl"):
        table = descriptive_table(stats, lang=lang, outcomes=["forced_departures", "lead_time_days"], name="t1",
                                  caption_key="table1_caption")
        html = f'<div lang="{lang}">{render_table(table)}</div>'
        bad, checked = decimal_violations(html)
        assert bad == [] and checked == 14, bad
    assert [c.text for c in table.body[1].cells][1:6] == ["2.000", "97", "189", "0", "2.620"]


# ---------------------------------------------------------------------------------------
# one page, both languages


def _doc(lang: str, title: str) -> LanguageDocument:
    sections = [Section("data", f"Data {lang}", blocks=[heading(3, "Sub"), '<p id="x">x</p>']),
                Section("facts", f"Facts {lang}")]
    return LanguageDocument(lang, title, "S", '<dl class="facts first-screen"></dl>', sections, "F")


def test_one_page_holds_both_languages_with_a_switch_and_no_script() -> None:
    html = document([_doc("en", "Report"), _doc("nl", "Rapport")], initial="nl", synthetic=True, version="0")
    assert "<script" not in html
    assert '<html lang="nl">' in html and "<title>Rapport</title>" in html
    # one radio per language, the initial one checked; labels point at them
    assert re.findall(r'<input type="radio"[^>]*id="(lang-\w+)"[^>]*?( checked)?>', html) == [
        ("lang-en", ""), ("lang-nl", " checked")]
    assert '<label for="lang-en" lang="en">English</label>' in html
    assert '<label for="lang-nl" lang="nl">Nederlands</label>' in html
    # the CSS shows the document of the checked language only, on screen and in print
    assert "#lang-nl:checked ~ .lang-doc:not(.lang-doc-nl) { display: none; }" in html
    assert "@page doc-nl" in html and ".lang-doc-nl { page: doc-nl; }" in html
    # ids are unique on the page; the Dutch copy's links point at its own ids
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    nl = html[html.index('<div class="lang-doc lang-doc-nl"'):]
    assert 'id="nl-data"' in nl and 'href="#nl-data-1"' in nl and 'id="nl-data-1"' in nl and 'id="nl-x"' in nl
    assert 'aria-labelledby="nl-h-data"' in nl
    en = html[html.index('<div class="lang-doc lang-doc-en"'):html.index('<div class="lang-doc lang-doc-nl"')]
    assert 'href="#data-1"' in en and "nl-" not in en
    # banners in each language
    assert "Synthetic data — not the real DTenV feeds" in en and "Synthetische gegevens" in nl
    with pytest.raises(ValueError):
        document([_doc("en", "A"), _doc("en", "B")], initial="en", synthetic=False, version="0")


# ---------------------------------------------------------------------------------------
# the workbook


def _tables() -> list[Table]:
    a = simple_table("table_02_etwfe_nl", "Tabel 2. Effecten", ["x", "n"], [["a", "1"]], numbers=["", "count"],
                     data=pd.DataFrame({"outcome": ["forced_departures", "requests"], "estimate": [3.04, float("nan")],
                                        "n_obs": [10320, 10320], "p_value": [0.0123, None],
                                        "month": pd.to_datetime(["2022-06-01", "2022-10-01"]),
                                        "display": ["3,04* [1,10 4,90]", "—"]}))
    a.notes = ["Noot één.", "* p < 0,05"]
    b = simple_table("run_settings_nl" + "x" * 40, "Instellingen", ["k", "v"], [["a", "b"]])
    return [a, b]


def test_workbook_has_notes_then_one_sheet_per_table_with_numbers_as_numbers() -> None:
    facts = [("Bron", "Synthetische gegevens (seed 7)"), ("Datum van het rapport", "9 maart 2026"),
             ("Codeversie", "mipa 0.1.0, git-commit abc")]
    data = workbook_bytes(_tables(), lang="nl", facts=facts, day=dt.date(2026, 3, 9))
    wb = load_workbook(io.BytesIO(data))
    names = sheet_names(_tables(), "nl")
    assert wb.sheetnames == ["toelichting", *names]
    assert names[0] == "table_02_etwfe" and len(names[1]) == 31
    notes = [[c for c in row if c is not None] for row in wb["toelichting"].iter_rows(values_only=True)]
    flat = [str(c) for row in notes for c in row]
    for text in ("Synthetische gegevens (seed 7)", "9 maart 2026", "mipa 0.1.0, git-commit abc", "Tabel 2. Effecten",
                 "Noot één.\n* p < 0,05", "table_02_etwfe_nl.csv", "Instellingen"):
        assert text in flat, text
    rows = list(wb["table_02_etwfe"].iter_rows(values_only=True))
    assert rows[0] == ("outcome", "estimate", "n_obs", "p_value", "month", "display")
    assert rows[1] == ("forced_departures", 3.04, 10320, 0.0123, "2022-06-01", "3,04* [1,10 4,90]")
    assert rows[2] == ("requests", None, 10320, None, "2022-10-01", "—")
    assert wb["table_02_etwfe"]["B2"].number_format == "0.00" and wb["table_02_etwfe"]["C2"].number_format == "#,##0"
    assert wb.properties.created == dt.datetime(2026, 3, 9) and wb.properties.modified == dt.datetime(2026, 3, 9)
    # the same tables give the same bytes; other tables other bytes
    assert workbook_bytes(_tables(), lang="nl", facts=facts, day=dt.date(2026, 3, 9)) == data
    assert workbook_bytes(_tables()[:1], lang="nl", facts=facts, day=dt.date(2026, 3, 9)) != data


# ---------------------------------------------------------------------------------------
# Figure A1 and the optional air-passenger series


def _covid_data():
    from test_report_content import _data

    data = _data()
    return data


def test_figure_a1_is_drawn_from_the_series_and_its_place_explained_without_it() -> None:
    from mipa.report.figure_model import FigureSpec, render

    data = _covid_data()
    months = pd.date_range("2019-01-01", "2023-12-01", freq="MS")
    series = pd.DataFrame({"month_start": months, "passengers": [1000.0 + i for i in range(len(months))],
                           "source_file": "reference/air_passengers.csv"})
    part = covid_part.build(data, {covid_part.MART: series}, "en")
    assert part.id == "covid" and "May 2020 to August 2022" in part.intro
    (spec,) = part.blocks
    assert isinstance(spec, FigureSpec) and spec.number == "A1" and spec.caption.startswith("Figure A1.")
    assert "January 2019" in spec.alt and "December 2023" in spec.alt
    assert "reference/air_passengers.csv (60 months)" in spec.notes[0]
    drawn = render(spec)
    assert b"Passengers per month" in drawn.svg and drawn.png.startswith(b"\x89PNG")
    for marts in ({}, {covid_part.MART: series.iloc[0:0]}):  # an old warehouse, or no file given
        for lang, words in (("en", "Figure A1"), ("nl", "Figuur A1")):
            (block,) = covid_part.build(data, marts, lang).blocks
            assert isinstance(block, str) and block.startswith('<p class="figure-missing" id="figure_A1_air_passengers"')
            assert words in block and "reference/air_passengers.csv" in block and AIR_PASSENGERS_ENV in block
            assert block.count(". ") == 0  # one sentence


def test_air_passengers_land_from_the_raw_folder_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(AIR_PASSENGERS_ENV, raising=False)
    con = duckdb.connect()
    con.execute("create schema landing")
    assert land_air_passengers(con, tmp_path) == 0
    assert con.execute("select count(*) from landing.air_passengers").fetchone() == (0,)
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "air_passengers.csv").write_text(
        "Month,Passengers,extra\n2020-04,\"1,200\",x\n2020-05-01,800,\n\n2020-06,oops,\n", encoding="utf-8")
    assert land_air_passengers(con, tmp_path) == 3
    landed = con.execute("select * from landing.air_passengers order by row_number").fetchall()
    assert landed[0] == ("2020-04", "1,200", "reference/air_passengers.csv", 1)
    # the staging model on DuckDB in memory: months parsed, numbers read, bad values NULL
    sql = (settings.project_dir() / "models/staging/air_traffic/stg_reference__air_passengers.sql").read_text()
    sql = sql.replace("{{ source('air_traffic', 'air_passengers') }}", "landing.air_passengers")
    sql = re.sub(r"\{\{ month_start\(\"(.*)\"\) \}\}", r"cast(date_trunc('month', \1) as date)", sql)
    assert "{{" not in sql
    rows = con.execute(f"select month_start, passengers, row_number from ({sql}) order by row_number").fetchall()
    assert rows == [(dt.date(2020, 4, 1), 1200.0, 1), (dt.date(2020, 5, 1), 800.0, 2), (dt.date(2020, 6, 1), None, 4)]
    # a file elsewhere, named by the environment; a file without the columns stops the load
    other = tmp_path / "passengers.csv"
    other.write_text("maand,aantal\n2020-04,5\n", encoding="utf-8")
    monkeypatch.setenv(AIR_PASSENGERS_ENV, str(other))
    with pytest.raises(ReferenceFileError, match=r"passengers.csv: missing column\(s\) month, passengers "
                                                 r"\(rule: air_passengers_columns"):
        land_air_passengers(con, tmp_path)


# ---------------------------------------------------------------------------------------
# on the built report (the synthetic warehouse of the session)


@pytest.fixture(scope="session")
def built_report(synthetic_warehouse: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    from mipa.report import build_report

    db = Path(os.environ.get("MIPA_REPORT_TEST_DB") or synthetic_warehouse[1])
    return build_report(db, tmp_path_factory.mktemp("bilingual"), run_name="bilingual")


@pytest.mark.slow
def test_every_table_cell_of_the_built_report_follows_its_rule(built_report: Path) -> None:
    html = built_report.read_text(encoding="utf-8")
    bad, checked = decimal_violations(html)
    assert bad == [], bad[:20]
    assert checked > 1000


@pytest.mark.slow
def test_built_report_has_both_languages_and_a_workbook_per_language(built_report: Path) -> None:
    folder = built_report.parent
    html = built_report.read_text(encoding="utf-8")
    assert html.count('class="lang-doc ') == 2
    facts = json.loads((folder / "run_facts.json").read_text())
    assert facts["languages"] == ["en", "nl"] and facts["workbooks"] == ["tables.xlsx", "tables_nl.xlsx"]
    for lang, name in (("en", "tables.xlsx"), ("nl", "tables_nl.xlsx")):
        wb = load_workbook(folder / name, read_only=True)
        suffix = "" if lang == "en" else "_nl"
        stems = sorted(p.name[: -len(f"{suffix}.csv")] for p in folder.glob(f"*{suffix}.csv")
                       if not p.name.startswith("event_study") and (lang == "nl") == p.name.endswith("_nl.csv"))
        assert sorted(wb.sheetnames[1:]) == stems, lang
        # a sheet holds its CSV's rows
        sheet = list(wb["table_02_etwfe"].iter_rows(values_only=True))
        csv = pd.read_csv(folder / f"table_02_etwfe{suffix}.csv")
        assert list(sheet[0]) == list(csv.columns) and len(sheet) - 1 == len(csv)
        est = [r[list(csv.columns).index("estimate")] for r in sheet[1:]]
        assert est == pytest.approx(csv["estimate"].tolist(), nan_ok=True)
        wb.close()
    # every table links its workbook, in its language
    en = html[:html.index('<div class="lang-doc lang-doc-nl"')]
    nl = html[html.index('<div class="lang-doc lang-doc-nl"'):]
    assert en.count("<table") == en.count('href="tables.xlsx"') >= 20
    assert nl.count("<table") == nl.count('href="tables_nl.xlsx"') == en.count("<table")
    # Figure A1's place (the default synthetic feeds bring no passenger series)
    assert 'id="figure_A1_air_passengers"' in en and 'id="nl-figure_A1_air_passengers"' in nl


def test_builder_names_files_per_language() -> None:
    assert builder.file_suffix("en") == "" and builder.file_suffix("nl") == "_nl"
    assert builder.workbook_name("nl") == "tables_nl.xlsx"
