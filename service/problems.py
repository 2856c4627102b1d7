"""RFC 9457 problem details: the one shape of every HTTP error Custos returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json
from flask_smorest import Api
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from custody.errors import (
    BadRequest,
    Conflict,
    CustosError,
    FieldErrors,
    Forbidden,
    IntegrityError,
    Invalid,
    NotFound,
    StorageError,
    TooLarge,
)
from custody.principals import Unauthenticated

PROBLEM_TYPE = "https://custos.invalid/problems/"
PROBLEM_JSON = "application/problem+json"
_BY_ERROR: list[tuple[type[CustosError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (BadRequest, 400),
    (TooLarge, 413),
    (Invalid, 422),
    (StorageError, 503),
    (IntegrityError, 500),
]


def status_of(error: CustosError) -> int:
    """The HTTP status of one of the project's own errors (500 for an unmapped one)."""
    return next((status for kind, status in _BY_ERROR if isinstance(error, kind)), 500)


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> Response:
    """A problem+json response."""
    title = title or HTTP_STATUS_CODES.get(status, "Error")
    body = {
        "type": PROBLEM_TYPE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="custos"'
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def field_errors(messages: Any, where: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested ``{field: [reason, ...]}`` as ``(field, reason)`` pairs, one per
    reason, a nested field named by its dotted path (``acquisition.tool``); what concerns the
    whole object is named by its path, or ``body`` at the top."""
    if isinstance(messages, dict):
        pairs = []
        for name, inner in messages.items():
            path = where if name == "_schema" else f"{where}.{name}" if where else str(name)
            pairs += field_errors(inner, path)
        return pairs
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(where or "body", m) for m in messages]
    if isinstance(messages, list):
        return [pair for m in messages for pair in field_errors(m, where)]
    return [(where or "body", str(messages))]


def errors_json(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The ``errors`` member of a problem: each invalid field, and why."""
    return [{"field": name, "reason": reason} for name, reason in pairs]


def _summary(pairs: list[tuple[str, str]]) -> str:
    """One line naming each invalid parameter."""
    return "; ".join(f"{name}: {reason}" for name, reason in pairs)


class FieldErrorSchema(Schema):
    field = fields.String(required=True, metadata={"description": "the field, as a dotted path"})
    reason = fields.String(required=True, metadata={"description": "why it is invalid"})


class ProblemSchema(Schema):
    """RFC 9457 problem details: the body of every error response."""

    class Meta:
        # RFC 9457 section 3.2: a problem type may add members of its own.
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"format": "uri"})
    title = fields.String(required=True, metadata={"description": "a summary of the type"})
    status = fields.Integer(required=True)
    detail = fields.String(required=True, metadata={"description": "what went wrong, for a person"})
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        metadata={"description": "each invalid field, and why, all at once (400, 422)"},
    )
    allowed_actions = fields.List(
        fields.String(), metadata={"description": "what the current state allows instead (409)"}
    )


# Headers that ``problem`` adds to a status, as the OpenAPI document shows them.
_PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    405: {"Allow": {"schema": {"type": "string"}, "description": "the methods allowed"}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
}


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with every HTTP error rendered, and documented, as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        """Name a problem+json response for each error status, as flask-smorest names its own
        (``NOT_FOUND``, ...), so that ``@blp.arguments`` and ``alt_response`` refer to these."""
        for status in HTTPStatus:
            if status >= 400:
                self.spec.components.response(
                    status.name, _problem_response(status.phrase, status), lazy=True
                )
        self.spec.components.response(
            self.DEFAULT_ERROR_RESPONSE_NAME,
            _problem_response("Any other error, such as 503 while storage is unavailable"),
            lazy=True,
        )

    def handle_http_exception(self, error: HTTPException) -> Response:
        status = error.code or 500
        extra: dict[str, Any] = {}
        messages = getattr(error, "data", {}).get("messages")
        detail = error.description if status != 500 else "internal error"
        if messages:
            # webargs files each message under its location ({"query": {"from": [...]}});
            # the field's own name is what a caller can act on.
            pairs = [
                pair
                for inner in messages.values()
                for pair in field_errors(inner if isinstance(inner, dict) else {"body": inner})
            ]
            extra["errors"] = errors_json(pairs)
            detail = _summary(pairs)
        response = problem(status, str(detail), **extra)
        for name, value in error.get_headers():
            if name.lower() == "allow":  # RFC 9110 section 15.5.6: a 405 lists the methods
                response.headers[name] = value
        return response


def _problem_response(description: str, status: int | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": ProblemSchema}},
    }
    if status in _PROBLEM_HEADERS:
        response["headers"] = _PROBLEM_HEADERS[status]
    return response


def register_problem_handlers(app: Flask) -> None:
    """Map the project's own exceptions to their HTTP status."""

    def handle(error: CustosError) -> Response:
        for kind, status in _BY_ERROR:
            if isinstance(error, kind):
                if status == 503:
                    # The message names database or store internals: log it, do not send it.
                    app.logger.error("storage unavailable: %s", error)
                    return problem(status, "storage is unavailable; try again shortly")
                extra: dict[str, Any] = {}
                if isinstance(error, Conflict) and error.allowed_actions is not None:
                    extra["allowed_actions"] = error.allowed_actions
                if isinstance(error, FieldErrors):
                    extra["errors"] = errors_json(error.errors)
                return problem(status, str(error), **extra)
        app.logger.exception("unmapped error", exc_info=error)
        return problem(500, "internal error")

    app.register_error_handler(CustosError, handle)
