"""Scenario tests of order periods on fixed times (custody/order_deadlines.py and the clock of
custody/orders.py). Each names the provision it checks; every expected deadline is written out
as a literal date and time, worked out by hand from docs/orders.md.

The provider of these orders is established in Ireland (Europe/Dublin): Ireland keeps UTC in
winter and UTC+1 from 29 March 2026; St Patrick's Day (17 March) and Easter Monday (6 April
2026) are public holidays there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custody.errors import BadRequest, Conflict
from custody.order_deadlines import (
    OrderClock,
    Period,
    PeriodRule,
    Place,
    check_country,
    check_time_zone,
    period_end,
)
from custody.order_document import PARTIAL_TRAFFIC_DISCLOSURE, PRESERVATION, PRODUCTION
from custody.orders import (
    Order,
    OrderState,
    ServiceTerms,
    allowed_actions,
    apply,
    deadline,
    draft_order,
    expired,
    overdue,
    record_first_read,
    record_receipt,
)
from tests.custody.test_orders import (
    APPROVER,
    AUTHORITY,
    EMERGENCY,
    PROVIDER,
    PROVIDER_ID,
    act,
    document,
)

DUBLIN = Place("Europe/Dublin", "IE")
IRISH = ServiceTerms(place=DUBLIN)
EU_PRODUCTION = {
    "legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Regulation (EU) 2023/1543"}
}
EU_PRESERVATION = {
    "legal_basis": {
        "instrument": "eu_2023_1543_epoc_pr",
        "citation": "Regulation (EU) 2023/1543, Art 6",
    }
}
US = timedelta(microseconds=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


SERVICE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def served(
    kind: str = PRODUCTION,
    at: datetime = SERVICE,
    terms: ServiceTerms = IRISH,
    **changes: Any,
) -> Order:
    """An order drafted and submitted the day before, served (approved) at ``at``."""
    order, _, _ = draft_order(document(kind, **changes), AUTHORITY, at - timedelta(days=1))
    order, _, _ = apply(order, "submit", AUTHORITY, at - timedelta(days=1))
    return apply(order, "approve", APPROVER, at, terms=terms)[0]


def received(order: Order, at: datetime, via: str = "notice") -> Order:
    got = record_receipt(order, at, via)
    assert got is not None
    return got


# -- the clock runs from receipt -------------------------------------------------------------


def test_art_10_2_no_deadline_runs_before_the_provider_receives_the_order() -> None:
    """Regulation (EU) 2023/1543 Art 10(2): ten days *following receipt*."""
    order = served(**EU_PRODUCTION)
    assert deadline(order) is None
    assert not overdue(order, utc(2027, 1, 1))
    assert "resend" in allowed_actions(order, utc(2026, 3, 3), by=AUTHORITY)


def test_art_10_2_a_delivered_notice_is_receipt_and_the_day_of_receipt_is_not_counted() -> None:
    """Art 10(2) with 1182/71 Art 3(1), 3(2)(b): received Monday 2 March 10:17 Dublin time,
    the first day is Tuesday 3 March and the tenth Thursday 12 March, ending at midnight."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 2, 10, 17))
    assert order.clock is not None and order.clock.received_via == "notice"
    assert deadline(order) == datetime(2026, 3, 12, 23, 59, 59, 999999, tzinfo=UTC)
    assert "resend" not in allowed_actions(order, utc(2026, 3, 3))


def test_1182_71_art_3_4_a_last_day_on_a_weekend_moves_to_monday() -> None:
    """Received Wednesday 4 March: the tenth day is Saturday 14 March, so the period ends with
    Monday 16 March (1182/71 Art 3(4))."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    assert deadline(order) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_1182_71_art_3_4_a_last_day_on_st_patricks_day_moves_to_the_next_working_day() -> None:
    """Received Saturday 7 March: the tenth day is Tuesday 17 March, an Irish public holiday;
    the period ends with Wednesday 18 March."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 7, 12, 0))
    assert deadline(order) == datetime(2026, 3, 18, 23, 59, 59, 999999, tzinfo=UTC)


