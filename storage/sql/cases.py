"""Cases, their members and the courts' grants on SQL (``custody.cases.CaseStore``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from custody.cases import Case, Grant, Member
from custody.errors import StorageError
from custody.interfaces import AppendTransaction
from storage.sql.ledger import connection_of
from storage.sql.schema import case_grants, case_members, cases, evidence


def _case(row: Any) -> Case:
    return Case(
        id=row.id,
        reference=row.reference,
        title=row.title,
        authority=row.authority,
        opened_at=row.opened_at,
        opened_by=row.opened_by,
        title_salt=bytes(row.title_salt),
        closed_at=row.closed_at,
    )


def _grant(row: Any) -> Grant:
    return Grant(
        id=row.id,
        case_id=row.case_id,
        court_id=row.court_id,
        proceeding=row.proceeding,
        ends_at=row.ends_at,
        granted_at=row.granted_at,
        exhibits=tuple(json.loads(row.exhibits)) if row.exhibits else (),
    )


class SqlCaseStore:
    """``custody.cases.CaseStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as c, c.begin():
                yield c
        except SQLAlchemyError as exc:
            raise StorageError(f"case store failed: {exc}") from exc

    def _rows(self, query: Any, tx: AppendTransaction | None = None) -> list[Any]:
        if tx is not None:
            return list(connection_of(tx).execute(query))
        with self._connect() as c:
            return list(c.execute(query))

    def insert(self, tx: AppendTransaction, case: Case) -> None:
        # Appends are serialised, so the caller's check that the reference is free holds.
        connection_of(tx).execute(
            insert(cases).values(
                id=case.id,
                reference=case.reference,
                title=case.title,
                authority=case.authority,
                title_salt=case.title_salt,
                opened_at=case.opened_at,
                opened_by=case.opened_by,
                closed_at=case.closed_at,
            )
        )

    def close(self, tx: AppendTransaction, case_id: str, at: str) -> None:
        connection_of(tx).execute(update(cases).where(cases.c.id == case_id).values(closed_at=at))

    def get(self, case_id: str, tx: AppendTransaction | None = None) -> Case | None:
        rows = self._rows(select(cases).where(cases.c.id == case_id), tx)
        return _case(rows[0]) if rows else None

    def by_reference(self, reference: str, tx: AppendTransaction | None = None) -> Case | None:
        rows = self._rows(select(cases).where(cases.c.reference == reference), tx)
        return _case(rows[0]) if rows else None

    def list(
        self, principal_id: str | None, now: datetime, limit: int, after: str | None
    ) -> Sequence[Case]:
        query = select(cases).order_by(cases.c.reference).limit(limit)
        if principal_id is not None:
            members = select(case_members.c.case_id).where(
                case_members.c.principal_id == principal_id
            )
            granted = select(case_grants.c.case_id).where(
                case_grants.c.court_id == principal_id, case_grants.c.ends_at > now
            )
            query = query.where(or_(cases.c.id.in_(members), cases.c.id.in_(granted)))
        if after is not None:
            query = query.where(cases.c.reference > after)
        return [_case(r) for r in self._rows(query)]

    def members(self, case_id: str, tx: AppendTransaction | None = None) -> Sequence[Member]:
        query = (
            select(case_members)
            .where(case_members.c.case_id == case_id)
            .order_by(case_members.c.added_at, case_members.c.principal_id)
        )
        return [Member(r.principal_id, r.role, r.added_at) for r in self._rows(query, tx)]

    def add_member(self, tx: AppendTransaction, case_id: str, member: Member) -> None:
        connection_of(tx).execute(
            insert(case_members).values(
                case_id=case_id,
                principal_id=member.principal_id,
                role=member.role,
                added_at=member.added_at,
            )
        )

    def remove_member(self, tx: AppendTransaction, case_id: str, principal_id: str) -> None:
        connection_of(tx).execute(
            delete(case_members).where(
                case_members.c.case_id == case_id, case_members.c.principal_id == principal_id
            )
        )

    def grants(self, case_id: str) -> Sequence[Grant]:
        query = (
            select(case_grants)
            .where(case_grants.c.case_id == case_id)
            .order_by(case_grants.c.granted_at, case_grants.c.id)
        )
        return [_grant(r) for r in self._rows(query)]

    def grant(self, grant_id: str, tx: AppendTransaction | None = None) -> Grant | None:
        rows = self._rows(select(case_grants).where(case_grants.c.id == grant_id), tx)
        return _grant(rows[0]) if rows else None

    def add_grant(self, tx: AppendTransaction, grant: Grant) -> None:
        connection_of(tx).execute(
            insert(case_grants).values(
                id=grant.id,
                case_id=grant.case_id,
                court_id=grant.court_id,
                proceeding=grant.proceeding,
                ends_at=grant.ends_at,
                granted_at=grant.granted_at,
                exhibits=json.dumps(list(grant.exhibits)) if grant.exhibits else None,
            )
        )

    def end_grant(self, tx: AppendTransaction, grant_id: str, at: datetime) -> None:
        connection_of(tx).execute(
            update(case_grants).where(case_grants.c.id == grant_id).values(ends_at=at)
        )

    def item_case(self, evidence_id: str, tx: AppendTransaction | None = None) -> str | None:
        rows = self._rows(select(evidence.c.case_ref).where(evidence.c.id == evidence_id), tx)
        return str(rows[0].case_ref) if rows else None

    def memberships(self, principal_id: str) -> Sequence[tuple[Case, Member]]:
        query = (
            select(cases, case_members.c.role, case_members.c.added_at.label("member_since"))
            .join(case_members, case_members.c.case_id == cases.c.id)
            .where(case_members.c.principal_id == principal_id)
            .order_by(cases.c.reference)
        )
        return [(_case(r), Member(principal_id, r.role, r.member_since)) for r in self._rows(query)]

    def grants_to(self, court_id: str) -> Sequence[tuple[Case, Grant]]:
        granted = [
            _grant(r)
            for r in self._rows(select(case_grants).where(case_grants.c.court_id == court_id))
        ]
        if not granted:
            return []
        case_ids = {grant.case_id for grant in granted}
        by_id = {r.id: _case(r) for r in self._rows(select(cases).where(cases.c.id.in_(case_ids)))}
        found = [(by_id[grant.case_id], grant) for grant in granted]
        return sorted(found, key=lambda pair: (pair[0].reference, pair[1].granted_at, pair[1].id))

    def scope_of(self, principal_id: str, now: datetime) -> tuple[set[str], set[str]]:
        """One read: the references of the cases the principal is a member of, and what its
        running grants give it."""
        member_of = (
            select(cases.c.reference)
            .join(case_members, case_members.c.case_id == cases.c.id)
            .where(case_members.c.principal_id == principal_id)
        )
        granted = (
            select(cases.c.reference, case_grants.c.exhibits)
            .join(case_grants, case_grants.c.case_id == cases.c.id)
            .where(case_grants.c.court_id == principal_id, case_grants.c.ends_at > now)
        )
        with self._connect() as c:
            references = {row.reference for row in c.execute(member_of)}
            items: set[str] = set()
            for row in c.execute(granted):
                if row.exhibits:
                    items.update(json.loads(row.exhibits))
                else:
                    references.add(row.reference)
        return references, items
