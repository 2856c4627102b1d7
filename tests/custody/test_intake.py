"""Tests of evidence intake (custody/intake.py): physical registration, upload sessions,
streaming ingest, failure atomicity, shared blobs, concurrency and receipts.

The HTTP status codes of the same paths are checked in tests/service/test_evidence_api.py;
here the domain objects are driven directly, with streams that end early or die halfway.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from custody.audit import audit_ledger
from custody.digests import DigestMismatch
from custody.errors import BadRequest, Conflict, IntegrityError, NotFound, TooLarge
from custody.events import Actor, Event, format_time
from custody.intake import Ingested
from custody.verify.receipt import verify_receipt
from storage.deployment import Deployment, initialise, open_deployment, rotate_key
from tests.conftest import FakeClock, make_config
from tests.factories import SEIZURE, in_case

DIGITAL = {"kind": "digital", "case": "CASE-1", "exhibit": "E-1", "description": "disk image"}
PHYSICAL = {
    "kind": "physical",
    "case": "CASE-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}
CONTENT = b"evidence bytes\n" * 10_000  # ~150 KB: several reads, still small
REPO = Path(__file__).resolve().parents[2]


def add_principal(deployment: Deployment, name: str, role: str) -> Actor:
    """A principal; an examiner is made a member of CASE-1, where these tests take items."""
    operator = deployment.principals.get("operator")
    principal, _ = deployment.principals.add(name, role, operator.actor)
    if role == "examiner":
        in_case(deployment, "CASE-1", name)
    return principal.actor


@pytest.fixture
def examiner(deployment: Deployment) -> Actor:
    return add_principal(deployment, "alice", "examiner")


@dataclass(frozen=True)
class Snapshot:
    """What a failed ingest must leave exactly as it was."""

    ledger_size: int
    files: frozenset[str]
    records: tuple[str, ...]


def object_files(deployment: Deployment) -> frozenset[str]:
    """Every file in the object store's folder (staging included), but the lock markers."""
    root = deployment.config.home / "objects"
    return frozenset(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".locks"
    )


def blob_files(deployment: Deployment) -> list[Path]:
    return sorted(
        p for p in (deployment.config.home / "objects" / "blobs").rglob("*") if p.is_file()
    )


def snapshot(deployment: Deployment) -> Snapshot:
    records = deployment.evidence.list(None, None, 1000, None)
    return Snapshot(
        deployment.ledger.size(), object_files(deployment), tuple(r.id for r in records)
    )


def last_event(deployment: Deployment) -> Event:
    return Event.decode(deployment.ledger.entry(deployment.ledger.size() - 1))


def ingest(
    deployment: Deployment, by: Actor, content: bytes = CONTENT, **metadata: Any
) -> Ingested:
    session = deployment.intake.open_session({**DIGITAL, **metadata}, by)
    return deployment.intake.receive(
        session.id, io.BytesIO(content), by, content_length=len(content)
    )


class DyingStream(io.RawIOBase):
    """A body that delivers ``chunks`` reads of 64 KiB, then raises ``error``."""

    def __init__(self, chunks: int, error: BaseException) -> None:
        self.left = chunks
        self.error = error

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            raise self.error
        self.left -= 1
        return b"\xab" * 65536


class WorkerKilled(BaseException):
    """What a signal handler raises in a worker told to stop mid-request."""


# -- physical items --------------------------------------------------------------------------


def test_a_physical_item_is_registered_at_once(deployment: Deployment, examiner: Actor) -> None:
    size = deployment.ledger.size()

    appended = deployment.intake.register_physical(PHYSICAL, examiner)

    assert deployment.ledger.size() == size + 1
    event = last_event(deployment)
    assert event.type == "evidence.registered"
    assert event.actor == examiner
    assert event.data["case"] == "CASE-1" and event.data["exhibit"] == "P-1"
    record = deployment.handling.get(appended.event.subject.id, examiner)
    assert record.kind == "physical" and record.size is None and record.storage_key is None
    assert record.ledger_index == appended.index
    assert deployment.objects.exists(f"manifests/{record.id}")


