"""The provider API: the orders served on a service provider, its answers to them, and its
responses, streamed in and hashed exactly as evidence intake takes an upload.

Every view acts through the order desk as the caller's own provider. An order addressed to
another provider, not yet served, or unknown does not exist here: 404 on every endpoint,
never 403, so that a provider learns nothing of anyone else's orders.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from flask import Response, current_app, g, request, url_for
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from custody.errors import BadRequest, NotFound
from custody.evidence import is_evidence_id
from custody.order_desk import PROVIDER_ROLES, OrderDesk, StoredOrder
from custody.order_document import GROUNDS_NEEDING_DETAILS, MAX_TEXT, OBJECTION_GROUNDS
from service.auth import requires
from service.body_limit import streams_upload
from service.docs import bearer_auth, problem_responses
from service.evidence import IngestedSchema, UploadSessionSchema
from service.order_page import CONTENT_SECURITY_POLICY, render_order_page
from service.orders import (
    DocumentQuery,
    OrderActedSchema,
    OrderPageSchema,
    OrderViewSchema,
    TimelineEntrySchema,
)
from service.request_input import (
    DIGEST_HEADERS,
    NO_NUL,
    RAW_BODY,
    Blueprint,
    declared_digests,
    decode_cursor,
    ingested_response,
    page,
    require_readable_body,
)

blp = Blueprint(
    "provider",
    __name__,
    url_prefix="/v1/provider",
    description="A service provider's orders: read, answer, respond",
)


def _desk() -> OrderDesk:
    desk: OrderDesk = current_app.extensions["custos"].orders
    return desk


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


class _Body(Schema):
    """A JSON body: known fields only, and text that UTF-8 can hold."""

    class Meta:
        unknown = RAISE

    @pre_load
    def refuse_surrogates(self, data: Any, **kwargs: Any) -> Any:
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            # JSON may escape a lone surrogate (\ud800); RFC 7493 section 2.1 forbids it, and
            # no UTF-8 text, so no committed text or signed manifest, can hold one.
            raise BadRequest("the body holds an unpaired surrogate escape") from None
        return data


class ObjectionSchema(_Body):
    """Why the provider cannot comply (Regulation (EU) 2023/1543, Annex III)."""

    ground = fields.String(required=True, validate=validate.OneOf(OBJECTION_GROUNDS))
    details = fields.String(
        validate=[validate.Length(min=1, max=MAX_TEXT), _not_blank, NO_NUL],
        metadata={"description": f"required for {', '.join(GROUNDS_NEEDING_DETAILS)}"},
    )

    @validates_schema
    def details_when_needed(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data.get("ground") in GROUNDS_NEEDING_DETAILS and "details" not in data:
            raise ValidationError(f"required for the ground {data['ground']}", "details")


class ClarificationRequestSchema(_Body):
    question = fields.String(
        required=True, validate=[validate.Length(min=1, max=MAX_TEXT), _not_blank, NO_NUL]
    )


class ResponseAnnouncementSchema(_Body):
    """A response to announce: it becomes an evidence item in the order's case."""

    description = fields.String(
        required=True, validate=[validate.Length(min=1, max=4000), _not_blank, NO_NUL]
    )
    exhibit = fields.String(
        validate=[validate.Length(min=1, max=200), _not_blank, NO_NUL],
        metadata={"description": "the exhibit label; '<order reference> response' if absent"},
    )
    media_type = fields.String(validate=[validate.Length(max=200), NO_NUL])


class ProviderOrderListQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class ProviderOrderDetailSchema(OrderViewSchema):
    """An order as its provider follows it: the view and its events from service on."""

    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)


def _order_json(desk: OrderDesk, stored: StoredOrder) -> dict[str, Any]:
    timeline = desk.timeline(stored, for_provider=True)
    view = desk.view(stored, by=g.principal.actor)
    return {**view, "timeline": [entry.as_json() for entry in timeline]}


