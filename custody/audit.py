"""``custos audit``: re-derive the whole ledger from its stored entries and compare.

The audit trusts nothing the store says about itself:
  (1) indexes run densely from 0 and match the recorded size;
  (2) each leaf hash is recomputed from the leaf bytes, which must be a canonical event of the
      subject it is filed under;
  (3) each event's ``prev`` is the leaf hash of the same subject's previous event;
  (4) every Merkle node is recomputed from the leaves; the stored nodes must be exactly those;
  (5) every kept checkpoint is signed by a key of the ring, its root equals the root recomputed
      at its size, and the object store holds the same bytes. Because every root is recomputed
      from one sequence of leaves, the kept checkpoints are consistent with each other and with
      today's log exactly when they all pass.
Findings are ordered by ledger index; the first one is the one to investigate first.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice

from custody import merkle
from custody.checkpoint import MalformedCheckpoint, open_checkpoint
from custody.errors import ObjectNotFound
from custody.events import Event, InvalidEvent
from custody.interfaces import LedgerEntry, LedgerStore, ObjectStore
from custody.keys import KeyRing
from custody.ledger import checkpoint_key
from custody.note import MalformedNote, NoteVerificationError

# Findings at the same index are ordered by what they are about: an entry's own fault comes
# before the Merkle nodes it spoils, and those before the checkpoints that cover them.
ENTRY, NODE, CHECKPOINT = 0, 1, 2


@dataclass(frozen=True, order=True)
class Finding:
    """One thing wrong, at a ledger index: an entry's, the last leaf under a node, or a
    checkpoint's tree size."""

    index: int
    rank: int = field(compare=True)
    problem: str = field(compare=False)

    def __str__(self) -> str:
        return f"index {self.index}: {self.problem}"


@dataclass
class AuditReport:
    size: int = 0
    subjects: int = 0
    nodes: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings) if self.findings else None


