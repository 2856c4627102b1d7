"""Evidence intake: upload sessions, streaming ingest, physical registration, receipts.

The server computes every digest itself while the bytes stream into a staging area of the
object store. A declared digest that differs, an over-size or truncated body, or any failure
leaves no record, no event and no visible object. Only after the blob is committed and the
record and its ``evidence.ingested`` event are durable in one transaction does the caller get
its record, ledger index and receipt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from custody import merkle
from custody.acts import SEIZURE, check_seizure
from custody.cases import Cases
from custody.digests import DigestPipeline, check_expected
from custody.errors import (
    BadRequest,
    Conflict,
    FieldErrors,
    IntegrityError,
    NotFound,
    ObjectNotFound,
    StorageError,
    TooLarge,
)
from custody.events import Actor, Event, NewEvent, Subject, format_time
from custody.evidence import (
    INTAKE_ROLES,
    READ_ROLES,
    EvidenceRecord,
    EvidenceStore,
    UploadSession,
    blob_key,
    check_intake,
    is_evidence_id,
    manifest_key,
    manifest_text,
    new_evidence_id,
    require_role,
)
from custody.interfaces import ObjectStore, StagedUpload
from custody.ledger import Appended, Ledger, Recorder
from custody.note import sign_note
from custody.receipt import Receipt, ReceiptBundle, sign_receipt

# Who sends responses to orders, and so may re-fetch the receipts of its own.
RESPONDING_ROLES = ("provider",)
# Intake fields that are columns of the record rather than part of its description.
_RECORD_FIELDS = ("case", "exhibit", "kind", "parent")


@dataclass(frozen=True)
class Ingested:
    """What the uploader gets: the record, its ledger index and the receipt bundle."""

    record: EvidenceRecord
    ledger_index: int
    receipt: ReceiptBundle


class _Claim:
    """An upload session's claim as one receiver holds it: the moment it last marked the
    session as receiving, which is also how the store tells its claim from another's."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    @property
    def mark(self) -> str:
        return format_time(self.at)


@dataclass(frozen=True)
class IntakeSettings:
    digests: tuple[str, ...] = ("sha256",)
    max_upload_bytes: int = 64 * 1024**3
    session_ttl: timedelta = timedelta(hours=24)
    # A session whose receiver went silent this long ago (it marks its progress every quarter
    # of it) may be claimed again: a server killed mid-upload leaves its session so.
    stale_upload: timedelta = timedelta(minutes=2)


