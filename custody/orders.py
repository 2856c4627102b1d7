"""Production and preservation orders: the document an authority issues, and its lifecycle.

The document is in ``custody.order_document``; it is issued as a ``custos/order/v1`` signed
note naming who drafted and who approved it. An order's lifecycle is one transition table:
``apply`` checks who acts, what the state allows and what the act carries, and returns the
next order and the event to record.
Events carry the order id, the new state and a salted commitment to the document, never the
targets or other personal data. Nothing here stores, signs or reads a clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from custody.errors import BadRequest, Conflict, Forbidden, IntegrityError
from custody.events import Actor, format_time
from custody.evidence import is_evidence_id
from custody.note_types import ORDER_TYPE, json_note_text
from custody.order_deadlines import (
    MAX_PRESERVATION_DAYS,
    OrderClock,
    service_period,
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
    EXPIRED = "expired"


# Who takes each action: the authority, an approver (never one who wrote the order), the
# addressee provider, or the system's sweep. ``ACTIONS`` lists them in this order.
ACTOR_OF_ACTION: Mapping[str, str] = {
    "submit": "authority",
    "approve": "approver",
    "withdraw": "authority",
    "extend": "authority",
    "answer_objection": "authority",
    "answer_clarification": "authority",
    "close": "authority",
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
    "approver": ("approver",),
    "provider": ("provider",),
    "system": ("system",),
}
EVENT_OF_ACTION: Mapping[str, str] = {
    "submit": "order.submitted",
    "approve": "order.served",
    "withdraw": "order.withdrawn",
    "extend": "order.extended",
    "answer_objection": "order.objection_answered",
    "answer_clarification": "order.clarification_answered",
    "close": "order.closed",
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

_S = OrderState
_W = _S.WITHDRAWN
# The whole lifecycle: for each state, each action it allows and the state that follows.
# An objection or a clarification request counts as receipt, so its answer leads on from
# acknowledged. Withdrawal ends any open state; closed, withdrawn and expired end everything.
TRANSITIONS: Mapping[OrderState, Mapping[str, OrderState]] = {
    _S.DRAFT: {"submit": _S.PENDING_APPROVAL, "withdraw": _W},
    _S.PENDING_APPROVAL: {"approve": _S.SERVED, "withdraw": _W},
    _S.SERVED: {
        "withdraw": _W,
        "extend": _S.SERVED,
        "acknowledge": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "expire": _S.EXPIRED,
    },
    _S.ACKNOWLEDGED: {
        "withdraw": _W,
        "extend": _S.ACKNOWLEDGED,
        "object": _S.OBJECTED,
        "request_clarification": _S.CLARIFICATION_REQUESTED,
        "confirm_preservation": _S.PRESERVED,
        "no_data": _S.NO_DATA,
        "respond": _S.PRODUCED_PARTIAL,
        "expire": _S.EXPIRED,
    },
    _S.OBJECTED: {"withdraw": _W, "extend": _S.OBJECTED, "answer_objection": _S.ACKNOWLEDGED},
    _S.CLARIFICATION_REQUESTED: {
        "withdraw": _W,
        "extend": _S.CLARIFICATION_REQUESTED,
        "answer_clarification": _S.ACKNOWLEDGED,
    },
    _S.PRESERVED: {
        "withdraw": _W,
        "extend": _S.PRESERVED,
        "close": _S.CLOSED,
        "expire": _S.EXPIRED,
    },
    _S.PRODUCED_PARTIAL: {
        "withdraw": _W,
        "respond": _S.PRODUCED_PARTIAL,
        "complete": _S.PRODUCED,
        "expire": _S.EXPIRED,
    },
    _S.PRODUCED: {"withdraw": _W, "close": _S.CLOSED},
    _S.NO_DATA: {"withdraw": _W, "close": _S.CLOSED},
    _S.CLOSED: {},
    _S.WITHDRAWN: {},
    _S.EXPIRED: {},
}
_DISCLOSURE_ONLY = {
    "confirm_preservation": "only a preservation order is preserved",
    "extend": "only a preservation order's hold is extended",
}
# Actions the table allows but the kind of order does not, and why.
NOT_FOR_KIND: Mapping[str, Mapping[str, str]] = {
    PRODUCTION: _DISCLOSURE_ONLY,
    PARTIAL_TRAFFIC_DISCLOSURE: _DISCLOSURE_ONLY,
    PRESERVATION: {
        "respond": "preservation is not disclosure",
        "complete": "preservation is not disclosure",
    },
}
# States in which the provider still owes its answer.
AWAITING_ANSWER = frozenset({_S.SERVED, _S.ACKNOWLEDGED, _S.PRODUCED_PARTIAL})


@dataclass(frozen=True)
class Order:
    """An order's document and where its lifecycle stands. ``clock`` is set at service."""

    id: str
    document: OrderDocument
    state: OrderState
    drafted_by: str
    drafted_at: datetime
    revised_by: tuple[str, ...] = ()
    approved_by: str | None = None
    clock: OrderClock | None = None
    first_read_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", OrderState(self.state))
        object.__setattr__(self, "revised_by", tuple(self.revised_by))
        set_utc(self, "drafted_at", "drafted_at")
        set_utc(self, "first_read_at", "first_read_at")

    @property
    def authors(self) -> tuple[str, ...]:
        """Everyone who wrote the document: none of them may approve it."""
        return (self.drafted_by, *self.revised_by)

    @property
    def served_at(self) -> datetime | None:
        return self.clock.served_at if self.clock else None


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(8)


