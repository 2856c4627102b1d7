"""The authority's order API: drafting, revising, submitting, approving and following orders.

The order desk (``custody.order_desk``) decides everything: the document is validated by
``OrderDocument.from_json`` (422 naming every field at fault in ``errors``), the lifecycle by
the transition table (403 for the wrong party or a four-eyes violation, 409 with
``allowed_actions`` for what the state forbids, changing nothing). The schemas here describe
the bodies for the OpenAPI document; those of the action bodies also check their types before
the desk sees them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from flask import Response, current_app, g, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from custody.errors import BadRequest, well_formed_but_invalid
from custody.events import Actor
from custody.order_deadlines import MAX_PRESERVATION_DAYS
from custody.order_desk import AUTHORITY_ROLES, Acted, OrderDesk, StoredOrder
from custody.order_document import (
    AUTHORITY_TYPES,
    DATA_CATEGORIES,
    EMERGENCY_ADDRESSEE_TYPES,
    EMERGENCY_CATEGORIES,
    KINDS,
    LEGAL_BASES,
    LISTED_OFFENCES,
    MAX_TEXT,
    TARGET_TYPES,
)
from custody.order_enforcing import ANSWERS, REFUSAL_GROUNDS, RESTRICTIONS
from custody.orders import ACTIONS, OrderState
from custody.principals import name_list
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.log_api import ActorSchema, PrincipalNameSchema
from service.order_page import CONTENT_SECURITY_POLICY, render_order_page
from service.request_input import NO_NUL, decode_cursor, load_body, page, read_json_object

blp = Blueprint(
    "orders", __name__, url_prefix="/v1/orders", description="Orders, as their authority sees them"
)
ROLES = AUTHORITY_ROLES
STATES = [s.value for s in OrderState]
_LOCATION = {"Location": {"schema": {"type": "string"}, "required": True}}


def _desk() -> OrderDesk:
    desk: OrderDesk = current_app.extensions["custos"].orders
    return desk


# -- request bodies ------------------------------------------------------------------------------


# The order document, as the OpenAPI document describes it. ``OrderDocument.from_json`` is
# what checks a document; these schemas name its fields, their types and which are required.
class _StrictSchema(Schema):
    """Members the schema does not name are refused (additionalProperties: false)."""

    class Meta:
        unknown = RAISE


class LegalBasisSchema(_StrictSchema):
    instrument = fields.String(required=True, validate=validate.OneOf(list(LEGAL_BASES)))
    citation = fields.String(required=True, metadata={"description": "the full provision"})


class AuthoritySchema(_StrictSchema):
    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(AUTHORITY_TYPES))
    file_number = fields.String(required=True)
    contact = fields.String(required=True)
    state = fields.String(
        allow_none=True,
        metadata={"description": "ISO 3166-1 alpha-2: the State it acts for (EU orders: required)"},
    )


class EnforcingAuthoritySchema(_StrictSchema):
    """The enforcing State's authority (Regulation (EU) 2023/1543 Arts 8, 12)."""

    name = fields.String(required=True)
    state = fields.String(
        required=True, metadata={"description": "ISO 3166-1 alpha-2: the enforcing State"}
    )
    contact = fields.String(required=True)
    time_zone = fields.String(
        required=True, metadata={"description": "IANA time zone where its ten days end"}
    )
    notification_url = fields.String(
        allow_none=True,
        metadata={"description": "where Custos sends it the order (required when Art 8 does)"},
    )


class OffenceSchema(_StrictSchema):
    description = fields.String(required=True)
    provision = fields.String(required=True)
    max_penalty_years = fields.Integer(
        allow_none=True,
        metadata={"description": "the maximum custodial sentence in the issuing State, years"},
    )
    listed_category = fields.String(
        allow_none=True,
        validate=validate.OneOf(list(LISTED_OFFENCES)),
        metadata={"description": "an offence Regulation (EU) 2023/1543 Art 5(4)(b)-(c) lists"},
    )
    annex_iv_category = fields.String(
        allow_none=True, metadata={"description": "its category in Annex IV (Art 12(1)(d))"}
    )


class TargetSchema(_StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(TARGET_TYPES))
    value = fields.String(required=True)
    port = fields.Integer(allow_none=True, metadata={"description": "ip targets: source port"})
    time = fields.DateTime(allow_none=True, metadata={"description": "ip targets: time of use"})