class _Levels:
    """Every complete node of the tree, recomputed from the leaf hashes, level by level."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.levels = [leaf_hashes]
        node = merkle.node_hash
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def get(self, node_id: merkle.NodeId) -> bytes | None:
        level, index = node_id
        if level < len(self.levels) and index < len(self.levels[level]):
            return self.levels[level][index]
        return None

    def count(self) -> int:
        return sum(len(level) for level in self.levels)

    def root(self, size: int) -> bytes:
        ids = merkle.subtree_nodes(0, size)
        return (
            merkle.fold_subtree([self.levels[lv][i] for lv, i in ids]) if ids else merkle.EMPTY_ROOT
        )


_CHUNK = 5_000
_PARALLEL_FROM = 20_000

Decoded = tuple[bytes, str | None, str | None, str | None]


def _decode_chunk(leaves: list[bytes]) -> list[Decoded]:
    """Per leaf: its recomputed leaf hash, and its subject and prev, or why it is no event."""
    out: list[Decoded] = []
    for leaf in leaves:
        computed = merkle.leaf_hash(leaf)
        try:
            event = Event.decode(leaf)
        except InvalidEvent as exc:
            out.append((computed, None, None, str(exc)))
        else:
            out.append((computed, event.subject.key, event.prev, None))
    return out


def _decoded_chunks(
    entries: Iterator[LedgerEntry],
) -> Iterator[tuple[list[LedgerEntry], list[Decoded]]]:
    """The entries in chunks, each with its decoding; on worker processes for large logs."""
    chunks = iter(lambda: list(islice(entries, _CHUNK)), [])
    first = list(islice(chunks, _PARALLEL_FROM // _CHUNK))
    workers = os.cpu_count() or 1
    if len(first) < _PARALLEL_FROM // _CHUNK or workers < 2:
        for chunk in chain(first, chunks):
            yield chunk, _decode_chunk([e.leaf for e in chunk])
        return
    # A bounded window of chunks in flight keeps memory flat whatever the log's size.
    with ProcessPoolExecutor(workers) as pool:
        window: deque[tuple[list[LedgerEntry], Future[list[Decoded]]]] = deque()
        for chunk in chain(first, chunks):
            window.append((chunk, pool.submit(_decode_chunk, [e.leaf for e in chunk])))
            if len(window) > 2 * workers:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


def audit_ledger(
    store: LedgerStore, objects: ObjectStore, keys: KeyRing, *, max_findings: int = 100
) -> AuditReport:
    """Audit every entry, node and kept checkpoint; never raises for what it finds."""
    report = AuditReport()
    found = report.findings
    recorded_size = store.size()

    # (1)-(3): entries, leaf hashes, canonical events and prev chains. Decoding is the costly
    # part and each entry's is independent, so it runs on every core; the chain checks need
    # ledger order and run here, as the decoded chunks come back in order.
    leaf_hashes: list[bytes] = []
    heads: dict[str, bytes] = {}
    head_index: dict[str, int] = {}
    for chunk, decoded in _decoded_chunks(store.iter_entries()):
        for entry, (computed, subject, prev, error) in zip(chunk, decoded, strict=True):
            if len(found) >= max_findings:
                break
            if entry.index != len(leaf_hashes):
                found.append(
                    Finding(
                        len(leaf_hashes), ENTRY, f"entry missing (next stored is {entry.index})"
                    )
                )
                break
            leaf_hashes.append(computed)
            if computed != entry.leaf_hash:
                found.append(
                    Finding(entry.index, ENTRY, "leaf bytes do not match the stored leaf hash")
                )
            if error is not None:
                found.append(Finding(entry.index, ENTRY, f"leaf is not a valid event: {error}"))
                continue
            assert subject is not None
            if subject != entry.subject:
                found.append(
                    Finding(
                        entry.index, ENTRY, f"filed under {entry.subject} but is about {subject}"
                    )
                )
            expected = heads.get(subject)
            if prev != (expected.hex() if expected else None):
                found.append(
                    Finding(entry.index, ENTRY, f"prev does not name {subject}'s previous event")
                )
            heads[subject] = computed
            head_index[subject] = entry.index
        else:
            continue
        break
    report.size = len(leaf_hashes)
    report.subjects = len(heads)
    if report.size != recorded_size and not found:
        found.append(Finding(report.size, ENTRY, f"the log records size {recorded_size}"))

    # (3, continued): the kept subject heads, which place the next event, are the real ones.
    for subject, index, last_hash in store.subject_heads():
        last = head_index.get(subject)
        if last != index or heads.get(subject) != last_hash:
            # A head beyond the end of the log means the log lost its tail.
            first_bad = min(index, report.size)
            found.append(
                Finding(first_bad, ENTRY, f"the kept head of {subject} is not its last event")
            )
        head_index.pop(subject, None)
    for subject, index in head_index.items():
        found.append(Finding(index, ENTRY, f"no head is kept for {subject}"))

    # (4): every stored node, and only those, equal the recomputed ones.
    levels = _Levels(leaf_hashes)
    expected_nodes = levels.count()
    seen = 0
    for node_id, stored in store.iter_nodes():
        if len(found) >= max_findings:
            break
        level, index = node_id
        computed_node = levels.get(node_id)
        last_leaf = ((index + 1) << level) - 1
        if computed_node is None:
            found.append(Finding(last_leaf, NODE, f"node {level}/{index} should not exist"))
        elif computed_node != stored:
            found.append(
                Finding(last_leaf, NODE, f"node {level}/{index} differs from its recomputation")
            )
        else:
            seen += 1
    report.nodes = seen
    if seen < expected_nodes and not found:
        found.append(Finding(0, NODE, f"{expected_nodes - seen} Merkle nodes are missing"))

    # (5): kept checkpoints.
    for kept in store.checkpoints():
        report.checkpoints += 1
        problems = _checkpoint_problems(kept.size, kept.root, kept.note, levels, report, keys)
        for problem in problems:
            found.append(Finding(kept.size, CHECKPOINT, f"checkpoint {kept.size}: {problem}"))
        try:
            copy = objects.get(checkpoint_key(kept.size))
        except ObjectNotFound:
            found.append(
                Finding(
                    kept.size, CHECKPOINT + 1, f"checkpoint {kept.size}: object store copy missing"
                )
            )
        else:
            if copy != kept.note:
                found.append(
                    Finding(
                        kept.size,
                        CHECKPOINT + 1,
                        f"checkpoint {kept.size}: object store copy differs",
                    )
                )
    found.sort()  # stable: within one rank, the order found
    return report


def _checkpoint_problems(
    size: int, root: bytes, note: bytes, levels: _Levels, report: AuditReport, keys: KeyRing
) -> Iterator[str]:
    try:
        checkpoint, _ = open_checkpoint(note, keys.verifiers, keys.origin)
    except (MalformedNote, MalformedCheckpoint, NoteVerificationError) as exc:
        yield f"signature or form: {exc}"
        return
    if checkpoint.size != size or checkpoint.root != root:
        yield "the signed note does not state the kept size and root"
    if size > report.size:
        yield f"covers {size} entries but the log has {report.size}"
    elif levels.root(size) != checkpoint.root:
        yield "its root is not the root recomputed from the entries"
