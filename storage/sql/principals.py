"""Principals on SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, insert, or_, select, update

from custody.interfaces import AppendTransaction
from custody.principals import CommittedName, Principal
from storage.sql.ledger import connection_of
from storage.sql.schema import principal_names, principals

_COLUMNS = (
    principals.c.id,
    principals.c.name,
    principals.c.role,
    principals.c.provider_id,
    principals.c.created_at,
    principals.c.revoked_at,
    principals.c.email,
    principals.c.display_name,
)


# Every authenticated request runs this: built once, with the hash as a bound parameter.
_BY_TOKEN_HASH = select(*_COLUMNS, principals.c.token_hash).where(
    principals.c.token_hash == bindparam("token_hash")
)


def _principal(row: Any) -> Principal:
    return Principal(
        id=row.id,
        name=row.name,
        role=row.role,
        provider_id=row.provider_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        email=row.email,
        display_name=row.display_name,
    )


class SqlPrincipalStore:
    """``custody.principals.PrincipalStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, tx: AppendTransaction, principal: Principal, token_hash: bytes) -> None:
        connection_of(tx).execute(
            insert(principals).values(
                id=principal.id,
                name=principal.name,
                role=principal.role,
                provider_id=principal.provider_id,
                token_hash=token_hash,
                created_at=principal.created_at,
                email=principal.email,
            )
        )

    def save_name(self, tx: AppendTransaction, principal_id: str, name: CommittedName) -> None:
        connection = connection_of(tx)
        connection.execute(
            insert(principal_names).values(
                ledger_index=name.ledger_index,
                principal_id=principal_id,
                salt=name.salt,
                name=name.name,
            )
        )
        connection.execute(
            update(principals).where(principals.c.id == principal_id).values(display_name=name.name)
        )

    def names(self, principal_id: str) -> list[CommittedName]:
        query = (
            select(principal_names)
            .where(principal_names.c.principal_id == principal_id)
            .order_by(principal_names.c.ledger_index)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [CommittedName(r.ledger_index, bytes(r.salt), r.name) for r in rows]

    def revoke(self, tx: AppendTransaction, principal_id: str, at: datetime) -> None:
        connection_of(tx).execute(
            update(principals).where(principals.c.id == principal_id).values(revoked_at=at)
        )

    def by_name(self, name: str, tx: AppendTransaction | None = None) -> Principal | None:
        query = select(*_COLUMNS).where(principals.c.name == name)
        if tx is not None:
            row = connection_of(tx).execute(query).first()
        else:
            with self.engine.connect() as connection:
                row = connection.execute(query).first()
        return None if row is None else _principal(row)

    def by_token_hash(self, token_hash: bytes) -> tuple[Principal, bytes] | None:
        with self.engine.connect() as connection:
            row = connection.execute(_BY_TOKEN_HASH, {"token_hash": token_hash}).first()
        return None if row is None else (_principal(row), bytes(row.token_hash))

    def any(self, tx: AppendTransaction) -> bool:
        return connection_of(tx).execute(select(principals.c.id).limit(1)).first() is not None

    def list(self) -> list[Principal]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(*_COLUMNS).order_by(principals.c.created_at))
            return [_principal(r) for r in rows]

    def email_addresses(
        self,
        principal_ids: Sequence[str],
        provider_id: str | None,
        tx: AppendTransaction | None = None,
    ) -> Sequence[str]:
        concerned: list[ColumnElement[bool]] = []
        if principal_ids:
            concerned.append(principals.c.id.in_(list(principal_ids)))
        if provider_id is not None:
            concerned.append(principals.c.provider_id == provider_id)
        if not concerned:
            return []
        query = (
            select(principals.c.email)
            .where(
                or_(*concerned),
                principals.c.revoked_at.is_(None),
                principals.c.email.is_not(None),
            )
            .order_by(principals.c.name)
        )
        if tx is not None:
            rows = connection_of(tx).execute(query).all()
        else:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        return [row.email for row in rows]
