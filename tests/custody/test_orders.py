"""Tests of custody.orders: the order document, its lifecycle, its note text and event data.

The deadline clock (service, pauses, holds, expiry) is tested in test_order_deadlines.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.commitment import commit
from custody.errors import BadRequest, Conflict, FieldErrors, Forbidden
from custody.events import SYSTEM, Actor, NewEvent, Subject
from custody.json_codec import canonical_json
from custody.note import NoteSigner, open_note, sign_note
from custody.note_types import ORDER_TYPE
from custody.order_deadlines import MAX_PRESERVATION_DAYS, OrderClock
from custody.order_document import (
    KINDS,
    OBJECTION_GROUNDS,
    PARTIAL_TRAFFIC_DISCLOSURE,
    PRESERVATION,
    PRODUCTION,
    Authority,
    OrderDocument,
    Target,
)
from custody.orders import (
    ACTIONS,
    ACTOR_OF_ACTION,
    EVENT_OF_ACTION,
    PARTY_ROLES,
    Order,
    OrderState,
    allowed_actions,
    apply,
    draft_order,
    order_document_text,
    order_event_data,
    revise_draft,
    service_period,
)
from tests.factories import EMAIL, EMERGENCY, FACTS, IP, PROVIDER_ID, order_document

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATE = T0 + timedelta(days=400)  # past every deadline and hold
ORDER_ID = "ord_0123456789abcdef"
AUTHORITY = Actor(id="pr_author", role="authority")
APPROVER = Actor(id="pr_approver", role="approver")
PROVIDER = Actor(id="pr_mailco", role="provider")


def document(kind: str = PRODUCTION, **changes: Any) -> OrderDocument:
    return OrderDocument.from_json(order_document(kind=kind, **changes))


def order_in(state: OrderState, kind: str = PRODUCTION, **changes: Any) -> Order:
    """An order of ``kind`` in ``state``, served and received at T0 unless still a draft or
    pending; an order to produce awaiting clarification has its clock suspended."""
    doc = document(kind, **changes)
    served = state not in (OrderState.DRAFT, OrderState.PENDING_APPROVAL)
    suspended = state is OrderState.CLARIFICATION_REQUESTED and kind != PRESERVATION
    clock = OrderClock(
        served_at=T0,
        period=service_period(doc),
        received_at=T0,
        received_via="notice",
        suspended_since=T0 + timedelta(hours=1) if suspended else None,
    )
    return Order(
        id=ORDER_ID,
        document=doc,
        state=state,
        drafted_by=AUTHORITY.id,
        drafted_at=T0 - timedelta(days=1),
        approved_by=APPROVER.id if served else None,
        clock=clock if served else None,
    )


VALIDATOR = Actor(id="pr_judge", role="validator")
ACTOR_OF_PARTY = {
    "authority": AUTHORITY,
    "validator": VALIDATOR,
    "approver": APPROVER,
    "provider": PROVIDER,
}
DATA: dict[str, dict[str, Any]] = {
    "extend": {"days": 30},
    "send_back": {"reason": "Name the account's creation date among the targets."},
    "object": {"ground": "data_not_held"},
    "request_clarification": {"question": "Which of the two mailboxes is meant?"},
    "answer_objection": {"answer": "The order stands: the mailbox is yours."},
    "answer_clarification": {"answer": "The first one."},
    "respond": {"evidence": "ev_0123456789abcdef"},
    "record_user_information": {
        "informed": True,
        "details": "Told by letter of the order and of the remedies of Art 18.",
    },
}


def act(
    order: Order, action: str, at: datetime = LATE, data: dict[str, Any] | None = None
) -> tuple[Order, str, dict[str, Any]]:
    """Apply ``action`` as the party it belongs to, with valid data unless ``data`` is given."""
    party = ACTOR_OF_ACTION[action]
    by = SYSTEM if party == "system" else ACTOR_OF_PARTY[party]
    given = DATA.get(action, {}) if data is None else data
    if action == "adapt" and data is None:
        given = {"document": order.document}
    return apply(order, action, by, at, given, provider_id=PROVIDER_ID)


# The lifecycle as docs/orders.md states it, written out independently of custody.orders,
# for an order received at T0 and looked at long after every deadline and hold (LATE).
# Some states are unreachable for a kind (a production order is never preserved); their
# rows still say what the table would allow.
_S = OrderState
_ENDS: dict[OrderState, dict[str, OrderState]] = {
    _S.DRAFT: {"submit": _S.PENDING_APPROVAL, "withdraw": _S.WITHDRAWN},
    _S.PENDING_APPROVAL: {
        "approve": _S.SERVED,
        "send_back": _S.DRAFT,
        "withdraw": _S.WITHDRAWN,
    },
    _S.PRODUCED: {"withdraw": _S.WITHDRAWN, "close": _S.CLOSED},
    _S.NO_DATA: {"withdraw": _S.WITHDRAWN, "close": _S.CLOSED},
    _S.CLOSED: {},
    _S.WITHDRAWN: {},
    _S.EXPIRED: {},
}
# Past its deadline an order to produce is overdue: enforcement may be sought, and it may be
# closed; it never expires. An answer leads back to where the order stood (acknowledged for
# these orders, built without a record of it).
PRODUCTION_LIFECYCLE: dict[OrderState, dict[str, OrderState]] = {
    **_ENDS,
    _S.SERVED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "seek_enforcement": _S.SERVED,
        "close": _S.CLOSED,
        "acknowledge": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "no_data": _S.NO_DATA,
    },
    _S.ACKNOWLEDGED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "seek_enforcement": _S.ACKNOWLEDGED,
        "close": _S.CLOSED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "no_data": _S.NO_DATA,
        "respond": _S.PRODUCED_PARTIAL,
    },
    _S.OBJECTED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "answer_objection": _S.ACKNOWLEDGED,
        "seek_enforcement": _S.OBJECTED,
        "close": _S.CLOSED,
    },
    _S.CLARIFICATION_REQUESTED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "answer_clarification": _S.ACKNOWLEDGED,
    },
    _S.PRESERVED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "close": _S.CLOSED,
        "object": _S.OBJECTED,
    },
    _S.PRODUCED_PARTIAL: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "seek_enforcement": _S.PRODUCED_PARTIAL,
        "close": _S.CLOSED,
        "object": _S.OBJECTED,
        "respond": _S.PRODUCED_PARTIAL,
        "complete": _S.PRODUCED,
    },
}
# Past its hold a preservation order expires; it is no longer extended; an adapted one keeps
# its state (its hold continues).
PRESERVATION_LIFECYCLE: dict[OrderState, dict[str, OrderState]] = {
    **_ENDS,
    _S.SERVED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.SERVED,
        "acknowledge": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "confirm_preservation": _S.PRESERVED,
        "no_data": _S.NO_DATA,
        "expire": _S.EXPIRED,
    },
    _S.ACKNOWLEDGED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "confirm_preservation": _S.PRESERVED,
        "no_data": _S.NO_DATA,
        "expire": _S.EXPIRED,
    },
    _S.OBJECTED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.OBJECTED,
        "answer_objection": _S.ACKNOWLEDGED,
        "close": _S.CLOSED,
        "expire": _S.EXPIRED,
    },
    _S.CLARIFICATION_REQUESTED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.CLARIFICATION_REQUESTED,
        "answer_clarification": _S.ACKNOWLEDGED,
        "expire": _S.EXPIRED,
    },
    _S.PRESERVED: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.PRESERVED,
        "close": _S.CLOSED,
        "object": _S.OBJECTED,
        "expire": _S.EXPIRED,
    },
    _S.PRODUCED_PARTIAL: {
        "withdraw": _S.WITHDRAWN,
        "adapt": _S.PRODUCED_PARTIAL,
        "object": _S.OBJECTED,
    },
}
# Once served, an order to produce records whether its user was informed (Art 13), in every
# state it can reach, even after it was closed or withdrawn.
_INFORMED = (
    _S.SERVED,
    _S.ACKNOWLEDGED,
    _S.OBJECTED,
    _S.CLARIFICATION_REQUESTED,
    _S.PRESERVED,
    _S.PRODUCED_PARTIAL,
    _S.PRODUCED,
    _S.NO_DATA,
    _S.CLOSED,
    _S.WITHDRAWN,
)
PRODUCTION_LIFECYCLE = {
    state: {**moves, "record_user_information": state} if state in _INFORMED else moves
    for state, moves in PRODUCTION_LIFECYCLE.items()
}
LIFECYCLE = {
    PRODUCTION: PRODUCTION_LIFECYCLE,
    PARTIAL_TRAFFIC_DISCLOSURE: PRODUCTION_LIFECYCLE,
    PRESERVATION: PRESERVATION_LIFECYCLE,
}


def test_every_action_is_the_act_of_one_party_and_records_one_event_type() -> None:
    assert set(ACTOR_OF_ACTION) == set(ACTIONS) == set(EVENT_OF_ACTION)
    assert set(ACTOR_OF_ACTION.values()) == {
        "authority",
        "validator",
        "approver",
        "provider",
        "system",
    }
    for event_type in EVENT_OF_ACTION.values():
        NewEvent(event_type, SYSTEM, Subject("order", ORDER_ID))


def test_the_lifecycle_covers_every_state() -> None:
    assert set(PRODUCTION_LIFECYCLE) == set(PRESERVATION_LIFECYCLE) == set(OrderState)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", list(OrderState))
@pytest.mark.parametrize("kind", KINDS)
def test_state_machine_allows_exactly_the_lifecycle(
    kind: str, state: OrderState, action: str
) -> None:
    order = order_in(state, kind)
    before = order_in(state, kind)
    allowed = LIFECYCLE[kind][state]
    expected_allowed = [a for a in ACTIONS if a in allowed]
    assert allowed_actions(order, LATE) == expected_allowed
    party = ACTOR_OF_ACTION[action]
    by = SYSTEM if party == "system" else ACTOR_OF_PARTY[party]
    for_caller = [a for a in expected_allowed if by.role in PARTY_ROLES[ACTOR_OF_ACTION[a]]]
    if action in allowed:
        new, event_type, _ = act(order, action)
        assert new.state is allowed[action]
        assert event_type == EVENT_OF_ACTION[action]
    else:
        with pytest.raises(Conflict) as refused:
            act(order, action)
        assert refused.value.allowed_actions == for_caller
        assert action in str(refused.value)
    assert order == before


def test_preservation_order_cannot_be_responded_to_because_it_is_not_disclosure() -> None:
    with pytest.raises(Conflict, match="preservation is not disclosure"):
        act(order_in(OrderState.ACKNOWLEDGED, PRESERVATION), "respond")


def test_production_order_is_never_confirmed_as_preserved_or_extended() -> None:
    order = order_in(OrderState.ACKNOWLEDGED)
    with pytest.raises(Conflict, match="only a preservation order is preserved"):
        act(order, "confirm_preservation")
    with pytest.raises(Conflict, match="hold is extended"):
        act(order, "extend")


def test_nothing_but_reading_follows_closing_withdrawal_or_expiry() -> None:
    """Except, for an order to produce, recording that its user was informed (Art 13) and
    the enforcing State's answer to one sent to it (tested in test_order_enforcing.py)."""
    for state in (OrderState.CLOSED, OrderState.WITHDRAWN, OrderState.EXPIRED):
        for kind in KINDS:
            after = (
                ["record_user_information"] if kind != PRESERVATION and state in _INFORMED else []
            )
            assert allowed_actions(order_in(state, kind), LATE) == after


