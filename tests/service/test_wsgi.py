"""The worker's request body: a body of known length read straight from the client socket.

The whole server is exercised over HTTP in test_hostile_uploads.py (truncated, stalled, slow
and over-long bodies); these tests pin the reader itself on a socket pair, where the pieces the
client sends, and when, are under the test's control.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.exceptions import ClientDisconnected, RequestTimeout
from werkzeug.wsgi import LimitedStream

from service.wsgi import _Body, _ClientSocket, _LengthBody


@pytest.fixture
def sockets() -> Iterator[tuple[_ClientSocket, socket.socket]]:
    server_side, client_side = socket.socketpair()
    server = _ClientSocket(fileno=server_side.detach())
    server.settimeout(5)
    yield server, client_side
    server.close()
    client_side.close()


def send_later(sock: socket.socket, pieces: list[bytes], pause: float = 0.01) -> threading.Thread:
    def run() -> None:
        for piece in pieces:
            time.sleep(pause)
            sock.sendall(piece)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_read_fills_its_buffer_across_pieces_and_starts_with_the_buffered_bytes(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    body = _LengthBody(server, b"head-", 5 + 3 * 4096)
    send_later(client, [b"a" * 4096, b"b" * 4096, b"c" * 4096])

    first = body.read(6000)
    rest = body.read()

    assert first == b"head-" + b"a" * 4096 + b"b" * (6000 - 5 - 4096)
    assert first + rest == b"head-" + b"a" * 4096 + b"b" * 4096 + b"c" * 4096
    assert body.read() == b""


def test_nothing_beyond_the_content_length_is_read_as_body(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    body = _LengthBody(server, b"0123456789NEXT REQUEST", 10)
    assert body.read() == b"0123456789"

    body = _LengthBody(server, b"", 4)
    client.sendall(b"abcdEXTRA")
    assert body.read(100) == b"abcd"
    assert body.read(100) == b""
    assert server.recv(100) == b"EXTRA"  # still on the socket, never taken as body


def test_readinto_through_werkzeugs_request_stream_gives_whole_chunks(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    payload = bytes(range(256)) * 4096  # 1 MiB
    stream = LimitedStream(_Body(_LengthBody(server, b"", len(payload))), len(payload))  # type: ignore[arg-type]
    send_later(client, [payload[i : i + 65536] for i in range(0, len(payload), 65536)], 0)

    chunks = list(iter(lambda: stream.read(256 * 1024), b""))

    assert [len(c) for c in chunks] == [256 * 1024] * 4
    assert b"".join(chunks) == payload


def test_readline_splits_on_newlines_and_respects_its_limit(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    text = b"first line\nsecond\nlast without newline"
    body = _Body(_LengthBody(server, text[:7], len(text)))
    client.sendall(text[7:] + b"not body")

    assert body.readline() == b"first line\n"
    assert body.readline(3) == b"sec"
    assert list(body) == [b"ond\n", b"last without newline"]


def test_a_body_that_ends_early_is_a_client_error(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    body = _Body(_LengthBody(server, b"", 100))
    client.sendall(b"only forty bytes" * 2 + b"12345678")
    client.shutdown(socket.SHUT_WR)

    with pytest.raises(ClientDisconnected):
        body.read()


def test_a_client_silent_past_the_timeout_gets_408(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    server.settimeout(0.2)
    body = _Body(_LengthBody(server, b"", 100))
    client.sendall(b"a little")

    buffer = bytearray(100)
    with pytest.raises(RequestTimeout):
        body.readinto(buffer)


def test_every_byte_received_is_reported_to_the_heartbeat(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    seen: list[int] = []
    server.moving = seen.append
    body = _LengthBody(server, b"", 3 * 1000)
    send_later(client, [b"x" * 1000] * 3)

    assert len(body.read()) == 3000
    assert sum(seen) == 3000


def test_readinto_on_a_chunked_body_reads_through_gunicorns_reader() -> None:
    class Chunked:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int | None = None) -> bytes:
            size = len(self.data) if size is None or size < 0 else min(size, 3)
            piece, self.data = self.data[:size], self.data[size:]
            return piece

    body = _Body(Chunked(b"abcdefgh"))
    buffer = bytearray(5)

    assert body.readinto(buffer) == 3
    assert bytes(buffer[:3]) == b"abc"


def test_every_byte_sent_is_reported_to_the_heartbeat(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    seen: list[int] = []
    server.moving = seen.append

    server.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    server.sendall(memoryview(b"x" * 5000))

    assert sum(seen) == 19 + 5000
    assert len(client.recv(65536)) > 0


def test_reading_a_whole_body_does_not_reserve_the_length_the_client_claimed(
    sockets: tuple[_ClientSocket, socket.socket],
) -> None:
    server, client = sockets
    body = _Body(_LengthBody(server, b"", 1 << 40))  # a terabyte announced, a few bytes sent
    client.sendall(b"only this")
    client.shutdown(socket.SHUT_WR)

    with pytest.raises(ClientDisconnected):
        body.read()
