"""Signing in to the pages: single-use sign-in links and browser sessions.

A person signs in once, with a bearer token or a sign-in link, and gets a session: a random
256-bit secret the browser keeps in a cookie. As with tokens, only its SHA-256 is stored, so
the database never holds a usable secret. A session ends after ``idle`` without a request, at
the latest ``absolute`` after sign-in, at sign-out, and at once when its principal is revoked
(every lookup reads the principal with the session and refuses a revoked one).

A sign-in link carries another such secret; it is valid ``link_ttl`` after it was made and
only once: redeeming it marks it used in the same statement that checks it, so two browsers
racing with one link get one session between them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from custody.events import Actor
from custody.evidence import require_role
from custody.principals import ADMINS, Principal, Principals, Unauthenticated

SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
LINK_TTL = timedelta(minutes=15)
# A session's last use is written at most this often, so that reading pages writes little.
TOUCH_EVERY = timedelta(seconds=60)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser: whose it is, when it began and when it was last used."""

    principal: Principal
    created_at: datetime
    last_seen_at: datetime


class SignInStore(Protocol):
    """Sessions and sign-in links, each keyed by the SHA-256 of its secret."""

    def cookie_secret(self) -> bytes:
        """The deployment's random secret that signs the browser's cookie."""

    def add_session(self, secret_hash: bytes, principal_id: str, at: datetime) -> None: ...

    def session(self, secret_hash: bytes) -> BrowserSession | None:
        """The session and its principal (revoked or not), or None."""

    def touch_session(self, secret_hash: bytes, at: datetime) -> None: ...

    def end_session(self, secret_hash: bytes) -> None: ...

    def end_sessions_before(self, created_before: datetime, seen_before: datetime) -> int:
        """Delete the sessions begun before ``created_before`` or idle since ``seen_before``."""

    def add_link(self, secret_hash: bytes, principal_id: str, expires_at: datetime) -> None: ...

    def redeem_link(self, secret_hash: bytes, at: datetime) -> Principal | None:
        """Mark the unexpired, unused link used and return its principal; None if there was
        no such link (unknown, expired or used already)."""


class SignIn:
    """Makes sign-in links, opens sessions from links or tokens, resumes and ends them."""

    def __init__(
        self,
        store: SignInStore,
        principals: Principals,
        clock: Callable[[], datetime],
        *,
        idle: timedelta = SESSION_IDLE,
        absolute: timedelta = SESSION_ABSOLUTE,
        link_ttl: timedelta = LINK_TTL,
    ) -> None:
        self.store = store
        self.principals = principals
        self.clock = clock
        self.idle = idle
        self.absolute = absolute
        self.link_ttl = link_ttl

    def make_link(self, name: str, by: Actor) -> tuple[Principal, str, datetime]:
        """A single-use sign-in secret for the active principal ``name``, and its expiry; only
        an admin makes one, as only an admin adds principals."""
        require_role(by.role, ADMINS, "make sign-in links")
        principal = self.principals.get(name)
        if not principal.active:
            raise Unauthenticated(f"{name!r} is revoked")
        secret = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.link_ttl
        self.store.add_link(secret_hash(secret), principal.id, expires_at)
        return principal, secret, expires_at

    def with_link(self, secret: str) -> tuple[Principal, str]:
        """Redeem a sign-in link: its principal and a new session's secret."""
        principal = self.store.redeem_link(secret_hash(secret), self.clock())
        if principal is None or not principal.active:
            raise Unauthenticated("this sign-in link is unknown, used already or expired")
        return principal, self._open(principal)

    def with_token(self, token: str) -> tuple[Principal, str]:
        """Sign in with a bearer token: its principal and a new session's secret."""
        principal = self.principals.authenticate(token)
        return principal, self._open(principal)

    def resume(self, secret: str) -> Principal:
        """The principal of a live session; Unauthenticated if it ended or never was."""
        digest = secret_hash(secret)
        session = self.store.session(digest)
        if session is None:
            raise Unauthenticated("no such session")
        now = self.clock()
        if (
            not session.principal.active
            or now - session.created_at >= self.absolute
            or now - session.last_seen_at >= self.idle
        ):
            self.store.end_session(digest)
            raise Unauthenticated("the session has ended")
        if now - session.last_seen_at >= TOUCH_EVERY:
            self.store.touch_session(digest, now)
        return session.principal

    def end(self, secret: str) -> None:
        """Sign out: the session ends now."""
        self.store.end_session(secret_hash(secret))

    def _open(self, principal: Principal) -> str:
        now = self.clock()
        # Sessions that ended by time are removed as new ones begin, so the table stays small.
        self.store.end_sessions_before(now - self.absolute, now - self.idle)
        secret = secrets.token_urlsafe(32)
        self.store.add_session(secret_hash(secret), principal.id, now)
        return secret
