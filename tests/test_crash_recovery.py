"""Crashes: the whole server is killed with SIGKILL again and again and loses nothing it
acknowledged.

The embedded deployment (SQLite and the filesystem store) is served by gunicorn with two
workers. Each cycle starts the server, drives concurrent uploads of a few hundred KB, custody
events and (every other cycle, and the last) an upload that stalls halfway through its body,
and then kills the server's whole process group at a random moment 50-400 ms after its first
acknowledged answer of the cycle. Every 2xx
answer is kept with what it returned. After the last kill the staged leftovers are left to
age past ``CUSTOS_STAGING_MAX_AGE`` and the server is started once more. Then:

- the staging folder holds nothing older than that age (the restart swept it);
- each interrupted upload, sent again, is taken (201) or clearly refused (404 or 409) at once;
- every acknowledged item is there with the digests it was acknowledged with, its content
  re-hashes to them, and its custody chain starts at the acknowledged ledger index;
- every acknowledged custody event is the ledger entry at its acknowledged index;
- every acknowledged receipt verifies offline against the checkpoint it names, and that
  checkpoint (group-committed: concurrent uploads share one) is kept, byte for byte;
- nothing half-written is visible: every record has its first event, a signed manifest
  stating it, content that matches it and a state that its events explain, and every intake
  event in the ledger has its record;
- ``custos audit`` and ``custos audit --objects`` are clean on the stopped deployment.

The random seed (sizes, contents, acts, kill moments) is printed; ``CUSTOS_CRASH_SEED``
replays a run with another, and ``CUSTOS_CRASH_CYCLES`` sets the number of kills (20).
Where the kills land in the server's work still depends on timing.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from custody.note import NoteVerifier, open_note
from custody.note_types import MANIFEST_TYPE
from custody.verify.errors import VerificationError
from custody.verify.receipt import verify_receipt
from tests.factories import SEIZURE
from tests.server import HTTP_TIMEOUT, ForkedServer, RunningServer, WarmServers

SEED = int(os.environ.get("CUSTOS_CRASH_SEED") or 20261128)
CYCLES = int(os.environ.get("CUSTOS_CRASH_CYCLES") or 20)  # `make soak` runs 100
KILL_AFTER = (0.05, 0.4)  # seconds of traffic, from the cycle's first answer, before each kill
UPLOADERS, ACTORS = 3, 2
UPLOAD_SIZE = (100_000, 500_000)
STAGING_MAX_AGE = 1.0
WORKERS = 2
ORIGIN = "crash.custos.invalid/ledger"
CASE = "CRASH-1"
# A custody act and its fields; those that change the item's state may be refused (409).
ACTS: dict[str, dict[str, str]] = {
    "evidence.noted": {"text": "observed during the crash test"},
    "evidence.sealed": {"seal": "S-1"},
    "evidence.unsealed": {"reason": "examination", "seal": "S-1"},
}
STATE_ACTS = {"evidence.sealed", "evidence.unsealed"}
# Errors that mean the server went away mid-request.
GONE = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Ingest:
    """An acknowledged upload: what the 201 said."""

    sha256: str
    size: int
    ledger_index: int
    receipt: dict[str, Any] | None = None  # the receipt bundle, None for a re-sent upload


@dataclass
class Acknowledged:
    """Every 2xx answer and what it returned, and what got no answer."""

    ingests: dict[str, Ingest] = field(default_factory=dict)
    registered: dict[str, int] = field(default_factory=dict)  # physical item -> ledger index
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> event
    interrupted: list[str] = field(default_factory=list)  # sessions whose PUT got no answer
    unexpected: list[str] = field(default_factory=list)  # answers no request should get
    refused_acts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: threading.Event = field(default_factory=threading.Event)  # this cycle's first

    def items(self) -> list[str]:
        with self.lock:
            return [*self.registered, *self.ingests]


@dataclass
class Site:
    home: Path
    token: str
    acknowledged: Acknowledged


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[WarmServers]:
    """What starts the servers: its imports run while ``site`` prepares the home."""
    warm = WarmServers(
        tmp_path / "home",
        workers=WORKERS,
        settings={"CUSTOS_STAGING_MAX_AGE": str(STAGING_MAX_AGE)},
    )
    yield warm
    warm.close()


@pytest.fixture
def site(tmp_path: Path, servers: WarmServers) -> Site:
    """A home made by ``custos init`` and an examiner added by ``custos principal add``."""
    home = tmp_path / "home"
    runner = CliRunner()
    for command in (
        ["init", "--origin", ORIGIN],
        ["principal", "add", "alice", "--role", "examiner"],
        ["case", "open", CASE, "--title", "Crash", "--authority", "DPP", "--as", "alice"],
    ):
        result = runner.invoke(main, ["--home", str(home), *command, "--json"], env=_no_settings())
        assert result.exit_code == 0, result.output
        if command[0] == "principal":
            token = json.loads(result.stdout.splitlines()[-1])["token"]
    servers.wait_ready()
    return Site(home, token, Acknowledged())


def _no_settings() -> dict[str, str | None]:
    """CliRunner's environment: no CUSTOS_* setting of the caller's applies."""
    return {name: None for name in os.environ if name.startswith("CUSTOS_")}


# -- the clients -----------------------------------------------------------------------------------


def _sha256_header(content: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(content).digest()).decode()}:"


def _open_session(server: RunningServer, token: str, exhibit: str) -> str:
    reply = server.call(
        "POST",
        "/v1/evidence",
        token,
        json_body={"kind": "digital", "case": CASE, "exhibit": exhibit, "description": "crash"},
    )
    if reply.status != 201:
        raise AssertionError(f"opening a session: {reply.status} {reply.body!r}")
    upload: str = reply.json()["upload"]
    return upload


def uploader(server: RunningServer, site: Site, rng: random.Random, name: str) -> None:
    """Upload items until the server goes away; sometimes bytes an earlier upload sent."""
    ack, recent = site.acknowledged, []
    for number in range(1_000):
        upload = _open_session(server, site.token, f"{name}-{number}")
        if recent and rng.random() < 0.2:
            content = rng.choice(recent)
        else:
            content = rng.randbytes(rng.randint(*UPLOAD_SIZE))
        evidence_id = upload.split("/")[-2]
        try:
            reply = server.call(
                "PUT",
                upload,
                site.token,
                content=content,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Repr-Digest": _sha256_header(content),
                },
            )
        except GONE:
            with ack.lock:
                ack.interrupted.append(evidence_id)
            raise
        if reply.status != 201:
            with ack.lock:
                ack.unexpected.append(f"PUT {upload}: {reply.status} {reply.body!r}")
            continue
        body = reply.json()
        sha256 = hashlib.sha256(content).hexdigest()
        assert body["digests"]["sha256"] == sha256 and body["size"] == len(content)
        with ack.lock:
            ack.ingests[evidence_id] = Ingest(
                sha256, len(content), body["ledger_index"], body["receipt"]
            )
        ack.answered.set()
        recent = [*recent[-3:], content]


def actor(server: RunningServer, site: Site, rng: random.Random, name: str) -> None:
    """Record custody acts on random items until the server goes away."""
    ack = site.acknowledged
    for _ in range(10_000):
        item = rng.choice(ack.items())
        act = rng.choice(list(ACTS))
        body = {"type": act, **ACTS[act]}
        if act == "evidence.noted":
            body["text"] = f"{name}: {rng.getrandbits(64):016x}"
        reply = server.call("POST", f"/v1/evidence/{item}/events", site.token, json_body=body)
        with ack.lock:
            if reply.status == 201:
                event = reply.json()["event"]
                ack.events[event.pop("index")] = event
                ack.answered.set()
            elif reply.status == 409 and act in STATE_ACTS:
                ack.refused_acts += 1
            else:
                ack.unexpected.append(f"{act} on {item}: {reply.status} {reply.body!r}")


def staller(server: RunningServer, site: Site, stop: threading.Event) -> None:
    """Start an upload, send half its body, and wait for the kill."""
    upload = _open_session(server, site.token, f"stalled-{time.monotonic_ns()}")
    with site.acknowledged.lock:
        site.acknowledged.interrupted.append(upload.split("/")[-2])
    size = 300_000
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT)
    try:
        connection.putrequest("PUT", upload)
        connection.putheader("Authorization", f"Bearer {site.token}")
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        connection.send(b"\0" * (size // 2))
        stop.wait(HTTP_TIMEOUT)
        reply = connection.getresponse()
        raise AssertionError(f"a half-sent upload was answered: {reply.status}")
    finally:
        connection.close()


def until_gone(work: Callable[[], None], failures: list[BaseException]) -> threading.Thread:
    """Run ``work`` on a thread; the server going away ends it quietly."""

    def run() -> None:
        try:
            work()
        except GONE:
            pass
        except BaseException as exc:  # reported after the cycle, on the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def crash_cycle(
    server: ForkedServer, site: Site, rng: random.Random, cycle: int, stall: bool
) -> None:
    """Drive traffic at ``server`` and kill it mid-way."""
    stop = threading.Event()
    site.acknowledged.answered.clear()
    failures: list[BaseException] = []
    threads = []
    if stall:
        threads.append(until_gone(lambda: staller(server, site, stop), failures))
    for number in range(UPLOADERS):
        name, seeded = f"c{cycle}u{number}", random.Random(rng.getrandbits(64))
        threads.append(until_gone(lambda n=name, r=seeded: uploader(server, site, r, n), failures))
    for number in range(ACTORS):
        name, seeded = f"c{cycle}a{number}", random.Random(rng.getrandbits(64))
        threads.append(until_gone(lambda n=name, r=seeded: actor(server, site, r, n), failures))
    # On a busy machine a first upload can take longer than the whole window: the window
    # opens at the cycle's first acknowledged answer, so that every kill lands in traffic
    # that is being acknowledged.
    site.acknowledged.answered.wait(HTTP_TIMEOUT)
    time.sleep(rng.uniform(*KILL_AFTER))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(2 * HTTP_TIMEOUT)
        assert not thread.is_alive(), "a client still waits on a killed server"
    if failures:
        raise failures[0]


# -- the checks ------------------------------------------------------------------------------------


def expect(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply.body.decode("utf-8", "replace")
    return reply.json() if reply.headers.get("Content-Type", "").endswith("json") else reply.body


def stale_staging(home: Path, now: float) -> list[str]:
    staging = home / "objects" / "staging"
    return sorted(p.name for p in staging.iterdir() if now - p.stat().st_mtime > STAGING_MAX_AGE)


def ledger_events(server: RunningServer, token: str) -> list[dict[str, Any]]:
    """Every entry of the ledger, in order (the first index with no entry ends it)."""
    events = []
    while (reply := server.call("GET", f"/v1/log/entries/{len(events)}", token)).status == 200:
        events.append(reply.json())
    assert reply.status == 404, reply.body
    return events


def all_records(server: RunningServer, token: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = expect(server.call("GET", f"/v1/evidence?limit=500{cursor}", token))
        records.extend(page["items"])
        if page["next_cursor"] is None:
            return records
        cursor = f"&cursor={page['next_cursor']}"


def record_problems(
    server: RunningServer, token: str, record: dict[str, Any], verifiers: list[NoteVerifier]
) -> tuple[list[dict[str, Any]], list[str]]:
    """A record's custody chain, and what keeps the record from being whole: its content must
    match its digests (read first, so that the chain holds the access), its chain must start
    with its intake event at its ledger index, its manifest must be signed and name it, and its
    state must be what its events make it."""
    evidence_id, problems = record["id"], []
    if record["kind"] == "digital":
        content = server.call(
            "GET", f"/v1/evidence/{evidence_id}/content?purpose=crash+check", token
        )
        if content.status != 200:
            problems.append(f"{evidence_id}: content answers {content.status} {content.body!r}")
        elif hashlib.sha256(content.body).hexdigest() != record["digests"]["sha256"]:
            problems.append(f"{evidence_id}: content does not match its digest")
    chain = expect(server.call("GET", f"/v1/evidence/{evidence_id}/custody", token))["events"]
    first = chain[0]
    intake = "evidence.ingested" if record["kind"] == "digital" else "evidence.registered"
    if (first["type"], first["index"]) != (intake, record["ledger_index"]):
        problems.append(f"{evidence_id}: its chain starts with {first['type']} {first['index']}")
    elif record["kind"] == "digital" and first["data"]["digests"] != record["digests"]:
        problems.append(f"{evidence_id}: its intake event states other digests")
    manifest = server.call("GET", f"/v1/evidence/{evidence_id}/manifest", token)
    if manifest.status != 200:
        problems.append(f"{evidence_id}: manifest answers {manifest.status} {manifest.body!r}")
    else:
        type_line, text = open_note(manifest.body, verifiers).text.split("\n", 1)
        if type_line != MANIFEST_TYPE or evidence_id not in text:
            problems.append(f"{evidence_id}: the manifest is not this record's")
    sealed = False
    for event in chain:
        if event["type"] in STATE_ACTS:
            sealed = event["type"] == "evidence.sealed"
    if record["state"]["sealed"] is not sealed:
        problems.append(f"{evidence_id}: its state says sealed={record['state']['sealed']}")
    return chain, problems


# -- the test --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_killed_mid_work_keeps_everything_it_acknowledged(
    tmp_path: Path, site: Site, servers: WarmServers
) -> None:
    print(f"crash test seed: {SEED} (replay with CUSTOS_CRASH_SEED={SEED})")
    rng = random.Random(SEED)
    ack, token = site.acknowledged, site.token
    left_behind = 0  # staged files found before each start, summed
    for cycle in range(CYCLES):
        server = servers.start(tmp_path / f"server-{cycle}.log")
        server.wait_ready(answers=1)
        if cycle == 0:
            for exhibit in ("P-1", "P-2", "P-3"):
                body = {
                    "kind": "physical",
                    "case": CASE,
                    "exhibit": exhibit,
                    "description": "a",
                    "seizure": SEIZURE,
                }
                item = expect(server.call("POST", "/v1/evidence", token, json_body=body), 201)
                ack.registered[item["id"]] = item["ledger_index"]
        last = cycle == CYCLES - 1
        crash_cycle(server, site, rng, cycle, stall=cycle % 2 == 1 or last)
        if last:
            # Let what the kills left in staging age past the limit before the last start.
            time.sleep(STAGING_MAX_AGE + 0.2)
        left_behind += len(list((site.home / "objects" / "staging").iterdir()))
    print(
        f"{CYCLES} kills: {len(ack.ingests)} uploads and {len(ack.events)} custody acts "
        f"acknowledged, {len(ack.interrupted)} uploads interrupted, {ack.refused_acts} acts "
        f"refused by state, {left_behind} staged files found before restarts (summed)"
    )
    assert not ack.unexpected, ack.unexpected[:5]
    assert left_behind > 0, "no kill interrupted an upload: the staging check proves nothing"

    server = servers.start(tmp_path / "server-last.log")
    server.wait_ready(answers=1)
    # The restart swept the staged leftovers, all older than the limit by now.
    assert stale_staging(site.home, time.time()) == []

    # Interrupted uploads, sent again, are taken or clearly refused, never left hanging.
    outcomes: Counter[str] = Counter()
    for evidence_id in ack.interrupted:
        content = rng.randbytes(1_000)
        reply = server.call(
            "PUT",
            f"/v1/evidence/{evidence_id}/content",
            token,
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert reply.status in (201, 404, 409), reply.body
        detail = reply.json().get("detail", "").replace(evidence_id, "<id>")
        outcomes[f"{reply.status} {detail}".strip()] += 1
        if reply.status == 201:
            ack.ingests[evidence_id] = Ingest(
                hashlib.sha256(content).hexdigest(), len(content), reply.json()["ledger_index"]
            )
    print(f"interrupted uploads sent again: {dict(outcomes)}")

    # Every acknowledged item and act is there, as acknowledged.
    problems: list[str] = []
    keys = server.call("GET", "/v1/log/key").body.decode().split()
    verifiers = [NoteVerifier.from_key(k) for k in keys]
    records = {r["id"]: r for r in all_records(server, token)}
    for evidence_id, ingest in ack.ingests.items():
        reply = server.call("GET", f"/v1/evidence/{evidence_id}", token)
        record = reply.json() if reply.status == 200 else None
        if record is None or evidence_id not in records:
            problems.append(f"acknowledged {evidence_id} is gone: {reply.status}")
        elif (record["digests"]["sha256"], record["size"], record["ledger_index"]) != (
            ingest.sha256,
            ingest.size,
            ingest.ledger_index,
        ):
            problems.append(f"acknowledged {evidence_id} is not as acknowledged")
    for evidence_id, index in ack.registered.items():
        assert records[evidence_id]["ledger_index"] == index

    # Every acknowledged receipt verifies against the checkpoint it names, which is kept.
    receipts = [i.receipt for i in ack.ingests.values() if i.receipt is not None]
    shared: Counter[int] = Counter()
    for receipt in receipts:
        size = receipt["inclusion_proof"]["tree_size"]
        shared[size] += 1
        try:
            verify_receipt(json.dumps(receipt).encode(), keys)
        except VerificationError as exc:
            problems.append(f"an acknowledged receipt does not verify: {exc}")
        kept = server.call("GET", f"/v1/log/checkpoints/{size}")
        if kept.status != 200 or kept.body.decode() != receipt["checkpoint"]:
            problems.append(f"the checkpoint at {size} that a receipt names is not kept")
    print(
        f"{len(receipts)} receipts name {len(shared)} checkpoints "
        f"(at most {max(shared.values(), default=0)} receipts share one)"
    )

    # Nothing half-written: every record is whole, and every intake event has its record.
    chained = set()
    for record in records.values():
        chain, found = record_problems(server, token, record, verifiers)
        chained |= {e["index"] for e in chain}
        problems.extend(found)
    events = ledger_events(server, token)
    for index, event in ack.events.items():
        if index >= len(events) or events[index] != event:
            problems.append(f"acknowledged event {index} is not in the ledger")
    intakes = {
        e["subject"]["id"]
        for e in events
        if e["type"] in ("evidence.ingested", "evidence.registered")
    }
    problems.extend(f"{i}: an intake event without its record" for i in intakes - set(records))
    evidence_entries = {i for i, e in enumerate(events) if e["subject"]["kind"] == "evidence"}
    problems.extend(f"entry {i} is in no item's chain" for i in evidence_entries - chained)

    # The stopped deployment audits clean, its ledger and every stored object.
    server.stop()
    runner = CliRunner()
    for audit in (["audit"], ["audit", "--objects"]):
        result = runner.invoke(
            main, ["--home", str(site.home), *audit, "--json"], env=_no_settings()
        )
        summary = json.loads(result.stdout.splitlines()[-1])
        if result.exit_code != 0 or not summary["ok"] or summary["size"] != len(events):
            problems.append(f"custos {' '.join(audit)}: {json.dumps(summary)}")
    warnings = summary["objects"]["warnings"]
    print(f"audit --objects: {len(warnings)} orphaned blobs (a kill between commit and record)")
    assert not problems, "\n".join(problems)
