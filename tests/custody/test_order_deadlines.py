"""Tests of order deadlines with fixed times: service starts the clock, objections and
clarification requests pause it, preservation holds lapse and are extended, and only an
unanswered order expires (custody/order_deadlines.py and the deadline functions of
custody/orders.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from custody.errors import BadRequest, Conflict
from custody.order_deadlines import OrderClock
from custody.order_document import (
    PARTIAL_TRAFFIC_DISCLOSURE,
    PRESERVATION,
    PRODUCTION,
)
from custody.orders import (
    Order,
    OrderState,
    allowed_actions,
    apply,
    deadline,
    draft_order,
    expired,
    overdue,
    record_first_read,
)
from tests.custody.test_orders import (
    APPROVER,
    AUTHORITY,
    EMERGENCY,
    PROVIDER,
    PROVIDER_ID,
    T0,
    act,
    document,
)

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def served(kind: str = PRODUCTION, at: datetime = T0, **changes: Any) -> Order:
    """An order drafted and submitted the day before, served (approved) at ``at``."""
    order, _, _ = draft_order(document(kind, **changes), AUTHORITY, at - DAY)
    order, _, _ = apply(order, "submit", AUTHORITY, at - DAY)
    return apply(order, "approve", APPROVER, at)[0]


def test_production_order_is_due_ten_days_after_service() -> None:
    order = served()
    assert deadline(order) == T0 + 10 * DAY
    assert not overdue(order, T0 + 10 * DAY)
    assert not expired(order, T0 + 10 * DAY)
    assert overdue(order, T0 + 10 * DAY + SECOND)
    assert expired(order, T0 + 10 * DAY + SECOND)


def test_emergency_production_order_is_due_eight_hours_after_service() -> None:
    order = served(emergency=EMERGENCY)
    assert deadline(order) == T0 + timedelta(hours=8)
    assert not overdue(order, T0 + timedelta(hours=8))
    assert overdue(order, T0 + timedelta(hours=8, seconds=1))


def test_partial_traffic_disclosure_is_due_like_a_production_order() -> None:
    assert deadline(served(PARTIAL_TRAFFIC_DISCLOSURE)) == T0 + 10 * DAY
    emergency = served(PARTIAL_TRAFFIC_DISCLOSURE, emergency=EMERGENCY)
    assert deadline(emergency) == T0 + timedelta(hours=8)


def test_service_event_records_the_deadline() -> None:
    order, _, _ = draft_order(document(), AUTHORITY, T0)
    order, _, _ = apply(order, "submit", AUTHORITY, T0)
    _, event_type, details = apply(order, "approve", APPROVER, T0)
    assert (event_type, details) == ("order.served", {"due": "2026-03-12T09:00:00.000000Z"})


def test_no_clock_runs_before_service() -> None:
    order, _, _ = draft_order(document(), AUTHORITY, T0)
    assert deadline(order) is None
    order, _, _ = apply(order, "submit", AUTHORITY, T0)
    assert deadline(order) is None
    assert not overdue(order, T0 + 365 * DAY)
    assert not expired(order, T0 + 365 * DAY)


def test_service_time_in_another_zone_gives_the_same_deadline() -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    order = served(at=T0.astimezone(lisbon_summer))
    due = deadline(order)
    assert due == T0 + 10 * DAY
    assert due is not None and due.tzinfo is UTC


def test_providers_first_read_is_recorded_but_does_not_start_the_clock() -> None:
    order = served()
    read = record_first_read(order, PROVIDER, T0 + 3 * DAY, provider_id=PROVIDER_ID)
    assert read is not None
    assert read.first_read_at == T0 + 3 * DAY
    assert deadline(read) == T0 + 10 * DAY
    assert record_first_read(read, PROVIDER, T0 + 4 * DAY, provider_id=PROVIDER_ID) is None


def test_first_read_before_service_is_refused() -> None:
    order, _, _ = draft_order(document(), AUTHORITY, T0)
    with pytest.raises(Conflict, match="not served"):
        record_first_read(order, PROVIDER, T0, provider_id=PROVIDER_ID)


def test_objection_pauses_the_clock_until_answered() -> None:
    order = act(served(), "acknowledge", T0 + DAY)[0]
    objected, _, _ = act(order, "object", T0 + 2 * DAY)
    assert deadline(objected) is None
    long_after = T0 + 60 * DAY
    assert not overdue(objected, long_after)
    assert not expired(objected, long_after)
    assert "expire" not in allowed_actions(objected, long_after)
    answered, _, details = act(objected, "answer_objection", T0 + 7 * DAY)
    assert deadline(answered) == T0 + 15 * DAY
    assert details == {"due": "2026-03-17T09:00:00.000000Z"}
    assert not overdue(answered, T0 + 15 * DAY)
    assert overdue(answered, T0 + 15 * DAY + SECOND)


def test_clarification_request_pauses_the_clock_until_answered() -> None:
    asked, _, _ = act(served(emergency=EMERGENCY), "request_clarification", T0 + timedelta(hours=1))
    assert deadline(asked) is None
    answered, _, _ = act(asked, "answer_clarification", T0 + timedelta(hours=4))
    assert deadline(answered) == T0 + timedelta(hours=11)


def test_pauses_add_up_and_the_clock_runs_between_them() -> None:
    order = act(served(), "object", T0 + DAY)[0]
    order = act(order, "answer_objection", T0 + 2 * DAY)[0]
    order = act(order, "request_clarification", T0 + 5 * DAY)[0]
    order = act(order, "answer_clarification", T0 + 7 * DAY)[0]
    assert deadline(order) == T0 + 13 * DAY


def test_preservation_holds_ninety_days_from_service() -> None:
    order = served(PRESERVATION)
    assert deadline(order) == T0 + 90 * DAY
    preserved = act(act(order, "acknowledge", T0)[0], "confirm_preservation", T0 + DAY)[0]
    assert not expired(preserved, T0 + 90 * DAY)
    assert expired(preserved, T0 + 90 * DAY + SECOND)
    assert not overdue(preserved, T0 + 90 * DAY + SECOND)  # it was preserved: nothing owed
    lapsed, event_type, _ = act(preserved, "expire", T0 + 90 * DAY + SECOND)
    assert (lapsed.state, event_type) == (OrderState.EXPIRED, "order.expired")


def test_preservation_hold_follows_the_period_the_order_sets() -> None:
    assert deadline(served(PRESERVATION, preservation_days=60)) == T0 + 60 * DAY


def test_extension_adds_a_period_to_the_hold() -> None:
    order = act(act(served(PRESERVATION), "acknowledge", T0)[0], "confirm_preservation", T0)[0]
    once, event_type, details = act(order, "extend", T0 + 80 * DAY, {})
    assert deadline(once) == T0 + 180 * DAY
    assert (event_type, details) == (
        "order.extended",
        {"days": 90, "due": "2026-08-29T09:00:00.000000Z"},
    )
    twice = act(once, "extend", T0 + 170 * DAY, {"days": 30})[0]
    assert deadline(twice) == T0 + 210 * DAY
    assert not expired(twice, T0 + 200 * DAY)
    assert expired(twice, T0 + 210 * DAY + SECOND)


def test_extension_during_an_objection_counts_after_the_pause() -> None:
    order = act(served(PRESERVATION), "object", T0 + 10 * DAY)[0]
    order = act(order, "extend", T0 + 11 * DAY, {"days": 30})[0]
    assert deadline(order) is None
    order = act(order, "answer_objection", T0 + 12 * DAY)[0]
    assert deadline(order) == T0 + (90 + 30 + 2) * DAY


def test_emergency_flag_does_not_shorten_a_preservation_hold() -> None:
    assert deadline(served(PRESERVATION, emergency=EMERGENCY)) == T0 + 90 * DAY


def test_unconfirmed_preservation_past_its_hold_is_overdue_and_expires() -> None:
    order = act(served(PRESERVATION), "acknowledge", T0)[0]
    assert overdue(order, T0 + 90 * DAY + SECOND)
    assert expired(order, T0 + 90 * DAY + SECOND)


@pytest.mark.parametrize(
    "actions",
    [
        ("acknowledge", "respond", "complete"),
        ("acknowledge", "no_data"),
        ("acknowledge", "respond", "complete", "close"),
        ("withdraw",),
    ],
)
def test_answered_or_ended_order_never_expires(actions: tuple[str, ...]) -> None:
    order = served()
    for action in actions:
        order = act(order, action, T0 + DAY)[0]
    after = T0 + 30 * DAY
    assert deadline(order) == T0 + 10 * DAY
    assert not overdue(order, after)
    assert not expired(order, after)
    with pytest.raises(Conflict):
        act(order, "expire", after)


def test_partly_produced_order_expires_when_its_deadline_passes() -> None:
    order = act(act(served(), "acknowledge", T0)[0], "respond", T0 + DAY)[0]
    assert overdue(order, T0 + 10 * DAY + SECOND)
    assert act(order, "expire", T0 + 10 * DAY + SECOND)[0].state is OrderState.EXPIRED


def test_expire_before_the_deadline_is_refused() -> None:
    order = served()
    assert "expire" in allowed_actions(order)
    message = re.escape("deadline 2026-03-12T09:00:00.000000Z has not passed")
    with pytest.raises(Conflict, match=message) as no:
        act(order, "expire", T0 + 10 * DAY)
    assert no.value.allowed_actions == [
        "withdraw",
        "acknowledge",
        "object",
        "request_clarification",
    ]
    assert act(order, "expire", T0 + 10 * DAY + SECOND)[0].state is OrderState.EXPIRED


def test_deadline_queries_need_an_aware_time() -> None:
    with pytest.raises(BadRequest, match="timezone"):
        overdue(served(), datetime(2026, 4, 1))


def test_clock_never_stands_still_for_negative_time_and_keeps_its_first_stop() -> None:
    clock = OrderClock(served_at=T0, period=10 * DAY)
    stopped = clock.paused(T0 + DAY).paused(T0 + 2 * DAY)
    assert stopped.paused_since == T0 + DAY
    assert stopped.resumed(T0).due == T0 + 10 * DAY
    assert clock.resumed(T0 + DAY) == clock
    with pytest.raises(ValueError, match="timezone"):
        OrderClock(served_at=datetime(2026, 1, 1), period=DAY)
