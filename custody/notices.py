"""Notices to providers: a signed ``custos/notice/v1`` note POSTed to the provider's URL.

A notice is written to an outbox in the same transaction as the order event it announces, so
an event the provider must act on is never recorded without its notice. Delivery happens
afterwards, retried with backoff; every attempt and its outcome is kept, so the authority
sees a failed delivery. Like the events, a notice names the order, its state, the ledger
index and the deadline: never the targets or any other content of the order, which the
provider fetches, authenticated, from its own endpoint.

Delivery follows the outbox policy of ``custody.outbox`` (claimed, sent, retried with
backoff, given up on after the configured attempts). What the authority sees of a failure is
"not delivered" and the time of the attempt, never the remote answer: what a URL answered (a
status, "connection refused") would make the notice sender a port scanner for whoever reads
it. Delivery is at least once; a provider recognises a repeat by the notice's ledger index,
which the signed note names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from custody.events import format_time
from custody.interfaces import AppendTransaction, Clock
from custody.note_types import NOTICE_TYPE, json_note_text
from custody.outbox import (
    DEFAULT_LEASE,
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryFailed,
    DeliveryReport,
    OutboxDelivery,
    OutboxStore,
    not_delivered,
)

# The order events a provider must act on: service, a changed deadline or hold, an answer
# to its objection or question, the enforcing State's answer (a ground stops the order,
# Regulation (EU) 2023/1543 Art 12), and a withdrawal (stop, release what was preserved).
NOTIFY_EVENTS = frozenset(
    {
        "order.served",
        "order.resent",
        "order.adapted",
        "order.extended",
        "order.production_request_confirmed",
        "order.objection_answered",
        "order.clarification_answered",
        "order.enforcement_sought",
        "order.enforcing_answered",
        "order.withdrawn",
    }
)
# The notices whose delivery (2xx) is the provider's receipt of the order, when it came
# first: a served order, the same notice sent again, and a new revision.
RECEIPT_EVENTS = frozenset({"order.served", "order.resent", "order.adapted"})
# Who a notice goes to: the provider the order is addressed to, or the enforcing authority
# of an EU order (Regulation (EU) 2023/1543 Art 8), which is sent the order itself.
PROVIDER = "provider"
ENFORCING_AUTHORITY = "enforcing_authority"
ADDRESSEES = (PROVIDER, ENFORCING_AUTHORITY)
# The order events the enforcing authority is sent the order on: its issue and a revision.
ENFORCING_NOTIFY_EVENTS = frozenset({"order.served", "order.adapted"})


@dataclass(frozen=True)
class Notice:
    """One notice in the outbox and where its delivery stands.

    ``next_attempt_at`` is None once it was delivered or given up on (state ``failed``).
    ``provider_id`` is the order's addressee; ``addressee`` says whether the notice goes to
    it or to the order's enforcing authority.
    """

    order_id: str
    provider_id: str
    event: str
    ledger_index: int
    url: str
    note: bytes
    created_at: datetime
    revision: int = 1
    addressee: str = PROVIDER
    id: int | None = None
    state: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """How the authority sees it (the note itself is left out: the order view has it)."""
        return {
            "event": self.event,
            "addressee": self.addressee,
            "ledger_index": self.ledger_index,
            "url": self.url,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": format_time(self.created_at),
            "next_attempt_at": _time(self.next_attempt_at),
            "delivered_at": _time(self.delivered_at),
            "last_error": self.last_error,
        }


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def notice_text(
    *,
    order_id: str,
    provider_id: str,
    event: str,
    state: str,
    ledger_index: int,
    time: datetime,
    due: datetime | None,
) -> str:
    """The note text: the type line, then the notice as RFC 8785 JSON."""
    body = {
        "order": order_id,
        "provider": provider_id,
        "event": event,
        "state": state,
        "ledger_index": ledger_index,
        "time": format_time(time),
        "due": _time(due),
        "href": f"/v1/provider/orders/{order_id}",
    }
    return json_note_text(NOTICE_TYPE, body)


def enforcing_notice_text(
    *,
    order_id: str,
    event: str,
    ledger_index: int,
    time: datetime,
    review: Mapping[str, int],
    issued: Mapping[str, Any],
) -> str:
    """The note text of a notice to an enforcing authority (Regulation (EU) 2023/1543 Art 8):
    it does not sign in, so the notice carries the order as issued (``issued``: the body of
    its ``custos/order/v1`` note) and the time it has to raise a ground (``review``:
    ``{"days": 10}`` or ``{"hours": 96}`` from its receipt of this notice)."""
    body = {
        "order": order_id,
        "addressee": ENFORCING_AUTHORITY,
        "event": event,
        "ledger_index": ledger_index,
        "time": format_time(time),
        "review_period": dict(review),
        "issued": dict(issued),
    }
    return json_note_text(NOTICE_TYPE, body)


class NoticeStore(OutboxStore[Notice], Protocol):
    """The outbox. ``add`` goes through the append transaction of the event it announces."""

    def add(self, tx: AppendTransaction, notice: Notice) -> None: ...

    def for_order(self, order_id: str) -> Sequence[Notice]: ...


class NoticeDeliveryError(DeliveryFailed):
    """One attempt to deliver a notice failed (refused, timed out, or not answered 2xx)."""


class NoticeSender(Protocol):
    """POSTs a signed note to a provider's notification URL."""

    def __call__(self, url: str, note: bytes) -> None:
        """Return once the provider accepted the note; raise NoticeDeliveryError otherwise."""


class NoticeDelivery(OutboxDelivery[Notice]):
    """The delivery policy over the notices' outbox, a sender and a clock (times in seconds)."""

    log = logging.getLogger("custos.notices")

    def __init__(
        self,
        store: NoticeStore,
        send: NoticeSender,
        clock: Clock,
        *,
        on_delivered: Callable[[Notice], object] | None = None,
        **policy: Any,
    ) -> None:
        """``policy``: ``OutboxDelivery``'s attempts, delays and lease."""
        super().__init__(store, clock, **policy)
        self.send = send
        # Told of each delivered notice once it is recorded (the order desk records the
        # provider's receipt of an order from it).
        self.on_delivered = on_delivered

    def send_message(self, message: Notice) -> None:
        self.send(message.url, message.note)

    def describe(self, message: Notice) -> str:
        where = urlsplit(message.url).hostname
        return f"notice {message.id} (order {message.order_id}, {message.event}) to {where}"

    def delivered(self, message: Notice) -> None:
        if self.on_delivered is not None:
            self.on_delivered(message)


__all__ = [
    "DEFAULT_LEASE",
    "DELIVERED",
    "ENFORCING_AUTHORITY",
    "ENFORCING_NOTIFY_EVENTS",
    "FAILED",
    "NOTIFY_EVENTS",
    "PENDING",
    "PROVIDER",
    "RECEIPT_EVENTS",
    "DeliveryReport",
    "Notice",
    "NoticeDelivery",
    "NoticeDeliveryError",
    "NoticeSender",
    "NoticeStore",
    "enforcing_notice_text",
    "not_delivered",
    "notice_text",
]
