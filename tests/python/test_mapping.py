"""Mapping files: an export with its own column names, date format, codes and missing
values loads as the raw contract, without editing code or SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_frame, write_csv

from mipa.contract import FEEDS, MAPPING_FILE
from mipa.ingest import FeedError, ingest
from mipa.simulate import simulate
from mipa.simulate.config import load_config

SEED = load_config()["seed"]

DUTCH_RETURNS = """\
# returns/_mapping.yml: our export as the mipa contract
columns:
  record_id: Zaaknummer
  person_id: V-nummer
  nationality: Nationaliteit
  departure_date: Vertrekdatum
  departure_type: Soort vertrek
date_format: DD-MM-YYYY
codes:
  departure_type:
    gedwongen: forced
    zelfstandig aantoonbaar: independent
    zonder toezicht: unsupervised
missing_values: [onbekend]
delimiter: ";"
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _landing(db: Path, feed: str):
    return read_frame(db, f"select * exclude (_source_file) from landing.{feed} order by _file_order, _source_row")


def _dutch_returns(raw: Path, rows: list[str], mapping: str = DUTCH_RETURNS) -> None:
    folder = raw / "returns"
    for old in folder.glob("*.csv"):
        old.unlink()
    _write(folder / MAPPING_FILE, mapping)
    _write(folder / "vertrek_2022.csv", "Zaaknummer;V-nummer;Nationaliteit;Vertrekdatum;Soort vertrek;Opmerking\n"
           + "".join(r + "\n" for r in rows))


def test_dutch_export_loads_as_the_contract(minimal_feeds, tmp_path, pseudonym_key) -> None:
    ingest(minimal_feeds, tmp_path / "contract.duckdb")
    _dutch_returns(minimal_feeds, ["R1;P1;MAR;02-05-2022;Gedwongen;x", "R2;P3;TUN;03-05-2022; zonder  TOEZICHT ;"])
    summary = ingest(minimal_feeds, tmp_path / "dutch.duckdb")
    assert _landing(tmp_path / "dutch.duckdb", "returns").equals(_landing(tmp_path / "contract.duckdb", "returns"))
    assert summary.not_loaded == []  # the mapping file is no delivery and no warning


