"""Great Expectations suites built from ``quality/expectations.yml``, run on DataFrames.

Each suite of the config names one warehouse table (``landing.<feed>``,
``marts.fct_country_month``); every expectation has a GX 1.x type, its kwargs and a
severity (``error`` fails ``mipa validate``, ``warning`` is printed). Thresholds live in
the config, never here.

GX 1.x cannot validate DuckDB through its SQL datasource (every expectation fails), so the
tables are read from DuckDB into pandas and validated with an ephemeral context, a pandas
datasource and one whole-dataframe batch per table. Data Docs are GX's own site builder
writing to a folder.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from mipa import settings
from mipa.quality.freshness import FreshnessSettings
from mipa.templating import template

# GX would otherwise send usage statistics; it reads the variable at import time.
os.environ["GX_ANALYTICS_ENABLED"] = "false"

SEVERITIES = ("error", "warning")
DATA_DOCS_SITE = "mipa"
RESULT_COLUMNS = [
    "suite", "table", "expectation", "type", "column", "severity",
    "success", "observed", "threshold", "message",
]
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class QualityConfigError(ValueError):
    """The expectations config is malformed: the message names the file and the entry."""


@dataclass(frozen=True)
class ExpectationSpec:
    name: str
    type: str
    kwargs: dict[str, Any]
    severity: str
    notes: str | None = None


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    expectations: tuple[ExpectationSpec, ...]
    description: str | None = None


@dataclass(frozen=True)
class QualityConfig:
    suites: tuple[SuiteSpec, ...]
    freshness: FreshnessSettings
    path: Path | None = None

    def suite(self, name: str) -> SuiteSpec:
        for s in self.suites:
            if s.name == name:
                return s
        raise KeyError(name)


def default_config_path() -> Path:
    return settings.project_dir() / "quality" / "expectations.yml"


def load_config(path: Path | str | None = None) -> QualityConfig:
    """Read and check the config; every problem names the file and the entry."""
    path = Path(path) if path is not None else default_config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise QualityConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise QualityConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path | None = None) -> QualityConfig:
    where = str(path) if path else "<config>"
    if not isinstance(raw, dict) or not isinstance(raw.get("suites"), dict) or not raw["suites"]:
        raise QualityConfigError(f"{where}: expected a mapping with a non-empty 'suites' mapping")
    from great_expectations.exceptions import ExpectationNotFoundError  # noqa: PLC0415
    from great_expectations.expectations.registry import get_expectation_impl  # noqa: PLC0415

    suites: list[SuiteSpec] = []
    seen: set[str] = set()
    for suite_name, body in raw["suites"].items():
        if not isinstance(body, dict) or not isinstance(body.get("table"), str):
            raise QualityConfigError(f"{where}: suite '{suite_name}' needs a 'table' (schema.table)")
        if not _TABLE_NAME.match(body["table"]):
            raise QualityConfigError(
                f"{where}: suite '{suite_name}': table '{body['table']}' is not schema.table"
            )
        items = body.get("expectations")
        if not isinstance(items, list) or not items:
            raise QualityConfigError(f"{where}: suite '{suite_name}' has no expectations")
        specs = []
        for i, item in enumerate(items):
            label = f"{where}: suite '{suite_name}', expectation {i + 1}"
            if not isinstance(item, dict):
                raise QualityConfigError(f"{label}: expected a mapping")
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise QualityConfigError(f"{label}: 'name' is missing")
            label = f"{where}: expectation '{name}'"
            if name in seen:
                raise QualityConfigError(f"{label}: name used twice")
            seen.add(name)
            severity = item.get("severity")
            if severity not in SEVERITIES:
                raise QualityConfigError(
                    f"{label}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}"
                )
            kwargs = item.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise QualityConfigError(f"{label}: 'kwargs' must be a mapping")
            etype = item.get("type")
            try:
                get_expectation_impl(str(etype))
            except ExpectationNotFoundError as exc:
                raise QualityConfigError(f"{label}: unknown expectation type {etype!r}") from exc
            unknown = set(item) - {"name", "type", "kwargs", "severity", "notes"}
            if unknown:
                raise QualityConfigError(f"{label}: unknown keys {sorted(unknown)}")
            specs.append(ExpectationSpec(name, etype, dict(kwargs), severity, item.get("notes")))
        suites.append(SuiteSpec(suite_name, body["table"], tuple(specs), body.get("description")))
    try:
        fresh = FreshnessSettings.from_config(raw)
    except ValueError as exc:
        raise QualityConfigError(f"{where}: {exc}") from exc
    return QualityConfig(tuple(suites), fresh, path)


# --- reading tables -----------------------------------------------------------------------


def read_tables(db_path: Path | str, config: QualityConfig) -> dict[str, pd.DataFrame | None]:
    """Each suite's table as a DataFrame (read-only connection); None when the table is absent."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        present = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        frames: dict[str, pd.DataFrame | None] = {}
        for suite in config.suites:
            if suite.table not in present:
                frames[suite.name] = None
                continue
            schema, table = suite.table.split(".")
            frames[suite.name] = con.execute(f'select * from "{schema}"."{table}"').df()
        return frames
    finally:
        con.close()


