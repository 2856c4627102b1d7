"""Cases over HTTP: opening and closing them, their members and the courts' grants.

``custody.cases`` decides everything: who may open a case (examiners, authorities), who
manages it (its leads, admins), who may know of it (404 for anyone else). The schemas check
the bodies' types, every field at fault named at once (422).
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Response, current_app, g, url_for
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from custody.cases import (
    CASE_ADMINS,
    CASE_OPENERS,
    CASE_ROLES,
    GRANTEE_ROLES,
    MEMBER_ROLES,
    Cases,
)
from custody.errors import BadRequest
from service.auth import requires
from service.docs import bearer_auth, problem_responses
from service.request_input import NO_NUL, load_body, page, read_json_object

blp = Blueprint("cases", __name__, url_prefix="/v1/cases", description="Cases")

# Everyone who may know of a case: its members, its courts, admins.
KNOWERS = tuple(dict.fromkeys((*MEMBER_ROLES, *GRANTEE_ROLES, *CASE_ADMINS)))
MANAGERS = tuple(dict.fromkeys((*MEMBER_ROLES, *CASE_ADMINS)))
_Text = [validate.Length(min=1, max=200), NO_NUL]
_LOCATION = {"Location": {"schema": {"type": "string"}, "required": True}}


def _cases() -> Cases:
    cases: Cases = current_app.extensions["custos"].cases
    return cases


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class NewCaseSchema(_Strict):
    reference = fields.String(
        required=True,
        validate=_Text,
        metadata={"description": "what items and orders name the case by (their `case`)"},
    )
    title = fields.String(
        required=True,
        validate=_Text,
        metadata={"description": "kept with the case; its event commits to it"},
    )
    authority = fields.String(
        required=True, validate=_Text, metadata={"description": "the authority it belongs to"}
    )


class NewMemberSchema(_Strict):
    principal = fields.String(
        required=True, validate=_Text, metadata={"description": "the principal's name"}
    )
    role = fields.String(load_default="member", validate=validate.OneOf(CASE_ROLES))


class NewGrantSchema(_Strict):
    court = fields.String(
        required=True, validate=_Text, metadata={"description": "the court principal's name"}
    )
    proceeding = fields.String(
        required=True, validate=_Text, metadata={"description": "the proceeding it is for"}
    )
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "when it ends"})
    exhibits = fields.List(
        fields.String(validate=validate.Regexp(r"^ev_[0-9a-f]{16}$")),
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "the items granted; the whole case when left out"},
    )


class ListQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String()


class MemberSchema(Schema):
    principal = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(CASE_ROLES))
    added_at = fields.DateTime(required=True)


class GrantSchema(Schema):
    id = fields.String(required=True)
    court = fields.String(required=True)
    proceeding = fields.String(required=True)
    ends_at = fields.DateTime(required=True)
    granted_at = fields.DateTime(required=True)
    exhibits = fields.List(fields.String(), required=True, allow_none=True)


class CaseSchema(Schema):
    id = fields.String(required=True)
    reference = fields.String(required=True)
    title = fields.String(required=True)
    authority = fields.String(required=True)
    opened_at = fields.DateTime(required=True)
    opened_by = fields.String(required=True)
    closed_at = fields.DateTime(required=True, allow_none=True)


class CaseDetailSchema(CaseSchema):
    members = fields.List(fields.Nested(MemberSchema), required=True)
    grants = fields.List(fields.Nested(GrantSchema), required=True)


class CasePageSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


def _body(schema: type[Schema]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _detail(case_id: str) -> dict[str, Any]:
    cases = _cases()
    return cases.view(cases.get(case_id, g.principal.actor))


@blp.route("", methods=["POST"])
@blp.doc(requestBody=_body(NewCaseSchema))
@blp.alt_response(
    201, schema=CaseDetailSchema, description="the case", headers=_LOCATION, success=True
)
@problem_responses(blp, 400, 409, 422)
@bearer_auth(blp)
@requires(*CASE_OPENERS)
def open_case() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Open a case (case.opened); its opener is its first lead (case.member_added)."""
    values = load_body(NewCaseSchema(), read_json_object())
    case, _ = _cases().open(values, g.principal.actor)
    return _detail(case.id), 201, {"Location": url_for("cases.show", case_id=case.id)}


