"""The S3 object store: many workers on many hosts share one bucket with Object Lock.

Uploads are staged under ``<prefix>staging/`` (multipart above the part size, every part
carrying its own SHA-256 checksum, which S3 verifies), then copied to their key. A committed
version may carry Object Lock retention and a legal hold; staged objects never do, and the
bucket has no default retention, so abandoned staging stays deletable.

Every request is retried by botocore's standard retry mode: throttling (503 SlowDown), other
5xx answers, dropped connections and timeouts are tried again with exponential backoff and
jitter, up to ``max_attempts`` in all, each waiting at most ``timeout`` seconds to connect and
for each read. What still fails then, and every other botocore error, becomes the project's own
exception here (``StorageError``: 503 with Retry-After over HTTP): ``custody`` never sees boto3.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, NoReturn, cast

import boto3
import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from custody.errors import ObjectExists, ObjectLocked, ObjectNotFound, StorageError
from custody.interfaces import Clock, StoredObject
from custody.ledger import utc_now
from storage.config import MIN_PART_SIZE, RETENTION_MODES, MiB
from storage.filesystem import STAGING, TEMP_PREFIX, check_key, is_retained

# The largest object one CopyObject may copy; boto3's managed copy goes multipart above it.
MAX_SINGLE_COPY = 5 * 1024 * MiB
_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
_CHUNK = 1 << 20


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _raise_translated(exc: ClientError | BotoCoreError, key: str) -> NoReturn:
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _NOT_FOUND:
            raise ObjectNotFound(key) from None
        message = exc.response.get("Error", {}).get("Message", "")
        raise StorageError(f"S3 refused {key!r}: {code} {message}".rstrip()) from exc
    raise StorageError(f"S3 failed on {key!r}: {exc}") from exc


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """Turn any botocore error raised inside into ObjectNotFound or StorageError."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        _raise_translated(exc, key)


# botocore's reader of its service models, shared by the stores of one process: each new
# session would otherwise parse the S3 model and endpoint rules again (about 0.4 s a client).
_MODELS = botocore.loaders.create_loader()


def new_client(endpoint_url: str | None, region: str | None, config: BotocoreConfig) -> Any:
    """An S3 client in a session of its own (credentials resolved afresh), sharing the models."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _MODELS)
    return boto3.session.Session(botocore_session=session).client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )


def client_config(max_attempts: int, timeout: float) -> BotocoreConfig:
    """Retries and timeouts for every request of the store's client (see the module docstring)."""
    return BotocoreConfig(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=timeout,
        read_timeout=timeout,
    )


