"""``custos audit --objects`` (custody/scrub.py) re-reads every blob and manifest a record names,
and finds each way stored objects can go wrong, on the filesystem store and on S3 (moto)."""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto import mock_aws
from sqlalchemy import text

from custody.events import Actor
from custody.evidence import EvidenceRecord, blob_key, manifest_key, manifest_text
from custody.note import NoteSigner, sign_note
from custody.scrub import ORPHAN, BlobCheck, ScrubPlan, ScrubReport, scrub_objects
from storage.deployment import Deployment, initialise
from tests.conftest import make_config
from tests.factories import SEIZURE, in_case

REGION = "us-east-1"
BUCKET = "custos-scrub"
DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}
PHYSICAL = {
    "kind": "physical",
    "case": "C-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}


class Tamper(Protocol):
    """What an intruder (or a failing disk) does to the stored objects, behind Custos' back."""

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, data: bytes) -> None: ...

    def remove(self, key: str) -> None: ...


class FilesystemTamper:
    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # committed objects are read-only
        path.write_bytes(data)

    def remove(self, key: str) -> None:
        (self.root / key).unlink()


class S3Tamper:
    """Object Lock keeps versions, not keys: anyone with PutObject can add a newer version
    over a key, and a plain delete hides it behind a delete marker."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=BUCKET, Key=self.prefix + key)["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=self.prefix + key, Body=data)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=self.prefix + key)


@dataclass
class Site:
    deployment: Deployment
    tamper: Tamper
    examiner: Actor
    approver: Actor

    def ingest(self, content: bytes, **metadata: str) -> EvidenceRecord:
        intake = self.deployment.intake
        session = intake.open_session({**DIGITAL, **metadata}, self.examiner)
        return intake.receive(session.id, io.BytesIO(content), self.examiner).record

    def register(self) -> EvidenceRecord:
        appended = self.deployment.intake.register_physical(PHYSICAL, self.examiner)
        record = self.deployment.evidence.get(appended.event.subject.id)
        assert record is not None
        return record

    def scrub(self) -> ScrubReport:
        d = self.deployment
        return scrub_objects(d.evidence, d.objects, d.keys)


def _site(deployment: Deployment, tamper: Tamper) -> Site:
    operator = deployment.principals.get("operator").actor
    examiner, _ = deployment.principals.add("alice", "examiner", operator)
    approver, _ = deployment.principals.add("judge", "approver", operator)
    in_case(deployment, "C-1", "alice", "judge")
    return Site(deployment, tamper, examiner.actor, approver.actor)


@pytest.fixture(scope="module")
def s3_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto in this process, with fake credentials and no shared AWS config; one for the
    module (starting moto is the slow part), each test in a prefix of its own."""
    nowhere = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
        with mock_aws():
            yield boto3.client("s3", region_name=REGION)


