"""Delivering the outbox: each due notice POSTed once at a time, retried with backoff.

The policy, step by step, for each notice ``deliver_due`` takes:

1. claim it: ``NoticeStore.claim_due`` moves its next attempt to the end of a lease, so no
   other worker (another thread, a gunicorn worker, ``custos orders sweep``) takes it while
   this one sends it;
2. send it; a failure is a ``NoticeDeliveryError`` with a short message;
3. record the attempt: ``delivered``; or, after a failure, ``pending`` again after
   ``min(base_delay * 2 ** (attempts - 1), max_delay)`` seconds; or ``failed`` once
   ``max_attempts`` attempts have failed. What the authority sees of a failure
   (``last_error``) is "not delivered" and the time of the attempt, never the remote
   answer: what a URL answered (a status, "connection refused") would make the notifier a
   port scanner for whoever reads it. The reason goes to the operator's log.

Delivery is at least once: a worker that dies mid-send leaves its claim to lapse with the
lease, and the notice is sent again. A provider recognises a repeat by the notice's ledger
index, which the signed note names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from custody.errors import CustosError
from custody.events import format_time
from custody.interfaces import Clock
from custody.notices import DELIVERED, FAILED, PENDING, Notice, NoticeStore

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
        self.store.record_attempt(
            replace(
                notice,
                state=DELIVERED,
                attempts=attempts,
                next_attempt_at=None,
                delivered_at=self.clock(),
            )
        )
        return DeliveryReport(delivered=1)


__all__ = [
    "DEFAULT_LEASE",
    "DeliveryReport",
    "NoticeDelivery",
    "NoticeDeliveryError",
    "NoticeSender",
    "not_delivered",
]
