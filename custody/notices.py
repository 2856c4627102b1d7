"""Notices to providers: a signed ``custos/notice/v1`` note POSTed to the provider's URL.

A notice is written to an outbox in the same transaction as the order event it announces, so
an event the provider must act on is never recorded without its notice. Delivery happens
afterwards, retried with backoff; every attempt and its outcome is kept, so the authority
sees a failed delivery. Like the events, a notice names the order, its state, the ledger
index and the deadline: never the targets or any other content of the order, which the
provider fetches, authenticated, from its own endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from custody.events import format_time
from custody.interfaces import AppendTransaction
from custody.note_types import NOTICE_TYPE, json_note_text

# The order events a provider must act on: service, a changed deadline or hold, an answer
# to its objection or question, and a withdrawal (stop, release what was preserved).
NOTIFY_EVENTS = frozenset(
    {
        "order.served",
        "order.extended",
        "order.objection_answered",
        "order.clarification_answered",
        "order.withdrawn",
    }
)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Notice:
    """One notice in the outbox and where its delivery stands.

    ``next_attempt_at`` is None once it was delivered or given up on (state ``failed``).
    """

    order_id: str
    provider_id: str
    event: str
    ledger_index: int
    url: str
    note: bytes
    created_at: datetime
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


class NoticeStore(Protocol):
    """The outbox. ``add`` goes through the append transaction of the event it announces."""

    def add(self, tx: AppendTransaction, notice: Notice) -> None: ...

    def for_order(self, order_id: str) -> Sequence[Notice]: ...

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Notice]:
        """Pending notices due by ``now``, each moved to ``lease_until`` so that no other
        worker takes it meanwhile."""

    def record_attempt(self, notice: Notice) -> None:
        """Store the notice's state, attempts, next attempt, delivery time and last error."""
