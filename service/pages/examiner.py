"""The examiner's desk: the cases a person works on, their items and orders, and each item
with its custody timeline, its receipt and the acts its state allows.

Everything is read through the same domain calls as the API, as the signed-in principal:
a case or an item outside the person's cases does not exist here (404) either. The act
forms (``examiner_acts``) and the intake forms (``examiner_intake``) are desks of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    render_template,
    request,
    url_for,
)

from custody.acts import ACT_FIELDS, ActField
from custody.bundle import EXPORT_ROLES
from custody.cases import Case
from custody.errors import Forbidden, NotFound
from custody.evidence import ACT_ROLES, INTAKE_ROLES, EvidenceRecord
from custody.handling import DISPOSERS
from custody.order_desk import AUTHORITY_ROLES
from custody.verify.report import ACQUISITION_WORDS, event_label
from service.bundles import zip_response
from service.pages import display
from service.pages.sessions import deployment, signed_in
from service.pages.timeline import custody_timeline, seizure_rows
from service.pages.zones import choose_zone, reader_zone
from service.request_input import decode_cursor, encode_cursor, page

bp = Blueprint("examiner", __name__, url_prefix="/examiner")
# Who works on the cases' evidence: the roles that record custody acts.
EXAMINER_ROLES = ACT_ROLES
PAGE_SIZE = 50
SEARCH_LIMIT = 50
# What each act's form is called, and its button.
ACT_TITLES = {
    "evidence.transferred": ("Transfer to another custodian", "Record the transfer"),
    "evidence.received": ("Confirm receipt", "Confirm receipt"),
    "evidence.checked_out": ("Check out", "Record the check-out"),
    "evidence.checked_in": ("Check in", "Record the check-in"),
    "evidence.examined": ("Record an examination", "Record the examination"),
    "evidence.noted": ("Add a note", "Add the note"),
    "evidence.sealed": ("Seal", "Record the seal"),
    "evidence.unsealed": ("Unseal", "Record the unsealing"),
    "evidence.hold_set": ("Set a legal hold", "Set the hold"),
    "evidence.hold_released": ("Release the legal hold", "Release the hold"),
    "evidence.disposed": ("Dispose of the item", "Record the disposal"),
}
assert set(ACT_TITLES) == set(ACT_FIELDS)


def act_slug(act: str) -> str:
    """How an act is named in its form's address: ``evidence.sealed`` is ``sealed``."""
    return act.split(".", 1)[1]


def case_of(record: EvidenceRecord) -> Case:
    """The case an item (already found within the reader's cases) belongs to."""
    case = deployment().cases.store.by_reference(record.case)
    if case is None:
        raise NotFound(f"no case {record.case}")
    return case


def _state_words(record: EvidenceRecord, names: Mapping[str, str]) -> str:
    state = record.state
    parts = [
        words
        for words, on in (
            (f"sealed (seal {state.seal})" if state.seal else "sealed", state.sealed),
            ("on legal hold", state.on_hold),
            (f"checked out to {state.checked_out_to}", state.checked_out_to is not None),
            (
                "in transfer to "
                f"{names.get(state.transfer_pending_to or '', state.transfer_pending_to)}, "
                "awaiting their confirmation of receipt",
                state.transfer_pending_to is not None,
            ),
            ("disposed of", state.disposed),
        )
        if on
    ]
    return ", ".join(parts) or "in custody"


@bp.route("/cases")
@signed_in(*EXAMINER_ROLES)
def cases() -> Response:
    """The person's cases, and a search of their items by case, exhibit, description or
    digest."""
    return _cases_page()