# --- GX -----------------------------------------------------------------------------------


def make_context(data_docs_dir: Path | None = None):
    """An ephemeral GX context: in-memory stores, no progress bars, optionally one
    filesystem Data Docs site."""
    import great_expectations as gx  # noqa: PLC0415
    from great_expectations.data_context.types.base import (  # noqa: PLC0415
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if data_docs_dir is not None:
        sites[DATA_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(data_docs_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    project_config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=project_config)


def build_suite(spec: SuiteSpec):
    """The GX ExpectationSuite of one config suite; name and severity travel in ``meta``."""
    import great_expectations as gx  # noqa: PLC0415
    from great_expectations.expectations.expectation_configuration import (  # noqa: PLC0415
        ExpectationConfiguration,
    )

    expectations = []
    for e in spec.expectations:
        meta: dict[str, Any] = {"name": e.name, "severity": e.severity}
        if e.notes:
            meta["notes"] = {"format": "markdown", "content": [f"**{e.severity}** — {e.notes}"]}
        else:
            meta["notes"] = {"format": "markdown", "content": [f"**{e.severity}**"]}
        try:
            expectations.append(
                ExpectationConfiguration(type=e.type, kwargs=e.kwargs, meta=meta).to_domain_obj()
            )
        except Exception as exc:  # GX validates kwargs with pydantic
            raise QualityConfigError(f"expectation '{e.name}': invalid kwargs: {exc}") from exc
    return gx.ExpectationSuite(
        name=spec.name, expectations=expectations, meta={"table": spec.table}
    )


@dataclass
class ValidationOutcome:
    """Results of a validation run, one row per expectation (``RESULT_COLUMNS``)."""

    results: pd.DataFrame
    data_docs_index: Path | None = None
    run_name: str = "latest"
    suites_run: list[str] = field(default_factory=list)

    @property
    def failed(self) -> pd.DataFrame:
        return self.results[~self.results["success"]]

    @property
    def errors(self) -> pd.DataFrame:
        f = self.failed
        return f[f["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        f = self.failed
        return f[f["severity"] == "warning"]

    @property
    def success(self) -> bool:
        """True unless an error-level expectation failed."""
        return self.errors.empty


def run_validation(
    frames: dict[str, pd.DataFrame | None],
    config: QualityConfig,
    data_docs_dir: Path | None = None,
    run_name: str = "latest",
) -> ValidationOutcome:
    """Validate each suite's DataFrame (``frames`` keyed by suite name; None = table
    missing, which fails every expectation of the suite). Suites without a frame are
    skipped. With ``data_docs_dir``, GX Data Docs are built there."""
    import great_expectations as gx  # noqa: PLC0415
    from great_expectations.core.run_identifier import RunIdentifier  # noqa: PLC0415

    context = make_context(data_docs_dir)
    datasource = context.data_sources.add_pandas("mipa_warehouse")
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    rows: list[dict[str, Any]] = []
    suites_run: list[str] = []
    for spec in config.suites:
        if spec.name not in frames:
            continue
        suites_run.append(spec.name)
        df = frames[spec.name]
        if df is None:
            rows += [
                _row(spec, e, False, None, f"table {spec.table} not found in the database")
                for e in spec.expectations
            ]
            continue
        asset = datasource.add_dataframe_asset(spec.table)
        batch = asset.add_batch_definition_whole_dataframe("whole_table")
        suite = context.suites.add(build_suite(spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{spec.name}", data=batch, suite=suite)
        )
        result = definition.run(
            batch_parameters={"dataframe": df}, result_format="SUMMARY", run_id=run_id
        )
        by_name = {r.expectation_config.meta.get("name"): r for r in result.results}
        for e in spec.expectations:
            r = by_name.get(e.name)
            if r is None:
                rows.append(_row(spec, e, False, None, "expectation was not evaluated"))
                continue
            rows.append(_row(spec, e, bool(r.success), r.result or {}, _exception(r.exception_info)))
    index = None
    if data_docs_dir is not None and suites_run:
        urls = context.build_data_docs(site_names=[DATA_DOCS_SITE])
        index = Path(data_docs_dir) / "index.html"
        if not index.exists():  # pragma: no cover - GX wrote elsewhere
            index = Path(str(urls.get(DATA_DOCS_SITE, "")).removeprefix("file://")) or None
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return ValidationOutcome(results, index, run_name, suites_run)


def _exception(info: Any) -> str | None:
    """First exception message of a GX result (flat or keyed by metric), if any."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception")
    for value in info.values():
        if isinstance(value, dict) and (value.get("exception_message") or value.get("raised_exception")):
            return str(value.get("exception_message") or "exception").strip().splitlines()[-1]
    return None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple, set)):
        return "{" + ", ".join(_fmt(v) for v in value) + "}"
    return str(value)


def _threshold(e: ExpectationSpec) -> str:
    kw = e.kwargs
    parts = []
    if "min_value" in kw or "max_value" in kw:
        lo, hi = kw.get("min_value"), kw.get("max_value")
        parts.append(f"[{'-inf' if lo is None else _fmt(lo)}, {'inf' if hi is None else _fmt(hi)}]")
    if "value_set" in kw:
        parts.append(f"set {_fmt(kw['value_set'])}")
    if "regex" in kw:
        parts.append(f"regex {kw['regex']}")
    if "mostly" in kw:
        parts.append(f"mostly {_fmt(kw['mostly'])}")
    return ", ".join(parts)


def _observed(result: dict[str, Any] | None) -> str:
    if not result:
        return ""
    if "observed_value" in result and result["observed_value"] is not None:
        return _fmt(result["observed_value"])
    if "unexpected_percent" in result and result.get("element_count") is not None:
        pct = result.get("unexpected_percent") or 0.0
        n = result.get("unexpected_count") or 0
        return f"{pct:.3g}% unexpected ({n} of {result['element_count']})"
    if result.get("missing_count"):
        return f"missing {_fmt(result.get('partial_missing_list') or [])}"
    if result.get("unexpected_count"):
        return f"unexpected {_fmt(result.get('partial_unexpected_list') or [])}"
    return ""


def _row(spec: SuiteSpec, e: ExpectationSpec, success: bool, result, error: str | None) -> dict:
    observed = _observed(result)
    if error:
        message = f"could not be evaluated: {error}"
    elif success:
        message = "ok"
    else:
        sample = [v for v in (result or {}).get("partial_unexpected_list") or [] if v is not None]
        message = f"observed {observed or 'n/a'}, expected {_threshold(e) or 'see config'}"
        if sample and "unexpected" in observed:
            message += f"; e.g. {', '.join(repr(v) for v in sample[:3])}"
    return {
        "suite": spec.name,
        "table": spec.table,
        "expectation": e.name,
        "type": e.type,
        "column": e.kwargs.get("column"),
        "severity": e.severity,
        "success": bool(success) and not error,
        "observed": observed,
        "threshold": _threshold(e),
        "message": message,
    }


def summarise(outcome: ValidationOutcome) -> str:
    """Human-readable lines: counts, then every failed expectation, errors first."""
    res = outcome.results
    lines = [
        f"expectations: {len(res)} checked in {len(outcome.suites_run)} suites, "
        f"{int(res['success'].sum())} passed, {len(outcome.errors)} errors, "
        f"{len(outcome.warnings)} warnings"
    ]
    for label, frame in (("ERROR", outcome.errors), ("WARNING", outcome.warnings)):
        for row in frame.itertuples(index=False):
            lines.append(f"  {label:<7} {row.table} {row.expectation}: {row.message}")
    return "\n".join(lines)


# --- self-contained HTML page -------------------------------------------------------------
# The markup is mipa/quality/templates/summary.html.j2; here: what each cell shows.


@dataclass(frozen=True)
class _HtmlCell:
    text: str
    cls: str | None = None  # None: no class attribute
    code: bool = False  # monospace (thresholds)


@dataclass(frozen=True)
class _HtmlTable:
    title: str
    table: str | None  # the warehouse table a suite checks, shown after its name
    columns: list[str]
    rows: list[list[_HtmlCell]]


def _html_cell(column: str, value: Any, severity: Any) -> _HtmlCell:
    if column == "success":
        return _HtmlCell("pass" if value else "FAIL", "ok" if value else f"badge fail-{severity}")
    if column == "status":
        return _HtmlCell(str(value), "ok" if value == "ok" else ("" if value == "not_checked" else "badge warn"))
    if column in ("threshold", "observed") and isinstance(value, float):
        return _HtmlCell(_fmt(value), "num")
    text = "" if value is None else str(value)
    return _HtmlCell(text, code=column == "threshold")


def _html_table(title: str, table: str | None, frame: pd.DataFrame, columns: list[str]) -> _HtmlTable:
    rows = [[_html_cell(c, row.get(c), row.get("severity")) for c in columns] for row in frame.to_dict("records")]
    return _HtmlTable(title, table, columns, rows)


def render_html(
    outcome: ValidationOutcome,
    checks: pd.DataFrame | None = None,
    facts: dict[str, Any] | None = None,
    gx_index: str | None = "index.html",
) -> str:
    """One self-contained page (no scripts, no external assets) of every expectation result
    and every freshness/volume check; readable offline, unlike GX's CDN-styled site."""
    res = outcome.results
    status = "PASSED" if outcome.success else "FAILED"
    line = (
        f"{status}: {len(res)} expectations, {int(res['success'].sum())} passed, "
        f"{len(outcome.errors)} errors, {len(outcome.warnings)} warnings"
    )
    if checks is not None:
        line += f"; {int((checks['status'] == 'warn').sum())} freshness/volume warnings"
    cols = ["success", "severity", "expectation", "column", "observed", "threshold", "message"]
    tables = []
    if not outcome.failed.empty:
        tables.append(_html_table("Failed expectations", None, outcome.failed.sort_values("severity"),
                                  ["table", *cols]))
    if checks is not None:
        tables.append(_html_table("Source freshness and volume", None, checks, list(checks.columns)))
    for suite in outcome.suites_run:
        sub = res[res["suite"] == suite]
        tables.append(_html_table(suite, sub["table"].iloc[0] if len(sub) else "", sub, cols))
    return template("mipa.quality", "summary.html.j2").render(
        run_name=outcome.run_name,
        status_class="pass" if outcome.success else "failed",
        status_line=line,
        facts=[(str(k), str(v)) for k, v in (facts or {}).items()],
        gx_index=gx_index,
        tables=tables,
    )
