"""The interfaces custody needs from the outside world; ``storage/`` implements them.

Implementations are chosen from configuration in one place (``storage.deployment``); the
domain code sees only these protocols and the project's own exceptions (``custody.errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from custody.merkle import NodeId


class Clock(Protocol):
    """Injectable time, so the ledger and deadlines are deterministic under test."""

    def __call__(self) -> datetime: ...


@dataclass(frozen=True)
class StoredObject:
    """Where an object ended up: its key, size and (on versioned stores) its version id."""

    key: str
    size: int
    version_id: str | None = None


class StagedUpload(Protocol):
    """Bytes being received before anyone may see them (an upload, an ingest).

    ``write`` appends; ``finish`` makes what was written durable in the staging area;
    ``commit`` then makes it visible under ``key``, write-once: when ``key`` already holds an
    object (blobs are content-addressed, so the same bytes), the staged copy is discarded and
    the existing object returned. ``discard`` removes every trace and may be called at any
    point, more than once. Staged data is never under retention or legal hold.

    ``write`` may be handed a view of a buffer that is refilled once it returns: it copies
    what it keeps, and holds no reference to ``chunk``.
    """

    @property
    def size(self) -> int: ...

    def write(self, chunk: bytes | memoryview) -> None: ...

    def finish(self) -> None: ...

    def commit(self, key: str) -> StoredObject: ...

    def discard(self) -> None: ...


class ObjectStore(Protocol):
    """Write-once storage of named byte strings (blobs, manifests, checkpoints).

    ``put`` never replaces content: writing a key that already holds the same bytes succeeds
    and returns the existing object; different bytes raise ``ObjectExists``. A put or commit
    that returns is durable. Reads of a missing key raise ``ObjectNotFound``. Committed objects
    may carry retention (until a date) and a legal hold; ``delete`` refuses, with
    ``ObjectLocked``, while either applies.
    """

    def put(self, key: str, data: bytes) -> StoredObject: ...

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject: ...

    def stage(self) -> StagedUpload: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def set_legal_hold(self, key: str, on: bool) -> None: ...

    def retained_until(self, key: str) -> datetime | None: ...

    def delete(self, key: str) -> None: ...

    def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove abandoned staging data older than that; returns how many were removed."""


@dataclass(frozen=True)
class LedgerEntry:
    """One leaf as stored: its index, the subject it concerns, its hash, its bytes, and the
    index of the same subject's previous event (the chain ``prev`` names by hash)."""

    index: int
    subject: str
    leaf_hash: bytes
    leaf: bytes
    prev_index: int | None = None


@dataclass(frozen=True)
class KeptCheckpoint:
    """A signed checkpoint as kept: the tree size, its root and the signed note's bytes."""

    size: int
    root: bytes
    note: bytes
    signed_at: datetime


class AppendTransaction(Protocol):
    """An open transaction holding the ledger's append lock.

    Only one exists at a time across every thread and process sharing the database, so
    ``size`` cannot change under it. Other stores may write through the same transaction so
    that a record and its ledger event commit together.
    """

    @property
    def size(self) -> int: ...

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]: ...

    def subject_heads(self, subjects: Sequence[str]) -> Mapping[str, tuple[int, bytes]]:
        """Each named subject's last event so far: (index, leaf hash)."""

    def write(self, entries: Sequence[LedgerEntry], nodes: Sequence[tuple[NodeId, bytes]]) -> None:
        """Store the entries and nodes and move the size past the last entry."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the transaction that an exception undoes alone (the size included)."""


class CheckpointSigning(Protocol):
    """An open transaction holding the checkpoint signer's lock.

    Only one exists at a time across every thread and process sharing the database, so one
    signer signs for every writer waiting on it and no two sign the same size.
    """

    def latest(self) -> KeptCheckpoint | None:
        """The newest kept checkpoint."""

    def size(self) -> int:
        """The log's committed size now."""

    def keep(self, checkpoint: KeptCheckpoint) -> None:
        """Keep a signed checkpoint; it is durable when the transaction ends."""


class LedgerStore(Protocol):
    """Durable storage of ledger entries, Merkle nodes and kept checkpoints."""

    def appending(self) -> AbstractContextManager[AppendTransaction]:
        """Take the append lock; commit (durably) on normal exit, roll back on an exception."""

    def reads_together(self) -> AbstractContextManager[None]:
        """Within, the reads below share one connection (each still sees what was committed
        before it began): for a caller that makes many of them at once."""

    def size(self) -> int: ...

    def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]: ...

    def nodes_at_level(self, level: int, start: int, end: int) -> list[bytes]: ...

    def entries(self, start: int, end: int) -> list[LedgerEntry]: ...

    def subject_entries(self, subject: str) -> list[LedgerEntry]: ...

    def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None: ...

    def iter_entries(self) -> Iterator[LedgerEntry]: ...

    def all_subject_heads(self) -> Iterator[tuple[str, int, bytes]]:
        """Each subject's last (index, leaf hash), as kept for placing the next event."""

    def node_count(self) -> int: ...

    def opener(self) -> Callable[[], LedgerStore]:
        """A picklable callable that opens this same store in another process."""

    def signing_checkpoint(self) -> AbstractContextManager[CheckpointSigning]:
        """Take the checkpoint signer's lock; commit (durably) on normal exit."""

    def latest_checkpoint(self) -> KeptCheckpoint | None: ...

    def checkpoint(self, size: int) -> KeptCheckpoint | None: ...

    def checkpoints(self) -> list[KeptCheckpoint]: ...
