"""Offline verification of an ingest receipt file (``custos/receipt-bundle/v1``).

A court, the defence or the uploader checks that the service recorded the evidence in its
ledger as the receipt says, trusting nothing but the verifier keys they pinned beforehand. The
procedure is the numbered checklist :data:`RECEIPT_CHECKS`; each block of
:func:`verify_receipt` is tagged with its number, so the code can be read against the printed
report line by line.

Imports only the standard library, ``cryptography`` (through custody.note) and the verifier's
own modules.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.checkpoint import MalformedCheckpoint, open_checkpoint
from custody.event_types import EVENT_VERSION
from custody.json_codec import strict_loads
from custody.merkle import InvalidProof, leaf_hash, verify_inclusion
from custody.note import (
    MalformedNote,
    Note,
    NoteSignature,
    NoteVerificationError,
    NoteVerifier,
)
from custody.receipt import (
    RECEIPT_TYPE,
    MalformedReceipt,
    Receipt,
    ReceiptBundle,
    open_receipt,
)
from custody.verify.errors import PinnedKeyError, VerificationError

__all__ = [
    "ARTIFACT_STEP",
    "INGEST_EVENT_TYPE",
    "RECEIPT_CHECKS",
    "ReceiptReport",
    "pinned_verifiers",
    "verify_receipt",
    "verify_receipt_against",
]

INGEST_EVENT_TYPE = "evidence.ingested"

RECEIPT_CHECKS: tuple[str, ...] = (
    "the file is a well-formed receipt bundle",
    f"the receipt is a {RECEIPT_TYPE} note signed by a pinned key",
    "the checkpoint is signed by a pinned key of the log that signed the receipt",
    "the leaf hashes to the receipt's leaf and is in the checkpoint's tree at the receipt's index",
    f"the leaf is the {INGEST_EVENT_TYPE} event of the receipt's evidence, size, digests and time",
    "the artifact's bytes have the receipt's size and every digest it records (--artifact)",
)
"""The numbered checks of :func:`verify_receipt`; check (n) is ``RECEIPT_CHECKS[n - 1]``."""

ARTIFACT_STEP = 6
"""The check of the files the caller holds; with none given there is nothing to check."""
_CHUNK = 1024**2


@dataclass(frozen=True)
class ReceiptReport:
    """What a verified receipt proves, and which pinned keys vouched for it."""

    evidence_id: str
    size: int
    digests: Mapping[str, str] = field(hash=False)
    received_at: str
    ledger_index: int
    tree_size: int
    root: bytes
    log: str
    """The log's origin, which is the name of every key that signed."""
    receipt_signed_by: tuple[str, ...]
    """``<name>+<key hash hex>`` of each pinned key whose signature on the receipt verified."""
    checkpoint_signed_by: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """Return the report as a JSON object (hashes in lowercase hex)."""
        return {
            "evidence_id": self.evidence_id,
            "size": self.size,
            "digests": dict(self.digests),
            "received_at": self.received_at,
            "ledger_index": self.ledger_index,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "log": self.log,
            "receipt_signed_by": list(self.receipt_signed_by),
            "checkpoint_signed_by": list(self.checkpoint_signed_by),
        }

    def summary(self) -> list[tuple[str, str]]:
        """Return (label, value) lines for people."""
        return [
            ("evidence", self.evidence_id),
            ("size", f"{self.size} bytes"),
            *(("digest", f"{alg} {hexdigest}") for alg, hexdigest in self.digests.items()),
            ("received", self.received_at),
            ("ledger entry", str(self.ledger_index)),
            ("tree", f"{self.tree_size} entries, root {self.root.hex()}"),
            ("log", self.log),
            ("receipt signed by", ", ".join(self.receipt_signed_by)),
            ("checkpoint signed by", ", ".join(self.checkpoint_signed_by)),
        ]


def pinned_verifiers(keys: Sequence[str]) -> list[NoteVerifier]:
    """Parse the verifier keys the caller pinned; raise PinnedKeyError (a ValueError) naming a
    malformed one."""
    if isinstance(keys, str) or not keys:
        raise PinnedKeyError("pin at least one verifier key (<name>+<hash>+<base64 key>)")
    verifiers = []
    for key in keys:
        try:
            verifiers.append(NoteVerifier.from_key(key))
        except MalformedNote as exc:
            raise PinnedKeyError(f"{key!r} is not a verifier key: {exc}") from None
    return verifiers


