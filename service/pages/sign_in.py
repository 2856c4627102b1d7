"""Signing in and out: with a single-use sign-in link, or with a bearer token.

Sign-in failures count against the client's address exactly as the API's wrong tokens do
(``service.auth.FailedAuthentications``, one count for both), so neither is a way around
the other's limit.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from custody.principals import Principal, Unauthenticated
from custody.sign_in import SecondFactorMissing, SecondFactorNeeded
from service.auth import failed_authentications
from service.pages import sessions
from service.pages.errors import error_page

bp = Blueprint("sign_in", __name__)
PENDING = "second_factor"
PENDING_SECONDS = 300
"""How long after the first factor the code may come."""


def _client() -> str:
    return request.remote_addr or ""


def _waiting() -> Response | None:
    """429 while this address has failed too often."""
    wait = failed_authentications().retry_after(_client())
    if wait is None:
        return None
    response = error_page(
        429, f"Too many failed sign-ins from this address. Try again in {wait} seconds."
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _signed_in(principal: Principal, next_path: str | None) -> Response:
    target = sessions.safe_next(next_path) or url_for(sessions.home_endpoint(principal))
    return redirect(target, 303)  # type: ignore[return-value]


@bp.route("/")
def home() -> Response:
    """The desk of the signed-in person, or the sign-in page."""
    principal = sessions.current_principal()
    if principal is None:
        return redirect(url_for(".form"))  # type: ignore[return-value]
    return redirect(url_for(sessions.home_endpoint(principal)))  # type: ignore[return-value]


@bp.route("/sign-in", methods=["GET"])
def form() -> str:
    return render_template("sign_in.html", next=sessions.safe_next(request.args.get("next")))


@bp.route("/sign-in", methods=["POST"])
def with_token() -> Response:
    """Sign in with a bearer token typed or pasted into the form."""
    waiting = _waiting()
    if waiting is not None:
        return waiting
    token = request.form.get("token", "").strip()
    next_path = request.form.get("next")
    if not token:
        body = render_template(
            "sign_in.html", next=sessions.safe_next(next_path), error="Enter your access token."
        )
        return make_response(body, 400)
    try:
        principal, secret = sessions.sign_in_service().with_token(token)
    except SecondFactorNeeded as needed:
        return _ask_for_code(needed.principal, next_path)
    except SecondFactorMissing as missing:
        return _refused(str(missing), next_path)
    except Unauthenticated:
        failed_authentications().failed(_client())
        body = render_template(
            "sign_in.html",
            next=sessions.safe_next(next_path),
            error="That token is not valid: it is unknown or its principal was revoked.",
        )
        return make_response(body, 401)
    sessions.begin(secret)
    g.principal = principal
    return _signed_in(principal, next_path)


@bp.route("/sign-in/link/<secret>", methods=["GET"])
def link(secret: str) -> str:
    """A sign-in link opens a page with one button: a link checker or a mail scanner that
    fetches the link does not use it up, only the person who presses the button does."""
    return render_template("sign_in_link.html", secret=secret)


@bp.route("/sign-in/link", methods=["POST"])
def with_link() -> Response:
    waiting = _waiting()
    if waiting is not None:
        return waiting
    secret = request.form.get("secret", "")
    try:
        principal, session_secret = sessions.sign_in_service().with_link(secret)
    except SecondFactorNeeded as needed:
        return _ask_for_code(needed.principal, None)
    except SecondFactorMissing as missing:
        return _refused(str(missing), None)
    except Unauthenticated as exc:
        failed_authentications().failed(_client())
        body = render_template("sign_in.html", next=None, error=f"{str(exc).capitalize()}.")
        return make_response(body, 401)
    sessions.begin(session_secret)
    g.principal = principal
    return _signed_in(principal, None)


def _refused(reason: str, next_path: str | None) -> Response:
    """A right first factor that cannot be completed: the role's second factor is missing."""
    body = render_template(
        "sign_in.html",
        next=sessions.safe_next(next_path),
        error=f"{reason[:1].upper()}{reason[1:]}.",
    )
    return make_response(body, 403)


def _ask_for_code(principal: Principal, next_path: str | None) -> Response:
    """The first factor was right: remember whose it was (in the signed cookie, for a few
    minutes) and ask for the code."""
    session.clear()
    session[PENDING] = {
        "name": principal.name,
        "at": sessions.sign_in_service().clock().timestamp(),
        "next": sessions.safe_next(next_path),
    }
    return redirect(url_for(".second_factor_form"), 303)  # type: ignore[return-value]


def _pending() -> dict[str, object] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    at = pending.get("at")
    now = sessions.sign_in_service().clock().timestamp()
    if not isinstance(at, float | int) or not 0 <= now - at <= PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    return pending


@bp.route("/sign-in/second-factor", methods=["GET"])
def second_factor_form() -> Response | str:
    if _pending() is None:
        return redirect(url_for(".form"))  # type: ignore[return-value]
    return render_template("second_factor.html")


@bp.route("/sign-in/second-factor", methods=["POST"])
def with_second_factor() -> Response:
    waiting = _waiting()
    if waiting is not None:
        return waiting
    pending = _pending()
    if pending is None:
        return redirect(url_for(".form"), 303)  # type: ignore[return-value]
    code = request.form.get("code", "").replace(" ", "")
    try:
        principal, secret = sessions.sign_in_service().with_second_factor(
            str(pending["name"]), code
        )
    except Unauthenticated as exc:
        failed_authentications().failed(_client())
        body = render_template("second_factor.html", error=f"{str(exc).capitalize()}.")
        return make_response(body, 401)
    next_path = pending.get("next")
    sessions.begin(secret)
    g.principal = principal
    return _signed_in(principal, next_path if isinstance(next_path, str) else None)


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    sessions.end()
    return redirect(url_for(".form", signed_out=1), 303)  # type: ignore[return-value]


@bp.route("/desk")
@sessions.signed_in()
def signed_in() -> str:
    """For the roles whose desks are still to come: who is signed in, and what is here."""
    return render_template("desk.html")
