"""Notices to providers: a signed ``custos/notice/v1`` note POSTed to the provider's URL.

A notice is written to an outbox in the same transaction as the order event it announces, so
an event the provider must act on is never recorded without its notice. Delivery happens
afterwards, retried with backoff; every attempt and its outcome is kept, so the authority
sees a failed delivery. Like the events, a notice names the order, its state, the ledger
index and the deadline: never the targets or any other content of the order, which the
provider fetches, authenticated, from its own endpoint.

Delivering the outbox: each due notice POSTed once at a time, retried with backoff.

The policy, step by step, for each notice ``deliver_due`` takes:

1. claim it: ``NoticeStore.claim_due`` moves its next attempt to the end of a lease, so no
   other worker (another thread, a gunicorn worker, ``custos orders sweep``) takes it while
   this one sends it;
2. send it; a failure is a ``NoticeDeliveryError`` with a short message;
3. record the attempt: ``delivered``; or, after a failure, ``pending`` again after
   ``min(base_delay * 2 ** (attempts - 1), max_delay)`` seconds; or ``failed`` once
   ``max_attempts`` attempts have failed. What the authority sees of a failure
   (``last_error``) is "not delivered" and the time of the attempt, never the remote
   answer: what a URL answered (a status, "connection refused") would make the notice sender a
   port scanner for whoever reads it. The reason goes to the operator's log.

Delivery is at least once: a worker that dies mid-send leaves its claim to lapse with the
lease, and the notice is sent again. A provider recognises a repeat by the notice's ledger
index, which the signed note names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from custody.errors import CustosError
from custody.events import format_time
from custody.interfaces import AppendTransaction, Clock
from custody.note_types import NOTICE_TYPE, json_note_text

# The order events a provider must act on: service, a changed deadline or hold, an answer
# to its objection or question, and a withdrawal (stop, release what was preserved).
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
        "order.withdrawn",
    }
)
# The notices whose delivery (2xx) is the provider's receipt of the order, when it came
# first: a served order, the same notice sent again, and a new revision.
RECEIPT_EVENTS = frozenset({"order.served", "order.resent", "order.adapted"})
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
    revision: int = 1
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


log = logging.getLogger("custos.notices")

# How long a claimed notice stays with its worker: far longer than one attempt may take.
DEFAULT_LEASE = 300.0
# 2**62 seconds of delay exceeds any max_delay; the cap keeps the float finite.
_MAX_EXPONENT = 62


class NoticeDeliveryError(CustosError):
    """One attempt to deliver a notice failed (refused, timed out, or not answered 2xx)."""


def not_delivered(at: datetime) -> str:
    """What the authority sees of a failed attempt: that it failed, and when."""
    return f"not delivered at {format_time(at)}"


class NoticeSender(Protocol):
    """POSTs a signed note to a provider's notification URL."""

    def __call__(self, url: str, note: bytes) -> None:
        """Return once the provider accepted the note; raise NoticeDeliveryError otherwise."""


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_due`` did: notices delivered, to be retried, and given up on."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retried + self.failed

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered,
            self.retried + other.retried,
            self.failed + other.failed,
        )

    def as_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retried": self.retried, "failed": self.failed}


class NoticeDelivery:
    """The delivery policy over an outbox, a sender and a clock (times in seconds)."""

    def __init__(
        self,
        store: NoticeStore,
        send: NoticeSender,
        clock: Clock,
        *,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        lease: float = DEFAULT_LEASE,
        on_delivered: Callable[[Notice], object] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        if not 0 < base_delay <= max_delay:
            raise ValueError("base_delay must be positive and at most max_delay")
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.store = store
        self.send = send
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=lease)
        # Told of each delivered notice once it is recorded (the order desk records the
        # provider's receipt of an order from it).
        self.on_delivered = on_delivered

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: doubling from ``base_delay``,
        at most ``max_delay``."""
        exponent = min(attempts - 1, _MAX_EXPONENT)
        return timedelta(seconds=min(self.base_delay * 2.0**exponent, self.max_delay))

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Attempt the notices due now, at most ``limit`` attempts.

        Each is claimed on its own, just before its attempt, so that a lease need only
        outlast one attempt, not a whole batch.
        """
        report = DeliveryReport()
        while report.attempted < limit:
            now = self.clock()
            claimed = self.store.claim_due(now, now + self.lease, 1)
            if not claimed:
                break
            report += self._attempt(claimed[0])
        return report

    def _attempt(self, notice: Notice) -> DeliveryReport:
        attempts = notice.attempts + 1
        try:
            self.send(notice.url, notice.note)
        except NoticeDeliveryError as exc:
            reason = str(exc) or type(exc).__name__
            now = self.clock()
            error = not_delivered(now)
            where = urlsplit(notice.url).hostname
            if attempts >= self.max_attempts:
                self.store.record_attempt(
                    replace(
                        notice,
                        state=FAILED,
                        attempts=attempts,
                        next_attempt_at=None,
                        last_error=error,
                    )
                )
                log.warning(
                    "notice %s (order %s, %s) to %s failed after %d attempts: %s",
                    notice.id,
                    notice.order_id,
                    notice.event,
                    where,
                    attempts,
                    reason,
                )
                return DeliveryReport(failed=1)
            delay = self.retry_delay(attempts)
            self.store.record_attempt(
                replace(
                    notice,
                    state=PENDING,
                    attempts=attempts,
                    next_attempt_at=now + delay,
                    last_error=error,
                )
            )
            log.info(
                "notice %s to %s: attempt %d failed (%s); next in %ss",
                notice.id,
                where,
                attempts,
                reason,
                delay.total_seconds(),
            )
            return DeliveryReport(retried=1)
        # An earlier failure's last_error is kept: it tells the authority why it took retries.
        delivered = replace(
            notice,
            state=DELIVERED,
            attempts=attempts,
            next_attempt_at=None,
            delivered_at=self.clock(),
        )
        self.store.record_attempt(delivered)
        if self.on_delivered is not None:
            self.on_delivered(delivered)
        return DeliveryReport(delivered=1)
