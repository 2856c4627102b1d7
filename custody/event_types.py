"""Every type of custody event the ledger records: its subject, its data and its label.

The one list of what exists: the writers name their types from it, the ledger's append
refuses a type it does not list, the custody report labels events with it, and the table of
docs/events.md is generated from it (a test keeps them equal). An event's ``data`` carries
at most the fields listed for its type; free text is never recorded, only its salted
commitment (``<field>_commitment``, custody.commitment).

Standard library only: this module is part of the offline verifier, whose report reads the
labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "DISCLOSED_FIELDS",
    "EVENT_TYPES",
    "EVENT_VERSION",
    "FIELD_WORDS",
    "NAMING_EVENTS",
    "EventType",
    "events_table",
    "field_words",
    "is_known",
]


EVENT_VERSION = 1
"""The ``v`` of every event: the version of the event format (ARCHITECTURE.md, Events)."""


@dataclass(frozen=True)
class EventType:
    """One type of event: ``<subject kind>.<verb>``, the kind of its subject, the data
    fields it may carry (in the order the documentation lists them) and a label for people."""

    type: str
    subject: str
    data: tuple[str, ...]
    label: str
    doc: str

    def __post_init__(self) -> None:
        kind, dot, verb = self.type.partition(".")
        if kind != self.subject or not dot or not verb:
            raise ValueError(f"event type {self.type!r} is not {self.subject}.<verb>")


_INTAKE = ("case", "exhibit", "kind", "parent", "manifest")
# What every order event records: the order, its new state and the commitment to its
# document text (custody.orders.order_event_data).
_ORDER = ("order", "state", "document_commitment")
# What an event that is the provider's receipt of an order adds: how, and the deadline.
_RECEIPT = ("received_via", "due")


def _types(*types: EventType) -> Mapping[str, EventType]:
    return MappingProxyType({t.type: t for t in types})


EVENT_TYPES: Mapping[str, EventType] = _types(
    # -- evidence ------------------------------------------------------------------------
    EventType(
        "evidence.ingested",
        "evidence",
        (*_INTAKE, "size", "digests", "storage"),
        "Ingested (digital copy received and hashed)",
        "a digital item's bytes were received, hashed and stored; its first event",
    ),
    EventType(
        "evidence.registered",
        "evidence",
        (*_INTAKE, "seizure"),
        "Registered (physical item)",
        "a physical item was registered; its first event",
    ),
    EventType(
        "evidence.transferred",
        "evidence",
        ("from", "to", "location", "reason"),
        "Transferred",
        "custody passed from one holder to another",
    ),
    EventType(
        "evidence.received",
        "evidence",
        ("location", "seal_intact", "condition"),
        "Receipt confirmed",
        "the custodian a transfer named confirmed receipt (until then the transfer is "
        "pending), noting whether the seal was intact",
    ),
    EventType(
        "evidence.checked_out",
        "evidence",
        ("to", "purpose", "authority"),
        "Checked out",
        "the item left the store",
    ),
    EventType(
        "evidence.checked_in",
        "evidence",
        ("by", "condition", "location"),
        "Checked in",
        "the item came back to the store",
    ),
    EventType(
        "evidence.examined",
        "evidence",
        ("tool", "version", "purpose", "location", "findings_commitment"),
        "Examined",
        "an examination, with a commitment to its findings",
    ),
    EventType(
        "evidence.noted",
        "evidence",
        ("text_commitment",),
        "Note added",
        "a note, recorded as a commitment to its text",
    ),
    EventType("evidence.sealed", "evidence", ("seal", "reason"), "Sealed", "the item was sealed"),
    EventType(
        "evidence.unsealed", "evidence", ("reason", "seal"), "Unsealed", "the item was unsealed"
    ),
    EventType(
        "evidence.hold_set",
        "evidence",
        ("authority", "reason"),
        "Legal hold set",
        "a legal hold: the item may not be disposed of",
    ),
    EventType(
        "evidence.hold_released",
        "evidence",
        ("authority", "reason"),
        "Legal hold released",
        "the legal hold was lifted",
    ),
    EventType(
        "evidence.disposed",
        "evidence",
        ("authority", "method", "content_deleted"),
        "Disposed of",
        "the item was disposed of (and its stored bytes deleted when nothing else uses them)",
    ),
    EventType(
        "evidence.accessed",
        "evidence",
        ("purpose", "digests"),
        "Content read",
        "the item's bytes were read: re-hashed first, the digests they re-hashed to recorded "
        "before they are served",
    ),
    EventType(
        "evidence.integrity_failed",
        "evidence",
        ("algorithms", "size", "expected_size"),
        "Integrity check failed",
        "the stored bytes no longer matched their digests when read",
    ),
    # -- cases ---------------------------------------------------------------------------
    EventType(
        "case.opened",
        "case",
        ("reference", "authority", "title_commitment"),
        "Case opened",
        "an examiner or an authority opened a case; its title is recorded as a commitment",
    ),
    EventType(
        "case.member_added",
        "case",
        ("principal", "role"),
        "Case member added",
        "a principal became a member of the case, in a role (lead or member)",
    ),
    EventType(
        "case.member_removed",
        "case",
        ("principal",),
        "Case member removed",
        "a principal stopped being a member: the case's items and orders are closed to it",
    ),
    EventType(
        "case.court_granted",
        "case",
        ("grant", "court", "proceeding", "ends_at", "exhibits"),
        "Court granted the case",
        "a court may read the case (or the exhibits named) for a proceeding, until an end",
    ),
    EventType(
        "case.grant_ended",
        "case",
        ("grant",),
        "Court's grant ended",
        "a court's grant was ended before its end date",
    ),
    EventType("case.closed", "case", (), "Case closed", "the case takes no new items"),
    # -- orders --------------------------------------------------------------------------
    EventType("order.drafted", "order", _ORDER, "Order drafted", "an authority drafted an order"),
    EventType("order.revised", "order", _ORDER, "Order revised", "the draft was revised"),
    EventType(
        "order.submitted",
        "order",
        _ORDER,
        "Order submitted for approval",
        "the draft was submitted for approval",
    ),
    EventType(
        "order.sent_back",
        "order",
        (*_ORDER, "reason_commitment"),
        "Order sent back to its drafter",
        "an approver sent the order back to draft, with its reason",
    ),
    EventType(
        "order.validated",
        "order",
        _ORDER,
        "Order validated",
        "a validator (judge, court or prosecutor) validated the order before its issue (EU Art 4)",
    ),
    EventType(
        "order.served",
        "order",
        (*_ORDER, "due"),
        "Order served on the provider",
        "an approver approved the order; its document is signed; its period runs from receipt",
    ),
    EventType(
        "order.received",
        "order",
        (*_ORDER, "notice_index", *_RECEIPT),
        "Order received by the provider (notice delivered)",
        "the provider's endpoint accepted the notice of service: its receipt starts the clock",
    ),
    EventType(
        "order.read",
        "order",
        (*_ORDER, *_RECEIPT),
        "Order read by the provider",
        "the provider first read the order (its receipt, when nothing came first)",
    ),
    EventType(
        "order.resent",
        "order",
        _ORDER,
        "Order's notice sent again",
        "the authority sent the notice of an order not yet received again",
    ),
    EventType(
        "order.adapted",
        "order",
        (*_ORDER, "revision"),
        "Order adapted (a new signed revision)",
        "the authority adapted the served order: a new signed revision supersedes the old",
    ),
    EventType(
        "order.acknowledged",
        "order",
        (*_ORDER, *_RECEIPT),
        "Order acknowledged by the provider",
        "the provider acknowledged the order",
    ),
    EventType(
        "order.objected",
        "order",
        (*_ORDER, "ground", *_RECEIPT, "details_commitment"),
        "Provider objected to the order",
        "the provider sent an Annex III notice; the clock keeps running",
    ),
    EventType(
        "order.objection_answered",
        "order",
        (*_ORDER, "due", "answer_commitment"),
        "Objection answered",
        "the authority answered the objection, perhaps with a new deadline",
    ),
    EventType(
        "order.clarification_requested",
        "order",
        (*_ORDER, *_RECEIPT, "question_commitment"),
        "Provider asked for clarification",
        "the provider asked a question; a deadline to produce is suspended",
    ),
    EventType(
        "order.clarification_answered",
        "order",
        (*_ORDER, "due", "answer_commitment"),
        "Clarification given",
        "the authority answered the question; the clock resumes",
    ),
    EventType(
        "order.extended",
        "order",
        (*_ORDER, "days", "due"),
        "Order deadline extended",
        "a preservation order's hold was extended",
    ),
    EventType(
        "order.production_request_confirmed",
        "order",
        (*_ORDER, "production_order"),
        "Production request confirmed (Annex V)",
        "the hold lasts until the production request that follows is answered",
    ),
    EventType(
        "order.enforcement_sought",
        "order",
        (*_ORDER, "reason_commitment"),
        "Enforcement sought",
        "the authority seeks enforcement of an overdue order (EU Art 16)",
    ),
    EventType(
        "order.enforcing_received",
        "order",
        (*_ORDER, "notice_index", "review_until"),
        "Order received by the enforcing authority (notice delivered)",
        "the enforcing State's endpoint accepted the order's notice: its time to raise a ground "
        "runs (EU Arts 8, 10, 12)",
    ),
    EventType(
        "order.enforcing_answered",
        "order",
        (
            *_ORDER,
            "answer",
            "ground",
            "given_at",
            "in_time",
            "restriction_owed",
            "evidence",
            "details_commitment",
        ),
        "Enforcing authority's answer recorded",
        "the issuing authority recorded the enforcing authority's answer: no ground, a ground "
        "for refusal or conditions (EU Arts 10, 12)",
    ),
    EventType(
        "order.data_restricted",
        "order",
        (*_ORDER, "measure", "details_commitment"),
        "Data deleted or restricted",
        "the issuing authority deleted or restricted data after the enforcing authority's "
        "ground (EU Art 10(4))",
    ),
    EventType(
        "order.user_informed",
        "order",
        (*_ORDER, "informed", "details_commitment"),
        "User information recorded",
        "the authority recorded that the person whose data were sought was informed of the "
        "order and the remedies, or why not yet (EU Art 13)",
    ),
    EventType(
        "order.preserved",
        "order",
        (*_ORDER, *_RECEIPT),
        "Provider confirmed preservation",
        "the provider confirmed it preserves the data",
    ),
    EventType(
        "order.produced",
        "order",
        _ORDER,
        "Provider produced the data",
        "the provider completed its production",
    ),
    EventType(
        "order.responded",
        "order",
        (*_ORDER, "evidence", *_RECEIPT),
        "Provider's response received",
        "the provider's response was received as an evidence item",
    ),
    EventType(
        "order.no_data",
        "order",
        (*_ORDER, *_RECEIPT),
        "Provider reported no data",
        "the provider holds no data the order asks for",
    ),
    EventType(
        "order.withdrawn",
        "order",
        (*_ORDER, "reason_commitment"),
        "Order withdrawn",
        "the authority withdrew the order",
    ),
    EventType(
        "order.expired",
        "order",
        _ORDER,
        "Order expired (its hold ended, or unanswered under earlier rules)",
        "a preservation order's hold ended (recorded by the deadline sweep)",
    ),
    EventType(
        "order.closed",
        "order",
        (*_ORDER, "reason_commitment"),
        "Order closed",
        "the authority closed the order",
    ),
    # -- the deployment ------------------------------------------------------------------
    EventType(
        "principal.created",
        "principal",
        ("role", "provider", "name_commitment"),
        "Principal created",
        "a principal (a person or a provider's account) was given a role and a token, and "
        "perhaps a display name (committed to, not recorded)",
    ),
    EventType(
        "principal.named",
        "principal",
        ("name_commitment",),
        "Principal named",
        "the principal was given a new display name (committed to, not recorded)",
    ),
    EventType(
        "principal.revoked",
        "principal",
        (),
        "Principal revoked",
        "the principal's token stopped working",
    ),
    EventType(
        "provider.registered",
        "provider",
        ("name", "jurisdiction"),
        "Provider registered",
        "a service provider was registered (its contacts are not recorded)",
    ),
    EventType(
        "key.rotated",
        "key",
        ("old", "new"),
        "Signing key rotated",
        "the service's signing key was replaced; both verifier keys are recorded",
    ),
)
"""Every event type, by name, in the order docs/events.md lists them."""


DISCLOSED_FIELDS: Mapping[str, str] = MappingProxyType(
    {"evidence.examined": "findings", "evidence.noted": "text"}
)
"""The acts whose free text a bundle for a court discloses, by type: the field whose text
the event commits to as ``<field>_commitment`` (custody.disclosure says who may read it)."""

NAMING_EVENTS = ("principal.created", "principal.named")
"""The events that may commit to a principal's display name (``name_commitment``); the
last of them that does is the name in force."""

FIELD_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "case": "Case",
        "exhibit": "Exhibit",
        "kind": "Kind",
        "parent": "Derived from",
        "manifest": "Manifest (SHA-256)",
        "size": "Size",
        "digests": "Digests",
        "storage": "Stored as",
        "from": "From",
        "to": "To",
        "location": "Location",
        "reason": "Reason",
        "purpose": "Purpose",
        "authority": "Authority (warrant, order)",
        "by": "Returned by",
        "condition": "Condition on return",
        "tool": "Examination tool",
        "version": "Tool version",
        "findings_commitment": "Findings (salted SHA-256 commitment)",
        "text_commitment": "Note (salted SHA-256 commitment)",
        "seal": "Seal",
        "method": "Method of disposal",
        "content_deleted": "Stored bytes deleted",
        "algorithms": "Digests that failed",
        "expected_size": "Size recorded",
        "order": "Order",
        "state": "Order state",
        "document_commitment": "Order document (salted SHA-256 commitment)",
        "due": "Due",
        "notice_index": "Notice (ledger index)",
        "received_via": "Received via",
        "revision": "Revision",
        "ground": "Ground",
        "details_commitment": "Details (salted SHA-256 commitment)",
        "answer_commitment": "Answer (salted SHA-256 commitment)",
        "question_commitment": "Question (salted SHA-256 commitment)",
        "days": "Days",
        "production_order": "Production order",
        "reason_commitment": "Reason (salted SHA-256 commitment)",
        "evidence": "Evidence item",
        "role": "Role",
        "provider": "Provider",
        "name_commitment": "Display name (salted SHA-256 commitment)",
        "name": "Name",
        "jurisdiction": "Jurisdiction",
        "old": "Old verifier key",
        "new": "New verifier key",
        "seizure": "Seizure (when, where, by whom, under what authority, packaging)",
        "seal_intact": "Seal intact on receipt",
        "reference": "Case reference",
        "title_commitment": "Case title (salted SHA-256 commitment)",
        "principal": "Person",
        "grant": "Grant",
        "court": "Court",
        "proceeding": "Proceeding",
        "ends_at": "Grant ends",
        "exhibits": "Exhibits granted",
        "review_until": "Enforcing State's review until",
        "answer": "Enforcing authority's answer",
        "given_at": "Answer given",
        "in_time": "Answer within the review period",
        "restriction_owed": "Data to be deleted or restricted",
        "measure": "Measure taken",
        "informed": "User informed",
    }
)
"""Words for every data field of every event type, as the custody report and the pages
show them (a test checks each field of :data:`EVENT_TYPES` has its words)."""


def field_words(name: str) -> str:
    """The words for an event's data field; a field no type lists reads as its name."""
    return FIELD_WORDS.get(name) or (name[:1].upper() + name[1:]).replace("_", " ")


def is_known(event_type: str) -> bool:
    """Whether the ledger records events of this type."""
    return event_type in EVENT_TYPES


def events_table(types: Iterable[EventType] | None = None) -> str:
    """The Markdown table of docs/events.md: one row per type."""
    rows = [
        "| Type | Subject | Data | Label | What it records |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in EVENT_TYPES.values() if types is None else types:
        data = ", ".join(f"`{name}`" for name in t.data) or "none"
        rows.append(f"| `{t.type}` | {t.subject} | {data} | {t.label} | {t.doc} |")
    return "\n".join(rows) + "\n"
