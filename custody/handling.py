"""Custody acts on evidence items, reading their content, and disposal.

Each act is one ledger event, checked against the item's state inside the append
transaction (see ``custody.evidence.CustodyState``). Findings and notes are never put in the
ledger: the event carries a salted commitment and the text is kept beside the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custody.acts import ACTS, check_act_fields
from custody.cases import Cases
from custody.commitment import commit
from custody.digests import DigestPipeline
from custody.errors import (
    Conflict,
    FieldErrors,
    Forbidden,
    IntegrityError,
    NotFound,
    ObjectLocked,
)
from custody.event_types import DISCLOSED_FIELDS
from custody.events import Actor, NewEvent, Subject
from custody.evidence import (
    ACT_ROLES,
    READ_ROLES,
    EvidenceRecord,
    EvidenceStore,
    is_evidence_id,
    require_role,
    search_text,
)
from custody.interfaces import ObjectStore
from custody.ledger import Appended, Ledger

log = logging.getLogger("custos.evidence")

DISPOSERS = ("approver",)
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Recorded:
    record: EvidenceRecord
    event: Appended


class Handling:
    """Records custody acts, serves content with an access event, disposes of items."""

    def __init__(
        self, store: EvidenceStore, ledger: Ledger, objects: ObjectStore, cases: Cases
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.objects = objects
        self.cases = cases

    def get(self, evidence_id: str, by: Actor) -> EvidenceRecord:
        """An item ``by`` may know of (a member of its case, or a court it is granted to);
        to anyone else it does not exist."""
        record = self.store.get(evidence_id) if is_evidence_id(evidence_id) else None
        if record is None or not self.cases.scope(by).covers(record.case, record.id):
            raise NotFound(f"no evidence {evidence_id}")
        return record

    def list(
        self, by: Actor, case: str | None, exhibit: str | None, limit: int, after: int | None
    ) -> Sequence[EvidenceRecord]:
        """The items ``by`` may know of, by case and exhibit, oldest first."""
        scope = self.cases.scope(by)
        if scope.empty:
            return []
        return self.store.list(case, exhibit, limit, after, scope=scope)

    def search(self, by: Actor, text: str, limit: int) -> Sequence[EvidenceRecord]:
        """The first ``limit`` items ``by`` may know of whose case, exhibit, description or a
        digest holds ``text``, oldest first."""
        scope = self.cases.scope(by)
        if scope.empty or not search_text(text):
            return []
        return self.store.search(text, limit, scope)

    def record_act(
        self, evidence_id: str, act: str, data: Mapping[str, Any], by: Actor
    ) -> Recorded:
        """Record one custody act; FieldErrors naming every field at fault if ``data`` does not
        match the act's fields (``custody.acts``), Conflict (with the allowed acts) if the
        item's state forbids it."""
        require_role(by.role, ACT_ROLES, "record custody acts")
        if act not in ACTS:
            raise NotFound(f"no custody act {act}")
        if act == "evidence.disposed" and by.role not in DISPOSERS:
            raise Forbidden("only an approver may dispose of evidence")
        data = check_act_fields(act, data)
        self.get(evidence_id, by)
        delete_blob = False
        with self.ledger.recording() as recorder:
            record = self.store.get(evidence_id, recorder.tx)
            if record is None:
                raise NotFound(f"no evidence {evidence_id}")
            if act == "evidence.transferred":
                data = {**data, "to": self._custodian(record, data["to"], recorder.tx)}
            state = record.state.after(act, data, record.kind)
            if act == "evidence.received" and by.id != record.state.transfer_pending_to:
                raise Forbidden(
                    f"only the custodian the transfer names ({record.state.transfer_pending_to}) "
                    "confirms its receipt"
                )
            event_data = dict(data)
            if act in DISCLOSED_FIELDS:
                # Free text is committed to, not recorded (custody.disclosure discloses it).
                committed = DISCLOSED_FIELDS[act]
                text = str(event_data.pop(committed)).encode("utf-8")
                salt, digest = commit(text)
                event_data[f"{committed}_commitment"] = digest
                self.store.save_document(recorder.tx, record.id, recorder.next_index, salt, text)
            if act == "evidence.disposed":
                self._check_retention(record)
                delete_blob = self._blob_unused_after_disposal(recorder.tx, record)
                event_data["content_deleted"] = delete_blob
            if act == "evidence.hold_set" and record.storage_key:
                # Set before the event commits: a hold that outlives a failed append is safe.
                self.objects.set_legal_hold(record.storage_key, True)
            release_hold = act == "evidence.hold_released" and self._last_hold_on_blob(
                recorder.tx, record
            )
            self.store.set_state(recorder.tx, record.id, state)
            event = recorder.add(NewEvent(act, by, Subject("evidence", record.id), event_data))
        if release_hold and record.storage_key:
            self.objects.set_legal_hold(record.storage_key, False)
        if delete_blob and record.storage_key:
            self._delete_blob_if_unused(record)
        return Recorded(EvidenceRecord(**{**record.__dict__, "state": state}), event)

    def _custodian(self, record: EvidenceRecord, name: str, tx: Any) -> str:
        """The id of the principal a transfer names: an active member of the item's case,
        who will confirm receipt in an event of its own."""
        principal = self.cases.principals.by_name(name, tx)
        if (
            principal is None
            or not principal.active
            or principal.role not in ACT_ROLES
            or record.case not in self.cases.scope(principal.actor).cases
        ):
            raise FieldErrors([("to", f"no custodian {name} among the members of {record.case}")])
        return str(principal.id)

    def _delete_blob_if_unused(self, record: EvidenceRecord) -> None:
        """Delete a disposed item's bytes, deciding again under the ledger's lock.

        Intake records an item only under the same lock, after checking its blob exists; so
        either a new record sharing the blob is seen here and the bytes stay, or the new
        record's check fails and its upload is refused. No record ever points at deleted bytes.
        """
        assert record.storage_key is not None
        with self.ledger.recording() as recorder:
            if not self._blob_unused_after_disposal(recorder.tx, record):
                log.warning("kept the blob of disposed %s: another record uses it now", record.id)
                return
            try:
                self.objects.delete(record.storage_key)
            except ObjectLocked:
                log.error("disposed %s but its blob is still locked", record.id)

    def _check_retention(self, record: EvidenceRecord) -> None:
        if record.storage_key is None:
            return
        until = self.objects.retained_until(record.storage_key)
        if until is not None and until > self.ledger.clock():
            raise Conflict(f"{record.id} is under retention until {until.isoformat()}")

    def _blob_unused_after_disposal(self, tx: Any, record: EvidenceRecord) -> bool:
        """True when no other live record uses the blob and none of them holds it."""
        if record.storage_key is None:
            return False
        others = [r for r in self.store.sharing_blob(tx, record.storage_key) if r.id != record.id]
        return not any(not r.state.disposed or r.state.on_hold for r in others)

    def _last_hold_on_blob(self, tx: Any, record: EvidenceRecord) -> bool:
        if record.storage_key is None:
            return False
        others = [r for r in self.store.sharing_blob(tx, record.storage_key) if r.id != record.id]
        return not any(r.state.on_hold for r in others)

    def read_content(
        self, evidence_id: str, by: Actor, purpose: str
    ) -> tuple[EvidenceRecord, Appended, Iterator[bytes]]:
        """Re-hash the stored bytes, record ``evidence.accessed`` with the digests they
        re-hashed to, then stream them, re-hashing them again as they go.

        If the bytes no longer match the record's digests, ``evidence.integrity_failed`` is
        appended instead and nothing is served; bytes that change between the two readings
        end the stream with an error, so the reader never gets a silent copy.
        """
        require_role(by.role, READ_ROLES, "read evidence")
        record = self.get(evidence_id, by)
        if not record.state.can_be_read(record.kind) or record.storage_key is None:
            raise Conflict(f"{evidence_id} has no content to read ({record.state.describe()})")
        pipeline = DigestPipeline(list(record.digests))
        with self.objects.open(record.storage_key) as source:
            for chunk in iter(lambda: source.read(READ_CHUNK), b""):
                pipeline.update(chunk)
        data = {"purpose": purpose, "digests": self._checked(record, by, pipeline)}
        access = self.ledger.append(
            NewEvent("evidence.accessed", by, Subject("evidence", record.id), data)
        )
        return record, access, self._stream(record, by)

    def _checked(
        self, record: EvidenceRecord, by: Actor, pipeline: DigestPipeline
    ) -> dict[str, str]:
        """The digests the bytes hashed to; ``evidence.integrity_failed`` and IntegrityError
        if they are not the record's."""
        computed = pipeline.hexdigests()
        bad = sorted(alg for alg, value in record.digests.items() if computed.get(alg) != value)
        if bad or pipeline.size != record.size:
            self.ledger.append(
                NewEvent(
                    "evidence.integrity_failed",
                    by,
                    Subject("evidence", record.id),
                    {"algorithms": bad, "size": pipeline.size, "expected_size": record.size},
                )
            )
            raise IntegrityError(f"{record.id}: stored bytes no longer match {bad or 'size'}")
        return {alg: computed[alg] for alg in record.digests}

    def _stream(self, record: EvidenceRecord, by: Actor) -> Iterator[bytes]:
        assert record.storage_key is not None
        pipeline = DigestPipeline(list(record.digests))
        # The last chunk is held back until the digests are checked: a reader of a bad copy
        # then gets fewer bytes than Content-Length, never a complete-looking body.
        held = b""
        with self.objects.open(record.storage_key) as source:
            for chunk in iter(lambda: source.read(READ_CHUNK), b""):
                pipeline.update(chunk)
                if held:
                    yield held
                held = chunk
        self._checked(record, by, pipeline)
        if held:
            yield held
