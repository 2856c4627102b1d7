"""Scenario tests of the enforcing State's review (custody/order_enforcing.py and its acts in
custody/orders.py), on fixed times. Each names the article of Regulation (EU) 2023/1543 it
checks; every expected time is written out, worked out by hand from docs/orders.md.

The orders are issued by a Portuguese judge to a provider established in Ireland
(Europe/Dublin); the enforcing authority is German (Europe/Berlin): Germany keeps UTC+1 in
winter and UTC+2 from 29 March 2026; Easter Monday (6 April 2026) is a public holiday there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custody.errors import BadRequest, Conflict, FieldErrors, Forbidden
from custody.order_document import PRESERVATION
from custody.order_enforcing import EnforcingReview
from custody.orders import (
    Order,
    OrderState,
    allowed_actions,
    apply,
    record_enforcing_receipt,
    withheld,
)
from tests.custody.test_order_deadlines import EU_PRESERVATION, IRISH, received, served, utc
from tests.custody.test_orders import AUTHORITY, EMERGENCY, PROVIDER, PROVIDER_ID, act

ENFORCING_URL = "https://enforcing.example/epoc"
BERLIN_PROSECUTOR = {
    "name": "Staatsanwaltschaft Berlin",
    "state": "DE",
    "contact": "epoc@sta-berlin.example",
    "time_zone": "Europe/Berlin",
    "notification_url": ENFORCING_URL,
}
EU_TRAFFIC: dict[str, Any] = {
    "legal_basis": {
        "instrument": "eu_2023_1543_epoc",
        "citation": "Regulation (EU) 2023/1543, Art 5",
    },
    "data_categories": ["traffic"],
    "offence": {
        "description": "ransomware extortion",
        "provision": "Penal Code s. 221",
        "max_penalty_years": 8,
    },
    "enforcing_authority": BERLIN_PROSECUTOR,
    "language": "de",  # an official language of the enforcing State (Art 9)
}
EVIDENCE = "ev_0123456789abcdef"
END_OF_DAY = (23, 59, 59, 999999)


def notified(**changes: Any) -> Order:
    """An EU order for traffic data, served at 09:00 UTC on Monday 2 March 2026; the
    enforcing authority's notice was delivered at 10:17 UTC."""
    order = served(**{**EU_TRAFFIC, **changes})
    got = record_enforcing_receipt(order, utc(2026, 3, 2, 10, 17))
    assert got is not None
    return got


def responded(order: Order, at: datetime) -> Order:
    """The provider acknowledged and uploaded a response at ``at``."""
    order, _, _ = act(order, "acknowledge", at)
    order, _, _ = act(order, "respond", at, {"evidence": EVIDENCE})
    return order


def review(order: Order) -> EnforcingReview:
    assert order.enforcing is not None
    return order.enforcing


# -- who is told, and when it is not needed (Art 8) -------------------------------------------


def test_art_8_1_traffic_data_from_another_member_state_needs_an_enforcing_authority() -> None:
    """The provider is established in Ireland, the issuing State is Portugal: without an
    enforcing authority the order is not issued."""
    with pytest.raises(BadRequest, match=r"enforcing_authority is required.*Art 8\(1\)"):
        served(**{**EU_TRAFFIC, "enforcing_authority": None})


def test_art_8_1_subscriber_data_and_preservation_need_no_enforcing_authority() -> None:
    for categories in (["subscriber"], ["identification_only"]):
        order = served(
            **{
                **EU_TRAFFIC,
                "enforcing_authority": None,
                "data_categories": categories,
                "language": "en",
            }
        )
        assert order.enforcing is None
    assert served(PRESERVATION, **EU_PRESERVATION).enforcing is None


def test_art_8_1_the_enforcing_authority_needs_somewhere_to_receive_the_order() -> None:
    no_url = {**BERLIN_PROSECUTOR, "notification_url": None}
    with pytest.raises(BadRequest, match=r"enforcing_authority.notification_url.*Art 8\(1\)"):
        served(**{**EU_TRAFFIC, "enforcing_authority": no_url})
    order = served(**EU_TRAFFIC)
    assert review(order).received_at is None and not review(order).emergency


def test_art_3_17_the_enforcing_state_is_another_member_state() -> None:
    same = {**BERLIN_PROSECUTOR, "state": "PT", "time_zone": "Europe/Lisbon"}
    with pytest.raises(FieldErrors, match=r"enforcing_authority\.state: another Member State"):
        served(**{**EU_TRAFFIC, "enforcing_authority": same})