def _cases_page(zone_error: str | None = None, typed_zone: str = "") -> Response:
    query = request.args.get("q", "").strip()
    by = g.principal.actor
    found = deployment().cases.list(by, limit=500)
    items: Sequence[EvidenceRecord] = []
    if query:
        wanted = query.casefold()
        found = [c for c in found if wanted in f"{c.reference}\n{c.title}".casefold()]
        items = deployment().handling.search(by, query, SEARCH_LIMIT + 1)
    zone = reader_zone()
    body = render_template(
        "examiner/cases.html",
        cases=found,
        query=query,
        items=items[:SEARCH_LIMIT],
        more_items=len(items) > SEARCH_LIMIT,
        local_time=lambda t: display.local_time(t, zone),
        zone=zone,
        zone_error=zone_error,
        typed_zone=typed_zone or zone,
    )
    return make_response(body, 422 if zone_error else 200)


@bp.route("/time-zone", methods=["POST"])
@signed_in(*EXAMINER_ROLES)
def time_zone() -> Response:
    """Read the pages' times in the zone chosen (kept with this browser's session)."""
    typed = request.form.get("zone", "").strip()
    error = choose_zone(typed)
    if error is not None:
        return _cases_page(error, typed)
    return redirect_to(url_for(".cases", zone_set=1))


def redirect_to(target: str) -> Response:
    response = make_response("", 303)
    response.headers["Location"] = target
    return response


@bp.route("/cases/<case_id>")
@signed_in(*EXAMINER_ROLES)
def case(case_id: str) -> str:
    """A case: its facts and members, its items (paged) and its orders."""
    site = deployment()
    by = g.principal.actor
    found = site.cases.get(case_id, by)
    members = site.cases.store.members(found.id)
    names = site.principals.shown_names([m.principal_id for m in members] + [found.opened_by])
    cursor = request.args.get("cursor")
    records = site.handling.list(by, found.reference, None, PAGE_SIZE + 1, decode_cursor(cursor))
    shown, next_cursor = page(records, PAGE_SIZE, lambda r: r.ledger_index)
    zone = reader_zone()
    pending = site.principals.shown_names(
        r.state.transfer_pending_to for r in shown if r.state.transfer_pending_to
    )
    return render_template(
        "examiner/case.html",
        case=found,
        members=[(names.get(m.principal_id, m.principal_id), m) for m in members],
        opened_by=names.get(found.opened_by, found.opened_by),
        items=shown,
        next_cursor=next_cursor,
        first_page=cursor is None,
        orders=_orders(found, by),
        local_time=lambda t: display.local_time(t, zone),
        size=display.size,
        state_label=display.state_label,
        encode_cursor=encode_cursor,
        takes_items=found.open and g.principal.role in INTAKE_ROLES,
        zone=zone,
        state_words=lambda record: _state_words(record, pending),
    )


def _orders(found: Case, by: Any) -> list[dict[str, Any]] | None:
    """The case's orders, for those who read orders (authorities and approvers); None for
    anyone else."""
    if by.role not in AUTHORITY_ROLES:
        return None
    desk = deployment().orders
    now = desk.ledger.clock()
    return [desk.summary(s, now) for s in desk.list(by, case=found.reference, limit=PAGE_SIZE)]


def record_of(evidence_id: str) -> EvidenceRecord:
    """The item, if it is in the person's cases; otherwise 404."""
    return deployment().handling.get(evidence_id, g.principal.actor)


def offered_acts(record: EvidenceRecord) -> list[str]:
    """The acts the item's state allows that this person may record: a disposal is an
    approver's, and a receipt is confirmed by the custodian the transfer names."""
    principal = g.principal
    allowed = record.state.allowed_acts(record.kind)
    return [
        act
        for act in allowed
        if (act != "evidence.disposed" or principal.role in DISPOSERS)
        and (act != "evidence.received" or principal.id == record.state.transfer_pending_to)
    ]


def _custodians(found: Case) -> list[tuple[str, str]]:
    """Whom an item of the case may be transferred to: its members who keep evidence, by
    (principal name, shown name)."""
    site = deployment()
    member_ids = {m.principal_id for m in site.cases.store.members(found.id)}
    return [
        (p.name, p.shown_as)
        for p in site.principals.list()
        if p.id in member_ids and p.active and p.role in ACT_ROLES and p.id != g.principal.id
    ]


