"""``custos audit --objects``: re-read every stored object that evidence records name.

The ledger audit (``custody.audit``) proves the log; this proves the bytes it speaks of. It
trusts nothing the object store says about itself:
  (1) each digital record's blob is present under the key its SHA-256 names; a disposed item
      whose content was deleted is expected to have none;
  (2) the blob is read again through the one digest pipeline, and every digest the record
      holds, and its size, must come out the same;
  (3) each record's manifest is present, signed by a key of the ring, and states the record
      as stored (its digests, size and storage key among the rest);
  (4) a blob that no record names is an orphan: a warning, not a failure. Disposal deletes
      the blobs it frees, so an orphan is what a crash between a blob's commit and its
      record's leaves behind (or an upload still being recorded while the scrub runs).
A blob several records share is read once and checked against each of them. Blobs are read
on a few threads at once: hashlib and the stores' reads release the GIL, so each thread keeps
a core busy. Findings come in ledger order; orphans are listed apart, as warnings.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from custody.digests import CHUNK_SIZE, DigestPipeline
from custody.errors import CustosError, ObjectNotFound
from custody.evidence import (
    EvidenceRecord,
    EvidenceStore,
    blob_key,
    manifest_key,
    manifest_text,
)
from custody.interfaces import ObjectStore
from custody.keys import KeyRing
from custody.note import MalformedNote, NoteVerificationError, open_note
from custody.note_types import MANIFEST_TYPE

BLOB_PREFIX = "blobs/sha256/"
ORPHAN = "orphan: no record names this blob (an ingest interrupted before its record)"
# Records whose checks may wait on reads in flight: bounds memory whatever the store's size.
_WINDOW = 64


@dataclass(frozen=True)
class ObjectFinding:
    """One stored object that is not what a record says, or (a warning) that none names."""

    key: str
    problem: str
    evidence_id: str | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = self.key if self.evidence_id is None else f"{self.evidence_id} {self.key}"
        return f"{where}: {self.problem}"

    def as_json(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence_id,
            "key": self.key,
            "problem": self.problem,
            "severity": "warning" if self.warning else "failure",
        }


@dataclass(frozen=True)
class ScrubPlan:
    """What the scrub will read: records, distinct blobs and their recorded bytes."""

    records: int
    blobs: int
    bytes: int


@dataclass(frozen=True)
class BlobCheck:
    """One record's blob, checked: ``ok`` unless it changed or is missing."""

    evidence_id: str
    key: str
    size: int
    ok: bool


