"""The dbt project's conventions (issue 17): the layers run one way (sources -> staging ->
intermediate -> marts -> report), the report reads marts only and its exposures say which,
every mart has a contract, and the feeds have source freshness. Read from the manifest of
`dbt parse`, so a model added later is checked too."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mipa import settings
from mipa.contract import FEEDS
from mipa.report import data as report_data
from mipa.report.parts import part_modules

PROJECT = settings.project_dir()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    target = tmp_path_factory.mktemp("dbt_target")
    env = {**os.environ, "MIPA_PROJECT_DIR": str(PROJECT), "MIPA_DB_PATH": str(target / "parse.duckdb"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), "--quiet", "parse", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                    "--target-path", str(target), "--log-path", str(target)], env=env, check=True)
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def _models(manifest: dict) -> dict[str, dict]:
    return {k: v for k, v in manifest["nodes"].items() if v["resource_type"] == "model"}


def _layer(node: dict) -> str:
    """staging, intermediate or marts: the folder of a SQL model; Python models are
    intermediate (python_models/, materialized in the intermediate schema)."""
    path = node["original_file_path"]
    if path.startswith("python_models/"):
        return "intermediate"
    return path.split("/")[1]


def test_every_model_lives_in_a_layer(manifest) -> None:
    layers = {name: _layer(node) for name, node in _models(manifest).items()}
    assert set(layers.values()) == {"staging", "intermediate", "marts"}, layers


def test_layers_run_one_way(manifest) -> None:
    models = _models(manifest)
    order = {"staging": 0, "intermediate": 1, "marts": 2}
    back_edges, sources_outside_staging, seeds_outside_staging = [], [], []
    for name, node in models.items():
        layer = _layer(node)
        for parent in node["depends_on"]["nodes"]:
            if parent.startswith("source."):
                if layer != "staging":
                    sources_outside_staging.append(f"{name} <- {parent}")
            elif parent.startswith("seed."):
                if layer != "staging":
                    seeds_outside_staging.append(f"{name} <- {parent}")
            elif parent in models and order[_layer(models[parent])] > order[layer]:
                back_edges.append(f"{name} ({layer}) <- {parent} ({_layer(models[parent])})")
    assert back_edges == []
    assert sources_outside_staging == []
    assert seeds_outside_staging == []


def test_python_models_read_the_intermediate_panel(manifest) -> None:
    python = {n["name"]: n["depends_on"]["nodes"] for n in _models(manifest).values() if n["language"] == "python"}
    assert python  # the estimation models exist
    assert all("model.mipa.int_panel__country_month" in deps or "model.mipa.int_panel__country_year" in deps
               for deps in python.values()), python


def test_models_are_named_for_their_layer(manifest) -> None:
    """dbt-project-evaluator's naming rule: stg_ in staging, int_ in intermediate,
    fct_ or dim_ in marts."""
    prefixes = {"staging": ("stg_",), "intermediate": ("int_",), "marts": ("fct_", "dim_")}
    misnamed = sorted(f"{n['name']} ({_layer(n)})" for n in _models(manifest).values()
                      if not n["name"].startswith(prefixes[_layer(n)]))
    assert misnamed == []


def test_every_source_table_is_used(manifest) -> None:
    used = {p for n in manifest["nodes"].values() for p in n.get("depends_on", {}).get("nodes", [])}
    unused = sorted(set(manifest["sources"]) - used)
    assert unused == []


def test_every_mart_has_an_enforced_contract(manifest) -> None:
    missing = sorted(n["name"] for n in _models(manifest).values()
                     if _layer(n) == "marts" and not n["config"]["contract"]["enforced"])
    assert missing == []


def test_feeds_have_source_freshness(manifest) -> None:
    feeds = {k: v for k, v in manifest["sources"].items() if v["source_name"] == "dtenv"}
    assert {v["name"] for v in feeds.values()} == {"returns", "requests", "nationality_confirmations",
                                                   "laissez_passers"}
    for source in feeds.values():
        assert source["freshness"]["warn_after"] == {"count": 45, "period": "day"}, source["name"]
        assert "feed_loaded_at_query" in source["loaded_at_query"], source["name"]


# --------------------------------------------------------------------------------------
# dbt-project-evaluator's rules (dbt Labs' package; `dbt deps` cannot reach the hub here, so
# its rules are written out over the manifest). Exceptions are listed with their reason.

# sources that are not deliveries in time, so freshness does not apply (the evaluator's
# fct_sources_without_freshness): the Monte Carlo's result files, the optional
# air-passenger reference series (its months are the data, not its delivery), and the
# load's own log of this build
SOURCES_WITHOUT_FRESHNESS = {"inference_coverage", "estimator_designs", "air_passengers", "load_metadata",
                             "delivery_files"}
# models without a parent (fct_root_models): the month spine is generated from the
# project's window variables
ROOT_MODELS = {"int_month_spine"}


def _tests_by_model(manifest: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or not node.get("test_metadata"):
            continue
        for parent in node["depends_on"]["nodes"]:
            out.setdefault(parent, set()).add(node["test_metadata"]["name"])
    return out


def test_evaluator_documentation_coverage(manifest) -> None:
    """fct_undocumented_models / _source_tables, and every column documented."""
    models = _models(manifest).values()
    assert sorted(m["name"] for m in models if not m["description"].strip()) == []
    assert sorted(f"{m['name']}.{c}" for m in models for c, col in m["columns"].items()
                  if not col["description"].strip()) == []
    assert sorted(s["name"] for s in manifest["sources"].values() if not s["description"].strip()) == []


def test_evaluator_every_model_has_a_grain_test(manifest) -> None:
    """fct_missing_primary_key_tests: each model's grain is tested (unique, a unique
    combination of columns, or a fixed number of rows per group)."""
    grain = {"unique", "unique_combination_of_columns", "rows_per_group"}
    tests = _tests_by_model(manifest)
    assert sorted(m["name"] for k, m in _models(manifest).items() if not tests.get(k, set()) & grain) == []


def test_evaluator_dag_rules(manifest) -> None:
    """fct_staging_dependent_on_staging / _marts_or_intermediate (staging reads sources
    only), fct_source_fanout / fct_multiple_sources_joined (a source is read by one staging
    model, none joins two), fct_direct_join_to_source (only staging reads sources),
    fct_root_models, fct_exposure_parents_materializations (the report reads tables)."""
    models = _models(manifest)
    parents = {k: m["depends_on"]["nodes"] for k, m in models.items()}
    staging_on_models = [m["name"] for k, m in models.items()
                         if _layer(m) == "staging" and any(p.startswith("model.") for p in parents[k])]
    assert staging_on_models == []
    source_readers: dict[str, list[str]] = {}
    for k, m in models.items():
        for p in parents[k]:
            if p.startswith("source."):
                source_readers.setdefault(p, []).append(m["name"])
    assert {s: r for s, r in source_readers.items() if len(r) > 1} == {}
    assert sorted(r for readers in source_readers.values() for r in readers if not r.startswith("stg_")) == []
    assert {m["name"] for k, m in models.items() if not parents[k]} == ROOT_MODELS
    for exposure in manifest["exposures"].values():
        for parent in exposure["depends_on"]["nodes"]:
            node = manifest["nodes"][parent]
            assert node["config"]["materialized"] == "table", (exposure["name"], node["name"])


def test_evaluator_sources_have_freshness(manifest) -> None:
    """fct_sources_without_freshness, with the listed exceptions."""
    without = {s["name"] for s in manifest["sources"].values()
               if not any((s.get("freshness") or {}).get(f"{level}_after", {}).get("count")
                          for level in ("warn", "error"))}
    assert without == SOURCES_WITHOUT_FRESHNESS


def test_montecarlo_results_are_a_source_not_a_seed(manifest) -> None:
    """The Monte Carlo's committed results are data a script writes: dbt reads the file in
    place (dbt-duckdb external_location, from MIPA_PROJECT_DIR), only its staging model reads
    the source, and there is no seed of that name and no freshness (a deliberate rerun, not
    a delivery)."""
    assert not any(n["resource_type"] == "seed" and n["name"] == "inference_coverage"
                   for n in manifest["nodes"].values())
    assert not (PROJECT / "seeds" / "inference_coverage.csv").exists()
    source = manifest["sources"]["source.mipa.montecarlo.inference_coverage"]
    location = source["config"]["meta"]["external_location"]
    path = PROJECT / "montecarlo" / "inference_coverage.csv"
    assert location.startswith(f"read_csv('{path}',") and "all_varchar = true" in location
    assert path.is_file()
    assert source["freshness"]["warn_after"]["count"] is None and source["freshness"]["error_after"]["count"] is None
    readers = sorted(n["name"] for n in manifest["nodes"].values()
                     if source["unique_id"] in n.get("depends_on", {}).get("nodes", []) and n["resource_type"] == "model")
    assert readers == ["stg_montecarlo__inference_coverage"]
    columns = set(source["columns"])
    assert columns == set(path.read_text(encoding="utf-8").splitlines()[0].split(","))
    assert all(c["description"] for c in source["columns"].values())


def _exposure_marts(manifest: dict, name: str) -> set[str]:
    exposure = manifest["exposures"][f"exposure.mipa.{name}"]
    models = _models(manifest)
    return {f"marts.{models[p]['name']}" for p in exposure["depends_on"]["nodes"]}


def test_report_reads_marts_only() -> None:
    source = Path(report_data.__file__).read_text(encoding="utf-8")
    assert re.findall(r"\b(?:landing|staging|intermediate|reference)\.\w+", source) == []
    read = set(report_data.tables_read())
    assert all(name.startswith("marts.") for name in read)
    assert set(re.findall(r"\bmarts\.\w+", source)) <= read
    for module in part_modules():
        assert all(name.startswith("marts.") for name in module.MARTS), module.__name__


def test_report_exposures_list_what_the_report_reads(manifest) -> None:
    assert _exposure_marts(manifest, "report_core") == set(report_data.tables_read())
    for module in part_modules():
        exposure = "report_" + module.__name__.rsplit(".", 1)[1].removesuffix("_part")
        assert _exposure_marts(manifest, exposure) == set(module.MARTS), exposure
    declared = {e["name"] for e in manifest["exposures"].values()}
    expected = {"report_core"} | {"report_" + m.__name__.rsplit(".", 1)[1].removesuffix("_part")
                                   for m in part_modules()}
    assert declared == expected


def test_yearly_window_is_defined_once_in_the_project_vars() -> None:
    project = yaml.safe_load((PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))
    assert (project["vars"]["yearly_panel_start_year"], project["vars"]["yearly_panel_end_year"]) == (2016, 2024)
    model = (PROJECT / "python_models/estimation/int_did__yearly_results.py").read_text(encoding="utf-8")
    assert "2016" not in model and "2024" not in model
    config = yaml.safe_load((PROJECT / "python_models/estimation/_estimation__models.yml").read_text(encoding="utf-8"))
    yearly = next(m for m in config["models"] if m["name"] == "int_did__yearly_results")
    assert yearly["config"]["yearly_panel_start_year"] == "{{ var('yearly_panel_start_year') }}"


@pytest.mark.slow
def test_source_freshness_is_green_on_a_synthetic_build(synthetic_warehouse, tmp_path) -> None:
    """`dbt source freshness` measures synthetic feeds against their delivery calendar (the
    day after the generated window), not today: every feed passes, 1 day old. With a later
    reference date (as `mipa validate --reference-date` passes it) the same feeds warn."""
    from mipa.quality.freshness import check_freshness, dbt_source_freshness, reference_date_for

    _, built = synthetic_warehouse
    db = tmp_path / "copy.duckdb"  # dbt opens the file for writing; leave the shared one alone
    db.write_bytes(built.read_bytes())
    calendar, basis = reference_date_for(db)
    assert basis.startswith("synthetic delivery calendar")
    results = dbt_source_freshness(db, calendar)
    assert {feed: r["status"] for feed, r in results.items()} == dict.fromkeys(FEEDS, "pass")
    # without the var, the SQL finds the same calendar in the load metadata
    env = {**os.environ, "MIPA_PROJECT_DIR": str(PROJECT), "MIPA_DB_PATH": str(db)}
    target = tmp_path / "target"
    subprocess.run([str(Path(sys.executable).with_name("dbt")), "--quiet", "source", "freshness",
                    "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target-path", str(target),
                    "--log-path", str(target)], env=env, check=True)
    plain = json.loads((target / "sources.json").read_text(encoding="utf-8"))["results"]
    assert {r["status"] for r in plain} == {"pass"}
    assert {round(r["max_loaded_at_time_ago_in_s"] / 86400) for r in plain} == {1}
    late = check_freshness(db, calendar.replace(month=3))
    assert (late["status"] == "warn").all() and (late["threshold"] == 45).all()
