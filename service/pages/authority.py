"""The authority's desk: drafting orders from a form, previewing them as the provider will see
them, the approvals inbox, the board of orders by where they stand, the authority's answers,
and each order's timeline in words and its downloads.

For the authority, approver and validator roles. Every read and act goes through the order
desk as the signed-in principal, exactly as the order API does: an order outside the
principal's cases is 404 here too, a four-eyes violation 403, an act its state forbids 409.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import Schema

from custody.cases import Scope
from custody.errors import BadRequest, FieldErrors, NotFound, well_formed_but_invalid
from custody.order_desk import AUTHORITY_ROLES, OrderDesk, StoredOrder
from custody.orders import ACTOR_OF_ACTION, AWAITING_ANSWER, HOLDING, issued_order
from service.order_page import (
    CONTENT_SECURITY_POLICY,
    issued_order_html,
    order_document_html,
    render_order_page,
)
from service.orders import (
    AnswerSchema,
    EnforcingAnswerSchema,
    ExtendSchema,
    NoBodySchema,
    ObjectionAnswerSchema,
    ProductionRequestSchema,
    ReasonSchema,
    RestrictionSchema,
    SendBackSchema,
    UserInformationSchema,
    order_detail,
)
from service.pages import authority_labels as labels
from service.pages import display, order_form
from service.pages.errors import form_errors
from service.pages.sessions import deployment as _deployment
from service.pages.sessions import signed_in
from service.request_input import decode_cursor, encode_cursor

bp = Blueprint("authority", __name__, url_prefix="/authority")
PAGE_SIZE = 25
BOARD_ROWS = 8
# An order whose deadline or hold ends within this is "due soon" on the board.
DUE_SOON = timedelta(days=2)
# Pages of orders a board section reads past (orders it does not show) before it stops.
MOST_PAGES_READ = 4
ZONE = "UTC"


# Each act of the authority's side the pages offer: its path, the API's schema of its body
# and the form fields it takes. Adapting a served order is left to the API.
ACTS: Mapping[str, tuple[type[Schema], tuple[str, ...]]] = {
    "submit": (NoBodySchema, ()),
    "validate": (NoBodySchema, ()),
    "approve": (NoBodySchema, ()),
    "send-back": (SendBackSchema, ("reason",)),
    "withdraw": (ReasonSchema, ("reason",)),
    "resend": (NoBodySchema, ()),
    "extend": (ExtendSchema, ("days",)),
    "confirm-production-request": (ProductionRequestSchema, ("production_order",)),
    "answer-objection": (ObjectionAnswerSchema, ("answer", "due")),
    "answer-clarification": (AnswerSchema, ("answer",)),
    "seek-enforcement": (ReasonSchema, ("reason",)),
    "close": (ReasonSchema, ("reason",)),
    "record-enforcing-answer": (
        EnforcingAnswerSchema,
        ("answer", "ground", "details", "given_at", "evidence"),
    ),
    "record-user-information": (UserInformationSchema, ("informed", "details")),
    "restrict-data": (RestrictionSchema, ("measure", "details")),
}
_TIMES = ("due", "given_at")


def _desk() -> OrderDesk:
    return _deployment().orders


def _provider_names() -> dict[str, str]:
    return {p.id: p.name for p in _deployment().providers.list()}


def local_time(moment: datetime | str | None) -> str:
    return display.local_time(moment, ZONE)


# -- the board -----------------------------------------------------------------------------------


def _sections(now: datetime) -> dict[str, tuple[dict[str, Any], Callable[[StoredOrder], bool]]]:
    """Each section of the board: the desk's list filter, and what it keeps of that list."""
    awaiting = [s.value for s in AWAITING_ANSWER]
    running = sorted({*awaiting, *(s.value for s in HOLDING)})

    def everything(_: StoredOrder) -> bool:
        return True

    return {
        "overdue": ({"overdue_only": True}, everything),
        "due_soon": (
            {"states": running, "due_from": now, "due_before": now + DUE_SOON},
            everything,
        ),
        "not_received": (
            {"states": ["served"]},
            lambda s: s.order.clock is not None and not s.order.clock.received,
        ),
        "awaiting_answer": ({"states": ["objected", "clarification_requested"]}, everything),
        "approval": ({"states": ["pending_approval"]}, everything),
        "drafts": ({"states": ["draft"]}, everything),
        "all": ({}, everything),
    }