class TimeRangeSchema(_StrictSchema):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)


class EmergencySchema(_StrictSchema):
    flag = fields.Boolean(required=True)
    category = fields.String(allow_none=True, validate=validate.OneOf(EMERGENCY_CATEGORIES))
    justification = fields.String(allow_none=True)


class ConfidentialitySchema(_StrictSchema):
    no_user_notice = fields.Boolean(required=True)
    until = fields.DateTime(allow_none=True)
    reasons = fields.String(
        allow_none=True,
        metadata={"description": "why the user is not told (EU orders: required, Art 13(2))"},
    )


class AddresseeSchema(_StrictSchema):
    """Whom of the provider the order is addressed to (Regulation (EU) 2023/1543 Annex I)."""

    type = fields.String(required=True, validate=validate.OneOf(EMERGENCY_ADDRESSEE_TYPES))
    name = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2"})
    contact = fields.String(required=True)


class ReceivingAuthoritySchema(_StrictSchema):
    """Where the data go, when not to the issuing authority (Annex I)."""

    name = fields.String(required=True)
    contact = fields.String(required=True)


class OrderDocumentSchema(_StrictSchema):
    """What the authority orders: the fields of the EU's EPOC / EPOC-PR forms, for any basis."""

    reference = fields.String(required=True)
    case = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    legal_basis = fields.Nested(LegalBasisSchema, required=True)
    issuing_authority = fields.Nested(AuthoritySchema, required=True)
    provider = fields.String(required=True, metadata={"description": "the addressee's id"})
    offence = fields.Nested(OffenceSchema, required=True)
    facts = fields.String(required=True)
    link = fields.String(
        required=True, metadata={"description": "the link between the data and the offence"}
    )
    necessity_and_proportionality = fields.String(required=True)
    targets = fields.List(fields.Nested(TargetSchema), required=True)
    data_categories = fields.List(
        fields.String(validate=validate.OneOf(DATA_CATEGORIES)), required=True
    )
    validating_authority = fields.Nested(AuthoritySchema, allow_none=True)
    time_range = fields.Nested(TimeRangeSchema, allow_none=True)
    emergency = fields.Nested(EmergencySchema)
    confidentiality = fields.Nested(ConfidentialitySchema)
    preservation_days = fields.Integer(
        allow_none=True, metadata={"description": "preservation orders: the hold (default 90)"}
    )
    linked_order = fields.String(
        allow_none=True, metadata={"description": "the preservation order this one follows"}
    )
    return_channel = fields.String(metadata={"description": "default custos"})
    language = fields.String(metadata={"description": "BCP 47 tag, default en"})
    enforcing_authority = fields.Nested(
        EnforcingAuthoritySchema,
        allow_none=True,
        metadata={"description": "EU orders for traffic or content data (Art 8(1))"},
    )
    offence_state = fields.String(
        allow_none=True,
        metadata={"description": "ISO 3166-1: where the offence was committed (Art 8(2)(a))"},
    )
    residence_state = fields.String(
        allow_none=True,
        metadata={"description": "ISO 3166-1: where the person concerned resides (Art 8(2)(b))"},
    )
    addressee = fields.Nested(
        AddresseeSchema,
        allow_none=True,
        metadata={"description": "designated establishment or legal representative (Art 7)"},
    )
    emergency_addressee = fields.Nested(
        AddresseeSchema,
        allow_none=True,
        metadata={"description": "emergencies: any establishment or legal representative"},
    )
    receiving_authority = fields.Nested(ReceivingAuthoritySchema, allow_none=True)
    custodian = fields.String(
        allow_none=True,
        metadata={"description": "who keeps the data (Budapest Art 29(2)(d))"},
    )
    system_location = fields.String(
        allow_none=True,
        metadata={"description": "where the computer system is (Budapest Art 29(2)(d))"},
    )
    mla_request_intended = fields.Boolean(
        allow_none=True,
        metadata={"description": "a mutual assistance request will follow (Art 29(2)(f))"},
    )


@cache
def _merge_patch_of(schema: type[Schema]) -> type[Schema]:
    """The schema of an RFC 7396 JSON Merge Patch of ``schema``'s objects: every member is
    optional, objects merge member by member, null removes a member, anything else replaces.
    One class per schema, so that a part used twice (an authority) is one component."""
    spec: dict[str, Any] = {}
    for name, field in schema._declared_fields.items():
        if isinstance(field, fields.Nested) and isinstance(field.nested, type):
            spec[name] = fields.Nested(_merge_patch_of(field.nested), allow_none=True)
        else:
            spec[name] = copy.copy(field)
            spec[name].required = False
            spec[name].allow_none = True
    name = schema.__name__.removesuffix("Schema") + "PatchSchema"
    return type(name, (_StrictSchema,), spec)


