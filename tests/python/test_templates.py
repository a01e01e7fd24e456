"""The jinja2 templates of the HTML pages (``src/mipa/report/templates``,
``src/mipa/quality/templates``): shipped with the package, escaping what they show and
writing the same bytes as the string-built pages they replaced.

A template missing from a non-editable install fails here: the package is copied as
setuptools installs it (Python modules plus the ``package-data`` of ``pyproject.toml``)
and a page is rendered from that copy in a fresh interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import Markup

from mipa.quality.expectations import RESULT_COLUMNS, ValidationOutcome, render_html
from mipa.report.html import LanguageDocument, Section, document, heading, paragraph, render_dl, render_table
from mipa.report.table_model import Cell, Row, Table
from mipa.templating import environment

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "mipa"
TEMPLATE_PACKAGES = ("mipa.report", "mipa.quality")
EVIL = "<script>alert('x')</script> & \"q\""
EVIL_ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;"


def _template_files() -> list[Path]:
    files = sorted(p for name in TEMPLATE_PACKAGES
                   for p in (SRC / name.replace(".", "/") / "templates").iterdir() if p.is_file())
    assert files, "no templates found"
    return files


def _package_data_globs() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["mipa"]


def _installed_files() -> set[Path]:
    """The files of ``src/mipa`` a wheel holds: every module, plus the package-data globs."""
    files = {p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    for pattern in _package_data_globs():
        files |= {p for p in PACKAGE.glob(pattern) if p.is_file()}
    return files


# ---------------------------------------------------------------------------------------
# shipped


def test_every_template_is_package_data() -> None:
    missing = [str(p.relative_to(SRC)) for p in _template_files() if p not in _installed_files()]
    assert not missing, f"templates not in [tool.setuptools.package-data] of pyproject.toml: {missing}"


@pytest.mark.parametrize("path", _template_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_template_compiles_and_says_what_it_renders(path: Path) -> None:
    package = f"mipa.{path.parent.parent.name}"
    assert environment(package).get_template(path.name) is not None
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("{#") and first.rstrip().endswith("#}"), f"{path.name}: first line is no comment"


def test_templates_are_found_in_a_non_editable_install(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for path in _installed_files():
        target = site / path.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    script = textwrap.dedent("""
        import pandas as pd
        import mipa
        from mipa.quality.expectations import RESULT_COLUMNS, ValidationOutcome, render_html
        from mipa.report.html import Section, page, render_table
        from mipa.report.table_model import Cell, Row, Table

        assert mipa.__file__.startswith(SITE), mipa.__file__
        html = page(lang="en", title="T", subtitle="S", source_line="", synthetic=True, version="1", footer="F",
                    sections=[Section("s", "S", "", [render_table(Table("t", "c", [], [Row([Cell("1")])]))])])
        assert html.startswith("<!DOCTYPE html>") and ":root {" in html and "<caption>c</caption>" in html
        row = dict(suite="s", table="a.b", expectation="e", type="t", column="c", severity="error", success=True,
                   observed="", threshold="", message="ok")
        quality = render_html(ValidationOutcome(pd.DataFrame([row], columns=RESULT_COLUMNS), None, "r", ["s"]))
        assert quality.startswith("<!doctype html>") and quality.endswith("</body></html>")
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(site), "GX_ANALYTICS_ENABLED": "false"}
    done = subprocess.run([sys.executable, "-c", f"SITE = {str(site)!r}\n{script}"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# ---------------------------------------------------------------------------------------
# escaping: text is escaped (as html.escape does), HTML fragments are not


def test_report_fragments_escape_their_text() -> None:
    table = Table(EVIL, EVIL, [Row([Cell(EVIL, header=True, scope="col")])],
                  [Row([Cell(EVIL, attrs={"data-value": EVIL}, subtext=EVIL, planted=EVIL)])],
                  notes=[EVIL], workbook=EVIL)
    for html in (render_table(table), paragraph(EVIL), heading(2, EVIL, EVIL), render_dl([(EVIL, EVIL)], cls=EVIL)):
        assert "<script>" not in html and EVIL_ESCAPED in html
        assert type(html) is str  # not Markup: callers concatenate fragments as plain strings
    assert paragraph(EVIL, "intro") == f'<p class="intro">{EVIL_ESCAPED}</p>'
    assert heading(3, "A & B", "x") == '<h3 id="x">A &amp; B</h3>'


def test_report_page_escapes_text_and_keeps_fragments() -> None:
    fragment = '<p class="raw">kept <b>as is</b></p>'
    sections = [Section("s1", EVIL, EVIL, [fragment, heading(3, EVIL)])]
    doc = LanguageDocument("en", EVIL, EVIL, '<p class="source-line">source</p>', sections, EVIL)
    html = document([doc], initial="en", synthetic=True, version=EVIL)
    assert "<script>" not in html
    assert f"<title>{EVIL_ESCAPED}</title>" in html and f"<h1>{EVIL_ESCAPED}</h1>" in html
    assert f"<footer>{EVIL_ESCAPED}</footer>" in html and f'<p class="intro">{EVIL_ESCAPED}</p>' in html
    assert f'<h2 id="h-s1">1. {EVIL_ESCAPED}</h2>' in html
    assert f'<h3 id="s1-1">1.1 {EVIL_ESCAPED}</h3>' in html  # numbered, escaped once
    assert fragment in html and '<p class="source-line">source</p>' in html
    assert html.endswith("</body>\n</html>\n")


def test_quality_page_escapes_its_text() -> None:
    results = pd.DataFrame([dict(suite=EVIL, table=EVIL, expectation=EVIL, type="t", column=EVIL, severity="error",
                                 success=False, observed=EVIL, threshold=EVIL, message=EVIL)], columns=RESULT_COLUMNS)
    html = render_html(ValidationOutcome(results, None, EVIL, [EVIL]), None, {EVIL: EVIL}, gx_index=EVIL)
    assert "<script>" not in html
    assert f"<title>mipa validate: {EVIL_ESCAPED}</title>" in html
    assert f"<td><code>{EVIL_ESCAPED}</code></td>" in html and f"<tr><th>{EVIL_ESCAPED}</th>" in html
    assert f"<a href='{EVIL_ESCAPED}'>" in html


def test_markup_is_not_escaped_twice() -> None:
    # a fragment handed over as Markup is HTML already: written as it is
    assert paragraph(Markup("<em>x</em>")) == "<p><em>x</em></p>"


# ---------------------------------------------------------------------------------------
# the same bytes as before the templates


def test_table_bytes() -> None:
    table = Table("t1", "Caption", [Row([Cell("A", header=True, scope="col")])],
                  [Row([Cell("1.5", classes=("num",), number="effect", subtext="(0.2)")], classes=("n-row",))],
                  notes=["note"], workbook="w.xlsx", decimals={"effect": 1})
    assert render_table(table) == (
        '<div class="table-block" id="t1"><div class="table-wrap"><table class="data-table" data-decimals="'
        '{&quot;count&quot;: 0, &quot;days&quot;: 0, &quot;effect&quot;: 1, &quot;p_value&quot;: 3, '
        '&quot;percent&quot;: 1, &quot;ratio&quot;: 2, &quot;statistic&quot;: 1}"><caption>Caption</caption>'
        '<thead><tr><th scope="col">A</th></tr></thead><tbody><tr class="n-row"><td class="num" '
        'data-number="effect">1.5<br><span class="subtext">(0.2)</span></td></tr></tbody></table></div>'
        '<div class="table-notes"><ol><li>note</li></ol><p class="downloads"><a href="t1.csv">CSV</a> · '
        '<a href="t1.parquet">PARQUET</a> · <a class="workbook" href="w.xlsx">Excel</a></p></div></div>'
    )
    assert render_table(Table("t2", "c", [], []), downloads=False) == (
        '<div class="table-block" id="t2"><div class="table-wrap"><table class="data-table" data-decimals="'
        '{&quot;count&quot;: 0, &quot;days&quot;: 0, &quot;effect&quot;: 2, &quot;p_value&quot;: 3, '
        '&quot;percent&quot;: 1, &quot;ratio&quot;: 2, &quot;statistic&quot;: 1}"><caption>c</caption>'
        '<tbody></tbody></table></div></div>'
    )


def test_page_layout_bytes() -> None:
    en = LanguageDocument("en", "Title", "Sub", "", [Section("a", "A", "", ["<p>x</p>"])], "Foot")
    nl = LanguageDocument("nl", "Titel", "Sub", "", [Section("a", "A", "", [])], "Voet")
    html = document([en, nl], initial="nl", synthetic=False, version="1")
    assert html.startswith('<!DOCTYPE html>\n<html lang="nl">\n<head>\n<meta charset="utf-8">\n')
    assert "<style>\n:root {" in html and "\n.lang-doc-nl { page: doc-nl; }\n\n.lang-radio {" in html
    assert "{ outline: 2px solid var(--ink); }\n</style>\n</head>\n" in html
    assert ('<body class="real">\n<input type="radio" class="lang-radio" name="report-language" id="lang-en" '
            'aria-label="English"><input type="radio" class="lang-radio" name="report-language" id="lang-nl" '
            'aria-label="Nederlands" checked>\n<nav class="lang-switch" aria-label="Language / Taal">'
            '<label for="lang-en" lang="en">English</label><label for="lang-nl" lang="nl">Nederlands</label></nav>\n'
            '<div class="lang-doc lang-doc-en" lang="en">\n\n<div class="page">\n') in html
    assert ('<main>\n<section class="report-section" id="a" aria-labelledby="h-a"><h2 id="h-a">1. A</h2>\n'
            '<p>x</p></section>\n</main>\n<footer>Foot</footer>\n</div>\n</div>\n'
            '<div class="lang-doc lang-doc-nl" lang="nl">') in html
    single = document([en], initial="en", synthetic=False, version="1")
    assert '<body class="real">\n\n<div class="lang-doc' in single and ".lang-radio" not in single
    assert "{ page: doc-en; }\n</style>" in single
