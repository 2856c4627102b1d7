"""The desks: server-rendered pages for people, in the same app as the API.

Pages are Jinja2 templates over the same domain calls as the API, so the rules, the ledger
events and the errors are the same. They work without JavaScript; one small script of our
own improves uploads. A person signs in once and is known by a session cookie
(``service.pages.sessions``); pages never read a bearer token, and the API under ``/v1``
never reads the cookie. Every POST carries a CSRF token (Flask-WTF), checked before the view
runs, and every page is sent with a strict Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from custody.errors import CustosError
from service.pages import (
    admin,
    admin_providers,
    authority,
    court,
    errors,
    examiner,
    examiner_acts,
    examiner_intake,
    provider,
    sessions,
    sign_in,
    verify,
)
from service.pages.provider import STREAMED

HERE = Path(__file__).resolve().parent.parent
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
csrf = CSRFProtect()

pages = Blueprint(
    "pages",
    __name__,
    template_folder=str(HERE / "templates"),
    static_folder=str(HERE / "static"),
    static_url_path="/assets",
)


@pages.before_request
def check_csrf() -> None:
    """A POST (or PUT) without this session's CSRF token is refused before its view runs."""
    streamed = (*STREAMED, *examiner_intake.STREAMED)
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in streamed:
        csrf.protect()


@pages.after_request
def secure_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@pages.context_processor
def signed_in_principal() -> dict[str, Any]:
    return {"principal": sessions.current_principal()}


pages.register_error_handler(CSRFError, errors.csrf_refused)
pages.register_error_handler(CustosError, errors.domain_error)
pages.register_blueprint(sign_in.bp)
pages.register_blueprint(provider.bp)
pages.register_blueprint(court.bp)
pages.register_blueprint(verify.bp)
pages.register_blueprint(admin.bp)
pages.register_blueprint(admin_providers.bp)
pages.register_blueprint(examiner.bp)
pages.register_blueprint(examiner_acts.bp)
pages.register_blueprint(examiner_intake.bp)
pages.register_blueprint(authority.bp)


def init_app(app: Flask) -> None:
    """Register the pages: the cookie's settings and secret, CSRF protection, the routes."""
    deployment = app.extensions["custos"]
    app.secret_key = deployment.sign_in.store.cookie_secret()
    public_url = deployment.config.public_url
    app.config.update(
        SESSION_COOKIE_NAME="custos_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Behind TLS (the configured public URL is https) the browser sends it over TLS only.
        SESSION_COOKIE_SECURE=public_url.startswith("https://"),
        # The session's lifetime is kept on the server; the cookie ends with the browser.
        SESSION_REFRESH_EACH_REQUEST=False,
        # Only the pages' blueprint checks tokens (``check_csrf``); the API takes none.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A form's token lives as long as the session it was made for.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=public_url.startswith("https://"),
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )
    csrf.init_app(app)
    app.register_blueprint(pages)
