"""Evidence records, upload sessions and committed documents on SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from custody.errors import Conflict, NotFound, StorageError
from custody.evidence import CustodyState, EvidenceRecord, UploadSession
from custody.interfaces import AppendTransaction
from storage.sql.database import WRITE
from storage.sql.ledger import connection_of
from storage.sql.schema import evidence, evidence_documents, upload_sessions

OPEN, RECEIVING = "open", "receiving"


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _record(row: Any) -> EvidenceRecord:
    data = json.loads(row.record)
    return EvidenceRecord(
        id=data["id"],
        kind=data["kind"],
        case=data["case"],
        exhibit=data["exhibit"],
        description=data["description"],
        received_at=data["received_at"],
        created_by=data["created_by"],
        ledger_index=data["ledger_index"],
        size=data["size"],
        digests=data["digests"],
        storage_key=data["storage_key"],
        storage_version=data["storage_version"],
        parent=data["parent"],
        state=CustodyState.from_json(json.loads(row.state)),
    )


def _record_json(record: EvidenceRecord) -> str:
    return _dump(
        {
            "id": record.id,
            "kind": record.kind,
            "case": record.case,
            "exhibit": record.exhibit,
            "description": dict(record.description),
            "received_at": record.received_at,
            "created_by": record.created_by,
            "ledger_index": record.ledger_index,
            "size": record.size,
            "digests": dict(record.digests),
            "storage_key": record.storage_key,
            "storage_version": record.storage_version,
            "parent": record.parent,
        }
    )


def _session(row: Any) -> UploadSession:
    return UploadSession(
        id=row.id,
        metadata=json.loads(row.metadata),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class SqlEvidenceStore:
    """``custody.evidence.EvidenceStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        try:
            options = WRITE if write else {}
            with self.engine.connect().execution_options(**options) as c, c.begin():
                yield c
        except SQLAlchemyError as exc:
            raise StorageError(f"evidence store failed: {exc}") from exc

    def create_session(self, session: UploadSession) -> None:
        with self._connect(write=True) as c:
            c.execute(
                insert(upload_sessions).values(
                    id=session.id,
                    metadata=_dump(dict(session.metadata)),
                    created_by=session.created_by,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                    state=OPEN,
                )
            )

    def session(self, evidence_id: str) -> UploadSession | None:
        with self._connect() as c:
            row = c.execute(
                select(upload_sessions).where(upload_sessions.c.id == evidence_id)
            ).first()
        return None if row is None else _session(row)

    def claim_session(self, evidence_id: str, now: str, stale_before: str) -> UploadSession:
        with self._connect(write=True) as c:
            row = c.execute(
                select(upload_sessions).where(upload_sessions.c.id == evidence_id)
            ).first()
            if row is None or row.expires_at <= now:
                raise NotFound(f"no open upload for {evidence_id}")
            if row.state == RECEIVING and (row.claimed_at or "") > stale_before:
                raise Conflict(f"{evidence_id} is being uploaded already")
            c.execute(
                update(upload_sessions)
                .where(upload_sessions.c.id == evidence_id)
                .values(state=RECEIVING, claimed_at=now)
            )
        return _session(row)

    def touch_session(self, evidence_id: str, now: str, claimed: str) -> bool:
        with self._connect(write=True) as c:
            result = c.execute(
                update(upload_sessions)
                .where(*self._held(evidence_id, claimed))
                .values(claimed_at=now)
            )
            return result.rowcount == 1

    def release_session(self, evidence_id: str, claimed: str) -> None:
        with self._connect(write=True) as c:
            c.execute(
                update(upload_sessions)
                .where(*self._held(evidence_id, claimed))
                .values(state=OPEN, claimed_at=None)
            )

    @staticmethod
    def _held(evidence_id: str, claimed: str) -> tuple[Any, ...]:
        sessions = upload_sessions.c
        return (
            sessions.id == evidence_id,
            sessions.state == RECEIVING,
            sessions.claimed_at == claimed,
        )

    def purge_sessions(self, now: str) -> int:
        with self._connect(write=True) as c:
            result = c.execute(delete(upload_sessions).where(upload_sessions.c.expires_at <= now))
            return result.rowcount or 0

    def insert(self, tx: AppendTransaction, record: EvidenceRecord) -> None:
        c = connection_of(tx)
        c.execute(
            insert(evidence).values(
                id=record.id,
                kind=record.kind,
                case_ref=record.case,
                exhibit=record.exhibit,
                storage_key=record.storage_key,
                ledger_index=record.ledger_index,
                record=_record_json(record),
                state=_dump(record.state.as_json()),
            )
        )
        c.execute(delete(upload_sessions).where(upload_sessions.c.id == record.id))

    def get(self, evidence_id: str, tx: AppendTransaction | None = None) -> EvidenceRecord | None:
        query = select(evidence.c.record, evidence.c.state).where(evidence.c.id == evidence_id)
        if tx is not None:
            row = connection_of(tx).execute(query).first()
        else:
            with self._connect() as c:
                row = c.execute(query).first()
        return None if row is None else _record(row)

    def set_state(self, tx: AppendTransaction, evidence_id: str, state: CustodyState) -> None:
        connection_of(tx).execute(
            update(evidence)
            .where(evidence.c.id == evidence_id)
            .values(state=_dump(state.as_json()))
        )

    def sharing_blob(self, tx: AppendTransaction, key: str) -> list[EvidenceRecord]:
        rows = connection_of(tx).execute(
            select(evidence.c.record, evidence.c.state).where(evidence.c.storage_key == key)
        )
        return [_record(r) for r in rows]

    def list(
        self, case: str | None, exhibit: str | None, limit: int, after: int | None
    ) -> list[EvidenceRecord]:
        query = select(evidence.c.record, evidence.c.state).order_by(evidence.c.ledger_index)
        if case is not None:
            query = query.where(evidence.c.case_ref == case)
        if exhibit is not None:
            query = query.where(evidence.c.exhibit == exhibit)
        if after is not None:
            query = query.where(evidence.c.ledger_index > after)
        with self._connect() as c:
            return [_record(r) for r in c.execute(query.limit(limit))]

    def newest(self, limit: int) -> Sequence[EvidenceRecord]:
        query = select(evidence.c.record, evidence.c.state).order_by(evidence.c.ledger_index.desc())
        with self._connect() as c:
            return [_record(r) for r in c.execute(query.limit(limit))]

    def iter_all(self, batch: int = 1000) -> Iterator[EvidenceRecord]:
        """Every record in ledger order, a batch per short read transaction."""
        after = None
        while True:
            chunk = self.list(None, None, batch, after)
            yield from chunk
            if len(chunk) < batch:
                return
            after = chunk[-1].ledger_index

    def save_document(
        self, tx: AppendTransaction, evidence_id: str, ledger_index: int, salt: bytes, text: bytes
    ) -> None:
        connection_of(tx).execute(
            insert(evidence_documents).values(
                ledger_index=ledger_index, evidence_id=evidence_id, salt=salt, text=text
            )
        )
