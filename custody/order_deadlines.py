"""An order's clock: when it was received, how long it runs, and where its last day ends.

A deadline runs from the provider's receipt of the order, never from its service: the first of
a notice delivered to the provider (its endpoint answered 2xx), the provider's first read of
the order, or the provider's first act on it (Regulation (EU) 2023/1543 Art 10(2)-(4) and
Art 11(1) count "following receipt"). Until then the order has no deadline and the authority
sees that it is not yet received.

Periods are counted by Regulation (EEC, Euratom) No 1182/71 (``REGULATION_1182_71``):

- a period in days does not count the day of receipt (Art 3(1)); it ends with the expiry of
  the last hour of its last day (Art 3(2)(b)), in the provider's time zone; a last day that is
  a Saturday, a Sunday or a public holiday where the provider is established moves to the
  next working day (Art 3(4)); a period of two days or more holds at least two working days
  (Art 3(5));
- a period in hours runs exactly that many hours from the moment of receipt. Art 3(1) leaves
  the hour of receipt out and Art 3(2)(a) starts the period "at the beginning of the first
  hour"; read literally, a period would start at the next full hour. Custos takes the exact
  reading (receipt + 8 h to the microsecond), which never ends later than the literal one,
  so a provider in time by Custos is in time by either; Art 3(4) does not move hour periods.

UN and Budapest orders follow the issuing State's law: a configured rule, ``REGULATION_1182_71``
by default or ``EXACT`` (whole days of 24 hours from the moment of receipt, no end-of-day and
no holidays). The rule and the provider's place are kept on the clock when the order is
served, so a later change of configuration or of the provider's record moves no deadline.

Only a request for clarification (Art 10(6)) suspends a production deadline: the time it stood
still is added to the deadline. Nothing suspends a preservation hold. Every time is passed
in, never read here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

if TYPE_CHECKING:
    import holidays

# Regulation (EU) 2023/1543 Art 10(2)-(3): ten days following receipt; Art 10(4): eight hours.
PRODUCTION_DAYS = 10
EMERGENCY_HOURS = 8
# Art 10(3) and 12(2): the enforcing authority's ten days; Art 10(4): its 96 hours in an emergency.
ENFORCING_REVIEW_DAYS = 10
ENFORCING_EMERGENCY_HOURS = 96
# Art 11(1): an EPOC-PR holds for 60 days, extendable once by 30.
EU_PRESERVATION_DAYS = 60
EU_EXTENSION_DAYS = 30
# UN Convention against Cybercrime Art 25(2) and Budapest Art 16(2): "up to 90 days",
# renewable: one period, and each renewal, is at most this long.
DEFAULT_PRESERVATION_DAYS = 90
MAX_PRESERVATION_DAYS = 90
# The last microsecond of a day: the period ends "with the expiry of the last hour".
_END_OF_DAY = time(23, 59, 59, 999999)


class PeriodRule(StrEnum):
    """How a period in days is counted."""

    REGULATION_1182_71 = "regulation_1182_71"
    EXACT = "exact"


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_time_zone(name: object) -> str:
    """An IANA time zone name the system knows (``Europe/Dublin``), or ValueError."""
    if not isinstance(name, str) or name not in _known_zones():
        raise ValueError(f"time_zone is an IANA time zone such as Europe/Dublin, not {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time_zone {name!r} is not in the time zone database") from None
    return name


def check_country(country: object, subdivision: object = None) -> None:
    """An ISO 3166-1 alpha-2 country whose public holidays are known, and, where given, one of
    its ISO 3166-2 subdivisions (without the country prefix: ``BY`` for Bavaria)."""
    if not isinstance(country, str) or len(country) != 2 or not country.isupper():
        raise ValueError(f"country is an ISO 3166-1 alpha-2 code such as IE, not {country!r}")
    import holidays  # a fifth of a second to load: only where a place is checked

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"country {country} has no public holiday calendar Custos knows")
    if subdivision is not None and subdivision not in supported[country]:
        raise ValueError(f"subdivision {subdivision!r} is not one of {country}'s subdivisions")


@dataclass(frozen=True)
class Place:
    """Where the provider is established: its time zone, country and subdivision.

    Without a country only Saturdays and Sundays are days off.
    """

    time_zone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None

    def __post_init__(self) -> None:
        check_time_zone(self.time_zone)
        if self.country is not None:
            check_country(self.country, self.subdivision)
        elif self.subdivision is not None:
            raise ValueError("a subdivision needs its country")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def holiday(self, day: date) -> str | None:
        """The public holiday's name on ``day``, or None."""
        if self.country is None:
            return None
        return _calendar(self.country, self.subdivision, day.year).get(day)

    def working_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.holiday(day) is None

    def as_json(self) -> dict[str, str | None]:
        return {
            "time_zone": self.time_zone,
            "country": self.country,
            "subdivision": self.subdivision,
        }


@cache
def _calendar(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision, years=year)


