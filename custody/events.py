"""Custody events: the ledger's leaves, encoded as RFC 8785 (JCS) canonical JSON.

An event is ``{"v":1,"type":..,"time":..,"actor":{..},"subject":{..},"prev":..,"data":{..}}``
(ARCHITECTURE.md, Conventions: Events). The encoded bytes are the Merkle leaf, so the encoding
must be byte-exact: RFC 8785 fixes key order (UTF-16 code units), string escaping and number
form, and two parties encoding the same event get the same leaf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from custody.event_types import EVENT_VERSION
from custody.json_codec import MAX_SAFE_INTEGER, canonical_json, strict_loads

__all__ = [
    "EVENT_VERSION",
    "MAX_EVENT_BYTES",
    "MAX_SAFE_INTEGER",
    "SYSTEM",
    "Actor",
    "Event",
    "InvalidEvent",
    "NewEvent",
    "Subject",
    "canonical_json",
    "format_time",
    "indexed_event_json",
]

# An entry bundle prefixes each entry with a big-endian uint16 length (C2SP tlog-tiles), so
# one leaf can never be larger than this.
MAX_EVENT_BYTES = 0xFFFF

_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_HEX32 = re.compile(r"^[0-9a-f]{64}$")


class InvalidEvent(ValueError):
    """An event that cannot be encoded as a ledger leaf."""


@dataclass(frozen=True)
class Actor:
    """Who did it: a principal id and the role it acted in."""

    id: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "role": self.role}


SYSTEM = Actor(id="custos", role="system")


@dataclass(frozen=True)
class Subject:
    """What it was done to: ``kind`` (evidence, order, principal, key, ...) and its id."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if not _ID.match(self.kind) or not _ID.match(self.id):
            raise InvalidEvent(f"bad subject {self.kind!r}:{self.id!r}")

    @property
    def key(self) -> str:
        """The subject as one string, as the ledger indexes it."""
        return f"{self.kind}:{self.id}"

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id}


@dataclass(frozen=True)
class NewEvent:
    """An event before the ledger places it: the ledger adds ``time`` and ``prev``."""

    type: str
    actor: Actor
    subject: Subject
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _TYPE.match(self.type):
            raise InvalidEvent(f"event type {self.type!r} is not <subject>.<verb>")
        _check_json_value(self.data, "data")


@dataclass(frozen=True)
class Event:
    """A placed event, as decoded from (or encoded to) its leaf bytes."""

    type: str
    time: str
    actor: Actor
    subject: Subject
    prev: str | None
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "v": EVENT_VERSION,
            "type": self.type,
            "time": self.time,
            "actor": self.actor.as_json(),
            "subject": self.subject.as_json(),
            "prev": self.prev,
            "data": dict(self.data),
        }

    def encode(self, *, data_checked: bool = False) -> bytes:
        """The canonical leaf bytes (RFC 8785).

        ``data_checked`` says the data came from a ``NewEvent``, which refused floats and
        out-of-range integers when it was made; the other fields are strings.
        """
        leaf = canonical_json(self.as_json(), numbers_checked=data_checked)
        if len(leaf) > MAX_EVENT_BYTES:
            raise InvalidEvent(f"event is {len(leaf)} bytes, more than {MAX_EVENT_BYTES}")
        return leaf

    @classmethod
    def decode(cls, leaf: bytes) -> Event:
        """Parse leaf bytes; raises InvalidEvent unless they are a canonical v1 event."""
        try:
            obj = strict_loads(leaf.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidEvent(f"not JSON: {exc}") from None
        if not isinstance(obj, dict) or type(obj.get("v")) is not int or obj["v"] != EVENT_VERSION:
            raise InvalidEvent("not a v1 event object")
        if set(obj) != {"v", "type", "time", "actor", "subject", "prev", "data"}:
            raise InvalidEvent("unexpected fields")
        actor, subject = obj["actor"], obj["subject"]
        if not (
            _is_str_pair(actor, "id", "role")
            and _is_str_pair(subject, "kind", "id")
            and isinstance(obj["type"], str)
            and isinstance(obj["time"], str)
            and isinstance(obj["data"], dict)
        ):
            raise InvalidEvent("missing or mistyped field")
        prev = obj["prev"]
        if prev is not None and not (isinstance(prev, str) and _HEX32.match(prev)):
            raise InvalidEvent("prev is not a lowercase hex SHA-256")
        event = cls(
            type=obj["type"],
            time=obj["time"],
            actor=Actor(id=actor["id"], role=actor["role"]),
            subject=Subject(kind=subject["kind"], id=subject["id"]),
            prev=prev,
            data=obj["data"],
        )
        # The parsed object re-encoded must give the same bytes. Floats were refused while
        # parsing, but integers beyond 2**53 were not: the encoder refuses them, as it
        # refuses lone surrogates: what JCS cannot encode is not canonical.
        try:
            canonical = canonical_json(obj)
        except (ValueError, RecursionError) as exc:  # ValueError: CanonicalJSONError
            raise InvalidEvent(f"leaf is not in canonical (RFC 8785) form: {exc}") from None
        if canonical != leaf:
            raise InvalidEvent("leaf is not in canonical (RFC 8785) form")
        return event


def _is_str_pair(value: object, first: str, second: str) -> bool:
    """Report whether value is a JSON object of exactly two string members, first and second."""
    return (
        isinstance(value, dict)
        and set(value) == {first, second}
        and isinstance(value[first], str)
        and isinstance(value[second], str)
    )


def indexed_event_json(index: int, leaf: bytes) -> dict[str, Any]:
    """An event as the API and the CLI show it: its ledger index, then its fields."""
    return {"index": index, **Event.decode(leaf).as_json()}


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, as every event's ``time`` is written."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _check_json_value(value: Any, where: str) -> None:
    """Event data holds only what canonical JSON carries exactly: no floats, no NaN."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidEvent(f"{where}: key {k!r} is not a string")
            _check_json_value(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json_value(v, f"{where}[{i}]")
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InvalidEvent(f"{where}: integer out of the exact JSON range")
    else:
        raise InvalidEvent(f"{where}: {type(value).__name__} is not allowed in an event")
