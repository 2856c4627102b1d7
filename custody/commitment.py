"""Salted commitments: how the ledger records a document without disclosing it.

An event carries ``SHA-256(salt || document)`` in lowercase hex; the document and its random
salt are kept beside the record (ARCHITECTURE.md, Commitments). Whoever is shown both can
check the commitment; whoever sees only the event learns nothing of the text, not even by
guessing it, for the salt is 32 random bytes.

Standard library only: this module is part of the offline verifier, which checks an order
document against the commitments its events carry.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["SALT_SIZE", "commit", "commitment", "new_salt"]

SALT_SIZE = 32
"""Bytes of the random salt of a commitment."""


def new_salt() -> bytes:
    """A fresh random salt of SALT_SIZE bytes."""
    return secrets.token_bytes(SALT_SIZE)


def commitment(salt: bytes, document: bytes) -> str:
    """The commitment to ``document`` under ``salt``: SHA-256(salt || document), lowercase hex."""
    return hashlib.sha256(salt + document).hexdigest()


def commit(document: bytes) -> tuple[bytes, str]:
    """Commit to ``document`` under a fresh salt: (salt, commitment)."""
    salt = new_salt()
    return salt, commitment(salt, document)
