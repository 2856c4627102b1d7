"""Tests of the exhibit bundle writer: the layout of docs/bundle.md, exact leaves, proofs that
verify against the one checkpoint, signed head statements, deterministic bytes, provider
responses, content (ZIP64 too), known checkpoints and who may export."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody import bundle as bundle_module
from custody import merkle
from custody.bundle import CONTENT_LEFT_TO_THE_COURT, STORED_BELOW, BundleSummary
from custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from custody.errors import BadRequest, Conflict, Forbidden, NotFound
from custody.events import Actor, Event
from custody.note import NoteSigner, open_note
from custody.note_types import ORDER_TYPE
from custody.verify import verify_bundle
from custody.verify.receipt import verify_receipt
from custody.verify.report import render_report
from storage.deployment import Deployment, rotate_key
from tests.conftest import Home, add_provider
from tests.factories import SEIZURE, in_case
from tests.service.test_provider_api import order_document

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bundle.md"
CONTENT = b"disk image sector " * 4096
RESPONSE = b"subscriber,registered\nsuspect@example.com,2024-05-01\n" * 50
INDEX = re.compile(r"[0-9]{20}")


@dataclass
class Desk:
    """A deployment with the people an exhibit passes through."""

    deployment: Deployment
    examiner: Actor
    court: Actor
    approver: Actor
    authority: Actor

    def ingest(self, content: bytes = CONTENT, exhibit: str = "HD-1") -> str:
        intake = self.deployment.intake
        metadata = {"kind": "digital", "case": "C-1", "exhibit": exhibit, "description": "disk"}
        session = intake.open_session(metadata, self.examiner)
        intake.receive(session.id, io.BytesIO(content), self.examiner)
        return session.id

    def physical(self) -> str:
        metadata = {
            "kind": "physical",
            "case": "C-1",
            "exhibit": "PH-1",
            "description": "phone",
            "seizure": SEIZURE,
        }
        appended = self.deployment.intake.register_physical(metadata, self.examiner)
        return appended.event.subject.id

    def act(self, evidence_id: str, act: str, data: dict[str, Any] | None = None) -> None:
        self.deployment.handling.record_act(
            evidence_id, f"evidence.{act}", data or {}, self.examiner
        )

    def export(self, *ids: str, by: Actor | None = None, **options: Any) -> Exhibit:
        out = io.BytesIO()
        summary = self.deployment.bundles.export(list(ids), out, by=by or self.court, **options)
        return Exhibit(out.getvalue(), summary)

    def response(self) -> tuple[str, str]:
        """A provider's response to a production order: (evidence id, order id)."""
        dep = self.deployment
        operator = dep.principals.get("operator").actor
        isp = add_provider(dep, "Own ISP")
        staff = dep.principals.add("own-isp", "provider", operator, provider_id=isp.id)[0].actor
        order_id = dep.orders.draft(order_document(isp.id), self.authority).stored.id
        dep.orders.act(order_id, "submit", {}, self.authority)
        dep.orders.act(order_id, "approve", {}, self.approver)
        dep.orders.get_for_provider(order_id, staff, isp.id)
        dep.orders.act(order_id, "acknowledge", {}, staff, provider_id=isp.id)
        session = dep.orders.open_response(order_id, {"description": "records"}, staff, isp.id)
        dep.orders.receive_response(order_id, session.id, io.BytesIO(RESPONSE), staff, isp.id)
        return session.id, order_id


