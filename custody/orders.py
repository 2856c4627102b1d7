"""Production and preservation orders: the document an authority issues, and its lifecycle.

The document is in ``custody.order_document``; it is issued as a ``custos/order/v1`` signed
note naming who drafted and who approved it. An order's lifecycle is one transition table:
``apply`` checks who acts, what the state allows and what the act carries, and returns the
next order and the event to record. docs/orders.md states each rule and its article.
Events carry the order id, the new state and a salted commitment to the document, never the
targets or other personal data. Nothing here stores, signs or reads a clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from custody.errors import BadRequest, Conflict, Faults, Forbidden, IntegrityError
from custody.events import Actor, format_time
from custody.evidence import is_evidence_id
from custody.note_types import ORDER_TYPE, json_note_text
from custody.order_deadlines import (
    EMERGENCY_HOURS,
    EU_EXTENSION_DAYS,
    MAX_PRESERVATION_DAYS,
    PRODUCTION_DAYS,
    OrderClock,
    Period,
    PeriodRule,
    Place,
)
from custody.order_document import (
    GROUNDS_NEEDING_DETAILS,
    HEX32,
    OBJECTION_GROUNDS,
    ORDER_ID_PATTERN,
    PARTIAL_TRAFFIC_DISCLOSURE,
    PRESERVATION,
    PRODUCTION,
    OrderDocument,
    check_choice,
    check_text,
    check_utc,
    set_utc,
)
from custody.order_enforcing import (
    ANSWERS,
    CONDITIONS,
    GROUND,
    REFUSAL_GROUNDS,
    RESTRICTIONS,
    EnforcingReview,
)


class OrderState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    SERVED = "served"
    ACKNOWLEDGED = "acknowledged"
    OBJECTED = "objected"
    CLARIFICATION_REQUESTED = "clarification_requested"
    PRESERVED = "preserved"
    PRODUCED_PARTIAL = "produced_partial"
    PRODUCED = "produced"
    NO_DATA = "no_data"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    # A preservation order whose hold ended. Production orders no longer expire: a late one
    # is overdue and stays open; those that expired before keep their state and events.
    EXPIRED = "expired"


# Who takes each action: the authority, a validator (a judge, court or prosecutor validating
# an EU order, Art 4), an approver (never one who wrote the order: it approves the order or
# sends it back to draft with its reason), the addressee provider, or the system's sweep.
# ``ACTIONS`` lists them in this order.
ACTOR_OF_ACTION: Mapping[str, str] = {
    "submit": "authority",
    "validate": "validator",
    "approve": "approver",
    "send_back": "approver",
    "withdraw": "authority",
    "resend": "authority",
    "adapt": "approver",
    "extend": "authority",
    "confirm_production_request": "authority",
    "answer_objection": "authority",
    "answer_clarification": "authority",
    "seek_enforcement": "authority",
    "close": "authority",
    "record_enforcing_answer": "authority",
    "restrict_data": "authority",
    "record_user_information": "authority",
    "acknowledge": "provider",
    "object": "provider",
    "request_clarification": "provider",
    "confirm_preservation": "provider",
    "no_data": "provider",
    "respond": "provider",
    "complete": "provider",
    "expire": "system",
}
ACTIONS = tuple(ACTOR_OF_ACTION)
# The roles that act as each party. An approver is an authority too (it may draft), which is
# why approval also checks that the approver neither drafted nor revised the order.
PARTY_ROLES: Mapping[str, tuple[str, ...]] = {
    "authority": ("authority", "approver"),
    "validator": ("validator",),
    "approver": ("approver",),
    "provider": ("provider",),
    "system": ("system",),
}
EVENT_OF_ACTION: Mapping[str, str] = {
    "submit": "order.submitted",
    "validate": "order.validated",
    "approve": "order.served",
    "send_back": "order.sent_back",
    "withdraw": "order.withdrawn",
    "resend": "order.resent",
    "adapt": "order.adapted",
    "extend": "order.extended",
    "confirm_production_request": "order.production_request_confirmed",
    "answer_objection": "order.objection_answered",
    "answer_clarification": "order.clarification_answered",
    "seek_enforcement": "order.enforcement_sought",
    "close": "order.closed",
    "record_enforcing_answer": "order.enforcing_answered",
    "restrict_data": "order.data_restricted",
    "record_user_information": "order.user_informed",
    "acknowledge": "order.acknowledged",
    "object": "order.objected",
    "request_clarification": "order.clarification_requested",
    "confirm_preservation": "order.preserved",
    "no_data": "order.no_data",
    "respond": "order.responded",
    "complete": "order.produced",
    "expire": "order.expired",
}
DRAFTED_EVENT = "order.drafted"
REVISED_EVENT = "order.revised"
READ_EVENT = "order.read"
RECEIVED_EVENT = "order.received"
# The enforcing authority's receipt of the notice sent to it (Regulation (EU) 2023/1543 Art 8).
ENFORCING_RECEIVED_EVENT = "order.enforcing_received"
# How the provider's receipt came about: a notice its endpoint accepted (2xx), its first read
# of the order, or its first act on it.
RECEIVED_VIA = ("notice", "read", "act")

_S = OrderState
_W = _S.WITHDRAWN
# An answered objection or clarification request returns the order to where it stood (an
# order stored before that was kept leads on from acknowledged, as it did then); an
# extension or an Annex V confirmation leaves the state as it is.
RESUME = "resume"
SAME = "same"
# The whole lifecycle: for each state, each action it allows and the state that follows.
# Withdrawal ends any open state; closed, withdrawn and expired end everything. Some actions
# are further bound to the kind of order (``NOT_FOR_KIND``), and some to the clock or the
# instrument (``_condition``). docs/orders.md states the same rules for people.
# The enforcing State's review (Arts 10(3)-(4), 12) runs beside the order's own state, and its
# answer, and the deletion it may call for, are recorded even after the order ended; so is
# informing the person whose data were sought (Art 13), which may wait until then.
_ENFORCING_REVIEW: Mapping[str, OrderState | str] = {
    "record_enforcing_answer": SAME,
    "restrict_data": SAME,
    "record_user_information": SAME,
}
_ON_SERVED_ORDER: Mapping[str, OrderState | str] = {
    "withdraw": _W,
    "adapt": _S.SERVED,
    "extend": SAME,
    "confirm_production_request": SAME,
    "expire": _S.EXPIRED,
    **_ENFORCING_REVIEW,
}
TRANSITIONS: Mapping[OrderState, Mapping[str, OrderState | str]] = {
    _S.DRAFT: {"submit": _S.PENDING_APPROVAL, "withdraw": _W},
    _S.PENDING_APPROVAL: {
        "validate": SAME,
        "approve": _S.SERVED,
        "send_back": _S.DRAFT,
        "withdraw": _W,
    },
    _S.SERVED: {
        **_ON_SERVED_ORDER,
        "resend": _S.SERVED,
        "seek_enforcement": _S.SERVED,
        "close": _S.CLOSED,
        "acknowledge": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "confirm_preservation": _S.PRESERVED,
        "no_data": _S.NO_DATA,
    },
    _S.ACKNOWLEDGED: {
        **_ON_SERVED_ORDER,
        "seek_enforcement": _S.ACKNOWLEDGED,
        "close": _S.CLOSED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "confirm_preservation": _S.PRESERVED,
        "no_data": _S.NO_DATA,
        "respond": _S.PRODUCED_PARTIAL,
    },
    _S.OBJECTED: {
        **_ON_SERVED_ORDER,
        "answer_objection": RESUME,
        "seek_enforcement": _S.OBJECTED,
        "close": _S.CLOSED,
    },
    _S.CLARIFICATION_REQUESTED: {**_ON_SERVED_ORDER, "answer_clarification": RESUME},
    _S.PRESERVED: {**_ON_SERVED_ORDER, "object": _S.OBJECTED, "close": _S.CLOSED},
    _S.PRODUCED_PARTIAL: {
        "withdraw": _W,
        "adapt": _S.SERVED,
        "seek_enforcement": _S.PRODUCED_PARTIAL,
        "close": _S.CLOSED,
        **_ENFORCING_REVIEW,
        "object": _S.OBJECTED,
        "respond": _S.PRODUCED_PARTIAL,
        "complete": _S.PRODUCED,
    },
    _S.PRODUCED: {"withdraw": _W, "close": _S.CLOSED, **_ENFORCING_REVIEW},
    _S.NO_DATA: {"withdraw": _W, "close": _S.CLOSED, **_ENFORCING_REVIEW},
    _S.CLOSED: dict(_ENFORCING_REVIEW),
    _S.WITHDRAWN: dict(_ENFORCING_REVIEW),
    _S.EXPIRED: {},
}
# The states that end an order: nothing changes it any more but the enforcing State's review.
ENDED = frozenset({_S.CLOSED, _S.WITHDRAWN, _S.EXPIRED})
_DISCLOSURE_ONLY = {
    "confirm_preservation": "only a preservation order is preserved",
    "extend": "only a preservation order's hold is extended",
    "confirm_production_request": "only a preservation order awaits a production request",
    "expire": "an order to produce does not expire: a late one is overdue and stays open",
}
# Actions the table allows but the kind of order does not, and why.
NOT_FOR_KIND: Mapping[str, Mapping[str, str]] = {
    PRODUCTION: _DISCLOSURE_ONLY,
    PARTIAL_TRAFFIC_DISCLOSURE: _DISCLOSURE_ONLY,
    PRESERVATION: {
        "respond": "preservation is not disclosure",
        "complete": "preservation is not disclosure",
        "seek_enforcement": "a preservation order has a hold, not a deadline to answer by",
        "record_enforcing_answer": "no enforcing State reviews a preservation order",
        "restrict_data": "no enforcing State reviews a preservation order",
        "record_user_information": "the user is informed of an order to produce (Art 13)",
    },
}
# States in which the provider of an order to produce still owes its answer; an Annex III
# notice does not stop the clock (the authority reviews it and may set a new deadline).
AWAITING_ANSWER = frozenset({_S.SERVED, _S.ACKNOWLEDGED, _S.OBJECTED, _S.PRODUCED_PARTIAL})
# States in which a preservation order's hold is running.
HOLDING = frozenset(s for s, table in TRANSITIONS.items() if "expire" in table)
# The provider's acts that count as its receipt of the order when nothing came first.
_RECEIPT_BY_ACT = frozenset(a for a, party in ACTOR_OF_ACTION.items() if party == "provider")


@dataclass(frozen=True)
class ServiceTerms:
    """What serving an order fixes besides its document: where the provider is established,
    how periods in days are counted for the order's instrument, and the languages the
    provider accepts orders in (Regulation (EU) 2023/1543 Art 9)."""

    place: Place = field(default_factory=Place)
    rule: PeriodRule = PeriodRule.REGULATION_1182_71
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Order:
    """An order's document and where its lifecycle stands. ``clock`` is set at service.

    ``revision`` counts the signed versions served (an adapted order is served anew);
    ``resume_state`` is where an objection or clarification request left the order;
    ``extensions`` counts the hold's extensions; ``responses`` the provider's responses;
    ``enforcing`` is the enforcing State's review of a notified EU order (Art 8);
    ``validated_by`` the validator who validated it (Art 4); ``user_informed_at`` when the
    authority recorded that the user was informed (Art 13).
    """

    id: str
    document: OrderDocument
    state: OrderState
    drafted_by: str
    drafted_at: datetime
    revised_by: tuple[str, ...] = ()
    approved_by: str | None = None
    clock: OrderClock | None = None
    first_read_at: datetime | None = None
    revision: int = 1
    resume_state: OrderState | None = None
    extensions: int = 0
    enforcement_sought_at: datetime | None = None
    responses: int = 0
    enforcing: EnforcingReview | None = None
    validated_by: str | None = None
    user_informed_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", OrderState(self.state))
        if self.resume_state is not None:
            object.__setattr__(self, "resume_state", OrderState(self.resume_state))
        object.__setattr__(self, "revised_by", tuple(self.revised_by))
        set_utc(self, "drafted_at", "drafted_at")
        set_utc(self, "first_read_at", "first_read_at")
        set_utc(self, "enforcement_sought_at", "enforcement_sought_at")
        set_utc(self, "user_informed_at", "user_informed_at")

    @property
    def authors(self) -> tuple[str, ...]:
        """Everyone who wrote the document: none of them may approve it."""
        return (self.drafted_by, *self.revised_by)

    @property
    def served_at(self) -> datetime | None:
        return self.clock.served_at if self.clock else None

    @property
    def received_at(self) -> datetime | None:
        return self.clock.received_at if self.clock else None


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(8)


def is_order_id(value: str) -> bool:
    return bool(ORDER_ID_PATTERN.match(value))


def is_eu(document: OrderDocument) -> bool:
    return document.legal_basis.instrument.startswith("eu_")


def service_period(document: OrderDocument) -> Period:
    """How long an order runs from receipt: its hold, or its time to produce (Art 10(2)-(4))."""
    if document.preservation_days is not None:
        return Period(days=document.preservation_days)
    if document.emergency.flag:
        return Period(hours=EMERGENCY_HOURS)
    return Period(days=PRODUCTION_DAYS)


def period_rule(document: OrderDocument, configured: PeriodRule) -> PeriodRule:
    """Regulation 1182/71 for an EU order; the configured rule of the issuing State's law
    for any other."""
    return PeriodRule.REGULATION_1182_71 if is_eu(document) else configured


Transition = tuple[Order, str, dict[str, Any]]


def draft_order(
    document: OrderDocument, by: Actor, at: datetime, order_id: str | None = None
) -> Transition:
    """A new draft by an authority: (order, ``order.drafted``, event details)."""
    _require_party("authority", "draft an order", by)
    order = Order(
        id=order_id or new_order_id(),
        document=document,
        state=OrderState.DRAFT,
        drafted_by=by.id,
        drafted_at=check_utc(at, "at"),
    )
    return order, DRAFTED_EVENT, {}


def revise_draft(order: Order, document: OrderDocument, by: Actor) -> Transition:
    """The draft with a new document; a reviser joins the authors who may not approve it."""
    _require_party("authority", "revise an order", by)
    if order.state is not OrderState.DRAFT:
        raise Conflict(
            f"only a draft is revised (a served order is adapted); this order is {order.state}",
            allowed_actions(order, by=by),
        )
    revised_by = order.revised_by if by.id in order.authors else (*order.revised_by, by.id)
    return replace(order, document=document, revised_by=revised_by), REVISED_EVENT, {}


def record_first_read(
    order: Order, by: Actor, at: datetime, *, provider_id: str | None
) -> Order | None:
    """The order with its provider's first read recorded, or None if it was read before.

    A first read is the provider's receipt when no notice was delivered before: it starts
    the clock.
    """
    _require_provider("read the order", order, by, provider_id)
    if order.clock is None:
        raise Conflict(f"the order is {order.state}, not served", allowed_actions(order, by=by))
    if order.first_read_at is not None:
        return None
    at = check_utc(at, "at")
    return replace(order, first_read_at=at, clock=order.clock.receive(at, "read"))


def record_receipt(order: Order, at: datetime, via: str) -> Order | None:
    """The order with the provider's receipt recorded at ``at``, or None if it was received
    before (or is not open any more)."""
    check_choice(via, RECEIVED_VIA, "via")
    if order.clock is None or order.clock.received or order.state in ENDED:
        return None
    return replace(order, clock=order.clock.receive(check_utc(at, "at"), via))


def record_enforcing_receipt(order: Order, at: datetime) -> Order | None:
    """The order with the enforcing authority's receipt of its notice recorded at ``at``
    (its notice was delivered), or None if it was received before or none was sent."""
    review = order.enforcing
    if review is None or review.received_at is not None:
        return None
    return replace(order, enforcing=review.received(check_utc(at, "at")))


def withheld(order: Order, now: datetime) -> bool:
    """Whether the provider's responses are kept from the issuing authority at ``now``
    while the enforcing State reviews the order (Regulation (EU) 2023/1543 Art 10(3))."""
    return order.enforcing is not None and order.enforcing.withholds(check_utc(now, "now"))


def check_released(order: Order | None, now: datetime) -> None:
    """Refuse (Conflict) to hand out the bytes of a response to ``order`` while they are
    withheld (``withheld``); an item that answers no order (None) passes."""
    if order is not None and withheld(order, now):
        raise Conflict(
            f"the responses to order {order.id} are withheld while the enforcing State "
            "reviews the order (Regulation (EU) 2023/1543, Art 10(3))"
        )


def allowed_actions(
    order: Order,
    now: datetime | None = None,
    *,
    by: Actor | None = None,
) -> list[str]:
    """What the order's state, kind and instrument allow, in ``ACTIONS`` order.

    With ``now``, actions bound to the clock are listed only when the clock allows them
    (``expire`` and ``seek_enforcement`` once the deadline passed, ...). With ``by``, only
    the actions the caller's role may take (and for an approver who wrote the order, not
    ``approve``).
    """
    table = TRANSITIONS[order.state]
    barred = NOT_FOR_KIND[order.document.kind]
    return [
        action
        for action in ACTIONS
        if action in table
        and action not in barred
        and _condition(order, action, now) is None
        and (by is None or _may_act(order, action, by))
    ]


# The acts that review what others wrote: none of its authors may take them (four eyes).
REVIEWING = ("validate", "approve", "send_back")


def _may_act(order: Order, action: str, by: Actor) -> bool:
    if by.role not in PARTY_ROLES[ACTOR_OF_ACTION[action]]:
        return False
    return not (action in REVIEWING and by.id in order.authors)


def _condition(order: Order, action: str, now: datetime | None) -> str | None:
    """Why the clock or the instrument bars ``action`` now, or None if nothing does."""
    clock = order.clock
    eu = is_eu(order.document)
    if action == "validate":
        if not order.document.needs_validation():
            return "the issuing authority may issue the order alone (Art 4)"
        return None if order.validated_by is None else "the order is validated"
    if action == "approve" and order.document.needs_validation() and order.validated_by is None:
        return "the order awaits its validation (Art 4)"
    if action == "adapt" and order.document.needs_validation():
        return (
            "an order validated under Art 4 is not adapted, as its revision would go "
            "unvalidated: withdraw it and issue a new order"
        )
    review = order.enforcing
    if action == "record_enforcing_answer":
        if review is None:
            return "the order was not sent to an enforcing authority (Art 8)"
        return None if review.answer is None else "the enforcing authority's answer is recorded"
    if action == "record_user_information":
        if clock is None:
            return "the order was never served"
        return None if order.user_informed_at is None else "the user was informed"
    if action == "restrict_data":
        if review is None or not review.restriction_owed:
            return "no ground raised in time calls for it (Art 10(4))"
        return None if review.restricted is None else "the data were deleted or restricted"
    if action == "resend":
        return None if clock and not clock.received else "the provider has received the order"
    if action in ("extend", "confirm_production_request"):
        if clock and clock.open_ended:
            return "the hold lasts until the confirmed production request is answered"
        if action == "confirm_production_request" and not eu:
            return "only an EU preservation order is confirmed by Annex V (Art 11(2))"
        if action == "extend" and eu and order.extensions >= 1:
            return "an EU preservation order is extended once only (Art 11(1))"
        if now is not None and clock is not None and clock.passed(now):
            return "the hold has ended"
        return None
    if now is None or clock is None:
        return None
    if action == "expire":
        if clock.passed(now):
            return None
        due = clock.due
        return "the hold has no end yet" if due is None else f"the hold ends {format_time(due)}"
    if action == "seek_enforcement":
        return None if overdue(order, now) else "the order is not overdue"
    if action == "close" and order.state in AWAITING_ANSWER - {_S.OBJECTED}:
        return None if overdue(order, now) else "the provider still owes its answer"
    return None


def apply(
    order: Order,
    action: str,
    by: Actor,
    at: datetime,
    data: Mapping[str, Any] | None = None,
    *,
    provider_id: str | None = None,
    terms: ServiceTerms | None = None,
) -> Transition:
    """Apply ``action`` by ``by`` at ``at``: (next order, event type, event details).

    Checks, in order: the party (Forbidden: wrong role, another provider, or an approver or
    validator who wrote the order), the state (Conflict, with the actions the caller may take) and
    ``data`` (BadRequest). ``provider_id`` is the acting provider principal's provider;
    ``terms`` are fixed at approval (the provider's place, the rule for periods, its
    languages; an adapted revision is checked against its languages too). The details
    hold no free text (objection details, questions, answers are checked here, stored by the
    caller and committed to); the event's data is ``{**order_event_data(next, c), **details}``.
    """
    at = check_may(order, action, by, at, provider_id=provider_id)
    target = TRANSITIONS[order.state][action]
    if target == SAME:
        target = order.state
    elif target == RESUME:
        target = order.resume_state or OrderState.ACKNOWLEDGED
    following = replace(order, state=OrderState(target))
    if ACTOR_OF_ACTION[action] == "provider" and following.clock is not None:
        following = replace(following, clock=following.clock.receive(at, "act"))
    new, details = _effect(following, order, action, by, at, data or {}, terms)
    return new, EVENT_OF_ACTION[action], details


def check_may(
    order: Order, action: str, by: Actor, at: datetime, *, provider_id: str | None = None
) -> datetime:
    """Whether ``by`` may take ``action`` on the order at ``at`` (``apply``'s checks of party
    and state, without its effect); returns ``at`` in UTC."""
    if action not in ACTIONS:
        raise BadRequest(f"unknown order action {action!r}; actions are {', '.join(ACTIONS)}")
    at = check_utc(at, "at")
    party = ACTOR_OF_ACTION[action]
    if party == "provider":
        _require_provider(action, order, by, provider_id)
    else:
        _require_party(party, action, by)
    if action in REVIEWING and by.id in order.authors:
        raise Forbidden(f"{action}: the {party} drafted or revised this order (four-eyes rule)")
    allowed = allowed_actions(order, at)
    if action not in allowed:
        raise Conflict(
            f"{action} is not allowed: {_refusal(order, action, at)}",
            allowed_actions(order, at, by=by),
        )
    return at


def _refusal(order: Order, action: str, at: datetime) -> str:
    kind = order.document.kind
    if action in NOT_FOR_KIND[kind]:
        return NOT_FOR_KIND[kind][action]
    if action in TRANSITIONS[order.state]:
        return _condition(order, action, at) or f"the order is {order.state}"
    return f"the order is {order.state}"


def issue_faults(document: OrderDocument, terms: ServiceTerms) -> list[str]:
    """What bars issuing ``document`` on the terms of its service, every rule at once, each
    naming its article (Regulation (EU) 2023/1543 Arts 5(4), 8, 9, 13(2)): approval refuses
    it, and a draft's preview warns of it before it is submitted."""
    faults = Faults()
    faults.check(document.check_threshold)
    faults.check(document.check_confidentiality)
    faults.check(document.check_enforcing_state, terms.place.country)
    faults.check(document.check_languages, terms.languages, terms.place.country)
    return [f"{field} {reason}" if field else reason for field, reason in faults.found]


