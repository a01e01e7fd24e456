"""The report (``mipa report``): table layout on small frames, and the real page in a
headless browser.

Fast tests pin the formatting (annex layout, star rule p < 0.05, Dutch decimal comma) on
hand-made DataFrames. The slow tests build a synthetic warehouse once per session
(``mipa simulate`` + ``mipa build``, generator seed default), write the report in English
and Dutch and open it in headless Chromium (``/usr/bin/chromium``, Debian package
``chromium``) driven by Playwright. They are skipped only when that browser is absent.

Set ``MIPA_REPORT_TEST_DB`` to the path of an already built database to skip the build.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import read_frame

from mipa.report import labels
from mipa.report.facts_tables import descriptive_table
from mipa.report.figure_model import inline_svg
from mipa.report.formatting import (
    auto_decimals,
    country_row_label,
    fmt_estimate_ci,
    fmt_estimate_se,
    fmt_int,
    fmt_number,
    fmt_percent,
    fmt_value_attr,
    star,
)
from mipa.report.html import render_table
from mipa.report.tables import (
    effect_table,
    select_estimate,
    twfe_table,
    yearly_table,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TOL = 1e-9


# ---------------------------------------------------------------------------------------
# formatting


def test_number_formats_in_english_and_dutch() -> None:
    assert fmt_number(1234.56, 1, "en") == "1,234.6"
    assert fmt_number(1234.56, 1, "nl") == "1.234,6"
    assert fmt_number(-0.84, 1, "nl") == "-0,8"
    assert fmt_int(10320, "en") == "10,320"
    assert fmt_int(10320, "nl") == "10.320"
    assert fmt_percent(0.838, 1, "en") == "83.8%"
    assert fmt_percent(0.838, 1, "nl") == "83,8%"
    assert fmt_number(None) == fmt_number(float("nan")) == fmt_int(pd.NA) == "—"


def test_star_rule_is_p_below_five_percent() -> None:
    assert star(0.0499) == "*"
    assert star(0.05) == ""
    assert star(0.2) == ""
    assert star(None) == ""
    assert star(float("nan")) == ""


def test_estimate_with_interval_in_annex_layout() -> None:
    # Table 2 of the annex's layout ("3,0 [-0,8 6,7]", "-46 [-192 100]") with the report's one
    # rule: effects with two decimals whatever their size (so small synthetic effects never
    # print as 0.0), lead time in whole days
    assert fmt_estimate_ci(3.04, -0.84, 6.71, 0.12, lang="nl") == "3,04 [-0,84 6,71]"
    assert fmt_estimate_ci(9.3, 8.8, 9.8, 0.001, lang="nl") == "9,30* [8,80 9,80]"
    assert fmt_estimate_ci(9.3, 8.8, 9.8, 0.001, lang="en") == "9.30* [8.80 9.80]"
    assert fmt_estimate_ci(-46.2, -192.4, 100.1, 0.5, lang="nl", outcome="lead_time_days") == "-46 [-192 100]"
    assert fmt_estimate_ci(0.106, 0.033, 0.177, 0.004, lang="en") == "0.11* [0.03 0.18]"
    assert fmt_estimate_ci(float("nan"), 1, 2, 0.1) == "—"


def test_estimate_with_standard_error() -> None:
    # Table A2's layout: "6,7* (3,2)", with the effect rule's two decimals
    assert fmt_estimate_se(6.71, 3.2, 0.03, lang="nl") == "6,71* (3,20)"
    assert fmt_estimate_se(-18.2, 59.7, 0.76, lang="en") == "-18.20 (59.70)"


def test_decimals_by_outcome_not_magnitude() -> None:
    assert auto_decimals(97.3, outcome="lead_time_days") == 0
    assert auto_decimals(150.0) == auto_decimals(16.1, 15.5) == auto_decimals(0.4, -0.2) == 2


def test_country_row_label_and_value_attribute() -> None:
    assert country_row_label("Marokko", pd.Timestamp("2022-06-01")) == "Marokko (06-2022)"
    assert fmt_value_attr(0.1 + 0.2) == repr(0.1 + 0.2)  # unrounded, round-trips exactly
    assert float(fmt_value_attr(1 / 3)) == 1 / 3
    assert fmt_value_attr(None) == ""


def test_labels_have_the_same_keys_in_both_languages() -> None:
    for name, group in labels.GROUPS.items():
        assert set(group["en"]) == set(group["nl"]), name
    # the report's prose files (src/mipa/report/text/*.yml): both languages, the same keys
    files = sorted((Path(labels.__file__).parent / "text").glob("*.yml"))
    assert len(files) == 6
    for path in files:
        words = labels.load_text(path.stem)
        assert set(words["en"]) == set(words["nl"]) and words["en"], path.name
    assert labels.outcome("nl", "lead_time_days") == "Doorlooptijd"
    assert labels.outcome("nl", "confirmations") == "Nationaliteitsbevestigingen"
    with pytest.raises(ValueError):
        labels.check_lang("de")


# ---------------------------------------------------------------------------------------
# table builders on small frames


def _estimate(estimator, outcome, scope, estimate, lo, hi, p, *, aggregation="simple", inference="cluster_unit",
              n_obs=100, se=1.0, control_group="notyettreated"):
    return {"estimator": estimator, "outcome": outcome, "aggregation": aggregation, "scope": scope,
            "estimate": estimate, "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p, "n_obs": n_obs,
            "n_clusters": 10, "n_treated_clusters": 2, "inference": inference, "control_group": control_group,
            "run_settings": "{}"}


@pytest.fixture
def partners() -> pd.DataFrame:
    return pd.DataFrame({
        "iso3": ["MAR", "TUR"],
        "country_name_en": ["Morocco", "Turkey"],
        "country_name_nl": ["Marokko", "Turkije"],
        "mipa_start_month": pd.to_datetime(["2022-06-01", "2022-10-01"]),
    })


@pytest.fixture
def estimates() -> pd.DataFrame:
    return pd.DataFrame([
        _estimate("etwfe", "forced_departures", "overall", 3.04, -0.84, 6.71, 0.12, n_obs=10320),
        _estimate("etwfe", "forced_departures", "overall", 9.9, 9.0, 10.0, 0.01, aggregation="group"),
        _estimate("etwfe", "forced_departures", "MAR", 9.3, 8.8, 9.8, 0.001, aggregation="group"),
        _estimate("etwfe", "forced_departures", "TUR", 0.5, -0.04, 1.0, 0.07, aggregation="group"),
        _estimate("etwfe", "lead_time_days", "overall", -46.2, -192.4, 100.1, 0.5, n_obs=2000),
        _estimate("twfe", "forced_departures", "overall", 2.8, None, None, 0.1, se=1.7, inference="twoway_cluster",
                  control_group="all"),
        _estimate("twfe", "forced_departures", "overall", 2.8, None, None, 0.01, se=0.9, inference="driscoll_kraay",
                  control_group="all"),
        _estimate("csdid", "forced_departures", "overall", 2.1, -2.4, 6.6, 0.3, inference="analytic_influence_function",
                  control_group="nevertreated"),
        _estimate("csdid", "forced_departures", "overall", 2.1, -2.5, 6.7, 0.35, inference="multiplier_bootstrap",
                  control_group="nevertreated"),
    ])


def _cells(table, kind="estimate"):
    return [c for r in table.body for c in r.cells if c.attrs.get("data-kind") == kind]


def test_select_estimate_prefers_simple_overall_and_the_main_inference(estimates) -> None:
    row = select_estimate(estimates, estimator="etwfe", outcome="forced_departures", scope="overall")
    assert row["aggregation"] == "simple" and row["estimate"] == 3.04
    row = select_estimate(estimates, estimator="etwfe", outcome="forced_departures", scope="MAR")
    assert row["aggregation"] == "group" and row["estimate"] == 9.3
    row = select_estimate(estimates, estimator="csdid", outcome="forced_departures", scope="overall")
    assert row["inference"] == "multiplier_bootstrap"
    assert select_estimate(estimates, estimator="etwfe", outcome="requests", scope="overall") is None


def test_effect_table_layout_in_dutch(estimates, partners) -> None:
    table = effect_table(estimates, partners, lang="nl", estimator="etwfe",
                         outcomes=["forced_departures", "lead_time_days"], name="t2",
                         caption_key="table2_caption", note_keys=["note_etwfe"])
    header = [c.text for c in table.header[0].cells]
    assert header == ["", "(1) Gedwongen vertrek", "(2) Doorlooptijd"]
    row_labels = [r.cells[0].text for r in table.body]
    assert row_labels[:2] == ["Effect algemeen", "MIPA"]
    assert "Marokko (06-2022)" in row_labels and "Turkije (10-2022)" in row_labels
    assert row_labels[-1] == "N"
    cells = {(c.attrs["data-scope"], c.attrs["data-outcome"]): c for c in _cells(table)}
    assert cells[("overall", "forced_departures")].text == "3,04 [-0,84 6,71]"
    assert cells[("overall", "lead_time_days")].text == "-46 [-192 100]"
    assert cells[("MAR", "forced_departures")].text == "9,30* [8,80 9,80]"
    assert cells[("TUR", "lead_time_days")].text == "—"  # not estimated
    assert float(cells[("MAR", "forced_departures")].attrs["data-value"]) == 9.3
    assert cells[("MAR", "forced_departures")].attrs["data-aggregation"] == "group"
    n = {c.attrs["data-outcome"]: c.text for c in _cells(table, "n_obs")}
    assert n == {"forced_departures": "10.320", "lead_time_days": "2.000"}
    # the per-country rows carry the visible "illustrative, not causal" note
    assert any("note-row" in r.classes and "niet causaal" in r.cells[0].text for r in table.body)
    assert all("illustrative" in r.classes for r in table.body if r.cells[0].text.startswith(("Marokko", "Turkije")))
    assert set(table.data["scope"]) == {"overall", "MAR", "TUR"}


def test_twfe_table_has_one_row_per_inference_method(estimates) -> None:
    table = twfe_table(estimates, lang="en", outcomes=["forced_departures"])
    rows = [r for r in table.body if r.cells[0].attrs.get("data-inference")]
    assert [r.cells[0].attrs["data-inference"] for r in rows] == ["twoway_cluster", "driscoll_kraay"]
    assert [r.cells[1].text for r in rows] == ["2.80 (1.70)", "2.80* (0.90)"]


def test_yearly_table_coefficient_se_and_p_value() -> None:
    yearly = pd.DataFrame([
        {"outcome": "forced_departures", "treatment": "misa", "estimate": 8.57, "std_error": 8.71, "ci_low": -8.7,
         "ci_high": 25.8, "p_value": 0.327, "n_obs": 1170, "n_clusters": 130},
        {"outcome": "forced_departures", "treatment": "mipa", "estimate": 30.1, "std_error": 12.0, "ci_low": 6.5,
         "ci_high": 53.7, "p_value": 0.013, "n_obs": 1170, "n_clusters": 130},
    ])
    table = yearly_table(yearly, lang="nl", outcomes=["forced_departures"])
    row = table.body[0]
    assert row.cells[0].text == "Gedwongen terugkeer"
    assert [c.text for c in row.cells[1:]] == ["8,57 (8,71)", "0,327", "30,10* (12,00)", "0,013"]
    assert table.body[-1].cells[1].text == "1.170"


def test_descriptive_table_like_annex_table_1() -> None:
    stats = pd.DataFrame([{"outcome": "forced_departures", "display_order": 1, "n_obs": 10320, "mean_value": 0.6,
                           "sd_value": 3.0, "min_value": 0.0, "max_value": 93.0, "share_zero": 0.838,
                           "n_countries": 86},
                          {"outcome": "lead_time_days", "display_order": 4, "n_obs": 2000, "mean_value": 97.2,
                           "sd_value": 189.4, "min_value": 0.0, "max_value": 2620.0, "share_zero": 0.035,
                           "n_countries": 70}])
    table = descriptive_table(stats, lang="nl", outcomes=["forced_departures", "lead_time_days"], name="t1",
                              caption_key="table1_caption")
    assert table.caption == "Tabel 1. Beschrijvende statistieken"
    assert [c.text for c in table.body[0].cells] == ["Gedwongen vertrek", "10.320", "0,6", "3,0", "0", "93", "83,8", "86"]
    assert [c.text for c in table.body[1].cells] == ["Doorlooptijd", "2.000", "97", "189", "0", "2.620", "3,5", "70"]
    html = render_table(table)
    assert "<caption>Tabel 1. Beschrijvende statistieken</caption>" in html
    assert '<th scope="col">Observaties</th>' in html and 'scope="row"' in html


def test_inline_svg_gets_unique_ids_a_title_and_scales() -> None:
    svg = (b'<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg width="720pt" height="200pt" viewBox="0 0 720 200" '
           b'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><metadata>x</metadata>'
           b'<defs><clipPath id="p1"><rect/></clipPath><path id="m2"/></defs>'
           b'<g clip-path="url(#p1)"><use xlink:href="#m2"/></g></svg>')
    out = inline_svg(svg, prefix="fig1", title="A <b> title")
    assert out.startswith("<svg") and "<?xml" not in out and "<metadata>" not in out
    assert 'id="fig1-p1"' in out and "url(#fig1-p1)" in out and 'xlink:href="#fig1-m2"' in out
    assert 'width="720pt"' not in out and 'viewBox="0 0 720 200"' in out
    assert '<title id="fig1-title">A &lt;b&gt; title</title>' in out and 'role="img"' in out


# ---------------------------------------------------------------------------------------
# end to end: a synthetic warehouse, the report, a browser


@pytest.fixture(scope="session")
def report_db(synthetic_warehouse: tuple[Path, Path]) -> Path:
    """A synthetic warehouse with the estimation marts, built like a user would."""
    given = os.environ.get("MIPA_REPORT_TEST_DB")
    return Path(given) if given else synthetic_warehouse[1]


@pytest.fixture(scope="session")
def report(report_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report's index.html: one page in English and Dutch."""
    from mipa.report import build_report

    return build_report(report_db, tmp_path_factory.mktemp("reports"), run_name="test")