@dataclass
class Exhibit:
    data: bytes
    summary: BundleSummary

    @property
    def zip(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(io.BytesIO(self.data))

    def names(self) -> list[str]:
        return self.zip.namelist()

    def read(self, name: str) -> bytes:
        return self.zip.read(name)

    def under(self, folder: str) -> dict[int, bytes]:
        """The members directly in ``folder`` named by ledger index, by index."""
        found = {}
        for name in self.names():
            if name.startswith(folder) and INDEX.fullmatch(name[len(folder) :]):
                found[int(name[len(folder) :])] = self.read(name)
        return found


def make_desk(deployment: Deployment) -> Desk:
    principals = deployment.principals
    operator = principals.get("operator").actor
    desk = Desk(
        deployment,
        examiner=principals.add("alice", "examiner", operator)[0].actor,
        court=principals.add("clerk", "court", operator)[0].actor,
        approver=principals.add("judge", "approver", operator)[0].actor,
        authority=principals.add("prosecutor", "authority", operator)[0].actor,
    )
    # The items' case (C-1) and the orders' (CASE-1), with everyone in them.
    for case in ("C-1", "CASE-1"):
        in_case(deployment, case, "alice", "clerk", "judge", "prosecutor")
    return desk


@pytest.fixture
def desk(deployment: Deployment) -> Desk:
    return make_desk(deployment)


@pytest.fixture
def desk_on_each_database(home_on_each_database: Home) -> Desk:
    return make_desk(home_on_each_database.deployment)


def parse_tlog_proof(data: bytes) -> tuple[int, list[bytes], bytes]:
    """(index, hashes, checkpoint note) of a c2sp.org/tlog-proof@v1 without extra data."""
    head, sep, checkpoint = data.partition(b"\n\n")
    assert sep, "a tlog-proof has an empty line before its checkpoint"
    lines = head.decode("ascii").split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    key, _, index = lines[1].partition(" ")
    assert key == "index" and index == str(int(index))
    hashes = [base64.b64decode(line, validate=True) for line in lines[2:]]
    return int(index), hashes, checkpoint


def documented_members() -> list[re.Pattern[str]]:
    """The member names of docs/bundle.md's table, as patterns."""
    text = DOCS.read_text("utf-8")
    table = text[text.index("| member | what |") : text.index("## The head statement")]
    patterns = []
    for row in table.splitlines()[2:]:
        if not row.startswith("| `"):
            continue
        cell = row.split(" | ")[0]
        for name in re.findall(r"`([^`]+)`", cell):
            name = name.replace("…/", "items/<evidence-id>/")
            regex = re.escape(name).replace(re.escape("<evidence-id>"), r"ev_[0-9a-f]{16}")
            regex = regex.replace(re.escape("<id>"), r"(?:pr|prv)_[0-9a-f]{16}")
            patterns.append(re.compile(regex.replace(re.escape("<index>"), "[0-9]{20}")))
    return patterns


def test_a_full_bundle_has_every_documented_member_and_nothing_else(desk: Desk) -> None:
    response, _ = desk.response()
    known = desk.deployment.ledger.checkpoint(covering=0).note
    operator = desk.deployment.principals.get("operator").actor
    rotate_key(desk.deployment, operator)
    desk.act(response, "noted", {"text": "opened on the examiner's workstation"})
    desk.deployment.principals.name("alice", "Alice Examiner", operator)

    exhibit = desk.export(response, with_content=True, known_checkpoint=known)

    patterns = documented_members()
    names = exhibit.names()
    assert len(patterns) == 24
    for pattern in patterns:
        assert any(pattern.fullmatch(n) for n in names), f"no member {pattern.pattern}"
    for name in names:
        assert any(p.fullmatch(name) for p in patterns), f"undocumented member {name}"
    assert len(names) == len(set(names)) and names == list(exhibit.summary.members)


def test_members_come_in_the_documented_order(desk: Desk) -> None:
    response, _ = desk.response()
    physical = desk.physical()
    desk.act(physical, "noted", {"text": "bagged and labelled"})
    known = desk.deployment.ledger.checkpoint(covering=0).note

    exhibit = desk.export(physical, response, with_content=True, known_checkpoint=known)

    def rank(name: str) -> tuple[Any, ...]:
        parts = name.split("/")
        if parts[0] == "log":
            return (2, ["head", "events", "proofs"].index(parts[2]), name)
        if parts[0] == "parties":
            return (6, parts[1], ["head", "events", "proofs", "names"].index(parts[2]), name)
        if parts[0] != "items":
            tail = {"known-checkpoint": 7, "consistency": 8, "report.html": 9}
            return ({"bundle.json": 0, "checkpoint": 1, **tail}[name],)
        order = [
            "manifest",
            "head",
            "events",
            "proofs",
            "content",
            "order/document",
            "order/salt",
            "order/events",
            "order/proofs",
            "order/head",
            "receipt.json",
            "disclosed",
        ]
        rest = "/".join(parts[2:])
        kind = next(k for k in reversed(order) if rest == k or rest.startswith(k + "/"))
        return (5, parts[1], order.index(kind), rest)

    names = exhibit.names()
    assert names == sorted(names, key=rank)
    assert names[-3:] == ["known-checkpoint", "consistency", "report.html"]
    items = [n.split("/")[1] for n in names if n.startswith("items/")]
    assert items == sorted(items) and set(items) == {physical, response}


def test_bundle_json_names_the_checkpoint_items_and_options(desk: Desk) -> None:
    first, second = desk.ingest(), desk.physical()

    exhibit = desk.export(second, first, first)

    index = json.loads(exhibit.read("bundle.json"))
    checkpoint, _ = open_checkpoint(exhibit.read("checkpoint"), desk.deployment.keys.verifiers)
    assert index == {
        "format": "custos/exhibit/v3",
        "origin": desk.deployment.keys.origin,
        "checkpoint": {
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
        },
        "items": sorted([first, second]),
        "known_checkpoint": False,
        "with_content": False,
        "disclosed": True,  # a court may read findings and notes
    }
    assert (
        exhibit.read("bundle.json")
        == json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    )
    assert exhibit.summary.items == tuple(sorted([first, second]))


def test_events_are_the_exact_leaves_of_every_event_of_the_item(desk: Desk) -> None:
    item = desk.ingest()
    desk.act(item, "sealed", {"seal": "S-1"})
    desk.act(item, "transferred", {"from": "lab", "to": "alice", "location": "L", "reason": "R"})
    ledger = desk.deployment.ledger

    exhibit = desk.export(item)

    events = exhibit.under(f"items/{item}/events/")
    entries = ledger.subject_entries(f"evidence:{item}")
    assert list(events) == [e.index for e in entries]
    assert all(events[i] == ledger.entry(i) for i in events)
    assert [Event.decode(leaf).type for leaf in events.values()] == [
        "evidence.ingested",
        "evidence.sealed",
        "evidence.transferred",
    ]
    assert exhibit.read(f"items/{item}/manifest") == desk.deployment.objects.get(
        f"manifests/{item}"
    )


def test_every_proof_verifies_against_the_bundle_checkpoint(desk_on_each_database: Desk) -> None:
    desk = desk_on_each_database
    response, _ = desk.response()
    desk.ingest(exhibit="HD-2")  # more leaves, so that the proofs have several hashes
    desk.act(
        response,
        "examined",
        {"tool": "t", "version": "1", "purpose": "p", "location": "lab", "findings": "f"},
    )

    exhibit = desk.export(response)

    checkpoint_note = exhibit.read("checkpoint")
    checkpoint, _ = open_checkpoint(checkpoint_note, desk.deployment.keys.verifiers)
    for folder in (f"items/{response}/", f"items/{response}/order/"):
        events = exhibit.under(folder + "events/")
        proofs = exhibit.under(folder + "proofs/")
        assert events and list(proofs) == list(events)
        for index, proof_bytes in proofs.items():
            proved, hashes, note = parse_tlog_proof(proof_bytes)
            assert proved == index and note == checkpoint_note
            merkle.verify_inclusion(
                merkle.leaf_hash(events[index]), index, checkpoint.size, hashes, checkpoint.root
            )


def test_head_statements_are_signed_and_state_the_last_event(desk: Desk) -> None:
    response, order_id = desk.response()

    exhibit = desk.export(response)

    checkpoint, _ = open_checkpoint(exhibit.read("checkpoint"), desk.deployment.keys.verifiers)
    for folder, subject in (
        (f"items/{response}/", f"evidence:{response}"),
        (f"items/{response}/order/", f"order:{order_id}"),
    ):
        note = open_note(exhibit.read(folder + "head"), desk.deployment.keys.verifiers)
        kind, body, end = note.text.split("\n")
        assert kind == "custos/head/v1" and end == ""
        events = exhibit.under(folder + "events/")
        last = max(events)
        assert json.loads(body) == {
            "checkpoint_root": base64.b64encode(checkpoint.root).decode(),
            "count": len(events),
            "last_index": last,
            "last_leaf_hash": merkle.leaf_hash(events[last]).hex(),
            "subject": subject,
            "tree_size": checkpoint.size,
        }
        assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))


