"""Exhibit bundles (``custos/exhibit/v3``): one ZIP that proves items' custody offline.

A bundle holds, for each item, its signed manifest, the exact leaf of every event, a C2SP
``tlog-proof`` of each against one checkpoint, a signed ``custos/head/v1`` statement of the
item's last event as of that checkpoint, and for a provider's response the order's document
and its commitment salt, events, proofs, head statement and the intake receipt; for an
exporter who may read them (custody.disclosure), each examination's findings and each note's
text with its salt; then the records of the principals and providers its events mention, with
the display names and salts that open their commitments; last, the custody report
(``report.html``) of the service's own verification of the bundle. The layout
is the contract of docs/bundle.md; ``custody.verify`` checks it with nothing but pinned keys.

The same ledger and options give the same bytes: one checkpoint is chosen deterministically
(the kept one covering the newest event, else one signed now), members are written in a fixed
order with a fixed time and compression, and every signature is Ed25519 (deterministic).
Reading the content is the one exception: it records ``evidence.accessed`` first, so the
access is itself inside the bundle, and each such export is a new fact of the ledger.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from custody import merkle
from custody.checkpoint import MalformedCheckpoint, open_checkpoint
from custody.disclosure import Disclosure, may_read_findings
from custody.errors import BadRequest, Conflict, IntegrityError
from custody.events import Actor, Subject
from custody.evidence import (
    EXPORT_ROLES,
    EvidenceRecord,
    EvidenceStore,
    require_role,
)
from custody.handling import Handling
from custody.interfaces import KeptCheckpoint, LedgerEntry, ObjectStore
from custody.ledger import Ledger
from custody.note import MalformedNote, NoteVerificationError, sign_note
from custody.order_desk import OrderStore
from custody.orders import check_released
from custody.principals import CommittedName
from custody.receipt import ReceiptBundle
from custody.verify.archive import PARTIES_FOLDER
from custody.verify.bundle import verify_bundle
from custody.verify.formats import (
    BUNDLE_FORMAT,
    KEY_FOLDER,
    KEY_SUBJECT,
    NO_EVENT_HASH,
    BundleIndex,
    ConsistencyProof,
    HeadStatement,
    Opening,
    TlogProof,
    member_index,
    parse_event,
    salt_member,
)
from custody.verify.parties import mentioned_principals
from custody.verify.report import render_report
from custody.verify.results import NOT_APPLICABLE, SKIPPED, ExhibitVerification

__all__ = [
    "EXPORT_PURPOSE",
    "EXPORT_ROLES",
    "ZIP64_THRESHOLD",
    "BundleSummary",
    "Bundles",
]

EXPORT_PURPOSE = "exhibit export"
# Content at least this large is written with ZIP64 headers (zipfile's force_zip64): a
# stored member's sizes must fit 32 bits otherwise. A module constant, so a test can lower it.
ZIP64_THRESHOLD = 2 * 1024**3
# ZIP's DOS time starts in 1980: the earliest time it can say, and the same for every member.
MEMBER_TIME = (1980, 1, 1, 0, 0, 0)
DEFLATE_LEVEL = 6
STORED_BELOW = 4096
"""Members smaller than this are stored, not deflated: on an event, a proof or a disclosed
text deflate saves a few hundred bytes and costs every reader an inflate (a verifier spent
half its time of reading a 10,000-event bundle inflating its 25,000 small members)."""
_UNIX = 3
_REGULAR_FILE = 0o100644 << 16
# Inclusion proofs are read for this many events at once (one batch of node reads each).
_PROOF_BATCH = 512

Progress = Callable[[int], object]
# What step (7) of the service's own check says of an item whose content is in the bundle:
# that check reads a copy without content (see Bundles.export).
CONTENT_LEFT_TO_THE_COURT = (
    f"{NOT_APPLICABLE}the content is verified by the court, with --artifact or the bundle's "
    "content member; the service's own check at export leaves it out (its digests were "
    "re-checked as it was read for the bundle)"
)


@dataclass(frozen=True)
class BundleSummary:
    """What an export wrote: the items, the checkpoint, the members in order, the
    ``evidence.accessed`` events it recorded (ledger indexes; none without content), and the
    service's own verification that ``report.html`` renders (None without a report)."""

    items: tuple[str, ...]
    checkpoint_size: int
    checkpoint_root: bytes
    members: tuple[str, ...]
    with_content: bool
    known_checkpoint: bool
    accessed: tuple[int, ...]
    verification: ExhibitVerification | None = field(default=None, compare=False)

    @property
    def verified(self) -> bool | None:
        """Whether the service's own check of the bundle passed; None without a report."""
        return None if self.verification is None else self.verification.ok

    def as_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "items": list(self.items),
            "checkpoint": {
                "size": self.checkpoint_size,
                "root": base64.b64encode(self.checkpoint_root).decode("ascii"),
            },
            "members": len(self.members),
            "with_content": self.with_content,
            "known_checkpoint": self.known_checkpoint,
            "accessed": list(self.accessed),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class _Known:
    note: bytes
    size: int


