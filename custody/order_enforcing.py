"""The enforcing State's review of an EU production order (Regulation (EU) 2023/1543 Arts 8,
10(3)-(4) and 12).

An order to produce traffic data (other than data requested only to identify the user) or
content, addressed to a provider established in another Member State, is sent to the
enforcing authority when it is issued, unless the Art 8(2) exemption applies
(``OrderDocument.notifies_enforcing_state``). From its receipt of that notice the enforcing
authority has:

- ten days to raise a ground for refusal (Art 12(2)), counted by Regulation 1182/71 in the
  enforcing State. The provider may answer meanwhile, but what it uploads is withheld from
  the issuing authority until those days end or the enforcing authority answers (Art 10(3));
  after a ground it stays withheld;
- in an emergency, 96 hours (Art 10(4)), counted exactly; the provider answers within its
  8 hours and nothing is withheld. A ground raised within the 96 hours obliges the issuing
  authority to delete or otherwise restrict the data it already received, and Custos
  records that act.

The enforcing authority does not sign in: the issuing authority records its answer (no
ground, a ground, or conditions) and when it was given. Nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from custody.order_deadlines import (
    ENFORCING_EMERGENCY_HOURS,
    ENFORCING_REVIEW_DAYS,
    Period,
    PeriodRule,
    Place,
    period_end,
)

# The enforcing authority's answers: it raises no ground, raises a ground for refusal
# (Art 12(1)), or lets the data be used only under conditions it specifies (Art 10(4)).
NO_GROUND = "no_ground"
GROUND = "ground"
CONDITIONS = "conditions"
ANSWERS = (NO_GROUND, GROUND, CONDITIONS)
# Art 12(1)(a)-(d): the grounds for refusal an enforcing authority may raise.
REFUSAL_GROUNDS = (
    "immunity_or_privilege",
    "fundamental_rights",
    "ne_bis_in_idem",
    "no_dual_criminality",
)
# Art 10(4): what the issuing authority does with data it already received.
RESTRICTIONS = ("deleted", "restricted")


@dataclass(frozen=True)
class EnforcingReview:
    """Where the enforcing authority's review of a notified order stands.

    ``received_at`` is its receipt of the notice (None until then); ``answer`` what it
    answered and ``answered_at`` when it gave that answer; ``restriction_owed`` whether the
    answer obliges the issuing authority to delete or restrict data it had already received
    (Art 10(4)), and ``restricted`` how it did so.
    """

    place: Place
    emergency: bool
    received_at: datetime | None = None
    answer: str | None = None
    answered_at: datetime | None = None
    in_time: bool | None = None
    restriction_owed: bool = False
    restricted: str | None = None

    def __post_init__(self) -> None:
        for name in ("received_at", "answered_at"):
            moment = getattr(self, name)
            if moment is not None:
                if not isinstance(moment, datetime) or moment.utcoffset() is None:
                    raise ValueError(f"{name} must be a timezone-aware datetime")
                object.__setattr__(self, name, moment.astimezone(UTC))
        if self.answer is not None and self.answer not in ANSWERS:
            raise ValueError(f"an enforcing authority's answer is one of {ANSWERS}")
        if self.restricted is not None and self.restricted not in RESTRICTIONS:
            raise ValueError(f"a restriction is one of {RESTRICTIONS}")

    @property
    def period(self) -> Period:
        """Art 12(2): ten days; Art 10(4): 96 hours in an emergency."""
        if self.emergency:
            return Period(hours=ENFORCING_EMERGENCY_HOURS)
        return Period(days=ENFORCING_REVIEW_DAYS)

    @property
    def window_end(self) -> datetime | None:
        """When the enforcing authority's time to raise a ground ends; None before receipt."""
        if self.received_at is None:
            return None
        return period_end(self.received_at, self.period, self.place, PeriodRule.REGULATION_1182_71)

    def withholds(self, now: datetime) -> bool:
        """Whether the provider's responses are kept from the issuing authority at ``now``:
        after a ground for refusal raised in time, and (outside emergencies) until the
        enforcing authority answers or its ten days end (Art 10(3))."""
        if self.answer == GROUND:
            return bool(self.in_time)  # a ground raised too late has no such effect
        if self.emergency or self.answer is not None:
            return False
        end = self.window_end
        return end is None or now <= end

    def received(self, at: datetime) -> EnforcingReview:
        """The review with the enforcing authority's receipt of the notice; the first counts."""
        return self if self.received_at is not None else replace(self, received_at=at)

    def answered(self, answer: str, at: datetime, *, data_received: bool) -> EnforcingReview:
        """The review with the enforcing authority's answer given at ``at``. An answer is
        also its receipt, when nothing was recorded before. A ground raised in time in an
        emergency, on data the issuing authority already received, obliges it to delete or
        restrict them (Art 10(4))."""
        review = self.received(at)
        end = review.window_end
        in_time = end is not None and at <= end
        owed = self.emergency and answer == GROUND and in_time and data_received
        return replace(
            review, answer=answer, answered_at=at, in_time=in_time, restriction_owed=owed
        )
