"""Keep-alive under ``custos serve`` (service/wsgi.py's threaded worker), with slow clients.

``custos serve`` runs as a subprocess with one worker of two threads, a short request timeout
and a short worker timeout. A connection carries many requests; a kept-alive connection that
idles holds no thread and is closed after the keep-alive timeout; a client that stalls its
body on a kept-alive connection gets its 408 while other clients are served; and a request
that hangs in the app gets its worker restarted after the worker timeout, though the worker's
own loop keeps running.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.wsgi import KEEPALIVE
from tests.conftest import bearer
from tests.factories import SEIZURE
from tests.service.test_hostile_uploads import (
    CLIENT_TIMEOUT,
    ITEM,
    HostileServer,
    parse_response,
    read_until_closed,
)

THREADS = 2
REQUEST_TIMEOUT = 3.0
WORKER_TIMEOUT = 6


class ThreadedServer(HostileServer):
    """One worker of ``THREADS`` threads, with this module's timeouts."""

    def __init__(self, home: Path, log: Path) -> None:
        super().__init__(home, log)
        self.settings = {"CUSTOS_WORKER_THREADS": str(THREADS)}

    def address_args(self) -> list[str]:
        return [
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
            *("--request-timeout", str(REQUEST_TIMEOUT)),
            *("--worker-timeout", str(WORKER_TIMEOUT)),
        ]

    def key_request(self) -> bytes:
        return b"GET /v1/log/key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    folder = tmp_path_factory.mktemp("keepalive")
    with ThreadedServer(folder / "home", folder / "server.log") as running:
        yield running


def read_response(client: socket.socket) -> tuple[int, bytes]:
    """One response with a Content-Length from a connection that stays open."""
    received = bytearray()
    while b"\r\n\r\n" not in received:
        chunk = client.recv(65536)
        assert chunk, f"the connection closed after {bytes(received)!r}"
        received += chunk
    head = bytes(received).partition(b"\r\n\r\n")[0]
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(received) < len(head) + 4 + length:
        chunk = client.recv(65536)
        assert chunk, "the connection closed mid-answer"
        received += chunk
    status, _, body, rest = parse_response(bytes(received))
    assert rest == b""
    return status, body


def closed_yet(client: socket.socket) -> bool:
    """Whether the server has closed the connection (it is readable, and reads empty)."""
    readable, _, _ = select.select([client], [], [], 0)
    return bool(readable) and client.recv(1, socket.MSG_PEEK) == b""


def test_one_connection_carries_many_requests(server: ThreadedServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT)
    sockets = set()
    headers = {**bearer(server.token), "Content-Type": "application/json"}
    for _ in range(3):
        connection.request("GET", "/v1/log/key")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        sockets.add(id(connection.sock))
        connection.request("POST", "/v1/evidence", json.dumps(ITEM), headers)
        response = connection.getresponse()
        upload = json.loads(response.read())["upload"]
        assert response.status == 201
        connection.request(
            "PUT", upload, b"kept alive", {**headers, "Content-Type": "application/octet-stream"}
        )
        response = connection.getresponse()
        assert response.status == 201, response.read()
        response.read()
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1  # never reconnected


def test_idle_kept_alive_connections_hold_no_thread_and_are_closed_after_the_keepalive(
    server: ThreadedServer,
) -> None:
    idle = [server.connect() for _ in range(2 * THREADS)]
    for client in idle:
        client.sendall(server.key_request())
        assert read_response(client)[0] == 200
    # More idle connections than threads, and another client is still served at once.
    fresh = server.connect()
    fresh.sendall(server.key_request())
    assert read_response(fresh)[0] == 200
    assert not any(closed_yet(client) for client in idle)
    # Each idle one is closed by the server after the keep-alive timeout, answering nothing.
    for client in idle:
        client.settimeout(KEEPALIVE + CLIENT_TIMEOUT)
        assert read_until_closed(client) == b""
    fresh.close()


def test_a_body_stalled_on_a_kept_alive_connection_is_a_408_while_others_are_served(
    server: ThreadedServer,
) -> None:
    _, path = server.open_upload()
    stalled = server.connect()
    stalled.sendall(server.key_request())
    assert read_response(stalled)[0] == 200
    stalled.sendall(server.put_head(path, 1000) + b"x" * 10)  # ... and then nothing

    other = server.connect()
    for _ in range(3):
        other.sendall(server.key_request())
        assert read_response(other)[0] == 200
    assert not closed_yet(stalled)  # still waiting for its body while the other was served

    status, headers, answer, _ = parse_response(read_until_closed(stalled))
    assert status == 408, answer
    assert headers["content-type"] == "application/problem+json"
    other.close()
    # The same upload, sent again, is taken at once.
    assert server.upload(path, b"abc")[0] == 201


def test_a_request_that_hangs_gets_its_worker_restarted(server: ThreadedServer) -> None:
    """The worker's loop runs on while one of its threads hangs (here on the database's write
    lock, held by the test): only the request's own lack of progress decides."""
    holder = sqlite3.connect(server.home / "custos.db", isolation_level=None, timeout=60)
    holder.execute("BEGIN IMMEDIATE")
    answers: list[bytes] = []
    try:
        client = server.connect()
        body = json.dumps({**ITEM, "kind": "physical", "seizure": SEIZURE}).encode()
        head = (
            "POST /v1/evidence HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        client.sendall(head.encode("latin-1") + body)
        reader = threading.Thread(target=lambda: answers.append(read_until_closed(client)))
        reader.start()
        reader.join(CLIENT_TIMEOUT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answers == [b""]  # cut off with its worker, long before the database gave up
    assert server.worker_timed_out()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT)
    connection.request("GET", "/v1/log/key")
    assert connection.getresponse().status == 200  # a new worker answers
    connection.close()
