"""The jinja2 environments the HTML pages are rendered with (the report page, the
data-quality summary page).

Each package keeps its templates in its own ``templates/`` folder (shipped as package
data, see ``pyproject.toml``) and loads them with :class:`jinja2.PackageLoader`, so a
non-editable install finds them as well as a checkout.

Output is byte-stable: a template renders exactly its own text (no block trimming, its
final newline kept), whitespace between tags is controlled by ``{%- -%}`` markers only.
``*.html.j2`` templates autoescape every value; values that are HTML already (rendered
fragments, inline SVG) are passed as :class:`markupsafe.Markup`, deliberately. Values are
escaped the way :func:`html.escape` escapes them (``'`` as ``&#x27;``, ``"`` as ``&quot;``),
as the pages always were. ``*.css.j2`` templates write text unescaped.
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, pass_eval_context, select_autoescape
from markupsafe import Markup


@pass_eval_context
def _escape(eval_ctx: Any, value: Any) -> Any:
    """Every ``{{ value }}`` of an autoescaping template: Markup as it is, anything else
    escaped with :func:`html.escape` (markupsafe's escape would write ``&#39;``/``&#34;``)."""
    if not eval_ctx.autoescape or hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


@cache
def environment(package: str) -> Environment:
    """The environment of ``package``'s ``templates/`` folder (one per package, cached)."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("css.j2",),
                                     default_for_string=True, default=True),
        finalize=_escape,
        undefined=StrictUndefined,  # a misspelt name fails the render instead of printing nothing
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
        auto_reload=False,
    )


def template(package: str, name: str) -> Template:
    """The template ``name`` of ``package``'s ``templates/`` folder."""
    return environment(package).get_template(name)


def macros(package: str, name: str) -> Any:
    """The macros of the template ``name`` as callables returning :class:`Markup`."""
    return template(package, name).module
