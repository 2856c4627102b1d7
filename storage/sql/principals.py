"""Principals on SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from custody.interfaces import AppendTransaction
from custody.principals import Principal
from storage.sql.ledger import connection_of
from storage.sql.schema import principals

_COLUMNS = (
    principals.c.id,
    principals.c.name,
    principals.c.role,
    principals.c.provider_id,
    principals.c.created_at,
    principals.c.revoked_at,
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
            )
        )

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
