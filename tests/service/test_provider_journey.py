"""A provider's whole journey over HTTP, against the real server.

``custos serve`` runs under gunicorn with two workers, in a subprocess, on a home the CLI
prepared in subprocesses; a local listener stands for the provider's notification endpoint.
Everything between starting and stopping the server goes over HTTP: the order is drafted,
revised, submitted and approved; its notice reaches the listener and verifies against the
log's key; the provider reads, acknowledges, asks a question, is answered (a second notice),
uploads its response and gets a receipt that verifies offline; the order is completed and
closed. Then the timeline, the notices, the response's custody chain and the raw ledger are
checked, and ``custos audit`` passes on the stopped deployment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from custody.note import NoteVerifier, open_note
from custody.note_types import NOTICE_TYPE, ORDER_TYPE
from tests.factories import order_document
from tests.server import CLI_TIMEOUT, CUSTOS, HTTP_TIMEOUT, Reply, Server, clean_env, custos_json

ORIGIN = "journey.custos.invalid/ledger"
# What the order targets: it may appear in the order document the provider fetches, and
# nowhere in the ledger or in a notice.
TARGET = "suspect.7731@mail.example"
QUESTION = "Which mailbox alias does the order mean, the primary or the recovery one?"
ANSWER = "The primary mailbox only; the recovery address is out of scope."
CONTENT = b"account,created,last_login\nsuspect.7731,2024-05-01,2024-06-02\n" * 300
# Bound on each wait for a notice, in seconds.
NOTICE_TIMEOUT = 10.0
# Notices go out at once on an order change; the interval bounds the wait for one that
# a worker other than the one that queued it picks up, and for a retry.
SERVER_SETTINGS = {
    "CUSTOS_NOTIFY_INTERVAL": "0.2",
    "CUSTOS_NOTIFY_BASE_DELAY": "0.2",
    "CUSTOS_NOTIFY_TIMEOUT": "5",
}
JOURNEY = [
    "order.drafted",
    "order.revised",
    "order.submitted",
    "order.served",
    "order.received",
    "order.read",
    "order.acknowledged",
    "order.clarification_requested",
    "order.clarification_answered",
    "order.responded",
    "order.produced",
    "order.closed",
]


# -- the provider's notification endpoint --------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One POST the listener received."""

    path: str
    headers: dict[str, str]
    body: bytes