def _collect(
    filters: Mapping[str, Any],
    keep: Callable[[StoredOrder], bool],
    limit: int,
    after: int | None,
    scope: Scope | None = None,
) -> tuple[list[StoredOrder], int | None]:
    """Up to ``limit`` orders the list filter gives and ``keep`` keeps, after the cursor,
    reading past a few pages of orders it does not keep; and where the next page starts."""
    found: list[StoredOrder] = []
    for _ in range(MOST_PAGES_READ):
        listed = _desk().list(
            g.principal.actor, **filters, limit=limit + 1, after=after, scope=scope
        )
        for stored in listed:
            if len(found) == limit:
                return found, found[-1].seq
            if keep(stored):
                found.append(stored)
            after = stored.seq
        if len(listed) <= limit:
            return found, None
    return found, after


def _rows(
    shown: Sequence[StoredOrder], now: datetime, providers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    desk = _desk()
    providers = _provider_names() if providers is None else providers
    rows = []
    for stored in shown:
        summary = desk.summary(stored, now)
        rows.append(
            {
                **summary,
                "provider_name": providers.get(summary["provider"], summary["provider"]),
                "state_label": display.state_label(summary["state"]),
                "due_text": _due_text(summary, now),
            }
        )
    return rows


def _due_text(summary: Mapping[str, Any], now: datetime) -> str:
    if summary["due"]:
        left = display.time_left(summary["due"], now) if summary["state"] in display.RUNNING else ""
        return f"{local_time(summary['due'])}" + (f" ({left})" if left else "")
    if summary["clock_paused"]:
        return "Stopped: the provider asked for clarification"
    if summary["hold_until_answered"]:
        return "Held until the production request is answered"
    if summary["served_at"] and not summary["received"]:
        return "Runs from the provider's receipt"
    return ""


@bp.route("/orders")
@signed_in(*AUTHORITY_ROLES)
def board() -> str:
    """The orders of the principal's cases by where they stand: overdue, due soon, not yet
    received by the provider, awaiting the authority's answer, awaiting approval, drafts."""
    now = _desk().ledger.clock()
    # Read once for every section: who may see which cases, and the providers' names.
    scope = _deployment().cases.scope(g.principal.actor)
    providers = _provider_names()
    sections = []
    for name, (filters, keep) in _sections(now).items():
        if name == "all":
            continue
        shown, more = _collect(filters, keep, BOARD_ROWS, None, scope)
        rows = _rows(shown, now, providers)
        sections.append({"name": name, **labels.SECTIONS[name], "rows": rows, "more": more})
    return render_template("authority/board.html", sections=sections, zone=ZONE)


@bp.route("/orders/list/<section>")
@signed_in(*AUTHORITY_ROLES)
def listing(section: str) -> str:
    """One section of the board, or every order, paged."""
    now = _desk().ledger.clock()
    sections = _sections(now)
    if section not in sections:
        raise NotFound(f"no list {section}")
    filters, keep = sections[section]
    shown, more = _collect(filters, keep, PAGE_SIZE, decode_cursor(request.args.get("cursor")))
    return render_template(
        "authority/listing.html",
        section=section,
        heading=labels.SECTIONS[section],
        rows=_rows(shown, now),
        next_cursor=encode_cursor(more) if more is not None else None,
        first_page=request.args.get("cursor") is None,
        zone=ZONE,
    )


@bp.route("/approvals")
@signed_in(*AUTHORITY_ROLES)
def approvals() -> str:
    """The orders awaiting approval or validation, and whether this principal may give it
    (never one who drafted or revised the order)."""
    desk = _desk()
    now = desk.ledger.clock()
    filters, keep = _sections(now)["approval"]
    shown, more = _collect(filters, keep, PAGE_SIZE, decode_cursor(request.args.get("cursor")))
    rows = _rows(shown, now)
    by = g.principal.actor
    names = _deployment().principals.shown_names(r["drafted_by"] for r in rows)
    for row, stored in zip(rows, shown, strict=True):
        row["mine"] = [
            a
            for a in desk.summary(stored, now, by)["allowed_actions"]
            if a in ("approve", "validate", "send_back")
        ]
        row["drafter"] = names.get(row["drafted_by"], row["drafted_by"])
        row["authored"] = by.id in stored.order.authors
    return render_template(
        "authority/approvals.html",
        rows=rows,
        next_cursor=encode_cursor(more) if more is not None else None,
        first_page=request.args.get("cursor") is None,
        zone=ZONE,
    )


# -- drafting ------------------------------------------------------------------------------------


def _draft_form(
    values: Mapping[str, str],
    *,
    errors: Sequence[tuple[str, str]] = (),
    order: StoredOrder | None = None,
    started_from: StoredOrder | None = None,
    status: int = 200,
) -> Response:
    deployment = _deployment()
    by = g.principal.actor
    cases = [c for c in deployment.cases.list(by, limit=500) if c.open]
    rows = order_form.target_rows(values)
    shown = [*order_form.TEXT_FIELDS, *labels.target_paths(rows), *labels.category_paths()]
    placed: dict[str, list[str]] = {}
    summary = []
    for path, reason in errors:
        where = order_form.anchor(path, shown)
        message = f"{labels.field_label(path)}: {reason}"
        summary.append((order_form.field_id(where) if where else "draft-form", message))
        if where is not None:
            placed.setdefault(where, []).append(message)
    body = render_template(
        "authority/draft.html",
        values=values,
        errors={path: " ".join(messages) for path, messages in placed.items()},
        summary=summary,
        order=order,
        started_from=started_from,
        case_options=[(c.reference, f"{c.reference}: {c.title}") for c in cases],
        provider_options=[(p.id, p.name) for p in deployment.providers.list()],
        target_rows=rows,
        labels=labels,
        field_id=order_form.field_id,
    )
    return make_response(body, status)


def _form_values() -> dict[str, str]:
    return order_form.values_of(request.form, request.form.getlist("data_categories"))


@bp.route("/orders/new", methods=["GET"])
@signed_in(*AUTHORITY_ROLES)
def new() -> Response:
    """The drafting form: empty, or filled in from an earlier order (``from``), its
    reference left for the new one."""
    earlier = request.args.get("from")
    if not earlier:
        return _draft_form({})
    stored = _desk().get(earlier, g.principal.actor)
    values = order_form.values_from_document(stored.order.document.as_json())
    values.pop("reference", None)
    return _draft_form(values, started_from=stored)


@bp.route("/orders/new", methods=["POST"])
@signed_in(*AUTHORITY_ROLES)
def draft() -> Response:
    """Save the draft (``order.drafted``); every field at fault is named at once."""
    values = _form_values()
    try:
        acted = _desk().draft(order_form.document_of(values), g.principal.actor)
    except FieldErrors as exc:
        return _draft_form(values, errors=exc.errors, status=422)
    return _to_order(acted.stored.id, "drafted")


@bp.route("/orders/<order_id>/edit", methods=["GET"])
@signed_in(*AUTHORITY_ROLES)
def edit(order_id: str) -> Response:
    stored = _desk().get(order_id, g.principal.actor)
    return _draft_form(
        order_form.values_from_document(stored.order.document.as_json()), order=stored
    )


@bp.route("/orders/<order_id>/edit", methods=["POST"])
@signed_in(*AUTHORITY_ROLES)
def revise(order_id: str) -> Response:
    """Save the changed draft (``order.revised``) as an RFC 7396 merge patch of its document."""
    desk = _desk()
    stored = desk.get(order_id, g.principal.actor)
    values = _form_values()
    patch = order_form.merge_patch_to(
        stored.order.document.as_json(), order_form.document_of(values)
    )
    try:
        desk.revise(order_id, patch, g.principal.actor)
    except FieldErrors as exc:
        return _draft_form(values, errors=exc.errors, order=stored, status=422)
    return _to_order(order_id, "revised")


def _to_order(order_id: str, done: str) -> Response:
    return redirect(url_for(".order", order_id=order_id, done=done), 303)  # type: ignore[return-value]


# -- one order -----------------------------------------------------------------------------------


def _order_page(
    stored: StoredOrder,
    *,
    failed: str | None = None,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    deployment = _deployment()
    desk = deployment.orders
    by = g.principal.actor
    now = desk.ledger.clock()
    detail = order_detail(desk, stored, by, deployment.principals.shown_names)
    names = {entry["id"]: entry["name"] for entry in detail["names"]}
    names |= deployment.principals.shown_names(
        [stored.order.drafted_by, *stored.order.authors, stored.order.approved_by or ""]
    )
    provider = deployment.providers.store.get(stored.order.document.provider)
    if provider is not None:
        names[provider.id] = provider.name
    if stored.note is not None:
        title, alert, document = order_document_html(stored.note, detail, names)
    else:
        title, alert, document = issued_order_html(issued_order(stored.order), detail, names)
    allowed = detail["allowed_actions"]
    body = render_template(
        "authority/order.html",
        order=detail,
        title=title,
        alert=alert,
        document=document,
        provider_name=provider.name if provider is not None else stored.order.document.provider,
        state_label=display.state_label(detail["state"]),
        due_text=_due_text(detail, now),
        provider_due=display.local_time(detail["due"], detail["time_zone"])
        if detail["due"] and detail["time_zone"] not in (None, ZONE)
        else "",
        allowed=allowed,
        acts=[a for a in allowed if ACTOR_OF_ACTION.get(a) != "provider"],
        act_labels=labels.ACT_LABELS,
        issue_faults=desk.issue_faults(stored),
        authored=by.id in stored.order.authors,
        names=names,
        event_line=labels.event_line,
        local_time=local_time,
        refusal_grounds=labels.REFUSAL_GROUND_LABELS,
        answers=labels.ENFORCING_ANSWER_LABELS,
        restrictions=labels.RESTRICTION_LABELS,
        failed=failed,
        errors={failed: errors or {}} if failed else {},
        values=values or {},
        done=labels.ACT_LABELS.get(request.args.get("done", ""), request.args.get("done")),
    )
    return make_response(body, status)


@bp.route("/orders/<order_id>")
@signed_in(*AUTHORITY_ROLES)
def order(order_id: str) -> Response:
    """The order: a draft's preview as the provider will see it, where the order stands,
    what this principal may do now, and its timeline in words."""
    return _order_page(_desk().get(order_id, g.principal.actor))


@bp.route(f"/orders/<order_id>/<any({', '.join(map(repr, ACTS))}):step>", methods=["POST"])
@signed_in(*AUTHORITY_ROLES)
def act(order_id: str, step: str) -> Response:
    """Take one act on the order, with its form's fields checked as the API checks them."""
    desk = _desk()
    stored = desk.get(order_id, g.principal.actor)
    schema_class, fields = ACTS[step]
    values = {
        name: request.form[name].strip() for name in fields if request.form.get(name, "").strip()
    }
    sent = {
        name: order_form.utc_time(value) if name in _TIMES else value
        for name, value in values.items()
    }
    schema = schema_class()
    errors = form_errors(schema, sent)
    if not errors:
        try:
            desk.act(order_id, step.replace("-", "_"), schema.load(sent), g.principal.actor)
        except BadRequest as exc:
            invalid = well_formed_but_invalid(exc)
            found = invalid.errors if isinstance(invalid, FieldErrors) else [("", str(invalid))]
            errors = {
                name if name in fields else (fields[0] if fields else ""): reason
                for name, reason in found
            }
        else:
            return _to_order(order_id, step.replace("-", "_"))
    return _order_page(stored, failed=step, errors=errors, values=values, status=422)


# -- downloads -----------------------------------------------------------------------------------


@bp.route("/orders/<order_id>/printable")
@signed_in(*AUTHORITY_ROLES)
def printable(order_id: str) -> Response:
    """The issued order as a page to print (its own inline style sheet, nothing else)."""
    desk = _desk()
    stored = desk.get(order_id, g.principal.actor)
    note = desk.document_note(stored)
    page = render_order_page(note, desk.view(stored, by=g.principal.actor))
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.route("/orders/<order_id>/order-note.txt")
@signed_in(*AUTHORITY_ROLES)
def note(order_id: str) -> Response:
    """The signed ``custos/order/v1`` note, for ``python -m custody.verify`` offline."""
    desk = _desk()
    signed = desk.document_note(desk.get(order_id, g.principal.actor))
    response = Response(signed, content_type="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{order_id}.order-note.txt"'
    return response
