"""Tests of storage.notices: the notice sender against a real HTTP listener on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest

from custody.note import open_note
from custody.note_types import NOTICE_TYPE
from custody.notices import DeliveryReport, NoticeDeliveryError
from custody.outbound import OutboundPolicy
from storage.notices import HttpNoticeSender, notice_delivery
from tests.conftest import Home, add_provider
from tests.custody.test_notices import parties_of

# The listeners below run on 127.0.0.1, which only an allowance lets a notice reach.
LOCAL = OutboundPolicy.from_allowance(["127.0.0.1"])


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        listener = self.server.listener
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        listener.received.append(Received("POST", self.path, dict(self.headers.items()), body))
        listener.arrived.set()
        if listener.hang:
            listener.released.wait(10)
        self.send_response(listener.status)
        if listener.location:
            self.send_header("Location", listener.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what arrived from ``Listener.received``."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    listener: Listener


class Listener:
    """A provider's notification endpoint on 127.0.0.1, answering each POST with ``status``
    (after ``released`` is set, if it ``hang``s)."""

    def __init__(self, status: int = 204, location: str | None = None, hang: bool = False):
        self.status = status
        self.location = location
        self.hang = hang
        self.received: list[Received] = []
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.listener = self
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/custos?from=custos"

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/custos"


@pytest.fixture
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


def test_a_served_order_notice_arrives_as_the_exact_signed_note(
    home: Home, listener: Listener
) -> None:
    deployment = home.deployment
    parties = parties_of(deployment)
    isp = add_provider(deployment, notification_url=listener.url)
    order_id = parties.serve_order(isp.id)

    assert notice_delivery(deployment).deliver_due() == DeliveryReport(delivered=1)

    (notice,) = parties.notices(order_id)
    (received,) = listener.received
    assert (received.method, received.path) == ("POST", "/hooks/custos?from=custos")
    assert received.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert received.headers["Custos-Notice"] == "custos/notice/v1"
    assert received.body == notice.note
    note = open_note(received.body, deployment.keys.verifiers)
    type_line, body, _ = note.text.split("\n")
    assert type_line == NOTICE_TYPE
    assert json.loads(body) | {"time": None, "due": None} == {
        "order": order_id,
        "provider": isp.id,
        "event": "order.served",
        "state": "served",
        "ledger_index": notice.ledger_index,
        "href": f"/v1/provider/orders/{order_id}",
        "time": None,
        "due": None,
    }


def test_a_server_error_is_a_failed_attempt() -> None:
    with Listener(status=500) as failing:
        with pytest.raises(NoticeDeliveryError, match=r"^HTTP 500$"):
            HttpNoticeSender(timeout=5, outbound=LOCAL)(failing.url, b"note")
        assert len(failing.received) == 1


def test_a_redirect_to_another_host_is_not_followed(listener: Listener) -> None:
    with Listener(status=307, location=listener.url) as redirecting:
        with pytest.raises(NoticeDeliveryError, match="HTTP 307: redirects are not followed"):
            HttpNoticeSender(timeout=5, outbound=LOCAL)(redirecting.url, b"note")
        assert len(redirecting.received) == 1
    assert listener.received == []


def test_a_listener_that_does_not_answer_in_time_is_a_failed_attempt() -> None:
    with (
        Listener(hang=True) as silent,
        pytest.raises(NoticeDeliveryError, match=r"^no answer within 0.2 s$"),
    ):
        HttpNoticeSender(timeout=0.2, outbound=LOCAL)(silent.url, b"note")


def test_a_refused_connection_is_a_failed_attempt() -> None:
    with pytest.raises(NoticeDeliveryError, match=r"^connection refused$"):
        HttpNoticeSender(timeout=5, outbound=LOCAL)(closed_port_url(), b"note")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hooks",
        "http://127.0.0.1:99999/hooks",
        "http:///hooks",
        "http://127.0.0.1:1/hooks/caf\u00e9",
        "http://127.0.0.1:1/hooks /x",
    ],
)
def test_a_url_nothing_can_be_posted_to_is_a_failed_attempt(url: str) -> None:
    with pytest.raises(NoticeDeliveryError, match="notification URL"):
        HttpNoticeSender(timeout=5, outbound=LOCAL)(url, b"note")
