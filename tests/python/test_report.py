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

from mipa import settings
from mipa.report import labels
from mipa.report.figures import inline_svg
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
    descriptive_table,
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
    # Table 2 of the annex: "3,0 [-0,8 6,7]", "9,3* [8,8 9,8]", "-46 [-192 100]"
    assert fmt_estimate_ci(3.04, -0.84, 6.71, 0.12, lang="nl") == "3,0 [-0,8 6,7]"
    assert fmt_estimate_ci(9.3, 8.8, 9.8, 0.001, lang="nl") == "9,3* [8,8 9,8]"
    assert fmt_estimate_ci(9.3, 8.8, 9.8, 0.001, lang="en") == "9.3* [8.8 9.8]"
    assert fmt_estimate_ci(-46.2, -192.4, 100.1, 0.5, lang="nl", outcome="lead_time_days") == "-46 [-192 100]"
    # small synthetic effects keep two decimals instead of printing 0.0
    assert fmt_estimate_ci(0.106, 0.033, 0.177, 0.004, lang="en") == "0.11* [0.03 0.18]"
    assert fmt_estimate_ci(float("nan"), 1, 2, 0.1) == "—"


def test_estimate_with_standard_error() -> None:
    # Table A2: "6,7* (3,2)", "-18,2 (59,7)"
    assert fmt_estimate_se(6.71, 3.2, 0.03, lang="nl") == "6,7* (3,2)"
    assert fmt_estimate_se(-18.2, 59.7, 0.76, lang="en") == "-18.2 (59.7)"


def test_decimals_by_outcome_and_magnitude() -> None:
    assert auto_decimals(97.3, outcome="lead_time_days") == 0
    assert auto_decimals(150.0) == 0
    assert auto_decimals(16.1, 15.5) == 1
    assert auto_decimals(0.4, -0.2) == 2


def test_country_row_label_and_value_attribute() -> None:
    assert country_row_label("Marokko", pd.Timestamp("2022-06-01")) == "Marokko (06-2022)"
    assert fmt_value_attr(0.1 + 0.2) == repr(0.1 + 0.2)  # unrounded, round-trips exactly
    assert float(fmt_value_attr(1 / 3)) == 1 / 3
    assert fmt_value_attr(None) == ""


def test_labels_have_the_same_keys_in_both_languages() -> None:
    for name, group in labels.GROUPS.items():
        assert set(group["en"]) == set(group["nl"]), name
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
    assert cells[("overall", "forced_departures")].text == "3,0 [-0,8 6,7]"
    assert cells[("overall", "lead_time_days")].text == "-46 [-192 100]"
    assert cells[("MAR", "forced_departures")].text == "9,3* [8,8 9,8]"
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
    assert [r.cells[1].text for r in rows] == ["2.8 (1.7)", "2.8* (0.9)"]


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
    assert [c.text for c in row.cells[1:]] == ["8,6 (8,7)", "0,327", "30,1* (12,0)", "0,013"]
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
def reports(report_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mipa.report import build_report

    out = tmp_path_factory.mktemp("reports")
    return {lang: build_report(report_db, out, lang=lang, run_name=f"test-{lang}") for lang in ("en", "nl")}


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


def _screenshot(page, name: str) -> Path:
    folder = settings.project_dir() / "reports" / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    print(f"\nreport screenshot: {path}")
    return path


@pytest.mark.slow
def test_report_folder_holds_page_tables_and_figures(reports) -> None:
    folder = reports["en"].parent
    names = {p.name for p in folder.iterdir()}
    assert "index.html" in names and "run_facts.json" in names
    for stem in ("table_01_descriptive", "table_02_etwfe", "table_a1_csdid", "table_a2_twfe",
                 "table_a4_etwfe_verified", "table_11_2_yearly"):
        assert {f"{stem}.csv", f"{stem}.parquet"} <= names, stem
        assert pd.read_csv(folder / f"{stem}.csv").shape == pd.read_parquet(folder / f"{stem}.parquet").shape
    pngs = {n[:-4] for n in names if n.endswith(".png")}
    svgs = {n[:-4] for n in names if n.endswith(".svg")}
    assert pngs == svgs and {"figure_01_histograms", "figure_11_etwfe_overall"} <= pngs
    html = reports["en"].read_text(encoding="utf-8")
    # self-contained: no scripts, stylesheets or images from anywhere else
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'\bsrc="(?!data:)', html) and "url(http" not in html


