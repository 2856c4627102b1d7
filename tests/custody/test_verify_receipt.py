"""Tests of custody.verify.receipt and ``python -m custody.verify receipt``: real keys, a real
Merkle tree built with custody.merkle and a real signed checkpoint, then one attack per test."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.merkle import (
    NodeId,
    append_leaves,
    hashes_for_ranges,
    inclusion_proof_ranges,
    leaf_hash,
)
from custody.note import NoteSigner, sign_note
from custody.receipt import Receipt, ReceiptBundle, sign_receipt
from custody.verify import RECEIPT_CHECKS, ReceiptReport, VerificationError, verify_receipt
from custody.verify.__main__ import main, verify_command

ORIGIN = "test.example/log"
LOG = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
IMPOSTOR = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())  # same name, key nobody pinned
OTHER_LOG = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
KEY = LOG.verifier.verifier_key()

EVIDENCE_ID = "ev_0123456789abcdef"
TIME = "2026-11-28T12:00:00.000000Z"
DIGESTS = {"md5": "0" * 32, "sha256": "a" * 64}
RECEIPT_INDEX = 5
TREE_SIZE = 11


def ingest_event(
    evidence_id: str = EVIDENCE_ID,
    *,
    event_type: str = "evidence.ingested",
    size: Any = 123,
    digests: Mapping[str, str] = DIGESTS,
    time: str = TIME,
    v: Any = 1,
) -> bytes:
    """Return the canonical (RFC 8785) leaf of an ingest event."""
    event = {
        "actor": {"id": "pr_ab12", "role": "examiner"},
        "data": {
            "case": "C-1",
            "digests": dict(digests),
            "exhibit": "E1",
            "kind": "digital",
            "manifest": "b" * 64,
            "parent": None,
            "size": size,
            "storage": {"key": "blobs/sha256/" + DIGESTS["sha256"], "version": None},
        },
        "prev": None,
        "subject": {"id": evidence_id, "kind": "evidence"},
        "time": time,
        "type": event_type,
        "v": v,
    }
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")


def filler_event(i: int) -> bytes:
    """Return the leaf of some other act recorded in the ledger."""
    event = {
        "actor": {"id": "custos", "role": "system"},
        "data": {"name": f"user{i}"},
        "prev": None,
        "subject": {"id": f"pr_{i:04d}", "kind": "principal"},
        "time": TIME,
        "type": "principal.created",
        "v": 1,
    }
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")


class Tree:
    """A small RFC 6962 tree over given leaves, built and proven with custody.merkle."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        nodes, _ = append_leaves([], 0, [leaf_hash(leaf) for leaf in self.leaves])
        self.nodes = dict(nodes)

    def _lookup(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return {i: self.nodes[i] for i in ids}

    def root(self) -> bytes:
        return hashes_for_ranges([(0, len(self.leaves))], self._lookup)[0]

    def proof(self, index: int) -> tuple[bytes, ...]:
        ranges = inclusion_proof_ranges(index, len(self.leaves))
        return tuple(hashes_for_ranges(ranges, self._lookup))


def leaves_with(leaf: bytes, index: int = RECEIPT_INDEX, size: int = TREE_SIZE) -> list[bytes]:
    return [leaf if i == index else filler_event(i) for i in range(size)]


def receipt_for(leaf: bytes, index: int = RECEIPT_INDEX, **changes: Any) -> Receipt:
    """Return the receipt the service would issue for an ingest leaf, with optional changes."""
    event = json.loads(leaf)
    fields: dict[str, Any] = {
        "evidence_id": event["subject"]["id"],
        "size": event["data"]["size"],
        "digests": event["data"]["digests"],
        "received_at": event["time"],
        "ledger_index": index,
        "leaf_hash": leaf_hash(leaf),
    }
    fields.update(changes)
    return Receipt(**fields)


def make_bundle(
    leaf: bytes | None = None,
    *,
    receipt: Receipt | None = None,
    receipt_signers: Sequence[NoteSigner] = (LOG,),
    checkpoint_signers: Sequence[NoteSigner] = (LOG,),
    origin: str = ORIGIN,
) -> ReceiptBundle:
    """Return a true receipt bundle for ``leaf`` at RECEIPT_INDEX of a tree of TREE_SIZE."""
    leaf = ingest_event() if leaf is None else leaf
    tree = Tree(leaves_with(leaf))
    checkpoint = Checkpoint(origin=origin, size=TREE_SIZE, root=tree.root())
    return ReceiptBundle(
        receipt=sign_receipt(receipt or receipt_for(leaf), receipt_signers),
        checkpoint=sign_checkpoint(checkpoint, checkpoint_signers),
        leaf=leaf,
        index=RECEIPT_INDEX,
        tree_size=TREE_SIZE,
        proof=tree.proof(RECEIPT_INDEX),
    )


def failed_step(bundle: ReceiptBundle | bytes, keys: Sequence[str] = (KEY,)) -> int:
    data = bundle.to_json() if isinstance(bundle, ReceiptBundle) else bundle
    with pytest.raises(VerificationError) as info:
        verify_receipt(data, keys)
    assert info.value.message  # a reason a person can act on
    return info.value.step


def edited(bundle: ReceiptBundle, edit: Any) -> bytes:
    """Return the bundle file after ``edit(obj)`` changed its parsed JSON in place."""
    obj = json.loads(bundle.to_json())
    edit(obj)
    return json.dumps(obj).encode("utf-8")


# --- a true receipt ------------------------------------------------------------------------


def test_valid_receipt_verifies_and_reports_what_it_proves() -> None:
    report = verify_receipt(make_bundle().to_json(), [KEY])
    assert report == ReceiptReport(
        evidence_id=EVIDENCE_ID,
        size=123,
        digests=DIGESTS,
        received_at=TIME,
        ledger_index=RECEIPT_INDEX,
        tree_size=TREE_SIZE,
        root=Tree(leaves_with(ingest_event())).root(),
        log=ORIGIN,
        receipt_signed_by=(f"{ORIGIN}+{LOG.key_hash.hex()}",),
        checkpoint_signed_by=(f"{ORIGIN}+{LOG.key_hash.hex()}",),
    )
    assert KEY.startswith(report.receipt_signed_by[0] + "+")


@pytest.mark.parametrize("index", [0, 1, 7, 10])
def test_receipt_verifies_at_every_position_of_the_tree(index: int) -> None:
    leaf = ingest_event()
    tree = Tree(leaves_with(leaf, index))
    bundle = ReceiptBundle(
        receipt=sign_receipt(receipt_for(leaf, index), [LOG]),
        checkpoint=sign_checkpoint(Checkpoint(ORIGIN, TREE_SIZE, tree.root()), [LOG]),
        leaf=leaf,
        index=index,
        tree_size=TREE_SIZE,
        proof=tree.proof(index),
    )
    assert verify_receipt(bundle.to_json(), [KEY]).ledger_index == index


def test_receipt_in_a_one_entry_log_verifies_with_an_empty_proof() -> None:
    leaf = ingest_event()
    bundle = ReceiptBundle(
        receipt=sign_receipt(receipt_for(leaf, 0), [LOG]),
        checkpoint=sign_checkpoint(Checkpoint(ORIGIN, 1, leaf_hash(leaf)), [LOG]),
        leaf=leaf,
        index=0,
        tree_size=1,
        proof=(),
    )
    assert verify_receipt(bundle.to_json(), [KEY]).tree_size == 1


def test_receipt_verifies_when_its_key_is_one_of_several_pinned() -> None:
    keys = [OTHER_LOG.verifier.verifier_key(), KEY]
    assert verify_receipt(make_bundle().to_json(), keys).log == ORIGIN


def test_receipt_signed_across_a_rotation_verifies_under_either_pinned_key() -> None:
    bundle = make_bundle(receipt_signers=[IMPOSTOR, LOG], checkpoint_signers=[IMPOSTOR, LOG])
    old_only = verify_receipt(bundle.to_json(), [KEY])
    new_only = verify_receipt(bundle.to_json(), [IMPOSTOR.verifier.verifier_key()])
    assert old_only.receipt_signed_by == (f"{ORIGIN}+{LOG.key_hash.hex()}",)
    assert new_only.receipt_signed_by == (f"{ORIGIN}+{IMPOSTOR.key_hash.hex()}",)


def test_verification_error_names_its_step_and_reason() -> None:
    err = VerificationError(4, "the leaf was altered")
    assert (err.step, err.message) == (4, "the leaf was altered")
    assert str(err) == "check (4) failed: the leaf was altered"


def test_checklist_has_the_six_documented_checks_in_order() -> None:
    assert len(RECEIPT_CHECKS) == 6
    assert "well-formed receipt bundle" in RECEIPT_CHECKS[0]
    assert "custos/receipt/v1" in RECEIPT_CHECKS[1]
    assert "checkpoint" in RECEIPT_CHECKS[2]
    assert "tree" in RECEIPT_CHECKS[3]
    assert "evidence.ingested" in RECEIPT_CHECKS[4]
    assert "artifact" in RECEIPT_CHECKS[5]


def test_verify_receipt_source_tags_each_check_with_its_number() -> None:
    source = Path(verify_receipt.__code__.co_filename).read_text(encoding="utf-8")
    for n in range(1, 7):
        assert f"    # ({n}): " in source


# --- (1) the file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b"\xff\xfe{}", b'{"format": "custos/receipt-bundle/v1"}'],
    ids=["empty", "not-json", "array", "not-utf8", "members-missing"],
)
def test_file_that_is_not_a_receipt_bundle_fails_check_1(data: bytes) -> None:
    assert failed_step(data) == 1


