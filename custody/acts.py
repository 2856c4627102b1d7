"""The custody acts a person records on an item, and the fields each one carries.

``ACT_FIELDS`` is the one table: the domain validates every act against it
(``check_act_fields``), the HTTP schema and the ``custos evidence event`` options are built
from it, so the API, the CLI and the domain cannot ask for different things. It is plain
data: an act's event type, then each field with whether it is required, its type, its
longest value, and a label for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custody.errors import FieldErrors

TEXT = "text"


@dataclass(frozen=True)
class ActField:
    """One field of an act: ``name`` as the event data carries it, ``label`` for people."""

    name: str
    label: str
    required: bool = True
    type: str = TEXT
    max_length: int = 500


def _field(name: str, label: str, *, optional: bool = False, max_length: int = 500) -> ActField:
    return ActField(name, label, required=not optional, max_length=max_length)


# Act type -> its fields, in the order people are asked for them.
ACT_FIELDS: dict[str, tuple[ActField, ...]] = {
    "evidence.transferred": (
        _field("from", "handed over by"),
        _field("to", "received by"),
        _field("location", "where"),
        _field("reason", "why"),
    ),
    "evidence.checked_out": (
        _field("to", "checked out to"),
        _field("purpose", "purpose"),
        _field("authority", "authority (warrant, order)"),
    ),
    "evidence.checked_in": (
        _field("by", "returned by"),
        _field("condition", "condition on return"),
    ),
    "evidence.examined": (
        _field("tool", "examination tool", max_length=200),
        _field("version", "tool version", max_length=100),
        _field("purpose", "purpose"),
        _field("findings", "findings", max_length=1_000_000),
    ),
    "evidence.noted": (_field("text", "note", max_length=1_000_000),),
    "evidence.sealed": (
        _field("seal", "seal number", optional=True),
        _field("reason", "why", optional=True),
    ),
    "evidence.unsealed": (
        _field("reason", "why"),
        _field("seal", "seal broken", optional=True),
    ),
    "evidence.hold_set": (
        _field("authority", "authority (warrant, order)"),
        _field("reason", "why", optional=True),
    ),
    "evidence.hold_released": (
        _field("authority", "authority (warrant, order)"),
        _field("reason", "why", optional=True),
    ),
    "evidence.disposed": (
        _field("authority", "authority (warrant, order)"),
        _field("method", "method of disposal"),
    ),
}

ACTS = tuple(ACT_FIELDS)
"""The acts a principal records through ``POST /v1/evidence/{id}/events``, by event type."""


def check_act_fields(act: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked against the act's fields: FieldErrors names every field at fault
    (missing, empty, too long, of the wrong type, or unknown) at once."""
    fields = {f.name: f for f in ACT_FIELDS[act]}
    problems: list[tuple[str, str]] = []
    for spec in fields.values():
        if spec.name not in data:
            if spec.required:
                problems.append((spec.name, f"required: {spec.label}"))
            continue
        reason = _check_value(spec, data[spec.name])
        if reason:
            problems.append((spec.name, reason))
    problems += [(name, "unknown field") for name in sorted(set(data) - set(fields), key=str)]
    if problems:
        raise FieldErrors(problems)
    return dict(data)


def _check_value(spec: ActField, value: Any) -> str | None:
    if not isinstance(value, str):
        return "not a string"
    if not value:
        return "empty"
    if len(value) > spec.max_length:
        return f"longer than {spec.max_length} characters"
    if "\x00" in value:
        return "holds a NUL character"
    return None
