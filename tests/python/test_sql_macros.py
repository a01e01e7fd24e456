"""SQL macros and generic tests that were rewritten for bounded memory give the results of
their plain definitions (compiled by dbt itself, run on DuckDB tables with planted cases)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _compile(inline: str, tmp: Path) -> str:
    env = {**os.environ, "MIPA_PROJECT_DIR": str(PROJECT), "MIPA_DB_PATH": str(tmp / "compile.duckdb"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run([str(dbt), "--quiet", "compile", "--inline", inline, "--project-dir", str(PROJECT),
                           "--profiles-dir", str(PROJECT), "--target-path", str(tmp / "target"),
                           "--log-path", str(tmp / "target")], env=env, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("macros")
    return {
        "unique": _compile("{{ test_unique_combination_of_columns(model='t', combination_of_columns=['a', 'b']) }}",
                           tmp),
        "copies": _compile("{{ repeated_copies('deliveries') }}", tmp),
    }


def test_grain_test_finds_exactly_the_repeated_keys(compiled: dict[str, str]) -> None:
    """The hash-first grain test returns the keys a plain ``group by ... having count(*) > 1``
    returns: none on unique keys, and every repeated key (NULLs included) with its count."""
    rng = np.random.default_rng(1)
    con = duckdb.connect()
    con.execute("create table t as select range as a, 'x' || range as b from range(5000)")
    assert con.execute(compiled["unique"]).fetchall() == []
    frame = pd.DataFrame({"a": rng.integers(0, 300, 2000), "b": rng.choice(["x", "y", None], 2000)})
    con.register("frame", frame)
    con.execute("create or replace table t as select * from frame")
    plain = "select a, b, count(*) as rows_with_key from t group by a, b having count(*) > 1 order by a, b"
    got = con.execute(f"select * from ({compiled['unique']}) order by a, b").fetchall()
    assert got == con.execute(plain).fetchall()
    assert len(got) > 100 and any(b is None for _, b, _ in got)


def test_repeated_copies_rank_like_a_window_over_every_row(compiled: dict[str, str]) -> None:
    """Ranking only the record ids delivered more than once, joined back, gives every row the
    delivery rank and latest copy of a window over all rows (ids delivered once: rank 1)."""
    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame({
        "record_id": rng.choice([f"R{i}" for i in range(1800)] + [None], n),
        "file_order": rng.integers(1, 6, n),
    })
    frame["source_row"] = frame.groupby("file_order").cumcount() + 1
    frame["source_file"] = "feed/file_" + frame["file_order"].astype(str) + ".csv"
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute("create table deliveries as select * from frame")
    window = "partition by record_id order by file_order desc, source_row desc"
    plain = f"""
        select file_order, source_row, row_number() over ({window}) as delivery_rank,
               first_value(source_file) over ({window}) as latest_source_file,
               first_value(source_row) over ({window}) as latest_source_row
        from deliveries where record_id is not null"""
    rewritten = f"""
        select d.file_order, d.source_row, coalesce(c.delivery_rank, 1) as delivery_rank,
               c.latest_source_file, c.latest_source_row
        from deliveries d left join ({compiled['copies']}) c
            on d.file_order = c.file_order and d.source_row = c.source_row
        where d.record_id is not null"""
    expected = con.execute(plain).df().sort_values(["file_order", "source_row"]).reset_index(drop=True)
    got = con.execute(rewritten).df().sort_values(["file_order", "source_row"]).reset_index(drop=True)
    # an id delivered once: rank 1 and no latest copy to name (the rule reads them only for rank > 1)
    pd.testing.assert_frame_equal(got[["file_order", "source_row", "delivery_rank"]],
                                  expected[["file_order", "source_row", "delivery_rank"]], check_dtype=False)
    repeated = got["latest_source_file"].notna()
    pd.testing.assert_frame_equal(got[repeated].reset_index(drop=True),
                                  expected[repeated].reset_index(drop=True), check_dtype=False)
    assert repeated.sum() > 500 and (got["delivery_rank"] > 1).sum() > 200 and (~repeated).sum() > 500