def test_production_journey_from_draft_to_close() -> None:
    order, event_type, _ = draft_order(document(), AUTHORITY, T0)
    assert (order.state, event_type, order.drafted_by) == (
        OrderState.DRAFT,
        "order.drafted",
        AUTHORITY.id,
    )
    events = []
    for action in ("submit", "approve", "acknowledge", "respond", "respond", "complete", "close"):
        order, event_type, _ = act(order, action, T0 + timedelta(days=1))
        events.append(event_type)
    assert order.state is OrderState.CLOSED
    assert events == [
        "order.submitted",
        "order.served",
        "order.acknowledged",
        "order.responded",
        "order.responded",
        "order.produced",
        "order.closed",
    ]


def test_preservation_journey_goes_served_acknowledged_preserved() -> None:
    order, _, _ = draft_order(document(PRESERVATION), AUTHORITY, T0)
    states = []
    for action in ("submit", "approve", "acknowledge", "confirm_preservation", "extend", "close"):
        order, _, _ = act(order, action, T0 + timedelta(days=1))
        states.append(order.state.value)
    assert states == [
        "pending_approval",
        "served",
        "acknowledged",
        "preserved",
        "preserved",
        "closed",
    ]


@pytest.mark.parametrize(
    ("kind", "state", "action"),
    [
        (PRODUCTION, _S.SERVED, "object"),
        (PRODUCTION, _S.SERVED, "request_clarification"),
        (PRODUCTION, _S.ACKNOWLEDGED, "object"),
        (PRODUCTION, _S.ACKNOWLEDGED, "request_clarification"),
        (PRODUCTION, _S.PRODUCED_PARTIAL, "object"),
        (PRESERVATION, _S.PRESERVED, "object"),
    ],
)
def test_an_answer_returns_the_order_to_where_the_objection_or_question_left_it(
    kind: str, state: OrderState, action: str
) -> None:
    """A state changes only through the act naming it: answering a clarification request on
    an unacknowledged order does not acknowledge it. Annex III (Regulation (EU) 2023/1543)
    is open after partial delivery and after preservation was confirmed."""
    asked, _, _ = act(order_in(state, kind), action, T0)
    answer = "answer_objection" if action == "object" else "answer_clarification"
    answered, _, _ = act(asked, answer, T0 + timedelta(days=1))
    assert answered.state is state
    assert answered.resume_state is None


