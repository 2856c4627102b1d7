"""Principals over HTTP: admins add them (with an e-mail address for alerts) and list them.

The schema checks every field at once (422 naming each); ``Principals.add`` then checks what
depends on the deployment (the provider exists, the name is free: 409).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from custody.addresses import is_email_address
from custody.errors import BadRequest, Invalid, NotFound
from custody.events import format_time
from custody.principals import ADMINS, ROLES, Principal, Principals, check_display_name
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.request_input import NO_NUL, load_body, read_json_object

blp = Blueprint("principals", __name__, url_prefix="/v1/principals", description="Principals")


def _principals() -> Principals:
    principals: Principals = current_app.extensions["custos"].principals
    return principals


def _email(value: str) -> None:
    if not is_email_address(value):
        raise ValidationError("a plain address, local@domain, of 254 characters or fewer")


def _display_name(value: str) -> None:
    try:
        check_display_name(value)
    except BadRequest as exc:
        raise ValidationError(str(exc)) from None


class NewPrincipalSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True,
        validate=validate.Regexp(
            r"\A[a-z0-9][a-z0-9._-]{0,63}\Z",
            error="1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
        ),
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    provider = fields.String(
        allow_none=True,
        validate=NO_NUL,
        metadata={"description": "the provider's id (role provider only)"},
    )
    email = fields.String(
        allow_none=True,
        validate=_email,
        metadata={"description": "where the principal gets e-mail alerts"},
    )
    display_name = fields.String(
        allow_none=True,
        validate=_display_name,
        metadata={"description": "how people read the principal; principal.created commits to it"},
    )


class DisplayNameSchema(Schema):
    class Meta:
        unknown = RAISE

    display_name = fields.String(required=True, validate=_display_name)


class PrincipalSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    display_name = fields.String(required=True, allow_none=True)
    role = fields.String(required=True)
    provider = fields.String(required=True, allow_none=True)
    email = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)


class NewPrincipalAnswerSchema(PrincipalSchema):
    token = fields.String(required=True, metadata={"description": "shown once, never again"})


class PrincipalListSchema(Schema):
    items = fields.List(fields.Nested(PrincipalSchema), required=True)


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "id": principal.id,
        "name": principal.name,
        "display_name": principal.display_name,
        "role": principal.role,
        "provider": principal.provider_id,
        "email": principal.email,
        "created_at": format_time(principal.created_at),
        "revoked_at": None if principal.revoked_at is None else format_time(principal.revoked_at),
    }


@blp.route("", methods=["POST"])
@blp.doc(
    requestBody={"required": True, "content": {"application/json": {"schema": NewPrincipalSchema}}}
)
@blp.alt_response(
    201, schema=NewPrincipalAnswerSchema, description="the principal and its token", success=True
)
@problem_responses(blp, 400, 409, 422)
@bearer_auth(blp)
@requires(*ADMINS)
def add() -> tuple[dict[str, Any], int]:
    """Add a principal (principal.created); its bearer token is in this answer only."""
    values = load_body(NewPrincipalSchema(), read_json_object())
    try:
        principal, token = _principals().add(
            values["name"],
            values["role"],
            g.principal.actor,
            values.get("provider"),
            values.get("email"),
            display_name=values.get("display_name"),
        )
    except (BadRequest, NotFound) as exc:
        # A provider binding the role does not allow, or a provider that does not exist:
        # the body is well-formed, its values are not.
        raise Invalid(str(exc)) from None
    return {**principal_json(principal), "token": token}, 201


@blp.route("", methods=["GET"])
@blp.alt_response(200, schema=PrincipalListSchema, description="every principal", success=True)
@bearer_auth(blp)
@requires(*ADMINS)
def list_principals() -> dict[str, Any]:
    """Every principal, active and revoked, oldest first."""
    return {"items": [principal_json(p) for p in _principals().list()]}


@blp.route("/<name>/display-name", methods=["PUT"])
@blp.doc(
    requestBody={"required": True, "content": {"application/json": {"schema": DisplayNameSchema}}}
)
@blp.alt_response(200, schema=PrincipalSchema, description="the principal, named", success=True)
@problem_responses(blp, 400, 404, 422)
@bearer_auth(blp)
@requires(*ADMINS)
def name(name: str) -> dict[str, Any]:
    """Give a principal a new display name (principal.named: the ledger records a salted
    commitment to it, never the name)."""
    values = load_body(DisplayNameSchema(), read_json_object())
    return principal_json(_principals().name(name, values["display_name"], g.principal.actor))