def test_a_physical_item_has_no_upload_session(deployment: Deployment, examiner: Actor) -> None:
    with pytest.raises(BadRequest):
        deployment.intake.open_session(PHYSICAL, examiner)
    with pytest.raises(BadRequest):
        deployment.intake.register_physical(DIGITAL, examiner)


# -- upload sessions and ingest ----------------------------------------------------------------


def test_opening_an_upload_session_records_nothing(deployment: Deployment, examiner: Actor) -> None:
    before = snapshot(deployment)

    session = deployment.intake.open_session(DIGITAL, examiner)

    assert snapshot(deployment) == before
    assert deployment.evidence.get(session.id) is None


def test_receiving_content_records_the_item_its_event_and_its_blob(
    deployment: Deployment, examiner: Actor
) -> None:
    size = deployment.ledger.size()

    done = ingest(deployment, examiner)

    record = done.record
    assert done.ledger_index == size == record.ledger_index
    assert deployment.ledger.size() == size + 1
    assert record.size == len(CONTENT)
    assert record.digests["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert deployment.objects.get(record.storage_key or "") == CONTENT
    event = last_event(deployment)
    assert event.type == "evidence.ingested"
    assert event.data["digests"] == dict(record.digests)
    assert event.data["size"] == len(CONTENT)
    assert deployment.evidence.session(record.id) is None


def test_the_receipt_verifies_offline_against_the_pinned_key(
    deployment: Deployment, examiner: Actor
) -> None:
    done = ingest(deployment, examiner)

    report = verify_receipt(done.receipt.to_json(), [deployment.keys.current.verifier_key])

    assert report.evidence_id == done.record.id
    assert report.size == len(CONTENT)
    assert dict(report.digests) == dict(done.record.digests)
    assert report.ledger_index == done.ledger_index


def test_declared_legacy_digests_are_computed_and_recorded(
    deployment: Deployment, examiner: Actor
) -> None:
    session = deployment.intake.open_session(DIGITAL, examiner)
    declared = {
        "md5": hashlib.md5(CONTENT).hexdigest(),
        "sha1": hashlib.sha1(CONTENT).hexdigest(),
        "sha512": hashlib.sha512(CONTENT).hexdigest(),
    }

    done = deployment.intake.receive(session.id, io.BytesIO(CONTENT), examiner, declared=declared)

    assert {k: done.record.digests[k] for k in declared} == declared


def test_a_digest_mismatch_leaves_nothing_and_the_upload_can_be_retried(
    deployment: Deployment, examiner: Actor
) -> None:
    session = deployment.intake.open_session(DIGITAL, examiner)
    before = snapshot(deployment)

    with pytest.raises(DigestMismatch):
        deployment.intake.receive(
            session.id, io.BytesIO(CONTENT), examiner, declared={"sha256": "00" * 32}
        )

    assert snapshot(deployment) == before
    done = deployment.intake.receive(session.id, io.BytesIO(CONTENT), examiner)
    assert done.record.id == session.id


def test_a_body_shorter_than_its_content_length_leaves_nothing(
    deployment: Deployment, examiner: Actor
) -> None:
    session = deployment.intake.open_session(DIGITAL, examiner)
    before = snapshot(deployment)

    with pytest.raises(BadRequest):
        deployment.intake.receive(
            session.id, io.BytesIO(CONTENT[:1000]), examiner, content_length=len(CONTENT)
        )

    assert snapshot(deployment) == before


def test_a_body_over_the_limit_leaves_nothing(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, max_upload_bytes=100_000)
    initialise(config).deployment.close()
    deployment = open_deployment(config)
    try:
        examiner = add_principal(deployment, "alice", "examiner")
        session = deployment.intake.open_session(DIGITAL, examiner)
        before = snapshot(deployment)

        with pytest.raises(TooLarge):  # declared too large: refused before reading
            deployment.intake.receive(
                session.id, io.BytesIO(CONTENT), examiner, content_length=len(CONTENT)
            )
        with pytest.raises(TooLarge):  # no length declared: refused while streaming
            deployment.intake.receive(session.id, io.BytesIO(CONTENT), examiner)

        assert snapshot(deployment) == before
    finally:
        deployment.close()


@pytest.mark.parametrize(
    "error", [ConnectionResetError("client went away"), WorkerKilled()], ids=["error", "killed"]
)
def test_an_ingest_that_dies_halfway_leaves_no_record_event_or_blob(
    deployment: Deployment, examiner: Actor, error: BaseException
) -> None:
    session = deployment.intake.open_session(DIGITAL, examiner)
    before = snapshot(deployment)

    with pytest.raises(type(error)):
        deployment.intake.receive(session.id, cast(BinaryIO, DyingStream(5, error)), examiner)

    assert snapshot(deployment) == before
    assert list(deployment.objects.keys("blobs/")) == []
    done = deployment.intake.receive(session.id, io.BytesIO(CONTENT), examiner)
    assert done.record.size == len(CONTENT)


_KILLED_CHILD = """
import sys
from storage.config import load_config
from storage.deployment import open_deployment

home, session_id, name = sys.argv[1:4]
deployment = open_deployment(load_config(home))
actor = deployment.principals.get(name).actor

def progress(n):
    print(n, flush=True)

deployment.intake.receive(session_id, sys.stdin.buffer, actor, progress=progress)
print("finished", flush=True)
"""


def test_a_process_killed_mid_ingest_leaves_no_record_event_or_visible_blob(
    deployment: Deployment, examiner: Actor
) -> None:
    session = deployment.intake.open_session(DIGITAL, examiner)
    size = deployment.ledger.size()
    env = {**os.environ, "CUSTOS_DATABASE_URL": deployment.config.database_url}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(deployment.config.home), session.id, "alice"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(b"\x01" * (2 << 20))  # two full chunks; more never comes
        child.stdin.flush()
        assert child.stdout.readline().strip() == str(1 << 20).encode()
        assert child.stdout.readline().strip() == str(1 << 20).encode()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()

    assert child.returncode == -signal.SIGKILL
    assert deployment.ledger.size() == size
    assert deployment.evidence.get(session.id) is None
    assert list(deployment.objects.keys("blobs/")) == []
    assert blob_files(deployment) == []


# -- sessions: whose, and for how long ---------------------------------------------------------


def test_another_examiners_upload_session_is_not_found(
    deployment: Deployment, examiner: Actor
) -> None:
    other = add_principal(deployment, "bob", "examiner")
    session = deployment.intake.open_session(DIGITAL, examiner)
    before = snapshot(deployment)

    with pytest.raises(NotFound):
        deployment.intake.receive(session.id, io.BytesIO(CONTENT), other)

    assert snapshot(deployment) == before


def test_content_cannot_be_received_twice(deployment: Deployment, examiner: Actor) -> None:
    done = ingest(deployment, examiner)
    before = snapshot(deployment)

    with pytest.raises(Conflict):
        deployment.intake.receive(done.record.id, io.BytesIO(b"other bytes"), examiner)

    assert snapshot(deployment) == before


@pytest.fixture
def clocked(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> Iterator[Deployment]:
    """A deployment whose ledger and intake run on the settable clock."""
    config = make_config(tmp_path, sqlite_url)
    initialise(config).deployment.close()
    deployment = open_deployment(config, clock=clock)
    yield deployment
    deployment.close()


def test_an_expired_upload_session_is_not_found(clocked: Deployment, clock: FakeClock) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    session = clocked.intake.open_session(DIGITAL, examiner)
    clock.advance(24 * 3600 + 1)
    before = snapshot(clocked)

    with pytest.raises(NotFound):
        clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner)

    assert snapshot(clocked) == before


def test_an_expired_session_is_purged_when_the_next_one_opens(
    clocked: Deployment, clock: FakeClock
) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    old = clocked.intake.open_session(DIGITAL, examiner)
    clock.advance(24 * 3600 + 1)

    clocked.intake.open_session(DIGITAL, examiner)

    assert clocked.evidence.session(old.id) is None


def test_a_session_within_its_lifetime_can_still_be_completed(
    clocked: Deployment, clock: FakeClock
) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    session = clocked.intake.open_session(DIGITAL, examiner)
    clock.advance(23 * 3600)

    done = clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner)

    assert done.record.id == session.id


