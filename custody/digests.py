"""The single digest pipeline: every byte Custos receives or serves passes through it once.

SHA-256 always; SHA-512, SHA3-256 and, marked legacy for matching EnCase, FTK and NSRL
records, SHA-1 and MD5 when configured. Each chunk is handed to every digest and to the
sink (the object store) at the same time, on threads: hashlib releases the GIL on large
buffers, so the cost is about that of the slowest, not the sum. The next chunk is read while
the current one is being digested and written, and memory stays at a few chunks whatever the
size: a stream that can ``readinto`` is read into a small ring of buffers that are reused as
soon as every digest and the sink are done with them, so that no memory is allocated, and
no page faulted in, per chunk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, BinaryIO

from custody.errors import BadRequest, Invalid, TooLarge

ALGORITHMS: dict[str, Callable[[], hashlib._Hash]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha3_256": hashlib.sha3_256,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
}
LEGACY = frozenset({"sha1", "md5"})
DIGEST_SIZES = {name: make().digest_size for name, make in ALGORITHMS.items()}
CHUNK_SIZE = 1 << 20
# Chunks waiting per digest or sink: enough to ride out a slow write, little memory.
QUEUE_DEPTH = 4
# Buffers in the ring a stream is read into: one being read, the rest queued or in use.
RING_BUFFERS = QUEUE_DEPTH + 2
Chunk = bytes | memoryview
# RFC 9530 names (IANA Hash Algorithms for HTTP Digest Fields) of the ones we accept; "md5"
# and "sha" (SHA-1) are registered as deprecated, and accepted only to match the legacy
# digests acquisition tools record.
HTTP_NAMES = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1"}

_CLI_NAMES = {
    "sha256": "sha256",
    "sha-256": "sha256",
    "sha512": "sha512",
    "sha-512": "sha512",
    "sha3-256": "sha3_256",
    "sha3_256": "sha3_256",
    "sha1": "sha1",
    "sha-1": "sha1",
    "md5": "md5",
}


class DigestMismatch(Invalid):
    """Bytes whose digest differs from the one declared for them."""


def canonical_algorithm(name: str) -> str:
    """``SHA-256``, ``sha256`` -> ``sha256``; ``sha3-256`` -> ``sha3_256``."""
    found = _CLI_NAMES.get(name.strip().lower())
    if found is None:
        raise BadRequest(f"unknown digest algorithm {name!r}; use one of {', '.join(ALGORITHMS)}")
    return found


def parse_expected(text: str) -> tuple[str, str]:
    """``ALG:HEX`` as examiners write it (``--expect md5:...``) -> (algorithm, lowercase hex)."""
    alg, sep, value = text.partition(":")
    if not sep:
        raise BadRequest(f"{text!r} is not ALG:HEX (e.g. sha256:9f86d0...)")
    name = canonical_algorithm(alg)
    value = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", value) or len(value) != 2 * DIGEST_SIZES[name]:
        raise BadRequest(f"{alg} digest must be {2 * DIGEST_SIZES[name]} hex digits")
    return name, value


def parse_http_digest(header: str) -> dict[str, str]:
    """RFC 9530 ``Repr-Digest`` / ``Content-Digest``: ``sha-256=:<base64>:, ...`` -> hex.

    Algorithms we do not accept are ignored, as RFC 9530 §3 allows; a malformed member of
    one we do accept is an error.
    """
    found: dict[str, str] = {}
    for member in header.split(","):
        key, sep, value = member.strip().partition("=")
        name = HTTP_NAMES.get(key.strip().lower())
        if name is None:
            continue
        value = value.strip()
        if not sep or len(value) < 2 or value[0] != ":" or value[-1] != ":":
            raise BadRequest(f"malformed {key} digest: expected {key}=:<base64>:")
        try:
            raw = base64.b64decode(value[1:-1], validate=True)
        except ValueError:
            raise BadRequest(f"malformed {key} digest: not base64") from None
        if len(raw) != DIGEST_SIZES[name]:
            raise BadRequest(f"{key} digest has {len(raw)} bytes, not {DIGEST_SIZES[name]}")
        found[name] = raw.hex()
    return found


def http_digest(digests: Mapping[str, str]) -> str:
    """RFC 9530 field value for the digests we can name over HTTP."""
    names = {v: k for k, v in HTTP_NAMES.items()}
    return ", ".join(
        f"{names[alg]}=:{base64.b64encode(bytes.fromhex(value)).decode()}:"
        for alg, value in sorted(digests.items())
        if alg in names
    )


def check_expected(actual: Mapping[str, str], expected: Mapping[str, str]) -> None:
    """Raise DigestMismatch unless every expected digest equals the computed one."""
    for alg, value in sorted(expected.items()):
        computed = actual.get(alg)
        if computed is None:
            raise BadRequest(f"{alg} was declared but is not being computed")
        if not hmac.compare_digest(computed, value.lower()):
            raise DigestMismatch(f"{alg} mismatch: declared {value.lower()}, computed {computed}")


class DigestPipeline:
    """Feeds chunks to several digests and one sink concurrently; see the module docstring."""

    def __init__(
        self,
        algorithms: Sequence[str],
        sink: Callable[[Chunk], object] | None = None,
        *,
        limit: int | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        names = list(dict.fromkeys(["sha256", *algorithms]))
        for name in names:
            if name not in ALGORITHMS:
                raise BadRequest(f"unknown digest algorithm {name!r}")
        self._hashes = {name: ALGORITHMS[name]() for name in names}
        self._sink = sink
        self._limit = limit
        self._progress = progress
        self.size = 0

    def _tasks(self) -> list[Callable[[Chunk], object]]:
        tasks: list[Callable[[Chunk], object]] = [h.update for h in self._hashes.values()]
        if self._sink is not None:
            tasks.append(self._sink)
        return tasks

    def consume(self, chunks: Iterable[bytes]) -> dict[str, str]:
        """Digest (and sink) every chunk; returns the lowercase hex digests."""
        return self._run((chunk, None) for chunk in chunks)

    def consume_stream(self, stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> dict[str, str]:
        """Digest (and sink) a stream to its end, read ``chunk_size`` bytes at a time into
        reused buffers when it has ``readinto`` (files, sockets, WSGI bodies)."""
        readinto = getattr(stream, "readinto", None)
        if readinto is None or getattr(type(stream), "readinto", None) is io.RawIOBase.readinto:
            # No readinto, or RawIOBase's, which a stream that implements only read leaves
            # unimplemented.
            return self.consume(iter(lambda: stream.read(chunk_size), b""))
        ring = _Ring(RING_BUFFERS, chunk_size, users=len(self._tasks()))
        return self._run(ring.fill(readinto))

    def _run(self, chunks: Iterable[tuple[Chunk, Callable[[], None] | None]]) -> dict[str, str]:
        """Each digest and the sink run on a thread of their own, fed through a short queue;
        this thread only reads and hands out chunks, so reading, every digest and the write
        all overlap, and the slowest of them sets the pace. Each chunk's ``done``, if any, is
        called by every task once it has finished with the chunk. The first error stops
        everything and is raised here.
        """
        tasks = self._tasks()
        queues: list[queue.Queue[Any]] = [queue.Queue(QUEUE_DEPTH) for _ in tasks]
        failures: list[BaseException] = []

        def work(task: Callable[[Chunk], object], inbox: queue.Queue[Any]) -> None:
            while (item := inbox.get()) is not None:
                chunk, done = item
                try:
                    if not failures:  # else keep draining, so the reader is never blocked
                        task(chunk)
                except BaseException as exc:
                    failures.append(exc)
                finally:
                    if done is not None:
                        done()

        threads = [
            threading.Thread(target=work, args=(task, inbox), daemon=True)
            for task, inbox in zip(tasks, queues, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            for chunk, done in chunks:
                if failures:
                    break
                if chunk:
                    self._count(len(chunk))
                    for inbox in queues:
                        inbox.put((chunk, done))
        finally:
            for inbox in queues:
                inbox.put(None)
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]
        return self.hexdigests()

    def update(self, chunk: Chunk) -> None:
        """Digest one chunk (every algorithm at once; no sink): for bytes streamed out."""
        self._count(len(chunk))
        for h in self._hashes.values():
            h.update(chunk)

    def _count(self, n: int) -> None:
        self.size += n
        if self._limit is not None and self.size > self._limit:
            raise TooLarge(f"more than {self._limit} bytes")
        if self._progress is not None:
            self._progress(n)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}


class _Ring:
    """A few buffers a stream is read into in turn; a buffer is read into again only when
    each of its ``users`` (the digests and the sink) has said it is done with it."""

    def __init__(self, count: int, size: int, users: int) -> None:
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(count):
            self._free.put(bytearray(size))
        self._users = users

    def fill(
        self, readinto: Callable[[bytearray], int | None]
    ) -> Iterable[tuple[memoryview, Callable[[], None]]]:
        while True:
            buffer = self._free.get()
            read = readinto(buffer)
            if read is None:
                raise OSError("the stream has no data ready (it is non-blocking)")
            if not read:
                return
            yield memoryview(buffer)[:read], self._releaser(buffer)

    def _releaser(self, buffer: bytearray) -> Callable[[], None]:
        left = [self._users]
        lock = threading.Lock()

        def done() -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self._free.put(buffer)

        return done