@blp.route("", methods=["GET"])
@blp.arguments(ListQuery, location="query", error_status_code=400, as_kwargs=True)
@blp.alt_response(200, schema=CasePageSchema, description="a page of cases", success=True)
@bearer_auth(blp)
@requires(*KNOWERS)
def list_cases(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """The caller's cases (every case, for an admin), by reference."""
    after = None
    if cursor is not None:
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode("utf-8")
        except ValueError:
            raise BadRequest("malformed cursor") from None
    found = _cases().list(g.principal.actor, limit + 1, after)
    shown, next_cursor = page(
        found,
        limit,
        lambda c: c.reference,
        lambda ref: base64.urlsafe_b64encode(ref.encode("utf-8")).decode(),
    )
    return {"items": [c.as_json() for c in shown], "next_cursor": next_cursor}


@blp.route("/<case_id>", methods=["GET"])
@blp.alt_response(200, schema=CaseDetailSchema, description="the case", success=True)
@problem_responses(blp, 404)
@bearer_auth(blp)
@requires(*KNOWERS)
def show(case_id: str) -> dict[str, Any]:
    """A case, its members and its grants."""
    return _detail(case_id)


@blp.route("/<case_id>/members", methods=["POST"])
@blp.doc(requestBody=_body(NewMemberSchema))
@blp.alt_response(200, schema=CaseDetailSchema, description="the case", success=True)
@problem_responses(blp, 400, 403, 404, 409, 422)
@bearer_auth(blp)
@requires(*MANAGERS)
def add_member(case_id: str) -> dict[str, Any]:
    """Add a member (case.member_added): a lead of the case or an admin adds."""
    values = load_body(NewMemberSchema(), read_json_object())
    _cases().add_member(case_id, values["principal"], values["role"], g.principal.actor)
    return _detail(case_id)


@blp.route("/<case_id>/members/<name>", methods=["DELETE"])
@blp.response(204, description="the member removed")
@problem_responses(blp, 403, 404)
@bearer_auth(blp)
@requires(*MANAGERS)
def remove_member(case_id: str, name: str) -> Response:
    """Remove a member (case.member_removed): its next request for the case's items or
    orders is answered 404."""
    _cases().remove_member(case_id, name, g.principal.actor)
    return Response(status=204)


@blp.route("/<case_id>/grants", methods=["POST"])
@blp.doc(requestBody=_body(NewGrantSchema))
@blp.alt_response(201, schema=GrantSchema, description="the grant", success=True)
@problem_responses(blp, 400, 404, 422)
@bearer_auth(blp)
@requires(*MANAGERS)
def grant(case_id: str) -> tuple[dict[str, Any], int]:
    """Grant a court the case, or named exhibits of it, for a proceeding until an end
    (case.court_granted): a member of the case or an admin grants."""
    values = load_body(NewGrantSchema(), read_json_object())
    return _cases().grant_court(case_id, values, g.principal.actor).as_json(), 201


@blp.route("/<case_id>/grants/<grant_id>", methods=["DELETE"])
@blp.alt_response(200, schema=CaseDetailSchema, description="the case", success=True)
@problem_responses(blp, 404, 409)
@bearer_auth(blp)
@requires(*MANAGERS)
def end_grant(case_id: str, grant_id: str) -> dict[str, Any]:
    """End a court's grant now (case.grant_ended)."""
    _cases().end_grant(case_id, grant_id, g.principal.actor)
    return _detail(case_id)


@blp.route("/<case_id>/close", methods=["POST"])
@blp.alt_response(200, schema=CaseDetailSchema, description="the case", success=True)
@problem_responses(blp, 403, 404, 409)
@bearer_auth(blp)
@requires(*MANAGERS)
def close(case_id: str) -> dict[str, Any]:
    """Close a case (case.closed): it takes no new items or orders; what it holds stays."""
    _cases().close(case_id, g.principal.actor)
    return _detail(case_id)