def test_drafter_cannot_approve_own_order() -> None:
    drafter = Actor(id="pr_senior", role="approver")
    order, _, _ = draft_order(document(), drafter, T0)
    order, _, _ = apply(order, "submit", drafter, T0)
    with pytest.raises(Forbidden, match="four-eyes"):
        apply(order, "approve", drafter, T0)
    served, event_type, _ = apply(order, "approve", APPROVER, T0)
    assert (served.state, served.approved_by, event_type) == (
        OrderState.SERVED,
        APPROVER.id,
        "order.served",
    )


def test_reviser_of_a_draft_cannot_approve_it() -> None:
    order, _, _ = draft_order(document(), AUTHORITY, T0)
    order, event_type, _ = revise_draft(order, document(reference="PO-2026-0018"), APPROVER)
    assert event_type == "order.revised"
    assert order.revised_by == (APPROVER.id,)
    assert order.document.reference == "PO-2026-0018"
    order, _, _ = apply(order, "submit", AUTHORITY, T0)
    with pytest.raises(Forbidden, match="four-eyes"):
        apply(order, "approve", APPROVER, T0)
    other = Actor(id="pr_other_approver", role="approver")
    assert apply(order, "approve", other, T0)[0].approved_by == other.id


def test_only_a_draft_is_revised() -> None:
    order = order_in(OrderState.PENDING_APPROVAL)
    with pytest.raises(Conflict) as refused:
        revise_draft(order, document(), AUTHORITY)
    assert refused.value.allowed_actions == ["withdraw"]  # the authority may not approve