def test_art_8_2_no_notice_when_the_offence_and_the_person_are_both_in_the_issuing_state() -> None:
    """The exemption is computed from where the drafter says the offence was committed and
    where the person resides; both must be the issuing State (Portugal)."""
    exempt = served(**EU_TRAFFIC, offence_state="PT", residence_state="PT")
    assert exempt.document.notice_exempt() and exempt.enforcing is None
    assert not withheld(exempt, utc(2026, 3, 3))
    # ... and the enforcing authority then needs no URL, since nothing is sent to it.
    no_url = {**BERLIN_PROSECUTOR, "notification_url": None}
    assert (
        served(
            **{**EU_TRAFFIC, "enforcing_authority": no_url},
            offence_state="PT",
            residence_state="PT",
        ).enforcing
        is None
    )
    for offence, residence in (("PT", "DE"), ("DE", "PT"), ("PT", None), (None, None)):
        order = served(**EU_TRAFFIC, offence_state=offence, residence_state=residence)
        assert order.enforcing is not None, (offence, residence)


# -- the ten days and the withheld responses (Arts 10(3), 12(2)) ------------------------------


def test_art_12_2_the_enforcing_authority_has_ten_days_from_its_receipt_in_its_own_zone() -> None:
    """Received Monday 2 March 10:17 UTC (11:17 in Berlin): the first day is Tuesday 3 March,
    the tenth Thursday 12 March, ending at midnight in Berlin, 22:59:59.999999 UTC."""
    order = notified()
    assert review(order).window_end == datetime(2026, 3, 12, 22, 59, 59, 999999, tzinfo=UTC)


def test_art_12_2_the_ten_days_end_on_the_next_working_day_of_the_enforcing_state() -> None:
    """Received Friday 27 March (Berlin on UTC+1): Germany moves to UTC+2 on Sunday 29 March;
    the tenth day is Monday 6 April, Easter Monday, so the ten days end with Tuesday 7 April
    at midnight in Berlin summer time, 21:59:59.999999 UTC."""
    order = served(**EU_TRAFFIC)
    got = record_enforcing_receipt(order, utc(2026, 3, 27, 15, 0))
    assert got is not None
    assert review(got).window_end == datetime(2026, 4, 7, 21, 59, 59, 999999, tzinfo=UTC)


def test_art_10_3_a_response_is_withheld_until_the_ten_days_end() -> None:
    """The provider uploads on 5 March, within the window: the issuing authority does not get
    it until the enforcing authority's ten days have run out."""
    order = responded(received(notified(), utc(2026, 3, 2, 11, 0)), utc(2026, 3, 5, 9, 0))
    assert order.state is OrderState.PRODUCED_PARTIAL and order.responses == 1
    assert withheld(order, utc(2026, 3, 5, 9, 0))
    assert withheld(order, datetime(2026, 3, 12, 22, 59, 59, 999999, tzinfo=UTC))
    assert not withheld(order, utc(2026, 3, 12, 23, 0))


def test_art_10_3_nothing_is_released_before_the_enforcing_authority_received_the_order() -> None:
    order = responded(received(served(**EU_TRAFFIC), utc(2026, 3, 2, 11, 0)), utc(2026, 3, 5))
    assert review(order).window_end is None
    assert withheld(order, utc(2026, 6, 1))


def test_art_10_3_an_answer_of_no_ground_releases_the_response_at_once() -> None:
    order = responded(notified(), utc(2026, 3, 3, 9, 0))
    answered, event, details = act(
        order, "record_enforcing_answer", utc(2026, 3, 4, 9, 0), {"answer": "no_ground"}
    )
    assert event == "order.enforcing_answered" and answered.state is OrderState.PRODUCED_PARTIAL
    assert details == {
        "answer": "no_ground",
        "given_at": "2026-03-04T09:00:00.000000Z",
        "in_time": True,
    }
    assert not withheld(answered, utc(2026, 3, 4, 9, 0))


def test_art_12_a_ground_raised_in_time_keeps_the_response_withheld_for_good() -> None:
    order = responded(notified(), utc(2026, 3, 3, 9, 0))
    answered, _, details = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 11, 9, 0),
        {
            "answer": "ground",
            "ground": "no_dual_criminality",
            "details": "Not an offence in Germany.",
            "given_at": utc(2026, 3, 10, 16, 0),
        },
    )
    assert details["ground"] == "no_dual_criminality" and details["in_time"] is True
    assert "restriction_owed" not in details  # the issuing authority never had the data
    assert withheld(answered, utc(2027, 1, 1))
    assert "restrict_data" not in allowed_actions(answered, utc(2026, 3, 11, 9, 0), by=AUTHORITY)


