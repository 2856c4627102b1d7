"""Evidence records, upload sessions and committed documents on SQL."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    bindparam,
    delete,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.exc import SQLAlchemyError

from custody.cases import Scope
from custody.errors import Conflict, NotFound, StorageError
from custody.evidence import (
    CommittedText,
    CustodyState,
    EvidenceRecord,
    UploadSession,
    blob_key,
    search_text,
)
from custody.interfaces import AppendTransaction
from storage.sql.database import WRITE
from storage.sql.ledger import connection_of
from storage.sql.schema import evidence, evidence_documents, upload_sessions

OPEN, RECEIVING = "open", "receiving"


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_MAX_CASE_PARTS = 200
"""Above this many cases in a reader's scope, a list reads them with one IN instead."""
_WINDOW_PAGES = 8
"""How many pages of records in ledger order a scoped list reads before it reads by case."""
_LISTED = (evidence.c.record, evidence.c.state, evidence.c.ledger_index)


@functools.lru_cache(maxsize=64)
def _first_of_each_statement(parts: int, items: bool, exhibit: bool, case: bool) -> Select[Any]:
    """The first ``:page`` records after ``:after`` of the cases ``:case0`` ... and the items
    ``:items`` (of the case ``:case``): built once for each shape, as building a union of a
    hundred parts costs more than running it."""
    head = (
        select(evidence.c.ledger_index)
        .where(evidence.c.ledger_index > bindparam("after"))
        .order_by(evidence.c.ledger_index)
        .limit(bindparam("page"))
    )
    if exhibit:
        head = head.where(evidence.c.exhibit == bindparam("exhibit"))
    heads = [head.where(evidence.c.case_ref == bindparam(f"case{n}")) for n in range(parts)]
    if items:
        singles = head.where(evidence.c.id.in_(bindparam("items", expanding=True)))
        if case:
            singles = singles.where(evidence.c.case_ref == bindparam("case"))
        heads.append(singles)
    pages = union_all(*(select(h.subquery()) for h in heads)).subquery()
    first = select(pages.c.ledger_index).order_by(pages.c.ledger_index).limit(bindparam("page"))
    return (
        select(*_LISTED)
        .where(evidence.c.ledger_index.in_(first.scalar_subquery()))
        .order_by(evidence.c.ledger_index)
    )


def _scoped_window(
    c: Connection, filters: list[Any], cases: list[str], items: list[str], limit: int
) -> tuple[list[Any], int, bool]:
    """The next ``_WINDOW_PAGES`` pages of records in ledger order, keeping those in scope:
    one short index range, which gives the whole page whenever the scope covers a fair
    share of the store (a court granted every case of an agency). The window is read as
    ledger indexes and whether each is in scope; only the records shown are read. Returns
    the rows in scope, the window's last ledger index, and whether the window reached the
    end."""
    in_scope = or_(evidence.c.case_ref.in_(cases), evidence.c.id.in_(items))
    window = (
        select(evidence.c.ledger_index, sql_case((in_scope, True), else_=False).label("kept"))
        .where(*filters)
        .order_by(evidence.c.ledger_index)
        .limit(limit * _WINDOW_PAGES)
    )
    flags = c.execute(window).all()
    indexes = [row.ledger_index for row in flags if row.kept][:limit]
    kept = (
        list(
            c.execute(
                select(*_LISTED)
                .where(evidence.c.ledger_index.in_(indexes))
                .order_by(evidence.c.ledger_index)
            )
        )
        if indexes
        else []
    )
    last = flags[-1].ledger_index if flags else -1
    return kept, last, len(flags) < limit * _WINDOW_PAGES