def _effect(
    order: Order,
    before: Order,
    action: str,
    by: Actor,
    at: datetime,
    data: Mapping[str, Any],
    terms: ServiceTerms | None,
) -> tuple[Order, dict[str, Any]]:
    """The order after ``action`` beyond its state, and the event details it records."""
    kind = order.document.kind
    if action == "approve":
        terms = terms or ServiceTerms()
        faults = issue_faults(order.document, terms)
        if faults:
            raise BadRequest("; ".join(faults))
        clock = OrderClock(
            served_at=at,
            period=service_period(order.document),
            place=terms.place,
            rule=period_rule(order.document, terms.rule),
        )
        served = replace(order, approved_by=by.id, clock=clock, enforcing=_review(order.document))
        return served, _clock_details(clock)
    if action == "adapt":
        return _adapted(order, before, by, at, data.get("document"), terms)
    if action == "validate":
        return replace(order, validated_by=by.id), {}
    if action == "extend":
        return _extended(order, data)
    if action == "confirm_production_request":
        production = data.get("production_order")
        if production is not None and not (isinstance(production, str) and is_order_id(production)):
            raise BadRequest("production_order is the id of the production order that follows")
        confirmed = replace(order, clock=replace(_clock(order), open_ended=True))
        return confirmed, {} if production is None else {"production_order": production}
    if action == "object":
        ground = data.get("ground")
        check_choice(ground, OBJECTION_GROUNDS, "ground")
        if ground in GROUNDS_NEEDING_DETAILS or data.get("details") is not None:
            check_text(data.get("details"), "details")
        objected = replace(order, resume_state=before.state)
        return objected, {"ground": ground, **_receipt_details(objected, before)}
    if action == "request_clarification":
        check_text(data.get("question"), "question")
        clock = _clock(order)
        if kind != PRESERVATION:  # Art 10(6); nothing pauses a hold
            clock = clock.suspended(at)
        asked = replace(order, resume_state=before.state, clock=clock)
        return asked, _receipt_details(asked, before)
    if action == "answer_objection":
        check_text(data.get("answer"), "answer")
        answered = replace(order, resume_state=None, clock=_clock(order).resumed(at))
        if data.get("due") is not None:
            if kind == PRESERVATION:
                raise BadRequest("due: a preservation order's hold is extended, not set")
            due = check_utc(data["due"], "due")
            if due <= at:
                raise BadRequest("due: a new deadline lies in the future")
            answered = replace(answered, clock=replace(_clock(answered), fixed_due=due))
        return answered, _clock_details(answered.clock)
    if action == "answer_clarification":
        check_text(data.get("answer"), "answer")
        resumed = replace(order, resume_state=None, clock=_clock(order).resumed(at))
        return resumed, _clock_details(resumed.clock)
    if action == "seek_enforcement":
        if data.get("reason") is not None:
            check_text(data.get("reason"), "reason")
        return replace(order, enforcement_sought_at=at), {}
    if action == "record_enforcing_answer":
        return _enforcing_answer(order, at, data)
    if action == "record_user_information":
        informed = data.get("informed")
        if not isinstance(informed, bool):
            raise BadRequest("informed is true or false: whether the user was informed")
        check_text(data.get("details"), "details")
        return replace(order, user_informed_at=at if informed else None), {"informed": informed}
    if action == "restrict_data":
        measure = data.get("measure")
        check_choice(measure, RESTRICTIONS, "measure")
        if data.get("details") is not None:
            check_text(data.get("details"), "details")
        review = replace(_enforcing(order), restricted=measure)
        return replace(order, enforcing=review), {"measure": measure}
    if action == "send_back":
        # The drafter is told what to change: the reason is required.
        check_text(data.get("reason"), "reason")
        return replace(order, validated_by=None), {}
    if action in ("withdraw", "close") and data.get("reason") is not None:
        check_text(data.get("reason"), "reason")
        return order, {}
    if action == "respond":
        evidence = data.get("evidence")
        if not isinstance(evidence, str) or not is_evidence_id(evidence):
            raise BadRequest("evidence is the id of the evidence item holding the response")
        responded = replace(order, responses=order.responses + 1)
        return responded, {"evidence": evidence, **_receipt_details(order, before)}
    if action in _RECEIPT_BY_ACT:
        return order, _receipt_details(order, before)
    return order, {}