def test_art_12_a_ground_raised_after_the_ten_days_has_no_such_effect() -> None:
    order = responded(notified(), utc(2026, 3, 3, 9, 0))
    answered, _, details = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 14, 9, 0),
        {"answer": "ground", "ground": "fundamental_rights", "details": "Late."},
    )
    assert details["in_time"] is False and not withheld(answered, utc(2026, 3, 14, 9, 0))


def test_art_10_4_conditions_are_recorded_with_their_text_and_release_the_response() -> None:
    order = responded(notified(), utc(2026, 3, 3, 9, 0))
    with pytest.raises(BadRequest, match="details"):
        act(order, "record_enforcing_answer", utc(2026, 3, 4), {"answer": "conditions"})
    answered, _, _ = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 4),
        {"answer": "conditions", "details": "Only for the extortion charge."},
    )
    assert review(answered).answer == "conditions" and not withheld(answered, utc(2026, 3, 4))


# -- emergencies: 8 hours for the provider, 96 for the enforcing authority (Art 10(4)) --------


def test_art_10_4_an_emergency_response_is_not_withheld_and_the_review_runs_96_hours() -> None:
    """Notice delivered Monday 2 March 10:17 UTC: the 96 hours end Friday 6 March 10:17 UTC,
    exactly, whatever the days between."""
    order = notified(emergency=EMERGENCY)
    assert review(order).window_end == utc(2026, 3, 6, 10, 17)
    order = responded(received(order, utc(2026, 3, 2, 10, 0)), utc(2026, 3, 2, 15, 0))
    assert not withheld(order, utc(2026, 3, 2, 15, 0))


def test_art_10_4_a_ground_raised_at_hour_90_calls_for_deletion_which_is_recorded() -> None:
    """The provider delivered at hour 5; the enforcing authority raises a ground at hour 90
    (Friday 6 March 04:17 UTC), recorded an hour later: the issuing authority must delete or
    restrict the data and records that it did."""
    order = responded(
        received(notified(emergency=EMERGENCY), utc(2026, 3, 2, 10, 0)), utc(2026, 3, 2, 15, 17)
    )
    hour_90 = utc(2026, 3, 6, 4, 17)
    answered, _, details = act(
        order,
        "record_enforcing_answer",
        hour_90 + timedelta(hours=1),
        {
            "answer": "ground",
            "ground": "immunity_or_privilege",
            "details": "The account holder is a member of parliament.",
            "given_at": hour_90,
        },
    )
    assert details["in_time"] is True and details["restriction_owed"] is True
    assert withheld(answered, hour_90 + timedelta(hours=1))
    later = hour_90 + timedelta(hours=2)
    assert "restrict_data" in allowed_actions(answered, later, by=AUTHORITY)
    assert "restrict_data" not in allowed_actions(answered, later, by=PROVIDER)
    with pytest.raises(Forbidden):
        apply(
            answered,
            "restrict_data",
            PROVIDER,
            later,
            {"measure": "deleted"},
            provider_id=PROVIDER_ID,
        )
    with pytest.raises(BadRequest, match="measure"):
        act(answered, "restrict_data", later, {"measure": "shredded"})
    restricted, event, details = act(answered, "restrict_data", later, {"measure": "deleted"})
    assert event == "order.data_restricted" and details == {"measure": "deleted"}
    assert review(restricted).restricted == "deleted"
    with pytest.raises(Conflict, match="deleted or restricted") as refused:
        act(restricted, "restrict_data", later, {"measure": "restricted"})
    assert refused.value.allowed_actions is not None
    assert "restrict_data" not in refused.value.allowed_actions


def test_art_10_4_a_ground_raised_after_96_hours_calls_for_nothing() -> None:
    order = responded(
        received(notified(emergency=EMERGENCY), utc(2026, 3, 2, 10, 0)), utc(2026, 3, 2, 15, 0)
    )
    answered, _, details = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 6, 11, 0),
        {"answer": "ground", "ground": "ne_bis_in_idem", "details": "Already tried in Germany."},
    )
    assert details["in_time"] is False and "restriction_owed" not in details
    with pytest.raises(Conflict, match=r"Art 10\(4\)"):
        act(answered, "restrict_data", utc(2026, 3, 6, 12, 0), {"measure": "deleted"})


def test_art_10_4_a_ground_before_any_delivery_calls_for_no_deletion() -> None:
    order = notified(emergency=EMERGENCY)
    answered, _, details = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 3),
        {"answer": "ground", "ground": "fundamental_rights", "details": "No."},
    )
    assert "restriction_owed" not in details and withheld(answered, utc(2026, 3, 3))


