"""The provider register over HTTP: admins add providers; admins and authorities read them.

``Providers.add`` checks every field (and refuses a second provider of the same name); the
schema here checks only that the body names the fields, as strings, and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from custody.errors import BadRequest, NotFound, well_formed_but_invalid
from custody.principals import ADMINS
from custody.providers import READERS, Providers
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.request_input import (
    NO_NUL,
    decode_name_cursor,
    encode_name_cursor,
    load_body,
    page,
    read_json_object,
)

blp = Blueprint("providers", __name__, url_prefix="/v1/providers", description="Service providers")
# As ``custody.providers.new_provider_id`` makes them; anything else names no provider.
_PROVIDER_ID = re.compile(r"prv_[0-9a-f]{16}")


def _providers() -> Providers:
    providers: Providers = current_app.extensions["custos"].providers
    return providers


class NewProviderSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=NO_NUL)
    jurisdiction = fields.String(
        required=True, validate=NO_NUL, metadata={"description": "where it is established"}
    )
    legal_representative = fields.String(required=True, validate=NO_NUL)
    contact = fields.String(required=True, validate=NO_NUL)
    notification_url = fields.String(
        allow_none=True,
        validate=NO_NUL,
        metadata={"description": "http(s) URL that receives signed custos/notice/v1 notes"},
    )
    time_zone = fields.String(
        validate=NO_NUL,
        metadata={"description": "IANA time zone of its establishment (default UTC)"},
    )
    country = fields.String(
        allow_none=True,
        validate=NO_NUL,
        metadata={"description": "ISO 3166-1 alpha-2: whose public holidays move deadlines"},
    )
    subdivision = fields.String(
        allow_none=True,
        validate=NO_NUL,
        metadata={"description": "ISO 3166-2 subdivision, where its holidays differ"},
    )
    languages = fields.List(
        fields.String(validate=NO_NUL),
        allow_none=True,
        metadata={"description": "BCP 47 tags of the languages it accepts orders in (EU Art 9)"},
    )


class ProviderSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    jurisdiction = fields.String(required=True)
    legal_representative = fields.String(required=True)
    contact = fields.String(required=True)
    notification_url = fields.String(required=True, allow_none=True)
    time_zone = fields.String(required=True)
    country = fields.String(required=True, allow_none=True)
    subdivision = fields.String(required=True, allow_none=True)
    languages = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)


class ProviderListQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class ProviderPageSchema(Schema):
    items = fields.List(fields.Nested(ProviderSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={"required": True, "content": {"application/json": {"schema": NewProviderSchema}}}
)
@blp.alt_response(
    201,
    schema=ProviderSchema,
    description="the provider registered",
    headers={"Location": {"schema": {"type": "string"}, "required": True}},
    success=True,
)
@problem_responses(blp, 400, 409, 422)
@bearer_auth(blp)
@requires(*ADMINS)
def add() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Register a provider (provider.registered); 409 if one of that name exists."""
    values = load_body(NewProviderSchema(), read_json_object())
    try:
        provider = _providers().add(values, g.principal.actor)
    except BadRequest as exc:
        # A field the register refuses (empty, too long, not an http(s) URL): the body is
        # well-formed, its value is not.
        raise well_formed_but_invalid(exc) from None
    location = url_for("providers.show", provider_id=provider.id)
    return provider.as_json(), 201, {"Location": location}


@blp.route("", methods=["GET"])
@requires(*READERS)  # before the arguments: a caller without the role learns nothing from them
@bearer_auth(blp)
@blp.arguments(ProviderListQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.alt_response(200, schema=ProviderPageSchema, description="a page of providers", success=True)
def list_providers(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """Providers by name; follow ``next_cursor`` for more."""
    found = _providers().list(limit + 1, after=decode_name_cursor(cursor))
    shown, next_cursor = page(found, limit, lambda p: p.name, encode=encode_name_cursor)
    return {"items": [p.as_json() for p in shown], "next_cursor": next_cursor}


@blp.route("/<provider_id>", methods=["GET"])
@blp.alt_response(200, schema=ProviderSchema, description="the provider", success=True)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*READERS)
def show(provider_id: str) -> dict[str, Any]:
    """One provider."""
    if not _PROVIDER_ID.fullmatch(provider_id):
        raise NotFound(f"no provider {provider_id}")
    return _providers().get(provider_id).as_json()
