"""Steps (6), (7), (9) and (10) of the exhibit checklist, for one item: what its signed
manifest, its bytes, for a provider's response its order and receipt, and its disclosed
findings and notes say against its events.

The ingest event (``evidence.ingested``, or ``evidence.registered`` for a physical item) is
the item's first event, which steps (3) and (4) tie to the ledger; everything here is held to
it. A check returns a sentence saying what it established, raises CheckFailed naming the event
at fault, or NotApplicable saying why there was nothing to check.

Standard library and the verifier's own modules only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.checkpoint import Checkpoint
from custody.commitment import commitment
from custody.event_types import DISCLOSED_FIELDS
from custody.note import NoteSignature
from custody.note_types import MANIFEST_TYPE, ORDER_TYPE, json_note_body
from custody.verify.archive import Archive, ArchiveError, ItemMembers
from custody.verify.chain import (
    CheckFailed,
    NotApplicable,
    PinnedKeys,
    check_chain,
    check_head,
    check_inclusion,
    key_id,
    read_events,
)
from custody.verify.errors import VerificationError
from custody.verify.formats import LeafEvent, MalformedMember, parse_opening, parse_salt
from custody.verify.history import checkpoint_place
from custody.verify.receipt import verify_receipt_against
from custody.verify.results import ItemResult, TimelineEvent

__all__ = [
    "INTAKE_EVENTS",
    "Digested",
    "ItemState",
    "check_bytes",
    "check_disclosures",
    "check_manifest",
    "check_order",
    "digest",
    "read_file",
]

INTAKE_EVENTS = ("evidence.ingested", "evidence.registered")
ORDER_FIRST_EVENTS = ("order.drafted",)
ORDER_RESPONDED = "order.responded"
ORDER_SERVED = "order.served"
_CHUNK = 1024**2

Digested = tuple[int, dict[str, str]]
"""A byte stream's length and hex digest by algorithm."""


@dataclass
class ItemState:
    """What the verifier learned of one item, for the later steps and for its result."""

    evidence_id: str
    members: ItemMembers
    events: list[LeafEvent] = field(default_factory=list)
    ingest: LeafEvent | None = None
    """The first event, once it reads as the item's intake."""
    manifest: dict[str, Any] | None = None
    """The signed manifest's JSON, once step (6) opened it with a pinned key."""
    order_events: list[LeafEvent] = field(default_factory=list)
    completeness: str = ""
    disclosed: dict[int, str] = field(default_factory=dict)
    """The findings and notes step (10) found to open their events' commitments, by index."""

    @property
    def digests(self) -> dict[str, str]:
        """The digests recorded at intake."""
        digests = self.ingest.data.get("digests") if self.ingest else None
        return dict(digests) if isinstance(digests, dict) else {}

    def result(self) -> ItemResult:
        data = self.ingest.data if self.ingest else {}
        manifest = self.manifest or {}
        order = manifest.get("order")
        size = data.get("size")
        return ItemResult(
            evidence_id=self.evidence_id,
            case=_text(data.get("case")),
            exhibit=_text(data.get("exhibit")),
            description=_text(manifest.get("description")),
            size=size if type(size) is int else None,
            digests={k: v for k, v in self.digests.items() if isinstance(v, str)},
            events=[_timeline(event, self.disclosed.get(event.index)) for event in self.events],
            order_id=order if isinstance(order, str) else None,
            order_events=[_timeline(event) for event in self.order_events],
            kind=_text(data.get("kind")),
            manifest=dict(manifest),
        )


# (6): the manifest is signed by a pinned key and matches the ingest event


