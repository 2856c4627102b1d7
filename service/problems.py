"""RFC 9457 problem details: the one shape of every HTTP error Custos returns."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from flask_smorest import Api
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from custody.errors import (
    BadRequest,
    Conflict,
    CustosError,
    Forbidden,
    IntegrityError,
    Invalid,
    NotFound,
    StorageError,
    TooLarge,
)
from custody.principals import Unauthenticated

PROBLEM_TYPE = "https://custos.invalid/problems/"
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
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="custos"'
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _summary(messages: dict[str, Any]) -> str:
    """One line naming each invalid parameter, from marshmallow's ``{location: {field: [..]}}``."""
    parts = []
    for location, fields in messages.items():
        if not isinstance(fields, dict):
            fields = {location: fields}
        for name, errors in fields.items():
            text = " ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
            parts.append(text if name == "_schema" else f"{name}: {text}")
    return "; ".join(parts)


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with every HTTP error rendered as problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        status = error.code or 500
        extra: dict[str, Any] = {}
        messages = getattr(error, "data", {}).get("messages")
        detail = error.description if status != 500 else "internal error"
        if messages:
            extra["errors"] = messages
            detail = _summary(messages)
        response = problem(status, str(detail), **extra)
        for name, value in error.get_headers():
            if name.lower() == "allow":  # RFC 9110 section 15.5.6: a 405 lists the methods
                response.headers[name] = value
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
                if getattr(error, "errors", None) is not None:
                    extra["errors"] = getattr(error, "errors")  # noqa: B009
                return problem(status, str(error), **extra)
        app.logger.exception("unmapped error", exc_info=error)
        return problem(500, "internal error")

    app.register_error_handler(CustosError, handle)