def _adapted(
    order: Order,
    before: Order,
    by: Actor,
    at: datetime,
    document: object,
    terms: ServiceTerms | None,
) -> tuple[Order, dict[str, Any]]:
    """A new signed revision of a served order that supersedes the old one: an order to
    produce is served anew (its deadline runs from receipt of the revision); a preservation
    order's hold continues as it ran."""
    if not isinstance(document, OrderDocument):
        raise BadRequest("adapt carries the order's new document")
    old = before.document
    for name in ("kind", "provider", "case"):
        if getattr(document, name) != getattr(old, name):
            raise BadRequest(f"{name}: an adapted order keeps its {name}; issue a new order")
    if document.legal_basis.instrument != old.legal_basis.instrument:
        raise BadRequest("legal_basis.instrument: an adapted order keeps its instrument")
    if document.needs_validation():
        raise BadRequest(
            "issuing_authority: the adapted order would need validation (Art 4), which an "
            "adaptation does not have; issue a new order"
        )
    revision = before.revision + 1
    clock = _clock(before)
    document.check_threshold()
    document.check_confidentiality()
    document.check_enforcing_state(clock.place.country)
    document.check_languages(terms.languages if terms else (), clock.place.country)
    if document.kind == PRESERVATION:
        if document.preservation_days != old.preservation_days:
            raise BadRequest("preservation_days: a hold is extended, not adapted")
        adapted = replace(before, document=document, revision=revision, approved_by=by.id)
        return adapted, {"revision": revision}
    fresh = OrderClock(
        served_at=at, period=service_period(document), place=clock.place, rule=clock.rule
    )
    adapted = replace(
        order,
        document=document,
        revision=revision,
        approved_by=by.id,
        clock=fresh,
        resume_state=None,
        first_read_at=None,
        # The enforcing State's review continues; a revision that first calls for one starts it.
        enforcing=before.enforcing or _review(document),
    )
    return adapted, {"revision": revision}