OrderDocumentPatchSchema = _merge_patch_of(OrderDocumentSchema)


class NoBodySchema(_StrictSchema):
    """An action that carries nothing (an empty object, or no body at all)."""


class ReasonSchema(_StrictSchema):
    reason = fields.String(
        validate=[validate.Length(min=1, max=MAX_TEXT), NO_NUL],
        metadata={"description": "kept beside the order; its event commits to it"},
    )


class SendBackSchema(_StrictSchema):
    reason = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_TEXT), NO_NUL],
        metadata={"description": "what the drafter is to change; its event commits to it"},
    )


class ExtendSchema(_StrictSchema):
    days = fields.Integer(
        strict=True,
        metadata={
            "description": f"days added to the hold, 1 to {MAX_PRESERVATION_DAYS}; "
            "the order's own period unless given"
        },
    )


class AnswerSchema(_StrictSchema):
    answer = fields.String(
        required=True,
        validate=NO_NUL,
        metadata={"description": "kept beside the order; its event commits to it"},
    )


class ObjectionAnswerSchema(AnswerSchema):
    due = fields.AwareDateTime(
        metadata={
            "description": "a new deadline, set after reviewing the Annex III notice "
            "(orders to produce only)"
        }
    )


class EnforcingAnswerSchema(_StrictSchema):
    """The enforcing authority's answer, as the issuing authority records it (Arts 10, 12)."""

    answer = fields.String(required=True, validate=validate.OneOf(ANSWERS))
    ground = fields.String(
        validate=validate.OneOf(REFUSAL_GROUNDS),
        metadata={"description": "with answer ground: the ground for refusal of Art 12(1)"},
    )
    details = fields.String(
        validate=[validate.Length(min=1, max=MAX_TEXT), NO_NUL],
        metadata={"description": "its answer's text (required for a ground or conditions)"},
    )
    given_at = fields.AwareDateTime(
        metadata={"description": "when the enforcing authority gave it (default: now)"}
    )
    evidence = fields.String(
        validate=NO_NUL,
        metadata={"description": "the evidence item holding its document, if ingested"},
    )


class UserInformationSchema(_StrictSchema):
    """Whether the person whose data were sought was informed (Art 13)."""

    informed = fields.Boolean(required=True)
    details = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_TEXT), NO_NUL],
        metadata={"description": "the remedies the person was told of, or why not informed"},
    )


class RestrictionSchema(_StrictSchema):
    """What the issuing authority did with data it had received (Art 10(4))."""

    measure = fields.String(required=True, validate=validate.OneOf(RESTRICTIONS))
    details = fields.String(validate=[validate.Length(min=1, max=MAX_TEXT), NO_NUL])


class AdaptSchema(_StrictSchema):
    document = fields.Nested(
        OrderDocumentPatchSchema,
        required=True,
        metadata={"description": "an RFC 7396 JSON Merge Patch of the served document"},
    )


class ProductionRequestSchema(_StrictSchema):
    production_order = fields.String(
        validate=NO_NUL,
        metadata={"description": "the id of the production order that follows, if in Custos"},
    )