def _first_of_each(
    c: Connection,
    cases: list[str],
    items: list[str],
    case: str | None,
    exhibit: str | None,
    after: int,
    limit: int,
) -> list[Any]:
    """The first ``limit`` records in scope after ``after``, for a scope too sparse for a
    window: each case's first rows from the (case, ledger index) index, then the first of
    them all, whose records alone are read."""
    if len(cases) > _MAX_CASE_PARTS:  # SQLite takes at most 500 parts in a union
        query = (
            select(*_LISTED)
            .where(evidence.c.ledger_index > after)
            .where(or_(evidence.c.case_ref.in_(cases), evidence.c.id.in_(items)))
            .order_by(evidence.c.ledger_index)
            .limit(limit)
        )
        if case is not None:
            query = query.where(evidence.c.case_ref == case)
        if exhibit is not None:
            query = query.where(evidence.c.exhibit == exhibit)
        return list(c.execute(query))
    params: dict[str, Any] = {"after": after, "page": limit, "case": case, "exhibit": exhibit}
    params.update((f"case{n}", reference) for n, reference in enumerate(cases))
    if items:
        params["items"] = items
    statement = _first_of_each_statement(
        len(cases), bool(items), exhibit is not None, case is not None
    )
    return list(c.execute(statement, params))


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SEARCH_BATCH = 200
"""Candidate rows a search reads at a time."""


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
        self,
        case: str | None,
        exhibit: str | None,
        limit: int,
        after: int | None,
        scope: Scope | None = None,
    ) -> list[EvidenceRecord]:
        filters = []
        if case is not None:
            filters.append(evidence.c.case_ref == case)
        if exhibit is not None:
            filters.append(evidence.c.exhibit == exhibit)
        if after is not None:
            filters.append(evidence.c.ledger_index > after)
        if scope is None or scope.everything:
            query = select(*_LISTED).where(*filters).order_by(evidence.c.ledger_index).limit(limit)
            with self._connect() as c:
                return [_record(r) for r in c.execute(query)]
        cases = sorted(scope.cases if case is None else scope.cases & {case})
        items = sorted(scope.items)
        if not cases and not items:
            return []
        with self._connect() as c:
            found, last, exhausted = _scoped_window(c, filters, cases, items, limit)
            if len(found) < limit and not exhausted:
                found += _first_of_each(c, cases, items, case, exhibit, last, limit - len(found))
        return [_record(r) for r in found]

    def search(self, text: str, limit: int, scope: Scope) -> Sequence[EvidenceRecord]:
        exact = self._named(text.strip(), limit, scope)
        if exact:
            return exact
        # The rows whose stored JSON holds the text (escaped as the JSON escapes it) are
        # candidates, read in batches; the record itself decides (a key may hold it too).
        escaped = json.dumps(search_text(text))[1:-1]
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", escaped) + "%"
        query = select(evidence.c.record, evidence.c.state, evidence.c.ledger_index).where(
            evidence.c.record.ilike(pattern, escape="\\")
        )
        if not scope.everything:
            query = query.where(
                or_(
                    evidence.c.case_ref.in_(sorted(scope.cases)),
                    evidence.c.id.in_(sorted(scope.items)),
                )
            )
        found: list[EvidenceRecord] = []
        after = -1
        while len(found) < limit:
            batch = query.where(evidence.c.ledger_index > after).order_by(evidence.c.ledger_index)
            with self._connect() as c:
                rows = list(c.execute(batch.limit(_SEARCH_BATCH)))
            found += [r for r in map(_record, rows) if r.matches(text)]
            if len(rows) < _SEARCH_BATCH:
                break
            after = rows[-1].ledger_index
        return found[:limit]

    def _named(self, text: str, limit: int, scope: Scope) -> Sequence[EvidenceRecord]:
        """The items ``text`` names exactly, read from indexes: a case's reference (its first
        items), an exhibit number in the caller's cases, an item's id, or a SHA-256 digest
        (hex, or ``sha256:HEX``). What a person searching for one item types answers at once,
        where a search for other text reads every item in scope."""
        if not text:
            return []
        digest = search_text(text)
        cases = None if scope.everything else sorted(scope.cases)
        exhibit = select(*_LISTED).where(evidence.c.exhibit == text)
        if cases is not None:  # read through the (case, exhibit) index
            exhibit = exhibit.where(evidence.c.case_ref.in_(cases))
        queries = [
            exhibit.order_by(evidence.c.ledger_index).limit(limit),
            select(*_LISTED).where(evidence.c.id == text),
        ]
        if _SHA256_HEX.fullmatch(digest):
            queries.append(
                select(*_LISTED)
                .where(evidence.c.storage_key == blob_key(digest))
                .order_by(evidence.c.ledger_index)
                .limit(limit)
            )
        with self._connect() as c:
            rows = [row for query in queries for row in c.execute(query)]
        found = {r.id: r for r in map(_record, rows) if scope.covers(r.case, r.id)}
        if scope.covers(text):
            found.update((r.id, r) for r in self.list(text, None, limit, None, scope=scope))
        ordered = sorted(found.values(), key=lambda r: r.ledger_index)
        return ordered[:limit]

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

    def documents(self, evidence_id: str) -> Sequence[CommittedText]:
        query = (
            select(evidence_documents)
            .where(evidence_documents.c.evidence_id == evidence_id)
            .order_by(evidence_documents.c.ledger_index)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [CommittedText(r.ledger_index, bytes(r.salt), bytes(r.text)) for r in rows]

    def save_document(
        self, tx: AppendTransaction, evidence_id: str, ledger_index: int, salt: bytes, text: bytes
    ) -> None:
        connection_of(tx).execute(
            insert(evidence_documents).values(
                ledger_index=ledger_index, evidence_id=evidence_id, salt=salt, text=text
            )
        )