def verify_receipt(
    bundle_bytes: bytes,
    keys: Sequence[str],
    artifacts: Sequence[str | os.PathLike[str]] = (),
) -> ReceiptReport:
    """Verify a receipt bundle file against pinned verifier keys and report what it proves;
    with ``artifacts``, also that each of those files holds the bytes the receipt describes.

    Raises VerificationError naming the first check that failed, or PinnedKeyError (a
    ValueError) if a pinned key is malformed. A key is trusted only if it is in ``keys``: the
    signature lines of the bundle name keys, they never supply one.

    The checks, in order:

    (1) the file is a well-formed receipt bundle;
    (2) the receipt note is signed by a pinned key and is a ``custos/receipt/v1``;
    (3) the checkpoint is signed by a pinned key whose name is its origin, and that origin is
        the log whose key signed the receipt;
    (4) the leaf hashes (RFC 9162 section 2.1.1) to the receipt's ``leaf``, and its inclusion
        proof at the receipt's ``index`` verifies against the checkpoint's root and size
        (section 2.1.3.2);
    (5) the leaf is an ``evidence.ingested`` event for the receipt's evidence id, whose size
        and digests equal the receipt's and whose time equals its ``received``;
    (6) each artifact has the receipt's size and every digest it records (none given: not
        checked).
    """
    report = verify_receipt_against(bundle_bytes, pinned_verifiers(keys))
    # (6): the artifact's bytes have the receipt's size and every digest it records
    for artifact in artifacts:
        _check_artifact(report, artifact)
    return report


def verify_receipt_against(bundle_bytes: bytes, verifiers: Sequence[NoteVerifier]) -> ReceiptReport:
    """:func:`verify_receipt` with the pinned keys already parsed (the exhibit procedure
    passes the keys of its bundle's log only)."""
    # (1): the file is a well-formed receipt bundle
    try:
        bundle = ReceiptBundle.from_json(bundle_bytes)
    except MalformedReceipt as exc:
        raise VerificationError(1, f"the file is not a well-formed receipt bundle: {exc}") from None

    # (2): the receipt note is signed by a pinned key and is a custos/receipt/v1
    try:
        receipt, receipt_note = open_receipt(bundle.receipt, verifiers)
    except NoteVerificationError as exc:
        raise VerificationError(2, _untrusted(bundle.receipt, verifiers, "receipt", exc)) from None
    except (MalformedNote, MalformedReceipt) as exc:
        raise VerificationError(
            2, f"a pinned key signed this note, but it is not a valid {RECEIPT_TYPE}: {exc}"
        ) from None

    # (3): the checkpoint is signed by a pinned key named as its origin, the receipt's log
    origin = _first_line(bundle.checkpoint)
    log_keys = [v for v in verifiers if v.name == origin]  # one log: no other key counts
    try:
        if not log_keys:
            raise NoteVerificationError(f"no pinned key of log {origin!r}")
        checkpoint, checkpoint_note = open_checkpoint(bundle.checkpoint, log_keys, origin)
    except NoteVerificationError as exc:
        raise VerificationError(
            3, _untrusted(bundle.checkpoint, verifiers, "checkpoint", exc, origin)
        ) from None
    except (MalformedNote, MalformedCheckpoint) as exc:
        raise VerificationError(
            3, f"a pinned key signed this note, but it is not a well-formed checkpoint: {exc}"
        ) from None
    receipt_signatures = [sig for sig in receipt_note.signatures if sig.name == origin]
    if not receipt_signatures:
        raise VerificationError(
            3,
            f"the checkpoint is of log {checkpoint.origin!r} but the receipt is signed only by "
            f"{', '.join(_key_ids(receipt_note.signatures))}, a pinned key of another log: they "
            "come from different logs, and a note is trusted only under the origin of its log",
        )

    # (4): the leaf hashes to the receipt's leaf and is included at its index
    computed = leaf_hash(bundle.leaf)
    if computed != receipt.leaf_hash:
        raise VerificationError(
            4,
            f"the leaf in the file hashes to {computed.hex()}, but the receipt commits to leaf "
            f"{receipt.leaf_hash.hex()}: the leaf was altered or belongs to another receipt",
        )
    if bundle.index != receipt.ledger_index:
        raise VerificationError(
            4,
            f"the inclusion proof is for index {bundle.index}, but the receipt records ledger "
            f"index {receipt.ledger_index}",
        )
    if bundle.tree_size != checkpoint.size:
        raise VerificationError(
            4,
            f"the inclusion proof is for a tree of size {bundle.tree_size}, but the checkpoint "
            f"is of size {checkpoint.size}",
        )
    try:
        verify_inclusion(
            receipt.leaf_hash, receipt.ledger_index, checkpoint.size, bundle.proof, checkpoint.root
        )
    except InvalidProof as exc:
        raise VerificationError(
            4, f"the leaf is not proven to be in the checkpoint's tree: {exc}"
        ) from None

    # (5): the leaf is the evidence.ingested event the receipt describes
    _check_ingest_event(bundle.leaf, receipt)

    return ReceiptReport(
        evidence_id=receipt.evidence_id,
        size=receipt.size,
        digests=receipt.digests,
        received_at=receipt.received_at,
        ledger_index=receipt.ledger_index,
        tree_size=checkpoint.size,
        root=checkpoint.root,
        log=checkpoint.origin,
        receipt_signed_by=_key_ids(receipt_signatures),
        checkpoint_signed_by=_key_ids(checkpoint_note.signatures),
    )