@pytest.fixture(params=["filesystem", "s3"])
def site(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    """A deployment with an examiner and an approver, on each object store."""
    if request.param == "filesystem":
        deployment = initialise(make_config(tmp_path, sqlite_url)).deployment
        yield _site(deployment, FilesystemTamper(deployment.config.home / "objects"))
    else:
        client = request.getfixturevalue("s3_client")
        prefix = f"t-{secrets.token_hex(6)}/"
        config = make_config(
            tmp_path, sqlite_url, store=f"s3://{BUCKET}/{prefix}", s3_region=REGION
        )
        deployment = initialise(config).deployment
        yield _site(deployment, S3Tamper(client, prefix))
    deployment.close()


def failures(report: ScrubReport) -> list[tuple[str | None, str, str]]:
    return [(f.evidence_id, f.key, f.problem) for f in report.findings]


# -- a healthy store -----------------------------------------------------------------------


def test_an_untouched_store_scrubs_clean_reading_each_blob_once(site: Site) -> None:
    shared = os.urandom(300_000)
    site.ingest(shared, exhibit="E-1")
    site.ingest(shared, exhibit="E-2")
    other = site.ingest(b"another image", exhibit="E-3")
    site.register()

    report = site.scrub()

    assert report.ok, [str(f) for f in report.findings]
    assert (report.records, report.blobs, report.manifests) == (4, 2, 4)
    assert report.bytes_read == len(shared) + (other.size or 0)
    assert report.warnings == []


def test_the_progress_names_the_plan_and_every_blob_checked(site: Site) -> None:
    first = site.ingest(b"a" * 70_000, exhibit="E-1")
    second = site.ingest(b"b" * 50_000, exhibit="E-2")
    site.register()

    class Watcher:
        def __init__(self) -> None:
            self.plans: list[ScrubPlan] = []
            self.read_bytes = 0
            self.checks: list[BlobCheck] = []

        def planned(self, plan: ScrubPlan) -> None:
            self.plans.append(plan)

        def read(self, size: int) -> None:
            self.read_bytes += size

        def checked(self, check: BlobCheck) -> None:
            self.checks.append(check)

    watcher = Watcher()
    d = site.deployment
    scrub_objects(d.evidence, d.objects, d.keys, progress=watcher)

    assert watcher.plans == [ScrubPlan(records=3, blobs=2, bytes=120_000)]
    assert watcher.read_bytes == 120_000
    assert [(c.evidence_id, c.key, c.size, c.ok) for c in watcher.checks] == [
        (first.id, first.storage_key, 70_000, True),
        (second.id, second.storage_key, 50_000, True),
    ]


# -- blobs ---------------------------------------------------------------------------------


def test_a_flipped_byte_is_reported_for_every_record_naming_the_blob(site: Site) -> None:
    content = os.urandom(200_000)
    first = site.ingest(content, exhibit="E-1")
    second = site.ingest(content, exhibit="E-2")
    key = first.storage_key
    assert key is not None and second.storage_key == key
    stored = bytearray(site.tamper.read(key))
    stored[123_456] ^= 0x01
    site.tamper.write(key, bytes(stored))

    report = site.scrub()

    assert not report.ok
    assert [(e, k) for e, k, _ in failures(report)] == [(first.id, key), (second.id, key)]
    assert all("sha256" in problem for _, _, problem in failures(report))


def test_a_truncated_blob_is_reported_with_both_sizes(site: Site) -> None:
    record = site.ingest(b"x" * 10_000)
    assert record.storage_key is not None
    site.tamper.write(record.storage_key, b"x" * 9_999)

    [(evidence_id, key, problem)] = failures(site.scrub())

    assert (evidence_id, key) == (record.id, record.storage_key)
    assert "size 10000 recorded, 9999 read" in problem


def test_a_deleted_blob_is_reported_missing(site: Site) -> None:
    kept = site.ingest(b"kept", exhibit="E-1")
    lost = site.ingest(b"lost", exhibit="E-2")
    assert lost.storage_key is not None
    site.tamper.remove(lost.storage_key)

    report = site.scrub()

    assert failures(report) == [(lost.id, lost.storage_key, "blob missing")]
    assert kept.id not in {f.evidence_id for f in report.findings}


def test_a_disposed_item_whose_content_was_deleted_is_not_a_finding(site: Site) -> None:
    record = site.ingest(b"to be destroyed")
    assert record.storage_key is not None
    site.deployment.handling.record_act(
        record.id,
        "evidence.disposed",
        {"authority": "retention ended", "method": "secure erase"},
        site.approver,
    )
    assert not site.deployment.objects.exists(record.storage_key)

    report = site.scrub()

    assert report.ok, [str(f) for f in report.findings]
    assert (report.records, report.manifests, report.warnings) == (1, 1, [])


def test_an_orphan_blob_is_a_warning_and_the_scrub_still_passes(site: Site) -> None:
    site.ingest(b"recorded")
    orphan = blob_key("ab" * 32)
    site.tamper.write(orphan, b"committed, then the process died")

    report = site.scrub()

    assert report.ok
    assert [(w.key, w.problem, w.warning, w.evidence_id) for w in report.warnings] == [
        (orphan, ORPHAN, True, None)
    ]


# -- manifests -----------------------------------------------------------------------------


def test_a_deleted_manifest_is_reported(site: Site) -> None:
    digital = site.ingest(b"content")
    physical = site.register()
    site.tamper.remove(manifest_key(physical.id))

    assert failures(site.scrub()) == [(physical.id, manifest_key(physical.id), "manifest missing")]
    assert site.deployment.objects.exists(manifest_key(digital.id))


def test_a_manifest_re_signed_with_other_digests_is_reported(site: Site) -> None:
    record = site.ingest(b"content")
    forged = EvidenceRecord(**{**record.__dict__, "digests": {"sha256": "00" * 32}})
    signer = site.deployment.keys.current.signer
    site.tamper.write(manifest_key(record.id), sign_note(manifest_text(forged), [signer]))

    [(evidence_id, key, problem)] = failures(site.scrub())

    assert (evidence_id, key) == (record.id, manifest_key(record.id))
    assert problem == "manifest does not state the record as stored: digests"


def test_a_manifest_signed_by_a_key_outside_the_ring_is_reported(site: Site) -> None:
    record = site.ingest(b"content")
    stranger = NoteSigner(site.deployment.keys.origin, Ed25519PrivateKey.generate())
    site.tamper.write(manifest_key(record.id), sign_note(manifest_text(record), [stranger]))

    [(evidence_id, _, problem)] = failures(site.scrub())

    assert evidence_id == record.id
    assert problem.startswith("manifest signature or form: not signed by any trusted key")


# -- records -------------------------------------------------------------------------------


def test_every_recorded_digest_is_recomputed_not_just_sha256(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = make_config(tmp_path, sqlite_url, digests=("sha256", "md5"))
    deployment = initialise(config).deployment
    try:
        site = _site(deployment, FilesystemTamper(config.home / "objects"))
        record = site.ingest(b"content with an md5")
        with deployment.engine.begin() as connection:
            row = connection.execute(
                text("SELECT record FROM evidence WHERE id = :id"), {"id": record.id}
            ).scalar_one()
            data = json.loads(row)
            data["digests"]["md5"] = "0" * 32
            connection.execute(
                text("UPDATE evidence SET record = :r WHERE id = :id"),
                {"r": json.dumps(data), "id": record.id},
            )

        problems = [problem for _, _, problem in failures(site.scrub())]

        assert any(p.startswith("blob differs from its record: md5 000") for p in problems)
        assert "manifest does not state the record as stored: digests" in problems
    finally:
        deployment.close()


def test_every_record_is_iterated_in_ledger_order_across_batches(site: Site) -> None:
    made = [site.ingest(f"item {n}".encode(), exhibit=f"E-{n}") for n in range(3)]
    made.append(site.register())

    listed = list(site.deployment.evidence.iter_all(batch=2))

    assert [r.id for r in listed] == [r.id for r in made]
    assert [r.ledger_index for r in listed] == sorted(r.ledger_index for r in made)