def test_bundle_of_another_format_fails_check_1() -> None:
    data = edited(make_bundle(), lambda o: o.update(format="custos/exhibit-bundle/v1"))
    assert failed_step(data) == 1


# --- (2) the receipt -------------------------------------------------------------------------


def test_receipt_signed_by_a_key_that_was_not_pinned_fails_check_2() -> None:
    bundle = make_bundle(receipt_signers=[IMPOSTOR], checkpoint_signers=[IMPOSTOR])
    assert failed_step(bundle) == 2


def test_pinning_the_wrong_key_fails_check_2() -> None:
    assert failed_step(make_bundle(), [OTHER_LOG.verifier.verifier_key()]) == 2


def test_receipt_text_changed_after_signing_fails_check_2() -> None:
    bundle = make_bundle()
    forged = bundle.receipt.replace(b"\nsize 123\n", b"\nsize 124\n")
    assert forged != bundle.receipt
    with pytest.raises(VerificationError, match="it was altered") as info:
        verify_receipt(dataclasses.replace(bundle, receipt=forged).to_json(), [KEY])
    assert info.value.step == 2


def test_checkpoint_in_the_receipt_slot_fails_check_2() -> None:
    bundle = make_bundle()
    assert failed_step(dataclasses.replace(bundle, receipt=bundle.checkpoint)) == 2