@pytest.mark.slow
def test_report_is_byte_stable(report_db: Path, reports, tmp_path: Path) -> None:
    from mipa.report import build_report

    again = build_report(report_db, tmp_path, lang="en", run_name="test-en").parent
    first = reports["en"].parent
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.slow
def test_report_in_browser_shows_the_marts(browser, reports, report_db: Path) -> None:
    page, errors, requests = _open(browser, reports["en"])
    try:
        assert errors == [], errors
        assert all(u.startswith("file://") or u.startswith("data:") for u in requests), requests
        # every image has loaded and every inline figure has a size
        assert page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).length") == 0
        sizes = page.eval_on_selector_all(
            "svg", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
        assert len(sizes) >= 10 and all(w > 0 and h > 0 for w, h in sizes), sizes
        # accessible structure: captions, scoped headers, alt text, figcaptions
        assert page.eval_on_selector_all("table", "els => els.filter(t => !t.querySelector('caption')).length") == 0
        assert page.eval_on_selector_all("th", "els => els.filter(t => !t.getAttribute('scope')).length") == 0
        assert page.eval_on_selector_all(
            "figure", "els => els.filter(f => !f.querySelector('figcaption') || "
                      "!f.querySelector('svg[role=img] > title, img[alt]')).length") == 0
        # the synthetic banner is shown, at the top and in every section
        assert page.locator(".banner-top").is_visible()
        assert page.locator(".banner-top").inner_text() == "Synthetic data — not the real DTenV feeds"
        # data, trends, parallel trends, results, inference, sensitivity, robustness, conclusions, run facts
        assert page.locator("section .section-banner").count() == page.locator("section").count() == 9

        # result cells against did_estimates, to 1e-9
        cells = page.eval_on_selector_all("[data-kind=estimate][data-estimator]", "els => els.map(e => ({...e.dataset, text: e.textContent}))")
        marts = read_frame(report_db, "select * from marts.did_estimates")
        key = ["estimator", "outcome", "aggregation", "scope", "inference", "control_group"]
        indexed = marts.set_index(key).sort_index()
        inference = read_frame(report_db, "select * from marts.did_inference")
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
                # the cell shows the Monte Carlo-validated method's interval (did_inference); its
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
        # every overall effect of the three estimators is on the page
        simple = marts[(marts["scope"] == "overall") & (marts["aggregation"] == "simple")]
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
        n_cells = page.eval_on_selector_all("[data-kind=n_obs][data-estimator]", "els => els.map(e => ({...e.dataset}))")
        for cell in n_cells:
            if "value" in cell:
                n = marts[(marts["estimator"] == cell["estimator"]) & (marts["outcome"] == cell["outcome"])
                          & (marts["scope"] == "overall")]["n_obs"]
                assert int(cell["value"]) in set(n.astype(int)), cell
        yearly = read_frame(report_db, "select * from marts.did_yearly").set_index(["outcome", "treatment"])
        ycells = page.eval_on_selector_all("[data-kind=yearly]", "els => els.map(e => ({...e.dataset}))")
        assert len(ycells) == len(yearly)
        for cell in ycells:
            row = yearly.loc[(cell["outcome"], cell["treatment"])]
            assert _close(row["estimate"], float(cell["value"])) and _close(row["std_error"], float(cell["stdError"]))
        # Table 1 against the descriptive mart
        stats = read_frame(report_db, "select * from marts.mart_panel__descriptive_statistics").set_index("outcome")
        dcells = page.eval_on_selector_all("#table_01_descriptive td[data-column]", "els => els.map(e => ({...e.dataset}))")
        assert dcells
        for cell in dcells:
            assert _close(float(stats.loc[cell["outcome"], cell["column"]]), float(cell["value"])), cell
        # per-country rows say they are illustrative
        assert "Illustrative, not causal" in page.locator("#table_02_etwfe").inner_text()
        _screenshot(page, "report-en.png")
    finally:
        page.close()


@pytest.mark.slow
def test_report_in_dutch(browser, reports) -> None:
    page, errors, _ = _open(browser, reports["nl"])
    try:
        assert errors == [], errors
        assert page.get_attribute("html", "lang") == "nl"
        assert page.locator(".banner-top").inner_text() == "Synthetische gegevens — niet de echte DTenV-bestanden"
        text = page.locator("main").inner_text()
        for term in ("Gedwongen vertrek", "Laissez-passers", "Nationaliteitsbevestigingen", "Doorlooptijd",
                     "Aanvragen", "Aantoonbaar vertrek", "Tabel 1. Beschrijvende statistieken", "Effect per land",
                     "Marokko (06-2022)", "Turkije (10-2022)", "Ter illustratie, niet causaal"):
            assert term in text, term
        etwfe = page.eval_on_selector_all("#table_02_etwfe td[data-kind=estimate][data-value]",
                                          "els => els.map(e => e.textContent)")
        # an interval in brackets, or (no valid interval at this design) the estimate and the words
        assert etwfe and all(re.match(r"^-?\d[\d.]*(,\d+)?(\*? \[|geen geldig interval bij dit ontwerp)", t)
                             for t in etwfe), etwfe
        assert any("," in t for t in etwfe)  # decimal comma
        assert not any(re.search(r"\d\.\d+ \[", t) for t in etwfe)  # no decimal point
        _screenshot(page, "report-nl.png")
    finally:
        page.close()


def test_report_of_a_warehouse_built_without_estimation(minimal_feeds, tmp_path, pseudonym_key) -> None:
    """Two countries, no estimation marts: the page still builds and says what is missing."""
    from mipa.build import build
    from mipa.report import build_report

    db = tmp_path / "mipa.duckdb"
    build(minimal_feeds, db, ["--exclude", "tag:estimation"])
    index = build_report(db, tmp_path / "reports", lang="nl")
    html = index.read_text(encoding="utf-8")
    assert index.parent.name.startswith("real-") and index.parent.name.endswith("-nl")
    assert "marts.did_estimates is missing" in html
    assert "Synthetische gegevens" not in html  # the minimal feeds carry no synthetic marker
    assert "Marokko (06-2022)" in html
