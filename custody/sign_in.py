"""Signing in to the pages: single-use sign-in links and browser sessions.

A person signs in once, with a bearer token or a sign-in link, and gets a session: a random
256-bit secret the browser keeps in a cookie. As with tokens, only its SHA-256 is stored, so
the database never holds a usable secret. A session ends after ``idle`` without a request, at
the latest ``absolute`` after sign-in, at sign-out, and at once when its principal is revoked
(every lookup reads the principal with the session and refuses a revoked one).

A deployment may require a second factor of some roles: a TOTP code (RFC 6238, 30-second
steps, the step before and after accepted for clock drift), each code good once. Then the
first factor (token or link) does not open a session; it raises ``SecondFactorNeeded``, and
only ``with_second_factor`` does.

A sign-in link carries another such secret; it is valid ``link_ttl`` after it was made and
only once: redeeming it marks it used in the same statement that checks it, so two browsers
racing with one link get one session between them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import pyotp

from custody.errors import CustosError
from custody.events import Actor
from custody.evidence import require_role
from custody.principals import ADMINS, Principal, Principals, Unauthenticated

SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
LINK_TTL = timedelta(minutes=15)
# A session's last use is written at most this often, so that reading pages writes little.
TOUCH_EVERY = timedelta(seconds=60)
TOTP_STEP = 30
TOTP_ISSUER = "Custos"


class SecondFactorMissing(Unauthenticated):
    """The principal's role needs a second factor, and none is enrolled for it."""


class SecondFactorNeeded(CustosError):
    """The first factor was right; the principal's role also needs a TOTP code."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(f"{principal.name} must also give a code from an authenticator")
        self.principal = principal


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

    def set_totp(self, principal_id: str, secret: str) -> None:
        """Enrol (or re-enrol) the principal's TOTP secret."""

    def totp(self, principal_id: str) -> str | None: ...

    def enrolled(self) -> set[str]:
        """The ids of the principals with a TOTP secret enrolled."""

    def use_totp_step(self, principal_id: str, step: int) -> bool:
        """Record ``step`` as used if it is later than the last one used; whether it was."""


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
        second_factor_roles: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.principals = principals
        self.clock = clock
        self.idle = idle
        self.absolute = absolute
        self.link_ttl = link_ttl
        self.second_factor_roles = second_factor_roles

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
        return principal, self._open_after_first_factor(principal)

    def with_token(self, token: str) -> tuple[Principal, str]:
        """Sign in with a bearer token: its principal and a new session's secret."""
        principal = self.principals.authenticate(token)
        return principal, self._open_after_first_factor(principal)

    def enrol_totp(self, name: str, by: Actor) -> tuple[Principal, str]:
        """A new TOTP secret for ``name`` (replacing any): its ``otpauth://`` URI, shown once,
        for an authenticator app; only an admin enrols one."""
        require_role(by.role, ADMINS, "enrol second factors")
        principal = self.principals.get(name)
        if not principal.active:
            raise Unauthenticated(f"{name!r} is revoked")
        secret = pyotp.random_base32()
        self.store.set_totp(principal.id, secret)
        uri = pyotp.TOTP(secret, interval=TOTP_STEP).provisioning_uri(
            name=principal.name, issuer_name=TOTP_ISSUER
        )
        return principal, uri

    def enrolled(self, by: Actor) -> set[str]:
        """The ids of the principals with a second factor enrolled (for an admin's list)."""
        require_role(by.role, ADMINS, "read who has a second factor")
        return self.store.enrolled()

    def with_second_factor(self, name: str, code: str) -> tuple[Principal, str]:
        """The second step, after ``SecondFactorNeeded``: a TOTP code, good once."""
        principal = self.principals.get(name)
        secret = self.store.totp(principal.id)
        if not principal.active or secret is None:
            raise Unauthenticated("no second factor is enrolled for this principal")
        totp = pyotp.TOTP(secret, interval=TOTP_STEP)
        now = int(self.clock().timestamp()) // TOTP_STEP
        for step in (now - 1, now, now + 1):
            if hmac.compare_digest(totp.generate_otp(step), code.strip()):
                if not self.store.use_totp_step(principal.id, step):
                    raise Unauthenticated("this code was used already; wait for the next one")
                return principal, self._open(principal)
        raise Unauthenticated("the code is wrong or has expired")

    def _open_after_first_factor(self, principal: Principal) -> str:
        if principal.role in self.second_factor_roles:
            if self.store.totp(principal.id) is None:
                raise SecondFactorMissing(
                    f"the {principal.role} role signs in with a second factor, and none is "
                    f"enrolled for {principal.name}: ask an administrator to run "
                    f"`custos principal totp {principal.name}`"
                )
            raise SecondFactorNeeded(principal)
        return self._open(principal)

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
