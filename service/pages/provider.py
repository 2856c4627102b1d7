"""The provider's desk: the orders served on it, each order with the answers its state
allows, its responses and their receipts.

Every action goes through the order desk as the signed-in provider, exactly as the provider
API does: another provider's order, or one not yet served, is 404 here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, BinaryIO, cast

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import ValidationError as CsrfInvalid
from flask_wtf.csrf import validate_csrf
from marshmallow import Schema

from custody.errors import BadRequest, Forbidden, NotFound, TooLarge
from custody.evidence import is_evidence_id
from custody.order_desk import PROVIDER_ROLES, SERVED_STATES, OrderDesk, StoredOrder
from custody.orders import ACTOR_OF_ACTION
from custody.providers import Provider
from custody.verify.report import event_label
from service.body_limit import streams_upload
from service.order_page import order_document_html
from service.pages import display
from service.pages.errors import form_errors
from service.pages.sessions import deployment as _deployment
from service.pages.sessions import signed_in
from service.pages.uploads import StreamedForm
from service.provider_api import (
    ClarificationRequestSchema,
    ObjectionSchema,
    ResponseAnnouncementSchema,
)
from service.request_input import decode_cursor, page

bp = Blueprint("provider", __name__, url_prefix="/provider")
PAGE_SIZE = 25
# Actions without a form of their own: one button each.
BUTTON_ACTIONS = {
    "acknowledge": "acknowledge",
    "confirm-preservation": "confirm_preservation",
    "no-data": "no_data",
    "complete": "complete",
}
# The states a provider sees an order in: from service on.
FILTER_STATES = tuple(state.value for state in SERVED_STATES)
FORM_OVERHEAD = 256 * 1024
# Routes that check the CSRF token themselves, as they stream their body.
STREAMED = ("pages.provider.upload_form",)


def _desk() -> OrderDesk:
    return _deployment().orders


def _provider() -> Provider | None:
    """The signed-in principal's provider, read once per request."""
    if "provider" not in g:
        provider_id = g.principal.provider_id
        g.provider = _deployment().providers.get(provider_id) if provider_id else None
    provider: Provider | None = g.provider
    return provider


def _zone() -> str:
    """The one place that picks the zone the provider's pages show times in: the
    provider's own (IANA, where it is established; UTC when it gave none)."""
    provider = _provider()
    return provider.time_zone if provider is not None else "UTC"


def _provider_name() -> str:
    provider = _provider()
    return provider.name if provider is not None else ""


@bp.route("/orders")
@signed_in(*PROVIDER_ROLES)
def inbox() -> str:
    """The orders served on this provider, newest served last, filtered and paged."""
    state = request.args.get("state") or None
    if state is not None and state not in FILTER_STATES:
        raise BadRequest(f"unknown order state {state!r}")
    overdue_only = request.args.get("overdue") == "1"
    desk = _desk()
    principal = g.principal
    stored = desk.list_for_provider(
        principal.actor,
        principal.provider_id,
        state=state,
        overdue_only=overdue_only,
        limit=PAGE_SIZE + 1,
        after=decode_cursor(request.args.get("cursor")),
    )
    shown, next_cursor = page(stored, PAGE_SIZE, lambda s: s.seq)
    now = desk.ledger.clock()
    zone = _zone()
    rows = []
    for item in shown:
        summary = desk.summary(item, now)
        rows.append(
            {
                **summary,
                "state_label": display.state_label(summary["state"]),
                "due_local": display.local_time(summary["due"], zone),
                "left": _left(summary, now),
            }
        )
    return render_template(
        "provider/inbox.html",
        rows=rows,
        provider_name=_provider_name(),
        zone=zone,
        states=[(s, display.state_label(s)) for s in FILTER_STATES],
        state=state,
        overdue_only=overdue_only,
        next_cursor=next_cursor,
        first_page=request.args.get("cursor") is None,
    )


