"""Principals: who may call Custos, in which role, with which bearer token.

A token carries 256 random bits and is shown once; only its SHA-256 is stored, so the
database never holds a usable secret. Creating and revoking a principal are ledger events
(``principal.created``, ``principal.revoked``) committed with the change itself, and acts of an
admin only: the system itself may create the first admin of an empty deployment (as
``custos init`` does) and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from custody.errors import BadRequest, Conflict, CustosError, Forbidden, NotFound
from custody.events import SYSTEM, Actor, NewEvent, Subject
from custody.evidence import require_role
from custody.interfaces import AppendTransaction
from custody.ledger import Ledger

if TYPE_CHECKING:
    from custody.providers import ProviderStore

ROLES = ("admin", "examiner", "authority", "approver", "provider", "court")
ADMINS = ("admin",)
# The admin ``custos init`` creates, and whom local commands act as by default.
OPERATOR = "operator"
TOKEN_PREFIX = "custos_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Unauthenticated(CustosError):
    """No token, an unknown token or a revoked principal's token."""


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    role: str
    provider_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def actor(self) -> Actor:
        """How this principal appears in ledger events."""
        return Actor(id=self.id, role=self.role)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_token() -> str:
    """A bearer token with 256 bits from the OS's CSPRNG."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class PrincipalStore(Protocol):
    """Principals as stored; writes go through the ledger's open append transaction."""

    def insert(self, tx: AppendTransaction, principal: Principal, token_hash: bytes) -> None: ...

    def revoke(self, tx: AppendTransaction, principal_id: str, at: datetime) -> None: ...

    def by_name(self, name: str, tx: AppendTransaction | None = None) -> Principal | None: ...

    def by_token_hash(self, token_hash: bytes) -> tuple[Principal, bytes] | None: ...

    def any(self, tx: AppendTransaction) -> bool:
        """True once any principal, active or revoked, exists."""

    def list(self) -> Sequence[Principal]: ...


class Principals:
    """Adds, revokes, lists and authenticates principals."""

    def __init__(
        self, store: PrincipalStore, ledger: Ledger, providers: ProviderStore | None = None
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.providers = providers

    def add(
        self, name: str, role: str, by: Actor, provider_id: str | None = None
    ) -> tuple[Principal, str]:
        """Create a principal and its token; the token is returned here and never again.

        Only an admin adds principals; the system actor may add the first admin of a
        deployment that has no principal yet, and nothing else.
        """
        bootstrap = by == SYSTEM
        if bootstrap and role != "admin":
            raise Forbidden("the system creates only the first admin")
        if not bootstrap:
            require_role(by.role, ADMINS, "add principals")
        if not _NAME.match(name):
            raise BadRequest(
                "a principal name is 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter "
                "or digit"
            )
        if role not in ROLES:
            raise BadRequest(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if (role == "provider") != (provider_id is not None):
            raise BadRequest("a provider principal, and only one, is bound to a provider")
        if provider_id is not None and (
            self.providers is None or self.providers.get(provider_id) is None
        ):
            raise NotFound(f"no provider {provider_id}")
        token = new_token()
        principal = Principal(
            id="pr_" + secrets.token_hex(8),
            name=name,
            role=role,
            provider_id=provider_id,
            created_at=self.ledger.clock(),
        )
        with self.ledger.recording() as recorder:
            if self.store.by_name(name, recorder.tx) is not None:
                raise Conflict(f"a principal named {name!r} exists already")
            if bootstrap and self.store.any(recorder.tx):
                raise Forbidden("the system creates the first admin only: principals exist")
            self.store.insert(recorder.tx, principal, token_hash(token))
            data: dict[str, str | None] = {"role": role, "provider": provider_id}
            recorder.add(NewEvent("principal.created", by, _subject(principal), data))
        return principal, token

    def revoke(self, name: str, by: Actor) -> Principal:
        """Revoke a principal: its token fails from the next request on (admins only)."""
        require_role(by.role, ADMINS, "revoke principals")
        with self.ledger.recording() as recorder:
            principal = self.store.by_name(name, recorder.tx)
            if principal is None:
                raise NotFound(f"no principal named {name!r}")
            if not principal.active:
                raise Conflict(f"{name!r} is revoked already")
            now = self.ledger.clock()
            self.store.revoke(recorder.tx, principal.id, now)
            recorder.add(NewEvent("principal.revoked", by, _subject(principal), {}))
        return Principal(**{**principal.__dict__, "revoked_at": now})

    def get(self, name: str) -> Principal:
        principal = self.store.by_name(name)
        if principal is None:
            raise NotFound(f"no principal named {name!r}")
        return principal

    def list(self) -> Sequence[Principal]:
        return self.store.list()

    def authenticate(self, token: str) -> Principal:
        """The active principal holding ``token``; Unauthenticated otherwise."""
        digest = token_hash(token)
        found = self.store.by_token_hash(digest)
        if found is None:
            raise Unauthenticated("unknown token")
        principal, stored = found
        if not hmac.compare_digest(stored, digest) or not principal.active:
            raise Unauthenticated("unknown or revoked token")
        return principal


def _subject(principal: Principal) -> Subject:
    return Subject(kind="principal", id=principal.id)
