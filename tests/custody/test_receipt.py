"""Tests of custody.receipt: the receipt note text, its signing, and the receipt bundle file."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.merkle import leaf_hash
from custody.note import NoteSigner, NoteVerificationError, open_note
from custody.receipt import (
    BUNDLE_FORMAT,
    RECEIPT_TYPE,
    MalformedReceipt,
    Receipt,
    ReceiptBundle,
    open_receipt,
    sign_receipt,
)

ORIGIN = "test.example/log"
LOG = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
OTHER = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
LEAF = b'{"type":"evidence.ingested"}'
SHA256 = "ab" * 32
MD5 = "cd" * 16

RECEIPT = Receipt(
    evidence_id="ev_0123456789abcdef",
    size=123,
    digests={"sha256": SHA256, "md5": MD5},
    received_at="2026-11-28T12:00:00.000000Z",
    ledger_index=42,
    leaf_hash=leaf_hash(LEAF),
)
TEXT = (
    "custos/receipt/v1\n"
    "id ev_0123456789abcdef\n"
    "size 123\n"
    f"digest md5 {MD5}\n"
    f"digest sha256 {SHA256}\n"
    "received 2026-11-28T12:00:00.000000Z\n"
    "index 42\n"
    f"leaf {leaf_hash(LEAF).hex()}\n"
)


# --- the receipt note text ---------------------------------------------------------------------


def test_text_is_type_line_then_one_line_per_field_in_fixed_order() -> None:
    assert RECEIPT_TYPE == "custos/receipt/v1"
    assert RECEIPT.to_text() == TEXT


def test_text_parses_back_to_the_same_receipt() -> None:
    assert Receipt.from_text(TEXT) == RECEIPT


def test_digests_are_kept_sorted_by_algorithm_and_read_only() -> None:
    assert list(RECEIPT.digests) == ["md5", "sha256"]
    with pytest.raises(TypeError):
        RECEIPT.digests["sha1"] = "00" * 20  # type: ignore[index]


def test_receipt_is_a_frozen_hashable_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECEIPT.size = 1  # type: ignore[misc]
    assert hash(RECEIPT) == hash(Receipt.from_text(TEXT))


def test_receipt_may_carry_only_sha256() -> None:
    receipt = dataclasses.replace(RECEIPT, digests={"sha256": SHA256})
    assert "digest md5" not in receipt.to_text()
    assert Receipt.from_text(receipt.to_text()) == receipt


@pytest.mark.parametrize(
    "bad",
    [
        TEXT.rstrip("\n"),
        TEXT.replace("custos/receipt/v1", "custos/manifest/v1"),
        TEXT.replace("custos/receipt/v1", "custos/receipt/v2"),
        TEXT.replace("size 123", "size 0123"),
        TEXT.replace("size 123", "size +123"),
        TEXT.replace("size 123", "size  123"),
        TEXT.replace("size 123", "size 123 "),
        TEXT.replace("index 42", "index -1"),
        TEXT.replace("id ev_", "id  ev_"),
        TEXT.replace(SHA256, SHA256.upper()),
        TEXT.replace(f"digest sha256 {SHA256}\n", ""),
        TEXT.replace(f"digest md5 {MD5}\ndigest sha256 {SHA256}\n", ""),
        TEXT.replace(
            f"digest md5 {MD5}\ndigest sha256 {SHA256}\n",
            f"digest sha256 {SHA256}\ndigest md5 {MD5}\n",
        ),
        TEXT.replace(f"digest md5 {MD5}\n", f"digest md5 {MD5}\ndigest md5 {MD5}\n"),
        TEXT.replace(f"digest md5 {MD5}", f"digest md5 {MD5[:-2]}"),
        TEXT.replace(f"digest md5 {MD5}", f"digest MD5 {MD5}"),
        TEXT.replace("id ev_0123456789abcdef\nsize 123\n", "size 123\nid ev_0123456789abcdef\n"),
        TEXT.replace("received 2026-11-28T12:00:00.000000Z", "received 2026-11-28T12:00:00Z"),
        TEXT.replace("2026-11-28T12:00:00.000000Z", "2026-11-28T12:00:00.000000+00:00"),
        TEXT.replace("2026-11-28", "2026-02-30"),
        TEXT.replace(leaf_hash(LEAF).hex(), leaf_hash(LEAF).hex()[:-2]),
        TEXT + "note extra\n",
        TEXT.replace("\n", "\r\n"),
        "custos/receipt/v1\n",
    ],
    ids=[
        "no-final-newline",
        "other-type",
        "other-version",
        "size-leading-zero",
        "size-plus-sign",
        "double-space",
        "trailing-space",
        "negative-index",
        "id-leading-space",
        "uppercase-hex",
        "no-sha256",
        "no-digest",
        "unsorted-digests",
        "duplicate-digest",
        "short-md5",
        "uppercase-algorithm",
        "fields-reordered",
        "time-without-microseconds",
        "time-with-offset",
        "impossible-date",
        "short-leaf",
        "extra-line",
        "crlf",
        "type-line-only",
    ],
)
def test_from_text_rejects_anything_but_the_one_canonical_text(bad: str) -> None:
    with pytest.raises(MalformedReceipt):
        Receipt.from_text(bad)


@pytest.mark.parametrize(
    "changes",
    [
        {"evidence_id": ""},
        {"evidence_id": "ev 1"},
        {"evidence_id": "ev\n1"},
        {"evidence_id": 7},
        {"size": -1},
        {"size": True},
        {"size": 2**53},
        {"size": "123"},
        {"digests": {}},
        {"digests": {"md5": MD5}},
        {"digests": {"sha256": SHA256[:-2]}},
        {"digests": {"sha256": SHA256.upper()}},
        {"digests": {"sha256": SHA256, "sha1": "00" * 19}},
        {"digests": {"sha256": SHA256, "SHA1": "00" * 20}},
        {"digests": {"sha256": SHA256, "x": "0"}},
        {"digests": [("sha256", SHA256)]},
        {"received_at": "2026-11-28T12:00:00.000000"},
        {"received_at": "2026-11-28 12:00:00.000000Z"},
        {"received_at": "2026-13-01T12:00:00.000000Z"},
        {"ledger_index": -1},
        {"ledger_index": False},
        {"ledger_index": 2**64 - 1},
        {"leaf_hash": b"\x00" * 31},
        {"leaf_hash": "00" * 32},
    ],
)
def test_receipt_refuses_invalid_fields(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedReceipt):
        dataclasses.replace(RECEIPT, **changes)


@given(
    evidence_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,40}", fullmatch=True),
    size=st.integers(0, 2**53 - 1),
    extra=st.dictionaries(
        st.sampled_from(["md5", "sha1", "sha512", "sha3_256"]), st.just(""), max_size=4
    ),
    index=st.integers(0, 2**64 - 2),
    leaf=st.binary(min_size=32, max_size=32),
    micros=st.integers(0, 999_999),
)
def test_every_valid_receipt_round_trips_through_its_text(
    evidence_id: str, size: int, extra: dict[str, str], index: int, leaf: bytes, micros: int
) -> None:
    lengths = {"md5": 16, "sha1": 20, "sha512": 64, "sha3_256": 32}
    digests = {alg: "0f" * lengths[alg] for alg in extra} | {"sha256": SHA256}
    receipt = Receipt(evidence_id, size, digests, f"2026-11-28T12:00:00.{micros:06d}Z", index, leaf)
    assert Receipt.from_text(receipt.to_text()) == receipt


# --- signing -----------------------------------------------------------------------------------


def test_signed_receipt_is_a_note_of_the_receipt_text() -> None:
    data = sign_receipt(RECEIPT, [LOG])
    assert open_note(data, [LOG.verifier]).text == TEXT
    receipt, note = open_receipt(data, [LOG.verifier])
    assert receipt == RECEIPT
    assert [sig.name for sig in note.signatures] == [ORIGIN]


def test_open_receipt_refuses_a_receipt_signed_by_an_unpinned_key() -> None:
    with pytest.raises(NoteVerificationError):
        open_receipt(sign_receipt(RECEIPT, [OTHER]), [LOG.verifier])


def test_open_receipt_refuses_a_checkpoint_signed_by_the_same_key() -> None:
    checkpoint = sign_checkpoint(Checkpoint(ORIGIN, 43, bytes(32)), [LOG])
    with pytest.raises(MalformedReceipt, match="not a custos/receipt/v1"):
        open_receipt(checkpoint, [LOG.verifier])


# --- the bundle file ---------------------------------------------------------------------------

PROOF = (bytes([1]) * 32, bytes([2]) * 32)
BUNDLE = ReceiptBundle(
    receipt=sign_receipt(RECEIPT, [LOG]),
    checkpoint=sign_checkpoint(Checkpoint(ORIGIN, 43, bytes(32)), [LOG]),
    leaf=LEAF,
    index=42,
    tree_size=43,
    proof=PROOF,
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def test_bundle_file_has_the_documented_members() -> None:
    obj = json.loads(BUNDLE.to_json())
    assert obj == {
        "format": BUNDLE_FORMAT,
        "receipt": BUNDLE.receipt.decode("utf-8"),
        "checkpoint": BUNDLE.checkpoint.decode("utf-8"),
        "leaf": _b64(LEAF),
        "inclusion_proof": {"index": 42, "tree_size": 43, "hashes": [_b64(h) for h in PROOF]},
    }
    assert list(obj) == ["format", "receipt", "checkpoint", "leaf", "inclusion_proof"]
    assert BUNDLE_FORMAT == "custos/receipt-bundle/v1"


def test_bundle_file_round_trips_byte_for_byte() -> None:
    data = BUNDLE.to_json()
    assert ReceiptBundle.from_json(data) == BUNDLE
    assert ReceiptBundle.from_json(data).to_json() == data


def test_bundle_accepts_a_proof_given_as_a_list() -> None:
    assert dataclasses.replace(BUNDLE, proof=list(PROOF)).proof == PROOF  # type: ignore[arg-type]


def _edit(path: tuple[str, ...], value: Any) -> bytes:
    obj = json.loads(BUNDLE.to_json())
    target = obj
    for name in path[:-1]:
        target = target[name]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(obj).encode("utf-8")


_DELETE = object()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        "{}".encode("utf-16"),
        b"[]",
        b'"custos/receipt-bundle/v1"',
        BUNDLE.to_json().replace(b'"index": 42', b'"index": NaN'),
        BUNDLE.to_json().replace(b'"index": 42', b'"index": 42, "index": 42'),
        BUNDLE.to_json().replace(b'"format"', b'"format": "x", "format"'),
        _edit(("format",), "custos/receipt-bundle/v2"),
        _edit(("format",), _DELETE),
        _edit(("key",), LOG.verifier.verifier_key()),
        _edit(("receipt",), 7),
        _edit(("receipt",), "custos/receipt/v1\nno signature\n"),
        _edit(("checkpoint",), "not a note"),
        _edit(("leaf",), ""),
        _edit(("leaf",), "not base64!"),
        _edit(("leaf",), _b64(LEAF).rstrip("=")),
        _edit(("leaf",), base64.urlsafe_b64encode(b"\xfb\xff" * 3).decode()),
        _edit(("inclusion_proof",), []),
        _edit(("inclusion_proof", "index"), "42"),
        _edit(("inclusion_proof", "index"), 42.0),
        _edit(("inclusion_proof", "index"), True),
        _edit(("inclusion_proof", "index"), 43),
        _edit(("inclusion_proof", "index"), -1),
        _edit(("inclusion_proof", "tree_size"), 0),
        _edit(("inclusion_proof", "tree_size"), 2**64),
        _edit(("inclusion_proof", "hashes"), _b64(PROOF[0])),
        _edit(("inclusion_proof", "hashes"), [_b64(PROOF[0][:31])]),
        _edit(("inclusion_proof", "hashes"), [_b64(PROOF[0])] * 65),
        _edit(("inclusion_proof", "extra"), 1),
        _edit(("inclusion_proof", "hashes"), _DELETE),
    ],
    ids=[
        "empty",
        "not-utf8",
        "utf16",
        "array",
        "string",
        "nan",
        "duplicate-nested-member",
        "duplicate-member",
        "other-format",
        "no-format",
        "unknown-member",
        "receipt-not-text",
        "receipt-not-a-note",
        "checkpoint-not-a-note",
        "empty-leaf",
        "leaf-not-base64",
        "leaf-unpadded",
        "leaf-urlsafe",
        "proof-not-object",
        "index-string",
        "index-float",
        "index-bool",
        "index-beyond-tree",
        "index-negative",
        "empty-tree",
        "tree-too-large",
        "hashes-not-list",
        "short-hash",
        "too-many-hashes",
        "proof-unknown-member",
        "proof-no-hashes",
    ],
)
def test_from_json_refuses_anything_off(data: bytes) -> None:
    with pytest.raises(MalformedReceipt):
        ReceiptBundle.from_json(data)


def test_from_json_needs_bytes() -> None:
    with pytest.raises(MalformedReceipt):
        ReceiptBundle.from_json(BUNDLE.to_json().decode())  # type: ignore[arg-type]