class _Body(io.RawIOBase):
    """A GetObject body whose read errors (a connection dropped or timed out mid-stream, which
    botocore does not retry) become StorageError like every other S3 error."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with _s3_errors(self._key):
            data: bytes = self._body.read(None if size is None or size < 0 else size)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _remove(request: Callable[..., Any], **arguments: Any) -> int:
    """Make a delete or abort request: 1 if it removed something, 0 if it was already gone."""
    try:
        request(**arguments)
    except ClientError as exc:
        if _error_code(exc) in {*_NOT_FOUND, "NoSuchUpload"}:
            return 0
        raise
    return 1


def _b64_sha256(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def ensure_bucket(client: Any, bucket: str, region: str | None) -> None:
    """Create ``bucket`` with Object Lock (which turns versioning on), or check an existing one.

    An existing bucket must have versioning and Object Lock enabled and no default retention
    rule (which would lock staged uploads too); otherwise StorageError says what is wrong.
    """
    with _s3_errors(bucket):
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            create: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
            if region and region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                client.create_bucket(**create)
            except ClientError as race:
                if _error_code(race) != "BucketAlreadyOwnedByYou":
                    raise
        if client.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            raise StorageError(f"bucket {bucket} does not have versioning enabled")
        try:
            lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            if _error_code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            lock = {}
    if lock.get("ObjectLockEnabled") != "Enabled":
        raise StorageError(f"bucket {bucket} does not have Object Lock enabled")
    if lock.get("Rule"):
        raise StorageError(
            f"bucket {bucket} has a default retention rule; staged uploads must stay deletable"
        )


class S3StagedUpload:
    """``custody.interfaces.StagedUpload`` as an object under the store's ``staging/``.

    Bytes are buffered up to the part size; the first full part starts a multipart upload.
    """

    def __init__(self, store: S3ObjectStore, staging_key: str) -> None:
        self._store = store
        self.staging_key = staging_key
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._version_id: str | None = None
        self._finished = False
        self._discarded = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes | memoryview) -> None:
        if self._finished or self._discarded:
            raise ValueError("the staged upload is finished or discarded")
        self._buffer += chunk
        self._digest.update(chunk)
        self._size += len(chunk)
        part_size = self._store.part_size
        while len(self._buffer) >= part_size:
            self._upload_part(memoryview(self._buffer)[:part_size])
            del self._buffer[:part_size]

    def _upload_part(self, part: memoryview) -> None:
        s3, bucket, key = self._store.client, self._store.bucket, self.staging_key
        with _s3_errors(key):
            if self._upload_id is None:
                created = s3.create_multipart_upload(
                    Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256"
                )
                self._upload_id = str(created["UploadId"])
            number = len(self._parts) + 1
            checksum = _b64_sha256(part)
            response = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(part),
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        self._parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}
        )

    def finish(self) -> None:
        if self._discarded:
            raise ValueError("the staged upload was discarded")
        if self._finished:
            return
        s3, bucket, key = self._store.client, self._store.bucket, self.staging_key
        if self._upload_id is None:
            with _s3_errors(key):
                response = s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=bytes(self._buffer),
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64_sha256(self._buffer),
                )
        else:
            if self._buffer:
                self._upload_part(memoryview(self._buffer))
            with _s3_errors(key):
                response = s3.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
            self._upload_id = None
        self._buffer.clear()
        self._version_id = response.get("VersionId")
        self._finished = True

    def commit(self, key: str) -> StoredObject:
        return self._store._commit(self, key, self._digest.hexdigest())

    @property
    def copy_source(self) -> dict[str, str]:
        source = {"Bucket": self._store.bucket, "Key": self.staging_key}
        if self._version_id:
            source["VersionId"] = self._version_id
        return source

    def discard(self) -> None:
        self._discarded = True
        self._buffer.clear()
        s3, bucket, key = self._store.client, self._store.bucket, self.staging_key
        with _s3_errors(key):
            if self._upload_id is not None:
                _remove(s3.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=self._upload_id)
                self._upload_id = None
            if self._version_id is not None:
                # Deleting the version itself: a plain delete would only add a delete marker.
                _remove(s3.delete_object, Bucket=bucket, Key=key, VersionId=self._version_id)
                self._version_id = None


class S3ObjectStore:
    """``custody.interfaces.ObjectStore`` in an S3 bucket with versioning and Object Lock.

    ``retention_days`` (0 for none) retains each version committed under ``blobs/`` in
    ``retention_mode`` until that many days after ``clock()``.
    ``max_attempts`` and ``timeout`` bound the retries of each request (module docstring).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = 16 * MiB,
        retention_mode: str = "GOVERNANCE",
        retention_days: int = 0,
        max_attempts: int = 5,
        timeout: float = 20.0,
        clock: Clock = utc_now,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        if retention_mode not in RETENTION_MODES:
            raise ValueError(f"retention_mode must be one of {', '.join(RETENTION_MODES)}")
        if retention_days < 0:
            raise ValueError("retention_days must be 0 or more")
        prefix = prefix.strip("/")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = client or new_client(
            endpoint_url, region, client_config(max_attempts, timeout)
        )
        self.part_size = part_size
        self.retention_mode = retention_mode
        self.retention_days = retention_days
        self.clock = clock
        self._copy_config = TransferConfig(
            multipart_threshold=MAX_SINGLE_COPY, multipart_chunksize=part_size
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _head(self, key: str) -> dict[str, Any]:
        with _s3_errors(key):
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        return head

    def _retention(self) -> dict[str, Any]:
        until = self.clock() + timedelta(days=self.retention_days)
        return {"Mode": self.retention_mode, "RetainUntilDate": until}

    def put(self, key: str, data: bytes) -> StoredObject:
        name = self._name(key)
        digest = hashlib.sha256(data)
        lock: dict[str, Any] = {}
        if self.retention_days and is_retained(key):
            retention = self._retention()
            lock = {
                "ObjectLockMode": retention["Mode"],
                "ObjectLockRetainUntilDate": retention["RetainUntilDate"],
            }
        with _s3_errors(key):
            try:
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=name,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"),
                    Metadata={"sha256": digest.hexdigest()},
                    IfNoneMatch="*",
                    **lock,
                )
            except ClientError as exc:
                # 412: the key exists; 409: a concurrent conditional write to it is in flight.
                if _error_code(exc) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
                    raise
                return self._existing(key, digest.hexdigest(), len(data))
        return StoredObject(key=key, size=len(data), version_id=response.get("VersionId"))

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        check_key(key)
        staged = self.stage()
        try:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                staged.write(chunk)
        except BaseException:
            with suppress(StorageError):
                staged.discard()
            raise
        return staged.commit(key)

    def stage(self) -> S3StagedUpload:
        return S3StagedUpload(self, f"{self.prefix}{STAGING}/{TEMP_PREFIX}{secrets.token_hex(16)}")

    def _existing(self, key: str, sha256_hex: str, size: int) -> StoredObject:
        """The object already under ``key`` if it holds these bytes; else ObjectExists.

        A blob found without the retention it should have (a commit that failed between its
        copy and its retention) gets it now, so a retried ingest never leaves it unretained.
        """
        head = self._head(key)
        recorded = head.get("Metadata", {}).get("sha256")
        if head["ContentLength"] != size or (recorded or self._sha256_of(key)) != sha256_hex:
            raise ObjectExists(f"{key} already holds different content")
        version_id = head.get("VersionId")
        if not head.get("ObjectLockRetainUntilDate"):
            self._retain(key, version_id)
        return StoredObject(key=key, size=size, version_id=version_id)

    def _sha256_of(self, key: str) -> str:
        digest = hashlib.sha256()
        with self.open(key) as body, _s3_errors(key):
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def _retain(self, key: str, version_id: str | None) -> None:
        """Put the configured retention on this version of ``key``, if it is a blob."""
        if not (self.retention_days and is_retained(key)):
            return
        with _s3_errors(key):
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=self._name(key),
                VersionId=version_id,
                Retention=self._retention(),
            )

    def _commit(self, staged: S3StagedUpload, key: str, sha256_hex: str) -> StoredObject:
        name = self._name(key)
        try:
            staged.finish()
            try:
                return self._existing(key, sha256_hex, staged.size)
            except ObjectNotFound:
                pass
            with _s3_errors(key):
                # Write-once by checking first: CopyObject has no usable If-None-Match here,
                # so two workers committing the same blob at once may leave two identical
                # versions, each retained.
                self.client.copy(
                    staged.copy_source,
                    self.bucket,
                    name,
                    ExtraArgs={
                        "ChecksumAlgorithm": "SHA256",
                        "Metadata": {"sha256": sha256_hex},
                        "MetadataDirective": "REPLACE",
                    },
                    Config=self._copy_config,
                )
            # Retention follows the copy: moto refuses Object Lock headers on CopyObject and
            # drops them on a multipart copy; _existing heals a failure in between.
            version_id = self._head(key).get("VersionId")
            self._retain(key, version_id)
            return StoredObject(key=key, size=staged.size, version_id=version_id)
        finally:
            staged.discard()

    def get(self, key: str) -> bytes:
        with self.open(key) as body, _s3_errors(key):
            return body.read()

    def open(self, key: str) -> BinaryIO:
        """A streaming body: read it and close it (or use it as a context manager)."""
        with _s3_errors(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        return cast(BinaryIO, _Body(response["Body"], key))

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    try:
                        yield check_key(key)
                    except ValueError:
                        continue

    def set_legal_hold(self, key: str, on: bool) -> None:
        version_id = self._head(key).get("VersionId")
        with _s3_errors(key):
            self.client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=self._name(key),
                VersionId=version_id,
                LegalHold={"Status": "ON" if on else "OFF"},
            )

    def retained_until(self, key: str) -> datetime | None:
        until = self._head(key).get("ObjectLockRetainUntilDate")
        return None if until is None else until.astimezone(UTC)

    def delete(self, key: str) -> None:
        """Delete the current version itself (not just hide it behind a delete marker)."""
        head = self._head(key)
        with _s3_errors(key):
            try:
                self.client.delete_object(
                    Bucket=self.bucket, Key=self._name(key), VersionId=head.get("VersionId")
                )
            except ClientError as exc:
                locked = head.get("ObjectLockLegalHoldStatus") == "ON" or head.get(
                    "ObjectLockRetainUntilDate"
                )
                if _error_code(exc) == "AccessDenied" and locked:
                    raise ObjectLocked(f"{key} is under retention or a legal hold") from None
                raise

    def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staged objects and multipart uploads idle for ``older_than_seconds``.

        A staged object's age is its LastModified; a multipart upload's is that of its latest
        part (or its start, before any part), so an upload still receiving parts is kept. The
        threshold is the whole rule: it must exceed the longest pause a live upload may take
        (``staging_max_age``, a day by default).
        """
        cutoff = self.clock() - timedelta(seconds=older_than_seconds)
        staging = f"{self.prefix}{STAGING}/"
        removed = 0
        with _s3_errors(staging):
            versions = self.client.get_paginator("list_object_versions")
            for page in versions.paginate(Bucket=self.bucket, Prefix=staging):
                for item in page.get("Versions", []):
                    if item["LastModified"] < cutoff:
                        removed += _remove(
                            self.client.delete_object,
                            Bucket=self.bucket,
                            Key=item["Key"],
                            VersionId=item["VersionId"],
                        )
            uploads = self.client.get_paginator("list_multipart_uploads")
            for page in uploads.paginate(Bucket=self.bucket, Prefix=staging):
                for upload in page.get("Uploads", []):
                    name, upload_id = upload["Key"], upload["UploadId"]
                    if upload["Initiated"] < cutoff and self._idle_since(name, upload_id, cutoff):
                        removed += _remove(
                            self.client.abort_multipart_upload,
                            Bucket=self.bucket,
                            Key=name,
                            UploadId=upload_id,
                        )
        return removed

    def _idle_since(self, name: str, upload_id: str, cutoff: datetime) -> bool:
        """Whether no part of this upload arrived after ``cutoff`` (False if it is gone)."""
        parts = self.client.get_paginator("list_parts")
        try:
            for page in parts.paginate(Bucket=self.bucket, Key=name, UploadId=upload_id):
                if any(part["LastModified"] >= cutoff for part in page.get("Parts", [])):
                    return False
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                return False
            raise
        return True