def _extended(order: Order, data: Mapping[str, Any]) -> tuple[Order, dict[str, Any]]:
    if is_eu(order.document):
        days = data.get("days", EU_EXTENSION_DAYS)
        if days != EU_EXTENSION_DAYS or type(days) is not int:
            raise BadRequest(
                f"days: an EU preservation order is extended by {EU_EXTENSION_DAYS} days "
                "(Regulation (EU) 2023/1543 Art 11(1))"
            )
    else:
        days = data.get("days", order.document.preservation_days)
        if type(days) is not int or not 1 <= days <= MAX_PRESERVATION_DAYS:
            raise BadRequest(f"days is from 1 to {MAX_PRESERVATION_DAYS}, not {days!r}")
    extended = replace(order, clock=_clock(order).extended(days), extensions=order.extensions + 1)
    return extended, {"days": days, **_clock_details(extended.clock)}


def _review(document: OrderDocument) -> EnforcingReview | None:
    """The enforcing State's review an issued document calls for (Art 8), or None."""
    enforcing = document.enforcing_authority
    if enforcing is None or not document.notifies_enforcing_state():
        return None
    try:
        place = Place(enforcing.time_zone, enforcing.state)
    except ValueError as exc:
        raise BadRequest(f"enforcing_authority.state: {exc}") from None
    return EnforcingReview(place=place, emergency=document.emergency.flag)