def test_note_of_another_type_signed_by_the_pinned_key_fails_check_2() -> None:
    manifest = sign_note("custos/manifest/v1\nid ev_0123456789abcdef\n", [LOG])
    with pytest.raises(VerificationError, match="custos/receipt/v1") as info:
        verify_receipt(dataclasses.replace(make_bundle(), receipt=manifest).to_json(), [KEY])
    assert info.value.step == 2


# --- (3) the checkpoint ----------------------------------------------------------------------


def test_checkpoint_from_another_key_fails_check_3() -> None:
    assert failed_step(make_bundle(checkpoint_signers=[IMPOSTOR])) == 3


def test_checkpoint_of_another_pinned_log_fails_check_3() -> None:
    bundle = make_bundle(checkpoint_signers=[OTHER_LOG], origin=OTHER_LOG.name)
    keys = [KEY, OTHER_LOG.verifier.verifier_key()]
    with pytest.raises(VerificationError, match="different logs") as info:
        verify_receipt(bundle.to_json(), keys)
    assert info.value.step == 3


def test_signatures_of_another_pinned_log_are_ignored_beside_the_log_s_own() -> None:
    bundle = make_bundle(receipt_signers=[LOG, OTHER_LOG], checkpoint_signers=[LOG, OTHER_LOG])

    report = verify_receipt(bundle.to_json(), [KEY, OTHER_LOG.verifier.verifier_key()])

    ours = (f"{ORIGIN}+{LOG.verifier.key_hash.hex()}",)
    assert (report.receipt_signed_by, report.checkpoint_signed_by) == (ours, ours)