def test_codes_dates_and_missing_values_are_translated(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    _dutch_returns(
        minimal_feeds,
        [
            "R1;P1;MAR;2-5-2022 14:05;Zelfstandig aantoonbaar;",  # a time part, no zero padding
            "R2;onbekend;Onbekend;31-02-2022;vrijwillig;",  # no calendar date, an unlisted code
            "R3;P3;TUN;2022-05-04;forced;",  # ISO dates and contract codes pass as they are
            "R4;P4;MAR;ONBEKEND;onbekend;",
        ],
    )
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    rows = query(tmp_path / "w.duckdb",
                 "select record_id, person_pseudonym is null, nationality, departure_date, departure_type "
                 "from landing.returns order by record_id")
    assert rows == [
        ("R1", False, "MAR", "2022-05-02", "independent"),
        ("R2", True, None, "31-02-2022", "vrijwillig"),  # kept as delivered: dbt quarantines them
        ("R3", False, "TUN", "2022-05-04", "forced"),
        ("R4", False, "MAR", None, None),
    ]


def test_month_first_export_is_read_month_first(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    _write(minimal_feeds / "requests" / MAPPING_FILE, "date_format: MM/DD/YYYY\n")
    write_csv(minimal_feeds / "requests" / "requests_2022.csv", FEEDS["requests"].required_columns,
              [("Q1", "P1", "MAR", "01/10/2022"), ("Q2", "P2", "MAR", "03/01/2015"), ("Q3", "P2", "MAR", "12/25/2022")])
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert query(tmp_path / "w.duckdb", "select request_date from landing.requests order by record_id") == [
        ("2022-01-10",), ("2015-03-01",), ("2022-12-25",)
    ]


def test_a_date_against_the_declared_format_stops_the_load(minimal_feeds, tmp_path, pseudonym_key) -> None:
    _dutch_returns(minimal_feeds, ["R1;P1;MAR;05-02-2022;gedwongen;", "R2;P3;TUN;05-25-2022;gedwongen;"])
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("returns/vertrek_2022.csv: row 2 column Vertrekdatum '05-25-2022'")
    assert "returns/_mapping.yml" in message and "rule: date_order" in message


def test_an_ambiguous_date_in_a_year_first_export_stops_the_load(minimal_feeds, tmp_path, pseudonym_key) -> None:
    _write(minimal_feeds / "requests" / MAPPING_FILE, "date_format: YYYYMMDD\n")
    write_csv(minimal_feeds / "requests" / "requests_2022.csv", FEEDS["requests"].required_columns,
              [("Q1", "P1", "MAR", "20220110"), ("Q2", "P2", "MAR", "03-01-2015")])
    with pytest.raises(FeedError, match=r"requests/requests_2022.csv: row 2 column request_date .*rule: date_format"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


def test_a_mapped_column_missing_from_a_file_names_file_column_and_rule(minimal_feeds, tmp_path, pseudonym_key) -> None:
    _dutch_returns(minimal_feeds, ["R1;P1;MAR;02-05-2022;gedwongen;"],
                   DUTCH_RETURNS.replace("Soort vertrek", "Vertrekwijze"))
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("returns/vertrek_2022.csv: missing column(s) Vertrekwijze (for departure_type)")
    assert "returns/_mapping.yml" in message and "rule: mapping_columns" in message


def test_a_semicolon_export_without_mapping_says_to_set_the_delimiter(minimal_feeds, tmp_path, pseudonym_key) -> None:
    _write(minimal_feeds / "requests" / "requests_2023.csv", "record_id;person_id;nationality;request_date\nQ9;P9;MAR;2023-01-01\n")
    with pytest.raises(FeedError, match=r"requests/requests_2023.csv: .*rule: required_columns.*delimiter: ';'"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


@pytest.mark.parametrize(
    ("feed", "text", "rule", "words"),
    [
        ("returns", "columns: [a, b]\n", "mapping_columns", "must map contract columns"),
        ("returns", "columns:\n  departure: vertrek\n", "mapping_columns", "'departure' is not a column of feed 'returns'"),
        ("returns", "columns:\n  record_id: nr\n  person_id: NR\n", "mapping_columns", "both read column"),
        ("returns", "colums:\n  record_id: nr\n", "mapping_keys", "unknown key 'colums'"),
        ("returns", "date_format: DD-MM-YY\n", "mapping_date_format", "'DD-MM-YY' is not supported"),
        ("returns", "codes:\n  departure_type:\n    gedwongen: deported\n", "mapping_codes", "'deported', which is not one of"),
        ("returns", "codes:\n  departure_type:\n    yes: forced\n", "mapping_codes", "quote it"),
        ("requests", "codes:\n  outcome:\n    bevestigd: confirmed\n", "mapping_codes", "feed 'requests' has no column"),
        ("returns", "missing_values: {a: b}\n", "mapping_missing_values", "must be a list"),
        ("returns", "delimiter: ';;'\n", "mapping_delimiter", "one character"),
        ("returns", "columns:\n  record_id: [nr\n", "mapping_yaml", "is not valid YAML at line"),
        ("returns", "- record_id\n", "mapping_yaml", "must be a YAML mapping"),
    ],
)
def test_an_invalid_mapping_fails_with_one_line_naming_file_and_rule(
    minimal_feeds, tmp_path, pseudonym_key, feed, text, rule, words
) -> None:
    _write(minimal_feeds / feed / MAPPING_FILE, text)
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{feed}/{MAPPING_FILE}: ")
    assert f"(rule: {rule})" in message and words in message


def test_the_mapping_file_is_listed_never_loaded(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    _write(minimal_feeds / "returns" / MAPPING_FILE, "notes: the contract's own names\n")
    _write(minimal_feeds / "requests" / "_mapping.yaml", "columns: {}\n")
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert summary.rows("returns") == 2
    listed = dict(query(tmp_path / "w.duckdb",
                        "select source_file, load_status || ': ' || not_loaded_reason from landing.delivery_files "
                        "where load_status <> 'loaded'"))
    assert listed["returns/_mapping.yml"].startswith("mapping: the feed's mapping file, applied to its 1 delivery")
    # a misnamed mapping is not applied and says what the name must be
    assert listed["requests/_mapping.yaml"].startswith("not_loaded: unsupported file type .yaml")
    assert listed["requests/_mapping.yaml"].endswith(f"must be named {MAPPING_FILE}")
    assert [f.source_file for f in summary.not_loaded] == ["requests/_mapping.yaml"]


def test_dutch_layout_writes_mappings_that_the_marker_signs(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    simulate(tmp_path, seed=5, layout="dutch")
    marker = json.loads((tmp_path / "_synthetic.json").read_text())
    assert marker["settings"]["layout"] == "dutch"
    for feed in FEEDS:
        assert f"{feed}/{MAPPING_FILE}" in marker["file_sha256"]
    header = (tmp_path / "returns" / "returns_2022.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "") == "Zaaknummer;V-nummer;Nationaliteit;Vertrekdatum;Soort vertrek"
    summary = ingest(tmp_path, tmp_path / "w.duckdb")  # no key: proven synthetic, mappings included
    assert summary.synthetic and summary.marker_problem is None
    # a changed mapping is a changed delivery: the feeds are no longer proven synthetic
    mapping = tmp_path / "returns" / MAPPING_FILE
    mapping.write_text(mapping.read_text() + "notes: edited\n")
    with pytest.raises(FeedError, match="returns/_mapping.yml changed after it was generated"):
        ingest(tmp_path, tmp_path / "w2.duckdb")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_both_layouts_land_identical_tables(tmp_path, pseudonym_key, fmt) -> None:
    for layout in ("contract", "dutch"):
        simulate(tmp_path / layout, seed=SEED, dirty=True, layout=layout, fmt=fmt)
        ingest(tmp_path / layout, tmp_path / f"{layout}.duckdb")
    for feed in FEEDS:
        contract, dutch = (_landing(tmp_path / f"{layout}.duckdb", feed) for layout in ("contract", "dutch"))
        assert len(contract) > 1000
        assert dutch.equals(contract), feed


@pytest.mark.slow
def test_both_layouts_build_the_same_panel(tmp_path, pseudonym_key) -> None:
    from mipa.build import build

    panels = {}
    for layout in ("contract", "dutch"):
        raw, db = tmp_path / layout / "raw", tmp_path / layout / "mipa.duckdb"
        simulate(raw, seed=SEED, dirty=True, layout=layout)
        build(raw, db, ["--exclude", "tag:estimation"])
        panels[layout] = (
            read_frame(db, "select * from marts.fct_country_month order by iso3, month_start"),
            read_frame(db, "select feed, quarantine_rule, count(*) as n from marts.fct_quarantined_rows "
                           "group by all order by all"),
        )
    (contract, contract_quarantine), (dutch, dutch_quarantine) = panels["contract"], panels["dutch"]
    assert len(contract) > 10_000 and contract["forced_departures"].sum() > 0
    assert dutch.equals(contract)
    assert len(contract_quarantine) > 5 and dutch_quarantine.equals(contract_quarantine)


def test_the_readme_example_loads_as_documented(minimal_feeds, tmp_path, pseudonym_key, query) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Mapping files: your own export", 1)[1]
    export = section.split("```\n", 2)[1]
    mapping = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    for old in (minimal_feeds / "returns").glob("*.csv"):
        old.unlink()
    _write(minimal_feeds / "returns" / "vertrek_2024.csv", export)
    _write(minimal_feeds / "returns" / MAPPING_FILE, mapping)
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    rows = query(tmp_path / "w.duckdb", "select record_id, person_pseudonym is null, nationality, departure_date, "
                                        "departure_type from landing.returns order by record_id")
    assert rows == [
        ("Z-1001", False, "Marokkaanse", "2024-03-05", "forced"),
        ("Z-1002", False, "MAR", "2024-03-06", "independent"),
        ("Z-1003", True, "Turkije", "2024-03-07", "unsupervised"),
    ]