def _enforcing_answer(
    order: Order, at: datetime, data: Mapping[str, Any]
) -> tuple[Order, dict[str, Any]]:
    """The enforcing authority's answer as the issuing authority records it (Arts 10(3)-(4),
    12): no ground, a ground for refusal (which one), or conditions; when it was given; the
    text of its answer (``details``) and, where it was ingested, the evidence item holding
    its document."""
    answer = data.get("answer")
    check_choice(answer, ANSWERS, "answer")
    assert isinstance(answer, str)  # for the type checker: check_choice refused anything else
    details: dict[str, Any] = {"answer": answer}
    ground = data.get("ground")
    if answer == GROUND:
        check_choice(ground, REFUSAL_GROUNDS, "ground")
        details["ground"] = ground
    elif ground is not None:
        raise BadRequest("ground is given with the answer ground only")
    if answer in (GROUND, CONDITIONS) or data.get("details") is not None:
        check_text(data.get("details"), "details")
    given = at if data.get("given_at") is None else check_utc(data["given_at"], "given_at")
    if given > at:
        raise BadRequest("given_at lies in the future: an answer is recorded once given")
    evidence = data.get("evidence")
    if evidence is not None:
        if not isinstance(evidence, str) or not is_evidence_id(evidence):
            raise BadRequest("evidence is the id of the evidence item holding the answer")
        details["evidence"] = evidence
    review = _enforcing(order).answered(answer, given, data_received=order.responses > 0)
    details.update(given_at=format_time(given), in_time=review.in_time)
    if review.restriction_owed:
        details["restriction_owed"] = True
    return replace(order, enforcing=review), details


