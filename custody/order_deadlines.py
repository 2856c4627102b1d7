"""An order's clock: how long after service it runs, and how objections stop it.

Service starts the clock; the provider's first read does not. A production order or a partial
traffic disclosure is due 10 days after service, 8 hours in an emergency (Regulation (EU)
2023/1543, Art 10(2) and 10(4)); a preservation order holds for its period, 90 days unless the
order says less (UN Convention against Cybercrime Art 25; Budapest Convention Art 16), and the
authority may extend it. An objection or a clarification request stops the clock until the
authority answers, and the time it stood still is added to the deadline. Every time is passed
in, never read here, so the arithmetic is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

PRODUCTION_PERIOD = timedelta(days=10)
EMERGENCY_PERIOD = timedelta(hours=8)
DEFAULT_PRESERVATION_DAYS = 90
# UN Convention Art 25 and Budapest Art 16 preserve "up to 90 days", renewable: one period,
# and each extension, is at most this long.
MAX_PRESERVATION_DAYS = 90


def service_period(*, preservation_days: int | None, emergency: bool) -> timedelta:
    """How long an order runs from service: its preservation period, or the time to produce."""
    if preservation_days is not None:
        return timedelta(days=preservation_days)
    return EMERGENCY_PERIOD if emergency else PRODUCTION_PERIOD


@dataclass(frozen=True)
class OrderClock:
    """The clock of a served order: when it started, how long it runs, how long it stood still.

    ``paused_since`` is set while an objection or a clarification request is unanswered.
    """

    served_at: datetime
    period: timedelta
    paused_since: datetime | None = None
    paused_for: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        for name in ("served_at", "paused_since"):
            moment = getattr(self, name)
            if moment is not None:
                if not isinstance(moment, datetime) or moment.utcoffset() is None:
                    raise ValueError(f"{name} must be a timezone-aware datetime")
                object.__setattr__(self, name, moment.astimezone(UTC))
        if self.period <= timedelta(0) or self.paused_for < timedelta(0):
            raise ValueError(
                "an order clock runs for a positive period and never stands still "
                "for a negative time"
            )

    @property
    def due(self) -> datetime | None:
        """When the order falls due or its hold ends; None while the clock is stopped."""
        if self.paused_since is not None:
            return None
        return self.served_at + self.period + self.paused_for

    def passed(self, now: datetime) -> bool:
        """Whether the deadline lies before ``now`` (an answer at the deadline is in time)."""
        due = self.due
        return due is not None and now > due

    def paused(self, at: datetime) -> OrderClock:
        """The clock stopped at ``at``; a stopped clock stays stopped from its first stop."""
        return self if self.paused_since is not None else replace(self, paused_since=at)

    def resumed(self, at: datetime) -> OrderClock:
        """The clock running again at ``at``, the time it stood still added to its deadline."""
        if self.paused_since is None:
            return self
        stood = max(at - self.paused_since, timedelta(0))
        return replace(self, paused_since=None, paused_for=self.paused_for + stood)

    def extended(self, by: timedelta) -> OrderClock:
        """The clock running ``by`` longer (a preservation order's renewal)."""
        return replace(self, period=self.period + by)
