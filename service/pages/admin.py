"""The admin's desk: principals (add, name, revoke, sign-in links, second factors, case
memberships and courts' grants) and the provider register.

Every change goes through the same domain calls as the API and the CLI (``Principals``,
``SignIn``, ``Cases``, ``Providers``), so each is the same ledger event, refused by the same
rules. A form sent back shows every field's error at once beside the field, with what was
typed kept, and changes nothing. An admin manages who may read a case; these pages show no
item of any case.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

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

from custody.cases import CASE_ROLES, GRANTEE_ROLES, MEMBER_ROLES, Case
from custody.errors import Conflict, FieldErrors, FieldFault, NotFound
from custody.events import Subject
from custody.principals import ADMINS, ROLES, Principal, Unauthenticated, check_provider_binding
from custody.verify.report import event_label
from service.cases import NewGrantSchema
from service.pages import display
from service.pages.sessions import deployment, signed_in
from service.principals import DisplayNameSchema, NewPrincipalSchema

bp = Blueprint("admin", __name__, url_prefix="/admin")
PRINCIPAL_FIELDS = ("name", "display_name", "role", "provider", "email")
# What a missing answer is told, where the schema's own words would not say what to do.
MISSING = {
    "name": "Enter the name the principal signs in with.",
    "role": "Choose a role.",
    "display_name": "Enter a display name.",
    "case": "Enter the case's reference.",
    "proceeding": "Enter the proceeding the court needs the case for.",
    "last_day": "Enter the last day of the grant.",
}
ROLE_HINTS = {
    "admin": "manages principals, providers and case memberships; reads no evidence",
    "examiner": "takes in evidence and records custody acts in the cases they are a member of",
    "authority": "drafts and issues orders",
    "approver": "approves orders and disposals",
    "provider": "a service provider's desk: the orders served on it",
    "court": "reads the cases and exhibits granted to it, until the grant ends",
    "validator": "validates EU orders (Regulation (EU) 2023/1543 Art 4)",
}
assert set(ROLE_HINTS) == set(ROLES)
DONE = {
    "named": ("The display name is set", "principal.named"),
    "revoked": (
        "Revoked: the token no longer works and every session has ended",
        "principal.revoked",
    ),
    "member_added": ("Added to the case", "case.member_added"),
    "member_removed": ("Removed from the case", "case.member_removed"),
    "granted": ("The court is granted the case", "case.court_granted"),
    "grant_ended": ("The grant has ended", "case.grant_ended"),
}


def schema_errors(schema: Schema, values: Mapping[str, Any]) -> dict[str, str]:
    """Every field the API's schema refuses, at once, in words to show beside the field."""
    found = schema.validate(values)
    errors = {}
    for name, messages in found.items():
        text = " ".join(messages) if isinstance(messages, list) else str(messages)
        errors[name] = MISSING.get(name, text) if "Missing data" in text else sentence(text)
    return errors


def sentence(reason: str) -> str:
    reason = reason.strip().rstrip(".")
    return f"{reason[:1].upper()}{reason[1:]}."


def field_errors(
    faults: Iterable[tuple[str, str]], fields: Mapping[str, str], default: str
) -> dict[str, str]:
    """The domain's ``FieldErrors`` as the form's: each under the form field it is about
    (``fields`` maps the domain's names that differ; a list's ``languages[1]`` is
    ``languages``), and one the form has no field for under ``default``."""
    errors: dict[str, str] = {}
    for name, reason in faults:
        shown = name.split("[", 1)[0]
        field = fields.get(shown, shown if shown in fields.values() else default)
        errors.setdefault(field, sentence(reason))
    return errors