def _receipt_details(order: Order, before: Order) -> dict[str, Any]:
    """The receipt an act of the provider's records, when it is the first sign of one."""
    if before.clock is None or before.clock.received or order.clock is None:
        return {}
    return {"received_via": "act", **_clock_details(order.clock)}


def _clock_details(clock: OrderClock | None) -> dict[str, Any]:
    due = clock.due if clock else None
    return {} if due is None else {"due": format_time(due)}


def _require_party(party: str, what: str, by: Actor) -> None:
    if by.role not in PARTY_ROLES[party]:
        roles = " or ".join(PARTY_ROLES[party])
        raise Forbidden(f"the {by.role} role may not {what}; {roles} may")


def _require_provider(what: str, order: Order, by: Actor, provider_id: str | None) -> None:
    _require_party("provider", what, by)
    if provider_id != order.document.provider:
        raise Forbidden(f"{what}: the order is addressed to another provider")


def _clock(order: Order) -> OrderClock:
    if order.clock is None:
        raise IntegrityError(f"order {order.id} is {order.state} but has no service clock")
    return order.clock


def _enforcing(order: Order) -> EnforcingReview:
    if order.enforcing is None:
        raise IntegrityError(f"order {order.id} has no enforcing State's review")
    return order.enforcing


def _due(order: Order) -> datetime:
    due = _clock(order).due
    if due is None:
        raise IntegrityError(f"order {order.id} is {order.state} with no deadline running")
    return due


