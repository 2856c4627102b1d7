"""Tests of custody.verify.escaping: invisible characters in user text are shown as escapes,
by the one helper the order page, the custody report and templates use."""

from __future__ import annotations

import dataclasses

import jinja2
import pytest

from custody.verify.escaping import escape_html, visible
from custody.verify.report import render_report
from tests.custody.test_report import sample_verification

RLO = "\u202e"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"invoice{RLO}fdp.exe", "invoice\\u202efdp.exe"),
        ("a\u2066b\u2069c", "a\\u2066b\\u2069c"),  # isolates
        ("a\u200bb\ufeffc", "a\\u200bb\\ufeffc"),  # zero-width space, BOM
        ("\x1b[31mred", "\\x1b[31mred"),  # a terminal escape
        ("a\u2028b", "a\\u2028b"),  # line separator
        ("tag\U000e0041", "tag\\U000e0041"),  # tag characters hide text
        ("a\x00b", "a\\x00b"),
    ],
)
def test_invisible_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_visible_text_is_left_as_it_is() -> None:
    for text in ("Laptop HD-1", "Çağrı Şahin", "ידע عربي 中文", "two\nlines\tand a tab", "C:\\x"):
        assert visible(text) == text


def test_html_is_escaped_and_invisible_characters_shown() -> None:
    assert escape_html(f'<b>"{RLO}"</b>') == "&lt;b&gt;&quot;\\u202e&quot;&lt;/b&gt;"
    assert escape_html(None) == ""


def test_it_serves_as_a_jinja2_filter_without_escaping_twice() -> None:
    env = jinja2.Environment(autoescape=True)
    env.filters["visible"] = escape_html
    page = env.from_string("<p>{{ target | visible }}</p>").render(target=f"<x>{RLO}1")
    assert page == "<p>&lt;x&gt;\\u202e1</p>"


def test_the_custody_report_shows_a_bidi_override_as_an_escape() -> None:
    verification = sample_verification()
    item = dataclasses.replace(verification.items[0], description=f"phone of {RLO}nivek")
    html = render_report(dataclasses.replace(verification, items=[item]))
    assert RLO not in html
    assert "phone of \\u202enivek" in html
