"""The offline verifier: checks Custos evidence against keys pinned beforehand, trusting nothing
else (ARCHITECTURE.md, Layers).

Imports only the standard library, ``cryptography`` and the verifier's own modules
(custody.note, custody.checkpoint, custody.merkle, custody.receipt and this package), so a court
can run it without the service. Run it as ``python -m custody.verify``.
"""

from custody.verify.errors import VerificationError
from custody.verify.receipt import RECEIPT_CHECKS, ReceiptReport, verify_receipt

__all__ = ["RECEIPT_CHECKS", "ReceiptReport", "VerificationError", "verify_receipt"]