def check_manifest(keys: PinnedKeys, item: ItemState) -> str:
    """The manifest is a signed ``custos/manifest/v1`` note whose fields equal the ingest
    event's, and it is the very manifest the event commits to by SHA-256."""
    ingest, manifest_note = item.ingest, item.members.manifest
    assert ingest is not None and manifest_note is not None  # steps (1) and (4)
    note = keys.open(manifest_note, "manifest", ingest.index)
    manifest = _typed_json(note.text, MANIFEST_TYPE, "manifest")
    item.manifest = manifest
    data = ingest.data
    expected = {
        "id": item.evidence_id,
        "kind": data.get("kind"),
        "case": data.get("case"),
        "exhibit": data.get("exhibit"),
        "parent": data.get("parent"),
        "size": data.get("size"),
        "digests": data.get("digests", {}),
        # A physical item's seizure (where, when, by whom, authority, packaging), if recorded.
        "seizure": data.get("seizure"),
        "ledger_index": ingest.index,
        "received_at": ingest.time,
    }
    differ = [name for name, value in expected.items() if manifest.get(name) != value]
    if differ:
        name = differ[0]
        raise CheckFailed(
            f"the manifest's {', '.join(differ)} differ from the {ingest.type} event's: its "
            f"{name} is {manifest.get(name)!r}, the event's {expected[name]!r}",
            ingest.index,
        )
    committed, actual = data.get("manifest"), hashlib.sha256(manifest_note).hexdigest()
    if committed != actual:
        raise CheckFailed(
            f"the {ingest.type} event commits to a manifest of SHA-256 {committed}, but this "
            f"one's is {actual}: it is not the manifest signed at intake",
            ingest.index,
        )
    return (
        f"signed by {_signers(note.signatures)}; its id, kind, case, exhibit, size and digests "
        f"equal those of the {ingest.type} event at {ingest.index}, which commits to it"
    )


# (7): the artifact's bytes (given, or in the bundle) match every digest


def check_bytes(
    archive: Archive, item: ItemState, artifacts: Sequence[tuple[str, Digested]]
) -> str:
    """The court's artifacts (named and digested) and the bundle's ``content``, whichever are
    there, have the size and every digest recorded at intake; a physical item has none."""
    ingest = item.ingest
    assert ingest is not None  # step (4)
    content = item.members.content
    if ingest.type != "evidence.ingested":
        if content is not None or artifacts:
            raise CheckFailed(
                f"a {ingest.type} item is physical and has no bytes, yet "
                + ("the bundle holds content for it" if content is not None else "an artifact")
                + " was given as its bytes",
                ingest.index,
            )
        raise NotApplicable(f"a {ingest.type} item is physical and has no bytes")
    if content is None and archive.index.with_content:
        raise CheckFailed("bundle.json says with_content, but the item's content is missing")
    sources = list(artifacts)
    if content is not None:
        sources.append(("the bundle's content", digest(archive.stream(content), item.digests)))
    if not sources:
        raise NotApplicable(
            "no bytes to check (give the artifact with --artifact, or export the bundle with "
            "--with-content)"
        )
    size = ingest.data.get("size")
    for what, (length, digests) in sources:
        if length != size:
            raise CheckFailed(
                f"{what} is {length} bytes, but {size} were recorded at intake", ingest.index
            )
        for alg, recorded in sorted(item.digests.items()):
            if digests.get(alg) != recorded:
                raise CheckFailed(
                    f"{what} has {alg} {digests.get(alg)}, but {recorded} was recorded at "
                    "intake: these are not the bytes that were received",
                    ingest.index,
                )
    checked = ", ".join(sorted(item.digests))
    return f"{' and '.join(what for what, _ in sources)}: {size} bytes, {checked} as recorded"


def read_file(path: str | os.PathLike[str]) -> Iterable[bytes]:
    """Yield a file's bytes in chunks."""
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            yield chunk


def digest(chunks: Iterable[bytes], algorithms: Iterable[str]) -> Digested:
    """Stream bytes once through every digest; an algorithm hashlib lacks (or one of variable
    length, like SHAKE) gets no value, so it cannot match what was recorded."""
    hashers: dict[str, Any] = {}
    for alg in algorithms:
        try:
            hasher = hashlib.new(alg)
        except (ValueError, TypeError):
            continue
        if hasher.digest_size:
            hashers[alg] = hasher
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    except ArchiveError as exc:
        raise CheckFailed(str(exc)) from None
    return size, {alg: hasher.hexdigest() for alg, hasher in hashers.items()}


# (9): for a provider's response, the order document, its events and the receipt


