"""The HTML page: one self-contained file (inline CSS and SVG, no scripts, no external
assets), accessible (captions, scoped headers, alt text) and readable when printed.

One page holds the report in every language, each in its own ``<div lang=..>``; a radio
button per language (a CSS-only switch: no script, works offline) shows one of them, on
screen and in print. The languages' element ids are kept apart by a prefix."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from string import Template

from mipa.report import labels
from mipa.report.figures import RenderedFigure, inline_svg
from mipa.report.tables import Cell, Row, Table


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[str] = field(default_factory=list)  # rendered HTML fragments


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(str(v), quote=True)}"' for k, v in sorted(attrs.items()))


def render_cell(cell: Cell) -> str:
    tag = "th" if cell.header else "td"
    attrs = dict(cell.attrs)
    if cell.header and cell.scope:
        attrs["scope"] = cell.scope
    if cell.colspan > 1:
        attrs["colspan"] = str(cell.colspan)
    if cell.rowspan > 1:
        attrs["rowspan"] = str(cell.rowspan)
    if cell.classes:
        attrs["class"] = " ".join(cell.classes)
    if cell.number:
        attrs["data-number"] = cell.number
    sub = f'<br><span class="subtext">{escape(cell.subtext)}</span>' if cell.subtext else ""
    if cell.planted:
        sub += f'<br><span class="planted">{escape(cell.planted)}</span>'
    return f"<{tag}{_attrs(attrs)}>{escape(cell.text)}{sub}</{tag}>"


def _render_row(row: Row) -> str:
    cls = f' class="{" ".join(row.classes)}"' if row.classes else ""
    return f"<tr{cls}>" + "".join(render_cell(c) for c in row.cells) + "</tr>"


def render_table(table: Table, *, downloads: bool = True) -> str:
    cls = " ".join(("data-table", *table.classes))
    rule = escape(json.dumps(table.decimal_rule, sort_keys=True), quote=True)
    parts = [f'<div class="table-block" id="{escape(table.name)}">', '<div class="table-wrap">',
             f'<table class="{cls}" data-decimals="{rule}">', f"<caption>{escape(table.caption)}</caption>"]
    if table.header:
        parts.append("<thead>" + "".join(_render_row(r) for r in table.header) + "</thead>")
    parts.append("<tbody>" + "".join(_render_row(r) for r in table.body) + "</tbody>")
    parts.append("</table></div>")
    notes = list(table.notes)
    if notes or downloads:
        parts.append('<div class="table-notes">')
        if notes:
            parts.append("<ol>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ol>")
        if downloads:
            parts.append(_download_links(table.name, ("csv", "parquet"), workbook=table.workbook))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _download_links(stem: str, formats: Sequence[str], *, workbook: str = "") -> str:
    links = [f'<a href="{escape(stem)}.{f}">{f.upper()}</a>' for f in formats]
    if workbook:
        # the workbook holds every result table, one sheet each (sheet named in the notes sheet)
        links.append(f'<a class="workbook" href="{escape(workbook)}">Excel</a>')
    return f'<p class="downloads">{" · ".join(links)}</p>'


def render_figure(fig: RenderedFigure) -> str:
    spec = fig.spec
    svg = inline_svg(fig.svg, prefix=spec.name, title=spec.alt)
    notes = "".join(f'<span class="figure-note">{escape(n)}</span>' for n in spec.notes)
    return (
        f'<figure class="figure" id="{escape(spec.name)}">'
        f'<div class="figure-body">{svg}</div>'
        f'<figcaption><span class="figure-caption">{escape(spec.caption)}</span>{notes}'
        f"{_download_links(spec.name, ('png', 'svg'))}</figcaption></figure>"
    )


def render_dl(items: Iterable[tuple[str, str]], cls: str = "facts") -> str:
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f'<dl class="{escape(cls, quote=True)}">{body}</dl>'


def paragraph(text: str, cls: str | None = None) -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{escape(text)}</p>"


def heading(level: int, text: str, id_: str | None = None) -> str:
    i = f' id="{escape(id_)}"' if id_ else ""
    return f"<h{level}{i}>{escape(text)}</h{level}>"


CSS = """
:root { --ink: #1b1b1b; --muted: #595959; --rule: #9a9a9a; --light: #f3f5f7; --accent: #0072B2;
        --warn-bg: #fff1e6; --warn: #a23c00; }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       line-height: 1.45; font-size: 15px; }
body { margin: 0; background: #fff; }
.page { max-width: 1080px; margin: 0 auto; padding: 0 24px 48px; }
header.report-header { padding: 20px 0 8px; border-bottom: 2px solid var(--ink); }
h1 { font-size: 1.6rem; margin: 0.2em 0; }
h2 { font-size: 1.3rem; margin: 1.6em 0 0.4em; border-bottom: 1px solid var(--rule); padding-bottom: 0.15em; }
h3 { font-size: 1.08rem; margin: 1.4em 0 0.4em; }
.subtitle { color: var(--muted); margin: 0 0 0.6em; }
.source-line { margin: 0.3em 0; font-size: 0.93rem; }
.banner { background: var(--warn-bg); color: var(--warn); border: 2px solid var(--warn); font-weight: bold;
          text-align: center; padding: 6px 10px; margin: 0; }
.banner-top { position: sticky; top: 0; z-index: 10; }
[id] { scroll-margin-top: 3.5em; }  /* a link target lands below the sticky banner */
.section-banner { background: var(--warn-bg); color: var(--warn); border-left: 5px solid var(--warn);
                  font-weight: bold; padding: 4px 10px; margin: 0.4em 0 0.8em; font-size: 0.9rem; }
nav.toc > ol { columns: 2; column-gap: 32px; margin: 0.3em 0; list-style: none; padding-left: 0; }
nav.toc > ol > li { break-inside: avoid; margin-bottom: 0.25em; }
nav.toc ol ol { list-style: none; padding-left: 1.6em; margin: 0.1em 0 0.2em; font-size: 0.9rem; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
nav.toc .toc-number { display: inline-block; min-width: 2.2em; color: var(--muted); }
dl.first-screen { margin: 0.4em 0 0.2em; }
ul.conclusions { padding-left: 1.3em; }
ul.conclusions li { margin: 0.35em 0; }
table.data-table .planted { font-size: 0.82em; color: var(--warn); }
.figure-missing { border: 1px dashed var(--rule); padding: 8px 12px; color: var(--muted); margin: 1.2em 0; }
.warning-box { background: #fff8d6; border: 1px solid #b38f00; padding: 8px 12px; margin: 0.8em 0; }
.table-block { margin: 1.2em 0 1.6em; }
.table-wrap { overflow-x: auto; }
table.data-table { border-collapse: collapse; font-size: 0.88rem; min-width: 50%;
                   font-variant-numeric: tabular-nums; }
table.data-table caption { caption-side: top; text-align: left; font-weight: bold; padding: 0 0 6px;
                           font-size: 0.95rem; }
table.data-table th, table.data-table td { padding: 3px 9px; vertical-align: top; text-align: left; }
table.data-table thead th { border-top: 2px solid var(--ink); border-bottom: 1px solid var(--ink);
                            font-weight: bold; vertical-align: bottom; }
table.data-table tbody tr:last-child th, table.data-table tbody tr:last-child td { border-bottom: 2px solid var(--ink); }
table.data-table td.num { text-align: right; white-space: nowrap; }
table.data-table .subtext { font-size: 0.82em; color: #5a5a5a; }
table.data-table th[scope=row] { font-weight: normal; white-space: nowrap; }
table.data-table tr.group th { background: var(--light); font-weight: bold; font-style: italic; }
table.data-table tr.note-row td { font-size: 0.8rem; color: var(--warn); font-style: italic; white-space: normal; }
table.data-table tr.illustrative th, table.data-table tr.illustrative td { color: #3d3d3d; font-style: italic; }
table.data-table tr.n-row th, table.data-table tr.n-row td { border-top: 1px solid var(--ink); }
table.facts td:last-child { word-break: break-all; }
.table-notes { font-size: 0.8rem; color: var(--muted); }
.table-notes ol { margin: 0.3em 0; padding-left: 1.4em; }
.downloads { font-size: 0.8rem; margin: 0.2em 0; }
.downloads a { color: var(--accent); }
figure.figure { margin: 1.2em 0 1.8em; }
.figure-body svg.figure-svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.86rem; color: var(--ink); margin-top: 4px; }
figcaption .figure-caption { font-weight: bold; display: block; }
figcaption .figure-note { display: block; color: var(--muted); }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden;
                   clip: rect(0 0 0 0); white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; font-size: 0.9rem; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; word-break: break-word; }
footer { margin-top: 3em; font-size: 0.8rem; color: var(--muted); border-top: 1px solid var(--rule); padding-top: 6px; }
@media print {
  html { font-size: 10pt; line-height: 1.35; }
  body { background: #fff; color: #000; }
  .page { max-width: none; padding: 0; }
  .banner-top { position: static; }
  nav.toc { break-after: page; }
  nav.toc > ol { columns: 1; }
  h2, h3 { break-after: avoid; break-inside: avoid; }
  section.report-section { break-before: page; }
  figure.figure, dl.facts, ul.conclusions li { break-inside: avoid; }
  /* a long table may run over pages: its header row repeats, no row is split */
  .table-block { break-inside: auto; }
  table.data-table { font-size: 8pt; width: 100%; }
  table.data-table caption { break-after: avoid; }
  table.data-table thead { display: table-header-group; }
  table.data-table tr { break-inside: avoid; }
  .table-notes { break-before: avoid; }
  p, li { orphans: 3; widows: 3; }
  .figure-body svg.figure-svg { max-height: 235mm; }
  .table-wrap { overflow: visible; }
  /* wide tables wrap instead of running off the A4 page */
  table.data-table th, table.data-table td { white-space: normal !important; padding: 2px 4px;
                                             overflow-wrap: break-word; }
  .downloads { display: none; }
  a { color: inherit; text-decoration: none; }
  .banner, .section-banner, table.data-table tr.group th, table.data-table .planted {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

# printed pages carry the banner (or title) of the language shown: one named page per language
PRINT_PAGE = Template("""
@page { size: A4; margin: 18mm 13mm 16mm; }
@page doc-$lang { size: A4; margin: 18mm 13mm 16mm;
  @top-center { content: "$top"; color: #a23c00; font: bold 9pt "DejaVu Sans", sans-serif; }
  @bottom-right { content: counter(page); font: 8pt "DejaVu Sans", sans-serif; color: #595959; }
}
.lang-doc-$lang { page: doc-$lang; }
""")

# the language switch: the radio button of a language shows its document and marks its label
SWITCH_CSS = Template("""
#lang-$lang:checked ~ .lang-doc:not(.lang-doc-$lang) { display: none; }
#lang-$lang:checked ~ .lang-switch label[for=lang-$lang] { background: var(--accent); color: #fff; }
#lang-$lang:focus-visible ~ .lang-switch label[for=lang-$lang] { outline: 2px solid var(--ink); }
""")

SWITCH_BASE_CSS = """
.lang-radio { position: absolute; opacity: 0; width: 1px; height: 1px; margin: 0; }
.lang-switch { position: fixed; top: 6px; right: 10px; z-index: 20; display: flex; gap: 2px;
               background: #fff; border: 1px solid var(--accent); border-radius: 4px; padding: 2px;
               font-size: 0.85rem; }
.lang-switch label { cursor: pointer; padding: 2px 9px; border-radius: 3px; color: var(--accent); }
@media print { .lang-switch { display: none; } }
"""

LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands"}

DOCUMENT = Template("""<!DOCTYPE html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="mipa $version">
<title>$title</title>
<style>$css</style>
</head>
<body class="$body_class">
$switch
$documents
</body>
</html>
""")

LANG_DOC = Template("""<div class="lang-doc lang-doc-$lang" lang="$lang">
$banner
<div class="page">
<header class="report-header">
<h1>$title</h1>
<p class="subtitle">$subtitle</p>
$source_line
</header>
<nav class="toc" aria-labelledby="toc-title">
<h2 id="toc-title">$contents</h2>
<ol>$toc</ol>
</nav>
<main>
$sections
</main>
<footer>$footer</footer>
</div>
</div>""")


H3 = re.compile(r"<h3(?: id=\"[^\"]*\")?>(.*?)</h3>", re.S)


@dataclass
class TocEntry:
    id: str
    number: str
    title_html: str  # escaped
    children: list[TocEntry] = field(default_factory=list)


def number_sections(sections: Sequence[Section]) -> tuple[list[str], list[list[str]], list[TocEntry]]:
    """Number the sections 1..n in page order and their subsections (every ``<h3>`` of their
    blocks) n.1, n.2, ...; returns each section's numbered title (escaped HTML), its blocks
    with numbered ``<h3 id=...>`` and the table of contents."""
    titles, blocks, toc = [], [], []
    for i, sec in enumerate(sections, start=1):
        entry = TocEntry(sec.id, str(i), escape(sec.title))
        counter = 0

        def number(match: re.Match, entry: TocEntry = entry, i: int = i) -> str:
            nonlocal counter
            counter += 1
            sub = TocEntry(f"{entry.id}-{counter}", f"{i}.{counter}", match.group(1))
            entry.children.append(sub)
            return f'<h3 id="{escape(sub.id)}">{sub.number} {sub.title_html}</h3>'

        blocks.append([H3.sub(number, b) for b in sec.blocks])
        titles.append(f"{i}. {escape(sec.title)}")
        toc.append(entry)
    return titles, blocks, toc


def render_toc(toc: Sequence[TocEntry]) -> str:
    def item(e: TocEntry) -> str:
        sub = ("<ol>" + "".join(item(c) for c in e.children) + "</ol>") if e.children else ""
        return f'<li><a href="#{escape(e.id)}"><span class="toc-number">{e.number}{"" if "." in e.number else "."}</span> {e.title_html}</a>{sub}</li>'

    return "".join(item(e) for e in toc)


@dataclass
class LanguageDocument:
    """The report in one language."""
    lang: str
    title: str
    subtitle: str
    source_line: str  # HTML
    sections: Sequence[Section]
    footer: str


ID_ATTRS = re.compile(r'(\s(?:id|aria-labelledby)="|href="#|url\(#)')


def prefix_ids(html: str, prefix: str) -> str:
    """Every element id of a fragment and every in-page reference to one (``href="#..."``,
    ``url(#...)``, ``aria-labelledby``) with ``prefix`` in front, so that two languages'
    copies of the report can share a page."""
    return ID_ATTRS.sub(lambda m: m.group(1) + prefix, html) if prefix else html


def language_document(doc: LanguageDocument, *, synthetic: bool, id_prefix: str = "") -> str:
    lang = labels.check_lang(doc.lang)
    banner_text = labels.text(lang, "synthetic_banner")
    banner = (f'<div class="banner banner-top" role="note" aria-label="{escape(banner_text, quote=True)}">'
              f"{escape(banner_text)}</div>") if synthetic else ""
    titles, numbered_blocks, entries = number_sections(doc.sections)
    parts = []
    for s, title_html, blocks in zip(doc.sections, titles, numbered_blocks, strict=True):
        inner = [f'<h2 id="h-{escape(s.id)}">{title_html}</h2>']
        if synthetic:
            inner.append(f'<p class="section-banner" role="note">{escape(banner_text)}</p>')
        if s.intro:
            inner.append(paragraph(s.intro, "intro"))
        inner.extend(blocks)
        parts.append(f'<section class="report-section" id="{escape(s.id)}" aria-labelledby="h-{escape(s.id)}">'
                     + "\n".join(inner) + "</section>")
    html = LANG_DOC.substitute(
        lang=lang, banner=banner, title=escape(doc.title), subtitle=escape(doc.subtitle),
        source_line=doc.source_line, contents=escape(labels.text(lang, "contents")), toc=render_toc(entries),
        sections="\n".join(parts), footer=escape(doc.footer),
    )
    return prefix_ids(html, id_prefix)


def document(docs: Sequence[LanguageDocument], *, initial: str, synthetic: bool, version: str) -> str:
    """The page: every language's document, the one of ``initial`` shown first. The first
    document keeps its ids; each other one prefixes them with its language (``nl-``)."""
    langs = [labels.check_lang(d.lang) for d in docs]
    if len(set(langs)) != len(langs) or initial not in langs:
        raise ValueError(f"languages {langs}: each at most once, and the initial one ({initial}) among them")
    css = CSS
    for d in docs:
        top = labels.text(d.lang, "synthetic_banner") if synthetic else d.title
        css += PRINT_PAGE.substitute(lang=d.lang, top=top.replace('"', "'"))
    switch = ""
    if len(docs) > 1:
        css += SWITCH_BASE_CSS + "".join(SWITCH_CSS.substitute(lang=lang) for lang in langs)
        radios = "".join(
            f'<input type="radio" class="lang-radio" name="report-language" id="lang-{lang}" '
            f'aria-label="{LANGUAGE_NAMES.get(lang, lang)}"{" checked" if lang == initial else ""}>'
            for lang in langs)
        labels_html = "".join(f'<label for="lang-{lang}" lang="{lang}">{LANGUAGE_NAMES.get(lang, lang)}</label>'
                              for lang in langs)
        switch = radios + f'\n<nav class="lang-switch" aria-label="Language / Taal">{labels_html}</nav>'
    first = docs[0].lang
    bodies = [language_document(d, synthetic=synthetic, id_prefix="" if d.lang == first else f"{d.lang}-")
              for d in docs]
    title = next(d.title for d in docs if d.lang == initial)
    return DOCUMENT.substitute(
        lang=initial, version=escape(version), title=escape(title), css=css,
        body_class="synthetic" if synthetic else "real", switch=switch, documents="\n".join(bodies),
    )


def page(*, lang: str, title: str, subtitle: str, source_line: str, synthetic: bool, sections: Sequence[Section],
         footer: str, version: str) -> str:
    """The page in one language only."""
    doc = LanguageDocument(lang, title, subtitle, source_line, sections, footer)
    return document([doc], initial=labels.check_lang(lang), synthetic=synthetic, version=version)
