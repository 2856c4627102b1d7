"""E-mail alerts: the people an order concerns hear that it needs them, by e-mail.

Who hears what (each recipient gets a message of its own, so no one sees another's address):

- the provider (its ``contact``, when that is an e-mail address, and each active principal of
  the provider with an e-mail address), of every event it must act on: the events of
  ``custody.notices.NOTIFY_EVENTS`` (served, sent again, adapted, extended, a production
  request confirmed, an objection or a question answered, enforcement sought, withdrawn);
- the authority (the order's drafter, revisers and approver, those active with an e-mail
  address), of the provider's answers: acknowledged, objected, asked for clarification,
  confirmed preservation, produced (complete), no data held;
- both, once per deadline, when an order still owed is due within the configured time
  (``due_soon``; an extended deadline is alerted again).

An alert is written to an outbox in the transaction of the event it announces (a due-soon
alert, which announces no event, on its own) and sent afterwards under the policy of
``custody.outbox``: a failed send is retried and never holds up the request that caused it.
Like a notice, an alert names the order, its state and its deadline, never the targets or any
other content of the order: whoever reads it signs in to see more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from custody.addresses import is_email_address
from custody.event_types import EVENT_TYPES
from custody.events import format_time
from custody.interfaces import AppendTransaction, Clock
from custody.notices import NOTIFY_EVENTS
from custody.order_document import PRESERVATION
from custody.orders import Order, deadline
from custody.outbox import (
    PENDING,
    DeliveryFailed,
    OutboxDelivery,
    OutboxStore,
)
from custody.providers import Provider, ProviderStore

PROVIDER_EVENTS = NOTIFY_EVENTS
AUTHORITY_EVENTS = frozenset(
    {
        "order.acknowledged",
        "order.objected",
        "order.clarification_requested",
        "order.preserved",
        "order.produced",
        "order.no_data",
    }
)
# The kind of an alert that announces no event: the deadline is near.
DUE_SOON = "due_soon"


@dataclass(frozen=True)
class Alert:
    """One e-mail in the outbox. ``key`` makes an alert that must go once (``due_soon``)
    unique; ``next_attempt_at`` is None once it was sent or given up on."""

    order_id: str
    kind: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    key: str | None = None
    id: int | None = None
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None


class AlertStore(OutboxStore[Alert], Protocol):
    """The alerts' outbox."""

    def add(self, tx: AppendTransaction, alerts: Sequence[Alert]) -> None:
        """Add alerts in the append transaction of the event they announce."""

    def add_once(self, alerts: Sequence[Alert]) -> int:
        """Add, on its own, each alert whose ``key`` no alert has yet; how many were added."""

    def for_order(self, order_id: str) -> Sequence[Alert]: ...


class AddressBook(Protocol):
    """Where the alerts find people's e-mail addresses (the principal store)."""

    def email_addresses(
        self,
        principal_ids: Sequence[str],
        provider_id: str | None,
        tx: AppendTransaction | None = None,
    ) -> Sequence[str]:
        """The addresses of the active principals among ``principal_ids`` or bound to
        ``provider_id`` that have one."""