# -- responses -----------------------------------------------------------------------------------
# The views return what the desk builds; these schemas document it and never serialise it.
class OrderSummarySchema(Schema):
    """An order as lists show it: everything but its document."""

    id = fields.String(required=True)
    reference = fields.String(required=True)
    case = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    provider = fields.String(required=True)
    emergency = fields.Boolean(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    drafted_by = fields.String(required=True)
    drafted_at = fields.DateTime(required=True)
    revised_by = fields.List(fields.String(), required=True)
    validated_by = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the validator who validated it (EU Art 4), if one must"},
    )
    approved_by = fields.String(required=True, allow_none=True)
    served_at = fields.DateTime(required=True, allow_none=True)
    first_read_at = fields.DateTime(required=True, allow_none=True)
    due = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "null before service and while the clock is stopped"},
    )
    received = fields.Boolean(
        required=True,
        metadata={"description": "false until the provider received the order (not yet received)"},
    )
    received_at = fields.DateTime(required=True, allow_none=True)
    received_via = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "notice (delivered 2xx), read, act, or service (older orders)"},
    )
    due_local = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "due in the provider's time zone, RFC 3339 with its offset"},
    )
    time_zone = fields.String(required=True, allow_none=True)
    period = fields.Dict(
        required=True, allow_none=True, metadata={"description": "{days: N} or {hours: N}"}
    )
    period_rule = fields.String(required=True, allow_none=True)
    clock_paused = fields.Boolean(
        required=True,
        metadata={"description": "a clarification request suspends the deadline (Art 10(6))"},
    )
    remaining_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "while suspended: the time left once the clock runs again"},
    )
    hold_until_answered = fields.Boolean(
        required=True,
        metadata={"description": "an EU hold kept until the production request is answered"},
    )
    revision = fields.Integer(required=True)
    extensions = fields.Integer(required=True)
    enforcement_sought_at = fields.DateTime(required=True, allow_none=True)
    enforcing_review = fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "the enforcing State's review (Arts 8, 10, 12): its period, "
            "receipt, review_until, answer, and any deletion or restriction it called for"
        },
    )
    user_informed_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when the user was recorded as informed (EU Art 13)"},
    )
    responses_withheld = fields.Boolean(
        required=True,
        metadata={
            "description": "the provider's responses are kept from the issuing authority "
            "while the enforcing State reviews the order (Art 10(3))"
        },
    )
    overdue = fields.Boolean(required=True)
    allowed_actions = fields.List(fields.String(validate=validate.OneOf(ACTIONS)), required=True)


class OrderViewSchema(OrderSummarySchema):
    document = fields.Nested(OrderDocumentSchema, required=True)


class OrderActedSchema(OrderViewSchema):
    ledger_index = fields.Integer(required=True, metadata={"description": "the event's index"})


class TimelineEntrySchema(Schema):
    index = fields.Integer(required=True)
    type = fields.String(required=True)
    time = fields.DateTime(required=True)
    actor = fields.Nested(ActorSchema, required=True)
    state = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)
    texts = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "the texts the event commits to (answer, reason, ...)"},
    )


class NoticeSchema(Schema):
    """A notice to the provider and where its delivery stands."""

    event = fields.String(required=True)
    addressee = fields.String(
        required=True, validate=validate.OneOf(["provider", "enforcing_authority"])
    )
    ledger_index = fields.Integer(required=True)
    url = fields.String(required=True)
    state = fields.String(
        required=True, validate=validate.OneOf(["pending", "delivered", "failed"])
    )
    attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)


