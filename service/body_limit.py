"""A bound on every request body that is not an upload, checked before anything reads it.

A view that streams an upload (evidence content, a provider's response) is marked with
``@streams_upload``: its body is bounded by ``max_upload_bytes`` where it is read. Every other
request may send at most ``max_body_bytes`` (``CUSTOS_MAX_BODY_BYTES``, 1 MiB by default):
a larger ``Content-Length`` is 413 before the view runs, and a chunked body is read (at most
one byte beyond the bound) before the view runs, and 413 if it is larger. Without the bound, a body
of 30 MiB of empty JSON objects took a worker from 77 to 910 MiB, which it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from storage.deployment import Deployment

F = TypeVar("F", bound=Callable[..., object])
_UPLOAD = "custos_streams_upload"


def streams_upload(view: F) -> F:
    """Mark a view that streams its body as an upload (bounded where it reads it). The mark
    survives decorators that use ``functools.wraps``, as flask-smorest's do."""
    setattr(view, _UPLOAD, True)
    return view


def is_upload_view(view: object) -> bool:
    return bool(getattr(view, _UPLOAD, False))


def _bound_body() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and is_upload_view(view):
        return
    deployment: Deployment = current_app.extensions["custos"]
    limit = deployment.config.max_body_bytes
    too_large = RequestEntityTooLarge(f"a request body may be at most {limit} bytes")
    if request.content_length is not None:
        if request.content_length > limit:
            raise too_large
        request.max_content_length = limit
        return
    # A chunked body: read it now, at most one byte beyond the bound (werkzeug's bounded
    # stream ends quietly at its limit, so the extra byte is what tells a larger body).
    request.max_content_length = limit + 1
    if len(request.get_data(cache=True)) > limit:
        raise too_large


def init_app(app: Flask) -> None:
    """Bound every request body that is not an upload's, before any other hook reads it."""
    app.before_request(_bound_body)
