"""Browser sessions and sign-in links on SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, insert, or_, select, update

from custody.principals import Principal
from custody.sign_in import BrowserSession
from storage.sql.database import WRITE
from storage.sql.principals import _COLUMNS, _principal
from storage.sql.schema import (
    cookie_secret,
    principals,
    second_factors,
    sessions,
    sign_in_links,
)

# Every page request runs this: built once, with the hash as a bound parameter.
_SESSION = (
    select(*_COLUMNS, sessions.c.created_at.label("s_created"), sessions.c.last_seen_at)
    .join(principals, principals.c.id == sessions.c.principal_id)
    .where(sessions.c.secret_hash == bindparam("secret_hash"))
)


class SqlSignInStore:
    """``custody.sign_in.SignInStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**WRITE) as c, c.begin():
            yield c

    def cookie_secret(self) -> bytes:
        with self.engine.connect() as c:
            return bytes(c.execute(select(cookie_secret.c.secret)).scalar_one())

    def add_session(self, secret_hash: bytes, principal_id: str, at: datetime) -> None:
        with self._write() as c:
            c.execute(
                insert(sessions).values(
                    secret_hash=secret_hash,
                    principal_id=principal_id,
                    created_at=at,
                    last_seen_at=at,
                )
            )

    def session(self, secret_hash: bytes) -> BrowserSession | None:
        with self.engine.connect() as c:
            row = c.execute(_SESSION, {"secret_hash": secret_hash}).first()
        if row is None:
            return None
        return BrowserSession(_principal(row), row.s_created, row.last_seen_at)

    def touch_session(self, secret_hash: bytes, at: datetime) -> None:
        with self._write() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.secret_hash == secret_hash)
                .values(last_seen_at=at)
            )

    def end_session(self, secret_hash: bytes) -> None:
        with self._write() as c:
            c.execute(delete(sessions).where(sessions.c.secret_hash == secret_hash))

    def end_sessions_before(self, created_before: datetime, seen_before: datetime) -> int:
        with self._write() as c:
            result = c.execute(
                delete(sessions).where(
                    or_(
                        sessions.c.created_at < created_before,
                        sessions.c.last_seen_at < seen_before,
                    )
                )
            )
            return int(result.rowcount)

    def add_link(self, secret_hash: bytes, principal_id: str, expires_at: datetime) -> None:
        with self._write() as c:
            c.execute(
                insert(sign_in_links).values(
                    secret_hash=secret_hash, principal_id=principal_id, expires_at=expires_at
                )
            )

    def redeem_link(self, secret_hash: bytes, at: datetime) -> Principal | None:
        with self._write() as c:
            # One conditional UPDATE decides: of two racing redemptions, only one changes a row.
            used = c.execute(
                update(sign_in_links)
                .where(
                    sign_in_links.c.secret_hash == secret_hash,
                    sign_in_links.c.used_at.is_(None),
                    sign_in_links.c.expires_at > at,
                )
                .values(used_at=at)
            )
            if used.rowcount != 1:
                return None
            row = c.execute(
                select(*_COLUMNS)
                .join(sign_in_links, sign_in_links.c.principal_id == principals.c.id)
                .where(sign_in_links.c.secret_hash == secret_hash)
            ).first()
        return None if row is None else _principal(row)

    def set_totp(self, principal_id: str, secret: str) -> None:
        with self._write() as c:
            c.execute(delete(second_factors).where(second_factors.c.principal_id == principal_id))
            c.execute(insert(second_factors).values(principal_id=principal_id, totp_secret=secret))

    def totp(self, principal_id: str) -> str | None:
        with self.engine.connect() as c:
            found = c.execute(
                select(second_factors.c.totp_secret).where(
                    second_factors.c.principal_id == principal_id
                )
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def enrolled(self) -> set[str]:
        with self.engine.connect() as c:
            return {str(r) for r in c.execute(select(second_factors.c.principal_id)).scalars()}

    def use_totp_step(self, principal_id: str, step: int) -> bool:
        with self._write() as c:
            # Only a later step than the last one used: a code is good once.
            used = c.execute(
                update(second_factors)
                .where(
                    second_factors.c.principal_id == principal_id,
                    or_(second_factors.c.last_step.is_(None), second_factors.c.last_step < step),
                )
                .values(last_step=step)
            )
            return used.rowcount == 1