class OrderDetailSchema(OrderViewSchema):
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)
    names = fields.List(
        fields.Nested(PrincipalNameSchema),
        required=True,
        metadata={"description": "each principal the timeline names, as people read it"},
    )
    notices = fields.List(fields.Nested(NoticeSchema), required=True)
    responses = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "evidence ids of the responses (none while they are withheld)"},
    )


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSummarySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class OrderListQuery(Schema):
    status = fields.String(validate=validate.OneOf(STATES))
    provider = fields.String(validate=NO_NUL)
    case = fields.String(validate=NO_NUL)
    overdue = fields.Boolean(
        load_default=False, metadata={"description": "only orders still owed past their deadline"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class DocumentQuery(Schema):
    format = fields.String(
        load_default="note",
        validate=validate.OneOf(["note", "html"]),
        metadata={"description": "note: the signed note as text; html: a printable page"},
    )


# -- views ---------------------------------------------------------------------------------------


def _acted(acted: Acted) -> dict[str, Any]:
    view = _desk().view(acted.stored, by=g.principal.actor)
    return {**view, "ledger_index": acted.event.index}


def order_detail(
    desk: OrderDesk,
    stored: StoredOrder,
    by: Actor,
    names: Callable[[Iterable[str]], dict[str, str]],
) -> dict[str, Any]:
    """An order as its authority follows it: the view, every event with the texts it committed
    to, who acted by name (``names``: ``Principals.shown_names``), the notices to the provider
    (failed deliveries too) and the responses' evidence ids."""
    timeline = [entry.as_json() for entry in desk.timeline(stored)]
    if desk.responses_withheld(stored):
        # Art 10(3): the responses exist, but not yet for the issuing authority.
        for entry in timeline:
            if entry["type"] == "order.responded":
                entry["data"]["evidence"] = None
    return {
        **desk.view(stored, by=by),
        "timeline": timeline,
        "names": name_list(names(entry["actor"]["id"] for entry in timeline)),
        "notices": [notice.as_json() for notice in desk.notices_of(stored)],
        "responses": [
            e["data"]["evidence"]
            for e in timeline
            if e["type"] == "order.responded" and e["data"]["evidence"]
        ],
    }


def _json(schema: type[Schema] | dict[str, Any], *types: str) -> dict[str, Any]:
    return {"required": True, "content": {t: {"schema": schema} for t in types}}


@blp.route("", methods=["POST"])
@blp.doc(requestBody=_json(OrderDocumentSchema, "application/json"))
@blp.alt_response(
    201, schema=OrderActedSchema, description="the draft", headers=_LOCATION, success=True
)
@problem_responses(blp, 400, 409, 422)
@bearer_auth(blp)
@requires(*ROLES)
def draft() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Draft an order (order.drafted); the body is its document."""
    acted = _desk().draft(read_json_object(), g.principal.actor)
    location = url_for("orders.show", order_id=acted.stored.id)
    return _acted(acted), 201, {"Location": location}


@blp.route("/<order_id>", methods=["PATCH"])
@blp.doc(
    requestBody=_json(OrderDocumentPatchSchema, "application/merge-patch+json", "application/json")
)
@blp.alt_response(200, schema=OrderActedSchema, description="the revised draft", success=True)
@problem_responses(blp, 400, 404, 409, 422)
@bearer_auth(blp)
@requires(*ROLES)
def revise(order_id: str) -> dict[str, Any]:
    """Revise a draft with an RFC 7396 JSON Merge Patch of its document (order.revised).

    The reviser joins the drafter among those who may not approve it.
    """
    _desk().get(order_id, g.principal.actor)  # 404 before the body is read
    return _acted(_desk().revise(order_id, read_json_object(), g.principal.actor))


# Each action's path, its body and whether the body must be sent; the domain's name of the
# action is the path with underscores.
_ACTIONS: dict[str, tuple[type[Schema], bool, str]] = {
    "submit": (NoBodySchema, False, "Submit a draft for approval (order.submitted)."),
    "validate": (
        NoBodySchema,
        False,
        "Validate an EU order its issuing authority may not issue alone (order.validated; "
        "Art 4): the validator role, never one who drafted or revised it.",
    ),
    "approve": (
        NoBodySchema,
        False,
        "Approve and serve the order (order.served): its document is signed and its clock "
        "starts. 403 for an approver who drafted or revised it.",
    ),
    "send-back": (
        SendBackSchema,
        True,
        "Send an order awaiting approval back to draft, with the reason (order.sent_back): "
        "an approver who neither drafted nor revised it. Its validation, if any, is undone.",
    ),
    "withdraw": (ReasonSchema, False, "Withdraw the order from any open state."),
    "resend": (
        NoBodySchema,
        False,
        "Send the notice of service again, while the provider has not received the order.",
    ),
    "adapt": (
        AdaptSchema,
        True,
        "Adapt a served order: a new signed revision superseding the old one (order.adapted). "
        "An order to produce runs again from receipt of it; a hold continues.",
    ),
    "extend": (
        ExtendSchema,
        False,
        "Extend a preservation order's hold (an EU one once, by 30 days: Art 11(1)).",
    ),
    "confirm-production-request": (
        ProductionRequestSchema,
        False,
        "Confirm that a production request follows an EU preservation order (Annex V): "
        "the hold lasts until it is answered (Art 11(2)).",
    ),
    "answer-objection": (
        ObjectionAnswerSchema,
        True,
        "Answer the provider's Annex III notice, optionally setting a new deadline.",
    ),
    "answer-clarification": (AnswerSchema, True, "Answer the provider's request to clarify."),
    "seek-enforcement": (
        ReasonSchema,
        False,
        "Record that enforcement is sought against an overdue order (EU Art 16).",
    ),
    "close": (
        ReasonSchema,
        False,
        "Close an order that was answered, or an overdue one that will not be.",
    ),
    "record-enforcing-answer": (
        EnforcingAnswerSchema,
        True,
        "Record the enforcing authority's answer to an order sent to it (EU Arts 10, 12): "
        "no ground, a ground for refusal, or conditions, and when it was given.",
    ),
    "record-user-information": (
        UserInformationSchema,
        True,
        "Record that the person whose data were sought was informed of the order and of the "
        "remedies, or why not yet (EU Art 13).",
    ),
    "restrict-data": (
        RestrictionSchema,
        True,
        "Record that the data received were deleted or restricted after the enforcing "
        "authority raised a ground within its 96 hours (EU Art 10(4)).",
    ),
}


def _action_view(path: str, body: type[Schema], summary: str) -> Callable[[str], dict[str, Any]]:
    action = path.replace("-", "_")

    def act(order_id: str) -> dict[str, Any]:
        _desk().get(order_id, g.principal.actor)  # 404 before the body is read
        raw = read_json_object(optional=True)
        data = load_body(body(), raw)
        if action == "adapt":
            # The patch goes to the desk as JSON: the document parses its own times.
            data = {"document": raw["document"]}
        try:
            acted = _desk().act(order_id, action, data, g.principal.actor)
        except BadRequest as exc:
            # Raised for the action's data (days out of range, an empty answer): well-formed
            # JSON whose values the order cannot take.
            raise well_formed_but_invalid(exc) from None
        return _acted(acted)

    act.__name__ = f"{action}_order"
    act.__doc__ = f"{summary}\n\n409 with allowed_actions when the order's state does not allow it."
    return act


def _register_action(path: str, body: type[Schema], required: bool, summary: str) -> None:
    view: Any = requires(*ROLES)(_action_view(path, body, summary))
    view = bearer_auth(blp)(view)
    view = problem_responses(blp, 400, 404, 409, 422)(view)
    view = blp.alt_response(
        200, schema=OrderActedSchema, description="the order after the action", success=True
    )(view)
    view = blp.doc(requestBody={**_json(body, "application/json"), "required": required})(view)
    blp.route(f"/<order_id>/{path}", methods=["POST"], endpoint=view.__name__)(view)


for _path, (_body, _required, _summary) in _ACTIONS.items():
    _register_action(_path, _body, _required, _summary)


@blp.route("", methods=["GET"])
@blp.arguments(OrderListQuery, location="query", error_status_code=400)
@blp.alt_response(200, schema=OrderPageSchema, description="a page of orders", success=True)
@bearer_auth(blp)
@requires(*ROLES)
def list_orders(query: dict[str, Any]) -> dict[str, Any]:
    """Orders, oldest draft first, by state, provider and case; ``overdue=true`` keeps those
    still owed past their deadline. Follow ``next_cursor`` for more."""
    desk = _desk()
    limit = query["limit"]
    found = desk.list(
        g.principal.actor,
        state=query.get("status"),
        provider=query.get("provider"),
        case=query.get("case"),
        overdue_only=query["overdue"],
        limit=limit + 1,
        after=decode_cursor(query.get("cursor")),
    )
    shown, next_cursor = page(found, limit, lambda s: s.seq)
    now = desk.ledger.clock()
    return {
        "items": [desk.summary(s, now, g.principal.actor) for s in shown],
        "next_cursor": next_cursor,
    }


@blp.route("/<order_id>", methods=["GET"])
@blp.alt_response(200, schema=OrderDetailSchema, description="the order", success=True)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*ROLES)
def show(order_id: str) -> dict[str, Any]:
    """One order: its document, state, deadline, allowed actions, timeline, notices, responses."""
    desk = _desk()
    names = current_app.extensions["custos"].principals.shown_names
    return order_detail(desk, desk.get(order_id, g.principal.actor), g.principal.actor, names)


@blp.route("/<order_id>/document", methods=["GET"])
@blp.arguments(DocumentQuery, location="query", error_status_code=400)
@blp.response(
    200,
    {"type": "string"},
    content_type="text/plain",
    description="the signed custos/order/v1 note, or with format=html a printable page",
)
@blp.doc(responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*ROLES)
def document(query: dict[str, Any], order_id: str) -> Response:
    """The issued order: its signed ``custos/order/v1`` note, or a printable HTML page of it.

    404 until the order is approved: its document is signed at service.
    """
    desk = _desk()
    stored = desk.get(order_id, g.principal.actor)
    note = desk.document_note(stored)
    if query["format"] == "html":
        response = Response(
            render_order_page(note, desk.view(stored, by=g.principal.actor)), mimetype="text/html"
        )
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
    return Response(note, content_type="text/plain; charset=utf-8")


__all__ = ["blp", "order_detail"]
