"""custody.json_codec: the verifier's own RFC 8785 encoder gives the reference library's bytes on
every value, refuses what the reference refuses, and the strict decoder refuses what parsers
disagree on."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from custody.json_codec import (
    CanonicalJSONError,
    StrictJSONError,
    canonical_json,
    canonical_loads,
    strict_loads,
)

# Every kind of value the reference encodes: floats of every magnitude, integers at and beyond
# the exact range, text from every plane (lone surrogates included).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xD000, max_codepoint=0x10FFFF)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.text(), st.text(alphabet=st.characters(min_codepoint=0xD000))),
            children,
            max_size=5,
        ),
    ),
    max_leaves=16,
)


def reference(value: Any) -> bytes | None:
    """The reference library's encoding, or None when it refuses the value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return None


@settings(max_examples=200)
@given(values)
@example({"\ud800": 1})
@example([float("nan")])
@example(2**53)
def test_encoder_matches_the_reference_library_or_refuses_what_it_refuses(value: Any) -> None:
    expected = reference(value)
    if expected is None:
        with pytest.raises(CanonicalJSONError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=2**64 - 1).map(lambda n: struct.pack(">Q", n)))
def test_every_finite_double_is_written_as_ecmascript_writes_it(bits: bytes) -> None:
    (number,) = struct.unpack(">d", bits)
    if math.isfinite(number):
        assert canonical_json(number) == rfc8785.dumps(number)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        # RFC 8785 appendix B, "Number Serialization Samples".
        (0.0, b"0"),
        (-0.0, b"0"),
        (5e-324, b"5e-324"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
        (9007199254740992.0, b"9007199254740992"),
        (295147905179352830000.0, b"295147905179352830000"),
        (1e21, b"1e+21"),
        (1e-7, b"1e-7"),
        (0.000001, b"0.000001"),
        (333333333.3333333, b"333333333.3333333"),
    ],
)
def test_numbers_are_written_as_rfc_8785_appendix_b_says(number: float, text: bytes) -> None:
    assert canonical_json(number) == text


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FFFD; code-point order says after.
    assert canonical_json({"\ufffd": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufffd":1}'.encode()


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {"a": {1, 2}}, b"bytes", float("inf"), -(2**53), "\udc00"],
    ids=["int-key", "set", "bytes", "infinity", "below-exact-range", "lone-surrogate"],
)
def test_encoder_refuses_what_json_cannot_carry_exactly(value: Any) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a":1,"a":2}', "duplicate member 'a'"),
        ('{"a":{"b":1,"b":1}}', "duplicate member 'b'"),
        ('{"a":1.0}', "no floats"),
        ('{"a":1e3}', "no floats"),
        ("[NaN]", "no floats"),
        ("[-Infinity]", "no floats"),
    ],
)
def test_strict_decoder_refuses_what_parsers_disagree_on(text: str, reason: str) -> None:
    json.loads(text)  # what Python's own decoder lets through
    with pytest.raises(StrictJSONError, match=reason):
        strict_loads(text)


def test_strict_decoder_reads_plain_json() -> None:
    assert strict_loads('{"a":[1,-2,"x",true,null,{}]}') == {"a": [1, -2, "x", True, None, {}]}


integral = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=16,
)


@given(integral)
def test_canonical_loads_reads_back_what_the_encoder_writes(value: Any) -> None:
    assert canonical_loads(canonical_json(value)) == value


@pytest.mark.parametrize(
    "data",
    [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1,"a":1}', b'{"a":1.5}', b"\xff", b'{"a":1}\n'],
    ids=["unsorted", "spaced", "duplicate", "float", "not-utf8", "trailing-newline"],
)
def test_canonical_loads_gives_none_for_what_is_not_canonical(data: bytes) -> None:
    assert canonical_loads(data) is None
