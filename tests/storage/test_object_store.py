"""The ObjectStore contract, run against every implementation (the filesystem one for now;
the S3 one joins this suite with evidence intake)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from custody.errors import ObjectExists, ObjectNotFound
from custody.interfaces import ObjectStore
from storage.filesystem import TEMP_PREFIX, FilesystemObjectStore


@pytest.fixture(params=["filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return FilesystemObjectStore(tmp_path / "objects")


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    stored = store.put("checkpoints/1", b"note\n")
    assert (stored.key, stored.size) == ("checkpoints/1", 5)
    assert store.get("checkpoints/1") == b"note\n"
    assert store.exists("checkpoints/1")


def test_putting_the_same_bytes_again_is_idempotent(store: ObjectStore) -> None:
    store.put("a/b", b"same")
    assert store.put("a/b", b"same").size == 4


def test_existing_content_is_never_replaced(store: ObjectStore) -> None:
    store.put("a/b", b"first")
    with pytest.raises(ObjectExists):
        store.put("a/b", b"second")
    with pytest.raises(ObjectExists):
        store.put_stream("a/b", io.BytesIO(b"third"))
    assert store.get("a/b") == b"first"


def test_streams_are_stored_whole(store: ObjectStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert store.put_stream("blobs/x", io.BytesIO(data)).size == len(data)
    with store.open("blobs/x") as f:
        assert f.read() == data


def test_missing_objects_raise_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("nope")
    assert not store.exists("nope")


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../b", "", "a//b", ".hidden", "a/.tmp-x"])
def test_keys_that_could_escape_or_hide_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_keys_lists_what_was_stored_under_a_prefix(store: ObjectStore) -> None:
    for key in ("checkpoints/2", "checkpoints/10", "manifests/e1"):
        store.put(key, key.encode())
    assert sorted(store.keys("checkpoints/")) == ["checkpoints/10", "checkpoints/2"]


def test_filesystem_objects_are_read_only_and_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)
    store.put("blobs/a", b"x")
    mode = (tmp_path / "blobs" / "a").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not [p for p in (tmp_path / "blobs").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_a_failed_stream_leaves_nothing_visible(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path)

    class Broken(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise OSError("connection reset")

    with pytest.raises(Exception, match="connection reset"):
        store.put_stream("blobs/b", Broken())  # type: ignore[arg-type]
    assert not store.exists("blobs/b")
    assert list((tmp_path / "blobs").iterdir()) == []
