"""The admin's provider register: the providers by name, and a form to register one.

``Providers.add`` checks every field at once (the notification URL under the outgoing-request
policy, the time zone, country and subdivision its deadlines end in) and records
``provider.registered``; its refusals are shown beside the fields they are about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for

from custody.errors import Conflict, FieldErrors
from custody.principals import ADMINS
from service.pages import display
from service.pages.admin import (
    field_errors,
    form_values,
    in_form_order,
    schema_errors,
    sentence,
)
from service.pages.sessions import deployment, signed_in
from service.providers import NewProviderSchema
from service.request_input import decode_name_cursor, encode_name_cursor, page

bp = Blueprint("admin_providers", __name__, url_prefix="/admin")
PAGE_SIZE = 50
TEXT_FIELDS = ("name", "jurisdiction", "legal_representative", "contact")
PLACE_FIELDS = ("time_zone", "country", "subdivision")
# In the order the form asks them.
FIELDS = (*TEXT_FIELDS, *PLACE_FIELDS, "languages", "notification_url")
_LANGUAGE_SEPARATORS = re.compile(r"[,\s]+")


@bp.route("/providers")
@signed_in(*ADMINS)
def providers() -> str:
    """The provider register, by name, paged."""
    found = deployment().providers.list(
        PAGE_SIZE + 1, after=decode_name_cursor(request.args.get("cursor"))
    )
    shown, next_cursor = page(found, PAGE_SIZE, lambda p: p.name, encode=encode_name_cursor)
    return render_template(
        "admin/providers.html",
        providers=shown,
        next_cursor=next_cursor,
        first_page=request.args.get("cursor") is None,
        added=request.args.get("added"),
        local_time=display.local_time,
    )


def _form(values: Mapping[str, str], errors: Mapping[str, str], status: int = 200) -> Response:
    body = render_template("admin/new_provider.html", values=values, errors=errors)
    return make_response(body, status)


@bp.route("/providers/new")
@signed_in(*ADMINS)
def new_provider() -> Response:
    return _form({}, {})


@bp.route("/providers", methods=["POST"])
@signed_in(*ADMINS)
def add_provider() -> Response:
    """Register a provider (``provider.registered``)."""
    values = form_values(FIELDS)
    fields: dict[str, object] = {name: values[name] for name in TEXT_FIELDS}
    fields.update(
        {name: values[name] for name in (*PLACE_FIELDS, "notification_url") if values[name].strip()}
    )
    languages = [tag for tag in _LANGUAGE_SEPARATORS.split(values["languages"]) if tag]
    if languages:
        fields["languages"] = languages
    errors = schema_errors(NewProviderSchema(), fields)
    if not errors:
        try:
            provider = deployment().providers.add(fields, g.principal.actor)
        except FieldErrors as exc:
            errors = field_errors(exc.errors, {name: name for name in FIELDS}, "name")
        except Conflict as exc:
            errors = {"name": sentence(str(exc))}
    if errors:
        return _form(values, in_form_order(errors, FIELDS), 422)
    return redirect(url_for(".providers", added=provider.name), 303)  # type: ignore[return-value]
