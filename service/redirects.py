"""Redirects that werkzeug's router answers (``//v1/log/checkpoint`` to ``/v1/log/checkpoint``,
a missing trailing slash) are relative: their ``Location`` is never built from the request's
``Host`` header, which a client chooses (``Location: http://evil.example/...``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Flask, request
from werkzeug.routing import RequestRedirect


def relative_location(url: str) -> str:
    """The path and query of ``url``, with one leading slash (``//host/x`` would be a
    network-path reference, RFC 3986 section 4.2, leading to another host)."""
    parts = urlsplit(url)
    return urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, ""))


def _relative_redirect() -> None:
    redirect = request.routing_exception
    if isinstance(redirect, RequestRedirect):
        request.routing_exception = RequestRedirect(relative_location(redirect.new_url))


def init_app(app: Flask) -> None:
    """Make the router's redirects relative, before any view could raise them."""
    app.before_request_funcs.setdefault(None, []).insert(0, _relative_redirect)
