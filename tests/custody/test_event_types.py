"""custody.event_types: the one register of event types, and the documentation made from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from custody.event_types import EVENT_TYPES, EventType, events_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
TABLE = re.compile(
    r"<!-- events table: generated from custody.event_types.events_table\(\) -->\n"
    r"(?P<table>.*?)<!-- end of events table -->",
    re.S,
)


def test_docs_list_every_event_type_as_the_register_does() -> None:
    """docs/events.md holds the table events_table() makes: regenerate it when this fails."""
    found = TABLE.search(DOCS.read_text("utf-8"))
    assert found is not None, "docs/events.md lost its table markers"
    assert found["table"] == events_table()


def test_every_type_names_its_subject_kind_and_a_label() -> None:
    for name, registered in EVENT_TYPES.items():
        assert registered.type == name
        assert name.startswith(registered.subject + ".")
        assert registered.label and registered.doc
        assert len(set(registered.data)) == len(registered.data)


def test_a_type_of_another_subject_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"evidence\.<verb>"):
        EventType("order.noted", "evidence", (), "Noted", "a note")
