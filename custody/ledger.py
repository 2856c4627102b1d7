"""The custody ledger: an append-only RFC 6962 Merkle log of canonical events.

Every act in Custos is one event appended here. Appends are sequenced by the store's append
lock (one transaction at a time across threads and processes; the writers of one process that
arrive while one is open join it and share its commit), get dense indexes from 0, chain
to their subject's previous event through ``prev`` and store every completed Merkle node, so a
proof reads O(log n) nodes. Checkpoints (C2SP tlog-checkpoint signed notes) are signed when a
caller needs one that covers a given index, and otherwise at most once per interval while the
log grows; each signed one is kept in the database and in the object store as
``checkpoints/<size>``. They are group-committed: callers that need one at the same moment
wait for the store's signer lock in turn, and one signature serves them all.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from custody import merkle
from custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from custody.errors import BadRequest, IntegrityError, NotFound, ObjectExists, StorageError
from custody.event_types import EVENT_TYPES
from custody.events import Event, InvalidEvent, NewEvent, format_time
from custody.interfaces import (
    AppendTransaction,
    CheckpointSigning,
    Clock,
    KeptCheckpoint,
    LedgerEntry,
    LedgerStore,
    ObjectStore,
)
from custody.keys import KeyRing

GROUP_WINDOW = 0.004
"""Seconds a checkpoint signer waits after the previous checkpoint, so that the appends of
concurrent writers land and share its signature."""
GROUP_TURNS = 64
GROUP_PAUSE = 0.0001
"""Before committing a shared append transaction, its first writer lets those waiting join
it, pausing this long for each, at most this many times."""
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Appended:
    """An event as the ledger placed it."""

    index: int
    leaf_hash: bytes
    leaf: bytes
    event: Event


def checkpoint_key(size: int) -> str:
    """Where a kept checkpoint's copy lives in the object store."""
    return f"checkpoints/{size}"