def test_art_10_4_the_answer_and_the_deletion_are_recorded_after_the_order_was_closed() -> None:
    order = responded(
        received(notified(emergency=EMERGENCY), utc(2026, 3, 2, 10, 0)), utc(2026, 3, 2, 12, 0)
    )
    order, _, _ = act(order, "complete", utc(2026, 3, 2, 13, 0))
    order, _, _ = act(order, "close", utc(2026, 3, 3))
    assert order.state is OrderState.CLOSED
    assert allowed_actions(order, utc(2026, 3, 5), by=AUTHORITY) == [
        "record_enforcing_answer",
        "record_user_information",
    ]
    order, _, _ = act(
        order,
        "record_enforcing_answer",
        utc(2026, 3, 5),
        {"answer": "ground", "ground": "fundamental_rights", "details": "No."},
    )
    order, _, _ = act(order, "restrict_data", utc(2026, 3, 5, 1), {"measure": "restricted"})
    assert order.state is OrderState.CLOSED and review(order).restricted == "restricted"
    assert allowed_actions(order, utc(2026, 3, 6), by=AUTHORITY) == ["record_user_information"]


# -- what the issuing authority may record, and what it may not --------------------------------


def test_an_answer_is_recorded_once_by_the_authority_only_on_a_notified_order() -> None:
    order = notified()
    with pytest.raises(Forbidden):
        apply(
            order,
            "record_enforcing_answer",
            PROVIDER,
            utc(2026, 3, 3),
            {"answer": "no_ground"},
            provider_id=PROVIDER_ID,
        )
    answered, _, _ = act(order, "record_enforcing_answer", utc(2026, 3, 3), {"answer": "no_ground"})
    with pytest.raises(Conflict, match="answer is recorded"):
        act(answered, "record_enforcing_answer", utc(2026, 3, 4), {"answer": "no_ground"})
    exempt = served(**EU_TRAFFIC, offence_state="PT", residence_state="PT")
    with pytest.raises(Conflict, match=r"not sent to an enforcing authority \(Art 8\)"):
        act(exempt, "record_enforcing_answer", utc(2026, 3, 3), {"answer": "no_ground"})
    preservation = served(PRESERVATION, **EU_PRESERVATION)
    with pytest.raises(Conflict, match="preservation"):
        act(preservation, "record_enforcing_answer", utc(2026, 3, 3), {"answer": "no_ground"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"answer": "maybe"}, "answer"),
        ({"answer": "ground", "details": "Why."}, "ground"),
        ({"answer": "ground", "ground": "dislike", "details": "Why."}, "ground"),
        ({"answer": "no_ground", "ground": "fundamental_rights"}, "ground"),
        ({"answer": "no_ground", "given_at": utc(2026, 3, 5)}, "given_at"),
        ({"answer": "no_ground", "evidence": "not-an-id"}, "evidence"),
    ],
)
def test_the_enforcing_answer_is_checked_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        act(notified(), "record_enforcing_answer", utc(2026, 3, 3), data)


def test_the_first_notice_delivered_is_the_enforcing_authoritys_receipt() -> None:
    order = notified()
    assert record_enforcing_receipt(order, utc(2026, 3, 5)) is None
    assert review(order).received_at == utc(2026, 3, 2, 10, 17)
    assert (
        record_enforcing_receipt(
            served(**EU_TRAFFIC, offence_state="PT", residence_state="PT"), utc(2026, 3, 5)
        )
        is None
    )


def test_an_answer_without_a_recorded_receipt_is_its_receipt() -> None:
    order = served(**EU_TRAFFIC)
    answered, _, details = act(
        order, "record_enforcing_answer", utc(2026, 3, 3), {"answer": "no_ground"}
    )
    assert review(answered).received_at == utc(2026, 3, 3) and details["in_time"] is True


def test_an_adapted_order_keeps_its_enforcing_review() -> None:
    order = notified()
    adapted, _, _ = act(order, "adapt", utc(2026, 3, 3), {"document": order.document})
    assert adapted.enforcing == order.enforcing


def test_the_provider_and_the_issuing_state_in_one_country_need_no_enforcing_authority() -> None:
    """A provider established in the issuing State: the order is not cross-border (Art 8(1)
    speaks of another Member State), so none is required."""
    from custody.order_deadlines import Place
    from custody.orders import ServiceTerms

    lisbon = ServiceTerms(place=Place("Europe/Lisbon", "PT"))
    order = served(terms=lisbon, **{**EU_TRAFFIC, "enforcing_authority": None, "language": "pt"})
    assert order.enforcing is None
    assert served(terms=IRISH, **EU_TRAFFIC).enforcing is not None
