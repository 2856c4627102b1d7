"""Events encode to RFC 8785 canonical JSON, byte-identical to the reference encoder."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.events import (
    MAX_EVENT_BYTES,
    Actor,
    Event,
    InvalidEvent,
    NewEvent,
    Subject,
    canonical_json,
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=12,
)
identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}", fullmatch=True)


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        type=draw(st.from_regex(r"[a-z][a-z_]{0,10}\.[a-z][a-z_]{0,10}", fullmatch=True)),
        time="2026-11-28T12:00:00.000000Z",
        actor=Actor(id=draw(identifiers), role=draw(st.sampled_from(["admin", "examiner"]))),
        subject=Subject(kind=draw(identifiers), id=draw(identifiers)),
        prev=draw(st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(bytes.hex))),
        data=draw(st.dictionaries(st.text(), json_values, max_size=6)),
    )


@settings(max_examples=200)
@given(events())
def test_event_encoding_is_byte_identical_to_rfc8785_reference(event: Event) -> None:
    assert event.encode() == rfc8785.dumps(event.as_json())


@settings(max_examples=200)
@given(json_values)
def test_canonical_json_equals_reference_on_any_value(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # the reference refuses some values (lone surrogates); so may we
        return
    assert canonical_json(value) == expected


@given(events())
def test_decode_returns_the_event_it_was_encoded_from(event: Event) -> None:
    assert Event.decode(event.encode()) == event


def test_keys_outside_the_basic_plane_sort_by_utf16_code_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FFFD; code-point order says after.
    value = {"\ufffd": 1, "\U0001f600": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index(
        "\ufffd".encode()
    )


def test_control_characters_are_escaped_as_jcs_requires() -> None:
    assert canonical_json({"a": '\x00\x1f\n"\\\x7f'}) == b'{"a":"\\u0000\\u001f\\n\\"\\\\\x7f"}'


def test_non_canonical_leaf_is_rejected_on_decode() -> None:
    event = Event("a.b", "t", Actor("x", "admin"), Subject("k", "i"), None, {"b": 1, "a": 2})
    spaced = json.dumps(event.as_json()).encode()
    with pytest.raises(InvalidEvent, match="canonical"):
        Event.decode(spaced)


@pytest.mark.parametrize(
    "leaf",
    [b"not json", b"[]", b'{"v":2}', b'{"v":1,"type":"a.b"}', b"\xff\xfe"],
)
def test_malformed_leaves_raise_invalid_event(leaf: bytes) -> None:
    with pytest.raises(InvalidEvent):
        Event.decode(leaf)


@pytest.mark.parametrize("data", [{"x": 1.5}, {"x": float("nan")}, {"x": 2**60}, {1: "a"}])
def test_event_data_refuses_values_json_cannot_carry_exactly(data: dict[Any, Any]) -> None:
    with pytest.raises(InvalidEvent):
        NewEvent("evidence.noted", Actor("a", "examiner"), Subject("evidence", "e1"), data)


@pytest.mark.parametrize("type_", ["ingested", "Evidence.ingested", "evidence.", "a.b.c"])
def test_event_type_must_be_subject_dot_verb(type_: str) -> None:
    with pytest.raises(InvalidEvent):
        NewEvent(type_, Actor("a", "examiner"), Subject("evidence", "e1"))


def test_an_event_larger_than_an_entry_bundle_can_frame_is_refused() -> None:
    event = Event(
        "evidence.noted",
        "t",
        Actor("a", "x"),
        Subject("e", "1"),
        None,
        {"t": "x" * MAX_EVENT_BYTES},
    )
    with pytest.raises(InvalidEvent, match="more than"):
        event.encode()