class SlowStream(io.RawIOBase):
    """A body whose every read takes ``seconds`` of the fake clock; at its middle read it
    calls ``meanwhile`` (another receiver trying the same session)."""

    def __init__(self, clock: FakeClock, seconds: float, meanwhile: Any) -> None:
        self.chunks = [CONTENT[i : i + 20_000] for i in range(0, len(CONTENT), 20_000)]
        self.clock, self.seconds, self.meanwhile = clock, seconds, meanwhile
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.clock.advance(self.seconds)
        self.reads += 1
        if self.reads == len(self.chunks) // 2:
            self.meanwhile()
        return self.chunks.pop(0) if self.chunks else b""


def test_a_slow_upload_that_keeps_sending_keeps_its_session(
    clocked: Deployment, clock: FakeClock
) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    session = clocked.intake.open_session(DIGITAL, examiner)
    refused: list[Exception] = []

    def second_receiver() -> None:
        with pytest.raises(Conflict, match="being uploaded already") as caught:
            clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner)
        refused.append(caught.value)

    # Each read takes 70 s of the clock: by the middle one, the claim made at the start is
    # older than stale_upload, and only the receiver's marks of progress keep it.
    done = clocked.intake.receive(session.id, SlowStream(clock, 70, second_receiver), examiner)

    assert len(refused) == 1
    assert done.record.size == len(CONTENT)


