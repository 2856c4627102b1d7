"""The ObjectStore contract, run against every implementation: the filesystem store, and the S3
store on moto both in-process (``mock_aws``) and over real HTTP (``ThreadedMotoServer``).

S3 (moto) judges retention and staging ages by the real time, so the clock here starts at the
real time and only moves forward.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from custody.errors import ObjectExists, ObjectLocked, ObjectNotFound, StorageError
from custody.interfaces import ObjectStore
from storage import filesystem
from storage.config import MIN_PART_SIZE, Config, MiB
from storage.deployment import initialise, open_object_store
from storage.filesystem import TEMP_PREFIX, FilesystemObjectStore
from storage.s3 import S3ObjectStore, ensure_bucket
from tests.conftest import FakeClock, make_config
from tests.factories import in_case

REGION = "us-east-1"
BACKENDS = ["filesystem", "s3-in-process", "s3-over-http"]
S3_BACKENDS = BACKENDS[1:]
_S3_CLIENTS = {"s3-in-process": "in_process_s3_client", "s3-over-http": "http_s3_client"}
BLOB = "blobs/sha256/" + "ab" * 32

StoreFactory = Callable[..., ObjectStore]


@pytest.fixture
def clock() -> FakeClock:
    fake = FakeClock()
    fake.now = datetime.now(UTC).replace(microsecond=0)
    return fake


@pytest.fixture(scope="session")
def fake_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials and no shared AWS config, set before any client exists."""
    nowhere = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
        yield


@pytest.fixture(scope="session")
def http_s3_client(fake_aws_environment: None) -> Iterator[Any]:
    """A client of moto's server on 127.0.0.1, over real HTTP."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client("s3", region_name=REGION, endpoint_url=f"http://{host}:{port}")
    server.stop()


@pytest.fixture(scope="module")
def in_process_s3_client(fake_aws_environment: None) -> Iterator[Any]:
    """A client of moto in this process; it intercepts AWS URLs only, not the server's."""
    with mock_aws():
        yield boto3.client("s3", region_name=REGION)


def _bucket_name() -> str:
    return f"custos-test-{secrets.token_hex(6)}"


def _s3_stores(client: Any, clock: FakeClock) -> StoreFactory:
    """Stores in a fresh bucket of their own, sharing it (and its objects) with each other."""
    bucket = _bucket_name()
    ensure_bucket(client, bucket, REGION)

    def make(
        *,
        part_size: int = MIN_PART_SIZE,
        retention_mode: str = "GOVERNANCE",
        retention_days: int = 0,
    ) -> ObjectStore:
        return S3ObjectStore(
            bucket,
            "custos/",
            client=client,
            part_size=part_size,
            retention_mode=retention_mode,
            retention_days=retention_days,
            clock=clock,
        )

    return make


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> StoreFactory:
    """Builds stores on one backend; settings a backend has no use for are ignored."""
    if request.param == "filesystem":

        def make(*, retention_days: int = 0, **_: object) -> ObjectStore:
            return FilesystemObjectStore(
                tmp_path / "objects", retention_days=retention_days, clock=clock
            )

        return make
    return _s3_stores(request.getfixturevalue(_S3_CLIENTS[request.param]), clock)


@pytest.fixture
def store(make_store: StoreFactory) -> ObjectStore:
    return make_store()


