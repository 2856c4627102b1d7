"""What verifying an exhibit bundle found: plain values, shared by the verifier and the report.

:func:`custody.verify.bundle.verify_bundle` returns an :class:`ExhibitVerification`; the
custody report (``custody.verify.report``) and ``--json`` read it. This module holds only the
values, so a reader of results never needs the verifier itself. Standard library and the
verifier's errors only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from custody.verify.errors import ExhibitVerificationFailed

__all__ = [
    "FAIL",
    "NOT_APPLICABLE",
    "NOT_RUN",
    "PASS",
    "SKIPPED",
    "ExhibitVerification",
    "ItemResult",
    "PartyResult",
    "StepResult",
    "TimelineEvent",
]

PASS = "pass"
FAIL = "fail"
SKIPPED = "skipped"
NOT_APPLICABLE = "not applicable: "
"""How a skipped step's detail starts when the step had nothing to check."""
NOT_RUN = "not run: "
"""How a skipped step's detail starts when a step it needs failed."""


@dataclass(frozen=True)
class StepResult:
    """The outcome of one numbered step of docs/bundle.md's checklist, for the bundle or for
    one item (``evidence_id``).

    ``status`` is ``"pass"``, ``"fail"`` or ``"skipped"``; a skipped step's ``detail`` says
    whether it did not apply (``not applicable: ...``) or was not run because a step it
    depends on failed (``not run: ...``). A failure names the event (its ledger index) it
    found at fault, where there is one.
    """

    number: int
    title: str
    status: str
    detail: str
    evidence_id: str | None = None
    event_index: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "evidence_id": self.evidence_id,
            "event_index": self.event_index,
        }


@dataclass(frozen=True)
class TimelineEvent:
    """One custody event as its leaf records it: ledger index, type, time, who, and data."""

    index: int
    type: str
    time: str
    actor_id: str
    actor_role: str
    data: dict[str, Any]
    disclosed: str | None = None
    """The finding's or note's text, once step (10) found it opens the event's commitment;
    None for any other event, and when the bundle does not disclose it."""

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "time": self.time,
            "actor": {"id": self.actor_id, "role": self.actor_role},
            "data": self.data,
            "disclosed": self.disclosed,
        }


@dataclass(frozen=True)
class PartyResult:
    """A principal (``kind`` ``principal``) or provider the bundle's events mention, with the
    name step (11) checked against the ledger: a principal's display name opens the
    commitment of its last ``principal.created`` or ``principal.named`` that carries one; a
    provider's name is in its ``provider.registered`` event. ``name`` is empty when the
    principal was never given one. A principal of a provider names it in ``provider``."""

    id: str
    kind: str
    name: str
    role: str = ""
    provider: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "role": self.role,
            "provider": self.provider,
        }


@dataclass(frozen=True)
class ItemResult:
    """One exhibit of the bundle: what its ingest event and manifest say, and its timeline.

    ``case``, ``exhibit``, ``size`` and ``digests`` come from the item's first event (the
    ledger's record of the intake), ``description`` from its manifest; each is empty when
    the bundle did not let the verifier read it. ``order_events`` is the timeline of the
    order a provider's response answers (``order_id``), empty for other items.
    """

    evidence_id: str
    case: str
    exhibit: str
    description: str
    size: int | None
    digests: dict[str, str]
    events: list[TimelineEvent]
    order_id: str | None
    order_events: list[TimelineEvent] = field(default_factory=list)
    kind: str = ""
    """``digital`` or ``physical``, from the first event; empty when unread."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """The signed manifest's fields (acquisition, authority, ...), once step (6) verified
    it; empty otherwise."""

    def as_json(self) -> dict[str, Any]:
        return {
            "evidence_id": self.evidence_id,
            "kind": self.kind,
            "case": self.case,
            "exhibit": self.exhibit,
            "description": self.description,
            "size": self.size,
            "digests": dict(self.digests),
            "events": [event.as_json() for event in self.events],
            "order_id": self.order_id,
            "order_events": [event.as_json() for event in self.order_events],
            "manifest": dict(self.manifest),
        }


@dataclass(frozen=True)
class ExhibitVerification:
    """Every step's result for the bundle and each item, and what the bundle was checked
    against. ``ok`` is true only when no step failed (each passed or did not apply).

    ``steps`` are in checklist order: bundle-wide steps (1, 2, 8) once, item steps once per
    item in the order of ``bundle.json``. ``checkpoint_root`` is base64, as in the
    checkpoint; ``key_fingerprints`` are the ``<name>+<key hash hex>`` of the pinned keys
    whose signatures verified; ``completeness_note`` is the plain statement of step 5.
    """

    ok: bool
    steps: list[StepResult]
    items: list[ItemResult]
    origin: str
    checkpoint_size: int
    checkpoint_root: str
    key_fingerprints: list[str]
    completeness_note: str
    parties: list[PartyResult] = field(default_factory=list)
    """The principals and providers whose names step (11) checked, by id; empty when it did
    not pass or the bundle carries no names."""

    @property
    def names(self) -> dict[str, PartyResult]:
        """The checked parties by id."""
        return {party.id: party for party in self.parties}

    @property
    def failed(self) -> list[StepResult]:
        """The steps that failed, in checklist order."""
        return [step for step in self.steps if step.status == FAIL]

    def raise_if_failed(self) -> None:
        """Raise ExhibitVerificationFailed (a VerificationError naming the first failed step)
        unless every step passed or did not apply: for a caller that must not go on with
        evidence that does not check out, rather than remember to read ``ok``."""
        if not self.ok:
            raise ExhibitVerificationFailed(self)

    def as_json(self) -> dict[str, Any]:
        """The verification as one JSON object (``python -m custody.verify --json``)."""
        return {
            "ok": self.ok,
            "origin": self.origin,
            "checkpoint": {"size": self.checkpoint_size, "root": self.checkpoint_root},
            "key_fingerprints": list(self.key_fingerprints),
            "completeness_note": self.completeness_note,
            "failed_steps": sorted({step.number for step in self.failed}),
            "steps": [step.as_json() for step in self.steps],
            "items": [item.as_json() for item in self.items],
            "parties": [party.as_json() for party in self.parties],
        }
