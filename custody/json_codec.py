"""JSON as Custos writes it (RFC 8785 canonical form) and reads it (strictly).

Every JSON that is signed or hashed (event leaves, the bodies of ``custos/*`` notes,
``bundle.json``) is written by :func:`canonical_json`, so two parties encoding the same value
get the same bytes. Every JSON read from outside is read by :func:`strict_loads`, which
refuses what parsers disagree on: duplicate member names, and numbers that are not integers.

Standard library only: this module is part of the offline verifier.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SAFE_INTEGER",
    "CanonicalJSONError",
    "StrictJSONError",
    "canonical_json",
    "canonical_loads",
    "json_depth",
    "strict_json",
    "strict_loads",
    "unique_members",
]

MAX_SAFE_INTEGER = 2**53 - 1
"""JCS writes numbers as IEEE doubles (RFC 8785 §3.2.2.3): integers beyond this would round."""


class CanonicalJSONError(ValueError):
    """A value RFC 8785 cannot encode: a non-string key, an integer beyond 2**53 - 1, a NaN or
    infinity, a lone surrogate, or a type JSON has not."""


class StrictJSONError(ValueError):
    """JSON that :func:`strict_loads` refuses: a duplicate name, a float, NaN or infinity."""


# -- writing: RFC 8785 -----------------------------------------------------------------------------

# Characters from U+D800 up: lone surrogates, and the range where UTF-16 order (JCS key order)
# and code-point order (Python's sort) can differ.
_HIGH = re.compile("[\ud800-\U0010ffff]")
# Made once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# The string form of RFC 8785 §3.2.2.2 is ECMAScript's JSON.stringify's, which is Python's
# with ensure_ascii off: the two-character escapes, \u00xx for other controls, all else as is.
_encode_string = json.encoder.encode_basestring


def canonical_json(value: Any, *, numbers_checked: bool = False) -> bytes:
    """The RFC 8785 (JCS) encoding of ``value``, UTF-8.

    Python's ``json`` with sorted keys gives the same bytes as JCS when no number is a float
    or beyond 2**53 and no character is at or above U+D800 (where code-point and UTF-16 order
    can differ); anything else takes the full encoder below. ``numbers_checked`` says the
    caller already knows every number is such an integer. Raises CanonicalJSONError for what
    JCS cannot encode. The tests check both paths against the ``rfc8785`` reference library.
    """
    if numbers_checked or _plain_numbers(value):
        text = _ENCODER.encode(value)
        if not _HIGH.search(text):
            return text.encode("utf-8")
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("a string holds a lone surrogate, which is not Unicode") from None


def _plain_numbers(value: Any) -> bool:
    """True when every number in ``value`` is an integer JCS writes exactly and it holds
    nothing but JSON values with string keys (anything else is for the full encoder to
    refuse, where ``json`` would write it some other way or raise its own error).

    Iterative, with exact type tests first: this runs once per appended event.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif isinstance(item, dict):
            if not all(type(name) is str for name in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not isinstance(item, int) or not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            return False
    return True


def _encode(value: Any, out: list[str]) -> None:
    """Append the JCS text of ``value`` to ``out`` (RFC 8785 §3.2)."""
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"{value} is beyond the integers JSON numbers hold exactly")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise CanonicalJSONError("an object's member names are strings")
        # §3.2.3: members sorted by their names' UTF-16 code units.
        out.append("{")
        for n, name in enumerate(
            sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        ):
            if n:
                out.append(",")
            out.append(_encode_string(name))
            out.append(":")
            _encode(value[name], out)
        out.append("}")
    else:
        raise CanonicalJSONError(f"a {type(value).__name__} is not a JSON value")


def _number(value: float) -> str:
    """ECMAScript's Number.prototype.toString of a double (ECMA-262 7.1.12.1, RFC 8785
    §3.2.2.3): the shortest digits that read back as ``value`` (Python's repr gives them)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise CanonicalJSONError(f"{value} is not a JSON number")
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _number(-value)
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int) and not sign
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    k = len(digits)
    n = exponent + len(digit_tuple)  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    power = f"e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return (digits if k == 1 else f"{digits[0]}.{digits[1:]}") + power


# -- reading ---------------------------------------------------------------------------------------


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing duplicate names (parsers disagree on which one wins).
    The common case, no duplicate, is built at C speed."""
    obj: dict[str, Any] = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    obj = {}
    for name, value in pairs:
        if name in obj:
            raise StrictJSONError(f"duplicate member {name!r}")
        obj[name] = value
    return obj


def _refuse_number(text: str) -> Any:
    raise StrictJSONError(f"{text} is not allowed (no floats, NaN or infinities)")


_DECODER = json.JSONDecoder(
    object_pairs_hook=unique_members,
    parse_float=_refuse_number,
    parse_constant=_refuse_number,
)


# Reads what is already known to be canonical: what canonical_json writes again to the same
# bytes has no duplicate name (it would have been written once) and no float.
_FAST_DECODER = json.JSONDecoder(parse_float=_refuse_number, parse_constant=_refuse_number)


def canonical_loads(data: bytes) -> Any:
    """The value of ``data`` if it is canonical JSON (what :func:`canonical_json` writes),
    read fast; None otherwise (read it with :func:`strict_loads` to learn what is wrong)."""
    try:
        value = _FAST_DECODER.decode(data.decode("utf-8"))
        same = canonical_json(value) == data
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if same else None


def strict_loads(text: str) -> Any:
    """Decode JSON text, refusing duplicate member names, floats, NaN and infinities.

    Raises ValueError (StrictJSONError, or json's JSONDecodeError for what is not JSON at
    all) or RecursionError for nesting deeper than Python's stack.
    """
    return _DECODER.decode(text)


MAX_JSON_DEPTH = 64
"""How deeply :func:`strict_json` lets arrays and objects nest (nothing Custos reads nests
beyond a few levels; Python's parser fails on about a thousand with a RecursionError)."""


def strict_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """:func:`strict_loads`, and no nesting deeper than ``max_depth``: for input from
    anyone (a request body), where a deep document must be a clear refusal, not a crash."""
    try:
        value = strict_loads(text)
    except RecursionError:
        raise StrictJSONError(f"JSON nested deeper than {max_depth} levels") from None
    if json_depth(value) > max_depth:
        raise StrictJSONError(f"JSON nested deeper than {max_depth} levels")
    return value


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (a scalar is 0). Iterative,
    so a value as deep as the parser allows is no deeper here."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in item)
    return deepest