def test_a_session_whose_receiver_died_can_be_claimed_again_after_two_minutes(
    clocked: Deployment, clock: FakeClock
) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    session = clocked.intake.open_session(DIGITAL, examiner)
    clocked.evidence.claim_session(session.id, format_time(clock()), format_time(clock()))
    with pytest.raises(Conflict):
        clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner)
    clock.advance(121)

    assert clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner).record.id


def test_a_receiver_silent_past_its_claim_stops_and_leaves_the_new_claim_alone(
    clocked: Deployment, clock: FakeClock
) -> None:
    examiner = add_principal(clocked, "alice", "examiner")
    session = clocked.intake.open_session(DIGITAL, examiner)

    def retry_claims_it() -> None:
        # The first receiver has been silent for 121 s: a retry may claim the session (and
        # is receiving still, as far as anyone can tell).
        clock.advance(121)
        now = clock()
        clocked.evidence.claim_session(
            session.id, format_time(now), format_time(now - timedelta(minutes=2))
        )

    before = snapshot(clocked)
    with pytest.raises(Conflict, match="taken over"):
        clocked.intake.receive(session.id, SlowStream(clock, 1, retry_claims_it), examiner)

    assert snapshot(clocked) == before
    # The failed receiver did not free the retry's claim: a third is still refused...
    with pytest.raises(Conflict, match="being uploaded already"):
        clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner)
    # ... until the retry's claim is stale in its turn.
    clock.advance(121)
    assert clocked.intake.receive(session.id, io.BytesIO(CONTENT), examiner).record.id


# -- shared blobs ------------------------------------------------------------------------------


def test_the_same_bytes_ingested_twice_make_two_records_sharing_one_blob(
    deployment: Deployment, examiner: Actor
) -> None:
    first = ingest(deployment, examiner, exhibit="E-1")
    second = ingest(deployment, examiner, exhibit="E-2")

    assert first.record.id != second.record.id
    assert first.record.storage_key == second.record.storage_key
    assert len(blob_files(deployment)) == 1
    assert first.ledger_index != second.ledger_index


