"""Tests of the exhibit bundle verifier (custody/verify/bundle.py, docs/bundle.md's checklist)
and of ``python -m custody.verify EXHIBIT.zip`` / ``custos verify``.

Sound bundles are exported from a real deployment (``deployment.bundles.export``): an examiner's
item with a custody history, and a provider's response to a production order. The tamper
corpus rewrites them, one attack per named file under the test's temporary directory, and each
must fail at the step of the checklist that catches it, naming the item and the event.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import stat
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import main as custos
from custody import merkle
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.json_codec import canonical_json
from custody.note import Note, NoteSigner, sign_note
from custody.verify import BUNDLE_CHECKS, ExhibitVerification, verify_bundle
from custody.verify import archive as bundle_archive
from custody.verify.__main__ import main
from custody.verify.archive import MAX_MEMBER_BYTES
from custody.verify.cosignature import CosignatureSigner
from custody.witness import Witness
from storage.deployment import Deployment, initialise, open_deployment, rotate_key
from tests.conftest import add_provider, make_config
from tests.factories import SEIZURE, in_case, order_document

CONTENT = b"disk image sector " * 2048
RESPONSE = b"subscriber,registered\nsuspect@example.com,2024-05-01\n" * 20
INDEXED = re.compile(r"items/(ev_[0-9a-f]{16})/(order/)?(events|proofs)/([0-9]{20})")
FINDINGS = "no tampering with the seal; the image's hash matches — « ok »"
NOTE = "photographed for the file"
EXAMINER_NAME = "Alice Ndiaye-Okafor"
CLERK_NAME = "Clerk Ruiz"
DESK_NAME = "Dana Desk"
WARRANT = "Warrant 2026/17 of the Dublin District Court"
ACQUISITION = {
    "tool": "FTK Imager",
    "tool_version": "4.7.1",
    "acquired_by": "DS Byrne",
    "acquired_at": "2026-11-27T08:15:00Z",
    "device": "Samsung SSD 860",
    "serial": "S3Z9NB0K123456",
}


@dataclass
class Exhibits:
    """Sound bundles exported from one deployment, and what the tests need to forge others."""

    deployment: Deployment
    key: str
    item: str
    """An examiner's item: ingested, transferred, examined, sealed, noted (content inside)."""
    item_zip: bytes
    response: str
    """A provider's response to a production order (content and a known checkpoint inside)."""
    order: str
    response_zip: bytes
    other_order: str
    """Another order of the same deployment, served on the same provider."""
    known: bytes
    """The checkpoint the court kept before the response arrived."""
    physical_zip: bytes
    examiner: str
    """The principal id of the examiner who took the item in."""
    clerk: str = ""
    """The principal id of the court clerk who exported the bundles (named after creation)."""


@pytest.fixture(scope="module")
def exhibits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exhibits]:
    made = make_exhibits(tmp_path_factory.mktemp("exhibits"))
    yield made
    made.deployment.close()


def make_exhibits(tmp: Path) -> Exhibits:
    """Export the sound bundles from a new deployment in ``tmp`` (the caller closes it); also
    what made tests/vectors/exhibit-v1."""
    config = make_config(tmp, f"sqlite:///{tmp / 'home' / 'custos.db'}")
    initialise(config).deployment.close()
    dep = open_deployment(config)
    people = dep.principals
    operator = people.get("operator").actor
    examiner = people.add("alice", "examiner", operator, display_name=EXAMINER_NAME)[0].actor
    court = people.add("clerk", "court", operator)[0].actor
    people.name("clerk", CLERK_NAME, operator)
    approver = people.add("judge", "approver", operator)[0].actor
    authority = people.add("prosecutor", "authority", operator)[0].actor
    custodian = people.add("bob", "examiner", operator)[0].actor
    for case in ("C-1", "CASE-1"):
        in_case(dep, case, "alice", "bob", "clerk", "judge", "prosecutor")

    metadata = {
        "kind": "digital",
        "case": "C-1",
        "exhibit": "HD-1",
        "description": "laptop disk",
        "authority": WARRANT,
        "acquisition": ACQUISITION,
    }
    item = dep.intake.open_session(metadata, examiner).id
    dep.intake.receive(item, io.BytesIO(CONTENT), examiner)
    for act, data, by in (
        (
            "transferred",
            {"from": "lab", "to": "bob", "location": "evidence room 2", "reason": "storage"},
            examiner,
        ),
        ("received", {"location": "evidence room 2", "seal_intact": "yes"}, custodian),
        (
            "examined",
            {
                "tool": "X-Ways",
                "version": "21.0",
                "purpose": "seal check",
                "location": "lab 1",
                "findings": FINDINGS,
            },
            examiner,
        ),
        ("sealed", {"seal": "S-0042"}, examiner),
        ("noted", {"text": NOTE}, examiner),
    ):
        dep.handling.record_act(item, f"evidence.{act}", data, by)
    physical = dep.intake.register_physical(
        {
            "kind": "physical",
            "case": "C-1",
            "exhibit": "PH-1",
            "description": "phone",
            "seizure": SEIZURE,
        },
        examiner,
    ).event.subject.id
    known = dep.ledger.checkpoint(covering=dep.ledger.size() - 1).note

    isp = add_provider(dep, "Own ISP")
    staff = people.add(
        "isp-desk", "provider", operator, provider_id=isp.id, display_name=DESK_NAME
    )[0].actor
    order = dep.orders.draft(order_document(isp.id), authority).stored.id
    dep.orders.act(order, "submit", {}, authority)
    dep.orders.act(order, "approve", {}, approver)
    dep.orders.get_for_provider(order, staff, isp.id)
    dep.orders.act(order, "acknowledge", {}, staff, provider_id=isp.id)
    response = dep.orders.open_response(order, {"description": "records"}, staff, isp.id).id
    dep.orders.receive_response(order, response, io.BytesIO(RESPONSE), staff, isp.id)
    other_order = dep.orders.draft(order_document(isp.id), authority).stored.id
    dep.orders.act(other_order, "submit", {}, authority)
    dep.orders.act(other_order, "approve", {}, approver)

    def export(ids: list[str], **options: Any) -> bytes:
        out = io.BytesIO()
        dep.bundles.export(ids, out, by=court, **options)
        return out.getvalue()

    return Exhibits(
        deployment=dep,
        key=dep.keys.current.verifier_key,
        item=item,
        item_zip=export([item], with_content=True),
        response=response,
        order=order,
        response_zip=export([response], with_content=True, known_checkpoint=known),
        other_order=other_order,
        known=known,
        physical_zip=export([physical]),
        examiner=examiner.id,
        clerk=court.id,
    )


# -- reading and rewriting bundles -----------------------------------------------------------------


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def indexes(data: bytes, evidence_id: str, order: bool = False) -> list[int]:
    """The ledger indexes of an item's (or its order's) events in a bundle."""
    found = []
    for name in members(data):
        match = INDEXED.fullmatch(name)
        if match and match[1] == evidence_id and bool(match[2]) == order and match[3] == "events":
            found.append(int(match[4]))
    return sorted(found)


def fingerprint(verifier_key: str) -> str:
    """``<name>+<key hash>`` of a verifier key ``<name>+<key hash>+<base64>``."""
    return "+".join(verifier_key.split("+")[:2])


def checkpoint_of(note: bytes) -> Checkpoint:
    return Checkpoint.from_text(Note.from_bytes(note).text)


def event_name(evidence_id: str, index: int, folder: str = "events") -> str:
    return f"items/{evidence_id}/{folder}/{index:020d}"