def item_page(
    record: EvidenceRecord,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    form: str | None = None,
    status: int = 200,
) -> Response:
    """The item page; ``errors`` and ``values`` belong to the act form ``form``, sent back."""
    site = deployment()
    by = g.principal.actor
    zone = reader_zone()
    found = case_of(record)
    pending = record.state.transfer_pending_to
    names = site.principals.shown_names([record.created_by, *([pending] if pending else [])])
    acts = offered_acts(record)
    done = request.args.get("done")
    receipt = None
    if record.size is not None:
        receipt = site.intake.receipt_for(record.id, by).receipt.decode("utf-8")
    body = render_template(
        "examiner/item.html",
        record=record,
        case=found,
        received_by=names.get(record.created_by, record.created_by),
        received=display.local_time(record.received_at, zone),
        size=display.size(record.size),
        state_words=_state_words(record, names),
        facts=_acquisition(record, zone),
        timeline=custody_timeline(site, record, by, zone),
        zone=zone,
        receipt=receipt,
        just_received=request.args.get("received") == "1",
        done=event_label(f"evidence.{done}").lower() if done else None,
        exports=g.principal.role in EXPORT_ROLES,
        acts=[(act, act_slug(act), *ACT_TITLES[act], _fields(act)) for act in acts],
        act_titles=ACT_TITLES,
        custodians=_custodians(found) if "evidence.transferred" in acts else [],
        errors=errors or {},
        values=values or {},
        open_form=form,
        seal=record.state.seal,
    )
    return make_response(body, status)


def _fields(act: str) -> Sequence[ActField]:
    return ACT_FIELDS[act]


def _acquisition(record: EvidenceRecord, zone: str) -> list[tuple[str, str]]:
    """What the signed manifest records of how the item came in: its seizure (a physical
    item) or its acquisition (a digital one), and under what authority."""
    description = record.description
    rows: list[tuple[str, str]] = []
    seizure = description.get("seizure")
    if isinstance(seizure, Mapping):
        rows += seizure_rows(seizure, zone)
    acquisition = description.get("acquisition")
    if isinstance(acquisition, Mapping):
        for key, words in ACQUISITION_WORDS.items():
            if key not in acquisition:
                continue
            value = acquisition[key]
            if key == "digests" and isinstance(value, Mapping):
                value = ", ".join(f"{alg.upper()} {hex_}" for alg, hex_ in value.items())
            elif key == "acquired_at":
                value = display.local_time(str(value), zone)
            rows.append((words, str(value)))
    for key, words in (("authority", "Authority (warrant, order)"), ("media_type", "Media type")):
        if description.get(key):
            rows.append((words, str(description[key])))
    return rows


@bp.route("/items/<evidence_id>")
@signed_in(*EXAMINER_ROLES)
def item(evidence_id: str) -> Response:
    """An item: its description, digests, acquisition, state, custody timeline and receipt,
    and a form for each act its state allows."""
    return item_page(record_of(evidence_id))


@bp.route("/items/<evidence_id>/bundle")
@signed_in(*EXAMINER_ROLES)
def bundle(evidence_id: str) -> Response:
    """The item's exhibit bundle, for a court's offline verifier."""
    record = record_of(evidence_id)
    by = g.principal.actor
    if g.principal.role not in EXPORT_ROLES:
        raise Forbidden(f"the {by.role} role may not export exhibit bundles")

    def export(out: BinaryIO) -> None:
        deployment().bundles.export([record.id], out, by=by)

    return zip_response(export, f"{record.id}.zip")


@bp.route("/items/<evidence_id>/receipt.json")
@signed_in(*EXAMINER_ROLES)
def receipt(evidence_id: str) -> Response:
    """The receipt bundle of an ingested item, for ``python -m custody.verify receipt``."""
    record = record_of(evidence_id)
    found = deployment().intake.receipt_for(record.id, g.principal.actor)
    response = Response(found.to_json(), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{record.id}.receipt.json"'
    return response
