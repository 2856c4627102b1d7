"""The filesystem object store: for one machine (the embedded default), not for many workers
on many hosts (use S3 there).

Every write is staged: bytes go to a temporary file in ``staging/``, are fsynced, made
read-only for the owner alone (``SEALED_MODE``, 0400), then linked
into place with ``os.link``, which fails rather than replace an existing name, and the folder
is fsynced: a key that exists is complete and durable, and its content never changes.

Retention and legal holds live in small JSON markers under ``.locks/`` (the key's path plus
``.json``), replaced atomically and changed only under an advisory lock (``flock``) shared by
every process on the machine, so that a hold is never lost to a concurrent update.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from custody.errors import ObjectExists, ObjectLocked, ObjectNotFound, StorageError
from custody.interfaces import Clock, StoredObject
from custody.ledger import utc_now

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
TEMP_PREFIX = ".tmp-"
STAGING = "staging"
# Content-addressed evidence; retention applies to these keys only.
RETAINED_PREFIX = "blobs/"
LOCKS = ".locks"
_CHUNK = 1 << 20
SEALED_MODE = 0o400
"""A stored object's mode: never writable, readable by the deployment's account alone."""


def check_key(key: str) -> str:
    """Return ``key`` if every store may use it, else raise ``ValueError``.

    Keys are relative, ``/``-separated names whose segments never start with a dot (so no key
    escapes the store or collides with a temporary or marker file) and never begin with the
    ``staging`` folder, which holds uploads not yet committed.
    """
    if not _KEY.match(key) or ".." in key.split("/") or key.split("/")[0] == STAGING:
        raise ValueError(f"invalid object key {key!r}")
    return key


def is_retained(key: str) -> bool:
    return key.startswith(RETAINED_PREFIX)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest_file(path: Path) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _storage_error(what: str, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"no space left {what}")
    return StorageError(f"{what} failed: {exc}")


CONTENT_ADDRESSED = "blobs/sha256/"
WRITE_BACK_EVERY = 32 << 20
"""Bytes a staged upload writes before it has them written back to the disk and dropped from
the page cache (see ``FilesystemStagedUpload.write``)."""


class FilesystemStagedUpload:
    """``custody.interfaces.StagedUpload`` as a temporary file in the store's ``staging/``."""

    def __init__(self, store: FilesystemObjectStore, path: Path) -> None:
        self._store = store
        self.path = path
        self._file: BinaryIO | None = path.open("xb")
        self._size = 0
        self._written_back = 0
        self._discarded = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes | memoryview) -> None:
        if self._file is None:
            raise ValueError("the staged upload is finished or discarded")
        try:
            self._file.write(chunk)
            self._size += len(chunk)
            if self._size - self._written_back >= WRITE_BACK_EVERY:
                self._write_back(self._file)
        except OSError as exc:
            raise _storage_error("staging an upload", exc) from exc

    def _write_back(self, file: BinaryIO) -> None:
        """Write what the upload has received so far to the disk and drop it from the page
        cache. An ingest of many GiB then holds a few MiB of cache rather than filling memory
        with dirty pages that one final fsync must write at once, and reuses the pages it just
        freed (on a virtual machine that hands free memory back to its host, fresh pages cost
        a fault each: this halved the system time of a 1 GiB ingest here). Nobody reads a
        blob just staged; its final fsync, in ``finish``, is still what makes it durable."""
        file.flush()
        fd = file.fileno()
        if hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:  # macOS
            os.fsync(fd)
        if hasattr(os, "posix_fadvise"):
            done = self._written_back
            os.posix_fadvise(fd, done, self._size - done, os.POSIX_FADV_DONTNEED)
        self._written_back = self._size

    def finish(self) -> None:
        if self._discarded:
            raise ValueError("the staged upload was discarded")
        if self._file is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.chmod(self.path, SEALED_MODE)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise _storage_error("staging an upload", exc) from exc

    def commit(self, key: str) -> StoredObject:
        return self._store._commit(self, key)

    def discard(self) -> None:
        self._discarded = True
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class FilesystemObjectStore:
    """``custody.interfaces.ObjectStore`` in a local folder.

    ``retention_days`` (0 for none) retains each object written under ``blobs/`` for that long
    after it is written, as told by ``clock``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        retention_days: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        if retention_days < 0:
            raise ValueError("retention_days must be 0 or more")
        self.root = Path(root)
        self.retention_days = retention_days
        self.clock = clock
        self._staging = self.root / STAGING
        self._locks = self.root / LOCKS
        if not self.root.exists():
            # Only the deployment's account reads evidence (storage.private_files).
            self.root.mkdir(parents=True, mode=0o700)
        self._staging.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _marker_path(self, key: str) -> Path:
        return self._locks / f"{check_key(key)}.json"

    def put(self, key: str, data: bytes) -> StoredObject:
        path = self._path(key)
        if path.exists():
            return self._existing(path, key, len(data), lambda: hashlib.sha256(data).digest())
        staged = self.stage()
        try:
            staged.write(data)
        except BaseException:
            staged.discard()
            raise
        return staged.commit(key)

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        check_key(key)
        staged = self.stage()
        try:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                staged.write(chunk)
        except BaseException:
            staged.discard()
            raise
        return staged.commit(key)

    def stage(self) -> FilesystemStagedUpload:
        path = self._staging / f"{TEMP_PREFIX}{secrets.token_hex(16)}"
        try:
            return FilesystemStagedUpload(self, path)
        except OSError as exc:
            raise _storage_error("staging an upload", exc) from exc

    def _existing(
        self, path: Path, key: str, size: int, digest: Callable[[], bytes]
    ) -> StoredObject:
        """The object already at ``key``, if it holds the bytes being written.

        A content-addressed blob (``blobs/sha256/<hex>``) is named by the digest the intake
        pipeline computed of these very bytes, so an equal size is all that is left to check;
        re-reading a large blob here would double the cost of every repeated ingest, and a
        stored blob that no longer matches its name is what ``custos audit`` looks for.
        Anything else is compared by digest.
        """
        existing = path.stat().st_size
        if existing != size or (
            not key.startswith(CONTENT_ADDRESSED) and _digest_file(path) != digest()
        ):
            raise ObjectExists(f"{key} already holds different content")
        self._retain(key, path)
        return StoredObject(key=key, size=existing)

    def _commit(self, staged: FilesystemStagedUpload, key: str) -> StoredObject:
        path = self._path(key)
        try:
            staged.finish()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._retain(key, path)
            try:
                os.link(staged.path, path)
            except FileExistsError:
                return self._existing(path, key, staged.size, lambda: _digest_file(staged.path))
            _fsync_dir(path.parent)
            return StoredObject(key=key, size=staged.size)
        except OSError as exc:
            raise _storage_error(f"writing {key}", exc) from exc
        finally:
            staged.discard()

    def get(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Walk only the folder the prefix names (``witness/12/`` is a folder of its own), so
        # listing one checkpoint's cosignatures does not read every object of the store.
        folder, _, _ = prefix.rpartition("/")
        start = self.root
        if folder:
            try:
                start = self._path(folder)
            except ValueError:
                return  # no key begins with an invalid folder
        for dirpath, dirnames, filenames in os.walk(start):
            top = Path(dirpath) == self.root
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and not (top and d == STAGING)
            )
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    # Retention and legal holds.

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self._locks / ".mutex").open("a") as mutex:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(mutex, fcntl.LOCK_UN)

    def _read_marker(self, key: str) -> dict[str, Any]:
        try:
            marker: dict[str, Any] = json.loads(self._marker_path(key).read_text("utf-8"))
        except FileNotFoundError:
            return {"legal_hold": False, "retain_until": None}
        return marker

    def _write_marker(self, key: str, marker: dict[str, Any]) -> None:
        path = self._marker_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            with temp.open("x", encoding="utf-8") as f:
                json.dump(marker, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
            _fsync_dir(path.parent)
        finally:
            temp.unlink(missing_ok=True)

    def _retain(self, key: str, path: Path) -> None:
        """Retain a blob from now, as configured.

        A key not yet linked gets a fresh marker, written first so that no committed blob is
        ever without its retention; an existing key keeps its marker (and any hold on it),
        gaining a date only if it had none, as the S3 store does.
        """
        if not (self.retention_days and is_retained(key)):
            return
        until = (self.clock() + timedelta(days=self.retention_days)).isoformat()
        with self._locked():
            if path.exists():
                marker = self._read_marker(key)
                if marker["retain_until"] is not None:
                    return
                marker["retain_until"] = until
            else:
                marker = {"legal_hold": False, "retain_until": until}
            self._write_marker(key, marker)

    def _require(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def set_legal_hold(self, key: str, on: bool) -> None:
        try:
            with self._locked():
                self._require(key)
                marker = self._read_marker(key)
                marker["legal_hold"] = on
                self._write_marker(key, marker)
        except OSError as exc:
            raise _storage_error(f"setting the legal hold on {key}", exc) from exc

    def retained_until(self, key: str) -> datetime | None:
        self._require(key)
        until = self._read_marker(key)["retain_until"]
        return None if until is None else datetime.fromisoformat(until)

    def delete(self, key: str) -> None:
        try:
            with self._locked():
                path = self._require(key)
                marker = self._read_marker(key)
                if marker["legal_hold"]:
                    raise ObjectLocked(f"{key} is under a legal hold")
                until = marker["retain_until"]
                if until is not None and datetime.fromisoformat(until) > self.clock():
                    raise ObjectLocked(f"{key} is retained until {until}")
                # Objects are read-only; some platforms refuse to unlink those.
                os.chmod(path, 0o600)
                path.unlink()
                self._marker_path(key).unlink(missing_ok=True)
                _fsync_dir(path.parent)
        except OSError as exc:
            raise _storage_error(f"deleting {key}", exc) from exc

    def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staged files not written to for ``older_than_seconds``; returns how many.

        Every write moves a file's mtime, so only uploads idle that long go. The threshold is
        the whole rule: it must exceed the longest pause a live upload may take between writes
        (``staging_max_age``, a day by default); a writer idle beyond it loses its upload and
        its commit fails.
        """
        cutoff = self.clock().timestamp() - older_than_seconds
        removed = 0
        for path in self._staging.glob(f"{TEMP_PREFIX}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
