"""Who is signed in: the session cookie, checked against the stored session on each request.

The cookie (Flask's, signed with the deployment's cookie secret) holds the session's secret
and the CSRF token's seed; the session itself, its times and its principal are on the
server, so signing out, a timeout or a revocation ends it whatever the browser keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for

from custody.principals import Principal, Unauthenticated
from custody.sign_in import SignIn
from storage.deployment import Deployment

F = TypeVar("F", bound=Callable[..., Any])
SESSION_SECRET = "sid"
HOMES = {
    "provider": "pages.provider.inbox",
    "court": "pages.court.items",
    "admin": "pages.admin.principals",
    "examiner": "pages.examiner.cases",
    "authority": "pages.authority.board",
    "approver": "pages.authority.approvals",
    "validator": "pages.authority.approvals",
}


def deployment() -> Deployment:
    """The deployment the app serves, as every page reads it."""
    found: Deployment = current_app.extensions["custos"]
    return found


def sign_in_service() -> SignIn:
    found: SignIn = current_app.extensions["custos"].sign_in
    return found


def begin(secret: str) -> None:
    """Start the browser's session: whatever it held before (a CSRF seed, an old session)
    is dropped, so a session id or token planted before sign-in is worthless after it."""
    session.clear()
    session[SESSION_SECRET] = secret


def end() -> None:
    secret = session.get(SESSION_SECRET)
    if isinstance(secret, str):
        sign_in_service().end(secret)
    session.clear()


def current_principal() -> Principal | None:
    """The principal of this browser's live session, or None (an ended one is forgotten)."""
    if "principal" in g:
        found: Principal | None = g.principal
        return found
    secret = session.get(SESSION_SECRET)
    principal = None
    if isinstance(secret, str):
        try:
            principal = sign_in_service().resume(secret)
        except Unauthenticated:
            session.clear()
    g.principal = principal
    return principal


def home_endpoint(principal: Principal) -> str:
    return HOMES.get(principal.role, "pages.sign_in.signed_in")


def safe_next(target: str | None) -> str | None:
    """A path on this site to return to after sign-in; anything else is ignored."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return None
    return target


def signed_in(*roles: str) -> Callable[[F], F]:
    """Require a live session (else to sign-in, and back here after) of one of ``roles``
    (403 for another role)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                back = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("pages.sign_in.form", next=safe_next(back)))
            if roles and principal.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
