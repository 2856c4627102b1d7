"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, compatible with Go's sumdb/note.

Only the standard library and ``cryptography`` are used: this module is part of the
offline verifier.

Deliberate points of strictness, each of which only rejects input that no conforming
signer produces:

* base64 (in signature lines and keys) must be canonical standard base64 with padding,
  so a note has exactly one byte encoding and ``Note.from_bytes(b).to_bytes() == b``;
* ``open_note`` verifies *every* signature line from a trusted key, including repeated
  ones that Go's ``note.Open`` skips, and keeps only the first of each in the result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "MalformedNote",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerificationError",
    "NoteVerifier",
    "is_valid_key_name",
    "key_hash",
    "open_note",
    "sign_note",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 in c2sp.org/signed-note."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the limit of Go's note.Open)."""

ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SEED_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
KEY_HASH_SIZE = 4

_SIG_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_FORBIDDEN_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile("[0-9a-fA-F]{8}")
# The spaces of Go's unicode.IsSpace within Latin-1; above it, the Z categories.
_LATIN1_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


class MalformedNote(ValueError):
    """The bytes are not a well-formed signed note, signature line or key."""


class NoteVerificationError(Exception):
    """A well-formed note is not signed by a trusted key, or a trusted key's signature is bad."""


def _is_unicode_space(ch: str) -> bool:
    """Report whether ch is a space as Go's unicode.IsSpace defines it."""
    if ord(ch) <= 0xFF:
        return ch in _LATIN1_SPACES
    return unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _is_utf8(s: str) -> bool:
    """Report whether s can be encoded as UTF-8 (it holds no lone surrogates)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_forbidden_control(s: str) -> bool:
    """Report whether s holds an ASCII control character other than newline."""
    return _FORBIDDEN_CONTROL.search(s) is not None


def _b64decode(s: str) -> bytes:
    """Decode canonical standard base64 with padding, raising MalformedNote otherwise."""
    if not s.isascii():
        raise MalformedNote("base64 holds a non-ASCII character")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedNote(f"bad base64: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise MalformedNote("base64 is not in canonical form")
    return raw


def _b64encode(raw: bytes) -> str:
    """Encode raw bytes as standard base64 with padding."""
    return base64.b64encode(raw).decode("ascii")


def is_valid_key_name(name: str) -> bool:
    """Report whether name is a valid key name: non-empty UTF-8 with no Unicode space or '+'."""
    return (
        isinstance(name, str)
        and name != ""
        and _is_utf8(name)
        and "+" not in name
        and not any(_is_unicode_space(ch) for ch in name)
    )


def key_hash(name: str, public_key: bytes) -> bytes:
    """Return the Ed25519 key ID, SHA-256(name || 0x0A || 0x01 || public_key)[:4]."""
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + bytes(public_key)
    ).digest()
    return digest[:KEY_HASH_SIZE]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note: key name, 4-byte key ID and signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        """Check that the signature line this value encodes is well formed."""
        if not is_valid_key_name(self.name) or _has_forbidden_control(self.name):
            raise MalformedNote(f"invalid key name {self.name!r}")
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != KEY_HASH_SIZE:
            raise MalformedNote("a key hash is 4 bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) == 0:
            raise MalformedNote("a signature is at least one byte")

    def line(self) -> str:
        """Return the signature line, em dash to final newline."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_hash + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line, with or without its final newline."""
        body = line.removesuffix("\n")
        if not body.startswith(_SIG_PREFIX) or "\n" in body or _has_forbidden_control(body):
            raise MalformedNote("a signature line is an em dash, a space, a name, a space, base64")
        name, _, b64 = body[len(_SIG_PREFIX) :].partition(" ")
        if not is_valid_key_name(name):
            raise MalformedNote(f"invalid key name {name!r} in a signature line")
        raw = _b64decode(b64)
        if len(raw) <= KEY_HASH_SIZE:
            raise MalformedNote("a signature is a 4-byte key hash and at least one byte")
        return cls(name=name, key_hash=raw[:KEY_HASH_SIZE], signature=raw[KEY_HASH_SIZE:])


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signatures, verified or not."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        """Check that to_bytes() gives a well-formed note that parses back to this value."""
        if not isinstance(self.text, str) or not self.text.endswith("\n"):
            raise MalformedNote("note text must end in a newline")
        if not _is_utf8(self.text) or _has_forbidden_control(self.text):
            raise MalformedNote("note text must be UTF-8 with no control character but newline")
        if not isinstance(self.signatures, tuple):
            object.__setattr__(self, "signatures", tuple(self.signatures))
        if not all(isinstance(s, NoteSignature) for s in self.signatures):
            raise TypeError("signatures must be NoteSignature values")
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise MalformedNote(
                f"a note has 1 to {MAX_SIGNATURES} signatures, not {len(self.signatures)}"
            )

    def to_bytes(self) -> bytes:
        """Return the encoded note: text, blank line, signature lines."""
        lines = "".join(sig.line() for sig in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Note:
        """Parse an encoded note strictly, raising MalformedNote on any deviation from the spec."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("a note is parsed from bytes")
        try:
            msg = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNote("a note must be valid UTF-8") from None
        if _has_forbidden_control(msg):
            raise MalformedNote("a note must hold no ASCII control character but newline")
        split = msg.rfind("\n\n")
        if split < 0:
            raise MalformedNote("a note needs a blank line before its signatures")
        text, block = msg[: split + 1], msg[split + 2 :]
        if not block or not block.endswith("\n"):
            raise MalformedNote("a note needs signature lines, each ending in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise MalformedNote(f"a note may have at most {MAX_SIGNATURES} signatures")
        return cls(text=text, signatures=tuple(NoteSignature.from_line(ln) for ln in lines))


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 public key with its key name and key ID."""

    name: str
    key_hash: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        """Check the name, key length, key ID and that the key loads."""
        if not is_valid_key_name(self.name):
            raise MalformedNote(f"invalid key name {self.name!r}")
        if (
            not isinstance(self.public_key, bytes)
            or len(self.public_key) != ED25519_PUBLIC_KEY_SIZE
        ):
            raise MalformedNote("an Ed25519 public key is 32 bytes")
        if self.key_hash != key_hash(self.name, self.public_key):
            raise MalformedNote(f"key hash does not match the key of {self.name!r}")
        self._public_key()

    def _public_key(self) -> Ed25519PublicKey:
        """Load the public key, raising MalformedNote if it cannot be loaded."""
        try:
            return Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise MalformedNote("not an Ed25519 public key") from None

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key "<name>+<hex key ID>+<base64(0x01 || public key)>"."""
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3:
            raise MalformedNote("a verifier key is <name>+<hash>+<key>")
        name, hash16, key64 = parts
        if not is_valid_key_name(name) or _HEX8.fullmatch(hash16) is None:
            raise MalformedNote("a verifier key is <name>+<8 hex digits>+<key>")
        key = _b64decode(key64)
        if len(key) == 0 or key[0] != ALG_ED25519:
            raise MalformedNote("unknown verifier key algorithm (only Ed25519, 0x01)")
        if len(key) != 1 + ED25519_PUBLIC_KEY_SIZE:
            raise MalformedNote("an Ed25519 verifier key holds 32 key bytes")
        return cls(name=name, key_hash=bytes.fromhex(hash16), public_key=key[1:])

    def verifier_key(self) -> str:
        """Return the verifier key "<name>+<hex key ID>+<base64(0x01 || public key)>"."""
        b64 = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_hash.hex()}+{b64}"

    def verify(self, text: str, signature: bytes) -> bool:
        """Report whether signature (without key ID) is this key's Ed25519 signature of text."""
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public_key().verify(bytes(signature), text.encode("utf-8"))
        except (InvalidSignature, UnicodeEncodeError, MalformedNote):
            return False
        return True


