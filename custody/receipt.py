"""Ingest receipts: the signed statement an uploader gets, and the file a court checks.

A :class:`Receipt` says "evidence ``id`` of ``size`` bytes with these digests was received at
``received`` and recorded as ledger entry ``index``, whose leaf hash is ``leaf``". It is signed
as a C2SP signed note whose first line is ``custos/receipt/v1`` (ARCHITECTURE.md, Keys), so no
signature over a checkpoint, manifest or order can pass for a receipt.

A :class:`ReceiptBundle` is the JSON file a client keeps: the signed receipt, a signed
checkpoint, the exact event leaf and its inclusion proof. With the log's pinned verifier key it
proves the receipt offline (``python -m custody.verify receipt FILE --key KEY``).

Standard library and the verifier's own modules only: this module is part of the offline
verifier.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from custody.checkpoint import MAX_TREE_SIZE
from custody.json_codec import strict_loads
from custody.merkle import HASH_SIZE
from custody.note import MalformedNote, Note, NoteSigner, NoteVerifier, open_note, sign_note
from custody.note_types import RECEIPT_TYPE

__all__ = [
    "BUNDLE_FORMAT",
    "RECEIPT_TYPE",
    "MalformedReceipt",
    "Receipt",
    "ReceiptBundle",
    "open_receipt",
    "sign_receipt",
]

BUNDLE_FORMAT = "custos/receipt-bundle/v1"
"""Value of the ``format`` member of a receipt bundle file."""

MAX_SIZE = 2**53 - 1
"""Largest evidence size: events are JSON, whose integers are exact only up to 2**53 - 1."""
MAX_LEAF_BYTES = 0xFFFF
"""Largest ledger leaf (C2SP tlog-tiles prefixes each entry with a uint16 length)."""
MAX_PROOF_HASHES = 64
"""Longest inclusion proof of a tree of at most 2**64 - 1 leaves."""
REQUIRED_DIGEST = "sha256"

# Digest lengths in bytes of the algorithms Custos computes (hashlib names); any other
# algorithm must still be lowercase hex of 1 to 64 bytes.
DIGEST_SIZES = {
    "md5": 16,
    "sha1": 20,
    "sha224": 28,
    "sha256": 32,
    "sha384": 48,
    "sha512": 64,
    "sha3_256": 32,
    "sha3_512": 64,
    "blake2b": 64,
}
MAX_DIGEST_BYTES = 64

# Same shape as an event subject id, so a receipt can name whatever the ledger can.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_ALG = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class MalformedReceipt(ValueError):
    """A receipt, receipt note text or receipt bundle that is not well formed."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_digest(alg: object, hexdigest: object) -> None:
    if not isinstance(alg, str) or _ALG.fullmatch(alg) is None:
        raise MalformedReceipt(f"digest algorithm {alg!r} is not a lowercase name")
    if not isinstance(hexdigest, str) or _HEX.fullmatch(hexdigest) is None:
        raise MalformedReceipt(f"{alg} digest is not lowercase hex")
    size = len(hexdigest) // 2
    want = DIGEST_SIZES.get(alg)
    if want is not None and size != want:
        raise MalformedReceipt(f"a {alg} digest is {want} bytes, not {size}")
    if size > MAX_DIGEST_BYTES:
        raise MalformedReceipt(f"{alg} digest is longer than {MAX_DIGEST_BYTES} bytes")


def _check_time(value: object) -> None:
    if not isinstance(value, str) or _TIME.fullmatch(value) is None:
        raise MalformedReceipt(
            f"receipt time {value!r} is not RFC 3339 UTC with microseconds "
            "(YYYY-MM-DDTHH:MM:SS.ffffffZ)"
        )
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        raise MalformedReceipt(f"receipt time {value!r} is not a real date and time") from None


