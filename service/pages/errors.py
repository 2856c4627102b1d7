"""Errors on the pages: the same statuses as the API's problems, as pages for people."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, current_app, make_response, redirect, render_template, url_for
from flask_wtf.csrf import CSRFError
from marshmallow import Schema

from custody.errors import Conflict, CustosError, StorageError
from custody.principals import Unauthenticated
from service.problems import status_of

TITLES = {
    400: "The request cannot be carried out",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    422: "Please check what you entered",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Try again shortly",
}


def error_page(status: int, detail: str) -> Response:
    body = render_template(
        "error.html", status=status, title=TITLES.get(status, "Error"), detail=detail
    )
    return make_response(body, status)


def csrf_refused(error: CSRFError) -> Response:
    """A form sent without this session's token: refused, nothing changed."""
    return error_page(
        403,
        "The form was not sent from this session's page (its security token is missing or "
        "stale). Go back, reload the page and try again.",
    )


def domain_error(error: CustosError) -> Response:
    if isinstance(error, Unauthenticated):
        return redirect(url_for("pages.sign_in.form"))  # type: ignore[return-value]
    status = status_of(error)
    if isinstance(error, StorageError):
        current_app.logger.error("storage unavailable: %s", error)
        return error_page(503, "Storage is unavailable; try again shortly.")
    if status == 500:
        current_app.logger.exception("unmapped error", exc_info=error)
        return error_page(500, "Internal error.")
    detail = str(error)
    if isinstance(error, Conflict) and error.allowed_actions is not None:
        allowed = ", ".join(a.replace("_", " ") for a in error.allowed_actions)
        detail += f". What is possible now: {allowed or 'nothing'}."
    return error_page(status, detail)


def form_errors(schema: Schema, values: Mapping[str, str]) -> dict[str, str]:
    """Every field's error at once, as the API's schema finds them."""
    found = schema.validate(values)
    return {
        name: " ".join(messages) if isinstance(messages, list) else str(messages)
        for name, messages in found.items()
    }
