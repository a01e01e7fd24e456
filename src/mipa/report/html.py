"""The HTML page: one self-contained file (inline CSS and SVG, no scripts, no external
assets), accessible (captions, scoped headers, alt text) and readable when printed.

One page holds the report in every language, each in its own ``<div lang=..>``; a radio
button per language (a CSS-only switch: no script, works offline) shows one of them, on
screen and in print. The languages' element ids are kept apart by a prefix.

The markup is in the jinja2 templates of ``mipa/report/templates`` (see
:mod:`mipa.templating`); this module prepares what they show. Fragments are handed back
as plain strings of HTML; where one goes into a template it is marked ``Markup`` here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from markupsafe import Markup

from mipa.report import labels
from mipa.report.figure_model import RenderedFigure, inline_svg
from mipa.report.table_model import Cell, Row, Table
from mipa.templating import macros, template

TEMPLATES = "mipa.report"  # the package whose templates/ folder holds the markup


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[str] = field(default_factory=list)  # rendered HTML fragments


def _blocks() -> Any:
    """The macros of blocks.html.j2 (cells, rows, links, lists, paragraphs, headings, contents)."""
    return macros(TEMPLATES, "blocks.html.j2")


# --- what the templates show --------------------------------------------------------------


@dataclass(frozen=True)
class _CellView:
    tag: str  # th | td
    attrs: list[tuple[str, str]]  # sorted by name
    text: str
    subtext: str
    planted: str


@dataclass(frozen=True)
class _RowView:
    classes: str
    cells: list[_CellView]


@dataclass(frozen=True)
class _Link:
    href: str
    label: str
    cls: str = ""


@dataclass(frozen=True)
class _TableView:
    name: str
    classes: str
    decimal_rule: str  # JSON
    caption: str
    header: list[_RowView]
    body: list[_RowView]
    notes: list[str]
    links: list[_Link]  # none: no download links


@dataclass(frozen=True)
class _FigureView:
    name: str
    svg: Markup
    caption: str
    notes: list[str]
    links: list[_Link]


@dataclass(frozen=True)
class _SectionView:
    id: str
    title: Markup  # numbered, escaped
    intro: str
    blocks: list[Markup]


@dataclass(frozen=True)
class _LanguageView:
    lang: str
    banner_text: str  # "" unless the data are synthetic
    title: str
    subtitle: str
    source_line: Markup
    contents: str
    toc: Markup
    sections: list[_SectionView]
    footer: str


@dataclass(frozen=True)
class _Language:
    code: str
    name: str


def _cell_view(cell: Cell) -> _CellView:
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
    return _CellView("th" if cell.header else "td", sorted((k, str(v)) for k, v in attrs.items()),
                     cell.text, cell.subtext, cell.planted)


def _row_view(row: Row) -> _RowView:
    return _RowView(" ".join(row.classes), [_cell_view(c) for c in row.cells])


def _links(stem: str, formats: Sequence[str], *, workbook: str = "") -> list[_Link]:
    links = [_Link(f"{stem}.{f}", f.upper()) for f in formats]
    if workbook:
        # the workbook holds every result table, one sheet each (sheet named in the notes sheet)
        links.append(_Link(workbook, "Excel", "workbook"))
    return links


# --- fragments ----------------------------------------------------------------------------


def render_cell(cell: Cell) -> str:
    return str(_blocks().cell(_cell_view(cell)))


def render_table(table: Table, *, downloads: bool = True) -> str:
    view = _TableView(
        name=table.name,
        classes=" ".join(("data-table", *table.classes)),
        decimal_rule=json.dumps(table.decimal_rule, sort_keys=True),
        caption=table.caption,
        header=[_row_view(r) for r in table.header],
        body=[_row_view(r) for r in table.body],
        notes=list(table.notes),
        links=_links(table.name, ("csv", "parquet"), workbook=table.workbook) if downloads else [],
    )
    return str(macros(TEMPLATES, "table.html.j2").table(view))


def _download_links(stem: str, formats: Sequence[str], *, workbook: str = "") -> str:
    return str(_blocks().download_links(_links(stem, formats, workbook=workbook)))


def render_figure(fig: RenderedFigure) -> str:
    spec = fig.spec
    view = _FigureView(
        name=spec.name,
        svg=Markup(inline_svg(fig.svg, prefix=spec.name, title=spec.alt)),  # escapes the title itself
        caption=spec.caption,
        notes=list(spec.notes),
        links=_links(spec.name, ("png", "svg")),
    )
    return str(macros(TEMPLATES, "figure.html.j2").figure(view))


def render_dl(items: Iterable[tuple[str, str]], cls: str = "facts") -> str:
    return str(_blocks().definition_list(list(items), cls))


def paragraph(text: str, cls: str | None = None) -> str:
    return str(_blocks().paragraph(text, cls))


def heading(level: int, text: str, id_: str | None = None) -> str:
    return str(_blocks().heading(level, text, id_))


LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands"}


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
            return heading(3, Markup(f"{sub.number} {sub.title_html}"), sub.id)  # the title is HTML already

        blocks.append([H3.sub(number, b) for b in sec.blocks])
        titles.append(f"{i}. {escape(sec.title)}")
        toc.append(entry)
    return titles, blocks, toc


def render_toc(toc: Sequence[TocEntry]) -> str:
    return str(_blocks().toc(list(toc)))


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
    titles, numbered_blocks, entries = number_sections(doc.sections)
    view = _LanguageView(
        lang=lang,
        banner_text=labels.text(lang, "synthetic_banner") if synthetic else "",
        title=doc.title,
        subtitle=doc.subtitle,
        source_line=Markup(doc.source_line),
        contents=labels.text(lang, "contents"),
        toc=Markup(render_toc(entries)),
        sections=[_SectionView(s.id, Markup(title_html), s.intro, [Markup(b) for b in blocks])
                  for s, title_html, blocks in zip(doc.sections, titles, numbered_blocks, strict=True)],
        footer=doc.footer,
    )
    return prefix_ids(str(macros(TEMPLATES, "language_document.html.j2").language_document(view)), id_prefix)


def document(docs: Sequence[LanguageDocument], *, initial: str, synthetic: bool, version: str) -> str:
    """The page: every language's document, the one of ``initial`` shown first. The first
    document keeps its ids; each other one prefixes them with its language (``nl-``)."""
    langs = [labels.check_lang(d.lang) for d in docs]
    if len(set(langs)) != len(langs) or initial not in langs:
        raise ValueError(f"languages {langs}: each at most once, and the initial one ({initial}) among them")
    # printed pages carry the banner (or title) of the language shown: one named page per language
    print_pages = [
        {"lang": d.lang,
         "top": (labels.text(d.lang, "synthetic_banner") if synthetic else d.title).replace('"', "'")}
        for d in docs
    ]
    # the language switch: a radio button per language shows its document (CSS only, no script)
    switch = [_Language(lang, LANGUAGE_NAMES.get(lang, lang)) for lang in langs] if len(docs) > 1 else []
    first = docs[0].lang
    bodies = [Markup(language_document(d, synthetic=synthetic, id_prefix="" if d.lang == first else f"{d.lang}-"))
              for d in docs]
    return template(TEMPLATES, "document.html.j2").render(
        lang=initial, version=version, title=next(d.title for d in docs if d.lang == initial),
        body_class="synthetic" if synthetic else "real", print_pages=print_pages, switch=switch, documents=bodies,
    )


def page(*, lang: str, title: str, subtitle: str, source_line: str, synthetic: bool, sections: Sequence[Section],
         footer: str, version: str) -> str:
    """The page in one language only."""
    doc = LanguageDocument(lang, title, subtitle, source_line, sections, footer)
    return document([doc], initial=labels.check_lang(lang), synthetic=synthetic, version=version)