class MeetingStream(io.RawIOBase):
    """Delivers ``content`` in two halves, waiting at ``barrier`` between them, so that two
    ingests are mid-stream together and commit at about the same moment."""

    def __init__(self, content: bytes, barrier: threading.Barrier) -> None:
        self.parts = [content[: len(content) // 2], content[len(content) // 2 :]]
        self.barrier = barrier

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if len(self.parts) == 1:
            self.barrier.wait(timeout=30)
        return self.parts.pop(0) if self.parts else b""


def test_concurrent_ingests_of_the_same_bytes_both_succeed_with_one_blob(
    deployment: Deployment, examiner: Actor
) -> None:
    sessions = [
        deployment.intake.open_session({**DIGITAL, "exhibit": f"E-{n}"}, examiner) for n in range(3)
    ]
    barrier = threading.Barrier(len(sessions))
    results: dict[str, Ingested] = {}
    errors: list[BaseException] = []

    def run(session_id: str) -> None:
        try:
            stream = cast(BinaryIO, MeetingStream(CONTENT, barrier))
            results[session_id] = deployment.intake.receive(session_id, stream, examiner)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s.id,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == sorted(s.id for s in sessions)
    assert {r.record.storage_key for r in results.values()} == {
        f"blobs/sha256/{hashlib.sha256(CONTENT).hexdigest()}"
    }
    assert len({r.ledger_index for r in results.values()}) == len(sessions)
    assert len(blob_files(deployment)) == 1
    assert blob_files(deployment)[0].read_bytes() == CONTENT
    assert audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys).ok


# -- the ledger after all of it -----------------------------------------------------------------


def test_the_ledger_audits_clean_after_successful_and_failed_ingests(
    deployment: Deployment, examiner: Actor
) -> None:
    deployment.intake.register_physical(PHYSICAL, examiner)
    first = ingest(deployment, examiner)
    ingest(deployment, examiner, exhibit="E-2")
    session = deployment.intake.open_session(DIGITAL, examiner)
    with pytest.raises(DigestMismatch):
        deployment.intake.receive(
            session.id, io.BytesIO(CONTENT), examiner, declared={"md5": "0" * 32}
        )
    with pytest.raises(ConnectionResetError):
        deployment.intake.receive(
            session.id, cast(BinaryIO, DyingStream(2, ConnectionResetError())), examiner
        )
    with pytest.raises(Conflict):
        deployment.intake.receive(first.record.id, io.BytesIO(CONTENT), examiner)
    deployment.intake.receive(session.id, io.BytesIO(b"third"), examiner)

    report = audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys)

    assert report.ok, [str(f) for f in report.findings]
    assert report.size == deployment.ledger.size()


def test_the_manifest_is_a_signed_note_of_the_record(
    deployment: Deployment, examiner: Actor
) -> None:
    done = ingest(deployment, examiner)

    note = deployment.objects.get(f"manifests/{done.record.id}").decode()

    first_line, body = note.split("\n", 2)[:2]
    assert first_line == "custos/manifest/v1"
    manifest = json.loads(body)
    assert manifest["id"] == done.record.id
    assert manifest["digests"] == dict(done.record.digests)
    assert f"\n— {deployment.keys.origin} " in note
    assert hashlib.sha256(note.encode()).hexdigest() == last_event(deployment).data["manifest"]


def lose_manifest(deployment: Deployment, evidence_id: str) -> bytes:
    """Remove an item's stored manifest as a crash after its commit would have left it."""
    path = deployment.config.home / "objects" / "manifests" / evidence_id
    original = path.read_bytes()
    path.chmod(0o644)
    path.unlink()
    return original


def test_a_manifest_lost_after_the_commit_is_written_again_at_start(
    deployment: Deployment, examiner: Actor
) -> None:
    digital = ingest(deployment, examiner).record
    physical = deployment.intake.register_physical(PHYSICAL, examiner).event.subject.id
    originals = {i: lose_manifest(deployment, i) for i in (digital.id, physical)}

    assert deployment.intake.repair_manifests() == 2
    assert deployment.intake.repair_manifests() == 0

    manifests = deployment.config.home / "objects" / "manifests"
    assert {i: (manifests / i).read_bytes() for i in originals} == originals


def test_a_lost_manifest_is_rebuilt_with_the_key_of_its_time_after_a_rotation(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner).record
    original = lose_manifest(deployment, record.id)
    operator = deployment.principals.get("operator").actor
    rotate_key(deployment, operator)

    assert deployment.intake.stored_manifest(record) == original


def test_a_manifest_that_cannot_be_rebuilt_is_an_integrity_error(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner).record
    lose_manifest(deployment, record.id)
    altered = replace(record, description={**record.description, "description": "another"})

    with pytest.raises(IntegrityError, match="cannot be rebuilt"):
        deployment.intake.stored_manifest(altered)
    assert not (deployment.config.home / "objects" / "manifests" / record.id).exists()
