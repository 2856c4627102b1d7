"""An item's custody timeline as people read it, for every desk that shows an item.

Each event of the item, in ledger order: when (in the reader's zone), who (by name, with
their role), what (the register's label) and each detail in the register's words
(``custody.event_types.FIELD_WORDS``). A finding or a note is shown as its text to the
readers ``custody.disclosure`` entitles to it; to anyone else as the commitment the ledger
holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custody.acts import SEIZURE_FIELDS, TIME
from custody.disclosure import may_read_findings
from custody.event_types import DISCLOSED_FIELDS, EVENT_TYPES, field_words
from custody.events import Actor, Event
from custody.evidence import EvidenceRecord
from custody.verify.report import event_label
from service.pages import display
from storage.deployment import Deployment

SEIZURE_WORDS = {f.name: f.label[:1].upper() + f.label[1:] for f in SEIZURE_FIELDS}
SEIZURE_TIMES = {f.name for f in SEIZURE_FIELDS if f.type == TIME}
# Event fields that name a principal by id (a transfer names its receiving custodian so).
PRINCIPAL_FIELDS = {("evidence.transferred", "to")}


@dataclass(frozen=True)
class Detail:
    words: str
    value: str
    lines: tuple[tuple[str, str], ...] = ()
    mono: bool = False


@dataclass(frozen=True)
class TimelineEntry:
    index: int
    time: str
    label: str
    who: str
    role: str
    details: tuple[Detail, ...]
    disclosed: str | None = None
    disclosed_words: str = ""


def custody_timeline(
    deployment: Deployment, record: EvidenceRecord, reader: Actor, zone: str
) -> list[TimelineEntry]:
    """The item's events as people read them; the caller found ``record`` within the
    reader's cases (``Handling.get``)."""
    entries = deployment.ledger.subject_entries(f"evidence:{record.id}")
    events = [(entry.index, Event.decode(entry.leaf)) for entry in entries]
    texts: dict[int, str] = {}
    if may_read_findings(reader.role):
        texts = {
            text.ledger_index: text.text.decode("utf-8")
            for text in deployment.disclosure.texts(record.id, reader)
        }
    wanted = {event.actor.id for _, event in events}
    wanted |= {
        str(event.data[field])
        for _, event in events
        for kind, field in PRINCIPAL_FIELDS
        if event.type == kind and field in event.data
    }
    names = deployment.principals.shown_names(wanted)
    return [_entry(index, event, names, texts.get(index), zone) for index, event in events]


def _entry(
    index: int, event: Event, names: Mapping[str, str], text: str | None, zone: str
) -> TimelineEntry:
    disclosed_field = DISCLOSED_FIELDS.get(event.type)
    details = []
    for name, value in in_register_order(event.type, event.data):
        if value is None or (text is not None and name == f"{disclosed_field}_commitment"):
            continue
        if (event.type, name) in PRINCIPAL_FIELDS:
            value = names.get(str(value), value)
        details.append(_detail(name, value, zone))
    return TimelineEntry(
        index=index,
        time=display.local_time(event.time, zone),
        label=event_label(event.type),
        who=names.get(event.actor.id, event.actor.id),
        role=event.actor.role,
        details=tuple(details),
        disclosed=text,
        disclosed_words="Findings" if disclosed_field == "findings" else "Note",
    )


def in_register_order(event_type: str, data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """An event's data in the order the register lists its fields (the ledger's canonical
    JSON sorts them by name); a field the register does not list comes last."""
    registered = EVENT_TYPES.get(event_type)
    order = list(registered.data) if registered else []
    return sorted(data.items(), key=lambda p: order.index(p[0]) if p[0] in order else len(order))


def seizure_rows(seizure: Mapping[str, Any], zone: str) -> list[tuple[str, str]]:
    """A seizure record's fields in words, in the order the act table asks for them."""
    return [
        (
            words,
            display.local_time(str(seizure[name]), zone)
            if name in SEIZURE_TIMES
            else str(seizure[name]),
        )
        for name, words in SEIZURE_WORDS.items()
        if name in seizure
    ]


def _detail(name: str, value: Any, zone: str) -> Detail:
    words = field_words(name)
    if isinstance(value, bool):
        return Detail(words, "yes" if value else "no")
    if name == "size" and isinstance(value, int):
        return Detail(words, display.size(value))
    if name == "seizure" and isinstance(value, Mapping):
        return Detail("Seizure", "", tuple(seizure_rows(value, zone)))
    if name == "digests" and isinstance(value, Mapping):
        return Detail(words, "", tuple((alg.upper(), str(v)) for alg, v in value.items()), True)
    if isinstance(value, Mapping):
        lines = tuple(
            (str(k).replace("_", " ").capitalize(), _plain(v))
            for k, v in value.items()
            if v is not None
        )
        return Detail(words, "", lines)
    text = _plain(value)
    return Detail(words, text, mono=len(text) >= 32 and all(c in "0123456789abcdef" for c in text))


def _plain(value: Any) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
