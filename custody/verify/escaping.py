"""The one escaping of user text rendered for people: pages, the custody report, its PDF.

Text a person typed (a target, a description, a file name) may hold characters that are not
shown but change what is shown: bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE turns
``gpj.exe`` around), zero-width characters, other format and control characters, line and
paragraph separators, unassigned and private-use code points, lone surrogates. Each of them
is replaced by a visible escape (``\\u202e``, ``\\x1b``, ``\\U000e0001``), so that what a person
reads is every character that is there, in the order it is stored. Tabs and line feeds stay:
multi-line text keeps its lines.

``escape_html`` is that, HTML-escaped; its result carries ``__html__``, so Jinja2 (and
MarkupSafe) take it as safe markup as it is: ``env.filters["visible"] = escape_html``.

Standard library only: the offline verifier's report uses it.
"""

from __future__ import annotations

import html
import unicodedata

__all__ = ["EscapedHTML", "escape_html", "visible"]

# General categories that are never shown as a glyph: control, format (the bidi controls and
# zero-width characters among them), surrogate, private use, unassigned, and the line and
# paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_KEPT = frozenset("\t\n")


def _escape(char: str) -> str:
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def visible(text: str) -> str:
    """``text`` with every invisible character written as a visible escape."""
    if text.isprintable():  # the common case, in one C loop
        return text
    out = []
    for char in text:
        if char not in _KEPT and unicodedata.category(char) in _INVISIBLE:
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


class EscapedHTML(str):
    """HTML that is safe to insert as it is (Jinja2 and MarkupSafe read ``__html__``)."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def escape_html(value: object) -> EscapedHTML:
    """``value`` (None is empty) as HTML text: invisible characters made visible, then
    ``& < > " '`` escaped. Markup (what has ``__html__``) is passed through as it is."""
    if isinstance(value, EscapedHTML):
        return value
    markup = getattr(value, "__html__", None)
    if callable(markup):
        return EscapedHTML(markup())
    return EscapedHTML(html.escape(visible("" if value is None else str(value)), quote=True))
