"""Service providers: the addressees of orders, and where Custos tells them of one.

A provider is registered by an admin (``provider.registered``, a ledger event committed with
the record). Provider principals are bound to one provider and see only its orders. When a
provider gives a notification URL, Custos POSTs a signed ``custos/notice/v1`` note there on
service and on every change it must act on (see ``custody.notices``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from custody.errors import Conflict, Faults, FieldFault, NotFound
from custody.events import Actor, NewEvent, Subject, format_time
from custody.evidence import require_role
from custody.interfaces import AppendTransaction
from custody.ledger import Ledger
from custody.order_deadlines import Place
from custody.order_document import MAX_LINE, check_language, check_text
from custody.outbound import OutboundPolicy
from custody.principals import ADMINS

# Who may see the provider register: admins, and the authorities who address orders to them.
READERS = ("admin", "authority", "approver")
FIELDS = ("name", "jurisdiction", "legal_representative", "contact")


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    jurisdiction: str
    legal_representative: str
    contact: str
    created_at: datetime
    notification_url: str | None = None
    time_zone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None
    # The languages it accepts orders in (Regulation (EU) 2023/1543 Art 9), BCP 47 tags.
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))

    @property
    def place(self) -> Place:
        """Where the provider is established: its deadlines end there (Regulation 1182/71)."""
        return Place(self.time_zone, self.country, self.subdivision)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "jurisdiction": self.jurisdiction,
            "legal_representative": self.legal_representative,
            "contact": self.contact,
            "notification_url": self.notification_url,
            "time_zone": self.time_zone,
            "country": self.country,
            "subdivision": self.subdivision,
            "languages": list(self.languages),
            "created_at": format_time(self.created_at),
        }


def new_provider_id() -> str:
    return "prv_" + secrets.token_hex(8)


def place_of(fields: Mapping[str, Any]) -> Place:
    """The provider's establishment from its fields: an IANA ``time_zone`` (default UTC), an
    ISO 3166-1 ``country`` and, where its holidays differ by region, an ISO 3166-2
    ``subdivision``. A wrong time zone and a wrong country are both named (FieldErrors)."""
    time_zone = fields.get("time_zone") or "UTC"
    country, subdivision = fields.get("country"), fields.get("subdivision")
    faults = Faults()
    faults.check(_place_fault, time_zone, None, None)
    faults.check(_place_fault, "UTC", country, subdivision)
    faults.raise_any()
    return Place(time_zone, country, subdivision)


def _place_fault(time_zone: str, country: str | None, subdivision: str | None) -> None:
    try:
        Place(time_zone, country, subdivision)
    except ValueError as exc:  # "<field> is ...": the field it names, and why
        field, _, reason = str(exc).partition(" ")
        raise FieldFault(field, reason) from None


def languages_of(value: object) -> tuple[str, ...]:
    """The languages a provider accepts orders in: a list of BCP 47 tags, none by default."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise FieldFault("languages", "is a list of BCP 47 tags such as ['en', 'de']")
    tags = tuple(check_language(tag, f"languages[{i}]") for i, tag in enumerate(value))
    if len(set(tags)) != len(tags):
        raise FieldFault("languages", "names a language twice")
    return tags


class ProviderStore(Protocol):
    def insert(self, tx: AppendTransaction, provider: Provider) -> None: ...

    def get(self, provider_id: str) -> Provider | None: ...

    def by_name(self, name: str, tx: AppendTransaction | None = None) -> Provider | None: ...

    def list(self, limit: int | None = None, after: str | None = None) -> Sequence[Provider]:
        """Providers by name, after the name ``after``, at most ``limit`` of them."""


class Providers:
    """Registers and lists providers."""

    def __init__(
        self, store: ProviderStore, ledger: Ledger, outbound: OutboundPolicy | None = None
    ) -> None:
        self.store = store
        self.ledger = ledger
        # Where notices may go (custody.outbound): checked here, and again at each delivery.
        self.outbound = outbound or OutboundPolicy()

    def add(self, fields: Mapping[str, Any], by: Actor) -> Provider:
        require_role(by.role, ADMINS, "register providers")
        faults = Faults()  # every field at fault, named at once
        for name in FIELDS:
            faults.check(check_text, fields.get(name), name, MAX_LINE)
        url = fields.get("notification_url")
        if url is not None:
            faults.check(
                self.outbound.check_registration, url, "notification_url", about="notification_url"
            )
        read: dict[str, Any] = {}
        faults.check(lambda: read.update(place=place_of(fields)))
        faults.check(lambda: read.update(languages=languages_of(fields.get("languages"))))
        faults.raise_any()
        place, languages = read["place"], read["languages"]
        provider = Provider(
            id=new_provider_id(),
            name=fields["name"],
            jurisdiction=fields["jurisdiction"],
            legal_representative=fields["legal_representative"],
            contact=fields["contact"],
            notification_url=url,
            created_at=self.ledger.clock(),
            time_zone=place.time_zone,
            country=place.country,
            subdivision=place.subdivision,
            languages=languages,
        )
        with self.ledger.recording() as recorder:
            if self.store.by_name(provider.name, recorder.tx) is not None:
                raise Conflict(f"a provider named {provider.name!r} exists already")
            self.store.insert(recorder.tx, provider)
            # A provider is an organisation, not a person: its name and jurisdiction are
            # recorded; its contacts and notification URL are not.
            data = {"name": provider.name, "jurisdiction": provider.jurisdiction}
            recorder.add(
                NewEvent("provider.registered", by, Subject("provider", provider.id), data),
                at=provider.created_at,
            )
        return provider

    def get(self, provider_id: str) -> Provider:
        provider = self.store.get(provider_id)
        if provider is None:
            raise NotFound(f"no provider {provider_id}")
        return provider

    def list(self, limit: int | None = None, after: str | None = None) -> Sequence[Provider]:
        """Providers by name; with ``after``, those whose name sorts after it."""
        return self.store.list(limit, after)