def deadline(order: Order) -> datetime | None:
    """When an order to produce falls due or a preservation order's hold ends.

    None before service, before the provider's receipt, while a clarification request
    suspends it, and for a hold kept until a confirmed production request is answered.
    """
    return order.clock.due if order.clock else None


def overdue(order: Order, now: datetime) -> bool:
    """Whether the provider of an order to produce still owes its answer after the deadline."""
    return (
        order.document.kind != PRESERVATION
        and order.state in AWAITING_ANSWER
        and _passed(order, now)
    )


def expired(order: Order, now: datetime) -> bool:
    """Whether a preservation order's hold has ended, so that the sweep applies ``expire``."""
    return order.document.kind == PRESERVATION and order.state in HOLDING and _passed(order, now)


def _passed(order: Order, now: datetime) -> bool:
    return order.clock is not None and order.clock.passed(check_utc(now, "now"))


def order_document_text(order: Order) -> str:
    """The ``custos/order/v1`` note text: the type line, then the order as RFC 8785 JSON.

    It names the drafter, revisers, approver and service time, and nothing that changes
    after service, so the text signed at service is the text rendered at any later time.
    """
    return json_note_text(ORDER_TYPE, issued_order(order))


def issued_order(order: Order) -> dict[str, Any]:
    """The body of the order's ``custos/order/v1`` note, as JSON."""
    issued = {
        "id": order.id,
        "drafted_by": order.drafted_by,
        "revised_by": list(order.revised_by),
        "approved_by": order.approved_by,
        "served_at": format_time(order.served_at) if order.served_at else None,
        **order.document.as_json(),
    }
    if order.revision > 1:
        issued["revision"] = order.revision
    if order.validated_by is not None:
        issued["validated_by"] = order.validated_by
    return issued


def order_event_data(order: Order, commitment_hex: str) -> dict[str, str]:
    """What every order event records: the order, its new state and the salted commitment
    (``custody.evidence.commitment``) to its document text. Never the targets."""
    if not HEX32.match(commitment_hex):
        raise BadRequest("a document commitment is a lowercase hex SHA-256")
    return {"order": order.id, "state": order.state.value, "document_commitment": commitment_hex}