def _close(a: float | None, b: float | None) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if b is not None and math.isinf(float(a)):
        return float(a) == float(b)
    return b is not None and abs(float(a) - float(b)) <= TOL


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install the Debian package 'chromium' (the Makefile does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, index: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(index.as_uri(), wait_until="load")
    return page, errors, requests


def _screenshot(target, index: Path, name: str, *, full_page: bool = False) -> Path:
    """A PNG of the page (or of one element) in the report folder's ``screenshots/``."""
    folder = index.parent / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / name
    if full_page:
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    print(f"\nreport screenshot: {path}")
    return path


def _switch(page, lang: str) -> None:
    """Choose a language with the page's own switch (a click on its label)."""
    page.click(f'label[for="lang-{lang}"]')
    assert page.locator(f".lang-doc-{lang}").is_visible()
    assert page.locator(f".lang-doc:not(.lang-doc-{lang})").first.is_hidden()


@pytest.mark.slow
def test_report_folder_holds_page_tables_and_figures(report) -> None:
    folder = report.parent
    names = {p.name for p in folder.iterdir()}
    assert "index.html" in names and "run_facts.json" in names
    for stem in ("table_01_descriptive", "table_02_etwfe", "table_a1_csdid", "table_a2_twfe",
                 "table_a4_etwfe_verified", "table_11_2_yearly"):
        assert {f"{stem}.csv", f"{stem}.parquet"} <= names, stem
        assert pd.read_csv(folder / f"{stem}.csv").shape == pd.read_parquet(folder / f"{stem}.parquet").shape
    pngs = {n[:-4] for n in names if n.endswith(".png")}
    svgs = {n[:-4] for n in names if n.endswith(".svg")}
    assert pngs == svgs and {"figure_01_histograms", "figure_11_etwfe_overall"} <= pngs
    # the Dutch files beside the English ones, and a workbook per language
    for stem in ("table_02_etwfe", "figure_11_etwfe_overall"):
        ext = "csv" if stem.startswith("table") else "png"
        assert f"{stem}_nl.{ext}" in names, stem
    assert {"tables.xlsx", "tables_nl.xlsx"} <= names
    html = report.read_text(encoding="utf-8")
    # self-contained: no scripts, stylesheets or images from anywhere else
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'\bsrc="(?!data:)', html) and "url(http" not in html


