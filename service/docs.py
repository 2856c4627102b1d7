"""The API's documentation: what views declare beyond their schemas (the bearer token, their
problem responses), and the docs page's Swagger UI files, served by this app so that the page
works on a machine with no network."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from importlib.resources import files
from typing import Any, TypeVar

from apispec import BasePlugin
from flask import Blueprint, Flask, Response, send_from_directory
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint

from service.problems import PROBLEM_JSON, ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])

BEARER = "bearer"
# flask-smorest renders the page at OPENAPI_SWAGGER_UI_PATH and loads Swagger UI from here.
SWAGGER_UI_URL = "/v1/docs/"
# flask-swagger-ui ships Swagger UI 5 (OpenAPI 3.1); only its files are used, not its views.
_SWAGGER_UI_FILES = str(files("flask_swagger_ui") / "dist")

blp = Blueprint("docs", __name__, url_prefix=SWAGGER_UI_URL.rstrip("/"))


@blp.route("/<path:filename>")
def swagger_ui_file(filename: str) -> Response:
    """One of Swagger UI's scripts, styles or images."""
    return send_from_directory(_SWAGGER_UI_FILES, filename, max_age=86400)


def register_docs(app: Flask, api: Api) -> None:
    """Serve Swagger UI's files, and name the bearer-token scheme that views refer to."""
    api.spec.components.security_scheme(
        BEARER,
        {"type": "http", "scheme": "bearer", "description": "a principal's token"},
    )
    app.register_blueprint(blp)


class ResponsesByStatus(BasePlugin):
    """List each operation's responses by status, successes first and ``default`` last, not
    in the order that its decorators happen to add them; an operation that takes a body
    also lists 400 and 413."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        for operation in (operations or {}).values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if responses and operation.get("requestBody"):
                # Every body is bounded (service.body_limit); any malformed one is 400.
                for status in (HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE):
                    responses.setdefault(str(int(status)), status.name)
            if responses:
                order = sorted(responses, key=lambda status: (status == "default", str(status)))
                operation["responses"] = {status: responses[status] for status in order}


def problem_responses(blp: ApiBlueprint, *statuses: int) -> Callable[[F], F]:
    """Document that a view answers these statuses with a problem (``service.problems``)."""

    def decorate(view: F) -> F:
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate


def bearer_auth(blp: ApiBlueprint) -> Callable[[F], F]:
    """Document a view behind ``service.auth.requires``: it takes a bearer token, and answers
    401 without a valid one, 403 to a role that may not call it, and 429 to a client address
    that failed to authenticate too often in the last minute."""

    def decorate(view: F) -> F:
        view = problem_responses(blp, 401, 403)(view)
        view = blp.alt_response(
            429,
            schema=ProblemSchema,
            content_type=PROBLEM_JSON,
            description="Too many failed authentications from this address",
            headers={
                "Retry-After": {
                    "schema": {"type": "string"},
                    "required": True,
                    "description": "seconds to wait before trying a token again",
                }
            },
        )(view)
        documented: F = blp.doc(security=[{BEARER: []}])(view)
        return documented

    return decorate
