"""The custody acts a person records on an item, and the fields each one carries.

``ACT_FIELDS`` is the one table: the domain validates every act against it
(``check_act_fields``), the HTTP schema and the ``custos evidence event`` options are built
from it, so the API, the CLI and the domain cannot ask for different things. It is plain
data: an act's event type, then each field with whether it is required, its type, its
longest value, and a label for people. ``SEIZURE_FIELDS`` is the same for what registering a
physical item records of its seizure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from custody.errors import FieldErrors
from custody.events import format_time

TEXT = "text"
TIME = "time"
"""An RFC 3339 time with its offset, recorded in UTC (``2026-01-03T10:00:00Z``)."""
CHOICE = "choice"
"""One of the field's ``choices``."""


@dataclass(frozen=True)
class ActField:
    """One field of an act: ``name`` as the event data carries it, ``label`` for people."""

    name: str
    label: str
    required: bool = True
    type: str = TEXT
    max_length: int = 500
    choices: tuple[str, ...] = ()


def _field(
    name: str,
    label: str,
    *,
    optional: bool = False,
    max_length: int = 500,
    type: str = TEXT,
    choices: tuple[str, ...] = (),
) -> ActField:
    return ActField(
        name, label, required=not optional, max_length=max_length, type=type, choices=choices
    )


YES_NO = ("yes", "no")


# Act type -> its fields, in the order people are asked for them.
ACT_FIELDS: dict[str, tuple[ActField, ...]] = {
    # A transfer is pending until the custodian it names (a principal, by name) confirms
    # receipt in an event of its own (``evidence.received``).
    "evidence.transferred": (
        _field("from", "handed over by"),
        _field("to", "receiving custodian (principal name)", max_length=64),
        _field("location", "where"),
        _field("reason", "why"),
    ),
    "evidence.received": (
        _field("location", "where received"),
        _field("seal_intact", "seal intact on receipt (yes or no)", type=CHOICE, choices=YES_NO),
        _field("condition", "condition on receipt", optional=True),
    ),
    "evidence.checked_out": (
        _field("to", "checked out to"),
        _field("purpose", "purpose"),
        _field("authority", "authority (warrant, order)"),
    ),
    "evidence.checked_in": (
        _field("by", "returned by"),
        _field("condition", "condition on return"),
        _field("location", "where stored on return"),
    ),
    "evidence.examined": (
        _field("tool", "examination tool", max_length=200),
        _field("version", "tool version", max_length=100),
        _field("purpose", "purpose"),
        _field("location", "where examined"),
        _field("findings", "findings", max_length=1_000_000),
    ),
    "evidence.noted": (_field("text", "note", max_length=1_000_000),),
    "evidence.sealed": (
        _field("seal", "seal number", max_length=200),
        _field("reason", "why", optional=True),
    ),
    # The seal named must be the one the item carries (custody.evidence.CustodyState).
    "evidence.unsealed": (
        _field("reason", "why"),
        _field("seal", "number of the seal broken", max_length=200),
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

SEIZURE = "seizure"
"""The member of a physical item's intake that records its seizure."""
SEIZURE_FIELDS: tuple[ActField, ...] = (
    _field("at", "when seized", type=TIME),
    _field("location", "where seized"),
    _field("by", "seized by"),
    _field("authority", "under what authority (warrant, order)"),
    _field("packaging", "packaging (bag, box, seal numbers)"),
)
"""What registering a physical item records of its seizure (ISO/IEC 27037): the intake of a
physical item carries them as ``seizure``, its ``evidence.registered`` event records them."""


def check_act_fields(act: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked against the act's fields: FieldErrors names every field at fault
    (missing, empty, too long, of the wrong type, or unknown) at once."""
    return check_fields(ACT_FIELDS[act], data)


def check_seizure(data: object) -> dict[str, Any]:
    """A physical item's seizure record checked against ``SEIZURE_FIELDS``; FieldErrors
    names each field at fault as ``seizure.<field>``."""
    if not isinstance(data, Mapping):
        raise FieldErrors([(SEIZURE, "required: where, when and by whom the item was seized")])
    try:
        return check_fields(SEIZURE_FIELDS, data)
    except FieldErrors as exc:
        raise FieldErrors([(f"{SEIZURE}.{name}", why) for name, why in exc.errors]) from None


def check_fields(specs: tuple[ActField, ...], data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked against ``specs``, every field at fault named at once; a time is
    returned in UTC (RFC 3339, ``Z``)."""
    fields = {f.name: f for f in specs}
    problems: list[tuple[str, str]] = []
    checked = dict(data)
    for spec in fields.values():
        if spec.name not in data:
            if spec.required:
                problems.append((spec.name, f"required: {spec.label}"))
            continue
        reason = _check_value(spec, data[spec.name])
        if reason:
            problems.append((spec.name, reason))
        elif spec.type == TIME:
            checked[spec.name] = _utc(data[spec.name])
    problems += [(name, "unknown field") for name in sorted(set(data) - set(fields), key=str)]
    if problems:
        raise FieldErrors(problems)
    return checked


def _check_value(spec: ActField, value: Any) -> str | None:
    if not isinstance(value, str):
        return "not a string"
    if not value:
        return "empty"
    if len(value) > spec.max_length:
        return f"longer than {spec.max_length} characters"
    if "\x00" in value:
        return "holds a NUL character"
    if spec.type == CHOICE and value not in spec.choices:
        return f"one of {', '.join(spec.choices)}"
    if spec.type == TIME:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "not an RFC 3339 time"
        if parsed.utcoffset() is None:
            return "a time needs its offset (Z or +hh:mm)"
    return None


def _utc(value: str) -> str:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return format_time(parsed)