@dataclass
class ScrubReport:
    records: int = 0
    blobs: int = 0
    bytes_read: int = 0
    manifests: int = 0
    findings: list[ObjectFinding] = field(default_factory=list)
    warnings: list[ObjectFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failure; warnings (orphans) do not count."""
        return not self.findings


class ScrubProgress(Protocol):
    """What the scrub tells whoever watches it (the CLI's bar or its JSON lines)."""

    def planned(self, plan: ScrubPlan) -> None: ...

    def read(self, size: int) -> None:
        """``size`` more bytes were read; called from the reading threads, one at a time."""

    def checked(self, check: BlobCheck) -> None: ...


@dataclass(frozen=True)
class _BlobRead:
    """A blob as read: its size and digests, or that it is missing or unreadable."""

    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)
    missing: bool = False
    error: str | None = None


def _read_blob(
    objects: ObjectStore, key: str, algorithms: frozenset[str], progress: Callable[[int], object]
) -> _BlobRead:
    pipeline = DigestPipeline(sorted(algorithms), progress=progress)
    try:
        with objects.open(key) as body:
            digests = pipeline.consume_stream(body, CHUNK_SIZE)
    except ObjectNotFound:
        return _BlobRead(missing=True)
    except (CustosError, OSError) as exc:
        return _BlobRead(error=str(exc) or type(exc).__name__)
    return _BlobRead(pipeline.size, digests)


def _content_problems(record: EvidenceRecord, found: _BlobRead) -> list[str]:
    problems = []
    if found.size != record.size:
        problems.append(f"size {record.size} recorded, {found.size} read")
    for alg, value in sorted(record.digests.items()):
        if found.digests.get(alg) != value:
            problems.append(f"{alg} {value} recorded, {found.digests.get(alg)} read")
    return problems


def _manifest_problem(record: EvidenceRecord, objects: ObjectStore, keys: KeyRing) -> str | None:
    # (3): present, signed by a key of the ring, and stating the record as stored.
    try:
        data = objects.get(manifest_key(record.id))
    except ObjectNotFound:
        return "manifest missing"
    except CustosError as exc:
        return f"manifest unreadable: {exc}"
    try:
        note = open_note(data, keys.verifiers)
    except (MalformedNote, NoteVerificationError) as exc:
        return f"manifest signature or form: {exc}"
    if note.text == manifest_text(record):
        return None
    type_line, _, body = note.text.partition("\n")
    if type_line != MANIFEST_TYPE:
        return f"manifest is a {type_line!r} note, not {MANIFEST_TYPE}"
    try:
        stated = json.loads(body)
    except ValueError:
        return "manifest text is not JSON"
    if not isinstance(stated, dict):
        return "manifest text is not a JSON object"
    expected = record.manifest_json()
    differing = sorted(
        k for k in expected.keys() | stated.keys() if stated.get(k) != expected.get(k)
    )
    return "manifest does not state the record as stored: " + (
        ", ".join(differing) or "its encoding differs"
    )


def plan_scrub(evidence: EvidenceStore) -> ScrubPlan:
    """Count what a scrub reads, from the records alone (no object is read); a disposed
    item's content is counted only where a live record shares it."""
    records, sizes = 0, {}
    for record in evidence.iter_all():
        records += 1
        if record.storage_key is not None and not record.state.disposed:
            sizes[record.storage_key] = record.size or 0
    return ScrubPlan(records, len(sizes), sum(sizes.values()))


def scrub_objects(
    evidence: EvidenceStore,
    objects: ObjectStore,
    keys: KeyRing,
    *,
    progress: ScrubProgress | None = None,
    workers: int | None = None,
) -> ScrubReport:
    """Check every record's blob and manifest, and look for orphan blobs; never raises for
    what it finds (a blob that cannot be read is a finding, with the store's reason)."""
    report = ScrubReport()
    plan = plan_scrub(evidence)
    if progress is not None:
        progress.planned(plan)
    # Listed first: a blob committed after this cannot be taken for an orphan.
    stored = set(objects.keys(BLOB_PREFIX))
    named: set[str] = set()
    lock = threading.Lock()

    def count(size: int) -> None:
        with lock:
            report.bytes_read += size
            if progress is not None:
                progress.read(size)

    threads = workers or min(4, os.cpu_count() or 1)
    reads: dict[str, tuple[frozenset[str], Future[_BlobRead]]] = {}
    pending: deque[tuple[EvidenceRecord, Future[_BlobRead] | None]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="custos-scrub") as pool:
        for record in evidence.iter_all():
            report.records += 1
            future = None
            key = record.storage_key
            if key is not None:
                named.add(key)
                needed = frozenset(["sha256", *record.digests])
                algorithms, future = reads.get(key, (frozenset(), None))
                if future is None or not needed <= algorithms:
                    # Read once per blob; again only for a record with a digest not yet taken.
                    algorithms |= needed
                    future = pool.submit(_read_blob, objects, key, algorithms, count)
                    reads[key] = (algorithms, future)
            pending.append((record, future))
            while len(pending) > _WINDOW or (pending and _ready(pending[0][1])):
                _settle(*pending.popleft(), evidence, objects, keys, report, progress)
        while pending:
            _settle(*pending.popleft(), evidence, objects, keys, report, progress)
    report.blobs = len(reads)

    # (4) orphans: warnings only.
    for key in sorted(stored - named):
        report.warnings.append(ObjectFinding(key, ORPHAN, warning=True))
    return report


def _ready(future: Future[_BlobRead] | None) -> bool:
    return future is None or future.done()


def _settle(
    record: EvidenceRecord,
    future: Future[_BlobRead] | None,
    evidence: EvidenceStore,
    objects: ObjectStore,
    keys: KeyRing,
    report: ScrubReport,
    progress: ScrubProgress | None,
) -> None:
    """Every check of one record, once its blob (if any) has been read."""
    manifest = _manifest_problem(record, objects, keys)
    report.manifests += 1
    if manifest is not None:
        report.findings.append(ObjectFinding(manifest_key(record.id), manifest, record.id))
    key = record.storage_key
    if key is None or future is None:
        if record.kind == "digital":
            report.findings.append(
                ObjectFinding("-", "a digital record that names no blob", record.id)
            )
        return
    read = future.result()
    found = _blob_findings(record, key, read, evidence)
    report.findings.extend(found)
    if progress is not None:
        progress.checked(BlobCheck(record.id, key, read.size, not found))


def _blob_findings(
    record: EvidenceRecord, key: str, read: _BlobRead, evidence: EvidenceStore
) -> Sequence[ObjectFinding]:
    # (1): present under its SHA-256's key, unless a disposal deleted it.
    if key != blob_key(record.digests.get("sha256", "")):
        return [ObjectFinding(key, "stored under a key that is not its SHA-256", record.id)]
    if read.missing:
        now = evidence.get(record.id)  # disposed since it was listed?
        if record.state.disposed or (now is not None and now.state.disposed):
            return []
        return [ObjectFinding(key, "blob missing", record.id)]
    if read.error is not None:
        return [ObjectFinding(key, f"blob unreadable: {read.error}", record.id)]
    # (2): the same size and every recorded digest.
    problems = _content_problems(record, read)
    if problems:
        return [
            ObjectFinding(key, "blob differs from its record: " + "; ".join(problems), record.id)
        ]
    return []