@dataclass(frozen=True, eq=False)
class NoteSigner:
    """An Ed25519 private key with its key name, which signs note texts."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    key_hash: bytes = field(init=False)

    def __post_init__(self) -> None:
        """Check the name and key type, and derive the key ID."""
        if not is_valid_key_name(self.name) or _has_forbidden_control(self.name):
            raise MalformedNote(f"invalid key name {self.name!r}")
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise TypeError("private_key must be an Ed25519PrivateKey")
        public = self.private_key.public_key().public_bytes_raw()
        object.__setattr__(self, "key_hash", key_hash(self.name, public))

    @classmethod
    def from_signer_key(cls, skey: str) -> NoteSigner:
        """Parse a signer key "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>"."""
        if not isinstance(skey, str) or not skey.startswith(_PRIVATE_PREFIX):
            raise MalformedNote("a signer key starts with PRIVATE+KEY+")
        parts = skey[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise MalformedNote("a signer key is PRIVATE+KEY+<name>+<hash>+<key>")
        name, hash16, key64 = parts
        if not is_valid_key_name(name) or _HEX8.fullmatch(hash16) is None:
            raise MalformedNote("a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<key>")
        key = _b64decode(key64)
        if len(key) == 0 or key[0] != ALG_ED25519:
            raise MalformedNote("unknown signer key algorithm (only Ed25519, 0x01)")
        if len(key) != 1 + ED25519_SEED_SIZE:
            raise MalformedNote("an Ed25519 signer key holds a 32-byte seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(key[1:]))
        if signer.key_hash != bytes.fromhex(hash16):
            raise MalformedNote(f"key hash does not match the key of {name!r}")
        return signer

    def signer_key(self) -> str:
        """Return the secret signer key "PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>"."""
        b64 = _b64encode(bytes([ALG_ED25519]) + self.private_key.private_bytes_raw())
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_hash.hex()}+{b64}"

    @property
    def verifier(self) -> NoteVerifier:
        """Return the verifier for this signer's public key."""
        public = self.private_key.public_key().public_bytes_raw()
        return NoteVerifier(name=self.name, key_hash=self.key_hash, public_key=public)

    def sign(self, text: str) -> NoteSignature:
        """Return this key's signature of text (UTF-8 encoded)."""
        sig = self.private_key.sign(text.encode("utf-8"))
        return NoteSignature(name=self.name, key_hash=self.key_hash, signature=sig)


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Sign text (which must end in a newline) with every signer and return the encoded note."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise ValueError("note text must end in a newline")
    if not signers:
        raise ValueError("a note needs at least one signer")
    # Validate the text before spending any signatures on it.
    if not _is_utf8(text) or _has_forbidden_control(text):
        raise MalformedNote("note text must be UTF-8 with no control character but newline")
    return Note(text=text, signatures=tuple(s.sign(text) for s in signers)).to_bytes()


def _verifier_index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    """Index verifiers by (name, key ID), refusing two different keys under one identifier."""
    index: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if not isinstance(v, NoteVerifier):
            raise TypeError("verifiers must be NoteVerifier values")
        ident = (v.name, v.key_hash)
        known = index.get(ident)
        if known is not None and known.public_key != v.public_key:
            raise NoteVerificationError(f"ambiguous key {v.name}+{v.key_hash.hex()}")
        index[ident] = v
    return index


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Parse and verify a note, returning it with only the signatures of the given verifiers."""
    note = Note.from_bytes(data)
    index = _verifier_index(verifiers)
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    unknown: list[str] = []
    for sig in note.signatures:
        ident = (sig.name, sig.key_hash)
        v = index.get(ident)
        if v is None:
            if sig.name not in unknown:
                unknown.append(sig.name)
            continue
        if not v.verify(note.text, sig.signature):
            raise NoteVerificationError(
                f"invalid signature for key {sig.name}+{sig.key_hash.hex()}"
            )
        if ident not in seen:
            seen.add(ident)
            verified.append(sig)
    if not verified:
        raise NoteVerificationError("not signed by any trusted key: " + ", ".join(unknown))
    return Note(text=note.text, signatures=tuple(verified))