@dataclass(frozen=True)
class Period:
    """A period in whole days or in whole hours (exactly one of them)."""

    days: int = 0
    hours: int = 0

    def __post_init__(self) -> None:
        for name in ("days", "hours"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 0:
                raise ValueError(f"a period's {name} is a whole number, 0 or more")
        if (self.days > 0) == (self.hours > 0):
            raise ValueError("a period is in days or in hours, and longer than nothing")

    def longer(self, days: int) -> Period:
        if self.hours:
            raise ValueError("only a period in days is extended by days")
        return Period(days=self.days + days)

    def as_json(self) -> dict[str, int]:
        return {"days": self.days} if self.days else {"hours": self.hours}


def period_end(received: datetime, period: Period, place: Place, rule: PeriodRule) -> datetime:
    """The last moment of ``period`` counted from ``received``, in UTC (module docstring)."""
    received = received.astimezone(UTC)
    if period.hours:
        return received + timedelta(hours=period.hours)
    if rule is PeriodRule.EXACT:
        return received + timedelta(days=period.days)
    zone = place.zone
    first = received.astimezone(zone).date() + timedelta(days=1)  # Art 3(1)
    last = first + timedelta(days=period.days - 1)
    while not place.working_day(last):  # Art 3(4)
        last += timedelta(days=1)
    if period.days >= 2:  # Art 3(5)
        while _working_days(place, first, last) < 2:
            last += timedelta(days=1)
            while not place.working_day(last):
                last += timedelta(days=1)
    return datetime.combine(last, _END_OF_DAY, tzinfo=zone).astimezone(UTC)


def _working_days(place: Place, first: date, last: date) -> int:
    return sum(place.working_day(first + timedelta(d)) for d in range((last - first).days + 1))


@dataclass(frozen=True)
class OrderClock:
    """The clock of a served order.

    ``received_at`` is None until the provider received the order. ``suspended_since`` is set
    while a clarification request is unanswered; ``suspended_for`` is the time it stood still
    before. ``open_ended`` holds a preservation order until the production request that the
    authority confirmed is answered (Art 11(2)): it has no end. ``fixed_due`` is a deadline the
    authority set anew after reviewing an Annex III notice.
    """

    served_at: datetime
    period: Period
    place: Place = Place()
    rule: PeriodRule = PeriodRule.REGULATION_1182_71
    received_at: datetime | None = None
    received_via: str | None = None
    suspended_since: datetime | None = None
    suspended_for: timedelta = timedelta(0)
    open_ended: bool = False
    fixed_due: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("served_at", "received_at", "suspended_since", "fixed_due"):
            moment = getattr(self, name)
            if moment is not None:
                if not isinstance(moment, datetime) or moment.utcoffset() is None:
                    raise ValueError(f"{name} must be a timezone-aware datetime")
                object.__setattr__(self, name, moment.astimezone(UTC))
        object.__setattr__(self, "rule", PeriodRule(self.rule))
        if self.suspended_for < timedelta(0):
            raise ValueError("an order clock never stands still for a negative time")

    @property
    def received(self) -> bool:
        return self.received_at is not None

    @property
    def due(self) -> datetime | None:
        """When the order falls due or its hold ends; None before receipt, while suspended,
        and for a hold kept until a production request is answered."""
        if self.received_at is None or self.suspended_since is not None or self.open_ended:
            return None
        if self.fixed_due is not None:
            return self.fixed_due
        end = period_end(self.received_at, self.period, self.place, self.rule)
        return end + self.suspended_for

    def remaining(self, now: datetime) -> timedelta | None:
        """While suspended: the time that will be left once the clock runs again."""
        if self.suspended_since is None or self.received_at is None:
            return None
        running = replace(self, suspended_since=None)
        end = running.due
        return None if end is None else max(end - self.suspended_since, timedelta(0))

    def passed(self, now: datetime) -> bool:
        """Whether the deadline lies before ``now`` (an act at the deadline is in time)."""
        due = self.due
        return due is not None and now > due

    def receive(self, at: datetime, via: str) -> OrderClock:
        """The clock started at the provider's receipt; a received clock keeps its receipt."""
        if self.received_at is not None:
            return self
        return replace(self, received_at=at, received_via=via)

    def suspended(self, at: datetime) -> OrderClock:
        """The clock stopped at ``at``; a stopped clock stays stopped from its first stop."""
        return self if self.suspended_since is not None else replace(self, suspended_since=at)

    def resumed(self, at: datetime) -> OrderClock:
        """The clock running again at ``at``, the time it stood still added to its deadline."""
        if self.suspended_since is None:
            return self
        stood = max(at - self.suspended_since, timedelta(0))
        return replace(self, suspended_since=None, suspended_for=self.suspended_for + stood)

    def extended(self, days: int) -> OrderClock:
        """The hold ``days`` longer (a preservation order's extension or renewal)."""
        return replace(self, period=self.period.longer(days))
