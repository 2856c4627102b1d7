"""Custody acts on evidence items, reading their content, and disposal.

Each act is one ledger event, checked against the item's state inside the append
transaction (see ``custody.evidence.CustodyState``). Findings and notes are never put in the
ledger: the event carries a salted commitment and the text is kept beside the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from custody.acts import ACTS, check_act_fields
from custody.commitment import commit
from custody.digests import DigestPipeline
from custody.errors import Conflict, Forbidden, IntegrityError, NotFound, ObjectLocked
from custody.events import Actor, NewEvent, Subject
from custody.evidence import (
    ACT_ROLES,
    READ_ROLES,
    EvidenceRecord,
    EvidenceStore,
    require_role,
)
from custody.interfaces import ObjectStore
from custody.ledger import Appended, Ledger

log = logging.getLogger("custos.evidence")

# Acts whose free text is committed to, not recorded: (field in the request, field in the event).
_COMMITTED = {"evidence.examined": ("findings", "findings"), "evidence.noted": ("text", "text")}
DISPOSERS = ("approver",)
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Recorded:
    record: EvidenceRecord
    event: Appended


class Handling:
    """Records custody acts, serves content with an access event, disposes of items."""

    def __init__(self, store: EvidenceStore, ledger: Ledger, objects: ObjectStore) -> None:
        self.store = store
        self.ledger = ledger
        self.objects = objects

    def get(self, evidence_id: str) -> EvidenceRecord:
        record = self.store.get(evidence_id)
        if record is None:
            raise NotFound(f"no evidence {evidence_id}")
        return record

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
        delete_blob = False
        with self.ledger.recording() as recorder:
            record = self.store.get(evidence_id, recorder.tx)
            if record is None:
                raise NotFound(f"no evidence {evidence_id}")
            state = record.state.after(act, data, record.kind)
            event_data = dict(data)
            if act in _COMMITTED:
                field_in, field_out = _COMMITTED[act]
                text = str(event_data.pop(field_in)).encode("utf-8")
                salt, digest = commit(text)
                event_data[f"{field_out}_commitment"] = digest
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
        """Record ``evidence.accessed`` first, then stream the bytes, re-hashing them.

        If the bytes no longer match the record's digests, ``evidence.integrity_failed`` is
        appended and the stream ends with an error, so the reader never gets a silent copy.
        """
        record = self.get(evidence_id)
        require_role(by.role, READ_ROLES, "read evidence")
        if not record.state.can_be_read(record.kind) or record.storage_key is None:
            raise Conflict(f"{evidence_id} has no content to read ({record.state.describe()})")
        access = self.ledger.append(
            NewEvent("evidence.accessed", by, Subject("evidence", record.id), {"purpose": purpose})
        )
        return record, access, self._stream(record, by)

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
        if held:
            yield held