class _ExhibitZip:
    """A ZIP whose bytes depend only on what is added: fixed time, system, mode, level.

    With ``copy_without_content``, every member but ``content`` is also written to a copy in
    memory, for the service's own check of the bundle (:meth:`without_content`): the content,
    possibly many gigabytes, is never held or read again.
    """

    def __init__(self, out: BinaryIO, *, copy_without_content: bool = False) -> None:
        self._zip = zipfile.ZipFile(out, "w", allowZip64=True)
        self._copied = io.BytesIO()
        self._copy = (
            zipfile.ZipFile(self._copied, "w", allowZip64=True) if copy_without_content else None
        )
        self.names: list[str] = []

    @staticmethod
    def _info(name: str, compression: int) -> zipfile.ZipInfo:
        # One ZipInfo per archive: writing a member records its offset in the info.
        info = zipfile.ZipInfo(name, date_time=MEMBER_TIME)
        info.create_system = _UNIX
        info.external_attr = _REGULAR_FILE
        info.compress_type = compression
        return info

    def add(self, name: str, data: bytes, *, in_copy: bytes | None = None) -> None:
        """Add a member to the bundle, and to the copy (``in_copy`` where it differs):
        deflated, or stored if it is smaller than ``STORED_BELOW``."""
        self._write(self._zip, name, data)
        self.names.append(name)
        if self._copy is not None:
            self._write(self._copy, name, data if in_copy is None else in_copy)

    def _write(self, archive: zipfile.ZipFile, name: str, data: bytes) -> None:
        method = zipfile.ZIP_STORED if len(data) < STORED_BELOW else zipfile.ZIP_DEFLATED
        archive.writestr(self._info(name, method), data, compresslevel=DEFLATE_LEVEL)

    def add_stream(self, name: str, chunks: Iterable[bytes], size: int) -> None:
        """Store ``chunks`` (``size`` bytes in all) uncompressed, as docs/bundle.md fixes:
        the bytes a verifier hashes are then the bytes in the archive. Never copied."""
        info = self._info(name, zipfile.ZIP_STORED)
        with self._zip.open(info, "w", force_zip64=size >= ZIP64_THRESHOLD) as member:
            for chunk in chunks:
                member.write(chunk)
        self.names.append(name)

    def without_content(self) -> bytes:
        """Close the copy and return its bytes; later members go to the bundle alone."""
        assert self._copy is not None
        self._copy.close()
        self._copy = None
        return self._copied.getvalue()

    def close(self) -> None:
        self._zip.close()


@dataclass
class _Item:
    record: EvidenceRecord
    content: Iterator[bytes] | None = None