def check_order(
    keys: PinnedKeys,
    archive: Archive,
    item: ItemState,
    checkpoint: Checkpoint,
) -> str:
    """For an item whose signed manifest names an order: the order's signed document, its
    events as in steps (3) to (5), each event from service on committing to that document,
    an ``order.responded`` naming the item, and the receipt (the receipt procedure, with the
    pinned keys of the bundle's log alone) for the item's intake."""
    members, manifest, ingest = item.members, item.manifest or {}, item.ingest
    assert ingest is not None  # step (4)
    order_id = manifest.get("order")
    if order_id is None:
        if members.order is not None or members.order_document or members.receipt:
            raise CheckFailed(
                "the bundle holds an order or a receipt for this item, but its signed manifest "
                "names no order"
            )
        raise NotApplicable("not a provider's response (its manifest names no order)")
    if not isinstance(order_id, str) or members.order is None or not members.order_document:
        raise CheckFailed(f"the item answers order {order_id}, but the bundle lacks the order")
    order, subject = members.order, f"order:{order_id}"
    events, unreadable = read_events(order.events)
    # Its place: the order.served recorded with its signature (else the last event).
    served_at = next(
        (event.index for event in events if event.type == ORDER_SERVED),
        max(order.events),
    )
    document_note = keys.open(members.order_document, "order document", served_at)
    document = _typed_json(document_note.text, ORDER_TYPE, "order document")
    if document.get("id") != order_id:
        raise CheckFailed(f"the order document is of order {document.get('id')!r}, not {order_id}")
    item.order_events = events
    checks: tuple[tuple[int, Callable[[], object]], ...] = (
        (3, lambda: check_inclusion(order.events, order.proofs, checkpoint, archive.checkpoint)),
        (4, lambda: check_chain(events, unreadable, subject, ORDER_FIRST_EVENTS)),
        (5, lambda: check_head(order.head or b"", keys, subject, events, checkpoint)),
    )
    for number, check in checks:
        try:
            check()
        except CheckFailed as exc:
            raise CheckFailed(
                f"order {order_id}, as in step {number}: {exc.message}", exc.event_index
            ) from None
    assert members.order_salt is not None  # step (1)
    committed = _check_commitments(members.order_salt, document_note.text, events, order_id)
    responded = [
        event
        for event in events
        if event.type == ORDER_RESPONDED and event.data.get("evidence") == item.evidence_id
    ]
    if not responded:
        raise CheckFailed(f"no {ORDER_RESPONDED} event of order {order_id} names this item")
    if members.receipt is None:
        raise CheckFailed("the bundle holds no receipt for this response")
    try:
        receipt = verify_receipt_against(members.receipt, keys.of_log(checkpoint.origin))
    except VerificationError as exc:
        raise CheckFailed(f"the receipt does not verify: {exc}") from None
    if (receipt.evidence_id, receipt.ledger_index, dict(receipt.digests)) != (
        item.evidence_id,
        ingest.index,
        item.digests,
    ):
        raise CheckFailed(
            f"the receipt is for {receipt.evidence_id} at index {receipt.ledger_index}, not for "
            f"this item's intake at {ingest.index} with its digests",
            ingest.index,
        )
    for signed_by, place, what in (
        (receipt.receipt_signed_by, ingest.index, "receipt"),
        (receipt.checkpoint_signed_by, checkpoint_place(receipt.tree_size), "receipt's checkpoint"),
    ):
        valid = [ident for ident in signed_by if _valid_ident(keys, ident, place)]
        if not valid:
            raise CheckFailed(keys.out_of_place(what, [_signature(i) for i in signed_by], place))
        keys.record_ids(valid)
    item.completeness += (
        f" Likewise, that no event of order {order_id} was left out after the last, at ledger "
        f"index {events[-1].index}, rests on the order's signed head statement."
    )
    return (
        f"order {order_id}: its document signed by {_signers(document_note.signatures)}; "
        f"{len(events)} events proven in the checkpoint and chained from the {events[0].type} "
        f"at {events[0].index} to {events[-1].index}, as its signed head statement says; "
        f"{committed}; the {ORDER_RESPONDED} at {responded[0].index} names this item; the "
        f"receipt for its intake at {receipt.ledger_index} verifies"
    )


def _check_commitments(
    salt_member: bytes, text: str, events: Sequence[LeafEvent], order_id: str
) -> str:
    """Every order event from ``order.served`` on carries ``document_commitment`` =
    SHA-256(salt || the signed document's text): the document in the bundle is the one the
    ledger recorded as served. Earlier events committed to the draft, not in the bundle."""
    try:
        salt = parse_salt(salt_member)
    except MalformedMember as exc:
        raise CheckFailed(f"order {order_id}'s order/salt is malformed: {exc}") from None
    committed = commitment(salt, text.encode("utf-8"))
    served = next((n for n, event in enumerate(events) if event.type == ORDER_SERVED), None)
    if served is None:
        raise CheckFailed(
            f"order {order_id} has no {ORDER_SERVED} event, yet a provider answered it",
            events[-1].index,
        )
    for event in events[served:]:
        recorded = event.data.get("document_commitment")
        if recorded != committed:
            raise CheckFailed(
                f"event {event.index} ({event.type}) of order {order_id} carries the "
                f"document_commitment {recorded}, but SHA-256 over the bundle's salt and the "
                f"signed order document is {committed}: the document or the salt is not the "
                "one the order was served with",
                event.index,
            )
    before = (
        f"; the {served} event{'s' if served != 1 else ''} before service committed to the "
        "draft's text, which the bundle does not hold, and are not checked against it"
        if served
        else ""
    )
    count = len(events) - served
    return (
        f"the {count} event{'s' if count != 1 else ''} from the {ORDER_SERVED} at "
        f"{events[served].index} on commit to this document (SHA-256 over order/salt and its "
        f"text){before}"
    )


