"""The offline verifier: checks Custos evidence against keys pinned beforehand, trusting nothing
else (ARCHITECTURE.md, Layers).

Imports only the standard library, ``cryptography`` and the verifier's own modules
(custody.note, custody.checkpoint, custody.merkle, custody.receipt, the formats they share with
the writers: custody.json_codec, custody.commitment, custody.note_types, custody.event_types,
and this package), so a court can run it without the service. Run it as
``python -m custody.verify``; ``make verifier`` builds it into one file.

:func:`verify_receipt` returns what a receipt proves or raises :class:`VerificationError`;
:func:`verify_bundle` returns every step's result, for the report, and
:meth:`ExhibitVerification.raise_if_failed` raises :class:`ExhibitVerificationFailed` (a
VerificationError) for a caller that must stop at a failure. Every error is a
:class:`VerifierError`.
"""

from custody.verify.bundle import BUNDLE_CHECKS, verify_bundle
from custody.verify.errors import (
    ExhibitVerificationFailed,
    PinnedKeyError,
    VerificationError,
    VerifierError,
)
from custody.verify.receipt import RECEIPT_CHECKS, ReceiptReport, verify_receipt
from custody.verify.results import ExhibitVerification, ItemResult, StepResult, TimelineEvent

__all__ = [
    "BUNDLE_CHECKS",
    "RECEIPT_CHECKS",
    "ExhibitVerification",
    "ExhibitVerificationFailed",
    "ItemResult",
    "PinnedKeyError",
    "ReceiptReport",
    "StepResult",
    "TimelineEvent",
    "VerificationError",
    "VerifierError",
    "verify_bundle",
    "verify_receipt",
]
