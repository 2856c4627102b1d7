"""The files ``custos ingest`` reads: folders walked into files, and a reader that notices a
file changing under it.

An examiner's source can change while it is read: an acquisition still writing, a sync
client, another process. The digests Custos records are those of the bytes it read; if the
file changed meanwhile, they may match neither the file before nor after, and the record
would say the examiner's file had a content it never had. So the reader compares the file's
identity and state (device, inode, size, modification and change times) at the start with
those when it has read the whole file, through the open descriptor and through the path,
and fails the ingest before anything is recorded if any differs.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from custody.errors import CustosError

__all__ = ["ChangedWhileRead", "Source", "StableFile", "walk_sources"]


class ChangedWhileRead(CustosError):
    """The file's size, times or identity changed while it was being read."""


def _state(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StableFile(io.FileIO):
    """A file opened for reading that raises ``ChangedWhileRead`` from the read that ends it
    (and from any read past its first size) when the file is no longer as it was opened."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.path = path
        self._opened = _state(os.fstat(self.fileno()))
        self.size = self._opened[2]
        self._position = 0

    def _check(self) -> None:
        now = _state(os.fstat(self.fileno()))
        try:
            named = _state(os.stat(self.path))
        except OSError:
            named = None
        if now != self._opened or named != self._opened:
            raise ChangedWhileRead(
                f"{self.path} changed while it was read (its size, modification time or "
                "identity is not what it was when reading began): ingest it again once "
                "nothing writes to it"
            )

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        read = super().readinto(buffer)
        self._position += read or 0
        if not read or self._position >= self.size:
            self._check()
        return read or 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._position += len(data or b"")
        if not data or self._position >= self.size:
            self._check()
        return data or b""


@dataclass(frozen=True)
class Source:
    """A file to ingest and the name it is recorded under: its path relative to the folder
    given on the command line (with that folder's own name first), or its file name."""

    path: Path
    name: str


def walk_sources(paths: tuple[Path, ...]) -> Iterator[Source]:
    """Each regular file named, and each regular file under each folder named, in a stable
    order (sorted by relative path). Links and special files under a folder are skipped:
    following a link could leave the folder or loop."""
    for given in paths:
        mode = given.lstat().st_mode
        if stat.S_ISDIR(mode):
            found = []
            for root, folders, files in os.walk(given, followlinks=False):
                folders.sort()
                for file in files:
                    path = Path(root, file)
                    if stat.S_ISREG(path.lstat().st_mode):
                        found.append(path)
            for path in sorted(found, key=lambda p: p.relative_to(given).as_posix()):
                folder = given.resolve().name
                yield Source(path, Path(folder, path.relative_to(given)).as_posix())
        else:
            yield Source(given, given.name)