def _local(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%d %b %Y, %H:%M ") + (local.tzname() or zone)


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return list(seen.values())


class Alerts:
    """Writes the alerts an order's event or its near deadline calls for."""

    def __init__(
        self,
        store: AlertStore,
        people: AddressBook,
        providers: ProviderStore,
        *,
        public_url: str,
        due_within: timedelta,
    ) -> None:
        self.store = store
        self.people = people
        self.providers = providers
        self.public_url = public_url.rstrip("/")
        self.due_within = due_within

    def queue(self, tx: AppendTransaction, order: Order, event_type: str, at: datetime) -> int:
        """Write the alerts of ``event_type`` on ``order`` in the event's transaction."""
        if order.clock is None:
            return 0  # never served: nothing concerns the provider, nor its answers
        provider = self.providers.get(order.document.provider)
        if provider is None:
            return 0
        if event_type in PROVIDER_EVENTS:
            recipients = self._provider_side(provider, tx)
            link = f"{self.public_url}/provider/orders/{order.id}"
        elif event_type in AUTHORITY_EVENTS:
            recipients = self._authority_side(order, tx)
            link = self.public_url or ""
        else:
            return 0
        label = EVENT_TYPES[event_type].label
        alerts = [
            self._alert(order, provider, event_type, label, recipient, link, at)
            for recipient in recipients
        ]
        if alerts:
            self.store.add(tx, alerts)
        return len(alerts)

    def queue_due_soon(self, orders: Iterable[Order], now: datetime) -> int:
        """Write, once per order, deadline and recipient, the alerts of orders still owed
        that are due within the configured time; how many were written."""
        alerts = []
        for order in orders:
            due = deadline(order)
            # A preservation order's deadline is when its hold ends: nothing owed then.
            if order.document.kind == PRESERVATION:
                continue
            if due is None or not now <= due <= now + self.due_within:
                continue
            provider = self.providers.get(order.document.provider)
            if provider is None:
                continue
            links = [
                (r, f"{self.public_url}/provider/orders/{order.id}")
                for r in self._provider_side(provider, None)
            ]
            links += [(r, self.public_url) for r in self._authority_side(order, None)]
            for recipient, link in links:
                alert = self._alert(
                    order, provider, DUE_SOON, "Deadline near", recipient, link, now
                )
                key = f"{DUE_SOON}:{order.id}:{format_time(due)}:{recipient.lower()}"
                alerts.append(_keyed(alert, key))
        return self.store.add_once(alerts) if alerts else 0

    def _provider_side(self, provider: Provider, tx: AppendTransaction | None) -> list[str]:
        contact = [provider.contact] if is_email_address(provider.contact) else []
        return _unique([*contact, *self.people.email_addresses((), provider.id, tx)])

    def _authority_side(self, order: Order, tx: AppendTransaction | None) -> list[str]:
        people = [*order.authors, *([order.approved_by] if order.approved_by else [])]
        return _unique(self.people.email_addresses(people, None, tx))

    def _alert(
        self,
        order: Order,
        provider: Provider,
        kind: str,
        label: str,
        recipient: str,
        link: str,
        at: datetime,
    ) -> Alert:
        due = deadline(order)
        lines = [
            f"{label}.",
            "",
            f"Order: {order.id}",
            f"Provider: {provider.name}",
            f"State: {order.state.value.replace('_', ' ')}",
        ]
        if due is not None:
            # In the provider's time zone, where its deadline ends; in UTC beside it.
            zone = provider.time_zone
            shown = f"{_local(due, zone)} ({zone})"
            if zone != "UTC":
                shown += f", {_local(due, 'UTC')}"
            lines.append(f"Due: {shown}")
        if link:
            lines += ["", f"Sign in to Custos to see it: {link}"]
        lines += [
            "",
            "This message names the order only; what it asks for is shown to those who sign in.",
        ]
        subject = f"Custos: {label} ({order.id})"
        return Alert(
            order_id=order.id,
            kind=kind,
            recipient=recipient,
            subject=subject,
            body="\n".join(lines) + "\n",
            created_at=at,
            next_attempt_at=at,
        )


def _keyed(alert: Alert, key: str) -> Alert:
    return Alert(**{**alert.__dict__, "key": key})


class AlertDeliveryError(DeliveryFailed):
    """One attempt to send an alert failed (the mail server refused it or was unreachable)."""


class AlertSender(Protocol):
    """Hands one e-mail to the configured mail server."""

    def __call__(self, recipient: str, subject: str, body: str) -> None:
        """Return once the server accepted it; raise AlertDeliveryError otherwise."""


class AlertDelivery(OutboxDelivery[Alert]):
    """The delivery policy over the alerts' outbox, a sender and a clock (times in seconds)."""

    log = logging.getLogger("custos.alerts")

    def __init__(self, store: AlertStore, send: AlertSender, clock: Clock, **policy: Any) -> None:
        """``policy``: ``OutboxDelivery``'s attempts, delays and lease."""
        super().__init__(store, clock, **policy)
        self.send = send

    def send_message(self, message: Alert) -> None:
        self.send(message.recipient, message.subject, message.body)

    def describe(self, message: Alert) -> str:
        domain = message.recipient.rpartition("@")[2]
        return f"alert {message.id} (order {message.order_id}, {message.kind}) to @{domain}"