def test_a_receipt_signed_only_by_another_pinned_log_fails_check_3_naming_the_signer() -> None:
    bundle = make_bundle(receipt_signers=[OTHER_LOG])
    other = OTHER_LOG.verifier

    with pytest.raises(VerificationError) as info:
        verify_receipt(bundle.to_json(), [KEY, other.verifier_key()])

    assert info.value.step == 3
    assert f"{other.name}+{other.key_hash.hex()}" in info.value.message


def test_checkpoint_signed_by_a_key_not_named_as_its_origin_fails_check_3() -> None:
    bundle = make_bundle(checkpoint_signers=[LOG], origin="elsewhere.example/log")
    assert failed_step(bundle) == 3


def test_receipt_in_the_checkpoint_slot_fails_check_3() -> None:
    bundle = make_bundle()
    assert failed_step(dataclasses.replace(bundle, checkpoint=bundle.receipt)) == 3


# --- (4) the leaf and its inclusion proof ------------------------------------------------------


def test_leaf_byte_changed_fails_check_4() -> None:
    bundle = make_bundle()
    leaf = bytearray(bundle.leaf)
    leaf[-3] ^= 0x01
    assert failed_step(dataclasses.replace(bundle, leaf=bytes(leaf))) == 4


def test_leaf_of_another_entry_fails_check_4() -> None:
    assert failed_step(dataclasses.replace(make_bundle(), leaf=filler_event(3))) == 4


@pytest.mark.parametrize("position", [0, 1, -1])
def test_proof_hash_flipped_fails_check_4(position: int) -> None:
    bundle = make_bundle()
    proof = list(bundle.proof)
    proof[position] = bytes([proof[position][0] ^ 0x80]) + proof[position][1:]
    assert failed_step(dataclasses.replace(bundle, proof=tuple(proof))) == 4


def test_proof_hash_missing_fails_check_4() -> None:
    bundle = make_bundle()
    assert failed_step(dataclasses.replace(bundle, proof=bundle.proof[:-1])) == 4


def test_proof_index_changed_fails_check_4() -> None:
    assert failed_step(dataclasses.replace(make_bundle(), index=RECEIPT_INDEX + 1)) == 4


def test_signed_receipt_with_a_false_index_fails_check_4() -> None:
    leaf = ingest_event()
    lying = receipt_for(leaf, index=RECEIPT_INDEX - 1)
    bundle = dataclasses.replace(make_bundle(leaf, receipt=lying), index=RECEIPT_INDEX - 1)
    assert failed_step(bundle) == 4


def test_proof_for_a_tree_size_other_than_the_checkpoints_fails_check_4() -> None:
    assert failed_step(dataclasses.replace(make_bundle(), tree_size=TREE_SIZE + 1)) == 4