def _order_page(
    stored: StoredOrder,
    *,
    errors: Mapping[str, Mapping[str, str]] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    desk = _desk()
    now = desk.ledger.clock()
    view = desk.view(stored, now)
    title, alert, document = order_document_html(desk.document_note(stored), view, _names(view))
    timeline = desk.timeline(stored, for_provider=True)
    responses = [
        {"evidence": entry.event.data.get("evidence"), "time": entry.event.time}
        for entry in timeline
        if entry.event.type == "order.responded"
    ]
    allowed = [a for a in view["allowed_actions"] if ACTOR_OF_ACTION.get(a) == "provider"]
    zone = _zone()
    body = render_template(
        "provider/order.html",
        order=view,
        title=title,
        alert=alert,
        document=document,
        state_label=display.state_label(view["state"]),
        due_local=display.local_time(view["due"], zone),
        left=_left(view, now),
        allowed=allowed,
        action_labels=display.ACTION_LABELS,
        grounds=display.GROUND_LABELS,
        timeline=timeline,
        event_label=event_label,
        local_time=lambda t: display.local_time(t, zone),
        responses=responses,
        errors=errors or {},
        values=values or {},
        upload_limit=display.size(_deployment().config.page_upload_max_bytes),
        provider_name=_provider_name(),
    )
    return make_response(body, status)


def _left(summary: Mapping[str, Any], now: datetime) -> str:
    """What is left of a running deadline (or how far past it the order is); nothing for an
    order whose deadline no longer runs."""
    if not summary["due"] or summary["state"] not in display.RUNNING:
        return ""
    return display.time_left(summary["due"], now)


def _names(order: Mapping[str, Any]) -> dict[str, str]:
    """The names of the provider and the principals the order names, by id."""
    deployment = _deployment()
    names = {p.id: p.shown_as for p in deployment.principals.list()}
    provider = deployment.providers.store.get(order["provider"])
    if provider is not None:
        names[provider.id] = provider.name
    return names


def _stored(order_id: str) -> StoredOrder:
    principal = g.principal
    return _desk().get_for_provider(order_id, principal.actor, principal.provider_id)


@bp.route("/orders/<order_id>")
@signed_in(*PROVIDER_ROLES)
def order(order_id: str) -> Response:
    """The order as signed, its deadline, its history, and what may be done now."""
    return _order_page(_stored(order_id))


def _act(order_id: str, action: str, data: Mapping[str, Any] | None = None) -> Response:
    principal = g.principal
    _desk().act(order_id, action, data or {}, principal.actor, provider_id=principal.provider_id)
    return redirect(url_for(".order", order_id=order_id, done=action), 303)  # type: ignore[return-value]


@bp.route(
    f"/orders/<order_id>/<any({', '.join(map(repr, BUTTON_ACTIONS))}):step>", methods=["POST"]
)
@signed_in(*PROVIDER_ROLES)
def button(order_id: str, step: str) -> Response:
    return _act(order_id, BUTTON_ACTIONS[step])


def _answer(
    order_id: str, form: str, schema: Schema, fields: tuple[str, ...], action: str
) -> Response:
    values = {name: request.form[name] for name in fields if request.form.get(name)}
    errors = form_errors(schema, values)
    if errors:
        return _order_page(_stored(order_id), errors={form: errors}, values=values, status=422)
    return _act(order_id, action, schema.load(values))


@bp.route("/orders/<order_id>/object", methods=["POST"])
@signed_in(*PROVIDER_ROLES)
def object_to(order_id: str) -> Response:
    """Object on an Annex III ground; the deadline stops until the authority answers."""
    return _answer(order_id, "object", ObjectionSchema(), ("ground", "details"), "object")


@bp.route("/orders/<order_id>/clarification", methods=["POST"])
@signed_in(*PROVIDER_ROLES)
def clarification(order_id: str) -> Response:
    return _answer(
        order_id,
        "clarification",
        ClarificationRequestSchema(),
        ("question",),
        "request_clarification",
    )


def _announcement(fields: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values = {n: fields[n] for n in ("description", "exhibit") if fields.get(n, "").strip()}
    if fields.get("media_type"):
        values["media_type"] = fields["media_type"]
    schema = ResponseAnnouncementSchema()
    errors = form_errors(schema, values)
    return ({} if errors else schema.load(values)), errors


@bp.route("/orders/<order_id>/responses", methods=["POST"])
@streams_upload
@signed_in(*PROVIDER_ROLES)
def upload_form(order_id: str) -> Response:
    """A response sent from the plain form: fields, then the file, streamed and hashed.

    The CSRF token is the form's first field; it is checked before anything is opened.
    """
    limit = _deployment().config.page_upload_max_bytes
    if request.content_length is None:
        raise BadRequest("the form must be sent with a Content-Length")
    # The file and, at most, the form's few fields around it.
    body_limit = limit + FORM_OVERHEAD
    if request.content_length > body_limit:
        raise _too_large(limit)
    form = StreamedForm(
        cast(BinaryIO, request.stream), request.content_type or "", body_limit, limit
    )
    fields = form.read_fields()
    try:
        validate_csrf(fields.get("csrf_token"))
    except CsrfInvalid:
        form.finish_quietly()
        raise Forbidden("the form was not sent from this session's page") from None
    stored = _stored(order_id)
    announcement, errors = _announcement(fields)
    if not form.filename:
        errors["file"] = "Choose a file to send."
    if errors:
        form.finish_quietly()
        values = {k: v for k, v in fields.items() if k != "csrf_token"}
        return _order_page(stored, errors={"respond": errors}, values=values, status=422)
    media_type = form.file_headers.get("Content-Type")
    if media_type and "media_type" not in announcement and media_type != "application/octet-stream":
        announcement["media_type"] = media_type[:200]
    principal = g.principal
    desk = _desk()
    session = desk.open_response(order_id, announcement, principal.actor, principal.provider_id)
    try:
        ingested = desk.receive_response(
            order_id, session.id, cast(BinaryIO, form), principal.actor, principal.provider_id
        )
    except TooLarge:
        form.finish_quietly()
        raise _too_large(limit) from None
    form.finish()
    return redirect(  # type: ignore[return-value]
        url_for(".receipt", evidence_id=ingested.record.id, received=1), 303
    )


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"a file sent from this page may be at most {display.size(limit)}; "
        "larger ones go through the API"
    )


@bp.route("/orders/<order_id>/responses/announce", methods=["POST"])
@signed_in(*PROVIDER_ROLES)
def announce(order_id: str) -> Response:
    """The script's first step: announce the response, get the URL to send its bytes to."""
    announcement, errors = _announcement(request.form)
    if errors:
        return make_response(jsonify({"errors": errors}), 422)
    principal = g.principal
    session = _desk().open_response(order_id, announcement, principal.actor, principal.provider_id)
    upload = url_for(".upload_content", order_id=order_id, evidence_id=session.id)
    return jsonify({"upload": upload})


@bp.route("/orders/<order_id>/responses/<evidence_id>/content", methods=["PUT"])
@streams_upload
@signed_in(*PROVIDER_ROLES)
def upload_content(order_id: str, evidence_id: str) -> Response:
    """The script's second step: the file as a raw body, into the same intake as the API."""
    if not is_evidence_id(evidence_id):
        raise NotFound(f"no response {evidence_id} to order {order_id}")
    limit = _deployment().config.page_upload_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    principal = g.principal
    ingested = _desk().receive_response(
        order_id,
        evidence_id,
        cast(BinaryIO, request.stream),
        principal.actor,
        principal.provider_id,
        content_length=request.content_length,
    )
    return jsonify({"receipt": url_for(".receipt", evidence_id=ingested.record.id, received=1)})


def _receipt_bundle(evidence_id: str) -> tuple[Any, dict[str, Any]]:
    principal = g.principal
    deployment = _deployment()
    bundle = deployment.intake.receipt_for(evidence_id, principal.actor, principal.provider_id)
    # receipt_for found the response the provider's own; anything else raised NotFound.
    record = deployment.evidence.get(evidence_id)
    assert record is not None
    return bundle, record.as_json()


@bp.route("/receipts/<evidence_id>")
@signed_in(*PROVIDER_ROLES)
def receipt(evidence_id: str) -> str:
    """A response's signed receipt, as a page: what was received, when, and its digests."""
    bundle, record = _receipt_bundle(evidence_id)
    zone = _zone()
    return render_template(
        "provider/receipt.html",
        record=record,
        receipt_note=bundle.receipt.decode("utf-8"),
        checkpoint=bundle.checkpoint.decode("utf-8"),
        received_local=display.local_time(record["received_at"], zone),
        size=display.size(record["size"]),
        just_received=request.args.get("received") == "1",
        provider_name=_provider_name(),
    )


@bp.route("/receipts/<evidence_id>/receipt.json")
@signed_in(*PROVIDER_ROLES)
def receipt_download(evidence_id: str) -> Response:
    """The receipt bundle, for ``python -m custody.verify receipt`` offline."""
    bundle, _ = _receipt_bundle(evidence_id)
    response = Response(bundle.to_json(), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{evidence_id}.receipt.json"'
    return response