@dataclass(frozen=True)
class Receipt:
    """What the service attests when it has recorded an ingest in the ledger."""

    evidence_id: str
    size: int
    digests: Mapping[str, str] = field(hash=False)
    """Lowercase hex digest by algorithm name; sha256 is always present."""
    received_at: str
    """The ``time`` of the ``evidence.ingested`` event: RFC 3339 UTC with microseconds."""
    ledger_index: int
    leaf_hash: bytes
    """RFC 6962 leaf hash of the event's leaf bytes."""

    def __post_init__(self) -> None:
        """Check every field, so that to_text() gives a note text from_text() accepts."""
        if not isinstance(self.evidence_id, str) or _ID.fullmatch(self.evidence_id) is None:
            raise MalformedReceipt(f"evidence id {self.evidence_id!r} is not a valid id")
        if not _is_int(self.size) or not 0 <= self.size <= MAX_SIZE:
            raise MalformedReceipt(f"size must be an int in [0, 2**53), not {self.size!r}")
        if not isinstance(self.digests, Mapping):
            raise MalformedReceipt("digests must be a mapping of algorithm to hex digest")
        for alg, hexdigest in self.digests.items():
            _check_digest(alg, hexdigest)
        if REQUIRED_DIGEST not in self.digests:
            raise MalformedReceipt(f"a receipt always carries a {REQUIRED_DIGEST} digest")
        object.__setattr__(self, "digests", MappingProxyType(dict(sorted(self.digests.items()))))
        _check_time(self.received_at)
        if not _is_int(self.ledger_index) or not 0 <= self.ledger_index < MAX_TREE_SIZE:
            raise MalformedReceipt(f"ledger index {self.ledger_index!r} is not a valid index")
        if not isinstance(self.leaf_hash, bytes) or len(self.leaf_hash) != HASH_SIZE:
            raise MalformedReceipt(f"leaf hash must be {HASH_SIZE} bytes")

    def to_text(self) -> str:
        """Return the note text: the type line, then one ``key value`` line per field."""
        lines = [
            RECEIPT_TYPE,
            f"id {self.evidence_id}",
            f"size {self.size}",
            *(f"digest {alg} {hexdigest}" for alg, hexdigest in self.digests.items()),
            f"received {self.received_at}",
            f"index {self.ledger_index}",
            f"leaf {self.leaf_hash.hex()}",
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Receipt:
        """Parse a receipt note text strictly: one encoding per receipt, nothing else accepted."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedReceipt("a receipt text ends in a newline")
        first, _, rest = text.partition("\n")
        if first != RECEIPT_TYPE:
            raise MalformedReceipt(f"the note is a {first!r}, not a {RECEIPT_TYPE}")
        lines = rest[:-1].split("\n") if rest else []
        if len(lines) < 6:
            raise MalformedReceipt("a receipt text has id, size, digest, received, index, leaf")
        evidence_id, size = _field(lines[0], "id"), _field(lines[1], "size")
        received, index = _field(lines[-3], "received"), _field(lines[-2], "index")
        leaf = _field(lines[-1], "leaf")
        digests: dict[str, str] = {}
        for line in lines[2:-3]:
            alg, hexdigest = _digest_line(line)
            if digests and alg <= max(digests):
                raise MalformedReceipt("digest lines must be sorted by algorithm, each once")
            digests[alg] = hexdigest
        if _HEX.fullmatch(leaf) is None or len(leaf) != 2 * HASH_SIZE:
            raise MalformedReceipt(f"leaf must be {HASH_SIZE} bytes of lowercase hex")
        receipt = cls(
            evidence_id=evidence_id,
            size=_decimal(size, "size"),
            digests=digests,
            received_at=received,
            ledger_index=_decimal(index, "index"),
            leaf_hash=bytes.fromhex(leaf),
        )
        if receipt.to_text() != text:  # a guard: every accepted text is the canonical one
            raise MalformedReceipt("the receipt text is not in canonical form")
        return receipt


def _field(line: str, want: str) -> str:
    key, sep, value = line.partition(" ")
    if key != want or not sep or value == "":
        raise MalformedReceipt(f"expected the {want!r} line, found {line!r}")
    return value


def _digest_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != "digest":
        raise MalformedReceipt(f"expected a 'digest <algorithm> <hex>' line, found {line!r}")
    _check_digest(parts[1], parts[2])
    return parts[1], parts[2]


def _decimal(value: str, what: str) -> int:
    if _DECIMAL.fullmatch(value) is None:
        raise MalformedReceipt(f"{what} {value!r} is not a canonical decimal number")
    return int(value)


def sign_receipt(receipt: Receipt, signers: Sequence[NoteSigner]) -> bytes:
    """Sign the receipt's text with every signer and return the encoded note."""
    return sign_note(receipt.to_text(), signers)


def open_receipt(data: bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Receipt, Note]:
    """Verify a signed receipt note, then parse its text (read only once a trusted key signed it).

    Raises NoteVerificationError if no trusted key signed it (or a trusted signature is bad),
    MalformedNote or MalformedReceipt if it is not a well-formed receipt note.
    """
    note = open_note(data, verifiers)
    return Receipt.from_text(note.text), note


@dataclass(frozen=True)
class ReceiptBundle:
    """A receipt with what proves it: a checkpoint, the event leaf and its inclusion proof.

    ``receipt`` and ``checkpoint`` are encoded signed notes. Building a bundle checks only that
    it is well formed; whether it is true is for ``custody.verify.verify_receipt`` to decide.
    """

    receipt: bytes
    checkpoint: bytes
    leaf: bytes
    index: int
    tree_size: int
    proof: tuple[bytes, ...]

    def __post_init__(self) -> None:
        """Check the shape of every field; raise MalformedReceipt on anything off."""
        for name in ("receipt", "checkpoint"):
            value = getattr(self, name)
            if not isinstance(value, bytes):
                raise MalformedReceipt(f"{name} must be the bytes of a signed note")
            try:
                Note.from_bytes(value)
            except MalformedNote as exc:
                raise MalformedReceipt(f"{name} is not a well-formed signed note: {exc}") from None
        if not isinstance(self.leaf, bytes) or not 0 < len(self.leaf) <= MAX_LEAF_BYTES:
            raise MalformedReceipt(f"leaf must be 1 to {MAX_LEAF_BYTES} bytes")
        if not _is_int(self.tree_size) or not 0 < self.tree_size <= MAX_TREE_SIZE:
            raise MalformedReceipt(f"tree size {self.tree_size!r} is not a valid tree size")
        if not _is_int(self.index) or not 0 <= self.index < self.tree_size:
            raise MalformedReceipt(
                f"index {self.index!r} is not a leaf of a tree of size {self.tree_size}"
            )
        if not isinstance(self.proof, tuple):
            object.__setattr__(self, "proof", tuple(self.proof))
        if len(self.proof) > MAX_PROOF_HASHES:
            raise MalformedReceipt(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
        for i, h in enumerate(self.proof):
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise MalformedReceipt(f"inclusion proof hash {i} is not {HASH_SIZE} bytes")

    def to_json(self) -> bytes:
        """Return the bundle file: UTF-8 JSON, indented, members in a fixed order."""
        obj = {
            "format": BUNDLE_FORMAT,
            "receipt": self.receipt.decode("utf-8"),
            "checkpoint": self.checkpoint.decode("utf-8"),
            "leaf": _b64encode(self.leaf),
            "inclusion_proof": {
                "index": self.index,
                "tree_size": self.tree_size,
                "hashes": [_b64encode(h) for h in self.proof],
            },
        }
        return (json.dumps(obj, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> ReceiptBundle:
        """Parse a bundle file strictly; raise MalformedReceipt on anything off."""
        if not isinstance(data, bytes):
            raise MalformedReceipt("a receipt bundle is parsed from bytes")
        try:
            obj = strict_loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedReceipt("a receipt bundle is UTF-8 JSON") from None
        except (ValueError, RecursionError) as exc:
            raise MalformedReceipt(f"not a JSON receipt bundle: {exc}") from None
        top = _members(obj, "the receipt bundle", _BUNDLE_MEMBERS)
        if top["format"] != BUNDLE_FORMAT:
            raise MalformedReceipt(
                f"format is {top['format']!r}, not {BUNDLE_FORMAT!r}: not a receipt bundle"
            )
        proof = _members(top["inclusion_proof"], "inclusion_proof", _PROOF_MEMBERS)
        hashes = proof["hashes"]
        if not isinstance(hashes, list):
            raise MalformedReceipt("inclusion_proof.hashes must be a list of base64 hashes")
        return cls(
            receipt=_note_member(top["receipt"], "receipt"),
            checkpoint=_note_member(top["checkpoint"], "checkpoint"),
            leaf=_b64decode(top["leaf"], "leaf"),
            index=proof["index"],
            tree_size=proof["tree_size"],
            proof=tuple(
                _b64decode(h, f"inclusion_proof.hashes[{i}]") for i, h in enumerate(hashes)
            ),
        )


_BUNDLE_MEMBERS = frozenset({"format", "receipt", "checkpoint", "leaf", "inclusion_proof"})
_PROOF_MEMBERS = frozenset({"index", "tree_size", "hashes"})


def _members(value: object, what: str, names: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReceipt(f"{what} must be a JSON object")
    if set(value) != names:
        missing = ", ".join(sorted(names - set(value))) or "none"
        unknown = ", ".join(sorted(set(value) - names)) or "none"
        raise MalformedReceipt(f"{what} members are wrong: missing {missing}; unknown {unknown}")
    return value


def _note_member(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedReceipt(f"{what} must be the text of a signed note")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedReceipt(f"{what} is not valid UTF-8") from None


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(value: object, what: str) -> bytes:
    """Decode canonical standard base64 with padding, so each value has one encoding."""
    if not isinstance(value, str) or not value.isascii():
        raise MalformedReceipt(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedReceipt(f"{what} is not base64") from None
    if _b64encode(raw) != value:
        raise MalformedReceipt(f"{what} is not canonical base64")
    return raw