# --- (5) the event in the leaf ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        (ingest_event(event_type="evidence.transferred"), "not 'evidence.ingested'"),
        (ingest_event("ev_fedcba9876543210"), "ev_fedcba9876543210"),
        (ingest_event(digests={**DIGESTS, "md5": "1" * 32}), "md5"),
        (ingest_event(digests={"sha256": DIGESTS["sha256"]}), "md5"),
        (ingest_event(size=124), "size"),
        (ingest_event(size=123.0), "no floats"),
        (ingest_event(size=True), "size"),
        (ingest_event(time="2026-11-28T12:00:00.000001Z"), "recorded at"),
        (ingest_event(v=2), "version 1"),
        (ingest_event(v=True), "version 1"),
        (b"not json at all", "not a JSON event"),
        (b'{"v":1,"v":1}', "duplicate"),
        (filler_event(1), "not 'evidence.ingested'"),
    ],
    ids=[
        "other-type",
        "other-evidence-id",
        "different-digest",
        "missing-digest",
        "different-size",
        "float-size",
        "bool-size",
        "different-time",
        "other-version",
        "bool-version",
        "not-json",
        "duplicate-member",
        "other-subject",
    ],
)
def test_leaf_that_is_not_the_receipts_ingest_fails_check_5(leaf: bytes, reason: str) -> None:
    """A receipt the pinned key signed over the true leaf hash, but whose fields lie."""
    receipt = receipt_for(ingest_event(), leaf_hash=leaf_hash(leaf))
    with pytest.raises(VerificationError, match=reason) as info:
        verify_receipt(make_bundle(leaf, receipt=receipt).to_json(), [KEY])
    assert info.value.step == 5


# --- trust comes only from pinned keys -------------------------------------------------------


def test_key_carried_only_inside_the_bundle_is_never_trusted() -> None:
    bundle = make_bundle(receipt_signers=[IMPOSTOR], checkpoint_signers=[IMPOSTOR])
    carrying_key = edited(bundle, lambda o: o.update(key=IMPOSTOR.verifier.verifier_key()))
    assert failed_step(carrying_key) == 1
    with pytest.raises(VerificationError, match="keys you did not pin") as info:
        verify_receipt(bundle.to_json(), [KEY])
    assert info.value.step == 2


