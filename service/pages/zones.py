"""The time zone a person reads the pages' times in: chosen on their desk, kept with the
browser's session (UTC until chosen)."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask import session

ZONE = "zone"
DEFAULT_ZONE = "UTC"


@cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def reader_zone() -> str:
    """The zone this browser's session reads times in."""
    zone = session.get(ZONE)
    return zone if isinstance(zone, str) and zone in known_zones() else DEFAULT_ZONE


def choose_zone(zone: str) -> str | None:
    """Read times in ``zone`` from now on; or why it cannot be (and nothing changes)."""
    if zone not in known_zones():
        return "Enter a time zone by its IANA name, such as Europe/Lisbon or UTC."
    session[ZONE] = zone
    return None
