"""The digest pipeline: every digest and the sink see exactly the stream's bytes, in order,
whether the stream is read into reused buffers or chunk by chunk."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time

import pytest

from custody.digests import RING_BUFFERS, DigestPipeline, parse_expected
from custody.errors import BadRequest, TooLarge

CONTENT = os.urandom(3 * 65536 + 12345)  # a few chunks of 64 KiB and a short last one
CHUNK = 65536


class ReadOnly(io.RawIOBase):
    """A stream without ``readinto``: the pipeline falls back to ``read``."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    readinto = None  # type: ignore[assignment]


class Trickle(io.RawIOBase):
    """A stream whose ``readinto`` gives at most ``most`` bytes at a time, as sockets do."""

    def __init__(self, data: bytes, most: int) -> None:
        self._data = io.BytesIO(data)
        self._most = most

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        piece = self._data.read(min(len(buffer), self._most))
        buffer[: len(piece)] = piece
        return len(piece)


def expected(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }


@pytest.mark.parametrize(
    "stream",
    [io.BytesIO(CONTENT), io.BufferedReader(Trickle(CONTENT, 1000)), ReadOnly(CONTENT)],
    ids=["readinto", "short-reads", "read-only"],
)
def test_every_digest_and_the_sink_see_exactly_the_streams_bytes(stream: io.IOBase) -> None:
    written = bytearray()
    pipeline = DigestPipeline(["sha1", "md5"], written.extend)

    digests = pipeline.consume_stream(stream, CHUNK)  # type: ignore[arg-type]

    assert digests == expected(CONTENT)
    assert bytes(written) == CONTENT
    assert pipeline.size == len(CONTENT)


def test_a_slow_sink_still_gets_every_chunk_intact_while_buffers_are_reused() -> None:
    data = os.urandom(CHUNK * (RING_BUFFERS * 3) + 7)  # many more chunks than buffers
    written = bytearray()

    def slow_sink(chunk: bytes | memoryview) -> None:
        time.sleep(0.002)  # the reader runs ahead and waits for a free buffer
        written.extend(chunk)

    digests = DigestPipeline(["sha1", "md5"], slow_sink).consume_stream(io.BytesIO(data), CHUNK)

    assert bytes(written) == data
    assert digests == expected(data)


def test_a_stream_with_short_reads_is_digested_whole() -> None:
    digests = DigestPipeline([]).consume_stream(Trickle(CONTENT, 777), CHUNK)  # type: ignore[arg-type]

    assert digests == {"sha256": hashlib.sha256(CONTENT).hexdigest()}


def test_a_failing_sink_stops_the_pipeline_with_its_error() -> None:
    calls = []

    def failing(chunk: bytes | memoryview) -> None:
        calls.append(len(chunk))
        if len(calls) == 2:
            raise OSError("disk full")

    data = os.urandom(CHUNK * (RING_BUFFERS * 4))
    finished = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            DigestPipeline(["md5"], failing).consume_stream(io.BytesIO(data), CHUNK)
        except BaseException as exc:
            errors.append(exc)
        finished.set()

    threading.Thread(target=run, daemon=True).start()

    assert finished.wait(30), "the pipeline hung after its sink failed"
    assert len(errors) == 1 and isinstance(errors[0], OSError)
    assert len(calls) == 2


def test_more_than_the_limit_is_refused() -> None:
    pipeline = DigestPipeline([], limit=len(CONTENT) - 1)

    with pytest.raises(TooLarge):
        pipeline.consume_stream(io.BytesIO(CONTENT), CHUNK)


def test_an_empty_stream_has_the_empty_digests() -> None:
    written = bytearray()

    digests = DigestPipeline(["sha1", "md5"], written.extend).consume_stream(io.BytesIO(b""))

    assert digests == expected(b"")
    assert written == b""


def test_expected_digests_are_read_as_examiners_write_them() -> None:
    sha1 = hashlib.sha1(b"x").hexdigest()

    assert parse_expected(f"SHA-1:{sha1.upper()}") == ("sha1", sha1)
    with pytest.raises(BadRequest):
        parse_expected("sha1:abc")


def test_a_raw_stream_that_implements_only_read_is_read_with_read() -> None:
    class OnlyRead(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(CONTENT)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    digests = DigestPipeline([]).consume_stream(OnlyRead(), CHUNK)

    assert digests == {"sha256": hashlib.sha256(CONTENT).hexdigest()}