@pytest.mark.parametrize("keys", [[], ["not a key"], [KEY, "x+00000000+AQ=="]])
def test_missing_or_malformed_pinned_key_is_a_value_error(keys: list[str]) -> None:
    with pytest.raises(ValueError):
        verify_receipt(make_bundle().to_json(), keys)


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def receipt_file(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.json"
    path.write_bytes(make_bundle().to_json())
    return path


@pytest.fixture
def forged_file(tmp_path: Path) -> Path:
    bundle = make_bundle()
    path = tmp_path / "forged.json"
    path.write_bytes(dataclasses.replace(bundle, proof=bundle.proof[::-1]).to_json())
    return path


def test_cli_prints_each_check_ok_and_exits_0(
    receipt_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", str(receipt_file), "--key", KEY]) == 0
    out = capsys.readouterr().out
    for n, check in enumerate(RECEIPT_CHECKS[:5], 1):
        assert f"({n}) ok    {check}" in out
    assert f"(6) skip  {RECEIPT_CHECKS[5]}" in out
    assert EVIDENCE_ID in out and DIGESTS["sha256"] in out
    assert out.rstrip().endswith("no artifact was given, so no bytes were checked")


def test_cli_marks_the_failed_check_and_exits_1(
    forged_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", str(forged_file), "--key", KEY]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line[:9] for line in lines if line.startswith("(")] == [
        "(1) ok   ",
        "(2) ok   ",
        "(3) ok   ",
        "(4) FAIL ",
        "(5) --   ",
        "(6) --   ",
    ]
    assert "inclusion" in lines[lines.index(next(ln for ln in lines if "FAIL" in ln)) + 1]
    assert lines[-1] == "NOT VERIFIED: check (4) failed"


def test_cli_json_prints_one_object_with_the_report(
    receipt_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", str(receipt_file), "--key", KEY, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["ok"] is True
    assert [c["result"] for c in result["checks"]] == ["ok"] * 5 + ["skipped"]
    assert result["report"]["evidence_id"] == EVIDENCE_ID
    assert result["report"]["digests"] == DIGESTS
    assert result["report"]["receipt_signed_by"] == [f"{ORIGIN}+{LOG.key_hash.hex()}"]


def test_cli_json_names_the_failed_check(
    forged_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", str(forged_file), "--key", KEY, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert result["failed_step"] == 4
    assert [c["result"] for c in result["checks"]] == [
        *("ok", "ok", "ok", "fail"),
        *("not checked", "not checked"),
    ]
    assert result["checks"][3]["error"] == result["error"]
    assert "report" not in result


# --- (6) the artifact ------------------------------------------------------------------------


def artifact_receipt(tmp_path: Path, content: bytes) -> Path:
    """A true receipt file for ``content``, written beside it."""
    digests = {
        "md5": hashlib.md5(content).hexdigest(),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    path = tmp_path / "artifact-receipt.json"
    path.write_bytes(make_bundle(ingest_event(size=len(content), digests=digests)).to_json())
    return path


def test_an_artifact_with_the_receipt_s_bytes_passes_check_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = b"the image as the court holds it\n" * 100
    artifact = tmp_path / "image.dd"
    artifact.write_bytes(content)
    receipt = artifact_receipt(tmp_path, content)

    report = verify_receipt(receipt.read_bytes(), [KEY], [artifact])
    status = main(["receipt", str(receipt), "--key", KEY, "--artifact", str(artifact)])

    assert report.size == len(content)
    assert status == 0
    out = capsys.readouterr().out
    assert f"(6) ok    {RECEIPT_CHECKS[5]}" in out
    assert out.rstrip().endswith("VERIFIED: every check passed")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "not the bytes that were received"),  # a bit
        (lambda b: b + b"x", "bytes, but the receipt records"),
    ],
    ids=["changed-byte", "longer"],
)
def test_an_artifact_that_is_not_the_receipt_s_bytes_fails_check_6(
    tmp_path: Path, change: Any, reason: str
) -> None:
    content = b"the image as received\n" * 100
    receipt = artifact_receipt(tmp_path, content)
    artifact = tmp_path / "image.dd"
    artifact.write_bytes(change(content))

    with pytest.raises(VerificationError, match=reason) as info:
        verify_receipt(receipt.read_bytes(), [KEY], [artifact])

    assert info.value.step == 6
    assert main(["receipt", str(receipt), "--key", KEY, "--artifact", str(artifact)]) == 1


def test_a_missing_artifact_is_a_usage_error(receipt_file: Path, tmp_path: Path) -> None:
    args = ["receipt", str(receipt_file), "--key", KEY, "--artifact", str(tmp_path / "none")]
    assert main(args) == 2


def test_cli_reads_pinned_keys_from_a_file(receipt_file: Path, tmp_path: Path) -> None:
    keys = tmp_path / "pinned.keys"
    keys.write_text(f"{OTHER_LOG.verifier.verifier_key()}\n\n{KEY}\n", encoding="utf-8")
    assert main(["receipt", str(receipt_file), "--key", f"@{keys}"]) == 0


def test_cli_with_only_an_unpinned_key_exits_1(receipt_file: Path) -> None:
    assert main(["receipt", str(receipt_file), "--key", IMPOSTOR.verifier.verifier_key()]) == 1


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["receipt"],
        ["receipt", "{file}"],
        ["receipt", "{file}", "--key", "not-a-key"],
        ["receipt", "{file}", "--key", "@{dir}/no-such.keys"],
        ["receipt", "{dir}/no-such.json", "--key", KEY],
        ["frobnicate", "{file}", "--key", KEY],  # a bare word is an exhibit file: one too many
    ],
    ids=[
        "no-command",
        "no-file",
        "no-key",
        "malformed-key",
        "missing-key-file",
        "missing-file",
        "unknown-command",
    ],
)
def test_cli_usage_errors_exit_2(
    args: list[str], receipt_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(file=receipt_file, dir=receipt_file.parent) for a in args]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "error" in err


def test_cli_help_lists_the_checks_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipt", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(5) the leaf is the evidence.ingested event" in out


def test_verify_command_runs_one_procedure_under_another_name(
    receipt_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prog = "custos verify-receipt"
    assert verify_command("receipt", [str(receipt_file), "--key", KEY], prog) == 0
    assert verify_command("receipt", [str(receipt_file)], prog) == 2
    assert "custos verify-receipt: error" in capsys.readouterr().err
