"""The project's own exceptions: storage and service translate vendor errors into these."""


class CustosError(Exception):
    """Base of every error Custos raises on purpose."""


class NotFound(CustosError):
    """An object that does not exist (or that the caller may not know exists)."""


class ObjectNotFound(NotFound):
    """No object under that key in the object store."""


class ObjectExists(CustosError):
    """A write-once key already holds different content."""


class StorageError(CustosError):
    """The database or object store failed in a way the caller cannot fix."""


class Conflict(CustosError):
    """The action is not allowed in the object's current state."""


class BadRequest(CustosError):
    """A request that can never succeed as written (impossible index, size, range)."""


class IntegrityError(CustosError):
    """Stored data contradicts itself: the ledger or an object was altered."""
