"""Bearer-token authentication and role checks for every view that is not public.

Repeated failed authentications are rate-limited per client address: once a client has
presented ``CUSTOS_AUTH_FAILURES_PER_MINUTE`` wrong tokens within a minute, every
authenticated route answers it 429 with ``Retry-After``, without looking at its token, until
the oldest of those failures is a minute old. The count is kept in each worker process's
memory, so with W workers a client may fail up to W times the limit a minute before every
worker refuses it; that still turns a token search into a crawl, and needs no shared state.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, request

from custody.errors import Forbidden
from custody.principals import Principal, Unauthenticated
from service.problems import problem

F = TypeVar("F", bound=Callable[..., Any])

FAILED_AUTHENTICATIONS = "custos.failed_authentications"
"""The ``app.extensions`` key of the app's :class:`FailedAuthentications`."""
WINDOW = 60.0
"""Seconds over which failed authentications are counted."""
MAX_CLIENTS = 10_000
"""Client addresses remembered at most; the least recently failing are forgotten first."""


class FailedAuthentications:
    """Recent failed authentications by client address, in this process's memory.

    A client with ``limit`` failures in the last ``window`` seconds must wait until the
    oldest of them leaves the window. ``limit`` 0 turns the limit off. ``clock`` gives
    monotonic seconds.
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try a token again, or None if it may now."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self.clock()
            recent = self._recent(client, now)
            if len(recent) < self.limit:
                return None
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, client: str) -> None:
        """Count a failed authentication by ``client``."""
        if self.limit <= 0:
            return
        with self._lock:
            now = self.clock()
            recent = self._recent(client, now)
            recent.append(now)
            while len(recent) > self.limit:  # only the newest ``limit`` decide the wait
                recent.popleft()
            self._failures[client] = recent
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def _recent(self, client: str, now: float) -> deque[float]:
        """The client's failures still in the window (older ones are dropped)."""
        recent = self._failures.get(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            self._failures.pop(client, None)
        return recent


def failed_authentications() -> FailedAuthentications:
    """The app's count of failed authentications, made on first use from its configuration."""
    extensions = current_app.extensions
    found: FailedAuthentications | None = extensions.get(FAILED_AUTHENTICATIONS)
    if found is None:
        limit = extensions["custos"].config.auth_failures_per_minute
        found = extensions.setdefault(FAILED_AUTHENTICATIONS, FailedAuthentications(limit))
    return found


def _client() -> str:
    return request.remote_addr or ""


def authenticate() -> Principal:
    """The principal named by the request's ``Authorization: Bearer`` token.

    A token that names no active principal counts as a failure of the client's address; a
    request that presents no token does not, as it guesses nothing.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    try:
        principal: Principal = current_app.extensions["custos"].principals.authenticate(
            token.strip()
        )
    except Unauthenticated:
        failed_authentications().failed(_client())
        raise
    g.principal = principal
    return principal


def too_many_failures(retry_after: int) -> Response:
    """The 429 problem a client gets while it must wait before it tries a token again."""
    response = problem(
        429,
        f"too many failed authentications from this address; try again in {retry_after} s",
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def requires(*roles: str, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Authenticate, then allow only ``roles`` (any role when none is named), never ``exclude``.

    A client that failed too often recently gets 429 before its token is even looked at.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            wait = failed_authentications().retry_after(_client())
            if wait is not None:
                return too_many_failures(wait)
            principal = authenticate()
            if (roles and principal.role not in roles) or principal.role in exclude:
                raise Forbidden(f"the {principal.role} role may not do this")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