def is_order_id(value: str) -> bool:
    return bool(ORDER_ID_PATTERN.match(value))


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
            f"only a draft is revised; this order is {order.state}", allowed_actions(order)
        )
    revised_by = order.revised_by if by.id in order.authors else (*order.revised_by, by.id)
    return replace(order, document=document, revised_by=revised_by), REVISED_EVENT, {}


def record_first_read(
    order: Order, by: Actor, at: datetime, *, provider_id: str | None
) -> Order | None:
    """The order with its provider's first read recorded, or None if it was read before.

    The read is recorded (as ``order.read``) but starts no clock: service did that.
    """
    _require_provider("read the order", order, by, provider_id)
    if order.clock is None:
        raise Conflict(f"the order is {order.state}, not served", allowed_actions(order))
    if order.first_read_at is not None:
        return None
    return replace(order, first_read_at=check_utc(at, "at"))


def allowed_actions(order: Order, now: datetime | None = None) -> list[str]:
    """What the order's state and kind allow, in ``ACTIONS`` order, whoever may act.

    With ``now``, ``expire`` is listed only once the order has lapsed.
    """
    table = TRANSITIONS[order.state]
    barred = NOT_FOR_KIND[order.document.kind]
    return [
        action
        for action in ACTIONS
        if action in table
        and action not in barred
        and (action != "expire" or now is None or _clock(order).passed(check_utc(now, "now")))
    ]


def apply(
    order: Order,
    action: str,
    by: Actor,
    at: datetime,
    data: Mapping[str, Any] | None = None,
    *,
    provider_id: str | None = None,
) -> Transition:
    """Apply ``action`` by ``by`` at ``at``: (next order, event type, event details).

    Checks, in order: the party (Forbidden: wrong role, another provider, or an approver who
    wrote the order), the state (Conflict, with the allowed actions) and ``data`` (BadRequest).
    ``provider_id`` is the acting provider principal's provider. The details hold no free
    text (objection details, questions, answers are checked here, stored by the caller and
    committed to); the event's data is ``{**order_event_data(next, commitment), **details}``.
    """
    at = check_may(order, action, by, at, provider_id=provider_id)
    following = replace(order, state=TRANSITIONS[order.state][action])
    new, details = _effect(following, action, by, at, data or {})
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
    if action == "approve" and by.id in order.authors:
        raise Forbidden("approve: the approver drafted or revised this order (four-eyes rule)")
    allowed = allowed_actions(order, at)
    if action not in allowed:
        raise Conflict(f"{action} is not allowed: {_refusal(order, action)}", allowed)
    return at


def _refusal(order: Order, action: str) -> str:
    kind = order.document.kind
    if action in NOT_FOR_KIND[kind]:
        return NOT_FOR_KIND[kind][action]
    if action in TRANSITIONS[order.state]:
        return f"the order's deadline {format_time(_due(order))} has not passed"
    return f"the order is {order.state}"


