"""Bearer-token authentication and role checks for every view that is not public."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from custody.errors import Forbidden
from custody.principals import Principal, Unauthenticated

F = TypeVar("F", bound=Callable[..., Any])


def authenticate() -> Principal:
    """The principal named by the request's ``Authorization: Bearer`` token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    principal: Principal = current_app.extensions["custos"].principals.authenticate(token.strip())
    g.principal = principal
    return principal


def requires(*roles: str, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Authenticate, then allow only ``roles`` (any role when none is named), never ``exclude``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if (roles and principal.role not in roles) or principal.role in exclude:
                raise Forbidden(f"the {principal.role} role may not do this")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
