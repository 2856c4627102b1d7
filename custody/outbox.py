"""Delivering a durable outbox: each due message sent once at a time, retried with backoff.

Notices to providers (``custody.notices``) and e-mail alerts (``custody.alerts``) share this
policy. A message is written to its outbox in the transaction of what it announces, so a
request never waits for a delivery and a failed delivery is retried, not lost.

The policy, step by step, for each message ``deliver_due`` takes:

1. claim it: ``OutboxStore.claim_due`` moves its next attempt to the end of a lease, so no
   other worker (another thread, a gunicorn worker, ``custos orders sweep``) takes it while
   this one sends it;
2. send it; a failure is a ``DeliveryFailed`` with a short message;
3. record the attempt: ``delivered``; or, after a failure, ``pending`` again after
   ``min(base_delay * 2 ** (attempts - 1), max_delay)`` seconds; or ``failed`` once
   ``max_attempts`` attempts have failed. What a reader of the outbox sees of a failure
   (``last_error``) is "not delivered" and the time of the attempt, never the remote
   answer; the reason goes to the operator's log.

Delivery is at least once: a worker that dies mid-send leaves its claim to lapse with the
lease, and the message is sent again.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from custody.errors import CustosError
from custody.events import format_time
from custody.interfaces import Clock

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# How long a claimed message stays with its worker: far longer than one attempt may take.
DEFAULT_LEASE = 300.0
# 2**62 seconds of delay exceeds any max_delay; the cap keeps the float finite.
_MAX_EXPONENT = 62


class DeliveryFailed(CustosError):
    """One attempt to deliver a message failed."""


class OutboxMessage(Protocol):
    """What the policy reads of a message (a frozen dataclass with these fields)."""

    @property
    def id(self) -> int | None: ...

    @property
    def attempts(self) -> int: ...


Message = TypeVar("Message", bound=OutboxMessage)


class OutboxStore(Protocol[Message]):
    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Message]:
        """Pending messages due by ``now``, each moved to ``lease_until`` so that no other
        worker takes it meanwhile."""

    def record_attempt(self, message: Message) -> None:
        """Store the message's state, attempts, next attempt, delivery time and last error."""


def not_delivered(at: datetime) -> str:
    """What a reader of the outbox sees of a failed attempt: that it failed, and when."""
    return f"not delivered at {format_time(at)}"


@dataclass(frozen=True)
class DeliveryReport:
    """What one ``deliver_due`` did: messages delivered, to be retried, and given up on."""

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


def _replace(message: Message, **changes: Any) -> Message:
    replaced: Message = dataclasses.replace(message, **changes)  # type: ignore[type-var]
    return replaced


class OutboxDelivery(ABC, Generic[Message]):
    """The delivery policy over an outbox and a clock (times in seconds); subclasses send."""

    log = logging.getLogger("custos.outbox")

    def __init__(
        self,
        store: OutboxStore[Message],
        clock: Clock,
        *,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        if not 0 < base_delay <= max_delay:
            raise ValueError("base_delay must be positive and at most max_delay")
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = timedelta(seconds=lease)

    @abstractmethod
    def send_message(self, message: Message) -> None:
        """Return once the message was accepted; raise DeliveryFailed otherwise."""

    @abstractmethod
    def describe(self, message: Message) -> str:
        """The message in the operator's log: what and where, never its content."""

    def delivered(self, message: Message) -> None:
        """Told of each delivered message once it is recorded."""

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: doubling from ``base_delay``,
        at most ``max_delay``."""
        exponent = min(attempts - 1, _MAX_EXPONENT)
        return timedelta(seconds=min(self.base_delay * 2.0**exponent, self.max_delay))

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Attempt the messages due now, at most ``limit`` attempts.

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

    def _attempt(self, message: Message) -> DeliveryReport:
        attempts = message.attempts + 1
        try:
            self.send_message(message)
        except DeliveryFailed as exc:
            reason = str(exc) or type(exc).__name__
            now = self.clock()
            error = not_delivered(now)
            if attempts >= self.max_attempts:
                self.store.record_attempt(
                    _replace(
                        message,
                        state=FAILED,
                        attempts=attempts,
                        next_attempt_at=None,
                        last_error=error,
                    )
                )
                self.log.warning(
                    "%s failed after %d attempts: %s", self.describe(message), attempts, reason
                )
                return DeliveryReport(failed=1)
            delay = self.retry_delay(attempts)
            self.store.record_attempt(
                _replace(
                    message,
                    state=PENDING,
                    attempts=attempts,
                    next_attempt_at=now + delay,
                    last_error=error,
                )
            )
            self.log.info(
                "%s: attempt %d failed (%s); next in %ss",
                self.describe(message),
                attempts,
                reason,
                delay.total_seconds(),
            )
            return DeliveryReport(retried=1)
        # An earlier failure's last_error is kept: it tells the reader why it took retries.
        delivered = _replace(
            message,
            state=DELIVERED,
            attempts=attempts,
            next_attempt_at=None,
            delivered_at=self.clock(),
        )
        self.store.record_attempt(delivered)
        self.delivered(delivered)
        return DeliveryReport(delivered=1)
