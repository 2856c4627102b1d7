"""The one error the offline verifier raises when evidence does not check out."""

from __future__ import annotations

__all__ = ["VerificationError"]


class VerificationError(Exception):
    """A numbered check of a verification procedure failed.

    ``step`` is the number of the check in the procedure's checklist (as printed by
    ``python -m custody.verify`` and tagged in the code), ``message`` says what is wrong in
    words a person can act on.
    """

    def __init__(self, step: int, message: str) -> None:
        super().__init__(step, message)
        self.step = step
        self.message = message

    def __str__(self) -> str:
        return f"check ({self.step}) failed: {self.message}"
