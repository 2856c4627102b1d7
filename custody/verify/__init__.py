"""The offline verifier: checks Custos evidence against keys pinned beforehand, trusting nothing
else (ARCHITECTURE.md, Layers).

Imports only the standard library, ``cryptography`` and the verifier's own modules
(custody.note, custody.checkpoint, custody.merkle, custody.receipt and this package), so a court
can run it without the service. Run it as ``python -m custody.verify``; ``make verifier``
builds it into one file.
"""

from custody.verify.bundle import BUNDLE_CHECKS, verify_bundle
from custody.verify.errors import VerificationError
from custody.verify.receipt import RECEIPT_CHECKS, ReceiptReport, verify_receipt
from custody.verify.results import ExhibitVerification, ItemResult, StepResult, TimelineEvent

__all__ = [
    "BUNDLE_CHECKS",
    "RECEIPT_CHECKS",
    "ExhibitVerification",
    "ItemResult",
    "ReceiptReport",
    "StepResult",
    "TimelineEvent",
    "VerificationError",
    "verify_bundle",
    "verify_receipt",
]