@pytest.fixture(params=S3_BACKENDS)
def s3_client(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(_S3_CLIENTS[request.param])


class BrokenStream(io.RawIOBase):
    """A stream that delivers ``good`` bytes, then fails like a dropped connection."""

    def __init__(self, good: int) -> None:
        self.left = good

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("connection reset")
        size = min(self.left, 1 << 20 if n < 0 else n)
        self.left -= size
        return b"\0" * size


def _stage(store: ObjectStore, *chunks: bytes) -> Any:
    staged = store.stage()
    for chunk in chunks:
        staged.write(chunk)
    staged.finish()
    return staged


def _nothing_staged(store: ObjectStore, clock: FakeClock) -> bool:
    clock.advance(60)
    return store.sweep_staging(1) == 0


# Writing and reading.


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    stored = store.put("checkpoints/1", b"note\n")
    assert (stored.key, stored.size) == ("checkpoints/1", 5)
    assert store.get("checkpoints/1") == b"note\n"
    assert store.exists("checkpoints/1")


def test_putting_the_same_bytes_again_is_idempotent(store: ObjectStore) -> None:
    first = store.put("a/b", b"same")
    again = store.put("a/b", b"same")
    assert (again.size, again.version_id) == (4, first.version_id)


def test_existing_content_is_never_replaced(store: ObjectStore) -> None:
    store.put("a/b", b"first")
    with pytest.raises(ObjectExists):
        store.put("a/b", b"second")
    with pytest.raises(ObjectExists):
        store.put_stream("a/b", io.BytesIO(b"third"))
    assert store.get("a/b") == b"first"


def test_streams_are_stored_whole(store: ObjectStore) -> None:
    data = os.urandom(3 * MiB + 17)
    assert store.put_stream("blobs/x", io.BytesIO(data)).size == len(data)
    with store.open("blobs/x") as f:
        assert f.read() == data


def test_a_multipart_stream_round_trips(make_store: StoreFactory) -> None:
    store = make_store(part_size=5 * MiB)
    data = os.urandom(12 * MiB + 5)
    stored = store.put_stream(BLOB, io.BytesIO(data))
    assert (stored.key, stored.size) == (BLOB, len(data))
    assert store.get(BLOB) == data


def test_missing_objects_raise_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nope")
    with pytest.raises(ObjectNotFound):
        store.open("nope")
    assert not store.exists("nope")


@pytest.mark.parametrize(
    "key", ["../escape", "/abs", "a/../b", "", "a//b", ".hidden", "a/.tmp-x", "staging/x"]
)
def test_keys_that_could_escape_or_hide_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_keys_lists_what_was_stored_under_a_prefix(store: ObjectStore) -> None:
    for key in ("checkpoints/2", "checkpoints/10", "manifests/e1"):
        store.put(key, key.encode())
    assert sorted(store.keys("checkpoints/")) == ["checkpoints/10", "checkpoints/2"]
    assert sorted(store.keys("")) == ["checkpoints/10", "checkpoints/2", "manifests/e1"]


def test_keys_under_a_partial_or_nested_prefix_are_those_that_begin_with_it(
    store: ObjectStore,
) -> None:
    for key in ("witness/1/a", "witness/1/b", "witness/10/a", "witness/2/a", "witnessed/x"):
        store.put(key, key.encode())
    assert sorted(store.keys("witness/1/")) == ["witness/1/a", "witness/1/b"]
    assert sorted(store.keys("witness/1")) == ["witness/1/a", "witness/1/b", "witness/10/a"]
    assert sorted(store.keys("witness")) == [
        "witness/1/a",
        "witness/1/b",
        "witness/10/a",
        "witness/2/a",
        "witnessed/x",
    ]
    assert list(store.keys("witness/3/")) == []
    assert list(store.keys("nothing/here/")) == []


def test_a_failed_stream_leaves_nothing_visible_or_staged(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = make_store(part_size=5 * MiB)
    with pytest.raises(OSError, match="connection reset"):
        store.put_stream("blobs/b", BrokenStream(6 * MiB))  # type: ignore[arg-type]
    assert not store.exists("blobs/b")
    assert _nothing_staged(store, clock)


# Staged uploads.


def test_a_staged_upload_is_invisible_until_committed(store: ObjectStore) -> None:
    staged = _stage(store, b"ab", b"cd")
    assert staged.size == 4
    assert list(store.keys("")) == []
    stored = staged.commit(BLOB)
    assert (stored.key, stored.size) == (BLOB, 4)
    assert store.get(BLOB) == b"abcd"
    assert list(store.keys("")) == [BLOB]


def test_committing_the_same_content_again_returns_the_existing_object(
    store: ObjectStore, clock: FakeClock
) -> None:
    first = _stage(store, b"evidence").commit(BLOB)
    again = _stage(store, b"evid", b"ence").commit(BLOB)
    assert again == first
    assert store.get(BLOB) == b"evidence"
    assert _nothing_staged(store, clock)


def test_committing_different_content_to_a_taken_key_is_refused(store: ObjectStore) -> None:
    _stage(store, b"first").commit("manifests/e1")
    with pytest.raises(ObjectExists):
        _stage(store, b"other").commit("manifests/e1")
    assert store.get("manifests/e1") == b"first"


def test_a_discarded_upload_leaves_no_trace(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(part_size=5 * MiB)
    finished = _stage(store, b"x" * 10)
    unfinished = store.stage()
    unfinished.write(os.urandom(6 * MiB))
    for staged in (finished, unfinished, finished):
        staged.discard()
    assert list(store.keys("")) == []
    assert _nothing_staged(store, clock)
    with pytest.raises(ValueError):
        finished.commit(BLOB)


def test_abandoned_staging_is_swept_once_older_than_the_threshold(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = make_store(part_size=5 * MiB)
    _stage(store, b"finished but never committed")
    store.stage().write(os.urandom(6 * MiB))
    store.put("manifests/kept", b"kept")
    assert store.sweep_staging(3600) == 0
    clock.advance(2 * 3600)
    assert store.sweep_staging(3600) == 2
    assert store.sweep_staging(3600) == 0
    assert store.get("manifests/kept") == b"kept"


# Retention and legal holds.


def test_a_retained_blob_cannot_be_deleted_or_replaced(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = make_store(retention_mode="COMPLIANCE", retention_days=1)
    stored = _stage(store, b"disk image").commit(BLOB)
    put = store.put("blobs/sha256/cd", b"put directly")
    for key in (BLOB, put.key):
        assert store.retained_until(key) == clock.now + timedelta(days=1)
        with pytest.raises(ObjectLocked):
            store.delete(key)
    with pytest.raises(ObjectExists):
        store.put(BLOB, b"something else")
    assert store.put(BLOB, b"disk image") == stored
    assert store.get(BLOB) == b"disk image"


def test_a_blob_stored_before_retention_gains_it_when_stored_again(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    make_store().put(BLOB, b"old evidence")
    retaining = make_store(retention_days=1)
    assert retaining.retained_until(BLOB) is None
    retaining.put(BLOB, b"old evidence")
    assert retaining.retained_until(BLOB) == clock.now + timedelta(days=1)
    with pytest.raises(ObjectLocked):
        retaining.delete(BLOB)


def test_retention_applies_to_blobs_only(make_store: StoreFactory) -> None:
    store = make_store(retention_days=1)
    store.put("manifests/e1", b"manifest")
    assert store.retained_until("manifests/e1") is None
    store.delete("manifests/e1")
    assert not store.exists("manifests/e1")


def test_a_legal_hold_blocks_deletion_until_released(store: ObjectStore) -> None:
    store.put("manifests/e1", b"manifest")
    assert store.retained_until("manifests/e1") is None
    store.set_legal_hold("manifests/e1", True)
    with pytest.raises(ObjectLocked):
        store.delete("manifests/e1")
    assert store.get("manifests/e1") == b"manifest"
    store.set_legal_hold("manifests/e1", False)
    store.delete("manifests/e1")
    assert not store.exists("manifests/e1")
    with pytest.raises(ObjectNotFound):
        store.get("manifests/e1")


def test_holds_retention_and_deletion_of_missing_objects_raise_object_not_found(
    store: ObjectStore,
) -> None:
    with pytest.raises(ObjectNotFound):
        store.set_legal_hold("nope", True)
    with pytest.raises(ObjectNotFound):
        store.retained_until("nope")
    with pytest.raises(ObjectNotFound):
        store.delete("nope")


def test_staging_stays_deletable_under_retention(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = make_store(retention_mode="COMPLIANCE", retention_days=1, part_size=5 * MiB)
    _stage(store, b"x" * 10).discard()
    _stage(store, os.urandom(6 * MiB)).discard()
    _stage(store, b"abandoned")
    clock.advance(2 * 3600)
    assert store.sweep_staging(3600) == 1
    assert _nothing_staged(store, clock)


# The filesystem store.


def test_filesystem_objects_are_read_only_and_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    store.put("blobs/a", b"x")
    mode = (tmp_path / "blobs" / "a").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not [p for p in (tmp_path / "blobs").iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_staged_upload_written_back_as_it_goes_commits_every_byte_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesystem, "WRITE_BACK_EVERY", 64 * 1024)  # many write-backs
    store = FilesystemObjectStore(tmp_path)
    chunks = [os.urandom(size) for size in (50_000, 70_000, 1, 200_000, 9)]
    staged = _stage(store, *(memoryview(chunk) for chunk in chunks))

    stored = staged.commit(BLOB)

    assert stored.size == sum(map(len, chunks))
    assert store.get(BLOB) == b"".join(chunks)


def test_filesystem_retention_ends_at_its_date(tmp_path: Path, clock: FakeClock) -> None:
    store = FilesystemObjectStore(tmp_path, retention_days=1, clock=clock)
    store.put(BLOB, b"x")
    assert (tmp_path / ".locks" / f"{BLOB}.json").is_file()
    clock.advance(86399)
    with pytest.raises(ObjectLocked):
        store.delete(BLOB)
    clock.advance(1)
    store.delete(BLOB)
    assert not store.exists(BLOB)
    assert not (tmp_path / ".locks" / f"{BLOB}.json").exists()


def test_filesystem_sweep_keeps_uploads_written_to_recently(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    idle, live = store.stage(), store.stage()
    idle.write(b"idle")
    live.write(b"live")
    two_hours_ago = datetime.now(UTC).timestamp() - 7200
    os.utime(idle.path, (two_hours_ago, two_hours_ago))
    assert store.sweep_staging(3600) == 1
    live.write(b" and well")
    assert live.commit("manifests/live").size == len(b"live and well")


# The S3 store.


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_s3_multipart_parts_carry_their_own_sha256(s3_client: Any, clock: FakeClock) -> None:
    store = _s3_stores(s3_client, clock)(part_size=5 * MiB)
    assert isinstance(store, S3ObjectStore)
    data = os.urandom(12 * MiB)
    staged = _stage(store, data[: 7 * MiB], data[7 * MiB :])
    attributes = s3_client.get_object_attributes(
        Bucket=store.bucket, Key=staged.staging_key, ObjectAttributes=["Checksum", "ETag"]
    )
    part_digests = b"".join(
        hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)
    )
    # A composite checksum is the SHA-256 of the parts' SHA-256s, one per part.
    assert attributes["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert attributes["Checksum"]["ChecksumSHA256"] == _b64(hashlib.sha256(part_digests).digest())
    assert attributes["ETag"].endswith("-3")
    stored = staged.commit(BLOB)
    head = s3_client.head_object(Bucket=store.bucket, Key=f"custos/{BLOB}", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _b64(hashlib.sha256(data).digest())
    assert head["VersionId"] == stored.version_id
    assert store.get(BLOB) == data


def test_ensure_bucket_creates_a_locked_versioned_bucket(s3_client: Any) -> None:
    bucket = _bucket_name()
    ensure_bucket(s3_client, bucket, REGION)
    ensure_bucket(s3_client, bucket, REGION)
    assert s3_client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3_client.get_object_lock_configuration(Bucket=bucket)
    assert lock["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}


def test_ensure_bucket_refuses_a_bucket_without_object_lock(s3_client: Any) -> None:
    bucket = _bucket_name()
    s3_client.create_bucket(Bucket=bucket)
    with pytest.raises(StorageError, match="versioning"):
        ensure_bucket(s3_client, bucket, REGION)
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    with pytest.raises(StorageError, match="Object Lock"):
        ensure_bucket(s3_client, bucket, REGION)


def test_ensure_bucket_refuses_a_default_retention_rule(s3_client: Any) -> None:
    bucket = _bucket_name()
    s3_client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3_client.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    with pytest.raises(StorageError, match="default retention"):
        ensure_bucket(s3_client, bucket, REGION)


def test_an_s3_url_opens_the_s3_store_with_the_configured_settings(
    tmp_path: Path, fake_aws_environment: None
) -> None:
    config = Config(
        home=tmp_path,
        store="s3://evidence-bucket/custos/prod",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_region="eu-central-1",
        multipart_part_size=8 * MiB,
        retention_mode="COMPLIANCE",
        retention_days=3650,
    )
    store = open_object_store(config)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix, store.part_size) == (
        "evidence-bucket",
        "custos/prod/",
        8 * MiB,
    )
    assert (store.retention_mode, store.retention_days) == ("COMPLIANCE", 3650)
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert store.client.meta.region_name == "eu-central-1"


def test_initialise_creates_the_locked_bucket_of_an_s3_store(
    tmp_path: Path, sqlite_url: str, http_s3_client: Any
) -> None:
    bucket = _bucket_name()
    config = make_config(
        tmp_path,
        sqlite_url,
        store=f"s3://{bucket}/custos",
        s3_endpoint_url=http_s3_client.meta.endpoint_url,
        s3_region=REGION,
    )
    initialise(config).deployment.close()
    assert http_s3_client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = http_s3_client.get_object_lock_configuration(Bucket=bucket)
    assert lock["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}


def test_an_ingest_on_s3_records_the_committed_version_under_retention(
    tmp_path: Path, sqlite_url: str, http_s3_client: Any
) -> None:
    """End to end on S3 over HTTP: intake, event, receipt, read-back, audit."""
    import io

    from custody.audit import audit_ledger
    from custody.events import Event
    from custody.verify.receipt import verify_receipt

    bucket = _bucket_name()
    config = make_config(
        tmp_path,
        sqlite_url,
        store=f"s3://{bucket}/custos",
        s3_endpoint_url=http_s3_client.meta.endpoint_url,
        s3_region=REGION,
        retention_days=1,
        retention_mode="GOVERNANCE",
    )
    deployment = initialise(config).deployment
    try:
        operator = deployment.principals.get("operator")
        examiner, _ = deployment.principals.add("alice", "examiner", operator.actor)
        in_case(deployment, "C-1", "alice")
        content = os.urandom(3 * 1024 * 1024)
        session = deployment.intake.open_session(
            {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "image"},
            examiner.actor,
        )
        done = deployment.intake.receive(session.id, io.BytesIO(content), examiner.actor)

        event = Event.decode(deployment.ledger.entry(done.ledger_index))
        key = done.record.storage_key
        assert key is not None and done.record.storage_version is not None
        assert event.data["storage"] == {"key": key, "version": done.record.storage_version}
        head = http_s3_client.head_object(Bucket=bucket, Key=f"custos/{key}")
        assert head["VersionId"] == done.record.storage_version
        assert head["ObjectLockMode"] == "GOVERNANCE"
        with pytest.raises(ObjectLocked):
            deployment.objects.delete(key)
        verify_receipt(done.receipt.to_json(), [deployment.keys.current.verifier_key])
        _, _, chunks = deployment.handling.read_content(session.id, examiner.actor, "check")
        assert b"".join(chunks) == content
        assert audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys).ok
    finally:
        deployment.close()
