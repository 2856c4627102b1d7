"""Many processes: four gunicorn workers on one PostgreSQL database and one S3 bucket (moto's
server, over real HTTP) take concurrent ingests, custody events and order transitions, and
the ledger comes out as one history that accounts for every acknowledged request.

Client threads drive the server at once: uploads and physical registrations; custody acts on
a few shared items, so that each item's chain interleaves across workers; and orders through
their lifecycles, where two clients race to approve, to read first and to acknowledge (one
wins, the other is refused). Every 2xx is counted by the event it records. Each client
fetches the checkpoint as it goes. Afterwards:

- the ledger's entries (read as entry tiles) hash to the root the final checkpoint signs,
  each acknowledged ledger index names its own entry of the expected type, and the events by
  type equal what was acknowledged; the evidence records and the orders by state too;
- the checkpoints each client saw grow monotonically, one size always has one root, and each
  is proven consistent with the final one (RFC 9162 proofs, checked with ``custody.merkle``);
- the stopped deployment passes ``custos audit --objects``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from cli import main
from custody import merkle
from custody.checkpoint import Checkpoint, open_checkpoint
from custody.note import NoteVerifier
from tests.factories import SEIZURE, order_document
from tests.server import Reply, Server

ORIGIN = "many.custos.invalid/ledger"
STORE = "s3://custos-many/evidence"
WORKERS = 4
INGESTERS, ACTORS, ORDER_CLERKS = 3, 3, 3
INGESTS_EACH, ACTS_EACH = 5, 12
SHARED_ITEMS = 4
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Each lifecycle an order clerk drives, and the state it ends in. Steps marked ``race`` are
# sent by two clients at once.
LIFECYCLES: dict[str, tuple[list[str], str]] = {
    "full": (
        [
            "revise",
            "submit",
            "approve race",
            "read race",
            "acknowledge race",
            "request-clarification",
            "answer-clarification",
            "respond",
            "complete",
            "close",
        ],
        "closed",
    ),
    "objected": (
        ["submit", "approve", "read", "object", "answer-objection", "no-data"],
        "no_data",
    ),
    "withdrawn": (["submit", "withdraw"], "withdrawn"),
    "draft": ([], "draft"),
    "acknowledged": (["submit", "approve race", "read race", "acknowledge race"], "acknowledged"),
}
# Each step: who takes it, where (under the authority's or the provider's path), its body and
# the event a 2xx records.
STEPS: dict[str, tuple[str, str, dict[str, Any] | None, str]] = {
    "submit": ("authority", "/submit", None, "order.submitted"),
    "approve": ("approver", "/approve", None, "order.served"),
    "withdraw": ("authority", "/withdraw", {"reason": "no longer needed"}, "order.withdrawn"),
    "answer-clarification": (
        "authority",
        "/answer-clarification",
        {"answer": "The primary mailbox."},
        "order.clarification_answered",
    ),
    "answer-objection": (
        "authority",
        "/answer-objection",
        {"answer": "The order stands."},
        "order.objection_answered",
    ),
    "close": ("authority", "/close", None, "order.closed"),
    "acknowledge": ("provider", "/acknowledge", None, "order.acknowledged"),
    "request-clarification": (
        "provider",
        "/request-clarification",
        {"question": "Which mailbox?"},
        "order.clarification_requested",
    ),
    "object": (
        "provider",
        "/object",
        {"ground": "other", "details": "The account was closed."},
        "order.objected",
    ),
    "no-data": ("provider", "/no-data", None, "order.no_data"),
    "complete": ("provider", "/complete", None, "order.produced"),
}


@dataclass
class Home:
    path: Path
    settings: dict[str, str]  # the environment of the server and of the CLI

    def custos(self, *command: str) -> dict[str, Any]:
        """``custos --home H <command> --json``, in this process; its last JSON line."""
        result = CliRunner().invoke(main, ["--home", str(self.path), *command, "--json"])
        assert result.exit_code == 0, result.output
        reply: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
        return reply


@dataclass
class Site:
    home: Path
    tokens: dict[str, str]
    provider: str


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    yield f"http://{host}:{port}"
    moto.stop()


@pytest.fixture
def home(
    tmp_path: Path, postgres_url: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Home:
    """``custos init`` on PostgreSQL and S3; fake AWS credentials for everything that follows."""
    nowhere = tmp_path / "aws"
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        **AWS,
        "AWS_CONFIG_FILE": str(nowhere / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere / "credentials"),
        "CUSTOS_DATABASE_URL": postgres_url,
        "CUSTOS_S3_ENDPOINT_URL": s3_endpoint,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    made = Home(tmp_path / "home", settings)
    made.custos("init", "--origin", ORIGIN, "--store", STORE)
    return made


@pytest.fixture
def server(tmp_path: Path, home: Home) -> Iterator[Server]:
    """The server, starting (``site`` waits until every worker most likely answers)."""
    running = Server(home.path, tmp_path / "server.log", workers=WORKERS, settings=home.settings)
    yield running
    running.stop()


@pytest.fixture
def site(home: Home, server: Server) -> Site:
    """A provider and a principal for each role, added with the CLI while the server starts
    (they act on the database, which the server reads at each request); then it answers."""
    provider = home.custos(
        "provider",
        "add",
        "Example Mail Ltd",
        "--jurisdiction",
        "IE",
        "--legal-representative",
        "Example Mail Legal",
        "--contact",
        "lawful-requests@mail.example",
    )["id"]
    tokens = {
        role: home.custos("principal", "add", f"the-{role}", "--role", role, *extra)["token"]
        for role, extra in [
            ("authority", []),
            ("approver", []),
            ("examiner", []),
            ("provider", ["--provider", provider]),
        ]
    }
    # The items' case and the orders', with the examiner, the authority and the approver.
    for case in ("MANY", "CASE-1"):
        opening = ("case", "open", case, "--title", "t", "--authority", "a")
        home.custos(*opening, "--as", "the-authority")
        for member in ("the-examiner", "the-approver"):
            home.custos("case", "add-member", case, member, "--as", "the-authority")
    server.wait_ready(answers=WORKERS)
    return Site(home.path, tokens, provider)


# -- the clients -----------------------------------------------------------------------------------


@dataclass
class Load:
    """The clients' shared record: 2xx answers by the event they record, the ledger index
    each acknowledged, what each order became, the checkpoints each client saw, and any
    answer that no request should get."""

    server: Server
    tokens: dict[str, str]
    acknowledged: Counter[str] = field(default_factory=Counter)
    indexes: dict[int, tuple[str, str]] = field(default_factory=dict)  # -> (type, subject id)
    duplicates: list[int] = field(default_factory=list)
    items: set[str] = field(default_factory=set)
    orders: dict[str, str] = field(default_factory=dict)  # order id -> state
    checkpoints: dict[str, list[bytes]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> Reply:
        return self.server.call(method, path, self.tokens[who], **kwargs)

    def acknowledge(self, event: str, subject: str, index: int | None) -> None:
        with self.lock:
            self.acknowledged[event] += 1
            if index is not None:
                if index in self.indexes:
                    self.duplicates.append(index)
                self.indexes[index] = (event, subject)

    def expect(self, reply: Reply, status: int, what: str) -> Any:
        if reply.status != status:
            with self.lock:
                self.unexpected.append(f"{what}: {reply.status} {reply.body[:300]!r}")
            return None
        return reply.json()

    def watch(self, client: str) -> None:
        """Fetch the checkpoint as ``client`` and keep it."""
        note = self.server.call("GET", "/v1/log/checkpoint").body
        with self.lock:
            self.checkpoints.setdefault(client, []).append(note)


def ingester(load: Load, number: int) -> None:
    """Register a physical item, then upload items one after another."""
    name = f"ingester-{number}"
    physical = {
        "kind": "physical",
        "case": "MANY",
        "exhibit": f"{name}-P",
        "description": "x",
        "seizure": SEIZURE,
    }
    item = load.expect(
        load.call("examiner", "POST", "/v1/evidence", json_body=physical), 201, "register"
    )
    if item is not None:
        load.acknowledge("evidence.registered", item["id"], item["ledger_index"])
        with load.lock:
            load.items.add(item["id"])
    for k in range(INGESTS_EACH):
        announced = {
            "kind": "digital",
            "case": "MANY",
            "exhibit": f"{name}-{k}",
            "description": "x",
        }
        session = load.expect(
            load.call("examiner", "POST", "/v1/evidence", json_body=announced), 201, "announce"
        )
        if session is None:
            continue
        content = hashlib.sha256(f"{name}-{k}".encode()).digest() * (512 * (k + 1))
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        headers = {"Content-Type": "application/octet-stream", "Repr-Digest": f"sha-256=:{digest}:"}
        reply = load.call("examiner", "PUT", session["upload"], content=content, headers=headers)
        ingested = load.expect(reply, 201, "upload")
        if ingested is not None:
            load.acknowledge("evidence.ingested", ingested["id"], ingested["ledger_index"])
            with load.lock:
                load.items.add(ingested["id"])
        load.watch(name)


def actor(load: Load, number: int, shared: list[str]) -> None:
    """Record custody acts on the shared items, in turn."""
    name = f"actor-{number}"
    for k in range(ACTS_EACH):
        item = shared[(number + k) % len(shared)]
        if k % 2:
            act = {"type": "evidence.noted", "text": f"{name} note {k}"}
        else:
            # An examination changes no state, so that concurrent actors never refuse each
            # other (a transfer waits for its custodian's receipt).
            act = {
                "type": "evidence.examined",
                "tool": "X-Ways",
                "version": "21.0",
                "purpose": f"review {k}",
                "location": "evidence room",
                "findings": f"{name} finding {k}",
            }
        reply = load.call("examiner", "POST", f"/v1/evidence/{item}/events", json_body=act)
        recorded = load.expect(reply, 201, act["type"])
        if recorded is not None:
            load.acknowledge(act["type"], item, recorded["event"]["index"])
        if k % 3 == 0:
            load.watch(name)


def race(load: Load, who: str, method: str, path: str, **kwargs: Any) -> list[Reply]:
    """Two clients send the same request at the same moment."""
    barrier = threading.Barrier(2)
    replies: list[Reply] = []

    def send() -> None:
        barrier.wait()
        reply = load.call(who, method, path, **kwargs)
        with load.lock:
            replies.append(reply)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def take_step(load: Load, order_id: str, step: str, client: str) -> bool:
    """One step of an order's lifecycle; False when it was not taken as expected."""
    name, raced = step.removesuffix(" race"), step.endswith(" race")
    if name == "revise":
        reply = load.call(
            "authority",
            "PATCH",
            f"/v1/orders/{order_id}",
            json_body={"facts": f"Revised by {client}."},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        acted = load.expect(reply, 200, "revise")
        if acted is None:
            return False
        load.acknowledge("order.revised", order_id, acted["ledger_index"])
        load.orders[order_id] = acted["state"]
        return True
    if name == "read":
        path = f"/v1/provider/orders/{order_id}"
        replies = (
            race(load, "provider", "GET", path) if raced else [load.call("provider", "GET", path)]
        )
        if [r.status for r in replies] != [200] * len(replies):
            load.expect(replies[0], 200, "read")
            return False
        load.acknowledge("order.read", order_id, None)  # the first read is recorded, once
        return True
    if name == "respond":
        return respond(load, order_id)
    who, suffix, body, event = STEPS[name]
    base = "/v1/provider/orders" if who == "provider" else "/v1/orders"
    path = f"{base}/{order_id}{suffix}"
    kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
    if raced:
        replies = sorted(race(load, who, "POST", path, **kwargs), key=lambda r: r.status)
        if [r.status for r in replies] != [200, 409]:
            load.unexpected.append(f"{step}: {[r.status for r in replies]} (one 200, one 409)")
            return False
        reply = replies[0]
    else:
        reply = load.call(who, "POST", path, **kwargs)
    acted = load.expect(reply, 200, step)
    if acted is None:
        return False
    load.acknowledge(event, order_id, acted["ledger_index"])
    load.orders[order_id] = acted["state"]
    return True


def respond(load: Load, order_id: str) -> bool:
    """The provider uploads a response: an ingested item and ``order.responded``."""
    opened = load.expect(
        load.call(
            "provider",
            "POST",
            f"/v1/provider/orders/{order_id}/responses",
            json_body={"description": "subscriber records"},
        ),
        201,
        "announce a response",
    )
    if opened is None:
        return False
    content = f"subscriber records for {order_id}\n".encode() * 200
    reply = load.call(
        "provider",
        "PUT",
        opened["upload"],
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    ingested = load.expect(reply, 201, "upload a response")
    if ingested is None:
        return False
    load.acknowledge("evidence.ingested", ingested["id"], ingested["ledger_index"])
    load.acknowledge("order.responded", order_id, None)
    with load.lock:
        load.items.add(ingested["id"])
    return True


def order_clerk(load: Load, number: int, provider: str) -> None:
    """Draft orders and take each through a lifecycle."""
    name = f"clerk-{number}"
    lifecycles = list(LIFECYCLES)
    for k in range(len(lifecycles)):
        steps, _ = LIFECYCLES[lifecycles[(number + k) % len(lifecycles)]]
        document = order_document(provider)
        document["reference"] = f"PO-{number}-{k}"
        drafted = load.expect(
            load.call("authority", "POST", "/v1/orders", json_body=document), 201, "draft"
        )
        if drafted is None:
            continue
        order_id = drafted["id"]
        load.acknowledge("order.drafted", order_id, drafted["ledger_index"])
        load.orders[order_id] = drafted["state"]
        for step in steps:
            if not take_step(load, order_id, step, name):
                break
        load.watch(name)


def run_all(work: list[Callable[[], None]]) -> None:
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported on the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


# -- reading the results ---------------------------------------------------------------------------


def entry_tiles(server: Server, token: str, size: int) -> list[bytes]:
    """The first ``size`` leaves, read as C2SP entry bundles."""
    leaves: list[bytes] = []
    while len(leaves) < size:
        number, width = len(leaves) // 256, min(256, size - len(leaves))
        assert number < 1000  # one path segment
        path = f"/v1/log/tile/entries/{number:03d}" + (f".p/{width}" if width < 256 else "")
        reply = server.call("GET", path, token)
        assert reply.status == 200, reply.body
        data = reply.body
        while data:
            length = int.from_bytes(data[:2], "big")
            leaves.append(data[2 : 2 + length])
            data = data[2 + length :]
    assert len(leaves) == size
    return leaves


def pages(server: Server, token: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        reply = server.call("GET", f"{path}?limit=500{cursor}", token)
        assert reply.status == 200, reply.body
        page = reply.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def proven_consistent(server: Server, old: Checkpoint, new: Checkpoint) -> None:
    reply = server.call("GET", f"/v1/log/proofs/consistency?from={old.size}&to={new.size}")
    assert reply.status == 200, reply.body
    hashes = [base64.b64decode(h) for h in reply.json()["hashes"]]
    merkle.verify_consistency(old.size, new.size, hashes, old.root, new.root)


# -- the test --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_four_workers_on_postgresql_and_s3_keep_one_history_of_every_acknowledged_request(
    site: Site, server: Server
) -> None:
    examiner = site.tokens["examiner"]
    keys = server.call("GET", "/v1/log/key").body.decode().split()
    verifiers = [NoteVerifier.from_key(k) for k in keys]
    before = Counter(e["type"] for e in ledger_walk(server, examiner))
    load = Load(server, site.tokens)
    shared = []
    for k in range(SHARED_ITEMS):
        physical = {
            "kind": "physical",
            "case": "MANY",
            "exhibit": f"S-{k}",
            "description": "x",
            "seizure": SEIZURE,
        }
        item = load.expect(
            load.call("examiner", "POST", "/v1/evidence", json_body=physical), 201, "register"
        )
        load.acknowledge("evidence.registered", item["id"], item["ledger_index"])
        load.items.add(item["id"])
        shared.append(item["id"])

    run_all(
        [lambda n=n: ingester(load, n) for n in range(INGESTERS)]
        + [lambda n=n: actor(load, n, shared) for n in range(ACTORS)]
        + [lambda n=n: order_clerk(load, n, site.provider) for n in range(ORDER_CLERKS)]
    )
    assert not load.unexpected, load.unexpected
    assert not load.duplicates, f"two acknowledgements name one ledger index: {load.duplicates}"

    # The ledger: every entry under the final checkpoint's root, nothing beyond it, and one
    # entry per acknowledged event.
    expected_size = sum(before.values()) + sum(load.acknowledged.values())
    final_note = wait_for_checkpoint(server, verifiers, expected_size)
    final, _ = open_checkpoint(final_note, verifiers, ORIGIN)
    leaves = entry_tiles(server, examiner, final.size)
    assert server.call("GET", f"/v1/log/entries/{final.size}", examiner).status == 404
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for leaf in leaves]) == final.root
    events = [json.loads(leaf) for leaf in leaves]
    for index, (event_type, subject) in load.indexes.items():
        assert (events[index]["type"], events[index]["subject"]["id"]) == (event_type, subject)
    assert Counter(e["type"] for e in events) - before == load.acknowledged
    assert final.size == expected_size

    # The evidence records and the orders, by state.
    records = pages(server, examiner, "/v1/evidence")
    assert sorted(r["id"] for r in records) == sorted(load.items)
    orders = pages(server, site.tokens["authority"], "/v1/orders")
    assert {o["id"]: o["state"] for o in orders} == load.orders
    each_lifecycle_once_per_clerk = Counter(
        {state: ORDER_CLERKS for _, state in LIFECYCLES.values()}
    )
    assert Counter(o["state"] for o in orders) == each_lifecycle_once_per_clerk

    # What each client saw of the log only grew, one size had one root, and every checkpoint
    # is consistent with the final one.
    seen: dict[int, Checkpoint] = {}
    for client, notes in load.checkpoints.items():
        sizes = []
        for note in notes:
            checkpoint, _ = open_checkpoint(note, verifiers, ORIGIN)
            sizes.append(checkpoint.size)
            assert seen.setdefault(checkpoint.size, checkpoint).root == checkpoint.root
        assert sizes == sorted(sizes), f"{client} saw the log shrink: {sizes}"
    for checkpoint in seen.values():
        if 0 < checkpoint.size < final.size:
            proven_consistent(server, checkpoint, final)
    assert len(seen) > 1
    print(f"acknowledged: {dict(load.acknowledged)}; {len(seen)} checkpoint sizes seen")

    # The stopped deployment audits clean, its ledger and the blobs in the bucket.
    assert server.stop() == 0, server.tail()
    result = CliRunner().invoke(main, ["--home", str(site.home), "audit", "--objects", "--json"])
    summary = json.loads(result.stdout.splitlines()[-1])
    assert result.exit_code == 0 and summary["ok"], result.output
    assert summary["size"] == final.size
    assert summary["objects"]["records"] == len(records)


def ledger_walk(server: Server, token: str) -> list[dict[str, Any]]:
    """Every entry, one by one, until the first index with none."""
    events = []
    while (reply := server.call("GET", f"/v1/log/entries/{len(events)}", token)).status == 200:
        events.append(reply.json())
    assert reply.status == 404, reply.body
    return events


def wait_for_checkpoint(server: Server, verifiers: list[NoteVerifier], size_at_least: int) -> bytes:
    """A checkpoint of at least that size (one is signed at most once per interval, 1 s)."""
    for _ in range(50):
        note = server.call("GET", "/v1/log/checkpoint").body
        if open_checkpoint(note, verifiers, ORIGIN)[0].size >= size_at_least:
            return note
        threading.Event().wait(0.1)
    pytest.fail(f"no checkpoint covered {size_at_least} entries within 5 s")
