"""File-level contract on load: clear errors that name the file and the rule."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import write_csv

from mipa.deliveries import pseudonym_sql
from mipa.ingest import FeedError, ingest


def test_rows_keep_file_and_row_number(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert summary.rows("requests") == 2
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    rows = con.execute(
        "select record_id, _source_file, _source_row from landing.requests order by _source_row"
    ).fetchall()
    assert rows == [("Q1", "requests/requests_2022.csv", 1), ("Q2", "requests/requests_2022.csv", 2)]


def test_person_ids_are_replaced_by_keyed_hash(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    (pseudonym,) = con.execute("select person_pseudonym from landing.returns where record_id = 'R1'").fetchone()
    expected = hmac.new(pseudonym_key.encode(), b"P1", hashlib.sha256).hexdigest()
    assert pseudonym == expected
    columns = {r[0] for r in con.execute("select column_name from information_schema.columns").fetchall()}
    assert "person_id" not in columns


@pytest.mark.parametrize("key", [b"k", b"a-key-of-exactly-sixty-four-bytes-for-the-sha256-block-size....", b"x" * 100])
def test_pseudonym_sql_is_hmac_sha256(key: bytes) -> None:
    """DuckDB's expression gives hmac.new's digests: ASCII, accents, CJK, spaces, empty,
    NULL kept NULL; keys shorter than, equal to and longer than the SHA-256 block."""
    values = ["P1", "p1", "é漢字 ", "", " ", "0" * 500, None]
    con = duckdb.connect()
    con.execute("create table t (i integer, person_id varchar)")
    con.executemany("insert into t values (?, ?)", list(enumerate(values)))
    got = [h for _, h in con.execute(f"select i, {pseudonym_sql('person_id', key)} from t order by i").fetchall()]
    assert got == [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]


def test_missing_key_on_real_feeds_is_an_error(minimal_feeds: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MIPA_PSEUDONYM_KEY", raising=False)
    with pytest.raises(FeedError, match="MIPA_PSEUDONYM_KEY"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


def test_missing_required_column_names_file_and_column(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str
) -> None:
    write_csv(
        minimal_feeds / "returns" / "returns_2023.csv",
        ("record_id", "person_id", "nationality", "departure_date"),
        [("R9", "P9", "MAR", "2023-01-01")],
    )
    with pytest.raises(FeedError) as err:
        ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert "returns/returns_2023.csv" in str(err.value)
    assert "departure_type" in str(err.value)
    assert "required_columns" in str(err.value)


def test_extra_columns_are_ignored_and_names_matched_loosely(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str
) -> None:
    write_csv(
        minimal_feeds / "laissez_passers" / "lp_2023.csv",
        ("Record_ID", "person_id ", "nationality", "issue_date", "office"),
        [("L7", "P7", "MAR", "2023-02-01", "Schiphol")],
    )
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert summary.rows("laissez_passers") == 2


def test_missing_feed_folder_is_an_error(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    shutil.rmtree(minimal_feeds / "laissez_passers")
    with pytest.raises(FeedError, match="feed folder 'laissez_passers' is missing"):
        ingest(minimal_feeds, tmp_path / "w.duckdb")


def test_parquet_and_csv_deliveries_load_together(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str
) -> None:
    con = duckdb.connect()
    target = minimal_feeds / "returns" / "returns_2023.parquet"
    con.execute(
        f"""copy (select 'R5' as record_id, 'P5' as person_id, 'EGY' as nationality,
                  date '2023-06-01' as departure_date, 'forced' as departure_type)
            to '{target}' (format parquet)"""
    )
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    assert summary.rows("returns") == 3
    db = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert db.execute(
        "select departure_date from landing.returns where record_id = 'R5'"
    ).fetchone() == ("2023-06-01",)


def test_identical_redelivery_is_flagged(minimal_feeds: Path, tmp_path: Path, pseudonym_key: str) -> None:
    original = minimal_feeds / "returns" / "returns_2022.csv"
    shutil.copy(original, minimal_feeds / "returns" / "returns_2022_resent.csv")
    summary = ingest(minimal_feeds, tmp_path / "w.duckdb")
    resent = [f for f in summary.files if f.source_file.endswith("resent.csv")][0]
    assert resent.identical_to == "returns/returns_2022.csv"
    assert summary.rows("returns") == 4  # both copies land; staging supersedes the older copy


def test_every_country_alias_is_reachable() -> None:
    """An alias that is a declared missing value loads as NULL and can never match: the seed
    must not hold one (Namibia's ISO2 code NA)."""
    import csv as _csv

    from mipa.contract import MISSING_VALUES

    seed = Path(__file__).resolve().parents[2] / "seeds" / "country_aliases.csv"
    with seed.open(encoding="utf-8", newline="") as handle:
        aliases = [row["alias"] for row in _csv.DictReader(handle)]
    assert len(aliases) > 900
    assert [a for a in aliases if a.strip().lower() in MISSING_VALUES] == []


def test_a_file_read_in_batches_keeps_its_row_numbers_and_names_the_failing_row(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery streams through the load a batch at a time (here 3 rows): every row keeps
    its file row number, and a problem in a later batch names the file's row, whether the
    date order (checked per batch) or the CSV itself (met while reading) is wrong."""
    import mipa.ingest

    monkeypatch.setattr(mipa.ingest, "BATCH_ROWS", 3)
    header = "record_id,person_id,nationality,departure_date,departure_type\n"
    path = minimal_feeds / "returns" / "returns_2023.csv"
    good = [f"R{i},P{i},MAR,2023-01-{i:02d},forced\n" for i in range(1, 11)]
    path.write_text(header + "".join(good), encoding="utf-8")
    ingest(minimal_feeds, tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    rows = con.execute("select record_id, _source_row from landing.returns "
                       "where _source_file = 'returns/returns_2023.csv' order by _source_row").fetchall()
    con.close()
    assert rows == [(f"R{i}", i) for i in range(1, 11)]

    path.write_text(header + "".join(good[:7]) + "R8,P8,MAR,03-25-2023,forced\n", encoding="utf-8")
    with pytest.raises(FeedError, match=r"^returns/returns_2023.csv: row 8 departure_date '03-25-2023'"):
        ingest(minimal_feeds, tmp_path / "w2.duckdb")
    path.write_text(header + "".join(good[:8]) + 'R9,P9,"MAR,2023-01-09,forced\n', encoding="utf-8")
    with pytest.raises(FeedError, match=r"^returns/returns_2023.csv: row 9 cannot be parsed as CSV"):
        ingest(minimal_feeds, tmp_path / "w3.duckdb")


def _landing_rows(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'landing' order by table_name").fetchall()]
        return {t: con.execute(f"select * from landing.{t}").fetchall() for t in tables}  # physical order
    finally:
        con.close()


def test_feeds_loaded_side_by_side_give_the_tables_of_one_at_a_time(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mipa.ingest

    write_csv(minimal_feeds / "returns" / "returns_2023.csv",
              ("record_id", "person_id", "nationality", "departure_date", "departure_type"),
              [(f"R{i}", f"P{i}", "MAR", f"2023-01-{i:02d}", "forced") for i in range(10, 30)])
    monkeypatch.setattr(mipa.ingest, "BATCH_ROWS", 4)
    together = ingest(minimal_feeds, tmp_path / "two.duckdb")
    monkeypatch.setattr(mipa.ingest, "LOAD_THREADS", 1)
    alone = ingest(minimal_feeds, tmp_path / "one.duckdb")
    assert together.files == alone.files and together.mappings == alone.mappings
    assert _landing_rows(tmp_path / "two.duckdb") == _landing_rows(tmp_path / "one.duckdb")


def test_of_two_broken_feeds_the_first_in_feed_order_is_reported(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str
) -> None:
    # requests loads beside returns; the returns error is the one to name, whichever ends first
    write_csv(minimal_feeds / "requests" / "requests_2023.csv", ("record_id",), [("Q9",)])
    write_csv(minimal_feeds / "returns" / "returns_2023.csv",
              ("record_id", "person_id", "nationality", "departure_date"), [("R9", "P9", "MAR", "2023-01-01")])
    for attempt in range(3):
        with pytest.raises(FeedError, match=r"^returns/returns_2023.csv: missing required column"):
            ingest(minimal_feeds, tmp_path / f"w{attempt}.duckdb")


def test_a_second_feed_waits_until_a_core_is_free(
    minimal_feeds: Path, tmp_path: Path, pseudonym_key: str
) -> None:
    def busy() -> bool:  # the core stays taken: the feeds load one at a time, all of them
        return False

    alone = ingest(minimal_feeds, tmp_path / "one.duckdb", second_core_free=busy)
    assert {f.feed for f in alone.files if f.status == "loaded"} == {"returns", "requests", "nationality_confirmations",
                                                                      "laissez_passers"}
    together = ingest(minimal_feeds, tmp_path / "two.duckdb", second_core_free=lambda: True)
    assert together.files == alone.files