class NoticeListener:
    """An HTTP server on loopback that answers 204 to every POST and keeps what it got."""

    def __init__(self) -> None:
        self.received: queue.Queue[Delivery] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                received.put(Delivery(self.path, headers, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def next(self, timeout: float = NOTICE_TIMEOUT) -> Delivery:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no notice reached the listener within {timeout:g} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(HTTP_TIMEOUT)


# -- the deployment --------------------------------------------------------------------------------


@dataclass
class Site:
    """The home the CLI prepared, its principals' ids and tokens, and the provider's id."""

    home: Path
    provider: str
    ids: dict[str, str]
    tokens: dict[str, str]


@pytest.fixture
def listener() -> Iterator[NoticeListener]:
    running = NoticeListener()
    yield running
    running.close()


@pytest.fixture
def custos_home(tmp_path: Path) -> Path:
    """A home made by ``custos init``."""
    home = tmp_path / "home"
    custos_json(home, ["init", "--origin", ORIGIN])
    # The listener standing for the provider is on 127.0.0.1: allowed, as a local setup would.
    with (home / "custos.toml").open("a", encoding="utf-8") as config:
        config.write('outbound_allow = "127.0.0.1"\n')
    return home


@pytest.fixture
def server(tmp_path: Path, custos_home: Path) -> Iterator[Server]:
    """The server, starting (``site`` waits until it answers); stopped afterwards."""
    running = Server(custos_home, tmp_path / "server.log", settings=SERVER_SETTINGS)
    yield running
    running.stop()


@pytest.fixture
def site(custos_home: Path, listener: NoticeListener, server: Server) -> Site:
    """The provider and the principals, added with the admin commands while the server starts
    (they act on the local home, which the server reads at each request); then the server
    answers."""
    provider, *staff = custos_json(
        custos_home,
        [
            "provider",
            "add",
            "Example Mail Ltd",
            "--jurisdiction",
            "IE",
            "--legal-representative",
            "Example Mail Legal",
            "--contact",
            "lawful-requests@mail.example",
            "--notification-url",
            listener.url,
        ],
        ["principal", "add", "prosecutor", "--role", "authority"],
        ["principal", "add", "judge", "--role", "approver"],
        ["principal", "add", "alice", "--role", "examiner"],
    )
    assert provider["notification_url"] == listener.url
    (isp,) = custos_json(
        custos_home,
        ["principal", "add", "mail-isp", "--role", "provider", "--provider", provider["id"]],
    )
    assert isp["provider"] == provider["id"]
    # The case the order belongs to, opened by the prosecutor, with the judge and the examiner.
    opened = ["case", "open", "CASE-42", "--title", "Mailbox fraud", "--authority", "DPP"]
    (case,) = custos_json(custos_home, [*opened, "--as", "prosecutor"])
    custos_json(
        custos_home,
        ["case", "add-member", case["id"], "judge", "--as", "prosecutor"],
        ["case", "add-member", case["id"], "alice", "--as", "prosecutor"],
    )
    server.wait_ready()
    added = dict(zip(["authority", "approver", "examiner"], staff, strict=True)) | {"provider": isp}
    return Site(
        custos_home,
        provider["id"],
        ids={who: p["id"] for who, p in added.items()},
        tokens={who: p["token"] for who, p in added.items()},
    )


# -- checks ----------------------------------------------------------------------------------------


def expect(reply: Reply, status: int) -> Any:
    """The reply's JSON, once its status is ``status`` exactly."""
    assert reply.status == status, reply.body.decode("utf-8", "replace")
    return reply.json() if reply.body else None


def open_typed_note(data: bytes, verifiers: Sequence[NoteVerifier], note_type: str) -> Any:
    """The JSON body of a signed note of ``note_type``, once a pinned key's signature
    verifies (open_note raises otherwise)."""
    type_line, body = open_note(data, verifiers).text.split("\n", 1)
    assert type_line == note_type
    return json.loads(body)


def wait_until(check: Callable[[], Any], what: str, timeout: float = NOTICE_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g} s")
        time.sleep(0.1)
    return result


# -- the journey -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_provider_answers_an_order_from_notice_to_receipt_and_the_ledger_audits(
    tmp_path: Path, site: Site, listener: NoticeListener, server: Server
) -> None:
    tokens, ids = site.tokens, site.ids
    authority, approver = tokens["authority"], tokens["approver"]
    provider, examiner = tokens["provider"], tokens["examiner"]
    key_reply = server.call("GET", "/v1/log/key")
    assert key_reply.status == 200
    pinned = key_reply.body.decode().split()
    verifiers = [NoteVerifier.from_key(k) for k in pinned]

    # The authority drafts, revises and submits; an approver who wrote none of it serves it.
    drafted = expect(
        server.call(
            "POST",
            "/v1/orders",
            authority,
            json_body=order_document(
                site.provider, case="CASE-42", targets=[{"type": "email", "value": TARGET}]
            ),
        ),
        201,
    )
    order_id = drafted["id"]
    orders = f"/v1/orders/{order_id}"
    assert drafted["state"] == "draft"
    facts = "On 3 January the victim's files were encrypted and a ransom asked."
    revised = expect(
        server.call(
            "PATCH",
            orders,
            authority,
            json_body={"facts": facts},
            headers={"Content-Type": "application/merge-patch+json"},
        ),
        200,
    )
    assert revised["state"] == "draft" and revised["document"]["facts"] == facts
    assert expect(server.call("POST", f"{orders}/submit", authority), 200)["state"] == (
        "pending_approval"
    )
    served = expect(server.call("POST", f"{orders}/approve", approver), 200)
    # No period runs before the provider receives the order (Regulation (EU) 2023/1543
    # Art 10(2)): the authority sees it not yet received.
    assert served["state"] == "served" and served["due"] is None
    assert served["received"] is False

    # The notice reaches the provider's listener, signed by the log's key.
    delivery = listener.next()
    assert delivery.path == "/hook"
    assert delivery.headers["custos-notice"] == NOTICE_TYPE
    assert TARGET.encode() not in delivery.body
    notice = open_typed_note(delivery.body, verifiers, NOTICE_TYPE)
    assert notice["order"] == order_id and notice["provider"] == site.provider
    assert (notice["event"], notice["state"]) == ("order.served", "served")
    assert notice["due"] is None and notice["ledger_index"] == served["ledger_index"]

    # Its endpoint answered 2xx: that delivery is the provider's receipt, and starts the clock.
    def received() -> Any:
        detail = expect(server.call("GET", orders, authority), 200)
        return detail if detail["received"] else None

    followed = wait_until(received, "the delivered notice was never recorded as receipt")
    assert followed["received_via"] == "notice" and followed["due"] is not None

    # The provider finds the order, reads it (recorded once) and its signed document.
    mine = f"/v1/provider/orders/{order_id}"
    listed = expect(server.call("GET", "/v1/provider/orders", provider), 200)
    assert [o["id"] for o in listed["items"]] == [order_id]
    shown = expect(server.call("GET", notice["href"], provider), 200)
    assert shown["first_read_at"] is not None
    assert [e["type"] for e in shown["timeline"]] == [
        "order.served",
        "order.received",
        "order.read",
    ]
    assert shown["due"] == followed["due"]
    document = server.call("GET", f"{mine}/document", provider)
    assert document.status == 200
    issued = open_typed_note(document.body, verifiers, ORDER_TYPE)
    assert issued["id"] == order_id
    assert issued["drafted_by"] == ids["authority"] and issued["approved_by"] == ids["approver"]
    assert issued["facts"] == facts and [t["value"] for t in issued["targets"]] == [TARGET]
    again = expect(server.call("GET", mine, provider), 200)
    assert again["first_read_at"] == shown["first_read_at"]

    # It acknowledges, then asks a question: the clock stops until the authority answers.
    assert expect(server.call("POST", f"{mine}/acknowledge", provider), 200)["state"] == (
        "acknowledged"
    )
    asked = expect(
        server.call(
            "POST", f"{mine}/request-clarification", provider, json_body={"question": QUESTION}
        ),
        200,
    )
    assert asked["state"] == "clarification_requested"
    assert asked["due"] is None and asked["clock_paused"] is True
    answered = expect(
        server.call(
            "POST", f"{orders}/answer-clarification", authority, json_body={"answer": ANSWER}
        ),
        200,
    )
    assert answered["state"] == "acknowledged" and answered["due"] is not None
    second = open_typed_note(listener.next().body, verifiers, NOTICE_TYPE)
    assert (second["event"], second["state"]) == ("order.clarification_answered", "acknowledged")
    assert second["due"] == answered["due"]

    # It uploads its response, hashed as intake does, and gets a receipt.
    opened = expect(
        server.call(
            "POST", f"{mine}/responses", provider, json_body={"description": "subscriber records"}
        ),
        201,
    )
    evidence_id = opened["id"]
    digest = f"sha-256=:{base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()}:"
    uploaded = server.call(
        "PUT",
        opened["upload"],
        provider,
        content=CONTENT,
        headers={"Content-Type": "application/octet-stream", "Repr-Digest": digest},
    )
    ingested = expect(uploaded, 201)
    assert uploaded.headers["Repr-Digest"] == digest
    assert ingested["id"] == evidence_id and ingested["case"] == "CASE-42"
    assert ingested["order"] == order_id and ingested["size"] == len(CONTENT)

    # The receipt verifies offline, against the pinned key alone.
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(ingested["receipt"]), encoding="utf-8")
    key_args = [arg for k in pinned for arg in ("--key", k)]
    verified = subprocess.run(
        [sys.executable, "-m", "custody.verify", "receipt", str(receipt), *key_args, "--json"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)["report"]
    assert report["evidence_id"] == evidence_id
    assert report["digests"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()

    # The provider completes; the authority closes.
    assert expect(server.call("POST", f"{mine}/complete", provider), 200)["state"] == "produced"
    assert expect(server.call("POST", f"{orders}/close", authority), 200)["state"] == "closed"

    # The authority sees the whole timeline in order, and both notices delivered.
    def delivered() -> Any:
        detail = expect(server.call("GET", orders, authority), 200)
        return detail if all(n["state"] == "delivered" for n in detail["notices"]) else None

    detail = wait_until(delivered, "the notices were not recorded as delivered")
    assert [e["type"] for e in detail["timeline"]] == JOURNEY
    assert [(n["event"], n["url"], n["attempts"]) for n in detail["notices"]] == [
        ("order.served", listener.url, 1),
        ("order.clarification_answered", listener.url, 1),
    ]
    assert listener.received.empty()  # each notice arrived once
    assert detail["responses"] == [evidence_id]
    texts = {e["type"]: e["texts"] for e in detail["timeline"]}
    assert texts["order.clarification_requested"] == {"question": QUESTION}
    assert texts["order.clarification_answered"] == {"answer": ANSWER}

    # The response's custody starts at the provider's upload, with the digests of its bytes.
    chain = expect(server.call("GET", f"/v1/evidence/{evidence_id}/custody", authority), 200)
    first = chain["events"][0]
    assert first["type"] == "evidence.ingested"
    assert first["actor"] == {"id": ids["provider"], "role": "provider"}
    assert first["data"]["size"] == len(CONTENT)
    assert first["data"]["digests"] == {"sha256": hashlib.sha256(CONTENT).hexdigest()}
    assert first["index"] == ingested["ledger_index"]

    # No ledger entry carries the target or the committed texts: only ids and commitments.
    order_events = []
    index = 0
    while (entry := server.call("GET", f"/v1/log/entries/{index}", examiner)).status == 200:
        for secret in (TARGET, QUESTION, ANSWER):
            assert secret.encode() not in entry.body, f"entry {index} holds {secret!r}"
        event = entry.json()
        if event["subject"] == {"kind": "order", "id": order_id}:
            order_events.append(event)
            assert event["data"]["order"] == order_id
            assert len(event["data"]["document_commitment"]) == 64
        index += 1
    assert entry.status == 404
    assert [e["type"] for e in order_events] == JOURNEY

    # The stopped deployment audits clean.
    assert server.stop() == 0, server.tail()
    audit = subprocess.run(
        [str(CUSTOS), "--home", str(site.home), "audit", "--json"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=clean_env(),
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    summary = json.loads(audit.stdout)
    assert summary["ok"] is True and summary["size"] == index