class Intake:
    """Opens upload sessions, receives bytes, registers physical items, issues receipts."""

    def __init__(
        self,
        store: EvidenceStore,
        ledger: Ledger,
        objects: ObjectStore,
        settings: IntakeSettings,
        cases: Cases,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.objects = objects
        self.settings = settings
        self.cases = cases

    def _check_case(self, metadata: Mapping[str, Any], by: Actor) -> None:
        """An item goes into an open case its taker is a member of; a provider's response
        goes into its order's case, which the order desk chose."""
        if by.role not in RESPONDING_ROLES:
            self.cases.case_for_work(by, metadata["case"])
        parent = metadata.get("parent")
        if parent is not None:
            found = self.store.get(parent)
            if found is None or found.case != metadata["case"]:
                raise BadRequest(f"parent exhibit {parent} does not exist in {metadata['case']}")

    def open_session(
        self, metadata: Mapping[str, Any], by: Actor, *, roles: Sequence[str] = INTAKE_ROLES
    ) -> UploadSession:
        """Announce a digital item; nothing is recorded until its bytes arrive.

        ``roles`` may take it in: examiners, or providers answering an order (the order desk).
        """
        require_role(by.role, roles, "take in evidence")
        check_intake(metadata)
        if metadata["kind"] != "digital":
            raise BadRequest("only a digital item has content to upload")
        if SEIZURE in metadata:
            raise FieldErrors([(SEIZURE, "a digital item records its acquisition instead")])
        self._check_case(metadata, by)
        now = self.ledger.clock()
        self.store.purge_sessions(format_time(now))
        session = UploadSession(
            id=new_evidence_id(),
            metadata=dict(metadata),
            created_by=by.id,
            created_at=format_time(now),
            expires_at=format_time(now + self.settings.session_ttl),
        )
        self.store.create_session(session)
        return session

    def register_physical(self, metadata: Mapping[str, Any], by: Actor) -> Appended:
        """Record a physical item (no bytes) at once: its record and ``evidence.registered``."""
        require_role(by.role, INTAKE_ROLES, "take in evidence")
        check_intake(metadata)
        if metadata["kind"] != "physical":
            raise BadRequest("a digital item is created by uploading its content")
        metadata = {**metadata, SEIZURE: check_seizure(metadata.get(SEIZURE))}
        self._check_case(metadata, by)
        appended, _ = self._record(new_evidence_id(), metadata, by, None, {}, None, None)
        return appended

    def receive(
        self,
        evidence_id: str,
        stream: BinaryIO,
        by: Actor,
        *,
        declared: Mapping[str, str] | None = None,
        content_length: int | None = None,
        progress: Callable[[int], object] | None = None,
        roles: Sequence[str] = INTAKE_ROLES,
        within: Callable[[Recorder, EvidenceRecord], object] | None = None,
    ) -> Ingested:
        """Stream the bytes of an announced item into the store and record it.

        ``within`` runs inside the transaction that records the item, so that what it writes
        (an order's response event) commits with the record or, if it raises, nothing does.
        """
        require_role(by.role, roles, "take in evidence")
        session = self.store.session(evidence_id)
        if session is None or session.created_by != by.id:
            done = self.store.get(evidence_id)
            if done is not None and done.created_by == by.id:
                raise Conflict(f"the content of {evidence_id} was received already")
            raise NotFound(f"no open upload for {evidence_id}")
        # A member removed, or a case closed, since the upload was announced takes nothing in.
        self._check_case(session.metadata, by)
        limit = self.settings.max_upload_bytes
        if content_length is not None and content_length > limit:
            raise TooLarge(f"{content_length} bytes is more than the limit of {limit}")
        now = self.ledger.clock()
        claim = _Claim(now)
        self.store.claim_session(
            evidence_id, format_time(now), format_time(now - self.settings.stale_upload)
        )
        staged: StagedUpload | None = None
        try:
            staged = self.objects.stage()
            algorithms = [*self.settings.digests, *(declared or {})]
            heartbeat = self._heartbeat(evidence_id, claim, progress)
            pipeline = DigestPipeline(algorithms, staged.write, limit=limit, progress=heartbeat)
            digests = pipeline.consume_stream(stream)
            if content_length is not None and pipeline.size != content_length:
                raise BadRequest(f"the body ended after {pipeline.size} of {content_length} bytes")
            if declared:
                check_expected(digests, declared)
            staged.finish()
            stored = staged.commit(blob_key(digests["sha256"]))
        except BaseException:
            # A failed, cut-off or timed-out upload frees its session at once, so that the
            # uploader can retry without waiting for ``stale_upload``. Staged bytes that cannot
            # be removed now are left to the staging sweep; the error raised is the upload's.
            try:
                if staged is not None:
                    with suppress(StorageError):
                        staged.discard()
            finally:
                self.store.release_session(evidence_id, claim.mark)
            raise
        try:
            appended, record = self._record(
                evidence_id,
                session.metadata,
                by,
                pipeline.size,
                digests,
                stored.key,
                stored.version_id,
                within,
            )
        except BaseException:
            self.store.release_session(evidence_id, claim.mark)
            raise
        return Ingested(record, appended.index, self.receipt(record, appended.leaf))

    def _heartbeat(
        self, evidence_id: str, claim: _Claim, progress: Callable[[int], object] | None
    ) -> Callable[[int], object]:
        """A progress callback that also marks the session as still receiving, every quarter
        of ``stale_upload``, so that only a receiver that died loses its claim. A receiver
        that was silent for longer may find its claim taken over by a retry: it stops then
        (409), rather than receive the same item beside the new receiver."""
        every = self.settings.stale_upload / 4

        def beat(done: int) -> None:
            now = self.ledger.clock()
            if now - claim.at >= every:
                if not self.store.touch_session(evidence_id, format_time(now), claim.mark):
                    raise Conflict(
                        f"the upload of {evidence_id} was taken over by another after this "
                        "one sent nothing for too long"
                    )
                claim.at = now
            if progress is not None:
                progress(done)

        return beat

    def _record(
        self,
        evidence_id: str,
        metadata: Mapping[str, Any],
        by: Actor,
        size: int | None,
        digests: Mapping[str, str],
        key: str | None,
        version: str | None,
        within: Callable[[Recorder, EvidenceRecord], object] | None = None,
    ) -> tuple[Appended, EvidenceRecord]:
        """Insert the record and append its first event in one transaction, then store the
        signed manifest (deterministic, so writing it again after a crash gives the same
        bytes)."""
        kind = metadata["kind"]
        description = {
            k: v for k, v in metadata.items() if k not in ("case", "exhibit", "kind", "parent")
        }
        now = self.ledger.clock()
        with self.ledger.recording() as recorder:
            record = EvidenceRecord(
                id=evidence_id,
                kind=kind,
                case=metadata["case"],
                exhibit=metadata["exhibit"],
                parent=metadata.get("parent"),
                description=description,
                received_at=format_time(now),
                created_by=by.id,
                ledger_index=recorder.next_index,
                size=size,
                digests=dict(digests),
                storage_key=key,
                storage_version=version,
            )
            manifest = self.manifest(record)
            if key is not None and not self.objects.exists(key):
                # A disposal removed this blob after our copy was committed; under the ledger
                # lock nothing can remove it while we record, so refuse rather than point a
                # record at bytes that are gone. The upload can simply be sent again.
                raise StorageError(f"the blob {key} was disposed of during the upload; retry")
            self.store.insert(recorder.tx, record)
            data: dict[str, Any] = {
                "case": record.case,
                "exhibit": record.exhibit,
                "kind": kind,
                "parent": record.parent,
                "manifest": hashlib.sha256(manifest).hexdigest(),
            }
            if kind == "physical":
                data[SEIZURE] = dict(metadata[SEIZURE])
            if kind == "digital":
                data.update(
                    size=size, digests=dict(digests), storage={"key": key, "version": version}
                )
            event_type = "evidence.ingested" if kind == "digital" else "evidence.registered"
            appended = recorder.add(
                NewEvent(event_type, by, Subject("evidence", evidence_id), data), at=now
            )
            if within is not None:
                within(recorder, record)
        self.objects.put(manifest_key(evidence_id), manifest)
        return appended, record

    def manifest(self, record: EvidenceRecord) -> bytes:
        """The record as a ``custos/manifest/v1`` note signed by the current key."""
        return sign_note(manifest_text(record), [self.ledger.keys.current.signer])

    def stored_manifest(self, record: EvidenceRecord) -> bytes:
        """The item's signed manifest; written again if a crash lost it.

        The manifest is stored after its record and event commit, so a crash in between
        leaves a record without one. Signing is deterministic: the note signed again with the
        key that was current at the item's event is the note its event names by SHA-256,
        which is checked before the note is stored.
        """
        try:
            return self.objects.get(manifest_key(record.id))
        except ObjectNotFound:
            pass
        signer = self.ledger.keys.signer_at(record.ledger_index)
        manifest = sign_note(manifest_text(record), [signer])
        event = Event.decode(self.ledger.entry(record.ledger_index))
        if event.data.get("manifest") != hashlib.sha256(manifest).hexdigest():
            raise IntegrityError(f"the manifest of {record.id} is missing and cannot be rebuilt")
        self.objects.put(manifest_key(record.id), manifest)
        return manifest

    def repair_manifests(self, newest: int = 64) -> int:
        """Store again the manifests a crash lost among the ``newest`` records: only intakes
        in flight when a server died can lack one, and every reader of a manifest rebuilds a
        missing one anyway, so a start-up checks a few, not the store. Returns how many were
        written."""
        repaired = 0
        for record in self.store.newest(newest):
            if not self.objects.exists(manifest_key(record.id)):
                self.stored_manifest(record)
                repaired += 1
        return repaired

    def receipt_for(
        self, evidence_id: str, by: Actor, provider_id: str | None = None
    ) -> ReceiptBundle:
        """The receipt of an item, re-fetched: for its readers, and for the provider whose
        response it is (a provider principal, bound to ``provider_id``). To any other
        provider the item does not exist (NotFound), as an order of another's does not."""
        record = self.store.get(evidence_id) if is_evidence_id(evidence_id) else None
        if record is None:
            raise NotFound(f"no evidence {evidence_id}")
        if by.role in RESPONDING_ROLES:
            if provider_id is None or record.description.get("provider") != provider_id:
                raise NotFound(f"no evidence {evidence_id}")
        else:
            require_role(by.role, READ_ROLES, "read receipts")
            if not self.cases.scope(by).covers(record.case, record.id):
                raise NotFound(f"no evidence {evidence_id}")
        return self.receipt(record, self.ledger.entry(record.ledger_index))

    def receipt(self, record: EvidenceRecord, leaf: bytes) -> ReceiptBundle:
        """The receipt for an ingested item, with a checkpoint covering its event."""
        if record.size is None:
            raise BadRequest("only received content has a receipt")
        receipt = Receipt(
            evidence_id=record.id,
            size=record.size,
            digests=dict(record.digests),
            received_at=record.received_at,
            ledger_index=record.ledger_index,
            leaf_hash=merkle.leaf_hash(leaf),
        )
        checkpoint = self.ledger.checkpoint(covering=record.ledger_index)
        proof = self.ledger.inclusion_proof(record.ledger_index, checkpoint.size)
        return ReceiptBundle(
            receipt=sign_receipt(receipt, [self.ledger.keys.current.signer]),
            checkpoint=checkpoint.note,
            leaf=leaf,
            index=record.ledger_index,
            tree_size=checkpoint.size,
            proof=tuple(proof),
        )