def test_the_same_ledger_gives_the_same_bytes(desk_on_each_database: Desk) -> None:
    desk = desk_on_each_database
    response, _ = desk.response()
    item = desk.ingest(exhibit="HD-2")
    known = desk.deployment.ledger.checkpoint(covering=0).note

    first = desk.export(item, response, known_checkpoint=known)
    second = desk.export(response, item, known_checkpoint=known)
    desk.physical()  # another item's event: the kept checkpoint still covers these items
    third = desk.export(item, response, known_checkpoint=known)

    assert first.data == second.data == third.data


def test_members_have_a_fixed_time_mode_and_compression(desk: Desk) -> None:
    item = desk.ingest()

    exhibit = desk.export(item, with_content=True)

    infos = exhibit.zip.infolist()
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3 and info.external_attr == 0o100644 << 16
        stored = info.filename.endswith("/content") or info.file_size < STORED_BELOW
        assert info.compress_type == (zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    methods = {info.compress_type for info in infos if not info.filename.endswith("/content")}
    assert methods == {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}  # events stored, report not


def test_a_later_event_of_the_item_moves_the_checkpoint(desk: Desk) -> None:
    item = desk.ingest()
    before = desk.export(item)

    desk.act(item, "sealed", {"seal": "S-1"})
    after = desk.export(item)

    assert after.summary.checkpoint_size > before.summary.checkpoint_size
    assert len(after.under(f"items/{item}/events/")) == 2


def test_a_provider_response_carries_its_order_and_receipt(desk: Desk) -> None:
    response, order_id = desk.response()
    keys = desk.deployment.keys

    exhibit = desk.export(response)

    folder = f"items/{response}/"
    document = open_note(exhibit.read(folder + "order/document"), keys.verifiers)
    assert document.text.startswith(ORDER_TYPE + "\n") and order_id in document.text
    order_events = [Event.decode(leaf) for leaf in exhibit.under(folder + "order/events/").values()]
    assert {e.subject.key for e in order_events} == {f"order:{order_id}"}
    assert order_events[0].type == "order.drafted" and order_events[0].prev is None
    stored = desk.deployment.orders.store.get(order_id)
    assert stored is not None
    assert exhibit.read(folder + "order/salt") == stored.salt.hex().encode() + b"\n"
    served = [e.type for e in order_events].index("order.served")
    commitment = hashlib.sha256(stored.salt + document.text.encode()).hexdigest()
    assert {e.data["document_commitment"] for e in order_events[served:]} == {commitment}
    responded = [e for e in order_events if e.type == "order.responded"]
    assert [e.data["evidence"] for e in responded] == [response]
    report = verify_receipt(exhibit.read(folder + "receipt.json"), [keys.current.verifier_key])
    assert report.evidence_id == response


def test_an_ordinary_item_has_no_order_members(desk: Desk) -> None:
    item = desk.ingest()

    names = desk.export(item).names()

    assert not [n for n in names if "/order/" in n or n.endswith("receipt.json")]


def test_with_content_the_bytes_and_their_access_are_in_the_bundle(desk: Desk) -> None:
    item, physical = desk.ingest(), desk.physical()
    ledger = desk.deployment.ledger
    seen: list[int] = []

    exhibit = desk.export(item, physical, with_content=True, progress=seen.append)

    assert exhibit.read(f"items/{item}/content") == CONTENT
    assert f"items/{physical}/content" not in exhibit.names()
    assert sum(seen) == len(CONTENT)
    events = exhibit.under(f"items/{item}/events/")
    last = max(events)
    access = Event.decode(events[last])
    assert access.type == "evidence.accessed"
    digests = {"sha256": hashlib.sha256(CONTENT).hexdigest()}  # what the bytes re-hashed to
    assert access.data == {"purpose": "exhibit export", "digests": digests}
    assert access.actor == desk.court
    assert exhibit.summary.accessed == (last,) and ledger.entry(last) == events[last]
    assert json.loads(exhibit.read("bundle.json"))["with_content"] is True


def test_an_export_without_content_records_nothing(desk: Desk) -> None:
    item = desk.ingest()
    size = desk.deployment.ledger.size()

    exhibit = desk.export(item)

    assert desk.deployment.ledger.size() == size
    assert exhibit.summary.accessed == ()
    assert f"items/{item}/content" not in exhibit.names()


def zip64_extra(data: bytes, info: zipfile.ZipInfo) -> bool:
    """Whether the member's local header carries a ZIP64 extended information field."""
    header = data[info.header_offset : info.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length
    extra = data[start : start + extra_length]
    at = 0
    while at + 4 <= len(extra):
        field_id, size = struct.unpack("<HH", extra[at : at + 4])
        if field_id == 0x0001:
            return True
        at += 4 + size
    return False


def test_large_content_is_written_with_zip64(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    large, small = desk.ingest(), desk.ingest(b"a small file", exhibit="HD-2")
    monkeypatch.setattr(bundle_module, "ZIP64_THRESHOLD", len(CONTENT))

    exhibit = desk.export(large, small, with_content=True)

    archive = exhibit.zip
    assert archive.testzip() is None
    assert zip64_extra(exhibit.data, archive.getinfo(f"items/{large}/content"))
    assert not zip64_extra(exhibit.data, archive.getinfo(f"items/{small}/content"))
    assert archive.read(f"items/{large}/content") == CONTENT


def test_a_known_checkpoint_is_proved_consistent_with_the_bundle(desk: Desk) -> None:
    item = desk.ingest()
    known_note = desk.deployment.ledger.checkpoint(covering=0).note
    for n in range(5):
        desk.act(item, "noted", {"text": f"note {n}"})

    exhibit = desk.export(item, known_checkpoint=known_note)

    verifiers = desk.deployment.keys.verifiers
    known, _ = open_checkpoint(exhibit.read("known-checkpoint"), verifiers)
    checkpoint, _ = open_checkpoint(exhibit.read("checkpoint"), verifiers)
    assert exhibit.read("known-checkpoint") == known_note
    lines = exhibit.read("consistency").decode().split("\n")
    assert lines[:3] == [
        "c2sp.org/custos-consistency@v1",
        f"from {known.size}",
        f"to {checkpoint.size}",
    ]
    assert lines[-1] == "" and known.size < checkpoint.size
    proof = [base64.b64decode(h, validate=True) for h in lines[3:-1]]
    merkle.verify_consistency(known.size, checkpoint.size, proof, known.root, checkpoint.root)
    assert json.loads(exhibit.read("bundle.json"))["known_checkpoint"] is True


def test_a_known_checkpoint_of_the_same_size_has_an_empty_proof(desk: Desk) -> None:
    item = desk.ingest()
    known = desk.deployment.ledger.checkpoint(covering=desk.deployment.ledger.size() - 1)

    exhibit = desk.export(item, known_checkpoint=known.note)

    assert exhibit.summary.checkpoint_size == known.size
    assert exhibit.read("consistency").decode() == (
        f"c2sp.org/custos-consistency@v1\nfrom {known.size}\nto {known.size}\n"
    )


def foreign_checkpoint(origin: str, size: int, signer: NoteSigner | None = None) -> bytes:
    signer = signer or NoteSigner(origin, Ed25519PrivateKey.generate())
    return sign_checkpoint(Checkpoint(origin, size, bytes(32)), [signer])


@pytest.mark.parametrize(
    "known",
    [
        pytest.param(lambda d: foreign_checkpoint(d.keys.origin, 1), id="another key"),
        pytest.param(lambda d: foreign_checkpoint("other.example/log", 1), id="another origin"),
        pytest.param(
            lambda d: foreign_checkpoint("other.example/log", 1, d.keys.current.signer),
            id="our key, another origin",
        ),
        pytest.param(
            lambda d: foreign_checkpoint(d.keys.origin, d.ledger.size() + 5, d.keys.current.signer),
            id="beyond the log",
        ),
        pytest.param(
            lambda d: foreign_checkpoint(d.keys.origin, 0, d.keys.current.signer), id="empty tree"
        ),
        pytest.param(lambda d: b"not a checkpoint\n", id="garbage"),
    ],
)
def test_a_bad_known_checkpoint_is_refused_before_anything_is_recorded(
    desk: Desk, known: Any
) -> None:
    item = desk.ingest()
    size = desk.deployment.ledger.size()
    out = io.BytesIO()

    with pytest.raises(BadRequest):
        desk.deployment.bundles.export(
            [item],
            out,
            by=desk.court,
            with_content=True,
            known_checkpoint=known(desk.deployment),
        )

    assert desk.deployment.ledger.size() == size and out.getvalue() == b""


@pytest.mark.parametrize("role", ["approver", "authority", "provider", "admin"])
def test_only_a_court_or_an_examiner_may_export(desk: Desk, role: str) -> None:
    item = desk.ingest()
    by = {
        "approver": desk.approver,
        "authority": desk.authority,
        "admin": desk.deployment.principals.get("operator").actor,
        "provider": Actor("someone", "provider"),
    }[role]

    with pytest.raises(Forbidden):
        desk.export(item, by=by)

    assert desk.export(item, by=desk.examiner).summary.items == (item,)


def test_an_unknown_item_is_not_found_and_nothing_is_recorded(desk: Desk) -> None:
    item = desk.ingest()
    size = desk.deployment.ledger.size()

    for unknown in ("ev_0000000000000000", "../etc/passwd"):
        with pytest.raises(NotFound):
            desk.export(item, unknown, with_content=True)

    assert desk.deployment.ledger.size() == size


def test_a_disposed_item_cannot_be_exported_with_content(desk: Desk) -> None:
    kept, disposed = desk.ingest(), desk.ingest(b"other bytes", exhibit="HD-2")
    desk.deployment.handling.record_act(
        disposed, "evidence.disposed", {"authority": "A", "method": "M"}, desk.approver
    )
    size = desk.deployment.ledger.size()

    with pytest.raises(Conflict):
        desk.export(kept, disposed, with_content=True)

    assert desk.deployment.ledger.size() == size
    assert desk.export(disposed).summary.items == (disposed,)


def test_the_report_is_the_service_s_own_verification_written_last(desk: Desk) -> None:
    item = desk.ingest()
    desk.act(item, "sealed", {"seal": "S-1"})
    keys = [key.verifier_key for key in desk.deployment.keys.keys]

    exhibit = desk.export(item)

    without = desk.export(item, report=False)
    names = exhibit.names()
    assert names[-1] == "report.html" and names[:-1] == without.names()
    assert without.summary.verification is None and without.summary.verified is None
    verification = verify_bundle(without.data, keys)
    assert exhibit.summary.verification == verification and exhibit.summary.verified is True
    html = exhibit.read("report.html").decode("utf-8")
    assert html == render_report(verification)
    assert ">VERIFIED<" in html and item in html and "<script" not in html
    assert exhibit.zip.testzip() is None


def test_the_own_check_reads_a_copy_without_the_content(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    item, physical = desk.ingest(), desk.physical()
    checked: list[bytes] = []

    def recording(bundle: bytes, keys: list[str]) -> Any:
        checked.append(bundle)
        return verify_bundle(bundle, keys)

    monkeypatch.setattr(bundle_module, "verify_bundle", recording)

    exhibit = desk.export(item, physical, with_content=True)

    (copy,) = checked
    with zipfile.ZipFile(io.BytesIO(copy)) as archive:
        copied = {info.filename: archive.read(info) for info in archive.infolist()}
    assert list(copied) == [
        n for n in exhibit.names() if n not in (f"items/{item}/content", "report.html")
    ]
    assert json.loads(copied["bundle.json"])["with_content"] is False
    assert all(copied[n] == exhibit.read(n) for n in copied if n != "bundle.json")
    verification = exhibit.summary.verification
    assert verification is not None and verification.ok
    seven = {s.evidence_id: s for s in verification.steps if s.number == 7}
    assert seven[item].status == "skipped" and seven[item].detail == CONTENT_LEFT_TO_THE_COURT
    assert seven[physical].detail.startswith("not applicable: a evidence.registered item")
    assert "the content is verified by the court" in exhibit.read("report.html").decode()


def test_after_a_key_rotation_the_own_check_pins_every_key_of_the_ring(desk: Desk) -> None:
    item = desk.ingest()
    old = desk.deployment.keys.current.verifier_key
    rotate_key(desk.deployment, desk.deployment.principals.get("operator").actor)
    desk.act(item, "sealed", {"seal": "S-2"})

    exhibit = desk.export(item)

    verification = exhibit.summary.verification
    assert verification is not None and verification.ok
    new = desk.deployment.keys.current.verifier_key
    assert new != old
    pinned = {"+".join(key.split("+")[:2]) for key in (old, new)}
    assert set(verification.key_fingerprints) == pinned


def test_an_export_needs_an_item(desk: Desk) -> None:
    with pytest.raises(BadRequest):
        desk.export()
