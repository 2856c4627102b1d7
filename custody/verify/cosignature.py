"""Witness cosignatures on checkpoints: C2SP tlog-cosignature, ``cosignature/v1`` with Ed25519.

A witness that has checked a checkpoint against the log's key, and that it extends every
checkpoint of that log it cosigned before, signs::

    cosignature/v1
    time <T>
    <the checkpoint's note text>

with ``T`` its clock in seconds since the Unix epoch. The signature is a signed-note line
``— <witness name> base64(key ID || T as 8 big-endian bytes || 64-byte signature)``, appended to
the checkpoint after the log's own signature lines. The key ID is the first 4 bytes of
SHA-256(name || "\\n" || 0x04 || the 32-byte public key), and the witness's verifier key is
``<name>+<key ID hex>+base64(0x04 || public key)``. Verifiers of the log's signatures ignore
these lines, as they ignore any signature by a key they were not given.

Standard library and ``cryptography`` only: this module is part of the offline verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from custody.note import MalformedNote, NoteSignature, is_valid_key_name

__all__ = [
    "ALG_COSIGNATURE_V1",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Cosigned",
    "cosignature_key_hash",
    "cosigned_message",
    "verify_cosignatures",
]

ALG_COSIGNATURE_V1 = 0x04
"""Signature type of an Ed25519 ``cosignature/v1`` key in c2sp.org/signed-note."""
_TIME = struct.Struct(">Q")
_SIGNATURE_SIZE = 4 + _TIME.size + 64


def cosignature_key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of a cosignature/v1 key."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key
    ).digest()[:4]


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signature signs: the header, the time, the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A pinned witness key."""

    name: str
    key_hash: bytes
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3 or not is_valid_key_name(parts[0]):
            raise MalformedNote("a witness key is <name>+<8 hex digits>+<base64 key>")
        name, hash_hex, key64 = parts
        try:
            key = base64.b64decode(key64, validate=True)
            key_hash = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError):
            raise MalformedNote("a witness key is <name>+<8 hex digits>+<base64 key>") from None
        if len(key) != 33 or key[0] != ALG_COSIGNATURE_V1 or len(key_hash) != 4:
            raise MalformedNote("a witness key is a cosignature/v1 (0x04) Ed25519 key")
        if cosignature_key_hash(name, key[1:]) != key_hash:
            raise MalformedNote(f"the key ID does not match the witness key of {name!r}")
        try:
            Ed25519PublicKey.from_public_bytes(key[1:])
        except ValueError:
            raise MalformedNote("not an Ed25519 public key") from None
        return cls(name, key_hash, key[1:])

    def verifier_key(self) -> str:
        key = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_hash.hex()}+{key}"

    def verify(self, checkpoint_text: str, signature: NoteSignature) -> int | None:
        """The cosignature's time if ``signature`` is this witness's valid cosignature of the
        checkpoint, else None."""
        if (signature.name, signature.key_hash) != (self.name, self.key_hash):
            return None
        if len(signature.signature) != _SIGNATURE_SIZE - 4:
            return None
        timestamp = int.from_bytes(signature.signature[: _TIME.size], "big")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature.signature[_TIME.size :], cosigned_message(checkpoint_text, timestamp)
            )
        except InvalidSignature:
            return None
        return timestamp


class CosignatureSigner:
    """A witness's signing key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not is_valid_key_name(name):
            raise MalformedNote(f"invalid witness name {name!r}")
        self.name = name
        self._key = private_key
        public = private_key.public_key().public_bytes_raw()
        self.verifier = CosignatureVerifier(name, cosignature_key_hash(name, public), public)

    def sign(self, checkpoint_text: str, timestamp: int) -> NoteSignature:
        signature = self._key.sign(cosigned_message(checkpoint_text, timestamp))
        return NoteSignature(
            name=self.name,
            key_hash=self.verifier.key_hash,
            signature=_TIME.pack(timestamp) + signature,
        )


@dataclass(frozen=True)
class Cosigned:
    """The pinned witnesses whose cosignature on a checkpoint verified, and when each signed."""

    times: dict[str, int]
    """``<name>+<key ID hex>`` of each pinned witness, and its cosignature's time."""

    @property
    def newest(self) -> int | None:
        return max(self.times.values(), default=None)


def verify_cosignatures(
    checkpoint_text: str,
    signatures: Iterable[NoteSignature],
    witnesses: Sequence[CosignatureVerifier],
) -> Cosigned:
    """Which pinned witnesses cosigned this checkpoint (each counted once, its newest time)."""
    times: dict[str, int] = {}
    by_ident = {(w.name, w.key_hash): w for w in witnesses}
    for signature in signatures:
        witness = by_ident.get((signature.name, signature.key_hash))
        if witness is None:
            continue
        timestamp = witness.verify(checkpoint_text, signature)
        if timestamp is not None:
            ident = f"{witness.name}+{witness.key_hash.hex()}"
            times[ident] = max(timestamp, times.get(ident, 0))
    return Cosigned(times)