@dataclass
class Rewrite:
    """How to make a tampered bundle from a sound one."""

    replace: Mapping[str, bytes] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    add: list[tuple[zipfile.ZipInfo | str, bytes]] = field(default_factory=list)


def rezipped(data: bytes, rewrite: Rewrite) -> bytes:
    """``data``'s members as the rewrite says, in their order and form, as a new ZIP."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename not in rewrite.drop:
                target.writestr(info, rewrite.replace.get(info.filename, source.read(info)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
            for name, payload in rewrite.add:
                target.writestr(name, payload)
    return out.getvalue()


def rezip(data: bytes, path: Path, rewrite: Rewrite) -> Path:
    """Write the rewritten bundle to ``path``: each tampered bundle is a named file."""
    path.write_bytes(rezipped(data, rewrite))
    return path


def first_failure(verification: ExhibitVerification) -> tuple[int, str | None, int | None]:
    failed = verification.failed
    assert failed, "the bundle verified"
    return failed[0].number, failed[0].evidence_id, failed[0].event_index


def statuses(verification: ExhibitVerification, evidence_id: str | None = None) -> dict[int, str]:
    """Each step's status (for one item, and the bundle-wide steps)."""
    return {
        step.number: step.status
        for step in verification.steps
        if step.evidence_id in (None, evidence_id)
    }


# -- sound bundles ---------------------------------------------------------------------------------


def test_a_sound_bundle_of_a_provider_response_passes_every_step(exhibits: Exhibits) -> None:
    verification = verify_bundle(exhibits.response_zip, [exhibits.key])

    assert verification.ok
    assert [step.number for step in verification.steps] == list(range(1, len(BUNDLE_CHECKS) + 1))
    assert {step.number: step.status for step in verification.steps} == {
        **dict.fromkeys(range(1, 12), "pass"),
        10: "skipped",  # a response has no findings or notes
    }
    (item,) = verification.items
    assert (item.evidence_id, item.order_id, item.size) == (
        exhibits.response,
        exhibits.order,
        len(RESPONSE),
    )
    assert item.events[0].type == "evidence.ingested"
    order_events = [e.type for e in item.order_events]
    assert order_events[0] == "order.drafted" and "order.responded" in order_events
    assert verification.key_fingerprints == [fingerprint(exhibits.key)]
    assert verification.checkpoint_size == exhibits.deployment.ledger.size()
    nine = next(step for step in verification.steps if step.number == 9).detail
    assert "from the order.served at" in nine and "commit to this document" in nine
    assert "committed to the draft's text, which the bundle does not hold" in nine


def test_a_sound_item_bundle_reports_its_timeline_and_digests(exhibits: Exhibits) -> None:
    verification = verify_bundle(exhibits.item_zip, [exhibits.key])

    assert verification.ok
    assert statuses(verification, exhibits.item) == {
        **dict.fromkeys(range(1, 8), "pass"),
        8: "skipped",
        9: "skipped",
        10: "pass",
        11: "pass",
    }
    (item,) = verification.items
    assert (item.case, item.exhibit, item.description, item.kind) == (
        "C-1",
        "HD-1",
        "laptop disk",
        "digital",
    )
    assert item.digests["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert [event.type for event in item.events] == [
        "evidence.ingested",
        "evidence.transferred",
        "evidence.received",
        "evidence.examined",
        "evidence.sealed",
        "evidence.noted",
        "evidence.accessed",
    ]
    # The transfer names its custodian by id; the custodian's own event confirms receipt.
    assert item.events[1].data["to"] == item.events[2].actor_id
    assert item.events[2].data["seal_intact"] == "yes"
    assert (item.events[0].actor_id, item.events[0].actor_role) == (exhibits.examiner, "examiner")


def test_the_completeness_statement_says_it_rests_on_the_signed_head_statement(
    exhibits: Exhibits,
) -> None:
    verification = verify_bundle(exhibits.item_zip, [exhibits.key])
    last = indexes(exhibits.item_zip, exhibits.item)[-1]

    note = verification.completeness_note
    assert f"after the last, at ledger index {last}" in note
    assert "rests on the head statement signed by" in note
    assert fingerprint(exhibits.key) in note


def test_a_physical_item_has_no_bytes_to_check(exhibits: Exhibits) -> None:
    verification = verify_bundle(exhibits.physical_zip, [exhibits.key])

    assert verification.ok
    seven = [step for step in verification.steps if step.number == 7]
    assert [s.status for s in seven] == ["skipped"]
    assert seven[0].detail.startswith("not applicable:")