def test_1182_71_a_deadline_across_the_dst_change_onto_easter_monday() -> None:
    """Received Friday 27 March (Dublin on UTC): Ireland moves to UTC+1 on Sunday 29 March;
    the tenth day is Monday 6 April, Easter Monday, a public holiday, so the period ends with
    Tuesday 7 April at midnight Irish summer time, 22:59:59.999999 UTC."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 27, 16, 45))
    assert deadline(order) == datetime(2026, 4, 7, 22, 59, 59, 999999, tzinfo=UTC)


def test_1182_71_the_day_of_receipt_is_the_providers_local_day() -> None:
    """Received 23:30 UTC on 30 April = 00:30 on 1 May in Dublin (summer time): the first day
    is 2 May, the tenth 11 May (a Monday), ending 22:59:59.999999 UTC."""
    order = received(served(**EU_PRODUCTION), utc(2026, 4, 30, 23, 30))
    assert deadline(order) == datetime(2026, 5, 11, 22, 59, 59, 999999, tzinfo=UTC)


def test_1182_71_holidays_follow_the_subdivision_of_the_establishment() -> None:
    """6 January is a public holiday in Bavaria, not in Berlin. Received Saturday 27 December
    2025, the tenth day is Tuesday 6 January 2026 (both in winter time, UTC+1)."""
    at = utc(2025, 12, 27, 10, 0)
    bavaria = Place("Europe/Berlin", "DE", "BY")
    berlin = Place("Europe/Berlin", "DE", "BE")
    ten = Period(days=10)
    assert period_end(at, ten, berlin, PeriodRule.REGULATION_1182_71) == datetime(
        2026, 1, 6, 22, 59, 59, 999999, tzinfo=UTC
    )
    assert period_end(at, ten, bavaria, PeriodRule.REGULATION_1182_71) == datetime(
        2026, 1, 7, 22, 59, 59, 999999, tzinfo=UTC
    )


def test_1182_71_art_3_5_a_period_of_two_days_holds_two_working_days() -> None:
    """Received Thursday 24 December 2026 in Ireland: a two-day period's last day would be
    Saturday 26 December (St Stephen's Day), which moves to Monday 28 December (Art 3(4));
    25-28 December hold one working day only, so the period runs to Tuesday 29 December
    (Art 3(5))."""
    end = period_end(
        utc(2026, 12, 24, 10, 0), Period(days=2), DUBLIN, PeriodRule.REGULATION_1182_71
    )
    assert end == datetime(2026, 12, 29, 23, 59, 59, 999999, tzinfo=UTC)


def test_art_10_4_an_emergency_runs_exactly_eight_hours_through_a_weekend_night() -> None:
    """Regulation Art 10(4): 8 hours following receipt. Custos reads 1182/71 Art 3(2)(a) as an
    exact period: received Saturday 28 March 21:30 UTC, due Sunday 29 March 05:30 UTC, across
    the change to summer time and not moved by the weekend (Art 3(4) is for days only)."""
    order = received(served(**EU_PRODUCTION, emergency=EMERGENCY), utc(2026, 3, 28, 21, 30))
    assert deadline(order) == utc(2026, 3, 29, 5, 30)


def test_partial_traffic_disclosure_runs_like_a_production_order() -> None:
    order = received(served(PARTIAL_TRAFFIC_DISCLOSURE), utc(2026, 3, 4, 15, 0))
    assert deadline(order) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_un_order_follows_the_configured_exact_rule_of_the_issuing_state() -> None:
    """UN Convention Art 27: the issuing State's law. Under the exact rule ten days are 240
    hours from receipt, whatever the weekday."""
    terms = ServiceTerms(place=DUBLIN, rule=PeriodRule.EXACT)
    order = received(served(terms=terms), utc(2026, 3, 4, 15, 0))
    assert deadline(order) == utc(2026, 3, 14, 15, 0)


def test_un_order_follows_regulation_1182_71_by_default() -> None:
    order = received(served(), utc(2026, 3, 4, 15, 0))
    assert deadline(order) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_an_eu_order_follows_regulation_1182_71_whatever_is_configured() -> None:
    terms = ServiceTerms(place=DUBLIN, rule=PeriodRule.EXACT)
    order = received(served(terms=terms, **EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    assert deadline(order) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_the_first_read_is_receipt_when_no_notice_came_first() -> None:
    order = served(**EU_PRODUCTION)
    read = record_first_read(order, PROVIDER, utc(2026, 3, 4, 15, 0), provider_id=PROVIDER_ID)
    assert read is not None and read.clock is not None
    assert read.clock.received_via == "read"
    assert deadline(read) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_an_acknowledgement_is_receipt_when_nothing_came_first() -> None:
    order, _, details = act(served(**EU_PRODUCTION), "acknowledge", utc(2026, 3, 4, 15, 0))
    assert details["received_via"] == "act"
    assert details["due"] == "2026-03-16T23:59:59.999999Z"
    assert deadline(order) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


def test_an_objection_or_a_question_as_the_first_act_is_receipt() -> None:
    _, _, objected = act(served(**EU_PRODUCTION), "object", utc(2026, 3, 4, 15, 0))
    assert objected == {
        "ground": "data_not_held",
        "received_via": "act",
        "due": "2026-03-16T23:59:59.999999Z",
    }
    _, _, asked = act(served(**EU_PRODUCTION), "request_clarification", utc(2026, 3, 4, 15, 0))
    assert asked == {"received_via": "act"}  # received, and suspended at once


def test_only_the_first_receipt_counts() -> None:
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    assert record_receipt(order, utc(2026, 3, 6, 9, 0), "notice") is None
    later, _, details = act(order, "acknowledge", utc(2026, 3, 6, 9, 0))
    assert "received_via" not in details
    assert deadline(later) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)


# -- suspension: only a clarification request, only of an order to produce -------------------


def test_art_10_6_a_clarification_request_suspends_and_the_answer_adds_the_time_back() -> None:
    """Received 4 March (due 16 March, end of day); a clarification request at 09:00 on 6 March
    is answered at 09:00 on 9 March: three days stood still, so the deadline is 19 March,
    23:59:59.999999 UTC."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    asked, _, _ = act(order, "request_clarification", utc(2026, 3, 6, 9, 0))
    assert deadline(asked) is None
    assert asked.clock is not None
    assert asked.clock.remaining(utc(2026, 3, 7)) == datetime(
        2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC
    ) - utc(2026, 3, 6, 9, 0)
    assert not overdue(asked, utc(2026, 3, 18))
    answered, _, details = act(asked, "answer_clarification", utc(2026, 3, 9, 9, 0))
    assert answered.state is OrderState.SERVED  # not acknowledged: only its own act does that
    assert deadline(answered) == datetime(2026, 3, 19, 23, 59, 59, 999999, tzinfo=UTC)
    assert details["due"] == "2026-03-19T23:59:59.999999Z"


def test_annex_iii_an_objection_does_not_suspend_the_deadline() -> None:
    """An Annex III notice leaves the clock running (Art 10(5)-(8)); the order may become
    overdue while the authority reviews it."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    objected, _, _ = act(order, "object", utc(2026, 3, 6, 9, 0))
    assert deadline(objected) == datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC)
    assert overdue(objected, utc(2026, 3, 17, 0, 0))


def test_annex_iii_the_authority_may_set_a_new_deadline_when_answering() -> None:
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    objected, _, _ = act(order, "object", utc(2026, 3, 6, 9, 0))
    new_due = utc(2026, 3, 27, 17, 0)
    answered, _, details = act(
        objected, "answer_objection", utc(2026, 3, 7), {"answer": "Narrowed.", "due": new_due}
    )
    assert answered.state is OrderState.SERVED
    assert deadline(answered) == new_due
    assert details["due"] == "2026-03-27T17:00:00.000000Z"
    with pytest.raises(BadRequest, match="future"):
        act(objected, "answer_objection", utc(2026, 3, 7), {"answer": "x", "due": utc(2026, 3, 1)})


# -- preservation -----------------------------------------------------------------------------


def test_art_11_1_an_eu_preservation_holds_sixty_days_from_receipt() -> None:
    """Received Monday 2 March 10:00: day 1 is 3 March, day 60 is Friday 1 May 2026 (a
    working day; Ireland's May bank holiday is 4 May), in Irish summer time."""
    order = received(served(PRESERVATION, **EU_PRESERVATION), utc(2026, 3, 2, 10, 0))
    assert order.document.preservation_days == 60
    assert deadline(order) == datetime(2026, 5, 1, 22, 59, 59, 999999, tzinfo=UTC)


def test_art_11_1_an_eu_preservation_is_extended_once_by_thirty_days() -> None:
    """60 + 30 days from 3 March: day 90 is Sunday 31 May; the period ends with Tuesday
    2 June, Monday 1 June being the June bank holiday."""
    order = received(served(PRESERVATION, **EU_PRESERVATION), utc(2026, 3, 2, 10, 0))
    extended, _, details = act(order, "extend", utc(2026, 4, 1), {})
    assert details == {"days": 30, "due": "2026-06-02T22:59:59.999999Z"}
    assert "extend" not in allowed_actions(extended, utc(2026, 4, 2))
    with pytest.raises(Conflict, match="once"):
        act(extended, "extend", utc(2026, 4, 2), {})
    with pytest.raises(BadRequest, match="30 days"):
        act(order, "extend", utc(2026, 4, 1), {"days": 45})


def test_art_11_2_after_the_annex_v_confirmation_the_hold_lasts_until_answered() -> None:
    order = received(served(PRESERVATION, **EU_PRESERVATION), utc(2026, 3, 2, 10, 0))
    preserved, _, _ = act(order, "confirm_preservation", utc(2026, 3, 3))
    confirmed, event, _ = act(
        preserved,
        "confirm_production_request",
        utc(2026, 4, 20),
        {"production_order": "ord_00000000000000aa"},
    )
    assert event == "order.production_request_confirmed"
    assert confirmed.state is OrderState.PRESERVED
    assert deadline(confirmed) is None and confirmed.clock and confirmed.clock.open_ended
    assert not expired(confirmed, utc(2030, 1, 1))
    assert "extend" not in allowed_actions(confirmed, utc(2026, 5, 10))
    assert act(confirmed, "close", utc(2026, 9, 1))[0].state is OrderState.CLOSED


def test_annex_v_confirmation_comes_before_the_hold_ends() -> None:
    order = received(served(PRESERVATION, **EU_PRESERVATION), utc(2026, 3, 2, 10, 0))
    with pytest.raises(Conflict, match="hold has ended"):
        act(order, "confirm_production_request", utc(2026, 5, 2), {})


def test_annex_v_is_for_eu_preservation_orders_only() -> None:
    order = received(served(PRESERVATION), utc(2026, 3, 2, 10, 0))
    with pytest.raises(Conflict, match="EU"):
        act(order, "confirm_production_request", utc(2026, 3, 5), {})


def test_un_art_25_preservation_holds_its_days_and_is_renewed_again_and_again() -> None:
    """UN Convention Art 25(2) / Budapest Art 16(2): up to 90 days, renewable. 30 days from
    receipt on Monday 2 March: day 30 is Wednesday 1 April; renewed twice by 90 days: day 210
    is Monday 28 September 2026."""
    order = received(served(PRESERVATION, preservation_days=30), utc(2026, 3, 2, 10, 0))
    assert deadline(order) == datetime(2026, 4, 1, 22, 59, 59, 999999, tzinfo=UTC)
    once, _, _ = act(order, "extend", utc(2026, 3, 20), {"days": 90})
    twice, _, _ = act(once, "extend", utc(2026, 6, 20), {"days": 90})
    assert twice.extensions == 2
    assert deadline(twice) == datetime(2026, 9, 28, 22, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(BadRequest, match="1 to 90"):
        act(order, "extend", utc(2026, 3, 20), {"days": 91})


def test_nothing_the_provider_does_pauses_a_preservation_hold() -> None:
    order = received(served(PRESERVATION, preservation_days=30), utc(2026, 3, 2, 10, 0))
    hold_end = datetime(2026, 4, 1, 22, 59, 59, 999999, tzinfo=UTC)
    asked, _, _ = act(order, "request_clarification", utc(2026, 3, 5))
    assert deadline(asked) == hold_end
    assert expired(asked, hold_end + US)
    objected, _, _ = act(act(order, "confirm_preservation", utc(2026, 3, 3))[0], "object")
    assert deadline(objected) == hold_end


def test_a_preservation_hold_ends_with_its_last_microsecond() -> None:
    order = received(served(PRESERVATION, preservation_days=30), utc(2026, 3, 2, 10, 0))
    hold_end = datetime(2026, 4, 1, 22, 59, 59, 999999, tzinfo=UTC)
    assert not expired(order, hold_end)
    assert expired(order, hold_end + US)
    with pytest.raises(Conflict, match="hold ends"):
        act(order, "expire", hold_end)
    assert act(order, "expire", hold_end + US)[0].state is OrderState.EXPIRED


# -- late compliance --------------------------------------------------------------------------


def test_art_16_an_unacknowledged_order_past_its_deadline_is_overdue_and_stays_open() -> None:
    """Nobody acknowledged it: it does not expire; the provider may still acknowledge and
    deliver, and the authority may seek enforcement (Art 16) or close it."""
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    late = utc(2026, 3, 17, 0, 0)
    assert overdue(order, late) and not expired(order, late)
    assert "expire" not in allowed_actions(order, late)
    assert allowed_actions(order, late, by=AUTHORITY) == [
        "withdraw",
        "seek_enforcement",
        "close",
        "record_user_information",
    ]
    assert allowed_actions(order, late, by=PROVIDER) == [
        "acknowledge",
        "object",
        "request_clarification",
        "no_data",
    ]
    sought, event, _ = act(order, "seek_enforcement", late, {"reason": "Art 16 procedure."})
    assert event == "order.enforcement_sought" and sought.state is OrderState.SERVED
    assert sought.enforcement_sought_at == late
    acknowledged, _, _ = act(sought, "acknowledge", late + timedelta(days=1))
    assert acknowledged.state is OrderState.ACKNOWLEDGED
    assert overdue(acknowledged, late + timedelta(days=1))


def test_art_16_enforcement_is_not_sought_before_the_deadline() -> None:
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    with pytest.raises(Conflict, match="not overdue"):
        act(order, "seek_enforcement", datetime(2026, 3, 16, 23, 59, 59, 999999, tzinfo=UTC))


def test_an_order_owed_before_its_deadline_is_not_closed() -> None:
    order = received(served(**EU_PRODUCTION), utc(2026, 3, 4, 15, 0))
    with pytest.raises(Conflict, match="still owes"):
        act(order, "close", utc(2026, 3, 10))


# -- the building blocks ----------------------------------------------------------------------


def test_places_refuse_unknown_zones_countries_and_subdivisions() -> None:
    assert check_time_zone("Europe/Dublin") == "Europe/Dublin"
    for zone in ("Europe/Atlantis", "", "../etc/passwd", 3):
        with pytest.raises(ValueError, match="IANA"):
            check_time_zone(zone)
    check_country("IE")
    check_country("DE", "BY")
    for country in ("ie", "IRL", "XX"):
        with pytest.raises(ValueError):
            check_country(country)
    with pytest.raises(ValueError, match="subdivision"):
        check_country("DE", "XX")
    with pytest.raises(ValueError, match="needs its country"):
        Place("UTC", None, "BY")


def test_a_period_is_in_days_or_hours_never_both_or_neither() -> None:
    for bad in ({"days": 1, "hours": 1}, {}, {"days": -1}, {"hours": 0}):
        with pytest.raises(ValueError):
            Period(**bad)
    with pytest.raises(ValueError):
        Period(hours=8).longer(1)


def test_a_clock_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OrderClock(served_at=datetime(2026, 3, 2), period=Period(days=10))
