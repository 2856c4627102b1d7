"""How the pages show times, states and labels to people."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from custody.order_document import OBJECTION_GROUNDS

STATE_LABELS = {
    "served": "Served, awaiting acknowledgement",
    "acknowledged": "Acknowledged",
    "objected": "Objected, awaiting the authority",
    "clarification_requested": "Clarification requested, awaiting the authority",
    "preserved": "Preserved",
    "produced_partial": "Response sent, not yet complete",
    "produced": "Produced (complete)",
    "no_data": "No data held",
    "closed": "Closed",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
    "draft": "Draft",
    "pending_approval": "Awaiting approval",
}
# Regulation (EU) 2023/1543, Annex III, section C (and "other").
GROUND_LABELS = {
    "incomplete": "The order is incomplete",
    "manifest_error": "The order contains manifest errors",
    "insufficient_information": "The order does not contain sufficient information to execute it",
    "data_not_stored": "The data were not stored when the order was received",
    "data_not_held": "The data are not held by or on behalf of the provider",
    "de_facto_impossible": "Compliance is de facto impossible",
    "issuer_not_competent": "The order was not issued or validated by a competent authority",
    "offence_not_covered": "The order was issued for an offence it may not be issued for",
    "service_out_of_scope": "The service is not covered by the regulation",
    "privilege_or_immunity": "The data are protected by an immunity or privilege",
    "third_country_law_conflict": "Compliance would conflict with the law of a third country",
    "other": "Other (explain below)",
}
assert set(GROUND_LABELS) == set(OBJECTION_GROUNDS)
ACTION_LABELS = {
    "acknowledge": "Acknowledge receipt",
    "object": "Object to the order",
    "request_clarification": "Ask for clarification",
    "confirm_preservation": "Confirm the data are preserved",
    "no_data": "Report that no data are held",
    "respond": "Send response files",
    "complete": "Declare the production complete",
}


# The states in which an order's deadline still runs: an answer is owed, or data are held.
RUNNING = ("served", "acknowledged", "produced_partial", "preserved")


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state.replace("_", " "))


def local_time(moment: datetime | str | None, zone: str = "UTC") -> str:
    """``moment`` in ``zone``, to the minute, with the zone's abbreviation."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%d %b %Y, %H:%M ") + (local.tzname() or zone)


def time_left(due: datetime | str | None, now: datetime) -> str:
    """What is left until ``due`` (or how long it is overdue), in words, to the minute."""
    if due is None:
        return ""
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    seconds = int((due - now).total_seconds())
    words = _span(abs(seconds))
    return f"{words} left" if seconds >= 0 else f"overdue by {words}"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def size(value: int | None) -> str:
    if value is None:
        return ""
    if value < 1024:
        return f"{value:,} bytes"
    scaled, unit = float(value) / 1024, "KiB"
    for larger in ("MiB", "GiB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, larger
    return f"{scaled:,.1f} {unit}"