# (10): the disclosed findings and notes open the commitments of their events


def check_disclosures(archive: Archive, item: ItemState) -> str:
    """Each examination's findings and each note's text the bundle discloses, with its salt,
    opens the commitment its event carries; a bundle that says it discloses must disclose
    every one of them, and nothing else."""
    index = archive.index
    committing = [event for event in item.events if event.type in DISCLOSED_FIELDS]
    disclosed = item.members.disclosed
    if index.version < 3:
        raise NotApplicable(
            f"a {index.format} bundle discloses no findings or notes: their events carry "
            "salted commitments only"
        )
    if not index.disclosed and committing:
        raise NotApplicable(
            "the bundle was exported without disclosure, by a reader who may not read "
            f"findings and notes: the item's {len(committing)} examination and note events "
            "show their salted commitments only"
        )
    at = {event.index: event for event in committing}
    for extra in sorted(set(disclosed) - set(at)):
        raise CheckFailed(
            f"items/{item.evidence_id}/disclosed/{extra:020d} names no examination or note of "
            "this item",
            extra,
        )
    if not committing:
        raise NotApplicable("the item has no examination findings or notes to disclose")
    opened: dict[int, str] = {}
    for event in committing:
        field_name = DISCLOSED_FIELDS[event.type]
        what = "findings" if field_name == "findings" else "text"
        member = disclosed.get(event.index)
        if member is None:
            raise CheckFailed(
                f"the {what} of event {event.index} ({event.type}) are not disclosed, though "
                "bundle.json says the bundle discloses every finding and note",
                event.index,
            )
        try:
            opening = parse_opening(member)
        except MalformedMember as exc:
            raise CheckFailed(
                f"the disclosed {what} of event {event.index} are malformed: {exc}", event.index
            ) from None
        recorded = event.data.get(f"{field_name}_commitment")
        computed = commitment(opening.salt, opening.text.encode("utf-8"))
        if recorded != computed:
            raise CheckFailed(
                f"the disclosed {what} of event {event.index} ({event.type}) do not match its "
                f"{field_name}_commitment: SHA-256 over the disclosed salt and text is "
                f"{computed}, but the event commits to {recorded}: the text or the salt is not "
                "the one recorded",
                event.index,
            )
        opened[event.index] = opening.text
    item.disclosed = opened
    return (
        f"{_count(len(opened), 'finding or note', 'findings and notes')} disclosed (events "
        f"{', '.join(str(i) for i in opened)}), each opening the salted commitment its event "
        "carries"
    )


def _count(n: int, one: str, many: str) -> str:
    return f"the one {one}" if n == 1 else f"{n} {many}"


def _typed_json(text: str, note_type: str, what: str) -> dict[str, Any]:
    """The JSON object of a ``<type line>\\n<JSON>\\n`` note text."""
    line = json_note_body(text, note_type)
    if line is None:
        raise CheckFailed(f"a pinned key signed it, but the {what} is not a {note_type} note")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise CheckFailed(f"the {what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CheckFailed(f"the {what} is not a JSON object")
    return obj


def _valid_ident(keys: PinnedKeys, ident: str, place: int) -> bool:
    name, _, key_hash = ident.rpartition("+")
    return keys.valid(name, bytes.fromhex(key_hash), place)


def _signature(ident: str) -> NoteSignature:
    """A stand-in signature line naming a key (``<name>+<hash hex>``), for the messages."""
    name, _, key_hash = ident.rpartition("+")
    return NoteSignature(name=name, key_hash=bytes.fromhex(key_hash), signature=bytes(64))


def _signers(signatures: Iterable[NoteSignature]) -> str:
    return ", ".join(key_id(sig) for sig in signatures)


def _timeline(event: LeafEvent, disclosed: str | None = None) -> TimelineEvent:
    return TimelineEvent(
        index=event.index,
        type=event.type,
        time=event.time,
        actor_id=event.actor_id,
        actor_role=event.actor_role,
        data=dict(event.data),
        disclosed=disclosed,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