def _check_artifact(report: ReceiptReport, artifact: str | os.PathLike[str]) -> None:
    """Check (6) for one file: read once through every digest the receipt records. An OSError
    (a file that cannot be read) is the caller's to report: nothing was verified of it."""
    hashers = {}
    for alg in report.digests:
        try:
            hashers[alg] = hashlib.new(alg)
        except (ValueError, TypeError):
            hashers.pop(alg, None)
        if alg not in hashers or not hashers[alg].digest_size:
            raise VerificationError(
                ARTIFACT_STEP, f"the receipt records a {alg} digest, which this verifier lacks"
            )
    size = 0
    with open(artifact, "rb") as file:
        while chunk := file.read(_CHUNK):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    what = f"the artifact {os.fspath(artifact)}"
    if size != report.size:
        raise VerificationError(
            ARTIFACT_STEP, f"{what} is {size} bytes, but the receipt records {report.size}"
        )
    for alg, recorded in sorted(report.digests.items()):
        if hashers[alg].hexdigest() != recorded:
            raise VerificationError(
                ARTIFACT_STEP,
                f"{what} has {alg} {hashers[alg].hexdigest()}, but the receipt records "
                f"{recorded}: these are not the bytes that were received",
            )


def _first_line(data: bytes) -> str:
    """A note's first line, which names a checkpoint's log (read to choose the keys only)."""
    return data.split(b"\n", 1)[0].decode("utf-8", "replace")


def _untrusted(
    data: bytes,
    verifiers: Sequence[NoteVerifier],
    what: str,
    exc: NoteVerificationError,
    origin: str | None = None,
) -> str:
    """Say why a well-formed note did not open: a bad pinned signature, a pinned key of
    another log than ``origin`` (the only log whose keys count), or no pinned key."""
    pinned = {(v.name, v.key_hash) for v in verifiers}
    signatures = Note.from_bytes(data).signatures  # well formed: checked in (1)
    ours = [sig for sig in signatures if (sig.name, sig.key_hash) in pinned]
    if any(origin is None or sig.name == origin for sig in ours):
        return f"the {what} does not match its signature by a pinned key ({exc}): it was altered"
    if ours:
        return (
            f"the {what} is of log {origin!r}, but it is signed only by "
            f"{', '.join(_key_ids(ours))}, a pinned key of another log: a note is trusted only "
            "under the origin of its log, so that signature is ignored"
        )
    return (
        f"the {what} is signed only by keys you did not pin ({', '.join(_key_ids(signatures))});"
        " a key named in the file is never trusted, pin the log's verifier key with --key"
    )


def _key_ids(signatures: Sequence[NoteSignature]) -> tuple[str, ...]:
    return tuple(f"{sig.name}+{sig.key_hash.hex()}" for sig in signatures)


def _fail5(message: str) -> VerificationError:
    return VerificationError(5, message)


def _check_ingest_event(leaf: bytes, receipt: Receipt) -> None:
    """Check (5): the leaf records the ingest the receipt describes, field for field.

    Read strictly, with no canonical-form check: the leaf bytes are already bound to the
    ledger by their hash, so only their meaning is checked here.
    """
    try:
        event = strict_loads(leaf.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail5(f"the leaf is not a JSON event: {exc}") from None
    if not isinstance(event, dict) or not _equals_int(event.get("v"), EVENT_VERSION):
        raise _fail5(f"the leaf is not a version {EVENT_VERSION} custody event")
    if event.get("type") != INGEST_EVENT_TYPE:
        raise _fail5(
            f"the leaf is a {event.get('type')!r} event, not {INGEST_EVENT_TYPE!r}: the receipt "
            "points at an entry that is not an ingest"
        )
    subject = event.get("subject")
    if not isinstance(subject, dict) or subject.get("kind") != "evidence":
        raise _fail5("the leaf's subject is not an item of evidence")
    if subject.get("id") != receipt.evidence_id:
        raise _fail5(
            f"the leaf records the ingest of {subject.get('id')!r}, not of the receipt's "
            f"{receipt.evidence_id!r}"
        )
    if event.get("time") != receipt.received_at:
        raise _fail5(
            f"the leaf was recorded at {event.get('time')!r}, but the receipt says "
            f"{receipt.received_at!r}"
        )
    data = event.get("data")
    if not isinstance(data, dict):
        raise _fail5("the leaf has no data object")
    size = data.get("size")
    if not _equals_int(size, receipt.size):
        raise _fail5(f"the leaf records a size of {size!r} bytes, the receipt {receipt.size}")
    digests = data.get("digests")
    if not isinstance(digests, dict):
        raise _fail5("the leaf records no digests")
    if digests != dict(receipt.digests):
        differences = _digest_diff(digests, receipt)
        raise _fail5(f"the leaf's digests differ from the receipt's: {differences}")


def _equals_int(value: object, expected: int) -> bool:
    """Report whether value is the JSON integer ``expected`` (not true, not 1.0)."""
    return type(value) is int and value == expected


def _digest_diff(leaf_digests: Mapping[str, object], receipt: Receipt) -> str:
    differences = []
    for alg in sorted(set(leaf_digests) | set(receipt.digests)):
        in_leaf, in_receipt = leaf_digests.get(alg), receipt.digests.get(alg)
        if in_leaf != in_receipt:
            differences.append(f"{alg}: leaf {in_leaf!r}, receipt {in_receipt!r}")
    return "; ".join(differences)
