"""Lying, truncated and slow clients against the real server (issue 6, item 6).

``custos serve`` runs as a subprocess with one worker, a short request timeout and a short
worker timeout, and a raw socket plays the client: a Content-Length larger than the body
followed by a close, a Content-Length smaller than the body (with a request smuggled behind
it), a chunked body cut short or badly framed, headers that never end, a body that stops
arriving, a body that arrives slowly but steadily, and a download taken slowly but steadily.
After each, the home itself (its
ledger, records and staging folder) shows what was recorded, and a retry of the same upload
shows that its session was freed at once.

The Content-Length decides what the item is: RFC 9112 section 6.3 makes the body exactly that
many bytes, so bytes after it are not part of the item (the receipt's size and digest say
what was stored): on the kept-alive connection they are the next request, answered after the
upload's, or refused if malformed.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bench.server import Server
from custody.digests import http_digest
from custody.errors import StorageError
from storage.config import ConfigError, load_config
from storage.deployment import Deployment, open_deployment
from tests.conftest import bearer
from tests.factories import in_case

REQUEST_TIMEOUT = 1.5
WORKER_TIMEOUT = 3
CLIENT_TIMEOUT = 60.0  # how long the test waits for the server, far beyond either timeout
ITEM = {"kind": "digital", "case": "C-9", "exhibit": "USB-1", "description": "a USB stick"}


class HostileServer(Server):
    """``custos serve`` with one worker and short timeouts, so that cut-offs come quickly."""

    def __init__(self, home: Path, log: Path) -> None:
        super().__init__(home, log, workers=1, cases=(ITEM["case"],))

    def address_args(self) -> list[str]:
        return [
            *super().address_args(),
            *("--request-timeout", str(REQUEST_TIMEOUT)),
            *("--worker-timeout", str(WORKER_TIMEOUT)),
        ]

    def connect(self) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
        return client

    def open_upload(self) -> tuple[str, str]:
        """Announce a digital item; returns its evidence id and upload path."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
        headers = {**bearer(self.token), "Content-Type": "application/json"}
        connection.request("POST", "/v1/evidence", json.dumps(ITEM), headers)
        response = connection.getresponse()
        session = json.loads(response.read())
        connection.close()
        assert response.status == 201, session
        return session["id"], session["upload"]

    def put_head(self, path: str, length: int | None, **headers: str) -> bytes:
        """The request line and headers of an upload; ``length`` None sends it chunked."""
        framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
        lines = [
            f"PUT {path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Authorization: Bearer {self.token}",
            "Content-Type: application/octet-stream",
            framing,
            *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def upload(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        client = self.connect()
        client.sendall(self.put_head(path, len(body)) + body)
        status, _, answer, _ = parse_response(read_until_closed(client))
        return status, json.loads(answer)

    def worker_timed_out(self) -> bool:
        """Whether gunicorn ever had to kill a worker that stopped answering."""
        return "WORKER TIMEOUT" in self.log.read_text("utf-8", "replace")


def read_until_closed(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = bytearray()
    with client:
        while chunk := client.recv(65536):
            received += chunk
    return bytes(received)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """The first response in ``raw``: status, headers, body, and whatever follows it."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    length = int(headers["content-length"])
    return int(status_line.split()[1]), headers, rest[:length], rest[length:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    folder = tmp_path_factory.mktemp("hostile")
    with HostileServer(folder / "home", folder / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def served(server: HostileServer) -> Iterator[Deployment]:
    """The server's home, opened by the test to see what was recorded."""
    deployment = open_deployment(load_config(server.home, environ={}))
    yield deployment
    deployment.close()


def staged_files(served: Deployment) -> list[Path]:
    return list((served.config.home / "objects" / "staging").iterdir())


def assert_nothing_recorded(served: Deployment, evidence_id: str, ledger_size: int) -> None:
    assert served.evidence.get(evidence_id) is None
    assert served.ledger.size() == ledger_size
    assert staged_files(served) == []


def test_a_truncated_upload_records_nothing_and_can_be_retried_at_once(
    server: HostileServer, served: Deployment
) -> None:
    evidence_id, path = server.open_upload()
    before = served.ledger.size()
    client = server.connect()
    client.sendall(server.put_head(path, 1000) + b"x" * 100)
    client.shutdown(socket.SHUT_WR)  # the client goes away after 100 of 1000 bytes

    status, _, answer, _ = parse_response(read_until_closed(client))

    assert status == 400, answer
    assert_nothing_recorded(served, evidence_id, before)
    status, ingested = server.upload(path, b"y" * 1000)
    assert status == 201, ingested
    assert ingested["size"] == 1000
    assert served.ledger.size() == before + 1


def test_a_large_upload_arriving_in_uneven_pieces_is_received_whole(
    server: HostileServer, served: Deployment
) -> None:
    content = bytes(range(251)) * 12_601  # a little over 3 MiB, not a multiple of any buffer
    _, path = server.open_upload()
    client = server.connect()
    client.sendall(server.put_head(path, len(content)) + content[:7])
    for start, end in [(7, 70_000), (70_000, 1_500_001), (1_500_001, len(content))]:
        time.sleep(0.05)
        client.sendall(content[start:end])

    status, _, answer, _ = parse_response(read_until_closed(client))

    assert status == 201, answer
    ingested = json.loads(answer)
    assert ingested["size"] == len(content)
    assert ingested["digests"]["sha256"] == hashlib.sha256(content).hexdigest()
    record = served.evidence.get(ingested["id"])
    assert record is not None and record.storage_key is not None
    assert served.objects.get(record.storage_key) == content


def test_an_upload_that_waits_for_100_continue_is_asked_for_its_body_and_received(
    server: HostileServer,
) -> None:
    content = os.urandom(100_000)
    _, path = server.open_upload()
    client = server.connect()
    client.sendall(server.put_head(path, len(content), Expect="100-continue"))

    interim = client.recv(64)  # curl and others send the body only once asked (or after 1 s)
    client.sendall(content)
    status, _, answer, _ = parse_response(read_until_closed(client))

    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert status == 201, answer
    assert json.loads(answer)["digests"]["sha256"] == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("sent", "close"),
    [
        (b"64\r\n" + b"x" * 10, True),  # a chunk of 100 bytes, cut off after 10
        (b"zz\r\nhello\r\n0\r\n\r\n", False),  # a chunk size that is not hexadecimal
    ],
    ids=["cut-short", "bad-chunk-size"],
)
def test_a_broken_chunked_upload_is_a_client_error_and_records_nothing(
    server: HostileServer, served: Deployment, sent: bytes, close: bool
) -> None:
    evidence_id, path = server.open_upload()
    before = served.ledger.size()
    client = server.connect()
    client.sendall(server.put_head(path, None) + sent)
    if close:
        client.shutdown(socket.SHUT_WR)

    status, headers, answer, _ = parse_response(read_until_closed(client))

    assert status == 400, answer
    assert headers["content-type"] == "application/problem+json"
    assert_nothing_recorded(served, evidence_id, before)
    client = server.connect()
    client.sendall(server.put_head(path, None) + b"5\r\nhello\r\n0\r\n\r\n")
    assert parse_response(read_until_closed(client))[0] == 201


def test_bytes_beyond_the_content_length_are_the_next_request_never_part_of_the_item(
    server: HostileServer, served: Deployment
) -> None:
    evidence_id, path = server.open_upload()
    smuggled = b"GET /v1/log/key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    client = server.connect()
    client.sendall(server.put_head(path, 5) + b"hello" + b" and more" + smuggled)

    status, headers, answer, after = parse_response(read_until_closed(client))

    assert status == 201, answer
    ingested = json.loads(answer)
    assert ingested["size"] == 5
    assert ingested["digests"]["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert headers["repr-digest"] == http_digest({"sha256": hashlib.sha256(b"hello").hexdigest()})
    # The connection is kept alive: what follows the body is the next request, here one
    # that is malformed (" and moreGET ..."), refused, and the connection closed after it.
    next_status, _, _, rest = parse_response(after)
    assert (next_status, rest) == (400, b"")
    record = served.evidence.get(evidence_id)
    assert record is not None and record.size == 5


def test_a_request_pipelined_behind_an_upload_is_answered_after_it(
    server: HostileServer, served: Deployment
) -> None:
    _, path = server.open_upload()
    pipelined = b"GET /v1/log/key HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    client = server.connect()
    client.sendall(server.put_head(path, 5) + b"hello" + pipelined)

    status, _, answer, after = parse_response(read_until_closed(client))
    assert status == 201, answer
    assert json.loads(answer)["size"] == 5
    next_status, _, keys, rest = parse_response(after)
    assert (next_status, rest) == (200, b"")
    assert keys.decode().split() == [v.verifier_key() for v in served.keys.verifiers]


def test_a_content_length_shorter_than_a_body_with_its_digest_declared_is_refused(
    server: HostileServer, served: Deployment
) -> None:
    evidence_id, path = server.open_upload()
    before = served.ledger.size()
    body = b"the whole acquisition"
    declared = http_digest({"sha256": hashlib.sha256(body).hexdigest()})
    client = server.connect()
    client.sendall(server.put_head(path, 8, Repr_Digest=declared) + body)

    status, headers, answer, _ = parse_response(read_until_closed(client))

    assert status == 422, answer
    assert headers["content-type"] == "application/problem+json"
    assert_nothing_recorded(served, evidence_id, before)


def test_clients_that_never_finish_their_headers_are_cut_off_and_free_the_worker(
    server: HostileServer,
) -> None:
    # More stalled clients than the one worker: each holds it only for the request timeout.
    stalled = [server.connect() for _ in range(2)]
    for client in stalled:
        client.sendall(b"GET /v1/log/key HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")

    answers = [read_until_closed(client) for client in stalled]

    assert answers == [b"", b""]  # dropped without an answer
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT)
    connection.request("GET", "/v1/log/key")
    assert connection.getresponse().status == 200
    connection.close()
    assert not server.worker_timed_out()


def test_an_upload_that_stops_arriving_fails_with_408_and_can_be_retried_at_once(
    server: HostileServer, served: Deployment
) -> None:
    evidence_id, path = server.open_upload()
    before = served.ledger.size()
    client = server.connect()
    client.sendall(server.put_head(path, 1000) + b"x" * 10)  # ... and then nothing

    status, headers, answer, _ = parse_response(read_until_closed(client))

    assert status == 408, answer
    assert headers["content-type"] == "application/problem+json"
    assert_nothing_recorded(served, evidence_id, before)
    assert server.upload(path, b"z" * 1000)[0] == 201
    assert not server.worker_timed_out()


def test_an_upload_that_is_slow_but_moving_outlasts_the_worker_timeout(
    server: HostileServer, served: Deployment
) -> None:
    evidence_id, path = server.open_upload()
    chunks = [bytes([i]) * 1024 for i in range(20)]
    client = server.connect()
    client.sendall(server.put_head(path, sum(map(len, chunks))))
    for chunk in chunks:  # well within the request timeout each, twice the worker timeout in all
        time.sleep(WORKER_TIMEOUT * 2 / len(chunks))
        client.sendall(chunk)

    status, _, answer, _ = parse_response(read_until_closed(client))

    assert status == 201, answer
    assert json.loads(answer)["digests"]["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert not server.worker_timed_out()
    record = served.evidence.get(evidence_id)
    assert record is not None and record.size == 20 * 1024


def test_a_download_that_is_slow_but_moving_outlasts_the_worker_timeout(
    server: HostileServer,
) -> None:
    content = os.urandom(16 * 1024 * 1024)
    _, path = server.open_upload()
    status, ingested = server.upload(path, content)
    assert status == 201, ingested
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # little buffered client-side
    client.settimeout(CLIENT_TIMEOUT)
    client.connect(("127.0.0.1", server.port))
    client.sendall(
        (
            f"GET /v1/evidence/{ingested['id']}/content?purpose=review HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n\r\n"
        ).encode("latin-1")
    )
    received = bytearray()
    started = time.monotonic()
    with client:
        while chunk := client.recv(32768):  # about 2 MiB/s: several worker timeouts in all
            received += chunk
            time.sleep(0.015)

    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert time.monotonic() - started > 2 * WORKER_TIMEOUT
    assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
    assert not server.worker_timed_out()


def test_an_upload_whose_staged_bytes_cannot_be_removed_still_frees_its_session(
    client: FlaskClient, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = deployment.principals.get("operator").actor
    _, token = deployment.principals.add("examiner", "examiner", operator)
    in_case(deployment, "C-9", "examiner")
    session = client.post("/v1/evidence", json=ITEM, headers=bearer(token)).get_json()
    stage = deployment.objects.stage

    def stage_that_cannot_discard() -> Any:
        staged = stage()

        def discard() -> None:
            raise StorageError("the object store is unreachable")

        monkeypatch.setattr(staged, "discard", discard)
        return staged

    monkeypatch.setattr(deployment.objects, "stage", stage_that_cannot_discard)
    wrong = http_digest({"sha256": hashlib.sha256(b"other bytes").hexdigest()})
    failed = client.put(
        session["upload"],
        data=io.BytesIO(b"acquired bytes"),
        headers={**bearer(token), "Repr-Digest": wrong},
    )
    monkeypatch.undo()

    retried = client.put(session["upload"], data=b"acquired bytes", headers=bearer(token))

    assert failed.status_code == 422  # the upload's own error, not the clean-up's
    assert retried.status_code == 201, retried.get_json()


def test_the_request_timeout_comes_from_the_environment(tmp_path: Path) -> None:
    environ = {"CUSTOS_REQUEST_TIMEOUT": "2.5"}

    assert load_config(tmp_path, environ=environ).request_timeout == 2.5
    assert load_config(tmp_path, environ={}).request_timeout == 30.0
    with pytest.raises(ConfigError, match="request_timeout"):
        load_config(tmp_path, environ={"CUSTOS_REQUEST_TIMEOUT": "0"})
