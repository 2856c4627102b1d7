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

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from custody import merkle
from custody.checkpoint import MalformedCheckpoint, open_checkpoint
from custody.errors import ObjectNotFound
from custody.events import Event, InvalidEvent
from custody.interfaces import LedgerStore, ObjectStore
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


# The audit works in aligned blocks of 2**BLOCK_LEVEL leaves: each block's entries and the
# Merkle nodes inside it are checked on their own, on every core; the chains across blocks,
# the nodes above them and the checkpoints are checked here.
BLOCK_LEVEL = 16


@dataclass
class BlockResult:
    """What one block's audit found, and what the checks across blocks need from it."""

    start: int
    end: int
    findings: list[Finding]
    # Per subject, its first event in the block (index, prev hex, stored prev index) and
    # its last (index, leaf hash).
    first: dict[str, tuple[int, str | None, int | None]]
    last: dict[str, tuple[int, bytes]]
    root: bytes | None  # the block's node at BLOCK_LEVEL, when the block is complete
    entries: int
    nodes: int


def _block_levels(leaf_hashes: list[bytes]) -> list[list[bytes]]:
    """The complete nodes within one aligned block, level by level from the leaves."""
    levels = [leaf_hashes]
    node = merkle.node_hash
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def audit_block(
    opener: Callable[[], LedgerStore], start: int, end: int, block_level: int = BLOCK_LEVEL
) -> BlockResult:
    """Check leaves [start, end) and the nodes within them; runs in a worker process."""
    store = opener()
    found: list[Finding] = []
    first: dict[str, tuple[int, str | None, int | None]] = {}
    last: dict[str, tuple[int, bytes]] = {}
    leaf_hashes: list[bytes] = []
    entries = store.entries(start, end)
    for entry in entries:
        expected_index = start + len(leaf_hashes)
        if entry.index != expected_index:
            found.append(
                Finding(expected_index, ENTRY, f"entry missing (next stored is {entry.index})")
            )
            break
        computed = merkle.leaf_hash(entry.leaf)
        leaf_hashes.append(computed)
        if computed != entry.leaf_hash:
            found.append(
                Finding(entry.index, ENTRY, "leaf bytes do not match the stored leaf hash")
            )
        try:
            event = Event.decode(entry.leaf)
        except InvalidEvent as exc:
            found.append(Finding(entry.index, ENTRY, f"leaf is not a valid event: {exc}"))
            continue
        subject = event.subject.key
        if subject != entry.subject:
            found.append(
                Finding(entry.index, ENTRY, f"filed under {entry.subject} but is about {subject}")
            )
        before = last.get(subject)
        if before is None:
            first[subject] = (entry.index, event.prev, entry.prev_index)
        elif event.prev != before[1].hex() or entry.prev_index != before[0]:
            found.append(
                Finding(entry.index, ENTRY, f"prev does not name {subject}'s previous event")
            )
        last[subject] = (entry.index, computed)
    if len(leaf_hashes) < end - start and not found:
        found.append(Finding(start + len(leaf_hashes), ENTRY, "entries missing at the end"))

    levels = _block_levels(leaf_hashes)
    # Level 0 is the leaf hashes, compared with the stored ones entry by entry above.
    nodes = len(leaf_hashes)
    for level, computed_level in enumerate(levels[1:], start=1):
        first_index = start >> level
        stored = store.nodes_at_level(level, first_index, first_index + len(computed_level))
        nodes += len(stored)
        for offset, (mine, theirs) in enumerate(zip(computed_level, stored, strict=False)):
            if mine != theirs:
                index = first_index + offset
                last_leaf = ((index + 1) << level) - 1
                found.append(
                    Finding(last_leaf, NODE, f"node {level}/{index} differs from its recomputation")
                )
        if len(stored) < len(computed_level):
            index = first_index + len(stored)
            found.append(
                Finding(((index + 1) << level) - 1, NODE, f"node {level}/{index} is missing")
            )
    complete = len(leaf_hashes) == 1 << block_level
    root = levels[block_level][0] if complete else None
    return BlockResult(start, end, found, first, last, root, len(leaf_hashes), nodes)


