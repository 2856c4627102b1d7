"""The project's own exceptions: storage and service translate vendor errors into these; and
``Faults``, which gathers the faults of several fields so that every one is named at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CustosError(Exception):
    """Base of every error Custos raises on purpose."""


class NotFound(CustosError):
    """An object that does not exist (or that the caller may not know exists)."""


class ObjectNotFound(NotFound):
    """No object under that key in the object store."""


class ObjectExists(CustosError):
    """A write-once key already holds different content."""


class ObjectLocked(CustosError):
    """The object is under retention or a legal hold and cannot be deleted or replaced."""


class StorageError(CustosError):
    """The database or object store failed in a way the caller cannot fix."""


class Conflict(CustosError):
    """The action is not allowed in the object's current state.

    ``allowed_actions`` lists what the current state does allow, where that is known.
    """

    def __init__(self, message: str, allowed_actions: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed_actions = allowed_actions


class Forbidden(CustosError):
    """The principal's role may not do this."""


class Invalid(CustosError):
    """Well-formed but invalid: a declared digest that does not match, a field out of range."""


class TooLarge(CustosError):
    """More bytes than the configured limit."""


class BadRequest(CustosError):
    """A request that can never succeed as written (impossible index, size, range)."""


class IntegrityError(CustosError):
    """Stored data contradicts itself: the ledger or an object was altered."""


class FieldFault(BadRequest):
    """One field that fails its check: ``field`` names it (a dotted path) and ``reason`` says
    why, in the words that follow its name, so the message reads ``f"{field} {reason}"``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason

    def pair(self) -> tuple[str, str]:
        """The fault as ``FieldErrors`` lists it: the field, and why (without a leading
        "is", so that ``field: reason`` reads as a sentence)."""
        return self.field, self.reason.removeprefix("is ")


class FieldErrors(Invalid):
    """Fields that fail their checks, every one of them at once: ``errors`` holds
    ``(field, reason)`` pairs in the order the fields were checked."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("invalid fields: " + "; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = list(errors)


class Faults:
    """The faults of the fields of one request or document part, collected so that every field
    at fault is named at once (GOV.UK's error summary; RFC 9457 ``errors``), not the first
    alone; ``raise_any`` raises them together as ``FieldErrors``."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def check(self, check: Callable[..., object], *args: Any, about: str = "") -> bool:
        """Run ``check(*args)``; on a fault, note it and say False. A fault that names no
        field is ``about``'s (or, without ``about``, left unnamed for the caller to place:
        ``custody.order_document`` names it by the part it is in)."""
        try:
            check(*args)
        except FieldErrors as exc:
            self.found += exc.errors
        except FieldFault as exc:
            self.found.append(exc.pair())
        except BadRequest as exc:
            message = str(exc).removeprefix(f"{about} ") if about else str(exc)
            self.found.append((about, message.removeprefix("is ")))
        else:
            return True
        return False

    def note(self, field: str, reason: str) -> None:
        """Note a fault found without a check: ``reason`` reads after the field's name."""
        self.found.append(FieldFault(field, reason).pair())

    def raise_any(self) -> None:
        if self.found:
            raise FieldErrors(self.found)


def well_formed_but_invalid(error: BadRequest) -> Invalid:
    """``error`` where the request was well-formed and a value in it is not (422): a field's
    own fault stays named, as ``FieldErrors`` with that one field."""
    if isinstance(error, FieldFault):
        return FieldErrors([error.pair()])
    return Invalid(str(error))
