"""C2SP transparency log checkpoints (c2sp.org/tlog-checkpoint) carried in signed notes."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from custody.merkle import InvalidProof, verify_consistency
from custody.note import (
    MalformedNote,
    Note,
    NoteSigner,
    NoteVerificationError,
    NoteVerifier,
    open_note,
    sign_note,
)

__all__ = [
    "MAX_TREE_SIZE",
    "Checkpoint",
    "MalformedCheckpoint",
    "MalformedNote",
    "NotExtended",
    "NoteVerificationError",
    "check_extends",
    "open_checkpoint",
    "sign_checkpoint",
]

ROOT_HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1
"""Largest tree size accepted, the uint64 bound of the Go implementations."""

_SIZE = re.compile("0|[1-9][0-9]{0,19}")
_FORBIDDEN_CONTROL = re.compile("[\x00-\x1f]")


class MalformedCheckpoint(ValueError):
    """The note text is not a well-formed checkpoint body."""


def _check_line(value: object, what: str) -> None:
    """Raise MalformedCheckpoint unless value is a non-empty UTF-8 line with no control char."""
    if not isinstance(value, str) or value == "":
        raise MalformedCheckpoint(f"{what} must be a non-empty string")
    if _FORBIDDEN_CONTROL.search(value) is not None:
        raise MalformedCheckpoint(f"{what} must hold no newline or control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedCheckpoint(f"{what} must be valid UTF-8") from None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, RFC 6962 root hash and opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check that to_text() gives a well-formed body that parses back to this value."""
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise MalformedCheckpoint("tree size must be an int")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpoint(f"tree size must be in [0, 2**64), not {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_HASH_SIZE:
            raise MalformedCheckpoint("root hash must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            _check_line(ext, "extension line")

    def to_text(self) -> str:
        """Return the note text: origin, size and base64 root lines, then the extension lines."""
        root = base64.b64encode(self.root).decode("ascii")
        head = f"{self.origin}\n{self.size}\n{root}\n"
        return head + "".join(ext + "\n" for ext in self.extensions)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly, raising MalformedCheckpoint on any deviation."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedCheckpoint("a checkpoint body ends in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpoint("a checkpoint body has at least three lines")
        if "" in lines:
            raise MalformedCheckpoint("a checkpoint body has no empty line")
        origin, size_line, root_line, *extensions = lines
        if _SIZE.fullmatch(size_line) is None:
            raise MalformedCheckpoint(f"tree size {size_line!r} is not canonical decimal")
        size = int(size_line)
        if size > MAX_TREE_SIZE:
            raise MalformedCheckpoint("tree size is larger than 2**64 - 1")
        if not root_line.isascii():
            raise MalformedCheckpoint("root hash is not base64")
        try:
            root = base64.b64decode(root_line, validate=True)
        except ValueError:
            raise MalformedCheckpoint("root hash is not base64") from None
        if base64.b64encode(root).decode("ascii") != root_line:
            raise MalformedCheckpoint("root hash is not canonical base64")
        if len(root) != ROOT_HASH_SIZE:
            raise MalformedCheckpoint(f"root hash is {len(root)} bytes, not 32")
        return cls(origin=origin, size=size, root=root, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> bytes:
    """Sign the checkpoint body with every signer and return the encoded note."""
    return sign_note(checkpoint.to_text(), signers)


def open_checkpoint(
    data: bytes, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint, which needs a trusted signature by a key named as its origin."""
    note = open_note(data, verifiers)  # the text is read only once a trusted key signed it
    checkpoint = Checkpoint.from_text(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteVerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    if not any(sig.name == checkpoint.origin for sig in note.signatures):
        signed_by = ", ".join(sig.name for sig in note.signatures)
        raise NoteVerificationError(
            f"checkpoint for {checkpoint.origin!r} not signed by a trusted key of that name"
            f" (trusted signatures from: {signed_by})"
        )
    return checkpoint, note


class NotExtended(ValueError):
    """A later checkpoint is not shown to extend an earlier one. ``reason`` says how:
    :attr:`OTHER_LOG`, :attr:`SHRANK`, :attr:`FORKED` (same size, another root) or
    :attr:`UNPROVEN` (the consistency proof fails); the message says it in words."""

    OTHER_LOG = "other log"
    SHRANK = "shrank"
    FORKED = "forked"
    UNPROVEN = "unproven"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_extends(
    earlier: Checkpoint,
    later: Checkpoint,
    prove: Callable[[int, int], Sequence[bytes]],
) -> Sequence[bytes]:
    """Check that the log of ``later`` extends the tree of ``earlier``: the same origin, no
    fewer entries, the same root at the same size, else an RFC 9162 (2.1.4.2) consistency
    proof from the one to the other. ``prove(size1, size2)`` gives that proof; it is asked
    only when the sizes differ, and may raise to say why it has none. An empty earlier tree
    proves nothing, so nothing extends it (custody.merkle.verify_consistency). Returns the
    proof checked (empty at equal sizes); raises NotExtended.

    This is the one check behind both ``custos log consistency`` and step (8) of the exhibit
    verifier, which phrase its outcome for their readers.
    """
    if earlier.origin != later.origin:
        raise NotExtended(
            NotExtended.OTHER_LOG,
            f"the checkpoints are of logs {earlier.origin} and {later.origin}",
        )
    if earlier.size > later.size:
        raise NotExtended(
            NotExtended.SHRANK,
            f"size1 {earlier.size} is larger than size2 {later.size}: a log cannot shrink",
        )
    if earlier.size == later.size and earlier.size > 0:
        if earlier.root != later.root:
            raise NotExtended(
                NotExtended.FORKED,
                f"trees of equal size {earlier.size} have different roots: the log forked",
            )
        return ()
    proof = prove(earlier.size, later.size)
    try:
        verify_consistency(earlier.size, later.size, proof, earlier.root, later.root)
    except InvalidProof as exc:
        raise NotExtended(NotExtended.UNPROVEN, str(exc)) from None
    return proof
