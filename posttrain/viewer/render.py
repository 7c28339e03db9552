"""Turn cells into safe HTML: markdown (markdown-it-py, raw HTML off), code highlighted by
Pygments on the server, everything else escaped. No text from a row ever reaches the page
unescaped: markdown-it escapes what it does not render and refuses ``javascript:`` links,
and Pygments escapes the code it colours.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

MAX_CHARS = 6000  # a cell longer than this is cut on the server; the row page shows it whole
# nowrap: we wrap in <pre class="hl"> ourselves, so markdown-it takes the block as it is
# (it wraps anything not starting with <pre in another <pre><code>).
_FORMATTER = HtmlFormatter(nowrap=True)


def pygments_css() -> str:
    """The stylesheet for highlighted code."""
    return str(_FORMATTER.get_style_defs(".hl"))


def code_html(code: str, language: str | None) -> str:
    """``code`` highlighted (a guess when no language is given), escaped."""
    try:
        lexer = get_lexer_by_name(language) if language else guess_lexer(code)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    return '<pre class="hl"><code>' + str(highlight(code, lexer, _FORMATTER)) + "</code></pre>\n"


def _fence(code: str, language: str, _attrs: str) -> str:
    return code_html(code, language.strip() or "text")


@functools.cache
def _markdown() -> MarkdownIt:
    # "js-default": CommonMark with raw HTML off (``html: False``); links are validated.
    md = MarkdownIt("js-default", {"highlight": _fence, "linkify": False, "typographer": False})
    return md.enable("table")


def cut(text: str, limit: int = MAX_CHARS) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    return (text, False) if len(text) <= limit else (text[:limit], True)


def markdown_html(text: str) -> Markup:
    """``text`` rendered as markdown, safe to put in a page."""
    return Markup(_markdown().render(text))


def raw_html(text: str) -> Markup:
    return Markup("<pre class='raw'>") + escape(text) + Markup("</pre>")


def json_text(value: Any) -> str:
    """A value as indented JSON (bytes as their length)."""
    return json.dumps(value, default=_default, ensure_ascii=False, indent=2)


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return str(value)


def args_html(arguments: str | None) -> Markup:
    """Tool-call arguments: pretty JSON when they parse, else the raw text."""
    if arguments is None:
        return Markup("")
    try:
        pretty = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, RecursionError):
        return raw_html(arguments)
    return Markup(code_html(pretty, "json"))