def _effect(
    order: Order, action: str, by: Actor, at: datetime, data: Mapping[str, Any]
) -> tuple[Order, dict[str, Any]]:
    """The order after ``action`` beyond its state, and the event details it records."""
    if action == "approve":
        document = order.document
        period = service_period(
            preservation_days=document.preservation_days, emergency=document.emergency.flag
        )
        served = replace(order, approved_by=by.id, clock=OrderClock(served_at=at, period=period))
        return served, {"due": format_time(_due(served))}
    if action == "extend":
        days = data.get("days", order.document.preservation_days)
        if type(days) is not int or not 1 <= days <= MAX_PRESERVATION_DAYS:
            raise BadRequest(f"days is from 1 to {MAX_PRESERVATION_DAYS}, not {days!r}")
        extended = replace(order, clock=_clock(order).extended(timedelta(days=days)))
        return extended, {"days": days, **_due_details(extended)}
    if action == "object":
        ground = data.get("ground")
        check_choice(ground, OBJECTION_GROUNDS, "ground")
        if ground in GROUNDS_NEEDING_DETAILS or data.get("details") is not None:
            check_text(data.get("details"), "details")
        return replace(order, clock=_clock(order).paused(at)), {"ground": ground}
    if action == "request_clarification":
        check_text(data.get("question"), "question")
        return replace(order, clock=_clock(order).paused(at)), {}
    if action in ("answer_objection", "answer_clarification"):
        check_text(data.get("answer"), "answer")
        resumed = replace(order, clock=_clock(order).resumed(at))
        return resumed, {"due": format_time(_due(resumed))}
    if action in ("withdraw", "close") and data.get("reason") is not None:
        check_text(data.get("reason"), "reason")
        return order, {}
    if action == "respond":
        evidence = data.get("evidence")
        if not isinstance(evidence, str) or not is_evidence_id(evidence):
            raise BadRequest("evidence is the id of the evidence item holding the response")
        return order, {"evidence": evidence}
    return order, {}


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


def _due(order: Order) -> datetime:
    due = _clock(order).due
    if due is None:
        raise IntegrityError(f"order {order.id} is {order.state} with its clock stopped")
    return due


def _due_details(order: Order) -> dict[str, str]:
    due = deadline(order)
    return {} if due is None else {"due": format_time(due)}


def deadline(order: Order) -> datetime | None:
    """When a production order falls due or a preservation order's hold ends.

    None before service, and while an objection or clarification request stops the clock.
    """
    return order.clock.due if order.clock else None


def overdue(order: Order, now: datetime) -> bool:
    """Whether the provider still owes its answer after the deadline."""
    return order.state in AWAITING_ANSWER and _passed(order, now)


def expired(order: Order, now: datetime) -> bool:
    """Whether the order has lapsed, so that the sweep applies ``expire``: a preservation
    order past its hold, or an order to disclose that the provider never answered at all by
    its deadline. A provider that acknowledged or produced in part is overdue instead, and
    stays open for the authority to chase, extend or close."""
    if "expire" not in TRANSITIONS[order.state] or not _passed(order, now):
        return False
    return order.document.kind == PRESERVATION or order.state is OrderState.SERVED


def _passed(order: Order, now: datetime) -> bool:
    return order.clock is not None and order.clock.passed(check_utc(now, "now"))


def order_document_text(order: Order) -> str:
    """The ``custos/order/v1`` note text: the type line, then the order as RFC 8785 JSON.

    It names the drafter, revisers, approver and service time, and nothing that changes
    after service, so the text signed at service is the text rendered at any later time.
    """
    issued = {
        "id": order.id,
        "drafted_by": order.drafted_by,
        "revised_by": list(order.revised_by),
        "approved_by": order.approved_by,
        "served_at": format_time(order.served_at) if order.served_at else None,
        **order.document.as_json(),
    }
    return json_note_text(ORDER_TYPE, issued)


def order_event_data(order: Order, commitment_hex: str) -> dict[str, str]:
    """What every order event records: the order, its new state and the salted commitment
    (``custody.evidence.commitment``) to its document text. Never the targets."""
    if not HEX32.match(commitment_hex):
        raise BadRequest("a document commitment is a lowercase hex SHA-256")
    return {"order": order.id, "state": order.state.value, "document_commitment": commitment_hex}