def _act(order_id: str, action: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    desk = _desk()
    principal = g.principal
    acted = desk.act(
        order_id, action, data or {}, principal.actor, provider_id=principal.provider_id
    )
    return {**desk.view(acted.stored, by=principal.actor), "ledger_index": acted.event.index}


def _provider_only(view: Any) -> Any:
    """Authenticate a provider before anything else, its arguments included: a caller
    without a token or the role learns nothing from validation (401, 403)."""
    return requires(*PROVIDER_ROLES)(bearer_auth(blp)(view))


def _own_order(view: Any) -> Any:
    """Answer 404 for an order that is not the provider's own before its arguments are
    read: another provider's order is 404 whatever the request carries, never 400 or 422."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        principal = g.principal
        _desk().provider_order(kwargs["order_id"], principal.actor, principal.provider_id)
        return view(*args, **kwargs)

    return checked


@blp.route("/orders", methods=["GET"])
@_provider_only
@blp.arguments(ProviderOrderListQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.alt_response(200, schema=OrderPageSchema, description="a page of orders", success=True)
def list_orders(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """The orders served on the caller's provider, oldest first; follow ``next_cursor``."""
    desk = _desk()
    principal = g.principal
    stored = desk.list_for_provider(
        principal.actor, principal.provider_id, limit=limit + 1, after=decode_cursor(cursor)
    )
    shown, next_cursor = page(stored, limit, lambda s: s.seq)
    now = desk.ledger.clock()
    return {
        "items": [desk.summary(s, now, g.principal.actor) for s in shown],
        "next_cursor": next_cursor,
    }


@blp.route("/orders/<order_id>", methods=["GET"])
@_provider_only
@blp.alt_response(
    200, schema=ProviderOrderDetailSchema, description="the order and its events", success=True
)
@problem_responses(blp, 404)
def show_order(order_id: str) -> dict[str, Any]:
    """One order, its deadline and its events from service on.

    The provider's first read is recorded (``order.read``); it starts no clock.
    """
    desk = _desk()
    principal = g.principal
    stored = desk.get_for_provider(order_id, principal.actor, principal.provider_id)
    return _order_json(desk, stored)


@blp.route("/orders/<order_id>/document", methods=["GET"])
@_provider_only
@_own_order
@blp.arguments(DocumentQuery, location="query", error_status_code=400)
@blp.doc(
    responses={
        200: {
            "description": "the signed custos/order/v1 note, or (format=html) a printable page",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    }
)
@problem_responses(blp, 404)
def order_document(query: dict[str, Any], order_id: str) -> Response:
    """The order as issued: its signed note, or a page a lawyer can print.

    The note is the ``custos/order/v1`` text signed at service. Reading it is reading the
    order, so the provider's first read is recorded here too.
    """
    desk = _desk()
    principal = g.principal
    stored = desk.get_for_provider(order_id, principal.actor, principal.provider_id)
    note = desk.document_note(stored)
    if query["format"] == "html":
        response = Response(
            render_order_page(note, desk.view(stored, by=g.principal.actor)), mimetype="text/html"
        )
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
    return Response(note, content_type="text/plain; charset=utf-8")


def _action(view: Any) -> Any:
    """What every answer to an order documents: the order after it, or 404 and 409."""
    view = problem_responses(blp, 404, 409)(view)
    return blp.alt_response(
        200,
        schema=OrderActedSchema,
        description="the order after the action, and the ledger index of its event",
        success=True,
    )(view)


@blp.route("/orders/<order_id>/acknowledge", methods=["POST"])
@_provider_only
@_action
def acknowledge(order_id: str) -> dict[str, Any]:
    """Acknowledge receipt of the order (``order.acknowledged``)."""
    return _act(order_id, "acknowledge")


@blp.route("/orders/<order_id>/object", methods=["POST"])
@_provider_only
@_own_order
@blp.arguments(ObjectionSchema)
@problem_responses(blp, 400)
@_action
def object_to(objection: dict[str, Any], order_id: str) -> dict[str, Any]:
    """Object to the order; its deadline pauses until the authority answers.

    The grounds are those of Regulation (EU) 2023/1543, Annex III, or ``other``.
    """
    return _act(order_id, "object", objection)


@blp.route("/orders/<order_id>/request-clarification", methods=["POST"])
@_provider_only
@_own_order
@blp.arguments(ClarificationRequestSchema)
@problem_responses(blp, 400)
@_action
def request_clarification(clarification: dict[str, Any], order_id: str) -> dict[str, Any]:
    """Ask the authority a question about the order; the deadline pauses until answered."""
    return _act(order_id, "request_clarification", clarification)


@blp.route("/orders/<order_id>/confirm-preservation", methods=["POST"])
@_provider_only
@_action
def confirm_preservation(order_id: str) -> dict[str, Any]:
    """Confirm that the data a preservation order names is preserved."""
    return _act(order_id, "confirm_preservation")


@blp.route("/orders/<order_id>/no-data", methods=["POST"])
@_provider_only
@_action
def no_data(order_id: str) -> dict[str, Any]:
    """Report that the provider holds none of the data the order names."""
    return _act(order_id, "no_data")


@blp.route("/orders/<order_id>/complete", methods=["POST"])
@_provider_only
@_action
def complete(order_id: str) -> dict[str, Any]:
    """Declare the production complete after one or more responses (``order.produced``)."""
    return _act(order_id, "complete")


@blp.route("/orders/<order_id>/responses", methods=["POST"])
@_provider_only
@_own_order
@blp.arguments(ResponseAnnouncementSchema)
@blp.alt_response(
    201, schema=UploadSessionSchema, description="the response's upload session", success=True
)
@problem_responses(blp, 400, 404, 409)
def open_response(announcement: dict[str, Any], order_id: str) -> tuple[dict[str, Any], int]:
    """Announce a response: an upload session for an evidence item in the order's case.

    409 for a preservation order (preservation is not disclosure), one not yet acknowledged,
    and one closed, withdrawn or expired.
    """
    principal = g.principal
    session = _desk().open_response(order_id, announcement, principal.actor, principal.provider_id)
    upload = url_for("provider.response_content", order_id=order_id, evidence_id=session.id)
    return {"id": session.id, "upload": upload, "expires_at": session.expires_at}, 201


@blp.route("/orders/<order_id>/responses/<evidence_id>/content", methods=["PUT"])
@streams_upload
@_provider_only
@blp.doc(parameters=DIGEST_HEADERS, requestBody=RAW_BODY)
@blp.alt_response(
    201,
    schema=IngestedSchema,
    description="the response as an evidence item, with its receipt",
    headers={"Repr-Digest": {"schema": {"type": "string"}, "required": True}},
    success=True,
)
@problem_responses(blp, 400, 404, 409, 413, 422)
def response_content(order_id: str, evidence_id: str) -> Response:
    """Upload a response's bytes (raw body; optional RFC 9530 digest).

    They are streamed and hashed as evidence intake does. The item's ``evidence.ingested``
    and the order's ``order.responded`` are recorded together; the receipt verifies offline.
    """
    declared = declared_digests()
    require_readable_body()
    if not is_evidence_id(evidence_id):
        raise NotFound(f"no response {evidence_id} to order {order_id}")
    principal = g.principal
    ingested = _desk().receive_response(
        order_id,
        evidence_id,
        cast(BinaryIO, request.stream),
        principal.actor,
        principal.provider_id,
        declared=declared,
        content_length=request.content_length,
    )
    return ingested_response(ingested)
