"""Principals: who may call Custos, in which role, with which bearer token.

A token carries 256 random bits and is shown once; only its SHA-256 is stored, so the
database never holds a usable secret. A principal may have a display name ("Dr Ana Ruiz"),
given at creation or later (``principal.named``): the event carries a salted commitment to
it, never the name (ARCHITECTURE.md, Commitments), and the name and salt are kept beside the
principal, so an exhibit bundle can carry them for a court to check.

Creating, naming and revoking a principal are ledger events (``principal.created``,
``principal.named``, ``principal.revoked``) committed with the change itself, and acts of an
admin only: the system itself may create the first admin of an empty deployment (as
``custos init`` does) and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from custody.addresses import is_email_address
from custody.commitment import commit
from custody.errors import BadRequest, Conflict, CustosError, FieldFault, Forbidden, NotFound
from custody.events import SYSTEM, Actor, NewEvent, Subject
from custody.evidence import require_role
from custody.interfaces import AppendTransaction
from custody.ledger import Ledger, Recorder

if TYPE_CHECKING:
    from custody.providers import ProviderStore

# A validator is the judge, court or prosecutor who validates an EU order that its issuing
# authority may not issue alone (Regulation (EU) 2023/1543 Art 4).
ROLES = ("admin", "examiner", "authority", "approver", "provider", "court", "validator")
ADMINS = ("admin",)
# The admin ``custos init`` creates, and whom local commands act as by default.
OPERATOR = "operator"
TOKEN_PREFIX = "custos_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DISPLAY_NAME_MAX = 200
"""Longest display name, in characters."""


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
    # Where the principal gets e-mail alerts (custody.alerts); none if not given.
    email: str | None = None
    # The display name in force (the last one committed to), if the principal has one.
    display_name: str | None = None

    @property
    def actor(self) -> Actor:
        """How this principal appears in ledger events."""
        return Actor(id=self.id, role=self.role)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def shown_as(self) -> str:
        """How people read the principal: the display name, else the principal's name."""
        return self.display_name or self.name


def name_list(names: Mapping[str, str]) -> list[dict[str, str]]:
    """``Principals.shown_names`` as the API and the CLI's JSON give it: ``[{id, name}]``."""
    return [{"id": principal_id, "name": name} for principal_id, name in names.items()]


@dataclass(frozen=True)
class CommittedName:
    """A display name a principal was given, with the salt of the commitment the event at
    ``ledger_index`` carries."""

    ledger_index: int
    salt: bytes
    name: str


def check_display_name(display_name: str) -> str:
    """The display name if it can be recorded: 1 to DISPLAY_NAME_MAX characters, no control
    or format character, no space at either end; BadRequest saying why otherwise."""
    if not display_name or len(display_name) > DISPLAY_NAME_MAX:
        raise BadRequest(f"a display name is 1 to {DISPLAY_NAME_MAX} characters")
    if display_name != display_name.strip():
        raise BadRequest("a display name does not begin or end with a space")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in display_name):
        raise BadRequest("a display name holds no control, format or line-break character")
    return display_name


def check_provider_binding(role: str, provider_id: str | None) -> None:
    """A provider principal, and only one, is bound to a provider: FieldFault naming
    ``provider`` otherwise."""
    if (role == "provider") != (provider_id is not None):
        raise FieldFault("provider", "binds a provider principal, and only one, to a provider")


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

    def save_name(self, tx: AppendTransaction, principal_id: str, name: CommittedName) -> None:
        """Keep a display name and its salt, and make it the principal's name in force."""

    def names(self, principal_id: str) -> Sequence[CommittedName]:
        """Every display name the principal was given, in ledger order."""

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
        self,
        name: str,
        role: str,
        by: Actor,
        provider_id: str | None = None,
        email: str | None = None,
        display_name: str | None = None,
    ) -> tuple[Principal, str]:
        """Create a principal and its token; the token is returned here and never again.

        ``email``, a plain ``local@domain`` address, is where the principal gets alerts; it
        is kept with the principal, never in the ledger. ``display_name`` is how people read
        the principal; ``principal.created`` commits to it (``name_commitment``).

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
        check_provider_binding(role, provider_id)
        if email is not None and not is_email_address(email):
            raise BadRequest("email is a plain address, local@domain, of 254 characters or fewer")
        if display_name is not None:
            check_display_name(display_name)
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
            email=email,
            display_name=display_name,
        )
        with self.ledger.recording() as recorder:
            if self.store.by_name(name, recorder.tx) is not None:
                raise Conflict(f"a principal named {name!r} exists already")
            if bootstrap and self.store.any(recorder.tx):
                raise Forbidden("the system creates the first admin only: principals exist")
            self.store.insert(recorder.tx, principal, token_hash(token))
            data: dict[str, str | None] = {"role": role, "provider": provider_id}
            if display_name is not None:
                data["name_commitment"] = self._commit_name(recorder, principal.id, display_name)
            recorder.add(NewEvent("principal.created", by, _subject(principal), data))
        return principal, token

    def name(self, name: str, display_name: str, by: Actor) -> Principal:
        """Give a principal a new display name (``principal.named``, admins only)."""
        require_role(by.role, ADMINS, "name principals")
        check_display_name(display_name)
        with self.ledger.recording() as recorder:
            principal = self.store.by_name(name, recorder.tx)
            if principal is None:
                raise NotFound(f"no principal named {name!r}")
            committed = self._commit_name(recorder, principal.id, display_name)
            recorder.add(
                NewEvent("principal.named", by, _subject(principal), {"name_commitment": committed})
            )
        return Principal(**{**principal.__dict__, "display_name": display_name})

    def _commit_name(self, recorder: Recorder, principal_id: str, display_name: str) -> str:
        """Keep the name and its salt for the event about to be added; its commitment."""
        salt, digest = commit(display_name.encode("utf-8"))
        named = CommittedName(recorder.next_index, salt, display_name)
        self.store.save_name(recorder.tx, principal_id, named)
        return digest

    def names(self, principal_id: str) -> Sequence[CommittedName]:
        """Every display name of a principal with its salt, in ledger order."""
        return self.store.names(principal_id)

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

    def shown_names(self, ids: Iterable[str]) -> dict[str, str]:
        """How people read each of the principals ``ids`` (its display name, else its name),
        by id, in the order of ``ids``; an id no principal has is left out."""
        wanted = list(dict.fromkeys(ids))
        wanted_set = set(wanted)
        shown = {p.id: p.shown_as for p in self.store.list() if p.id in wanted_set}
        return {
            principal_id: shown[principal_id] for principal_id in wanted if principal_id in shown
        }

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
