"""Who may read an item's findings and notes, and what a bundle for a court discloses of them.

An examination's findings and a note's text are never in the ledger: their events carry a
salted commitment, and the text and salt are kept beside the record (custody.handling). They
are disclosed, text and salt together, only to the readers the law entitles to them: the
examiners who work on the evidence and the courts it is put before. A service provider never
reads them, nor does anyone else; a bundle exported by anyone else carries the commitments
alone (docs/bundle.md, ``disclosed``). Whoever is shown a text and its salt can check it
against the event, so a disclosure proves itself (step 10 of the checklist).

Two things entitle a reader: the role (examiner or court, checked here) and the item, which
the caller has already found within the reader's cases (``Handling.get``: an item outside
them does not exist for the reader, as the bundle writer and the API find it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custody.errors import Forbidden
from custody.event_types import DISCLOSED_FIELDS
from custody.events import Actor, Event
from custody.evidence import CommittedText, EvidenceStore
from custody.ledger import Ledger

__all__ = [
    "FINDINGS_READERS",
    "DisclosedText",
    "Disclosure",
    "may_read_findings",
    "require_findings_reader",
]

FINDINGS_READERS = ("examiner", "court")
"""The roles entitled to read findings and notes; never ``provider``."""


def may_read_findings(role: str) -> bool:
    """Whether a principal of ``role`` may read the findings and notes of an item."""
    return role in FINDINGS_READERS


def require_findings_reader(by: Actor) -> None:
    """Forbidden unless ``by`` may read findings and notes."""
    if not may_read_findings(by.role):
        raise Forbidden(
            f"the {by.role} role may not read findings and notes; {', '.join(FINDINGS_READERS)} may"
        )


@dataclass(frozen=True)
class DisclosedText:
    """A finding or note, with what checks it: its event's index, type and commitment, and
    the salt that opens it."""

    ledger_index: int
    type: str
    field: str
    text: str
    salt: bytes
    commitment: str

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.ledger_index,
            "type": self.type,
            "field": self.field,
            "text": self.text,
            "salt": self.salt.hex(),
            "commitment": self.commitment,
        }


@dataclass(frozen=True)
class Disclosure:
    """Reads the committed texts of items for the readers entitled to them."""

    store: EvidenceStore
    ledger: Ledger | None = None

    def texts(self, evidence_id: str, by: Actor) -> Sequence[CommittedText]:
        """The item's findings and notes with their salts, in ledger order; Forbidden to a
        reader who may not read them."""
        require_findings_reader(by)
        return self.store.documents(evidence_id)

    def disclosed(self, evidence_id: str, by: Actor) -> list[DisclosedText]:
        """The item's findings and notes, each with its event's type and commitment."""
        assert self.ledger is not None, "reading events needs the ledger"
        texts = self.texts(evidence_id, by)
        events = {
            entry.index: Event.decode(entry.leaf)
            for entry in self.ledger.subject_entries(f"evidence:{evidence_id}")
        }
        found = []
        for text in texts:
            event = events[text.ledger_index]
            field = DISCLOSED_FIELDS[event.type]
            found.append(
                DisclosedText(
                    ledger_index=text.ledger_index,
                    type=event.type,
                    field=field,
                    text=text.text.decode("utf-8"),
                    salt=text.salt,
                    commitment=str(event.data[f"{field}_commitment"]),
                )
            )
        return found