class Ledger:
    """Appends events, serves proofs, tiles and entries, and signs checkpoints."""

    def __init__(
        self,
        store: LedgerStore,
        objects: ObjectStore,
        keys: KeyRing | Callable[[], KeyRing],
        *,
        clock: Clock = utc_now,
        checkpoint_interval: float = 1.0,
        group_window: float = GROUP_WINDOW,
    ) -> None:
        self.store = store
        self.objects = objects
        # A callable is asked again before each use, so a key rotated by another process
        # is used without a restart.
        self._keys = keys if callable(keys) else (lambda: keys)
        self.clock = clock
        self.checkpoint_interval = timedelta(seconds=checkpoint_interval)
        # The frontier (the hashes of the complete subtrees covering [0, size)) of the last
        # size this process committed; it saves O(log n) reads per append while no other
        # process has appended since.
        self._frontier: tuple[int, list[bytes]] = (0, [])
        self._frontier_lock = threading.Lock()
        # The append transaction this process's writers share (see ``recording``): the mutex
        # lets one writer at a time use it; ``_waiting`` counts those queued for it.
        self._group: _Group | None = None
        self._mutex = threading.Lock()
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self.group_window = group_window
        # The newest checkpoint this process has seen kept, and the lock its threads take in
        # turn before waiting for the database's signer lock.
        self._known: KeptCheckpoint | None = None
        self._group_lock = threading.Lock()

    @property
    def keys(self) -> KeyRing:
        return self._keys()

    @property
    def origin(self) -> str:
        return self.keys.origin

    # -- appending -------------------------------------------------------------------------

    def append(self, event: NewEvent) -> Appended:
        """Append one event durably, in its own transaction. InvalidEvent, recording nothing,
        for a type custody.event_types does not list or a subject of another kind."""
        with self.recording() as recorder:
            return recorder.add(event)

    def append_batch(self, events: Sequence[NewEvent]) -> list[Appended]:
        """Append many events in one transaction: all of them or none."""
        with self.recording() as recorder:
            return recorder.add_all(events)

    @contextmanager
    def recording(self) -> Iterator[Recorder]:
        """Open an append transaction; events added to it commit with it, atomically.

        Other stores may write through ``recorder.tx`` so that a record and the events that
        describe it become durable together or not at all.

        Writers of one process group-commit: while one transaction is open, writers that
        arrive join it in turn (each in a savepoint of its own, so that one that fails takes
        back only its own writes), and the first commits it for all of them once no more are
        waiting. Every writer returns only after that commit, or raises if it failed.
        """
        with self._waiting_lock:
            self._waiting += 1
        self._mutex.acquire()
        with self._waiting_lock:
            self._waiting -= 1
        group = self._group
        try:
            if group is None:
                group = self._open_group()
                recorder = Recorder(self, group.tx, list(group.frontier))
                try:
                    yield recorder
                    group.size, group.frontier = recorder.flush()
                except BaseException:
                    self._group = None
                    group.close(*sys.exc_info())
                    raise
                leader = True
            else:
                with group.tx.savepoint():
                    recorder = Recorder(self, group.tx, list(group.frontier))
                    yield recorder
                    size, frontier = recorder.flush()
                group.size, group.frontier = size, frontier
                leader = False
        finally:
            self._mutex.release()
        if leader:
            self._commit(group)
        else:
            group.done.wait()
            if group.error is not None:
                raise StorageError(f"the shared append failed: {group.error}") from group.error

    def _open_group(self) -> _Group:
        context = self.store.appending()
        tx = context.__enter__()
        try:
            frontier = self._frontier_for(tx)
        except BaseException:
            context.__exit__(*sys.exc_info())
            raise
        self._group = _Group(context, tx, tx.size, frontier)
        return self._group

    def _commit(self, group: _Group) -> None:
        """Commit a group once no more writers wait to join it (a bounded number of turns)."""
        for _ in range(GROUP_TURNS):
            self._mutex.acquire()
            with self._waiting_lock:
                waiting = self._waiting
            if not waiting:
                break
            self._mutex.release()
            time.sleep(GROUP_PAUSE)
        else:
            self._mutex.acquire()
        self._group = None
        try:
            group.close(None, None, None)
        except BaseException as exc:
            group.error = exc
            raise
        else:
            with self._frontier_lock:
                if group.size > self._frontier[0]:
                    self._frontier = (group.size, group.frontier)
        finally:
            self._mutex.release()
            group.done.set()

    def _frontier_for(self, tx: AppendTransaction) -> list[bytes]:
        size = tx.size
        cached_size, cached = self._frontier
        if cached_size == size:
            return list(cached)
        ids = merkle.subtree_nodes(0, size)
        found = tx.nodes(ids)
        return [found[i] for i in ids]

    # -- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        return self.store.size()

    def entry(self, index: int) -> bytes:
        """The exact leaf bytes at ``index``."""
        entries = self.store.entries(index, index + 1)
        if not entries:
            raise NotFound(f"no ledger entry {index}")
        return entries[0].leaf

    def subject_entries(self, subject: str) -> list[LedgerEntry]:
        """Every entry about one subject, in ledger order."""
        return self.store.subject_entries(subject)

    def root(self, size: int) -> bytes:
        """The Merkle root of the first ``size`` leaves."""
        self._check_size(size)
        ids = merkle.subtree_nodes(0, size)
        found = self.store.nodes(ids)
        return merkle.fold_subtree([found[i] for i in ids]) if ids else merkle.EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 §2.1.3 inclusion proof of leaf ``index`` in the tree of ``tree_size``."""
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise BadRequest(f"index {index} is not below tree size {tree_size}")
        return merkle.hashes_for_ranges(
            merkle.inclusion_proof_ranges(index, tree_size), self.store.nodes
        )

    def index_of_leaf_hash(self, leaf_hash: bytes) -> int:
        index = self.store.index_of_leaf_hash(leaf_hash)
        if index is None:
            raise NotFound("no entry has that leaf hash")
        return index

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 §2.1.4 proof that the tree of ``size1`` is a prefix of that of ``size2``."""
        self._check_size(size2)
        if size1 < 1:
            raise BadRequest("a consistency proof starts from a tree of at least one leaf")
        if size1 > size2:
            raise BadRequest(f"from {size1} is larger than to {size2}")
        return merkle.hashes_for_ranges(
            merkle.consistency_proof_ranges(size1, size2), self.store.nodes
        )

    def hash_tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """C2SP tlog-tiles hash tile: ``width`` hashes of Merkle level ``8 * level``."""
        _check_tile(level, index, width)
        start = index * TILE_WIDTH
        hashes = self.store.nodes_at_level(TILE_HEIGHT * level, start, start + width)
        if len(hashes) < width:
            raise NotFound(f"tile {level}/{index} does not have {width} hashes yet")
        return b"".join(hashes)

    def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> bytes:
        """C2SP tlog-tiles entry bundle: each leaf prefixed by its big-endian uint16 length."""
        _check_tile(0, index, width)
        start = index * TILE_WIDTH
        entries = self.store.entries(start, start + width)
        if len(entries) < width:
            raise NotFound(f"entry bundle {index} does not have {width} entries yet")
        return b"".join(struct.pack(">H", len(e.leaf)) + e.leaf for e in entries)

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise BadRequest("a tree size is not negative")
        current = self.store.size()
        if size > current:
            raise BadRequest(f"tree size {size} is beyond the log's size {current}")

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, covering: int | None = None) -> KeptCheckpoint:
        """The checkpoint to hand out now.

        With ``covering``, one whose tree includes that index: the newest kept one if it
        does, else the next one signed, which every writer waiting at that moment shares
        (see ``_group_checkpoint``). Without, the newest kept one, unless the log has grown
        and that one is older than the checkpoint interval, in which case a new one is
        signed the same way.
        """
        if covering is None:
            latest = self.store.latest_checkpoint()
            size = self.store.size()
            if latest is not None and (
                latest.size >= size or self.clock() - latest.signed_at < self.checkpoint_interval
            ):
                return latest
            return self._group_checkpoint(size - 1)
        known = self._known
        if known is not None and known.size > covering:
            return known
        latest = self.store.latest_checkpoint()
        if latest is not None and latest.size > covering:
            self._remember(latest)
            return latest
        return self._group_checkpoint(covering)

    def _group_checkpoint(self, covering: int) -> KeptCheckpoint:
        """A checkpoint covering ``covering``, signed once for every writer waiting for one.

        Writers wait in turn for the signer's lock (threads of a process on a lock of their
        own first, so that one of them at a time holds a database connection for it). The
        first to get it waits out what is left of ``group_window`` since the newest
        checkpoint was signed, so that more appends land, then signs at the log's size at
        that moment; each writer after it finds that checkpoint covering its entry and
        returns it without signing. A checkpoint is thus signed at most once per window
        while writes arrive, by one signer across every process sharing the database.
        """
        with self._group_lock:
            known = self._known
            if known is not None and known.size > covering:
                return known
            latest = self.store.latest_checkpoint()
            if latest is not None and latest.size > covering:
                self._remember(latest)
                return latest
            if latest is not None:
                since = (self.clock() - latest.signed_at).total_seconds()
                if 0 <= since < self.group_window:
                    time.sleep(self.group_window - since)
            with self.store.signing_checkpoint() as signing:
                latest = signing.latest()
                if latest is None or latest.size <= covering:
                    latest = self._sign_checkpoint(signing.size(), latest, signing)
            self._remember(latest)
            return latest

    def _remember(self, kept: KeptCheckpoint) -> None:
        known = self._known
        if known is None or kept.size > known.size:
            self._known = kept

    def kept_checkpoint(self, size: int) -> KeptCheckpoint:
        kept = self.store.checkpoint(size)
        if kept is None:
            raise NotFound(f"no checkpoint was signed at size {size}")
        return kept

    def _sign_checkpoint(
        self, size: int, latest: KeptCheckpoint | None, signing: CheckpointSigning
    ) -> KeptCheckpoint:
        """Sign the checkpoint of ``size`` (the one place checkpoints are signed), copy it to
        the object store and keep it, under the signer's lock."""
        root = self.root(size)
        keys = self.keys
        signers = keys.checkpoint_signers(size, latest.size if latest else 0)
        note = sign_checkpoint(Checkpoint(keys.origin, size, root), signers)
        try:
            self.objects.put(checkpoint_key(size), note)
        except ObjectExists:
            # A signer that died before keeping it (or, before the signer's lock, another
            # worker) left this size's copy; keep that one, which must be for the same root.
            note = self.objects.get(checkpoint_key(size))
            theirs, _ = open_checkpoint(note, keys.verifiers)
            if theirs.root != root:
                # A copy left by a history that is not this one (a restore from an older
                # backup, a forked store): never adopt it; the operator must look.
                message = f"the object store's checkpoints/{size} is for another root"
                raise IntegrityError(message) from None
        kept = KeptCheckpoint(size=size, root=root, note=note, signed_at=self.clock())
        signing.keep(kept)
        return kept


