"""The deployment's files are private to the account that runs it.

The home and the keys folder are 0700, the key files, ``custos.toml`` and the SQLite
database with its WAL 0600, and stored objects (blobs, manifests, checkpoints) 0400: never
writable, and readable by no other account on the host, which would otherwise read evidence
and order targets. ``custos init`` sets these modes (and the files are created with them);
``custos audit`` names any path whose mode is wider, and ``/readyz`` logs them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url

from storage.config import Config
from storage.filesystem import LOCKS, SEALED_MODE, STAGING

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
# SQLite's companions of a database file: each holds its pages too.
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class WidePath:
    """A path whose mode grants more than the deployment's account needs."""

    path: Path
    mode: int
    expected: int

    def __str__(self) -> str:
        return f"{self.path} is {self.mode:04o}, wider than {self.expected:04o}"

    def as_json(self) -> dict[str, str]:
        return {
            "path": str(self.path),
            "mode": f"{self.mode:04o}",
            "expected": f"{self.expected:04o}",
        }


def _sqlite_file(config: Config) -> Path | None:
    url = make_url(config.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _store_root(config: Config) -> Path | None:
    url = urlparse(config.store)
    return Path(url.netloc + url.path) if url.scheme == "file" else None


def private_paths(config: Config, *, objects: bool = True) -> Iterator[tuple[Path, int]]:
    """Each existing path of the deployment and the widest mode it may have; with
    ``objects``, every stored object of a filesystem store too (one ``stat`` each)."""
    yield config.home, PRIVATE_FOLDER
    if config.config_file.exists():
        yield config.config_file, PRIVATE_FILE
    if config.keys_dir.is_dir():
        yield config.keys_dir, PRIVATE_FOLDER
        for key_file in sorted(config.keys_dir.iterdir()):
            if key_file.is_file():
                yield key_file, PRIVATE_FILE
    database = _sqlite_file(config)
    if database is not None:
        for suffix in _SQLITE_COMPANIONS:
            path = database.with_name(database.name + suffix)
            if path.exists():
                yield path, PRIVATE_FILE
    root = _store_root(config)
    if root is not None and root.is_dir():
        yield root, PRIVATE_FOLDER
        if objects:
            yield from ((path, SEALED_MODE) for path in _stored_objects(root))


def _stored_objects(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        if Path(folder) == root:
            subfolders[:] = [s for s in subfolders if s not in (STAGING, LOCKS)]
        for name in sorted(files):
            yield Path(folder) / name


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:  # removed meanwhile (a staged upload committed, a WAL folded)
        return None


def wider_paths(config: Config, *, objects: bool = True) -> list[WidePath]:
    """The deployment's paths whose mode grants anything beyond their private mode."""
    wide = []
    for path, expected in private_paths(config, objects=objects):
        mode = _mode(path)
        if mode is not None and mode & ~expected:
            wide.append(WidePath(path, mode, expected))
    return wide


def make_private(config: Config) -> None:
    """Narrow every path of the deployment to its private mode (``custos init``)."""
    for path, expected in private_paths(config):
        mode = _mode(path)
        if mode is not None and mode & ~expected:
            os.chmod(path, mode & expected)