def _blocks(store: LedgerStore, size: int, block_level: int) -> Iterator[BlockResult]:
    """Every block's result in ledger order; on worker processes when there are several."""
    block = 1 << block_level
    ranges = [(b, min(b + block, size)) for b in range(0, size, block)]
    opener = store.opener()
    workers = min(os.cpu_count() or 1, len(ranges))
    if workers < 2:
        for block_start, block_end in ranges:
            yield audit_block(opener, block_start, block_end, block_level)
        return
    # Spawned, not forked: a forked worker would share the parent's database connections.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = deque(
            pool.submit(audit_block, opener, block_start, block_end, block_level)
            for block_start, block_end in ranges
        )
        while futures:
            yield futures.popleft().result()


def audit_ledger(
    store: LedgerStore,
    objects: ObjectStore,
    keys: KeyRing,
    *,
    max_findings: int = 100,
    block_level: int = BLOCK_LEVEL,
) -> AuditReport:
    """Audit every entry, node and kept checkpoint; never raises for what it finds."""
    report = AuditReport()
    found = report.findings
    size = store.size()

    # (1)-(4) within each block, on every core; (3) across blocks here.
    heads: dict[str, tuple[int, bytes]] = {}
    block_roots: list[bytes] = []
    counted = 0
    for block in _blocks(store, size, block_level):
        found.extend(block.findings)
        counted += block.entries
        report.nodes += block.nodes
        for subject, (index, prev, prev_index) in block.first.items():
            before = heads.get(subject)
            want = (before[1].hex(), before[0]) if before else (None, None)
            if (prev, prev_index) != want:
                found.append(
                    Finding(index, ENTRY, f"prev does not name {subject}'s previous event")
                )
        heads.update(block.last)
        if block.root is not None:
            block_roots.append(block.root)
        if len(found) >= max_findings:
            break
    report.size = counted
    report.subjects = len(heads)

    # (4) the nodes above the blocks, recomputed from the block roots.
    for offset, computed_level in enumerate(_block_levels(block_roots)[1:], start=1):
        level = block_level + offset
        stored = store.nodes_at_level(level, 0, len(computed_level))
        report.nodes += len(stored)
        for index, (mine, theirs) in enumerate(zip(computed_level, stored, strict=False)):
            if mine != theirs:
                found.append(
                    Finding(
                        ((index + 1) << level) - 1,
                        NODE,
                        f"node {level}/{index} differs from its recomputation",
                    )
                )
        if len(stored) < len(computed_level):
            found.append(Finding(0, NODE, f"nodes of level {level} are missing"))
    extra = store.node_count() - report.nodes
    if extra > 0:
        found.append(Finding(report.size, NODE, f"{extra} stored Merkle nodes should not exist"))

    # (3, continued): the kept subject heads, which place the next event, are the real ones.
    real = dict(heads)
    for subject, index, last_hash in store.all_subject_heads():
        if real.pop(subject, None) != (index, last_hash):
            # A head beyond the end of the log means the log lost its tail.
            found.append(
                Finding(
                    min(index, report.size),
                    ENTRY,
                    f"the kept head of {subject} is not its last event",
                )
            )
    for subject, (index, _) in real.items():
        found.append(Finding(index, ENTRY, f"no head is kept for {subject}"))

    # (5): kept checkpoints. Every stored node below the log's size was just checked against
    # its recomputation, so the roots are computed from them.
    for kept in store.checkpoints():
        report.checkpoints += 1
        problems = _checkpoint_problems(kept.size, kept.root, kept.note, store, report, keys)
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
    if size != report.size and not found:
        found.append(Finding(report.size, ENTRY, f"the log records size {size}"))
    found.sort()  # stable: within one rank, the order found
    return report


def _checkpoint_problems(
    size: int, root: bytes, note: bytes, store: LedgerStore, report: AuditReport, keys: KeyRing
) -> Iterator[str]:
    try:
        checkpoint, _ = open_checkpoint(note, keys.verifiers, keys.origin)
    except (MalformedNote, MalformedCheckpoint, NoteVerificationError) as exc:
        yield f"signature or form: {exc}"
        return
    if checkpoint.size != size or checkpoint.root != root:
        yield "the signed note does not state the kept size and root"
    if checkpoint.size > report.size:
        yield f"covers {checkpoint.size} entries but the log has {report.size}"
        return
    ids = merkle.subtree_nodes(0, checkpoint.size)
    found = store.nodes(ids)
    if any(i not in found for i in ids):
        yield "nodes under its root are missing"
    elif (merkle.fold_subtree([found[i] for i in ids]) if ids else merkle.EMPTY_ROOT) != (
        checkpoint.root
    ):
        yield "its root is not the root recomputed from the entries"