def test_the_court_s_own_artifact_and_known_checkpoint_are_checked(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    artifact = tmp_path / "response.csv"
    artifact.write_bytes(RESPONSE)

    verification = verify_bundle(
        exhibits.response_zip, [exhibits.key], artifact=artifact, known_checkpoint=exhibits.known
    )

    assert verification.ok
    steps = {step.number: step.detail for step in verification.steps}
    assert "the artifact" in steps[7] and "the bundle's content" in steps[7]
    assert steps[8].startswith("your known checkpoint")


# -- the tamper corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tampered:
    """A tampered bundle, what to verify it with, and where the verifier must catch it."""

    bundle: bytes | Path
    step: int
    evidence_id: str | None = None
    event_index: int | None = None
    artifact: Path | None = None
    known_checkpoint: bytes | None = None


def one_byte_of_an_event_changed(x: Exhibits, tmp: Path) -> Tampered:
    index = indexes(x.item_zip, x.item)[2]
    name = event_name(x.item, index)
    leaf = members(x.item_zip)[name]
    changed = leaf.replace(b'"role":"examiner"', b'"role":"examinex"', 1)
    assert len(changed) == len(leaf) and changed != leaf
    path = rezip(x.item_zip, tmp / "event-byte-changed.zip", Rewrite(replace={name: changed}))
    return Tampered(path, 3, x.item, index)


def a_middle_event_dropped(x: Exhibits, tmp: Path) -> Tampered:
    events = indexes(x.item_zip, x.item)
    dropped = events[2]
    names = {event_name(x.item, dropped), event_name(x.item, dropped, "proofs")}
    path = rezip(x.item_zip, tmp / "middle-event-dropped.zip", Rewrite(drop=frozenset(names)))
    return Tampered(path, 4, x.item, events[3])


def the_last_event_dropped_with_the_head_kept(x: Exhibits, tmp: Path) -> Tampered:
    last = indexes(x.item_zip, x.item)[-1]
    names = {event_name(x.item, last), event_name(x.item, last, "proofs")}
    path = rezip(x.item_zip, tmp / "last-event-dropped.zip", Rewrite(drop=frozenset(names)))
    return Tampered(path, 5, x.item, last)


def two_events_swapped(x: Exhibits, tmp: Path) -> Tampered:
    a, b = indexes(x.item_zip, x.item)[1:3]
    found = members(x.item_zip)
    swap = {event_name(x.item, a): found[event_name(x.item, b)]}
    swap[event_name(x.item, b)] = found[event_name(x.item, a)]
    path = rezip(x.item_zip, tmp / "two-events-swapped.zip", Rewrite(replace=swap))
    return Tampered(path, 3, x.item, a)


def another_artifact(x: Exhibits, tmp: Path) -> Tampered:
    other = tmp / "another-artifact.img"
    other.write_bytes(CONTENT[:-1] + b"!")
    path = tmp / "sound-item.zip"
    path.write_bytes(x.item_zip)
    return Tampered(path, 7, x.item, indexes(x.item_zip, x.item)[0], artifact=other)


def the_manifest_edited(x: Exhibits, tmp: Path) -> Tampered:
    name = f"items/{x.item}/manifest"
    edited = members(x.item_zip)[name].replace(b'"exhibit":"HD-1"', b'"exhibit":"HD-9"')
    assert edited != members(x.item_zip)[name]
    path = rezip(x.item_zip, tmp / "manifest-edited.zip", Rewrite(replace={name: edited}))
    return Tampered(path, 6, x.item)


def a_checkpoint_forged_with_a_key_shipped_in_the_bundle(x: Exhibits, tmp: Path) -> Tampered:
    found = members(x.item_zip)
    genuine = checkpoint_of(found["checkpoint"])
    forger = NoteSigner(genuine.origin, Ed25519PrivateKey.generate())  # same name, another key
    forged = sign_checkpoint(Checkpoint(genuine.origin, genuine.size, b"\x07" * 32), [forger])
    proofs = {
        name: data.replace(found["checkpoint"], forged)
        for name, data in found.items()
        if "/proofs/" in name
    }
    rewrite = Rewrite(
        replace={"checkpoint": forged, **proofs},
        add=[("keys/forger.vkey", forger.verifier.verifier_key().encode())],
    )
    path = rezip(x.item_zip, tmp / "checkpoint-forged.zip", rewrite)
    return Tampered(path, 2)


def a_proof_for_the_wrong_tree_size(x: Exhibits, tmp: Path) -> Tampered:
    found = members(x.item_zip)
    index = indexes(x.item_zip, x.item)[1]
    name = event_name(x.item, index, "proofs")
    size = checkpoint_of(found["checkpoint"]).size
    hashes = x.deployment.ledger.inclusion_proof(index, size - 1)
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
    proof = f"c2sp.org/tlog-proof@v1\nindex {index}\n{lines}\n".encode() + found["checkpoint"]
    path = rezip(x.item_zip, tmp / "proof-wrong-tree-size.zip", Rewrite(replace={name: proof}))
    return Tampered(path, 3, x.item, index)


def a_known_checkpoint_from_a_forked_log(x: Exhibits, tmp: Path) -> Tampered:
    ledger = x.deployment.ledger
    known = checkpoint_of(x.known)
    leaves = [merkle.leaf_hash(ledger.entry(i)) for i in range(known.size)]
    leaves[1] = merkle.leaf_hash(b"another history")
    fork = Checkpoint(known.origin, known.size, merkle.root_from_leaf_hashes(leaves))
    forked = tmp / "forked-known-checkpoint"
    forked.write_bytes(sign_checkpoint(fork, [x.deployment.keys.current.signer]))
    path = tmp / "sound-response.zip"
    path.write_bytes(x.response_zip)
    return Tampered(path, 8, known_checkpoint=forked.read_bytes())


def a_member_named_dot_dot(x: Exhibits, tmp: Path) -> Tampered:
    path = rezip(x.item_zip, tmp / "member-dot-dot.zip", Rewrite(add=[("../x", b"escape")]))
    return Tampered(path, 1)


def a_duplicate_member_name(x: Exhibits, tmp: Path) -> Tampered:
    path = rezip(x.item_zip, tmp / "duplicate-member.zip", Rewrite(add=[("checkpoint", b"2nd")]))
    return Tampered(path, 1)


def an_oversized_member(x: Exhibits, tmp: Path) -> Tampered:
    info = zipfile.ZipInfo("report.html")
    info.compress_type = zipfile.ZIP_STORED
    huge = b"<" * (MAX_MEMBER_BYTES + 1)
    rewrite = Rewrite(drop=frozenset({"report.html"}), add=[(info, huge)])
    path = rezip(x.item_zip, tmp / "oversized-member.zip", rewrite)
    return Tampered(path, 1)


def order_member(x: Exhibits, name: str) -> str:
    return f"items/{x.response}/order/{name}"


def served_index(x: Exhibits) -> int:
    """The ledger index of the response's order's ``order.served`` event."""
    found = members(x.response_zip)
    for index in indexes(x.response_zip, x.response, order=True):
        leaf = json.loads(found[event_name(x.response, index, "order/events")])
        if leaf["type"] == "order.served":
            return index
    raise AssertionError("the order was never served")


def the_order_s_salt_changed(x: Exhibits, tmp: Path) -> Tampered:
    name = order_member(x, "salt")
    salt = members(x.response_zip)[name]
    changed = (b"1" if salt[:1] == b"0" else b"0") + salt[1:]
    path = rezip(x.response_zip, tmp / "order-salt-changed.zip", Rewrite(replace={name: changed}))
    return Tampered(path, 9, x.response, served_index(x))


def the_order_document_replaced_by_another_signed_one_of_its_id(x: Exhibits, tmp: Path) -> Tampered:
    name = order_member(x, "document")
    kind, body, _ = Note.from_bytes(members(x.response_zip)[name]).text.split("\n")
    document = json.loads(body)
    document["facts"] = "other facts than the ones the order was served with"
    text = f"{kind}\n{json.dumps(document, sort_keys=True, separators=(',', ':'))}\n"
    forged = sign_note(text, [x.deployment.keys.current.signer])  # as the service's key would
    path = rezip(
        x.response_zip, tmp / "order-document-replaced.zip", Rewrite(replace={name: forged})
    )
    return Tampered(path, 9, x.response, served_index(x))


def another_order_s_document_renamed_into_place(x: Exhibits, tmp: Path) -> Tampered:
    other = x.deployment.orders.store.get(x.other_order)
    assert other is not None and other.note is not None
    rewrite = Rewrite(
        replace={
            order_member(x, "document"): other.note,
            order_member(x, "salt"): other.salt.hex().encode() + b"\n",
        }
    )
    path = rezip(x.response_zip, tmp / "another-order-document.zip", rewrite)
    return Tampered(path, 9, x.response)


def index_of(x: Exhibits, event_type: str) -> int:
    """The ledger index of the sound item's (first) event of ``event_type``."""
    found = members(x.item_zip)
    for index in indexes(x.item_zip, x.item):
        if json.loads(found[event_name(x.item, index)])["type"] == event_type:
            return index
    raise AssertionError(f"the item has no {event_type}")


def disclosed(x: Exhibits, event_type: str) -> tuple[str, dict[str, str]]:
    """The member disclosing the text of the item's event of ``event_type``, and its JSON."""
    name = event_name(x.item, index_of(x, event_type), "disclosed")
    return name, json.loads(members(x.item_zip)[name])


def the_disclosed_findings_changed(x: Exhibits, tmp: Path) -> Tampered:
    name, opening = disclosed(x, "evidence.examined")
    assert opening["text"] == FINDINGS
    changed = canonical_json({**opening, "text": "the seal was broken"})
    path = rezip(x.item_zip, tmp / "findings-changed.zip", Rewrite(replace={name: changed}))
    return Tampered(path, 10, x.item, index_of(x, "evidence.examined"))


def the_disclosed_note_s_salt_changed(x: Exhibits, tmp: Path) -> Tampered:
    name, opening = disclosed(x, "evidence.noted")
    salt = opening["salt"]
    changed = canonical_json({**opening, "salt": ("1" if salt[0] == "0" else "0") + salt[1:]})
    path = rezip(x.item_zip, tmp / "note-salt-changed.zip", Rewrite(replace={name: changed}))
    return Tampered(path, 10, x.item, index_of(x, "evidence.noted"))


def a_disclosed_finding_left_out(x: Exhibits, tmp: Path) -> Tampered:
    name, _ = disclosed(x, "evidence.examined")
    path = rezip(x.item_zip, tmp / "findings-left-out.zip", Rewrite(drop=frozenset({name})))
    return Tampered(path, 10, x.item, index_of(x, "evidence.examined"))


def name_member(x: Exhibits, principal_id: str) -> tuple[str, int]:
    """The (last) display-name member of a principal in the sound item bundle, and its index."""
    prefix = f"parties/{principal_id}/names/"
    names = sorted(n for n in members(x.item_zip) if n.startswith(prefix))
    assert names, f"no name of {principal_id} in the bundle"
    return names[-1], int(names[-1][len(prefix) :])


def a_display_name_changed(x: Exhibits, tmp: Path) -> Tampered:
    name, index = name_member(x, x.examiner)
    opening = json.loads(members(x.item_zip)[name])
    assert opening["text"] == EXAMINER_NAME
    changed = canonical_json({**opening, "text": "Someone Else"})
    path = rezip(x.item_zip, tmp / "name-changed.zip", Rewrite(replace={name: changed}))
    return Tampered(path, 11, None, index)


def a_party_left_out(x: Exhibits, tmp: Path) -> Tampered:
    folder = f"parties/{x.examiner}/"
    dropped = frozenset(n for n in members(x.item_zip) if n.startswith(folder))
    path = rezip(x.item_zip, tmp / "party-left-out.zip", Rewrite(drop=dropped))
    return Tampered(path, 11)


TAMPER_CORPUS: list[Callable[[Exhibits, Path], Tampered]] = [
    one_byte_of_an_event_changed,
    a_middle_event_dropped,
    the_last_event_dropped_with_the_head_kept,
    two_events_swapped,
    another_artifact,
    the_manifest_edited,
    a_checkpoint_forged_with_a_key_shipped_in_the_bundle,
    a_proof_for_the_wrong_tree_size,
    a_known_checkpoint_from_a_forked_log,
    a_member_named_dot_dot,
    a_duplicate_member_name,
    an_oversized_member,
    the_order_s_salt_changed,
    the_order_document_replaced_by_another_signed_one_of_its_id,
    another_order_s_document_renamed_into_place,
    the_disclosed_findings_changed,
    the_disclosed_note_s_salt_changed,
    a_disclosed_finding_left_out,
    a_display_name_changed,
    a_party_left_out,
]


@pytest.mark.parametrize("tamper", TAMPER_CORPUS, ids=lambda f: f.__name__)
def test_each_tampered_bundle_fails_at_its_step_naming_item_and_event(
    exhibits: Exhibits, tmp_path: Path, tamper: Callable[[Exhibits, Path], Tampered]
) -> None:
    case = tamper(exhibits, tmp_path)

    verification = verify_bundle(
        case.bundle,
        [exhibits.key],
        artifact=case.artifact,
        known_checkpoint=case.known_checkpoint,
    )

    assert not verification.ok
    assert first_failure(verification) == (case.step, case.evidence_id, case.event_index)
    for step in verification.steps:
        if step.number < case.step:
            assert step.status != "fail", step


def test_a_failed_step_stops_the_steps_that_need_it_and_not_the_others(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    case = a_middle_event_dropped(exhibits, tmp_path)

    verification = verify_bundle(case.bundle, [exhibits.key])

    assert statuses(verification, exhibits.item) == {
        1: "pass",
        2: "pass",
        3: "pass",
        4: "fail",
        5: "skipped",
        6: "pass",
        7: "pass",
        8: "skipped",
        9: "skipped",
        10: "skipped",
        11: "pass",
    }
    five = next(step for step in verification.steps if step.number == 5)
    assert five.detail == "not run: it needs step 4, which did not pass"
    assert "could not be established" in verification.completeness_note


def test_a_key_found_only_in_the_bundle_is_never_trusted(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    case = a_checkpoint_forged_with_a_key_shipped_in_the_bundle(exhibits, tmp_path)

    verification = verify_bundle(case.bundle, [exhibits.key])

    one, two = verification.steps[:2]
    assert "keys/forger.vkey" in one.detail and "not read" in one.detail
    assert "signed only by keys you did not pin" in two.detail
    assert "never trusted" in two.detail
    assert verification.key_fingerprints == []  # no log, so no note of it is trusted
    six = next(step for step in verification.steps if step.number == 6)
    assert six.detail == "not run: it needs step 2, which did not pass"
    assert (verification.origin, verification.checkpoint_size) == ("", 0)


def test_a_bundle_of_several_items_names_the_one_at_fault(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    out = io.BytesIO()
    court = exhibits.deployment.principals.get("clerk").actor
    exhibits.deployment.bundles.export([exhibits.item, exhibits.response], out, by=court)
    index = indexes(out.getvalue(), exhibits.response, order=True)[0]
    name = event_name(exhibits.response, index)
    name = name.replace("/events/", "/order/events/")
    leaf = members(out.getvalue())[name]
    bad = rezip(
        out.getvalue(),
        tmp_path / "order-event-changed.zip",
        Rewrite(replace={name: leaf.replace(b'"v":1', b'"v":2')}),
    )

    verification = verify_bundle(bad, [exhibits.key])

    assert first_failure(verification) == (9, exhibits.response, index)
    assert statuses(verification, exhibits.item)[9] == "skipped"
    assert all(s.status != "fail" for s in verification.steps if s.evidence_id == exhibits.item)


def test_any_changed_byte_is_a_finding_and_never_a_crash(exhibits: Exhibits) -> None:
    rng = random.Random(5)
    found = members(exhibits.response_zip)
    names = sorted(set(found) - {"report.html"})  # the service's report proves nothing
    for _ in range(60):
        name = rng.choice(names)
        data = bytearray(found[name])
        at = rng.randrange(len(data))
        data[at] ^= rng.randrange(1, 256)
        changed = rezipped(exhibits.response_zip, Rewrite(replace={name: bytes(data)}))

        verification = verify_bundle(changed, [exhibits.key])

        # receipt.json is indented JSON: a space may turn into another whitespace
        assert not verification.ok or name.endswith("receipt.json"), (name, at)
        assert all(step.detail for step in verification.steps)


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "items/../../x", "C:/x", "items\\..\\x", "items//x", "./bundle.json", "a\x01b"],
)
def test_the_archive_refuses_names_that_could_point_outside_it(
    exhibits: Exhibits, tmp_path: Path, name: str
) -> None:
    path = rezip(exhibits.item_zip, tmp_path / "bad-name.zip", Rewrite(add=[(name, b"x")]))

    assert first_failure(verify_bundle(path, [exhibits.key]))[0] == 1


def test_the_archive_refuses_a_symbolic_link(exhibits: Exhibits, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("items/link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = rezip(exhibits.item_zip, tmp_path / "symlink.zip", Rewrite(add=[(link, b"/etc")]))

    verification = verify_bundle(path, [exhibits.key])

    assert first_failure(verification)[0] == 1
    assert "symbolic link" in verification.steps[0].detail


def test_the_archive_refuses_a_member_that_inflates_too_far(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    bomb = zipfile.ZipInfo("report.html")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    rewrite = Rewrite(drop=frozenset({"report.html"}), add=[(bomb, b"\0" * 10**6)])
    path = rezip(exhibits.item_zip, tmp_path / "bomb.zip", rewrite)

    verification = verify_bundle(path, [exhibits.key])

    assert first_failure(verification)[0] == 1
    assert "ZIP bomb" in verification.steps[0].detail


def test_a_file_that_is_not_a_zip_fails_step_one(exhibits: Exhibits) -> None:
    verification = verify_bundle(b"PK not really", [exhibits.key])

    assert first_failure(verification)[0] == 1
    later = [step.status for step in verification.steps[1:]]
    assert later == ["skipped"] * (len(BUNDLE_CHECKS) - 1)


def test_an_order_without_its_salt_is_refused_and_a_malformed_one_fails_step_nine(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    name = f"items/{exhibits.response}/order/salt"
    missing = rezip(
        exhibits.response_zip, tmp_path / "salt-missing.zip", Rewrite(drop=frozenset({name}))
    )
    upper = members(exhibits.response_zip)[name].upper()
    malformed = rezip(
        exhibits.response_zip, tmp_path / "salt-uppercase.zip", Rewrite(replace={name: upper})
    )

    refused, failed = (verify_bundle(path, [exhibits.key]) for path in (missing, malformed))

    assert first_failure(refused)[0] == 1
    assert "needs its document, its salt and its head" in refused.steps[0].detail
    assert first_failure(failed) == (9, exhibits.response, None)
    assert "order/salt is malformed" in failed.failed[0].detail


def test_a_receipt_of_another_item_fails_step_nine(exhibits: Exhibits, tmp_path: Path) -> None:
    dep = exhibits.deployment
    record = dep.evidence.get(exhibits.item)
    assert record is not None
    receipt = dep.intake.receipt(record, dep.ledger.entry(record.ledger_index))
    name = f"items/{exhibits.response}/receipt.json"
    path = rezip(
        exhibits.response_zip,
        tmp_path / "receipt-of-another.zip",
        Rewrite(replace={name: receipt.to_json()}),
    )

    verification = verify_bundle(path, [exhibits.key])

    assert first_failure(verification)[:2] == (9, exhibits.response)


# -- the command line ------------------------------------------------------------------------------


def test_the_command_exits_zero_for_a_sound_bundle_and_one_for_a_tampered_one(
    exhibits: Exhibits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.item_zip)
    tampered = a_middle_event_dropped(exhibits, tmp_path).bundle

    assert main([str(sound), "--key", exhibits.key]) == 0
    out = capsys.readouterr().out
    assert "(1) ok" in out and "VERIFIED" in out and "Completeness:" in out

    assert main(["bundle", str(tampered), "--key", exhibits.key]) == 1
    out = capsys.readouterr().out
    assert "(4) FAIL" in out and "(5) --" in out and "NOT VERIFIED" in out
    assert f"{exhibits.item} event" in out.splitlines()[-1]


def test_the_command_s_json_is_the_same_verification_as_data(
    exhibits: Exhibits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.response_zip)

    assert main([str(sound), "--key", exhibits.key, "--json"]) == 0

    printed = json.loads(capsys.readouterr().out)
    expected = verify_bundle(sound, [exhibits.key]).as_json()
    assert printed == {"procedure": "bundle", "file": str(sound), **expected}


def test_the_command_refuses_a_wrong_use_with_exit_two(
    exhibits: Exhibits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.item_zip)

    assert main([str(sound)]) == 2
    assert main([str(sound), "--key", "not-a-key"]) == 2
    assert main([str(tmp_path / "missing.zip"), "--key", exhibits.key]) == 2
    assert main([str(sound), "--key", exhibits.key, "--artifact", str(tmp_path / "no")]) == 2
    assert "--key" in capsys.readouterr().err


def test_the_command_writes_the_custody_report(exhibits: Exhibits, tmp_path: Path) -> None:
    sound, report = tmp_path / "exhibit.zip", tmp_path / "report.html"
    sound.write_bytes(exhibits.item_zip)

    assert main([str(sound), "--key", exhibits.key, "--report", str(report)]) == 0

    html = report.read_text("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert exhibits.item in html


def test_the_command_says_so_when_the_report_module_is_missing(
    exhibits: Exhibits,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.item_zip)
    monkeypatch.setitem(sys.modules, "custody.verify.report", None)  # as if not shipped

    assert main([str(sound), "--key", exhibits.key, "--report", str(tmp_path / "r.html")]) == 2
    assert "custody.verify.report" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_custos_verify_runs_the_exhibit_procedure(exhibits: Exhibits, tmp_path: Path) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.item_zip)
    tampered = the_manifest_edited(exhibits, tmp_path).bundle

    result = CliRunner().invoke(custos, ["verify", str(sound), "--key", exhibits.key, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True

    result = CliRunner().invoke(custos, ["verify", str(tampered), "--key", exhibits.key])
    assert result.exit_code == 1
    assert "(6) FAIL" in result.output


# -- one log per bundle ----------------------------------------------------------------------------

OTHER_LOG = "custos.other-agency.example/log"


@pytest.fixture(scope="module")
def other_log() -> NoteSigner:
    """The key of another deployment, which the court pinned too (two agencies, one case)."""
    return NoteSigner(OTHER_LOG, Ed25519PrivateKey.generate())


def resigned(note: bytes, *signers: NoteSigner) -> bytes:
    """The note's text signed by ``signers`` only."""
    return sign_note(Note.from_bytes(note).text, list(signers))


def head_text(subject: str, events: list[bytes], checkpoint: Checkpoint, last: int) -> str:
    body = {
        "checkpoint_root": base64.b64encode(checkpoint.root).decode(),
        "count": len(events),
        "last_index": last,
        "last_leaf_hash": merkle.leaf_hash(events[-1]).hex(),
        "subject": subject,
        "tree_size": checkpoint.size,
    }
    return f"custos/head/v1\n{json.dumps(body, sort_keys=True, separators=(',', ':'))}\n"


def test_a_head_statement_signed_by_another_log_s_pinned_key_fails_naming_the_signer(
    exhibits: Exhibits, other_log: NoteSigner, tmp_path: Path
) -> None:
    # The other deployment's operator vouches for this log's item, with its last event left out.
    found = members(exhibits.item_zip)
    events = indexes(exhibits.item_zip, exhibits.item)
    last = events[-1]
    kept = [found[event_name(exhibits.item, i)] for i in events[:-1]]
    text = head_text(
        f"evidence:{exhibits.item}", kept, checkpoint_of(found["checkpoint"]), events[-2]
    )
    path = rezip(
        exhibits.item_zip,
        tmp_path / "head-of-another-log.zip",
        Rewrite(
            replace={f"items/{exhibits.item}/head": sign_note(text, [other_log])},
            drop=frozenset(
                {event_name(exhibits.item, last), event_name(exhibits.item, last, "proofs")}
            ),
        ),
    )
    other_key = other_log.verifier.verifier_key()

    verification = verify_bundle(path, [exhibits.key, other_key])

    assert first_failure(verification)[:2] == (5, exhibits.item)
    five = verification.failed[0].detail
    assert fingerprint(other_key) in five and "another log" in five
    assert fingerprint(other_key) not in verification.key_fingerprints


def test_a_manifest_signed_by_another_log_s_pinned_key_fails_step_six_naming_the_signer(
    exhibits: Exhibits, other_log: NoteSigner, tmp_path: Path
) -> None:
    name = f"items/{exhibits.item}/manifest"
    forged = resigned(members(exhibits.item_zip)[name], other_log)
    path = rezip(
        exhibits.item_zip, tmp_path / "manifest-of-another-log.zip", Rewrite(replace={name: forged})
    )
    other_key = other_log.verifier.verifier_key()

    verification = verify_bundle(path, [exhibits.key, other_key])

    assert first_failure(verification)[:2] == (6, exhibits.item)
    assert fingerprint(other_key) in verification.failed[0].detail
    assert "another log" in verification.failed[0].detail


def test_an_order_document_signed_by_another_log_s_pinned_key_fails_step_nine(
    exhibits: Exhibits, other_log: NoteSigner, tmp_path: Path
) -> None:
    name = order_member(exhibits, "document")
    forged = resigned(members(exhibits.response_zip)[name], other_log)  # the same text
    path = rezip(
        exhibits.response_zip,
        tmp_path / "order-of-another-log.zip",
        Rewrite(replace={name: forged}),
    )
    other_key = other_log.verifier.verifier_key()

    verification = verify_bundle(path, [exhibits.key, other_key])

    assert first_failure(verification)[:2] == (9, exhibits.response)
    assert fingerprint(other_key) in verification.failed[0].detail


def test_another_log_s_signatures_beside_this_log_s_are_ignored(
    exhibits: Exhibits, other_log: NoteSigner, tmp_path: Path
) -> None:
    # Every note of the bundle signed by both logs' keys: it verifies, on this log's alone.
    found = members(exhibits.response_zip)
    signer = exhibits.deployment.keys.current.signer
    both = {
        name: resigned(found[name], signer, other_log)
        for name in found
        if name.endswith(("/head", "/manifest", "/order/document"))
    }
    checkpoint = resigned(found["checkpoint"], signer, other_log)
    for name, data in found.items():
        if "/proofs/" in name:
            both[name] = data.replace(found["checkpoint"], checkpoint)
    path = rezip(
        exhibits.response_zip,
        tmp_path / "signed-by-both-logs.zip",
        Rewrite(replace={"checkpoint": checkpoint, **both}),
    )
    other_key = other_log.verifier.verifier_key()

    verification = verify_bundle(path, [exhibits.key, other_key])

    assert [s.number for s in verification.failed] == [6]  # the manifest's bytes are committed
    assert verification.key_fingerprints == [fingerprint(exhibits.key)]
    assert all(fingerprint(other_key) not in s.detail for s in verification.steps if s.number != 6)


def test_a_checkpoint_of_a_log_whose_key_was_not_pinned_fails_naming_its_signer(
    exhibits: Exhibits, other_log: NoteSigner
) -> None:
    found = members(exhibits.item_zip)
    genuine = checkpoint_of(found["checkpoint"])
    # Signed by this log's pinned key, but naming the other log as its origin.
    spoof = sign_checkpoint(
        Checkpoint(OTHER_LOG, genuine.size, genuine.root),
        [exhibits.deployment.keys.current.signer],
    )

    verification = verify_bundle(
        rezipped(exhibits.item_zip, Rewrite(replace={"checkpoint": spoof})), [exhibits.key]
    )

    assert first_failure(verification)[0] == 2
    assert "pinned no key of that log" in verification.failed[0].detail


# -- strict archives: one reading for every reader -------------------------------------------------


def step_one(verification: ExhibitVerification) -> str:
    assert first_failure(verification)[0] == 1
    return verification.steps[0].detail


def test_a_forged_bundle_with_the_genuine_one_appended_is_refused(exhibits: Exhibits) -> None:
    # A reader that walks local headers from the start sees the forgery; one that starts from
    # the end record sees the genuine bundle. Neither reading is taken.
    forged = the_manifest_edited_bytes(exhibits)

    detail = step_one(verify_bundle(forged + exhibits.item_zip, [exhibits.key]))

    assert "before the first local header" in detail


def the_manifest_edited_bytes(x: Exhibits) -> bytes:
    name = f"items/{x.item}/manifest"
    edited = members(x.item_zip)[name].replace(b'"exhibit":"HD-1"', b'"exhibit":"HD-9"')
    return rezipped(x.item_zip, Rewrite(replace={name: edited}))


def test_bytes_after_the_end_record_are_refused(exhibits: Exhibits) -> None:
    detail = step_one(verify_bundle(exhibits.item_zip + b"trailing bytes", [exhibits.key]))

    assert "bytes after it" in detail


def test_a_local_header_that_disagrees_with_its_central_entry_is_refused(
    exhibits: Exhibits,
) -> None:
    data = bytearray(exhibits.item_zip)
    with zipfile.ZipFile(io.BytesIO(exhibits.item_zip)) as archive:
        info = archive.getinfo(f"items/{exhibits.item}/manifest")
    crc_at = info.header_offset + 14  # the local header's CRC-32
    data[crc_at] ^= 0xFF

    detail = step_one(verify_bundle(bytes(data), [exhibits.key]))

    assert f"items/{exhibits.item}/manifest" in detail and "disagree" in detail


def test_a_member_outside_the_central_directory_is_refused(exhibits: Exhibits) -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(exhibits.item_zip)) as source,
        zipfile.ZipFile(out, "w") as target,
    ):
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("items/hidden", b"a member only a front-to-back reader sees")
        hidden = target.filelist.pop()  # its local header stays; its directory entry goes
        del target.NameToInfo[hidden.filename]

    detail = step_one(verify_bundle(out.getvalue(), [exhibits.key]))

    assert "between the last member and the central directory" in detail


def test_overlapping_members_are_refused(exhibits: Exhibits) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as tiny:
        tiny.writestr("extra/inner", b"bytes that two members claim")
        inner_info = tiny.getinfo("extra/inner")
    record = inner.getvalue()[: inner_info.header_offset + 30 + len("extra/inner") + 28]
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(exhibits.item_zip)) as source,
        zipfile.ZipFile(out, "w") as target,
    ):
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("extra/outer", record)  # stored: the inner record lies in its bytes
        outer = target.getinfo("extra/outer")
        inner_info.header_offset = outer.header_offset + 30 + len("extra/outer")
        target.filelist.append(inner_info)

    detail = step_one(verify_bundle(out.getvalue(), [exhibits.key]))

    assert "overlap" in detail


def test_a_huge_central_directory_is_refused_before_it_is_read(tmp_path: Path) -> None:
    size = bundle_archive.MAX_DIRECTORY_BYTES + 1
    path = tmp_path / "huge-directory.zip"
    with path.open("wb") as file:
        file.truncate(size)  # sparse: the directory's bytes are never written, nor read
        file.seek(size)
        file.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 10, 10, size, 0, 0))

    key = NoteSigner("k.example", Ed25519PrivateKey.generate()).verifier.verifier_key()
    detail = step_one(verify_bundle(path, [key]))

    assert "refused before it is read" in detail


def test_content_for_a_physical_item_fails_step_seven(exhibits: Exhibits, tmp_path: Path) -> None:
    found = members(exhibits.physical_zip)
    index = json.loads(found["bundle.json"])
    (physical,) = index["items"]
    index["with_content"] = True
    path = rezip(
        exhibits.physical_zip,
        tmp_path / "physical-with-content.zip",
        Rewrite(
            replace={"bundle.json": json.dumps(index).encode()},
            add=[(f"items/{physical}/content", b"bytes passed off as the phone")],
        ),
    )

    verification = verify_bundle(path, [exhibits.key])

    assert first_failure(verification)[:2] == (7, physical)
    assert "physical" in verification.failed[0].detail


def test_a_manifest_whose_seizure_is_not_the_registered_one_fails_step_six(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    found = members(exhibits.physical_zip)
    (physical,) = json.loads(found["bundle.json"])["items"]
    name = f"items/{physical}/manifest"
    kind, body, _ = Note.from_bytes(found[name]).text.split("\n")
    manifest = json.loads(body)
    manifest["seizure"] = {**manifest["seizure"], "location": "somewhere else"}
    text = f"{kind}\n{json.dumps(manifest, sort_keys=True, separators=(',', ':'))}\n"
    forged = sign_note(text, [exhibits.deployment.keys.current.signer])  # as the service would
    path = rezip(exhibits.physical_zip, tmp_path / "seizure.zip", Rewrite(replace={name: forged}))

    verification = verify_bundle(path, [exhibits.key])

    assert first_failure(verification)[:2] == (6, physical)
    assert "seizure" in verification.failed[0].detail


def test_every_artifact_given_is_checked_against_its_item(
    exhibits: Exhibits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sound = tmp_path / "exhibit.zip"
    sound.write_bytes(exhibits.item_zip)
    genuine, other = tmp_path / "genuine.img", tmp_path / "other.img"
    genuine.write_bytes(CONTENT)
    other.write_bytes(CONTENT[:-1] + b"!")

    status = main(
        [str(sound), "--key", exhibits.key, "--artifact", str(other), "--artifact", str(genuine)]
    )

    assert status == 1
    out = capsys.readouterr().out
    assert "(7) FAIL" in out and "other.img" in out


def test_an_artifact_that_matches_no_item_fails_step_seven(
    exhibits: Exhibits, tmp_path: Path
) -> None:
    out = io.BytesIO()
    court = exhibits.deployment.principals.get("clerk").actor
    exhibits.deployment.bundles.export([exhibits.item, exhibits.response], out, by=court)
    genuine, stray = tmp_path / "genuine.img", tmp_path / "stray.img"
    genuine.write_bytes(CONTENT)
    stray.write_bytes(b"nobody's evidence")

    verification = verify_bundle(out.getvalue(), [exhibits.key], artifact=[genuine, stray])

    failed = [(s.number, s.evidence_id) for s in verification.failed]
    assert failed == [(7, None)]
    assert "stray.img" in verification.failed[0].detail
    item_seven = next(
        s for s in verification.steps if s.number == 7 and s.evidence_id == exhibits.item
    )
    assert "genuine.img" in item_seven.detail


# -- key history -----------------------------------------------------------------------------------


@dataclass
class Rotated:
    """A deployment that rotated its key once, between two items' intakes."""

    deployment: Deployment
    old: NoteSigner
    keys: list[str]
    """Both verifier keys, as a court pins them."""
    rotated_at: int
    before: str
    after: str
    bundle: bytes
    """Both items' bundle, exported after the rotation."""


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotated]:
    tmp = tmp_path_factory.mktemp("rotated")
    config = make_config(tmp, f"sqlite:///{tmp / 'home' / 'custos.db'}")
    initialise(config).deployment.close()
    dep = open_deployment(config)
    operator = dep.principals.get("operator").actor
    examiner = dep.principals.add("alice", "examiner", operator)[0].actor
    court = dep.principals.add("clerk", "court", operator)[0].actor
    in_case(dep, "C-2", "alice", "clerk")

    def ingest(exhibit: str) -> str:
        metadata = {"kind": "digital", "case": "C-2", "exhibit": exhibit, "description": "disk"}
        item = dep.intake.open_session(metadata, examiner).id
        dep.intake.receive(item, io.BytesIO(CONTENT + exhibit.encode()), examiner)
        return item

    before = ingest("HD-1")
    old = dep.keys.current.signer
    old_key, new_key, index = rotate_key(dep, operator)
    dep.close()
    dep = open_deployment(config)  # the new ring
    after = ingest("HD-2")
    dep.handling.record_act(after, "evidence.sealed", {"seal": "S-7"}, examiner)
    out = io.BytesIO()
    dep.bundles.export([before, after], out, by=court)
    yield Rotated(dep, old, [old_key, new_key], index, before, after, out.getvalue())
    dep.close()


def test_a_bundle_across_a_rotation_verifies_with_both_keys_pinned(rotated: Rotated) -> None:
    verification = verify_bundle(rotated.bundle, rotated.keys)

    assert verification.ok, [s.detail for s in verification.failed]
    two = verification.steps[1].detail
    assert f"1 rotation (last at index {rotated.rotated_at})" in two
    assert f"retired at index {rotated.rotated_at}" in two


def test_a_head_statement_signed_by_a_retired_key_fails_step_five(
    rotated: Rotated, tmp_path: Path
) -> None:
    # Whoever holds the retired key vouches that the item's last event never happened.
    found = members(rotated.bundle)
    events = indexes(rotated.bundle, rotated.after)
    kept = [found[event_name(rotated.after, i)] for i in events[:-1]]
    text = head_text(
        f"evidence:{rotated.after}", kept, checkpoint_of(found["checkpoint"]), events[-2]
    )
    dropped = {
        event_name(rotated.after, events[-1]),
        event_name(rotated.after, events[-1], "proofs"),
    }
    path = rezip(
        rotated.bundle,
        tmp_path / "head-by-retired-key.zip",
        Rewrite(
            replace={f"items/{rotated.after}/head": sign_note(text, [rotated.old])},
            drop=frozenset(dropped),
        ),
    )

    verification = verify_bundle(path, rotated.keys)

    assert first_failure(verification)[:2] == (5, rotated.after)
    assert f"retired at index {rotated.rotated_at}" in verification.failed[0].detail


def test_a_checkpoint_signed_only_by_a_retired_key_fails_step_two(
    rotated: Rotated, tmp_path: Path
) -> None:
    found = members(rotated.bundle)
    genuine = found["checkpoint"]
    forged = resigned(genuine, rotated.old)
    replace = {n: d.replace(genuine, forged) for n, d in found.items() if "/proofs/" in n}
    path = rezip(
        rotated.bundle,
        tmp_path / "checkpoint-by-retired-key.zip",
        Rewrite(replace={"checkpoint": forged, **replace}),
    )

    verification = verify_bundle(path, rotated.keys)

    assert first_failure(verification)[0] == 2
    assert f"retired at index {rotated.rotated_at}" in verification.failed[0].detail


def test_a_bundle_that_omits_a_rotation_fails_step_two(rotated: Rotated, tmp_path: Path) -> None:
    name = f"log/key/events/{rotated.rotated_at:020d}"
    proof = f"log/key/proofs/{rotated.rotated_at:020d}"
    assert name in members(rotated.bundle)
    path = rezip(
        rotated.bundle, tmp_path / "rotation-left-out.zip", Rewrite(drop=frozenset({name, proof}))
    )

    verification = verify_bundle(path, rotated.keys)

    assert first_failure(verification)[0] == 2
    assert "key history" in verification.failed[0].detail


def test_a_bundle_without_the_key_history_is_refused(rotated: Rotated) -> None:
    history = frozenset(n for n in members(rotated.bundle) if n.startswith("log/key/"))

    verification = verify_bundle(rezipped(rotated.bundle, Rewrite(drop=history)), rotated.keys)

    assert first_failure(verification)[0] == 1
    assert "log/key/head is missing" in verification.steps[0].detail


def as_version(bundle: bytes, version: int, drop: frozenset[str] = frozenset()) -> bytes:
    """The bundle as an older format wrote it: bundle.json naming custos/exhibit/v<version>
    without ``disclosed``, and without the disclosures and parties v3 added, less ``drop``."""
    found = members(bundle)
    index = json.loads(found["bundle.json"])
    index["format"] = f"custos/exhibit/v{version}"
    del index["disclosed"]
    added = frozenset(n for n in found if n.startswith("parties/") or "/disclosed/" in n)
    return rezipped(
        bundle,
        Rewrite(replace={"bundle.json": canonical_json(index)}, drop=drop | added),
    )


def as_version_1(bundle: bytes, drop: frozenset[str] = frozenset()) -> bytes:
    return as_version(bundle, 1, drop)


def test_a_version_1_bundle_without_the_key_history_verifies_and_says_so(
    rotated: Rotated,
) -> None:
    history = frozenset(n for n in members(rotated.bundle) if n.startswith("log/key/"))

    verification = verify_bundle(as_version_1(rotated.bundle, history), rotated.keys)

    assert verification.ok, verification.failed
    assert "carries no key history" in verification.steps[1].detail


def test_a_version_1_bundle_that_carries_a_key_history_is_refused(rotated: Rotated) -> None:
    verification = verify_bundle(as_version_1(rotated.bundle), rotated.keys)

    assert first_failure(verification)[0] == 1
    assert "carries no log/key/" in verification.steps[0].detail


# -- witnesses -------------------------------------------------------------------------------------


def with_checkpoint(bundle: bytes, checkpoint: bytes) -> dict[str, bytes]:
    """The members to replace so that ``checkpoint`` is the bundle's, in every proof too."""
    found = members(bundle)
    old = found["checkpoint"]
    replaced = {n: d.replace(old, checkpoint) for n, d in found.items() if "/proofs/" in n}
    return {"checkpoint": checkpoint, **replaced}


def cosigned(bundle: bytes, witness: Witness) -> bytes:
    """The bundle with the witness's cosignature on its checkpoint (first sight: old 0)."""
    note = members(bundle)["checkpoint"]
    answer = witness.add_checkpoint(b"old 0\n\n" + note)
    assert answer.status == 200, answer.body
    return rezipped(bundle, Rewrite(replace=with_checkpoint(bundle, note + answer.body)))


def forked(x: Exhibits, bundle: bytes) -> tuple[bytes, bytes]:
    """The same item's bundle in another history of the same size, as the operator (who holds
    the log's key) would show it to another party: one entry that is no event of the bundle is
    rewritten, and every proof, head statement and the checkpoint made to match. Returns the
    bundle and its checkpoint."""
    found = members(bundle)
    genuine = checkpoint_of(found["checkpoint"])
    ledger, signer = x.deployment.ledger, x.deployment.keys.current.signer
    held = {int(m[4]) for n in found if (m := INDEXED.fullmatch(n))}
    victim = next(i for i in range(genuine.size) if i not in held)
    hashes = [merkle.leaf_hash(ledger.entry(i)) for i in range(genuine.size)]
    hashes[victim] = merkle.leaf_hash(b"the entry the other party is shown")
    root = merkle.root_from_leaf_hashes(hashes)
    note = sign_checkpoint(Checkpoint(genuine.origin, genuine.size, root), [signer])
    replace: dict[str, bytes] = {"checkpoint": note}
    for name, data in found.items():
        if "/proofs/" in name:
            index = int(name.rsplit("/", 1)[1])
            ranges = merkle.inclusion_proof_ranges(index, genuine.size)
            lines = "".join(
                base64.b64encode(merkle.root_from_leaf_hashes(hashes[lo:hi])).decode() + "\n"
                for lo, hi in ranges
            )
            replace[name] = f"c2sp.org/tlog-proof@v1\nindex {index}\n{lines}\n".encode() + note
        elif name.endswith("/head"):
            kind, body, _ = Note.from_bytes(data).text.split("\n")
            statement = json.loads(body)
            statement["checkpoint_root"] = base64.b64encode(root).decode()
            text = f"{kind}\n{json.dumps(statement, sort_keys=True, separators=(',', ':'))}\n"
            replace[name] = sign_note(text, [signer])
    index = json.loads(found["bundle.json"])
    index["checkpoint"]["root"] = base64.b64encode(root).decode()
    replace["bundle.json"] = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    return rezipped(bundle, Rewrite(replace=replace)), note


@pytest.fixture
def bar_witness(tmp_path: Path, exhibits: Exhibits) -> Witness:
    signer = CosignatureSigner("witness.bar.example", Ed25519PrivateKey.generate())
    origin = exhibits.deployment.keys.origin
    verifier = exhibits.deployment.keys.current.signer.verifier
    return Witness(signer, {origin: [verifier]}, tmp_path / "witness", clock=lambda: WITNESSED)


WITNESSED = 1_900_000_000


def test_a_split_view_passes_without_witnesses_and_fails_with_the_one_that_saw_the_other(
    exhibits: Exhibits, bar_witness: Witness
) -> None:
    shown_to_the_witness = cosigned(exhibits.item_zip, bar_witness)
    shown_to_the_court, fork = forked(exhibits, exhibits.item_zip)
    refused = bar_witness.add_checkpoint(f"old {checkpoint_of(fork).size}\n\n".encode() + fork)
    pinned = [bar_witness.signer.verifier.verifier_key()]

    unwitnessed = verify_bundle(shown_to_the_court, [exhibits.key])
    witnessed = verify_bundle(
        shown_to_the_court, [exhibits.key], witnesses=pinned, min_witnesses=1, now=WITNESSED
    )
    genuine = verify_bundle(
        shown_to_the_witness, [exhibits.key], witnesses=pinned, min_witnesses=1, now=WITNESSED
    )

    assert refused.status == 409  # the witness cosigns at most one history of a size
    assert unwitnessed.ok  # the operator's own signatures cannot tell the two apart
    assert first_failure(witnessed) == (8, None, None)
    assert "cosigned by 0 of the witnesses you pinned" in witnessed.failed[0].detail
    assert genuine.ok, [s.detail for s in genuine.failed]
    eight = next(s for s in genuine.steps if s.number == 8)
    assert "cosigned by 1 pinned witness" in eight.detail and "2030-" in eight.detail


def test_fewer_distinct_pinned_cosigners_than_asked_fails_step_eight(
    exhibits: Exhibits, bar_witness: Witness, tmp_path: Path
) -> None:
    bundle = cosigned(exhibits.item_zip, bar_witness)
    other = CosignatureSigner("witness.court.example", Ed25519PrivateKey.generate())
    pinned = [bar_witness.signer.verifier.verifier_key(), other.verifier.verifier_key()]

    verification = verify_bundle(
        bundle, [exhibits.key], witnesses=pinned, min_witnesses=2, now=WITNESSED
    )

    assert first_failure(verification) == (8, None, None)
    assert "fewer than the 2 you asked for" in verification.failed[0].detail


def test_a_stale_cosignature_fails_max_age(exhibits: Exhibits, bar_witness: Witness) -> None:
    bundle = cosigned(exhibits.item_zip, bar_witness)
    pinned = [bar_witness.signer.verifier.verifier_key()]

    fresh = verify_bundle(
        bundle, [exhibits.key], witnesses=pinned, max_age=3600, now=WITNESSED + 60
    )
    stale = verify_bundle(
        bundle, [exhibits.key], witnesses=pinned, max_age=3600, now=WITNESSED + 7200
    )
    unwitnessed = verify_bundle(exhibits.item_zip, [exhibits.key], max_age=3600)

    assert fresh.ok
    assert first_failure(stale) == (8, None, None) and "7200 s old" in stale.failed[0].detail
    assert first_failure(unwitnessed) == (8, None, None)


def test_the_command_takes_witness_keys_and_a_count(
    exhibits: Exhibits, bar_witness: Witness, tmp_path: Path
) -> None:
    bundle = cosigned(exhibits.item_zip, bar_witness)
    path = tmp_path / "cosigned.zip"
    path.write_bytes(bundle)
    witness_key = bar_witness.signer.verifier.verifier_key()

    counted = main([str(path), "--key", exhibits.key, "--witness", witness_key, "--witnesses", "1"])
    too_many = main(
        [str(path), "--key", exhibits.key, "--witness", witness_key, "--witnesses", "2"]
    )

    assert counted == 0
    assert too_many == 2  # a wrong use: more witnesses asked for than pinned