class _Group:
    """An append transaction that several writers of this process share."""

    def __init__(
        self,
        context: AbstractContextManager[AppendTransaction],
        tx: AppendTransaction,
        size: int,
        frontier: list[bytes],
    ) -> None:
        self._context = context
        self.tx = tx
        self.size = size
        self.frontier = frontier
        self.done = threading.Event()
        self.error: BaseException | None = None

    def close(self, *exc_info: Any) -> None:
        """Commit (no exception) or roll back, as the store's ``appending`` context does."""
        self._context.__exit__(*exc_info)


class Recorder:
    """Events being appended inside one open append transaction."""

    def __init__(self, ledger: Ledger, tx: AppendTransaction, frontier: list[bytes]) -> None:
        self.ledger = ledger
        self.tx = tx
        self._start = tx.size
        self._frontier = frontier
        self._entries: list[LedgerEntry] = []
        self._heads: dict[str, tuple[int, bytes] | None] = {}

    @property
    def next_index(self) -> int:
        return self._start + len(self._entries)

    def add(self, event: NewEvent, at: datetime | None = None) -> Appended:
        """Place one event: next index, ``prev`` from its subject's last event, time ``at``
        (default now; a record that states its own time passes the same moment)."""
        self._load_heads([event.subject.key])
        return self._place(event, format_time(at or self.ledger.clock()))

    def add_all(self, events: Sequence[NewEvent]) -> list[Appended]:
        """Place several events; one transaction, so one moment: they share its time."""
        self._load_heads([e.subject.key for e in events])
        now = format_time(self.ledger.clock())
        return [self._place(e, now) for e in events]

    def _load_heads(self, subjects: Sequence[str]) -> None:
        missing = sorted({s for s in subjects if s not in self._heads})
        if missing:
            found = self.tx.subject_heads(missing)
            for subject in missing:
                self._heads[subject] = found.get(subject)

    def _place(self, new: NewEvent, time: str) -> Appended:
        registered = EVENT_TYPES.get(new.type)
        if registered is None:
            raise InvalidEvent(f"the ledger records no {new.type!r} events (custody.event_types)")
        if new.subject.kind != registered.subject:
            raise InvalidEvent(
                f"a {new.type} event is about a {registered.subject}, not a {new.subject.kind} "
                "(custody.event_types)"
            )
        key = new.subject.key
        head = self._heads[key]
        event = Event(
            type=new.type,
            time=time,
            actor=new.actor,
            subject=new.subject,
            prev=head[1].hex() if head is not None else None,
            data=new.data,
        )
        leaf = event.encode(data_checked=True)
        leaf_hash = merkle.leaf_hash(leaf)
        entry = LedgerEntry(
            index=self.next_index,
            subject=key,
            leaf_hash=leaf_hash,
            leaf=leaf,
            prev_index=head[0] if head is not None else None,
        )
        self._entries.append(entry)
        self._heads[key] = (entry.index, leaf_hash)
        return Appended(index=entry.index, leaf_hash=leaf_hash, leaf=leaf, event=event)

    def flush(self) -> tuple[int, list[bytes]]:
        """Write the placed entries and their Merkle nodes; returns the new size and frontier."""
        nodes, frontier = merkle.append_leaves(
            self._frontier, self._start, [e.leaf_hash for e in self._entries]
        )
        if self._entries:
            self.tx.write(self._entries, nodes)
        return self.next_index, frontier


def _check_tile(level: int, index: int, width: int) -> None:
    if level < 0 or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise BadRequest("tile level and index are not negative; width is 1 to 256")