@pytest.mark.parametrize(
    ("state", "action", "by"),
    [
        (_S.DRAFT, "submit", PROVIDER),
        (_S.PENDING_APPROVAL, "approve", AUTHORITY),
        (_S.SERVED, "acknowledge", AUTHORITY),
        (_S.SERVED, "acknowledge", APPROVER),
        (_S.SERVED, "withdraw", PROVIDER),
        (_S.SERVED, "expire", AUTHORITY),
        (_S.SERVED, "acknowledge", SYSTEM),
        (_S.SERVED, "acknowledge", Actor(id="pr_court", role="court")),
        (_S.CLOSED, "approve", PROVIDER),  # the wrong party is refused before the state is read
    ],
)
def test_the_wrong_party_is_forbidden(state: OrderState, action: str, by: Actor) -> None:
    with pytest.raises(Forbidden):
        apply(order_in(state), action, by, LATE, DATA.get(action), provider_id=PROVIDER_ID)


def test_provider_acts_only_on_orders_addressed_to_it() -> None:
    order = order_in(OrderState.SERVED)
    with pytest.raises(Forbidden, match="another provider"):
        apply(order, "acknowledge", PROVIDER, T0, provider_id="prov_other")
    with pytest.raises(Forbidden, match="another provider"):
        apply(order, "acknowledge", PROVIDER, T0)
    assert apply(order, "acknowledge", PROVIDER, T0, provider_id=PROVIDER_ID)[0].state is (
        OrderState.ACKNOWLEDGED
    )


def test_only_an_authority_drafts_or_revises() -> None:
    with pytest.raises(Forbidden):
        draft_order(document(), PROVIDER, T0)
    with pytest.raises(Forbidden):
        revise_draft(order_in(OrderState.DRAFT), document(), Actor(id="pr_x", role="examiner"))


def test_objection_grounds_are_those_of_the_issue() -> None:
    assert OBJECTION_GROUNDS == (
        "incomplete",
        "manifest_error",
        "insufficient_information",
        "data_not_stored",
        "data_not_held",
        "de_facto_impossible",
        "issuer_not_competent",
        "offence_not_covered",
        "service_out_of_scope",
        "privilege_or_immunity",
        "third_country_law_conflict",
        "other",
    )


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("object", {}, "ground"),
        ("object", {"ground": "too_busy"}, "ground"),
        ("object", {"ground": "third_country_law_conflict"}, "details"),
        ("object", {"ground": "other", "details": "  "}, "details"),
        ("request_clarification", {"question": ""}, "question"),
        ("respond", {"evidence": "not-an-id"}, "evidence"),
        ("extend", {"days": 0}, "days"),
        ("extend", {"days": 91}, "days"),
        ("extend", {"days": True}, "days"),
        ("record_user_information", {"details": "Told."}, "informed"),
        ("record_user_information", {"informed": "yes", "details": "Told."}, "informed"),
        ("record_user_information", {"informed": False}, "details"),
    ],
)
def test_action_data_is_checked(action: str, data: dict[str, Any], field: str) -> None:
    kind = PRESERVATION if action == "extend" else PRODUCTION
    with pytest.raises(BadRequest, match=field):
        act(order_in(OrderState.ACKNOWLEDGED, kind), action, T0, data)


@pytest.mark.parametrize(
    ("state", "action"),
    [(_S.OBJECTED, "answer_objection"), (_S.CLARIFICATION_REQUESTED, "answer_clarification")],
)
def test_an_answer_needs_its_text(state: OrderState, action: str) -> None:
    with pytest.raises(BadRequest, match="answer"):
        act(order_in(state), action, T0, {"answer": " "})


@pytest.mark.parametrize(("state", "action"), [(_S.SERVED, "withdraw"), (_S.NO_DATA, "close")])
def test_a_reason_given_for_withdrawal_or_closing_is_text(state: OrderState, action: str) -> None:
    for reason in (" ", 7, "x" * 20_001):
        with pytest.raises(BadRequest, match="reason"):
            act(order_in(state), action, T0, {"reason": reason})
    assert act(order_in(state), action, T0, {"reason": "superseded"})[0].state is not state


