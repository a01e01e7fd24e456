"""The report's content (issue 18, "The report"), fast: a hand-made ReportData laid out
with the real builder functions, no warehouse, no figures drawn.

* first screen: report date, data window, code version (git commit when there is one);
* synthetic runs: the planted effect beside every estimate (and the dbt model that reads
  it from the load log, run on DuckDB in memory);
* the conclusions, written from the numbers, with the annex's caveats, in both languages;
* section numbering and the full table of contents; the event-study caption says the
  window the axes show;
* Table A1's note on what its N counts;
* the print stylesheet.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mipa import settings
from mipa.report import builder, formatting, labels
from mipa.report.conclusions import conclusions, headline
from mipa.report.data import ReportData
from mipa.report.figures import event_study_figure
from mipa.report.html import Section, heading, page, render_table
from mipa.report.tables import csdid_n_note, effect_table, twfe_table

OUTCOMES = ("forced_departures", "laissez_passers", "confirmations", "lead_time_days", "requests",
            "verified_departures")


def _estimate(estimator, outcome, scope, estimate, lo, hi, p, *, aggregation="simple", inference="cluster_unit",
              n_obs=10320, control_group="notyettreated"):
    return {"estimator": estimator, "outcome": outcome, "aggregation": aggregation, "scope": scope,
            "estimate": estimate, "std_error": 1.0, "ci_low": lo, "ci_high": hi, "p_value": p, "n_obs": n_obs,
            "n_clusters": 86, "n_treated_clusters": 2, "inference": inference, "control_group": control_group,
            "run_settings": "{}"}


def _estimates() -> pd.DataFrame:
    rows = []
    for o in OUTCOMES:
        lead = o == "lead_time_days"
        n = 2000 if lead else 10320
        # forced departures: the interval excludes zero; the others include it
        lo, hi, p = (1.1, 4.9, 0.003) if o == "forced_departures" else (-40.0, 30.0, 0.6) if lead else (-1.0, 6.0, 0.2)
        est = -5.0 if lead else 3.0
        rows.append(_estimate("etwfe", o, "overall", est, lo, hi, p, n_obs=n))
        rows.append(_estimate("etwfe", o, "MAR", 9.3 if not lead else -197.0, 8.8, 9.8, 0.001, aggregation="group",
                              n_obs=n))
        rows.append(_estimate("etwfe", o, "TUR", 0.5 if not lead else 59.0, -0.04, 1.0, 0.07, aggregation="group",
                              n_obs=n))
        rows.append(_estimate("csdid", o, "overall", 2.1 if not lead else -140.0, -2.4, 6.6, 0.3,
                              inference="multiplier_bootstrap", control_group="nevertreated",
                              n_obs=634 if lead else 3693))
        rows.append(_estimate("csdid", o, "MAR", 8.2, 7.9, 8.5, 0.01, aggregation="group",
                              inference="multiplier_bootstrap", control_group="nevertreated", n_obs=3564))
        rows.append(_estimate("csdid", o, "TUR", 0.48, 0.3, 0.7, 0.01, aggregation="group",
                              inference="multiplier_bootstrap", control_group="nevertreated", n_obs=3240))
        rows.append(_estimate("twfe", o, "overall", 2.6, None, None, 0.1, inference="twoway_cluster",
                              control_group="all", n_obs=n))
    return pd.DataFrame(rows)


def _planted() -> pd.DataFrame:
    return pd.DataFrame(
        [(scope, o, value) for o in OUTCOMES for scope, value in (("overall", 2.75), ("MAR", 9.3), ("TUR", 0.5))],
        columns=["scope", "outcome", "planted_effect"],
    )


def _data(*, synthetic: bool = True, estimates: pd.DataFrame | None = None) -> ReportData:
    partners = pd.DataFrame({
        "iso3": ["MAR", "TUR"],
        "country_name_en": ["Morocco", "Turkey"],
        "country_name_nl": ["Marokko", "Turkije"],
        "region": ["Africa", "Asia"],
        "subregion": ["Northern Africa", "Western Asia"],
        "mipa_start_month": pd.to_datetime(["2022-06-01", "2022-10-01"]),
        "misa_start_month": pd.to_datetime(["2019-01-01", "2019-01-01"]),
        "partnership_start_month": pd.to_datetime(["2022-06-01", "2022-10-01"]),
    })
    months = pd.date_range("2016-01-01", "2025-12-01", freq="MS")
    covid = [m for m in months if pd.Timestamp("2020-05-01") <= m <= pd.Timestamp("2022-08-01")]
    empty = pd.DataFrame()
    return ReportData(
        db_name="test.duckdb",
        metadata={"synthetic": synthetic, **({"generator": {"seed": 7}} if synthetic else {})},
        countries=partners,
        partners=partners,
        descriptive=pd.DataFrame({
            "outcome": list(OUTCOMES), "display_order": range(len(OUTCOMES)), "n_obs": [10320] * 6,
            "mean_value": [0.6] * 6, "sd_value": [3.0] * 6, "min_value": [0.0] * 6, "max_value": [93.0] * 6,
            "share_zero": [0.838] * 6, "n_countries": [86] * 6,
        }),
        outcome_values=empty,
        country_series=empty,
        control_means=empty,
        group_means=empty,
        covid_months=covid,
        panel_facts={"first_month": dt.date(2016, 1, 1), "last_month": dt.date(2025, 12, 1), "n_months": 120,
                     "n_rows": 10320, "n_countries": 86, "n_control": 80, "n_partner": 2,
                     "first_event_month": dt.date(2016, 3, 1), "last_event_month": dt.date(2025, 11, 1)},
        estimates=_estimates() if estimates is None else estimates,
        event_study=pd.DataFrame(),
        yearly=pd.DataFrame(columns=["outcome", "treatment", "estimate", "std_error", "ci_low", "ci_high",
                                     "p_value", "n_obs", "n_clusters"]),
        reconciliation=pd.DataFrame(columns=["feed", "rows_landed", "rows_staged", "rows_quarantined",
                                             "quarantined_share", "is_reconciled"]),
        quarantine=pd.DataFrame(columns=["feed", "quarantine_rule", "n_rows", "example"]),
        delivery_files=pd.DataFrame(columns=["feed", "source_file", "file_sha256", "rows_loaded", "load_status",
                                             "identical_to_file", "not_loaded_reason"]),
        planted=_planted() if synthetic else pd.DataFrame(),
    )


def _html(data: ReportData, lang: str, day: dt.date = dt.date(2026, 3, 9),
          version: dict | None = None) -> str:
    """The page as build_report lays it out, without figures and parts."""
    version = version or {"mipa": "0.1.0", "git_commit": "abc123def456", "git_modified": False}
    tables = builder.build_tables(data, lang)
    sections = builder.build_sections(data, lang, tables, {})
    first = builder.render_dl(builder.first_screen_facts(data, lang, day=day, version=version),
                              cls="facts first-screen")
    return page(lang=lang, title="T", subtitle="S", source_line=first, synthetic=data.synthetic,
                sections=sections, footer="F", version="0.1.0")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").replace("&amp;", "&")


# ---------------------------------------------------------------------------------------
# 1. first screen


def test_first_screen_shows_report_date_data_window_and_code_version() -> None:
    html = _html(_data(), "en")
    header_end = html.index("</header>")
    first = _text(html[:header_end])
    assert "Report date 9 March 2026" in first
    assert "Data window March 2016 to November 2025" in first
    assert "panel January 2016 to December 2025" in first
    assert "Code version mipa 0.1.0, git commit abc123def456" in first
    nl_html = _html(_data(), "nl")
    nl = _text(nl_html[:nl_html.index("</header>")])
    assert "Datum van het rapport 9 maart 2026" in nl and "maart 2016 tot en met november 2025" in nl


def test_code_version_without_git_does_not_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert builder.git_commit(tmp_path) == (None, False)  # not a checkout
    monkeypatch.setattr(builder.shutil, "which", lambda name: None)  # git not installed
    assert builder.git_commit(settings.project_dir()) == (None, False)
    version = builder.code_version()
    assert version["git_commit"] is None and version["mipa"]
    assert formatting.code_version_text(version, "en") == f"mipa {version['mipa']} (no git commit available)"
    modified = {"mipa": "0.1.0", "git_commit": "abc", "git_modified": True}
    assert formatting.code_version_text(modified, "nl") == "mipa 0.1.0, git-commit abc, met niet-vastgelegde wijzigingen"


def test_code_version_reads_the_commit_of_the_checkout() -> None:
    root = settings.project_dir()
    if not (root / ".git").exists() or builder.shutil.which("git") is None:
        pytest.skip("not run from a git checkout")
    commit, _ = builder.git_commit(root)
    assert commit and re.fullmatch(r"[0-9a-f]{7,40}", commit)


def test_report_date_follows_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
    assert builder.report_date() == dt.date(2026, 1, 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "not a number")
    assert builder.report_date() == dt.date.today()


# ---------------------------------------------------------------------------------------
# 2. planted effects


def test_planted_effect_beside_every_estimate_of_the_result_tables() -> None:
    data = _data()
    tables = builder.build_tables(data, "en")
    for key in ("table2", "tableA1", "tableA2", "tableA4"):
        table = tables[key]
        cells = [c for r in table.body for c in r.cells if c.attrs.get("data-kind") == "estimate"]
        assert cells, key
        for cell in cells:
            scope = cell.attrs["data-scope"]
            expected = {"overall": 2.75, "MAR": 9.3, "TUR": 0.5}[scope]
            assert float(cell.attrs["data-planted"]) == expected, (key, cell.attrs)
            assert cell.planted.startswith("planted "), cell
        assert any("effect the generator planted" in n for n in table.notes), key
        assert "planted_effect" in table.data.columns and table.data["planted_effect"].notna().all(), key
    html = render_table(tables["table2"])
    assert '<span class="planted">planted 2.75</span>' in html  # the effect rule's decimals, as the estimate
    assert '<span class="planted">planted 9.30</span>' in html
    nl = render_table(builder.build_tables(data, "nl")["table2"])
    assert '<span class="planted">geplant 2,75</span>' in nl


def test_no_planted_effects_on_real_feeds() -> None:
    data = _data(synthetic=False)
    data.planted = _planted()  # even if a mart held some, real runs never show them
    for table in builder.build_tables(data, "en").values():
        assert "planted_effect" not in table.data.columns
        assert not any(c.planted for r in table.body for c in r.cells)
    assert not any("planted" in p for p in conclusions(data, "en"))


def test_planted_effects_model_reads_the_generator_marker() -> None:
    """models/marts/synthetic/fct_planted_effects.sql on DuckDB in memory, with the load log
    and the panel as plain tables: per-country effects and their post-month-weighted mean."""
    sql = (settings.project_dir() / "models/marts/synthetic/fct_planted_effects.sql").read_text(encoding="utf-8")
    sql = re.sub(r"\{#-?.*?-?#\}", "", sql, flags=re.S)
    sql = sql.replace("{{ ref('stg_load_log__load_metadata') }}", "stg_load_log__load_metadata")
    sql = sql.replace("{{ ref('fct_country_month') }}", "fct_country_month")
    staging = (settings.project_dir() / "models/staging/load_log/stg_load_log__load_metadata.sql").read_text(
        encoding="utf-8").replace("{{ source('load_log', 'load_metadata') }}", "load_metadata")
    assert "{{" not in sql and "{{" not in staging
    con = duckdb.connect()
    months = pd.date_range("2022-01-01", "2022-12-01", freq="MS")
    panel = pd.DataFrame([(iso, m.date()) for iso in ("MAR", "TUR", "ALB") for m in months],
                         columns=["iso3", "month_start"])
    con.register("panel_frame", panel)
    con.execute("create table fct_country_month as select iso3, cast(month_start as date) as month_start "
                "from panel_frame")
    marker = {"synthetic": True, "generator": {
        "treatment": {"MAR": "2022-06", "TUR": "2022-10"},
        "effects": {"MAR": {"forced_departures": {"planted": 9.0, "configured": 9.3}},
                    "TUR": {"forced_departures": {"planted": 1.0, "configured": 0.5}}}}}
    con.execute("create table load_metadata (metadata json)")
    con.execute("insert into load_metadata values (?)", [json.dumps(marker)])
    con.execute(f"create view stg_load_log__load_metadata as {staging}")
    rows = con.execute(f"select scope, outcome, planted_effect, n_post_months from ({sql}) order by scope").fetchall()
    # MAR: 7 post months (June-December), TUR: 3 (October-December)
    assert rows == [("MAR", "forced_departures", 9.0, 7), ("TUR", "forced_departures", 1.0, 3),
                    ("overall", "forced_departures", pytest.approx((9.0 * 7 + 1.0 * 3) / 10), 10)]
    # real feeds (no verified marker): nothing
    con.execute("delete from load_metadata")
    con.execute("insert into load_metadata values (?)", [json.dumps({"synthetic": False})])
    assert con.execute(f"select count(*) from ({sql})").fetchone() == (0,)


# ---------------------------------------------------------------------------------------
# 3. conclusions


def test_conclusions_are_written_from_the_numbers_with_the_annex_caveats() -> None:
    points = conclusions(_data(), "en")
    text = " ".join(points)
    # the overall effects with their intervals, as Table 2 shows them
    assert "forced departures 3.00* [1.10 4.90]" in text
    assert "Intervals that exclude zero: forced departures." in text
    assert "Intervals that include zero (no effect distinguishable from none): laissez-passers" in text
    # robustness: the other estimators' numbers
    assert "Callaway & Sant'Anna 2.10, classic TWFE 2.60; the same sign" in text
    # per-country: illustrative, with the spread from the run
    assert "from Turkey (0.50) to Morocco (9.30)" in text and "illustrative, not causal" in text
    # COVID overlap, from the run's COVID months and starts
    assert "COVID-19 (May 2020 to August 2022)" in text and "Morocco and Turkey" in text
    # Morocco's Western Sahara statement one month before its start
    assert "Western Sahara" in text and "May 2022, one month before the start" in text
    assert "Morocco's estimate on forced departures (9.30* [8.80 9.80])" in text
    # lead time's varying N
    assert "2,000 country-months for extended TWFE against 10,320 for the counts, 634 for Callaway" in text
    # synthetic: what the method recovered
    assert "planted average effect on forced departures is 2.75; the estimate is 3.00 and its interval contains it" in text


def test_conclusions_in_dutch_and_without_valid_intervals() -> None:
    data = _data()
    data.inference = pd.DataFrame({
        "estimator": ["etwfe", "etwfe"], "outcome": ["forced_departures"] * 2, "scope": ["overall", "MAR"],
        "inference": ["cluster_unit"] * 2, "is_default_method": [False, False],
        "valid_interval_at_design": [False, False], "mc_coverage": [0.68, 0.18],
        "estimate": [3.0, 9.3], "ci_low": [1.1, 8.8], "ci_high": [4.9, 9.8],
    })
    h = headline(data, "forced_departures")
    assert h is not None and not h.has_interval and h.estimate == 3.0
    text = " ".join(conclusions(data, "nl"))
    assert "gedwongen vertrek 3,00;" in text  # the point estimate only, Dutch decimal comma
    assert "Geen inferentiemethode geeft bij dit ontwerp een geldig 95%-interval" in text
    assert "Westelijke Sahara" in text and "mei 2022, een maand vóór de start" in text
    assert "2.000 land-maanden voor extended TWFE tegen 10.320" in text
    assert "(geen geldig interval om het aan te toetsen)" in text


def test_conclusions_name_the_valid_conformal_average_where_etwfe_has_none() -> None:
    """ETWFE without a valid interval, the conformal average with one: the conclusions give
    the conformal intervals with their measured coverage and size; without a qualifying
    conformal method the sentence is not there."""
    data = _data()
    conformal = "conformal_average_factor_refit_ma2"
    data.inference = pd.DataFrame({
        "estimator": ["etwfe", "conformal", "conformal"], "outcome": ["forced_departures"] * 2 + ["requests"],
        "scope": ["overall"] * 3, "inference": ["cluster_unit", conformal, conformal],
        "is_default_method": [False, True, True], "valid_interval_at_design": [False, True, True],
        "mc_coverage": [0.68, 0.954, 0.954], "mc_size": [0.5, 0.05, 0.05],
        "mc_outcome": ["forced_departures"] * 3,
        "estimate": [3.0, 2.7, 0.9], "ci_low": [1.1, 1.6, -2.1], "ci_high": [4.9, 3.1, 1.9],
    })
    text = " ".join(conclusions(data, "en"))
    assert "A valid 95% interval at this design does exist" in text
    assert "coverage 95.4%, rejects a true zero in 5.0%" in text
    assert "forced departures 2.70* [1.60 3.10]" in text and "requests 0.90 [-2.10 1.90]" in text
    assert "Intervals that exclude zero: forced departures." in text
    assert "Voor het gemiddelde van het eigen effect per partnerland" in " ".join(conclusions(data, "nl"))
    data.inference["valid_interval_at_design"] = [False, False, False]
    assert "A valid 95% interval" not in " ".join(conclusions(data, "en"))


def test_conclusions_prefer_poisson_etwfe_with_a_valid_interval_over_the_conformal_average() -> None:
    """Where Poisson ETWFE's default interval qualifies it is the one the conclusions give (with
    the outcome its coverage was measured on); the conformal average is named only for the
    outcomes where Poisson ETWFE has none."""
    data = _data()
    pois, conf = "conformal_average_poisson_refit", "conformal_average_factor_refit_ma2"
    data.inference = pd.DataFrame({
        "estimator": ["etwfe", "poisson_etwfe", "conformal", "poisson_etwfe", "conformal"],
        "outcome": ["forced_departures"] * 3 + ["confirmations"] * 2,
        "scope": ["overall"] * 5, "inference": ["cluster_unit", pois, conf, pois, conf],
        "is_default_method": [False, True, True, True, True],
        "valid_interval_at_design": [False, True, True, False, True],
        "mc_coverage": [0.68, 0.951, 0.954, 0.90, 0.949], "mc_size": [0.5, 0.048, 0.05, 0.09, 0.05],
        "mc_outcome": ["forced_departures"] * 3 + ["confirmations"] * 2,
        "estimate": [3.0, 2.8, 2.7, 1.0, 0.9], "ci_low": [1.1, 2.2, 1.6, 0.1, -2.1],
        "ci_high": [4.9, 3.5, 3.1, 1.9, 1.9],
    })
    text = " ".join(conclusions(data, "en"))
    assert "A valid 95% interval at this design does exist for Poisson ETWFE" in text
    assert "Monte Carlo on forced departures: coverage 95.1%, rejects a true zero in 4.8%" in text
    assert "forced departures 2.80* [2.20 3.50]" in text
    # confirmations: Poisson ETWFE does not qualify there, the conformal average does
    assert "Monte Carlo on nationality confirmations: coverage 94.9%" in text
    assert "nationality confirmations 0.90 [-2.10 1.90]" in text
    assert "Voor Poisson-ETWFE" in " ".join(conclusions(data, "nl"))


def _with_poisson(data: ReportData) -> ReportData:
    """``data`` plus Poisson ETWFE (the main estimator on the counts) and its validated
    conformal intervals overall and per country on forced departures."""
    rows = []
    for o in OUTCOMES:
        if o == "lead_time_days":
            continue
        rows.append(_estimate("poisson_etwfe", o, "overall", 2.4, 2.3, 2.5, 0.001,
                              inference="cluster_unit_separated"))
        for scope, est in (("MAR", 8.1), ("TUR", 0.2)):
            rows.append(_estimate("poisson_etwfe", o, scope, est, est - 0.1, est + 0.1, 0.001, aggregation="group",
                                  inference="cluster_unit_separated"))
    data.poisson = pd.DataFrame(rows)
    overall, country = "conformal_average_poisson_refit", "conformal_poisson_t"
    data.inference = pd.DataFrame({
        "estimator": ["etwfe", "poisson_etwfe", "poisson_etwfe", "poisson_etwfe"],
        "outcome": ["forced_departures"] * 4, "scope": ["overall", "overall", "MAR", "TUR"],
        "inference": ["cluster_unit", overall, country, country],
        "is_default_method": [False, True, True, True], "valid_interval_at_design": [False, True, True, True],
        "mc_coverage": [0.68, 0.934, 0.95, 0.95], "mc_size": [0.5, 0.06, 0.048, 0.048],
        "mc_outcome": ["forced_departures"] * 4,
        "estimate": [3.0, 2.4, 8.1, 0.2], "ci_low": [1.1, 1.5, 4.5, -1.3], "ci_high": [4.9, 3.1, 12.3, 0.6],
    })
    return data


def test_the_main_estimate_on_the_counts_is_poisson_etwfe_with_its_validated_interval() -> None:
    """With Poisson ETWFE in the warehouse the conclusions lead with it on the counts (Table 2P)
    and with the annex's ETWFE on lead time; the annex's estimates follow, marked as without a
    valid interval; the per-country spread carries the validated per-country intervals."""
    data = _with_poisson(_data())
    text = " ".join(conclusions(data, "en"))
    assert ("Poisson extended TWFE (Table 2P) on forced departures, laissez-passers, nationality confirmations "
            "and requests and extended TWFE in levels (Table 2) on lead time (days) estimate") in text
    assert "forced departures 2.40* [1.50 3.10]" in text
    assert "The annex's specification, extended TWFE in levels (Table 2), gives: forced departures 3.00;" in text
    assert "in the Monte Carlo it is biased when the month shocks are multiplicative" in text
    # the outcomes without a valid interval are named (here lead time: the annex's ETWFE, none valid)
    assert "For lead time (days) no inference method gives a valid 95% interval" in text
    assert "from Turkey (0.20 [-1.30 0.60]) to Morocco (8.10* [4.50 12.30])" in text
    assert "(Monte Carlo coverage 95.0%); intervals that exclude zero: Morocco." in text
    assert "Morocco's estimate on forced departures (8.10* [4.50 12.30])" in text
    assert "the estimate is 2.40 and its interval contains it" in text
    assert "Poisson-extended TWFE (tabel 2P) voor gedwongen vertrek" in " ".join(conclusions(data, "nl"))
    # Table 2P: the main estimator's table, on the counts only, before the annex's Table 2
    tables = builder.build_tables(data, "en")
    main = tables["table2p"]
    assert main.caption.startswith("Table 2P.") and set(main.data["outcome"]) == {
        o for o in OUTCOMES if o != "lead_time_days" and o != "verified_departures"}
    row = main.data[(main.data["outcome"] == "forced_departures") & (main.data["scope"] == "overall")].iloc[0]
    assert row["default_inference"] == "conformal_average_poisson_refit" and row["default_ci_low"] == 1.5
    page_text = _text(_html(data, "en"))
    assert page_text.index("Table 2P.") < page_text.index("Table 2. ")
    # without Poisson ETWFE in the warehouse: no Table 2P, and the annex's ETWFE leads
    assert "table2p" not in builder.build_tables(_data(), "en")


def test_conclusions_without_estimates_say_so() -> None:
    data = _data(estimates=pd.DataFrame(columns=list(_estimates().columns)))
    points = conclusions(data, "en")
    assert points[0].startswith("No extended TWFE estimates in this database")


# ---------------------------------------------------------------------------------------
# 4. numbering, table of contents, captions


def test_sections_and_subsections_are_numbered_with_a_full_table_of_contents() -> None:
    html = _html(_data(), "en")
    h2 = re.findall(r'<h2 id="h-[^"]+">(.*?)</h2>', html)
    assert h2 == ["1. Data", "2. Per-country trends", "3. Parallel trends", "4. Results", "5. Conclusions",
                  "6. Run facts"]
    h3 = re.findall(r'<h3 id="([^"]+)">(.*?)</h3>', html)
    assert [t.split(" ")[0] for _, t in h3] == ["4.1", "4.2", "4.3", "4.4"]
    assert not any("Robustness" in t for _, t in h3)  # one robustness section only (the part's)
    toc = html[html.index('<nav class="toc"'):html.index("</nav>")]
    for anchor, title in h3:
        assert f'href="#{anchor}"' in toc and title.split(" ", 1)[1] in toc
    for sid in ("data", "trends", "parallel", "results", "conclusions", "facts"):
        assert f'href="#{sid}"' in toc
    # no label carries a hand-written number any more
    for lang in labels.LANGUAGES:
        for key, value in labels.TEXT[lang].items():
            if key.startswith(("sec_", "sub_")):
                assert not re.match(r"^\d", value), (lang, key, value)


def test_parts_are_numbered_in_page_order() -> None:
    sections = [Section("a", "Alpha", blocks=[heading(3, "One"), "<p>x</p>", heading(3, "Two")]),
                Section("b", "Beta", blocks=["<h3>Three</h3>"])]
    html = page(lang="en", title="T", subtitle="S", source_line="", synthetic=False, sections=sections,
                footer="F", version="0")
    assert '<h2 id="h-a">1. Alpha</h2>' in html and '<h2 id="h-b">2. Beta</h2>' in html
    assert '<h3 id="a-1">1.1 One</h3>' in html and '<h3 id="a-2">1.2 Two</h3>' in html
    assert '<h3 id="b-1">2.1 Three</h3>' in html
    toc = html[html.index('<nav class="toc"'):html.index("</nav>")]
    assert toc.index('href="#a-2"') < toc.index('href="#b"') < toc.index('href="#b-1"')


def test_event_study_caption_says_the_plotted_window() -> None:
    data = _data()
    rows = [{"estimator": "etwfe", "outcome": "forced_departures", "scope": "overall", "event_time": e,
             "estimate": 0.1, "std_error": 0.1, "ci_low": -0.1, "ci_high": 0.3, "band_low": None, "band_high": None,
             "inference": "cluster_unit", "control_group": "notyettreated", "run_settings": "{}"}
            for e in range(0, 43)]
    rows += [{**rows[0], "estimator": "csdid", "event_time": e} for e in range(-116, 60)]
    data.event_study = pd.DataFrame(rows)
    etwfe = event_study_figure(data, "en", "etwfe", "12")
    assert etwfe.caption.endswith("(0 to 42)")
    assert any("Shown: months 0 to 42" in n for n in etwfe.notes)
    csdid = event_study_figure(data, "nl", "csdid", "13")
    assert csdid.caption.endswith("(-36 tot en met 48)")  # clipped to the window


# ---------------------------------------------------------------------------------------
# 5. Table A1's N


def test_table_a1_explains_what_its_n_counts() -> None:
    data = _data()
    note = csdid_n_note(data.estimates, data.partners, lang="en", n_rows=10320)
    assert note is not None
    assert "3,693 of the panel's 10,320 country-months" in note and "Morocco 3,564, Turkey 3,240" in note
    table = builder.build_tables(data, "en")["tableA1"]
    assert note in table.notes
    assert "Table 2's N" in _text(render_table(table))
    nl = csdid_n_note(data.estimates, data.partners, lang="nl", n_rows=10320)
    assert "3.693 van de 10.320 land-maanden" in nl and "Marokko 3.564" in nl
    assert csdid_n_note(data.estimates[data.estimates["estimator"] != "csdid"], data.partners, lang="en",
                        n_rows=10320) is None
    # the ETWFE table has no such note: its N is the panel
    table2 = effect_table(data.estimates, data.partners, lang="en", estimator="etwfe", outcomes=OUTCOMES[:5],
                          name="t2", caption_key="table2_caption", note_keys=["note_etwfe"])
    assert not any("post-start comparisons" in n for n in table2.notes)
    assert twfe_table(data.estimates, lang="en", outcomes=OUTCOMES[:5]).notes  # unchanged without planted


# ---------------------------------------------------------------------------------------
# 6. print


def test_print_stylesheet_makes_a_readable_pdf() -> None:
    html = _html(_data(), "en")
    css = html[html.index("<style>"):html.index("</style>")]
    media = css[css.index("@media print"):]
    for rule in ("@page { size: A4", "thead { display: table-header-group; }", "section.report-section { break-before: page; }",
                 "nav.toc { break-after: page; }", ".downloads { display: none; }", "white-space: normal !important",
                 "print-color-adjust: exact"):
        assert rule in (media if not rule.startswith("@page") else css), rule
