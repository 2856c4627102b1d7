"""The filesystem object store: for one machine (the embedded default), not for many workers
on many hosts (use S3 there).

Writes go to a temporary file in the destination folder, are fsynced, then linked into place
with ``os.link``, which fails rather than replace an existing name, and the folder is fsynced:
a key that exists is complete and durable, and its content never changes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from custody.errors import ObjectExists, ObjectNotFound, StorageError
from custody.interfaces import StoredObject

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest_file(path: Path) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


class FilesystemObjectStore:
    """``custody.interfaces.ObjectStore`` in a local folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"invalid object key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> StoredObject:
        path = self._path(key)
        if path.exists():
            return self._existing(path, key, hashlib.sha256(data).digest())
        return self._write(path, key, [data])

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        path = self._path(key)
        return self._write(path, key, iter(lambda: stream.read(_CHUNK), b""))

    def _existing(self, path: Path, key: str, digest: bytes) -> StoredObject:
        if _digest_file(path) != digest:
            raise ObjectExists(f"{key} already holds different content")
        return StoredObject(key=key, size=path.stat().st_size)

    def _write(self, path: Path, key: str, chunks: Iterator[bytes] | list[bytes]) -> StoredObject:
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with temp.open("xb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o444)
            try:
                os.link(temp, path)
            except FileExistsError:
                return self._existing(path, key, digest.digest())
            _fsync_dir(folder)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"no space left writing {key}") from exc
            raise StorageError(f"writing {key} failed: {exc}") from exc
        finally:
            temp.unlink(missing_ok=True)
        return StoredObject(key=key, size=size)

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
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key