def test_a_time_that_falls_before_year_one_in_utc_is_a_bad_request() -> None:
    data = order_document(time_range={"start": "0001-01-01T00:00:00+01:00", "end": T0.isoformat()})
    with pytest.raises(FieldErrors, match=r"time_range\.start"):
        OrderDocument.from_json(data)


def test_objection_grounds_needing_details_are_accepted_with_them() -> None:
    for ground in OBJECTION_GROUNDS:
        data = {"ground": ground, "details": "Law 12/2020 forbids disclosure to a foreign body."}
        new, _, details = act(order_in(OrderState.ACKNOWLEDGED), "object", T0, data)
        assert (new.state, details) == (OrderState.OBJECTED, {"ground": ground})


def test_unknown_action_and_naive_time_are_bad_requests() -> None:
    order = order_in(OrderState.SERVED)
    with pytest.raises(BadRequest, match="unknown order action"):
        apply(order, "approve_quickly", APPROVER, T0)
    with pytest.raises(BadRequest, match="timezone"):
        apply(order, "acknowledge", PROVIDER, datetime(2026, 3, 3), provider_id=PROVIDER_ID)


# --- the document -------------------------------------------------------------------------


def test_document_round_trips_through_json() -> None:
    doc = document(
        validating_authority={
            "name": "Court of Lisbon",
            "type": "court",
            "file_number": "9/26",
            "contact": "court@example.org",
        },
        emergency=EMERGENCY,
        confidentiality={"no_user_notice": True, "until": "2026-09-01T00:00:00+02:00"},
        linked_order="ord_fedcba9876543210",
    )
    assert OrderDocument.from_json(json.loads(json.dumps(doc.as_json()))) == doc
    assert doc.as_json()["confidentiality"]["until"] == "2026-08-31T22:00:00.000000Z"


def test_document_built_directly_normalises_categories_and_defaults() -> None:
    doc = OrderDocument(
        **{
            **document(PRESERVATION).__dict__,
            "data_categories": ["content", "subscriber"],
            "targets": [Target(type="account", value="mailco:12345")],
            "preservation_days": None,
        }
    )
    assert doc.data_categories == ("subscriber", "content")
    assert doc.targets == (Target(type="account", value="mailco:12345"),)
    assert doc.preservation_days == 90


def eu(kind: str = PRODUCTION, **changes: Any) -> dict[str, Any]:
    instrument = "eu_2023_1543_epoc" if kind == PRODUCTION else "eu_2023_1543_epoc_pr"
    return {
        "legal_basis": {"instrument": instrument, "citation": "Regulation (EU) 2023/1543"},
        **changes,
    }


