"""The project's own exceptions: storage and service translate vendor errors into these."""


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


class FieldErrors(Invalid):
    """Fields that fail their checks, every one of them at once: ``errors`` holds
    ``(field, reason)`` pairs in the order the fields were checked."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("invalid fields: " + "; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = list(errors)