class Bundles:
    """Writes exhibit bundles from the ledger, the evidence and order records and the stores."""

    def __init__(
        self,
        ledger: Ledger,
        evidence: EvidenceStore,
        objects: ObjectStore,
        orders: OrderStore,
        *,
        handling: Handling,
        receipts: Callable[[EvidenceRecord, bytes], ReceiptBundle],
        manifests: Callable[[EvidenceRecord], bytes],
        names: Callable[[str], Sequence[CommittedName]],
        cosigned: Callable[[KeptCheckpoint], bytes] | None = None,
    ) -> None:
        self.ledger = ledger
        self.evidence = evidence
        self.objects = objects
        self.orders = orders
        # The intake's receipt, as returned at upload (``Intake.receipt``).
        self.receipts = receipts
        # The item's stored manifest, rebuilt if a crash lost it (``Intake.stored_manifest``).
        self.manifests = manifests
        # A principal's display names with their salts (``Principals.names``).
        self.names = names
        # The checkpoint's note with the witnesses' cosignatures kept for it, if any.
        self.cosigned = cosigned or (lambda kept: kept.note)
        # Findings and notes go only to those entitled to read them.
        self.disclosure = Disclosure(evidence)
        # Items are found, and content read, the one way they ever are: within the caller's
        # cases, access recorded, digests re-checked.
        self._handling = handling

    def export(
        self,
        evidence_ids: Sequence[str],
        out: BinaryIO,
        *,
        by: Actor,
        with_content: bool = False,
        known_checkpoint: bytes | None = None,
        report: bool = True,
        progress: Progress | None = None,
    ) -> BundleSummary:
        """Write the bundle of ``evidence_ids`` to ``out`` (seekable), with ``report.html``
        last unless ``report`` is false.

        The bundle discloses the items' findings and notes when ``by`` may read them
        (custody.disclosure), and says so in ``bundle.json`` (``disclosed``); it carries the
        records and names of the principals its events mention, and of their providers.

        Every refusal (Forbidden, NotFound, BadRequest, Conflict) comes before anything is
        recorded or written. With content, ``evidence.accessed`` is recorded for each digital
        item before the checkpoint is chosen, so the bundle proves its own export.

        The report is the service's own verification of the bundle, against every key of its
        ring, rendered as the custody report. It verifies a copy of the bundle made in memory
        as it is written, without ``content`` (and so with ``with_content`` false in its
        ``bundle.json``): the content is never held nor read twice, and step (7) of an item
        whose content is in the bundle says the court checks it.
        """
        # The export's many ledger reads share one connection.
        with self.ledger.store.reads_together():
            require_role(by.role, EXPORT_ROLES, "export exhibit bundles")
            items = [_Item(record) for record in self._records(evidence_ids, by)]
            known = self._check_known(known_checkpoint)
            accessed = self._open_contents(items, by) if with_content else []
            checkpoint = self._choose_checkpoint(items, known)
            # Every proof carries the same note as ``checkpoint``: the cosigned one, if cosigned.
            checkpoint = dataclasses.replace(checkpoint, note=self.cosigned(checkpoint))
            bundle = _ExhibitZip(out, copy_without_content=report)
            index = BundleIndex(
                origin=self.ledger.origin,
                checkpoint_size=checkpoint.size,
                checkpoint_root=base64.b64encode(checkpoint.root).decode("ascii"),
                items=tuple(item.record.id for item in items),
                known_checkpoint=known is not None,
                with_content=with_content,
                disclosed=may_read_findings(by.role),
            )
            bundle.add(
                "bundle.json",
                index.to_json(),
                in_copy=dataclasses.replace(index, with_content=False).to_json(),
            )
            bundle.add("checkpoint", checkpoint.note)
            key_history = [
                e for e in self.ledger.subject_entries(KEY_SUBJECT) if e.index < checkpoint.size
            ]
            bundle.add(KEY_FOLDER + "head", self._head(KEY_SUBJECT, key_history, checkpoint))
            self._write_subject(bundle, KEY_FOLDER, key_history, checkpoint)
            mentioned = mentioned_principals(parse_event(e.index, e.leaf) for e in key_history)
            for item in items:
                mentioned |= self._write_item(
                    bundle, item, checkpoint, progress, by, index.disclosed
                )
            self._write_parties(bundle, mentioned, checkpoint)
            if known is not None:
                bundle.add("known-checkpoint", known.note)
                bundle.add("consistency", self._consistency(known.size, checkpoint.size))
            verification = None
            if report:
                left_out = {item.record.id for item in items if item.content is not None}
                verification = self._own_check(bundle.without_content(), left_out)
                bundle.add("report.html", render_report(verification).encode("utf-8"))
            bundle.close()
            return BundleSummary(
                items=tuple(item.record.id for item in items),
                checkpoint_size=checkpoint.size,
                checkpoint_root=checkpoint.root,
                members=tuple(bundle.names),
                with_content=with_content,
                known_checkpoint=known is not None,
                accessed=tuple(accessed),
                verification=verification,
            )

    def _own_check(self, bundle: bytes, content_left_out: set[str]) -> ExhibitVerification:
        """Verify a bundle as a court that pinned every key of the ring would; for the items
        in ``content_left_out``, step (7) says that their content is the court's to check."""
        verification = verify_bundle(bundle, [key.verifier_key for key in self.ledger.keys.keys])
        steps = [
            dataclasses.replace(step, detail=CONTENT_LEFT_TO_THE_COURT)
            if step.number == 7
            and step.evidence_id in content_left_out
            and step.status == SKIPPED
            and step.detail.startswith(NOT_APPLICABLE)
            else step
            for step in verification.steps
        ]
        return dataclasses.replace(verification, steps=steps)

    # -- before anything is recorded ------------------------------------------------------

    def _records(self, evidence_ids: Sequence[str], by: Actor) -> list[EvidenceRecord]:
        if not evidence_ids:
            raise BadRequest("name at least one evidence item to export")
        return [self._handling.get(evidence_id, by) for evidence_id in sorted(set(evidence_ids))]

    def _check_known(self, note: bytes | None) -> _Known | None:
        """A known checkpoint must be one this log signed, of a size it has reached."""
        if note is None:
            return None
        try:
            known, _ = open_checkpoint(note, self.ledger.keys.verifiers, self.ledger.origin)
        except (MalformedNote, MalformedCheckpoint, NoteVerificationError) as exc:
            raise BadRequest(
                f"the known checkpoint is not a checkpoint of this log: {exc}"
            ) from None
        if known.size < 1:
            raise BadRequest("the known checkpoint is of the empty tree, which proves nothing")
        size = self.ledger.size()
        if known.size > size:
            raise BadRequest(
                f"the known checkpoint's tree size {known.size} is beyond the log's size {size}"
            )
        return _Known(bytes(note), known.size)

    def _open_contents(self, items: Sequence[_Item], by: Actor) -> list[int]:
        """Record ``evidence.accessed`` for each digital item and keep its byte stream for
        later; returns the events' indexes. An item whose content is gone is refused before
        any access is recorded; a physical item simply has none."""
        digital = [item for item in items if item.record.kind == "digital"]
        now = self.ledger.clock()
        for item in digital:
            record = item.record
            if not record.state.can_be_read(record.kind) or record.storage_key is None:
                raise Conflict(f"{record.id} has no content to export ({record.state.describe()})")
            # A provider's response the enforcing State's review withholds (EU Art 10(3)).
            order_id = record.description.get("order")
            stored = self.orders.get(order_id) if isinstance(order_id, str) else None
            check_released(stored.order if stored else None, now)
        accessed = []
        for item in digital:
            _, access, item.content = self._handling.read_content(
                item.record.id, by, EXPORT_PURPOSE
            )
            accessed.append(access.index)
        return accessed

    # -- the checkpoint and what it covers ------------------------------------------------

    def _subjects(self, record: EvidenceRecord) -> list[str]:
        subjects = [Subject("evidence", record.id).key]
        order_id = record.description.get("order")
        if isinstance(order_id, str):
            subjects.append(Subject("order", order_id).key)
        return subjects

    def _choose_checkpoint(self, items: Sequence[_Item], known: _Known | None) -> KeptCheckpoint:
        """The kept checkpoint covering every event of every subject (and the known
        checkpoint's tree), else one signed now: the same ledger gives the same one."""
        newest = known.size - 1 if known is not None else 0
        subjects = [s for item in items for s in self._subjects(item.record)]
        # Each subject read once here; what is written is read again once the checkpoint is
        # chosen (_entries), so that an event appended meanwhile goes in exactly when covered.
        entries_of = functools.cache(self.ledger.subject_entries)
        for subject in [*subjects, *self._party_subjects([KEY_SUBJECT, *subjects], entries_of)]:
            entries = entries_of(subject)
            if entries:
                newest = max(newest, entries[-1].index)
        return self.ledger.checkpoint(covering=newest)

    def _party_subjects(
        self, subjects: Sequence[str], entries_of: Callable[[str], list[LedgerEntry]]
    ) -> list[str]:
        """The subjects of the principals who acted in ``subjects``' events and of the
        providers they act for: the checkpoint covers their newest events too, so a display
        name given since the last act is the one the bundle shows."""
        mentioned: set[str] = set()
        for subject in subjects:
            entries = entries_of(subject)
            mentioned |= mentioned_principals(parse_event(e.index, e.leaf) for e in entries)
        parties = []
        for principal_id in sorted(mentioned):
            subject = Subject("principal", principal_id).key
            parties.append(subject)
            entries = entries_of(subject)
            first = parse_event(entries[0].index, entries[0].leaf) if entries else None
            provider = first.data.get("provider") if first is not None else None
            if isinstance(provider, str):
                parties.append(Subject("provider", provider).key)
        return parties

    def _entries(self, subject: str, checkpoint: KeptCheckpoint) -> list[LedgerEntry]:
        """The subject's events as of the checkpoint (read after it was chosen, so that an
        event appended meanwhile is included exactly when the checkpoint covers it)."""
        entries = [e for e in self.ledger.subject_entries(subject) if e.index < checkpoint.size]
        if not entries:
            raise IntegrityError(f"{subject} has no event in the tree of {checkpoint.size}")
        return entries

    def _proofs(self, entries: Sequence[LedgerEntry], size: int) -> Iterator[list[bytes]]:
        """RFC 9162 inclusion proofs of the entries in the tree of ``size``, read in batches;
        neighbouring events share most of their proof, so each range is read once a batch."""
        for start in range(0, len(entries), _PROOF_BATCH):
            batch = entries[start : start + _PROOF_BATCH]
            ranges = [merkle.inclusion_proof_ranges(e.index, size) for e in batch]
            distinct = list(dict.fromkeys(r for rs in ranges for r in rs))
            hashes = dict(
                zip(
                    distinct,
                    merkle.hashes_for_ranges(distinct, self.ledger.store.nodes),
                    strict=True,
                )
            )
            for rs in ranges:
                yield [hashes[r] for r in rs]

    def _consistency(self, size1: int, size2: int) -> bytes:
        hashes = tuple(self.ledger.consistency_proof(size1, size2))
        return ConsistencyProof(size1, size2, hashes).to_bytes()

    # -- writing ----------------------------------------------------------------------------

    def _write_subject(
        self,
        bundle: _ExhibitZip,
        folder: str,
        entries: Sequence[LedgerEntry],
        checkpoint: KeptCheckpoint,
    ) -> None:
        """A subject's ``events/`` and ``proofs/``, each in ledger order."""
        for entry in entries:
            bundle.add(f"{folder}events/{member_index(entry.index)}", entry.leaf)
        for entry, proof in zip(entries, self._proofs(entries, checkpoint.size), strict=True):
            bundle.add(
                f"{folder}proofs/{member_index(entry.index)}",
                TlogProof(entry.index, tuple(proof), checkpoint.note).to_bytes(),
            )

    def _head(
        self, subject: str, entries: Sequence[LedgerEntry], checkpoint: KeptCheckpoint
    ) -> bytes:
        """The signed ``custos/head/v1`` statement of a subject's event count and last event as
        of a checkpoint (docs/bundle.md, the head statement); a subject with none yet (the key
        history of a log that never rotated its key) has count 0, last index 0 and a zero hash."""
        head = HeadStatement(
            subject=subject,
            count=len(entries),
            last_index=entries[-1].index if entries else 0,
            last_leaf_hash=entries[-1].leaf_hash.hex() if entries else NO_EVENT_HASH,
            tree_size=checkpoint.size,
            checkpoint_root=base64.b64encode(checkpoint.root).decode("ascii"),
        )
        return sign_note(head.to_text(), [self.ledger.keys.current.signer])

    def _write_item(
        self,
        bundle: _ExhibitZip,
        item: _Item,
        checkpoint: KeptCheckpoint,
        progress: Progress | None,
        by: Actor,
        disclosed: bool,
    ) -> set[str]:
        """Write an item's members; returns the principals its (and its order's) events
        name as actors."""
        record = item.record
        folder = f"items/{record.id}/"
        subject = Subject("evidence", record.id).key
        bundle.add(folder + "manifest", self.manifests(record))
        entries = self._entries(subject, checkpoint)
        bundle.add(folder + "head", self._head(subject, entries, checkpoint))
        self._write_subject(bundle, folder, entries, checkpoint)
        mentioned = mentioned_principals(parse_event(e.index, e.leaf) for e in entries)
        if item.content is not None:
            assert record.size is not None
            bundle.add_stream(folder + "content", _counted(item.content, progress), record.size)
        order_id = record.description.get("order")
        if isinstance(order_id, str):
            stored = self.orders.get(order_id)
            if stored is None or stored.note is None:
                raise IntegrityError(f"{record.id} answers order {order_id}, which has no document")
            order_subject = Subject("order", order_id).key
            bundle.add(folder + "order/document", stored.note)
            bundle.add(folder + "order/salt", salt_member(stored.salt))
            order_entries = self._entries(order_subject, checkpoint)
            self._write_subject(bundle, folder + "order/", order_entries, checkpoint)
            bundle.add(folder + "order/head", self._head(order_subject, order_entries, checkpoint))
            leaf = self.ledger.entry(record.ledger_index)
            bundle.add(folder + "receipt.json", self.receipts(record, leaf).to_json())
            mentioned |= mentioned_principals(parse_event(e.index, e.leaf) for e in order_entries)
        if disclosed:
            covered = {entry.index for entry in entries}
            for text in self.disclosure.texts(record.id, by):
                if text.ledger_index in covered:
                    opening = Opening(text.salt, text.text.decode("utf-8"))
                    bundle.add(
                        f"{folder}disclosed/{member_index(text.ledger_index)}", opening.to_json()
                    )
        return mentioned

    def _write_parties(
        self, bundle: _ExhibitZip, mentioned: set[str], checkpoint: KeptCheckpoint
    ) -> None:
        """``parties/<id>/`` for each principal in ``mentioned`` and each provider one of them
        acts for, by id: its events, proofs and head as of the checkpoint, and for a
        principal the display name and salt that open each ``name_commitment``."""
        providers: set[str] = set()
        records: dict[str, tuple[str, list[LedgerEntry]]] = {}
        for principal_id in mentioned:
            subject = Subject("principal", principal_id).key
            entries = self._entries(subject, checkpoint)
            provider = parse_event(entries[0].index, entries[0].leaf).data.get("provider")
            if isinstance(provider, str):
                providers.add(provider)
            records[principal_id] = (subject, entries)
        for provider_id in providers:
            subject = Subject("provider", provider_id).key
            records[provider_id] = (subject, self._entries(subject, checkpoint))
        for party_id, (subject, entries) in sorted(records.items()):
            folder = f"{PARTIES_FOLDER}{party_id}/"
            bundle.add(folder + "head", self._head(subject, entries, checkpoint))
            self._write_subject(bundle, folder, entries, checkpoint)
            if party_id in mentioned:
                covered = {entry.index for entry in entries}
                for name in self.names(party_id):
                    if name.ledger_index in covered:
                        bundle.add(
                            f"{folder}names/{member_index(name.ledger_index)}",
                            Opening(name.salt, name.name).to_json(),
                        )


def _counted(chunks: Iterator[bytes], progress: Progress | None) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        if progress is not None:
            progress(len(chunk))