def prosecutor() -> dict[str, str]:
    return {
        "name": "Public Prosecutor, Porto",
        "type": "prosecutor",
        "file_number": "77/26",
        "contact": "p@example.org",
        "state": "PT",
    }


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        (PRESERVATION, {"data_categories": []}, "data_categories"),
        (PRODUCTION, {"data_categories": ["subscriber", "subscriber"]}, "data_categories"),
        (PRODUCTION, {"data_categories": ["metadata"]}, "data_categories"),
        (PARTIAL_TRAFFIC_DISCLOSURE, {"data_categories": ["subscriber"]}, "data_categories"),
        (
            PARTIAL_TRAFFIC_DISCLOSURE,
            {"data_categories": ["traffic", "content"]},
            "data_categories",
        ),
        (
            PRODUCTION,
            {"emergency": {"flag": True, "category": "threat_to_life"}},
            "emergency.justification",
        ),
        (PRODUCTION, {"emergency": {"flag": True, "justification": "soon"}}, "emergency.category"),
        (PRODUCTION, {"emergency": {"flag": False, "justification": "soon"}}, "emergency"),
        (PRODUCTION, {"emergency": {"flag": "yes"}}, "emergency.flag"),
        (
            PRODUCTION,
            {"time_range": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
            "time_range.end",
        ),
        (PRODUCTION, {"time_range": {"start": "2026-02-01T00:00:00Z"}}, "time_range.end"),
        (
            PRODUCTION,
            {"time_range": {"start": "2026-01-01", "end": "2026-02-01"}},
            "time_range",  # start and end, both without a time zone
        ),
        (
            PRODUCTION,
            {"time_range": {"start": "yesterday", "end": "2026-02-01T00:00:00Z"}},
            "time_range.start",
        ),
        (
            PRODUCTION,
            {"legal_basis": {"instrument": "un_cybercrime_art25", "citation": "Art 25"}},
            "legal_basis.instrument",
        ),
        (
            PRODUCTION,
            {"legal_basis": {"instrument": "magna_carta", "citation": "cl 39"}},
            "legal_basis.instrument",
        ),
        (
            PRODUCTION,
            {"legal_basis": {"instrument": "national_law", "citation": ""}},
            "legal_basis.citation",
        ),
        (
            PRODUCTION,
            {
                "legal_basis": {"instrument": "budapest_protocol2_art7", "citation": "Art 7"},
                "data_categories": ["subscriber", "content"],
            },
            "data_categories",
        ),
        (
            PRODUCTION,
            {"issuing_authority": {**prosecutor(), "type": "sheriff"}},
            "issuing_authority.type",
        ),
        (
            PRODUCTION,
            {"issuing_authority": {**prosecutor(), "contact": ""}},
            "issuing_authority.contact",
        ),
        (
            PRODUCTION,
            {"validating_authority": {**prosecutor(), "name": None}},
            "validating_authority.name",
        ),
        (PRODUCTION, {"targets": []}, "targets"),
        (PRODUCTION, {"targets": [{"type": "ip", "value": IP}]}, "targets[0].time"),
        (
            PRODUCTION,
            {"targets": [{"type": "ip", "value": "203.0.113.999", "time": "2026-01-03T10:00:00Z"}]},
            "targets[0].value",
        ),
        (
            PRODUCTION,
            {
                "targets": [
                    {"type": "ip", "value": IP, "port": 70000, "time": "2026-01-03T10:00:00Z"}
                ]
            },
            "targets[0].port",
        ),
        (
            PRODUCTION,
            {"targets": [{"type": "email", "value": EMAIL, "port": 25}]},
            "targets[0].port",
        ),
        (PRODUCTION, {"targets": [{"type": "carrier_pigeon", "value": "Bob"}]}, "targets[0].type"),
        (PRODUCTION, {"targets": {"type": "email", "value": EMAIL}}, "targets"),
        (PRODUCTION, {"preservation_days": 30}, "preservation_days"),
        (PRESERVATION, {"preservation_days": 91}, "preservation_days"),
        (PRESERVATION, {"preservation_days": 0}, "preservation_days"),
        (
            PRODUCTION,
            {"confidentiality": {"until": "2026-09-01T00:00:00Z"}},
            "confidentiality.until",
        ),
        (PRODUCTION, {"language": "English"}, "language"),
        (PRODUCTION, {"kind": "seizure"}, "kind"),
        (PRODUCTION, {"facts": "   "}, "facts"),
        (PRODUCTION, {"necessity_and_proportionality": "\ud800"}, "necessity_and_proportionality"),
        (PRODUCTION, {"offence": "fraud"}, "offence"),
        (PRODUCTION, {"legal_basis": None}, "legal_basis"),
        (PRODUCTION, {"colour": "red"}, "colour"),
        (
            PRODUCTION,
            {"offence": {"description": "fraud", "provision": "s 1", "penalty": "3y"}},
            "offence.penalty",
        ),
    ],
)
def test_document_refuses_invalid_fields_naming_them(
    kind: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(FieldErrors) as refused:
        OrderDocument.from_json({**order_document(kind=kind), **changes})
    named = [name for name, _ in refused.value.errors]
    assert named and all(name.startswith(field) for name in named), refused.value.errors


def test_document_names_every_invalid_field_at_once_each_with_its_reason() -> None:
    data = {
        **order_document(),
        "facts": " ",
        "kind": "seizure",
        "colour": "red",
        "issuing_authority": {**prosecutor(), "type": "sheriff", "contact": ""},
        "targets": [
            {"type": "email", "value": EMAIL},
            {"type": "ip", "value": "203.0.113.999"},
        ],
    }
    del data["link"]

    with pytest.raises(FieldErrors) as refused:
        OrderDocument.from_json(data)

    faults = dict(refused.value.errors)
    assert faults == {
        "colour": "not a field of an order document",
        "link": "required",
        "issuing_authority.type": "one of judge, court, prosecutor, other, not 'sheriff'",
        "issuing_authority.contact": "required, as non-empty text",
        "targets[1].value": "'203.0.113.999' is not an IP address",
        "targets[1].time": "required for an ip target",
        "facts": "required, as non-empty text",
        "kind": f"one of {', '.join(KINDS)}, not 'seizure'",
    }
    assert len(refused.value.errors) == len(faults)  # each named once


def test_a_rule_joining_fields_waits_for_the_fields_it_reads_and_the_others_still_run() -> None:
    data = {**order_document(kind=PRESERVATION), "preservation_days": 0}
    del data["data_categories"]
    stateless = {**prosecutor(), "state": None, "type": "mayor"}

    with pytest.raises(FieldErrors) as refused:
        OrderDocument.from_json(data)
    with pytest.raises(FieldErrors) as eu_refused:
        OrderDocument.from_json({**order_document(), **eu(issuing_authority=stateless)})

    assert dict(refused.value.errors) == {
        "data_categories": "required",
        "preservation_days": f"from 1 to {MAX_PRESERVATION_DAYS}, not 0",
    }
    # The issuing State is an EU rule on a sound authority: the type is named, nothing else.
    assert [name for name, _ in eu_refused.value.errors] == ["issuing_authority.type"]


def test_a_part_that_is_not_an_object_is_named_once_and_its_neighbours_still_checked() -> None:
    data = {**order_document(), "offence": "fraud", "reference": ""}

    with pytest.raises(FieldErrors) as refused:
        OrderDocument.from_json(data)

    assert refused.value.errors == [
        ("offence", "must be a JSON object"),
        ("reference", "required, as non-empty text"),
    ]


def test_document_names_a_missing_required_field() -> None:
    data = order_document()
    del data["link"]
    with pytest.raises(FieldErrors) as refused:
        OrderDocument.from_json(data)
    assert refused.value.errors == [("link", "required")]
    with pytest.raises(FieldErrors, match="document: must be a JSON object"):
        OrderDocument.from_json([data])


def test_eu_order_for_traffic_or_content_needs_a_judge_or_court() -> None:
    traffic = {"data_categories": ["subscriber", "traffic"]}
    with pytest.raises(FieldErrors, match=r"validating_authority: required.*judge or court"):
        document(**eu(issuing_authority=prosecutor(), **traffic))
    with pytest.raises(FieldErrors, match=r"validating_authority: required"):
        document(**eu(issuing_authority=prosecutor(), validating_authority=prosecutor(), **traffic))
    judge = {**prosecutor(), "type": "judge", "name": "Investigating judge, Porto"}
    assert document(**eu(issuing_authority=prosecutor(), validating_authority=judge, **traffic))
    assert document(**eu(issuing_authority=judge, **traffic))


def test_eu_subscriber_or_preservation_order_may_come_from_a_prosecutor() -> None:
    assert document(**eu(issuing_authority=prosecutor()))
    assert document(PRESERVATION, **eu(PRESERVATION, issuing_authority=prosecutor()))
    police = {**prosecutor(), "type": "other", "name": "Judicial Police"}
    with pytest.raises(FieldErrors, match=r"validating_authority: required"):
        document(**eu(issuing_authority=police))
    assert document(**eu(issuing_authority=police, validating_authority=prosecutor()))


def test_identification_only_ip_target_needs_no_port() -> None:
    doc = document(
        data_categories=["identification_only"],
        targets=[{"type": "ip", "value": "2001:db8::1", "time": "2026-01-03T11:00:00+01:00"}],
    )
    assert doc.targets[0].time == datetime(2026, 1, 3, 10, 0, tzinfo=UTC)


def test_authority_checks_itself_when_built() -> None:
    with pytest.raises(FieldErrors) as refused:
        Authority(name="", type="mayor", file_number="1", contact="x@example.org")
    assert [name for name, _ in refused.value.errors] == ["authority.name", "authority.type"]


# --- the issued document and the events ---------------------------------------------------


def served_order() -> Order:
    order, _, _ = draft_order(document(), AUTHORITY, T0, order_id=ORDER_ID)
    order, _, _ = apply(order, "submit", AUTHORITY, T0)
    return apply(order, "approve", APPROVER, T0 + timedelta(hours=2))[0]


def test_document_text_is_the_type_line_then_canonical_json() -> None:
    text = order_document_text(served_order())
    first, body, end = text.split("\n")
    assert (first, end) == (ORDER_TYPE, "")
    issued = json.loads(body)
    assert canonical_json(issued).decode() == body
    assert issued["id"] == ORDER_ID
    assert issued["drafted_by"] == AUTHORITY.id
    assert issued["approved_by"] == APPROVER.id
    assert issued["served_at"] == "2026-03-02T11:00:00.000000Z"
    assert issued["targets"][0]["value"] == EMAIL


def test_same_order_gives_the_same_document_bytes() -> None:
    assert (
        order_document_text(served_order()).encode() == order_document_text(served_order()).encode()
    )


def test_document_text_does_not_change_after_service() -> None:
    order = served_order()
    issued = order_document_text(order)
    later = order
    for action in ("object", "answer_objection", "acknowledge", "respond", "complete", "close"):
        later = act(later, action, T0 + timedelta(days=1))[0]
        assert order_document_text(later) == issued


def test_document_text_depends_on_approver_and_content() -> None:
    order = served_order()
    text = order_document_text(order)
    from dataclasses import replace

    assert order_document_text(replace(order, approved_by="pr_someone_else")) != text
    assert order_document_text(replace(order, document=document(facts="Other facts."))) != text


def test_document_text_signs_as_a_note_that_opens() -> None:
    signer = NoteSigner("test.custos.invalid/ledger", Ed25519PrivateKey.generate())
    text = order_document_text(served_order())
    assert open_note(sign_note(text, [signer]), [signer.verifier]).text == text


def test_event_data_carries_order_state_and_commitment_never_targets() -> None:
    order, event_type, details = draft_order(document(emergency=EMERGENCY), AUTHORITY, T0)
    steps = [(order, event_type, details)]
    for action in (
        "submit",
        "approve",
        "object",
        "answer_objection",
        "request_clarification",
        "answer_clarification",
        "acknowledge",
        "respond",
        "complete",
        "close",
    ):
        data = (
            {"ground": "other", "details": f"{EMAIL} is a shared mailbox"}
            if action == "object"
            else {}
        )
        steps.append(act(steps[-1][0], action, T0 + timedelta(hours=len(steps)), data or None))
    for new, event_type, details in steps:
        _, digest = commit(order_document_text(new).encode())
        data = {**order_event_data(new, digest), **details}
        assert data["order"] == new.id
        assert data["state"] == new.state.value
        assert data["document_commitment"] == digest
        encoded = canonical_json(data).decode()
        for secret in (EMAIL, IP, FACTS, "shared mailbox", "hospital", "Which of"):
            assert secret not in encoded
        NewEvent(event_type, AUTHORITY, Subject("order", new.id), data)


def test_event_data_refuses_a_malformed_commitment() -> None:
    with pytest.raises(BadRequest, match="commitment"):
        order_event_data(served_order(), "ABC")


# -- Regulation (EU) 2023/1543 Art 5(4): the threshold ---------------------------------------


def _issued(doc: OrderDocument) -> Order:
    order, _, _ = draft_order(doc, AUTHORITY, T0)
    order, _, _ = apply(order, "submit", AUTHORITY, T0)
    return apply(order, "approve", APPROVER, T0)[0]


def test_art_5_4_an_eu_traffic_or_content_order_below_three_years_is_not_issued() -> None:
    for categories in (["traffic"], ["content"], ["subscriber", "traffic"]):
        for offence in (
            {"description": "insult", "provision": "s. 181", "max_penalty_years": 2},
            {"description": "insult", "provision": "s. 181"},
        ):
            doc = document(**eu(data_categories=categories, offence=offence))
            with pytest.raises(BadRequest, match=r"Art 5\(4\)"):
                _issued(doc)


def test_art_5_4_three_years_or_a_listed_offence_is_enough() -> None:
    three = {"description": "fraud", "provision": "s. 217", "max_penalty_years": 3}
    assert _issued(document(**eu(data_categories=["content"], offence=three))).state == "served"
    listed = {
        "description": "phishing",
        "provision": "s. 221",
        "max_penalty_years": 1,
        "listed_category": "non_cash_payment_fraud",
        "annex_iv_category": "computer-related crime",
    }
    issued = _issued(document(**eu(data_categories=["traffic"], offence=listed)))
    assert issued.document.offence.annex_iv_category == "computer-related crime"


def test_art_5_4_subscriber_identification_preservation_and_other_instruments_have_none() -> None:
    petty = {"description": "insult", "provision": "s. 181", "max_penalty_years": 1}
    for doc in (
        document(**eu(data_categories=["subscriber", "identification_only"], offence=petty)),
        document(PRESERVATION, **eu(PRESERVATION, data_categories=["content"], offence=petty)),
        document(data_categories=["content"], offence=petty),  # UN Convention Art 27
    ):
        assert _issued(doc).state == "served"


def test_an_offence_refuses_a_bad_penalty_or_an_unlisted_category() -> None:
    for offence, field_name in (
        ({"max_penalty_years": -1}, "max_penalty_years"),
        ({"max_penalty_years": "3"}, "max_penalty_years"),
        ({"listed_category": "shoplifting"}, "listed_category"),
        ({"annex_iv_category": " "}, "annex_iv_category"),
    ):
        given = {"description": "x", "provision": "s. 1", **offence}
        with pytest.raises(FieldErrors, match=rf"offence\.{field_name}"):
            document(offence=given)


def test_an_eu_order_names_its_issuing_state() -> None:
    """Art 8 and Annex I: the enforcing State is another Member State than the issuing one."""
    stateless = {**prosecutor(), "state": None}
    with pytest.raises(FieldErrors, match=r"issuing_authority\.state: required"):
        document(**eu(issuing_authority=stateless))
    with pytest.raises(FieldErrors, match=r"issuing_authority\.state"):
        document(issuing_authority={**prosecutor(), "state": "Portugal"})
    assert document(issuing_authority=stateless)  # a UN order need not


def test_a_document_issued_before_the_new_fields_keeps_its_text() -> None:
    """Fields added later are left out of the JSON while absent: the text an older signed
    note carries is the text Custos still commits to."""
    doc = document(issuing_authority={**prosecutor(), "state": None})
    assert "state" not in doc.as_json()["issuing_authority"]
    assert set(doc.as_json()["offence"]) == {"description", "provision"}
