"""The errors of the offline verifier: one base, :class:`VerifierError`, for all of them.

A caller catches :class:`VerificationError` for evidence that does not check out (the step that
failed, and why), :class:`PinnedKeyError` for a key it pinned that is not a verifier key, or
:class:`VerifierError` for anything the verifier refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custody.verify.results import ExhibitVerification, StepResult

__all__ = [
    "ExhibitVerificationFailed",
    "PinnedKeyError",
    "VerificationError",
    "VerifierError",
]


class VerifierError(Exception):
    """Base of every error the offline verifier raises."""


class PinnedKeyError(VerifierError, ValueError):
    """A key the caller pinned is not a verifier key (``<name>+<hash>+<base64 key>``), or none
    was pinned: nothing was verified."""


class VerificationError(VerifierError):
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


class ExhibitVerificationFailed(VerificationError):
    """An exhibit bundle failed verification (:meth:`ExhibitVerification.raise_if_failed`):
    ``step`` and ``message`` are the first failed step's, ``failed`` every failed step, and
    ``verification`` the whole result, for the report."""

    def __init__(self, verification: ExhibitVerification) -> None:
        failed = verification.failed
        first = failed[0]
        where = f"{first.evidence_id}: " if first.evidence_id else ""
        more = len(failed) - 1
        also = f" (and {more} more failed step{'s' if more != 1 else ''})" if more else ""
        super().__init__(first.number, f"{where}{first.detail}{also}")
        self.failed: list[StepResult] = failed
        self.verification = verification