@pytest.mark.slow
def test_report_is_byte_stable(report_db: Path, report, tmp_path: Path) -> None:
    from mipa.report import build_report

    again = build_report(report_db, tmp_path, lang="en", run_name="test").parent
    first = report.parent
    names = sorted(p.name for p in first.iterdir() if p.is_file())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.slow
def test_report_in_browser_shows_the_marts(browser, report, report_db: Path) -> None:
    page, errors, requests = _open(browser, report)
    try:
        assert errors == [], errors
        assert all(u.startswith("file://") or u.startswith("data:") for u in requests), requests
        # every image has loaded and every inline figure has a size
        assert page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).length") == 0
        sizes = page.eval_on_selector_all(
            ".lang-doc-en svg", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
        assert len(sizes) >= 10 and all(w > 0 and h > 0 for w, h in sizes), sizes
        # accessible structure: captions, scoped headers, alt text, figcaptions
        assert page.eval_on_selector_all("table", "els => els.filter(t => !t.querySelector('caption')).length") == 0
        assert page.eval_on_selector_all("th", "els => els.filter(t => !t.getAttribute('scope')).length") == 0
        assert page.eval_on_selector_all(
            "figure", "els => els.filter(f => !f.querySelector('figcaption') || "
                      "!f.querySelector('svg[role=img] > title, img[alt]')).length") == 0
        # the synthetic banner is shown, at the top and in every section
        banner = page.locator(".lang-doc-en .banner-top")
        assert banner.is_visible() and banner.inner_text() == "Synthetic data — not the real DTenV feeds"
        # data, trends, COVID-19, parallel trends, results, inference, sensitivity, robustness,
        # conclusions, run facts
        assert page.locator(".lang-doc-en section .section-banner").count() == \
            page.locator(".lang-doc-en section").count() == 10

        # result cells against fct_did_estimates, to 1e-9
        cells = page.eval_on_selector_all(".lang-doc-en [data-kind=estimate][data-estimator]", "els => els.map(e => ({...e.dataset, text: e.textContent}))")
        # Table 2P's cells come from Poisson ETWFE's own mart
        key = ["estimator", "outcome", "aggregation", "scope", "inference", "control_group"]
        marts = pd.concat([read_frame(report_db, "select * from marts.fct_did_estimates"),
                           read_frame(report_db, "select * from marts.fct_did_poisson_estimates")[
                               [*key, "estimate", "ci_low", "ci_high", "p_value", "std_error", "n_obs"]]])
        assert cells and any(c.get("estimator") == "poisson_etwfe" for c in cells)
        indexed = marts.set_index(key).sort_index()
        inference = read_frame(report_db, "select * from marts.fct_did_inference")
        checked = defaults = no_valid = 0
        for cell in cells:
            if "value" not in cell:
                assert cell["text"] == "—"
                continue
            row = indexed.loc[tuple(cell[k if k != "control_group" else "controlGroup"] for k in key)]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            assert _close(row["estimate"], float(cell["value"])), cell
            for col, attr in (("ci_low", "ciLow"), ("ci_high", "ciHigh"), ("p_value", "pValue"), ("std_error", "stdError")):
                if attr in cell:
                    assert _close(row[col], float(cell[attr])), (cell, col)
            if "defaultInference" in cell:
                # the cell shows the Monte Carlo-validated method's interval (fct_did_inference); its
                # star marks an interval that excludes zero
                lo, hi = float(cell["defaultCiLow"]), float(cell["defaultCiHigh"])
                assert ("*" in cell["text"].split("clustered")[0]) == (lo > 0 or hi < 0), cell
                match = inference[(inference["estimator"] == cell["estimator"]) & (inference["outcome"] == cell["outcome"])
                                  & (inference["scope"] == cell["scope"]) & inference["is_default_method"]]
                assert len(match) == 1 and match["inference"].iloc[0] == cell["defaultInference"], cell
                assert _close(match["estimate"].iloc[0], float(cell["defaultValue"])), cell
                assert _close(match["ci_low"].iloc[0], lo) and _close(match["ci_high"].iloc[0], hi), cell
                defaults += 1
            elif cell.get("validInterval") == "false":
                # no method is valid at this design: the estimate alone, never a star, and the words
                assert "*" not in cell["text"] and "no valid interval at this design" in cell["text"], cell
                no_valid += 1
            else:
                assert ("*" in cell["text"]) == (row["p_value"] < 0.05), cell
            checked += 1
        # every overall effect of the three estimators is on the page, and Poisson ETWFE's on
        # every count of Table 2P (Table S3 has verified departures)
        simple = marts[(marts["scope"] == "overall") & (marts["aggregation"] == "simple")
                       & ((marts["estimator"] != "poisson_etwfe") | (marts["outcome"] != "verified_departures"))]
        shown = {(c["estimator"], c["outcome"]) for c in cells if c.get("scope") == "overall" and "value" in c}
        assert set(zip(simple["estimator"], simple["outcome"], strict=True)) <= shown
        # and every partner country's ETWFE effect
        partners = read_frame(report_db, "select iso3 from marts.dim_country where mipa_start_month is not null "
                                         "and is_panel_country")["iso3"]
        per_country = {(c["scope"], c["outcome"]) for c in cells if c["estimator"] == "etwfe" and "value" in c}
        etwfe_rows = marts[(marts["estimator"] == "etwfe") & marts["scope"].isin(partners)]
        assert set(zip(etwfe_rows["scope"], etwfe_rows["outcome"], strict=True)) <= per_country
        assert checked >= 2 * len(simple)
        # every overall ETWFE cell shows the validated default's interval or says that none is valid
        assert defaults + no_valid >= len(set(simple["outcome"]))

        # N rows and the yearly table
        n_cells = page.eval_on_selector_all(".lang-doc-en [data-kind=n_obs][data-estimator]", "els => els.map(e => ({...e.dataset}))")
        for cell in n_cells:
            if "value" in cell:
                n = marts[(marts["estimator"] == cell["estimator"]) & (marts["outcome"] == cell["outcome"])
                          & (marts["scope"] == "overall")]["n_obs"]
                assert int(cell["value"]) in set(n.astype(int)), cell
        yearly = read_frame(report_db, "select * from marts.fct_did_yearly").set_index(["outcome", "treatment"])
        ycells = page.eval_on_selector_all(".lang-doc-en [data-kind=yearly]", "els => els.map(e => ({...e.dataset}))")
        assert len(ycells) == len(yearly)
        for cell in ycells:
            row = yearly.loc[(cell["outcome"], cell["treatment"])]
            assert _close(row["estimate"], float(cell["value"])) and _close(row["std_error"], float(cell["stdError"]))
        # Table 1 against the descriptive mart
        stats = read_frame(report_db, "select * from marts.fct_panel_descriptive_statistics").set_index("outcome")
        dcells = page.eval_on_selector_all("#table_01_descriptive td[data-column]", "els => els.map(e => ({...e.dataset}))")
        assert dcells
        for cell in dcells:
            assert _close(float(stats.loc[cell["outcome"], cell["column"]]), float(cell["value"])), cell
        # per-country rows say they are illustrative
        assert "Illustrative, not causal" in page.locator("#table_02_etwfe").inner_text()
    finally:
        page.close()


@pytest.mark.slow
def test_report_in_dutch(browser, report) -> None:
    page, errors, _ = _open(browser, report)
    try:
        assert errors == [], errors
        _switch(page, "nl")
        assert page.get_attribute(".lang-doc-nl", "lang") == "nl"
        assert page.locator(".lang-doc-nl .banner-top").inner_text() == \
            "Synthetische gegevens — niet de echte DTenV-bestanden"
        text = page.locator(".lang-doc-nl main").inner_text()
        for term in ("Gedwongen vertrek", "Laissez-passers", "Nationaliteitsbevestigingen", "Doorlooptijd",
                     "Aanvragen", "Aantoonbaar vertrek", "Tabel 1. Beschrijvende statistieken", "Effect per land",
                     "Marokko (06-2022)", "Turkije (10-2022)", "Ter illustratie, niet causaal"):
            assert term in text, term
        etwfe = page.eval_on_selector_all("#nl-table_02_etwfe_nl td[data-kind=estimate][data-value]",
                                          "els => els.map(e => e.textContent)")
        # an interval in brackets, or (no valid interval at this design) the estimate and the words
        assert etwfe and all(re.match(r"^-?\d[\d.]*(,\d+)?(\*? \[|geen geldig interval bij dit ontwerp)", t)
                             for t in etwfe), etwfe
        assert any("," in t for t in etwfe)  # decimal comma
        assert not any(re.search(r"\d\.\d+ \[", t) for t in etwfe)  # no decimal point
    finally:
        page.close()


FIRST_SCREEN = {"en": ("Report date", "Data window", "Code version"),
                "nl": ("Datum van het rapport", "Periode van de gegevens", "Versie van de code")}
CAPTION = {"en": (r"^Table (\d+P?|[A-Z]\d*|11\.2)\. ", r"^Figure [A-Z]?\d+\. "),
           "nl": (r"^Tabel (\d+P?|[A-Z]\d*|11\.2)\. ", r"^Figuur [A-Z]?\d+\. ")}


def _check_language(page, folder: Path, lang: str) -> None:
    """One language's document: first-screen facts, contents, numbering, captions, downloads."""
    doc = f".lang-doc-{lang}"
    # the first screen: report date, data window, code version, each with a value
    facts = page.eval_on_selector_all(f"{doc} dl.first-screen dt", "els => els.map(e => [e.innerText, "
                                      "e.nextElementSibling.innerText])")
    assert [k for k, _ in facts] == list(FIRST_SCREEN[lang]), facts
    assert all(v.strip() and v != "—" for _, v in facts), facts
    assert re.search(r"\d{4}", facts[0][1]) and re.search(r"mipa \d", facts[2][1]), facts
    header = page.locator(f"{doc} header.report-header").bounding_box()
    assert header["y"] < 900, header  # on the first screen
    # every contents link leads to an element of the same language's document
    links = page.eval_on_selector_all(f"{doc} nav.toc a", "els => els.map(a => a.getAttribute('href'))")
    assert len(links) >= 15
    broken = page.evaluate("""([doc, links]) => links.filter(h => {
        const el = document.getElementById(h.slice(1));
        return !el || !el.closest(doc); })""", [doc, links])
    assert broken == [], broken
    # sections numbered 1..n in page order, subsections n.1, n.2, ...
    h2 = page.eval_on_selector_all(f"{doc} main h2", "els => els.map(e => e.innerText)")
    assert [int(t.split(".")[0]) for t in h2] == list(range(1, len(h2) + 1)), h2
    for t in page.eval_on_selector_all(f"{doc} main h3", "els => els.map(e => e.innerText)"):
        assert re.match(r"^\d+\.\d+ ", t), t
    # captions: every table and figure numbered, numbers unique (the run facts' reference
    # lists at the end are not numbered)
    table_re, figure_re = (re.compile(c) for c in CAPTION[lang])
    facts_id = "facts" if lang == "en" else f"{lang}-facts"
    captions = page.eval_on_selector_all(f"{doc} section:not(#{facts_id}) table > caption",
                                         "els => els.map(e => e.innerText)")
    assert len(captions) >= 15 and all(table_re.match(c) for c in captions), captions
    numbered = [table_re.match(c).group(0) for c in captions if table_re.match(c)]
    assert len(numbered) == len(set(numbered)), numbered
    figures = page.eval_on_selector_all(f"{doc} figure figcaption .figure-caption", "els => els.map(e => e.innerText)")
    assert len(figures) >= 20 and all(figure_re.match(c) for c in figures), figures
    numbers = [figure_re.match(c).group(0) for c in figures]
    assert len(numbers) == len(set(numbers)), numbers
    # every table: CSV, Parquet and the language's workbook, each a file of the folder
    workbook = "tables.xlsx" if lang == "en" else f"tables_{lang}.xlsx"
    blocks = page.eval_on_selector_all(
        f"{doc} .table-block", "els => els.map(b => [b.id, [...b.querySelectorAll('.downloads a')]"
                               ".map(a => a.getAttribute('href'))])")
    assert len(blocks) == page.locator(f"{doc} table").count() > len(captions)
    for block_id, hrefs in blocks:
        assert [h.rsplit(".", 1)[-1] for h in hrefs] == ["csv", "parquet", "xlsx"], (block_id, hrefs)
        assert hrefs[2] == workbook, hrefs
        for h in hrefs:
            assert (folder / h).is_file(), h
    # figures: PNG and SVG
    for hrefs in page.eval_on_selector_all(f"{doc} figure", "els => els.map(f => [...f.querySelectorAll("
                                                            "'.downloads a')].map(a => a.getAttribute('href')))"):
        assert len(hrefs) == 2 and all((folder / h).is_file() for h in hrefs), hrefs


@pytest.mark.slow
def test_report_in_browser_switches_language_and_prints(browser, report) -> None:
    """The page a reader gets: English first, the switch to Dutch and back, the contents,
    captions and downloads of both, and the print view; screenshots in screenshots/."""
    folder = report.parent
    page, errors, requests = _open(browser, report)
    try:
        assert errors == [], errors
        assert all(u.startswith(("file://", "data:")) for u in requests), requests
        # English first, the Dutch document hidden; the switch is on screen
        assert page.locator(".lang-doc-en").is_visible() and page.locator(".lang-doc-nl").is_hidden()
        assert page.locator(".lang-switch").is_visible()
        _check_language(page, folder, "en")
        _screenshot(page, report, "en-top.png")
        _screenshot(page.locator("#table_02_etwfe"), report, "table-2-en.png")
        _screenshot(page.locator("#figure_11_etwfe_overall"), report, "figure-11-en.png")
        # Dutch: the same page, another document
        _switch(page, "nl")
        page.evaluate("window.scrollTo(0, 0)")
        assert page.locator(".lang-doc-nl h1").inner_text().startswith("Evaluatie")
        _check_language(page, folder, "nl")
        _screenshot(page, report, "nl-top.png")
        # a contents link moves within the Dutch document
        page.click(".lang-doc-nl nav.toc a[href='#nl-results']")
        assert page.evaluate("location.hash") == "#nl-results"
        assert page.locator("#nl-results").is_visible()
        # print: the language shown, without the switch and the download links
        page.emulate_media(media="print")
        assert page.locator(".lang-switch").is_hidden()
        assert page.locator(".lang-doc-nl").is_visible() and page.locator(".lang-doc-en").is_hidden()
        assert page.locator(".lang-doc-nl .downloads").first.is_hidden()
        assert page.locator(".lang-doc-nl table.data-table thead").first.evaluate(
            "e => getComputedStyle(e).display") == "table-header-group"
        assert page.locator(".lang-doc-nl section.report-section").nth(1).evaluate(
            "e => getComputedStyle(e).breakBefore") == "page"
        page.evaluate("window.scrollTo(0, 0)")
        _screenshot(page, report, "print-nl.png")
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") > 20
        page.emulate_media(media="screen")
        # and back to English
        _switch(page, "en")
        assert errors == [], errors
    finally:
        page.close()


def test_report_of_a_warehouse_built_without_estimation(minimal_feeds, tmp_path, pseudonym_key) -> None:
    """Two countries, no estimation marts: the page still builds and says what is missing."""
    from mipa.build import build
    from mipa.report import build_report

    # with the optional air-passenger series: load, staging, mart, Figure A1
    months = pd.date_range("2019-01-01", "2023-12-01", freq="MS")
    (minimal_feeds / "reference").mkdir()
    pd.DataFrame({"month": months.strftime("%Y-%m"), "passengers": range(1000, 1000 + len(months))}).to_csv(
        minimal_feeds / "reference" / "air_passengers.csv", index=False)
    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, ["--exclude", "tag:estimation"])
    assert read_frame(db, "select count(*) as n, sum(passengers) as s from marts.fct_air_passengers").iloc[0].tolist() \
        == [60, sum(range(1000, 1060))]
    index = build_report(db, tmp_path / "reports", lang="nl")
    html = index.read_text(encoding="utf-8")
    assert '<figure class="figure" id="figure_A1_air_passengers">' in html
    assert '<figure class="figure" id="nl-figure_A1_air_passengers_nl">' in html and 'class="figure-missing"' not in html
    assert (index.parent / "figure_A1_air_passengers_nl.svg").is_file()
    assert index.parent.name.startswith("real-") and index.parent.name.count("-") == 1
    assert '<html lang="nl">' in html and 'id="lang-nl" aria-label="Nederlands" checked' in html
    assert "marts.fct_did_estimates is missing" in html
    assert "Synthetische gegevens" not in html  # the minimal feeds carry no synthetic marker
    assert "Marokko (06-2022)" in html
