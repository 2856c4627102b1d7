"""The court's desk: the items a court may read (the API's rule: what its running grants
give it), each item's exhibit bundle to download and verify offline, and its custody report
as a page."""

from __future__ import annotations

import io
from typing import BinaryIO

from flask import Blueprint, Response, g, render_template, request

from custody.verify.report import render_report
from service.bundles import zip_response
from service.pages import display
from service.pages.sessions import deployment as _deployment
from service.pages.sessions import signed_in
from service.pages.timeline import custody_timeline
from service.pages.zones import reader_zone
from service.request_input import decode_cursor, encode_cursor, page

bp = Blueprint("court", __name__, url_prefix="/court")
PAGE_SIZE = 50
COURT_ROLES = ("court",)
# The report carries its own inline style sheet and nothing else.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@bp.route("/items")
@signed_in(*COURT_ROLES)
def items() -> str:
    """The items, by case, oldest first, paged."""
    case = request.args.get("case", "").strip() or None
    records = _deployment().handling.list(
        g.principal.actor, case, None, PAGE_SIZE + 1, decode_cursor(request.args.get("cursor"))
    )
    shown, next_cursor = page(records, PAGE_SIZE, lambda r: r.ledger_index)
    return render_template(
        "court/items.html",
        items=shown,
        case=case or "",
        next_cursor=next_cursor,
        first_page=request.args.get("cursor") is None,
        size=display.size,
        local_time=display.local_time,
        encode_cursor=encode_cursor,
    )


@bp.route("/items/<evidence_id>")
@signed_in(*COURT_ROLES)
def item(evidence_id: str) -> str:
    deployment = _deployment()
    record = deployment.handling.get(evidence_id, g.principal.actor)
    names = deployment.principals.shown_names([record.created_by])
    zone = reader_zone()
    return render_template(
        "court/item.html",
        record=record,
        received_by=names.get(record.created_by, record.created_by),
        size=display.size(record.size),
        received=display.local_time(record.received_at, zone),
        timeline=custody_timeline(deployment, record, g.principal.actor, zone),
        zone=zone,
    )


@bp.route("/items/<evidence_id>/report")
@signed_in(*COURT_ROLES)
def report(evidence_id: str) -> Response:
    """The custody report: the item's exhibit bundle, verified with this deployment's keys,
    as the printable page the bundle itself carries."""
    exported = _deployment().bundles.export([evidence_id], io.BytesIO(), by=g.principal.actor)
    assert exported.verification is not None  # exported with its report
    response = Response(render_report(exported.verification), mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response


@bp.route("/items/<evidence_id>/bundle")
@signed_in(*COURT_ROLES)
def bundle(evidence_id: str) -> Response:
    """The item's exhibit bundle, for the one-file verifier."""
    deployment = _deployment()
    record = deployment.handling.get(evidence_id, g.principal.actor)

    def export(out: BinaryIO) -> None:
        deployment.bundles.export([record.id], out, by=g.principal.actor)

    return zip_response(export, f"{record.id}.zip")