def in_form_order(errors: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """The errors in the order the form asks its fields, as the summary lists them."""
    order = {name: n for n, name in enumerate(fields)}
    return dict(sorted(errors.items(), key=lambda error: order.get(error[0], len(order))))


def form_values(names: Iterable[str]) -> dict[str, str]:
    """The form's answers as typed (nothing trimmed: what is refused is shown as it was)."""
    return {name: request.form.get(name, "") for name in names}


# -- principals ----------------------------------------------------------------------------------


@bp.route("/principals")
@signed_in(*ADMINS)
def principals() -> str:
    """Every principal, active and revoked, with its role, provider and second factor."""
    dep = deployment()
    return render_template(
        "admin/principals.html",
        people=dep.principals.list(),
        providers={p.id: p.name for p in dep.providers.list()},
        enrolled=dep.sign_in.enrolled(g.principal.actor),
        local_time=display.local_time,
    )


def _new_principal_page(
    values: Mapping[str, str], errors: Mapping[str, str], status: int = 200
) -> Response:
    body = render_template(
        "admin/new_principal.html",
        values=values,
        errors=errors,
        roles=ROLE_HINTS,
        providers=deployment().providers.list(),
    )
    return make_response(body, status)


@bp.route("/principals/new")
@signed_in(*ADMINS)
def new_principal() -> Response:
    return _new_principal_page({}, {})


@bp.route("/principals", methods=["POST"])
@signed_in(*ADMINS)
def add_principal() -> Response:
    """Add a principal (``principal.created``); its token is shown on this answer only."""
    values = form_values(PRINCIPAL_FIELDS)
    given = {name: value for name, value in values.items() if value}
    errors = schema_errors(NewPrincipalSchema(), given)
    principals = deployment().principals
    if values["role"] in ROLES and "provider" not in errors:
        try:
            check_provider_binding(values["role"], given.get("provider"))
        except FieldFault:
            errors["provider"] = (
                "Choose the provider this principal answers for."
                if values["role"] == "provider"
                else "Only a provider principal is bound to a provider: choose none."
            )
    if "name" not in errors and principals.store.by_name(values["name"]) is not None:
        errors["name"] = "A principal of this name exists already: choose another."
    if errors:
        return _new_principal_page(values, in_form_order(errors, PRINCIPAL_FIELDS), 422)
    try:
        added, token = principals.add(
            values["name"],
            values["role"],
            g.principal.actor,
            given.get("provider"),
            given.get("email"),
            display_name=given.get("display_name"),
        )
    except Conflict as exc:  # the name was taken meanwhile
        return _new_principal_page(values, {"name": sentence(str(exc))}, 422)
    except (FieldFault, NotFound) as exc:
        return _new_principal_page(values, {"provider": sentence(str(exc))}, 422)
    return make_response(
        render_template(
            "admin/principal_added.html",
            added=added,
            token=token,
            needs_second_factor=added.role in deployment().config.totp_roles,
        ),
        201,
    )


def _principal(name: str) -> Principal:
    return deployment().principals.get(name)


def _history(principal: Principal) -> list[dict[str, Any]]:
    """The principal's own ledger events (created, named, revoked), who made each and when."""
    dep = deployment()
    entries = dep.ledger.subject_entries(Subject("principal", principal.id).key)
    events = [(entry.index, json.loads(entry.leaf)) for entry in entries]
    names = dep.principals.shown_names(event["actor"]["id"] for _, event in events)
    return [
        {
            "index": index,
            "event": event,
            "by": names.get(event["actor"]["id"], event["actor"]["id"]),
            "label": event_label(event["type"]),
        }
        for index, event in events
    ]


def principal_page(
    principal: Principal,
    *,
    errors: Mapping[str, Mapping[str, str]] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
    status: int = 200,
) -> Response:
    """The principal, what may be done about it, its cases, and its own ledger events."""
    dep = deployment()
    by = g.principal.actor
    memberships, grants = dep.cases.held_by(principal.id, by)
    provider = dep.providers.store.get(principal.provider_id) if principal.provider_id else None
    done = DONE.get(request.args.get("done", ""))
    now = dep.ledger.clock()
    body = render_template(
        "admin/principal.html",
        person=principal,
        provider=provider,
        enrolled=principal.id in dep.sign_in.enrolled(by),
        needs_second_factor=principal.role in dep.config.totp_roles,
        is_member_role=principal.role in MEMBER_ROLES,
        is_court=principal.role in GRANTEE_ROLES,
        memberships=memberships,
        grants=[(case, grant, grant.active(now)) for case, grant in grants],
        case_roles=CASE_ROLES,
        history=_history(principal),
        done=done,
        errors=errors or {},
        values=values or {},
        local_time=display.local_time,
    )
    return make_response(body, status)


@bp.route("/principals/<name>")
@signed_in(*ADMINS)
def principal(name: str) -> Response:
    return principal_page(_principal(name))


def _done(name: str, what: str) -> Response:
    return redirect(url_for(".principal", name=name, done=what), 303)  # type: ignore[return-value]


@bp.route("/principals/<name>/display-name", methods=["POST"])
@signed_in(*ADMINS)
def set_display_name(name: str) -> Response:
    """Give the principal a new display name (``principal.named``)."""
    person = _principal(name)
    values = form_values(("display_name",))
    errors = schema_errors(DisplayNameSchema(), {k: v for k, v in values.items() if v})
    if errors:
        return principal_page(
            person, errors={"named": errors}, values={"named": values}, status=422
        )
    deployment().principals.name(name, values["display_name"], g.principal.actor)
    return _done(name, "named")


@bp.route("/principals/<name>/sign-in-link", methods=["POST"])
@signed_in(*ADMINS)
def sign_in_link(name: str) -> Response:
    """A single-use sign-in link, as ``custos principal login-link`` prints it; shown on this
    answer only."""
    dep = deployment()
    try:
        person, secret, expires_at = dep.sign_in.make_link(name, g.principal.actor)
    except Unauthenticated as exc:  # revoked: no link is made for it
        raise Conflict(str(exc)) from None
    public_url = dep.config.public_url
    if public_url:
        url = f"{public_url.rstrip('/')}/sign-in/link/{secret}"
    else:
        url = url_for("pages.sign_in.link", secret=secret, _external=True)
    body = render_template(
        "admin/sign_in_link.html",
        person=person,
        url=url,
        expires=display.local_time(expires_at),
        needs_second_factor=person.role in dep.config.totp_roles,
    )
    return make_response(body, 201)


@bp.route("/principals/<name>/second-factor", methods=["POST"])
@signed_in(*ADMINS)
def reset_second_factor(name: str) -> Response:
    """Enrol a new second factor (any earlier one stops working); its secret is shown on
    this answer only, for the person's authenticator app."""
    try:
        person, uri = deployment().sign_in.enrol_totp(name, g.principal.actor)
    except Unauthenticated as exc:
        raise Conflict(str(exc)) from None
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    body = render_template("admin/second_factor.html", person=person, uri=uri, secret=secret)
    return make_response(body, 201)


@bp.route("/principals/<name>/revoke")
@signed_in(*ADMINS)
def confirm_revoke(name: str) -> Response:
    person = _principal(name)
    if not person.active:
        return redirect(url_for(".principal", name=name))  # type: ignore[return-value]
    return make_response(render_template("admin/revoke.html", person=person))


@bp.route("/principals/<name>/revoke", methods=["POST"])
@signed_in(*ADMINS)
def revoke(name: str) -> Response:
    """Revoke the principal (``principal.revoked``): its token and its sessions end now."""
    deployment().principals.revoke(name, g.principal.actor)
    return _done(name, "revoked")


# -- case memberships and grants -------------------------------------------------------------------


def _case_named(reference: str, errors: dict[str, str]) -> Case | None:
    """The case a form names by its reference; an error under ``case`` if there is none."""
    if not reference.strip():
        errors["case"] = MISSING["case"]
        return None
    case = deployment().cases.store.by_reference(reference.strip())
    if case is None:
        errors["case"] = "There is no case with this reference."
    return case


@bp.route("/principals/<name>/cases", methods=["POST"])
@signed_in(*ADMINS)
def add_member(name: str) -> Response:
    """Make the principal a member of a case in a role (``case.member_added``)."""
    person = _principal(name)
    values = form_values(("case", "role"))
    errors: dict[str, str] = {}
    case = _case_named(values["case"], errors)
    if values["role"] not in CASE_ROLES:
        errors["role"] = "Choose the principal's role in the case: lead or member."
    if case is not None and not errors:
        try:
            deployment().cases.add_member(case.id, name, values["role"], g.principal.actor)
        except FieldErrors as exc:
            errors = field_errors(exc.errors, {"role": "role"}, "case")
        except Conflict as exc:
            errors = {"case": sentence(str(exc))}
    if errors:
        return principal_page(
            person, errors={"member": errors}, values={"member": values}, status=422
        )
    return _done(name, "member_added")


@bp.route("/principals/<name>/cases/<case_id>/remove", methods=["POST"])
@signed_in(*ADMINS)
def remove_member(name: str, case_id: str) -> Response:
    """End the principal's membership of a case (``case.member_removed``)."""
    deployment().cases.remove_member(case_id, name, g.principal.actor)
    return _done(name, "member_removed")


def _grant_end(last_day: str, errors: dict[str, str]) -> datetime | None:
    """A grant given its last day runs to the end of that day, UTC."""
    if not last_day:
        errors["last_day"] = MISSING["last_day"]
        return None
    try:
        day = date.fromisoformat(last_day)
    except ValueError:
        errors["last_day"] = "Enter the last day as a date, such as 2027-03-31."
        return None
    return datetime.combine(day + timedelta(days=1), time(0), UTC)


@bp.route("/principals/<name>/grants", methods=["POST"])
@signed_in(*ADMINS)
def grant(name: str) -> Response:
    """Grant the court a case for a proceeding, until the end of a day (``case.court_granted``)."""
    person = _principal(name)
    values = form_values(("case", "proceeding", "last_day"))
    errors: dict[str, str] = {}
    case = _case_named(values["case"], errors)
    ends_at = _grant_end(values["last_day"], errors)
    checked = {"court": name, "proceeding": values["proceeding"]}
    if not values["proceeding"]:
        errors["proceeding"] = MISSING["proceeding"]
    else:
        errors.update(schema_errors(NewGrantSchema(partial=("ends_at",)), checked))
    if case is not None and ends_at is not None and not errors:
        try:
            deployment().cases.grant_court(
                case.id, {**checked, "ends_at": ends_at}, g.principal.actor
            )
        except FieldErrors as exc:
            errors = field_errors(exc.errors, {"ends_at": "last_day", "court": "case"}, "case")
    if errors:
        return principal_page(
            person, errors={"grant": errors}, values={"grant": values}, status=422
        )
    return _done(name, "granted")


@bp.route("/principals/<name>/grants/<case_id>/<grant_id>/end", methods=["POST"])
@signed_in(*ADMINS)
def end_grant(name: str, case_id: str, grant_id: str) -> Response:
    """End a court's grant now (``case.grant_ended``)."""
    deployment().cases.end_grant(case_id, grant_id, g.principal.actor)
    return _done(name, "grant_ended")
