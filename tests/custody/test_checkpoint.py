"""Tests of custody.checkpoint: C2SP tlog-checkpoint bodies in signed notes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import merkle
from custody.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    MalformedCheckpoint,
    NotExtended,
    check_extends,
    open_checkpoint,
    sign_checkpoint,
)
from custody.note import (
    MalformedNote,
    Note,
    NoteSigner,
    NoteVerificationError,
    sign_note,
)

ORIGIN = "custos.example/ledger"
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode("ascii")


def _signer(name: str, seed_byte: int) -> NoteSigner:
    """Return a signer with a fixed, test-only seed."""
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32))


LOG = _signer(ORIGIN, 1)
LOG_IMPOSTOR = _signer(ORIGIN, 2)  # same name, another key
WITNESS = _signer("witness.example/w1", 3)
CP = Checkpoint(origin=ORIGIN, size=8, root=ROOT)


# --- body format ---------------------------------------------------------------------------


def test_body_is_origin_size_and_base64_root_lines() -> None:
    assert CP.to_text() == f"{ORIGIN}\n8\n{ROOT_B64}\n"


def test_extension_lines_follow_the_root_and_are_kept() -> None:
    cp = Checkpoint(ORIGIN, 8, ROOT, extensions=("ext one", "— two"))
    assert cp.to_text() == f"{ORIGIN}\n8\n{ROOT_B64}\next one\n— two\n"
    assert Checkpoint.from_text(cp.to_text()) == cp


def test_spec_example_body_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.from_text(text)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert base64.b64encode(cp.root).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert cp.to_text() == text


@pytest.mark.parametrize("size", [0, 1, 10, MAX_TREE_SIZE])
def test_tree_sizes_from_zero_to_uint64_max_round_trip(size: int) -> None:
    cp = Checkpoint(ORIGIN, size, ROOT)
    assert cp.to_text().split("\n")[1] == str(size)
    assert Checkpoint.from_text(cp.to_text()) == cp


_LINE = st.text(
    st.characters(codec="utf-8", exclude_characters="".join(map(chr, range(0x20)))), min_size=1
)


@settings(max_examples=80, deadline=None)
@given(
    origin=_LINE,
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3).map(tuple),
)
def test_any_checkpoint_round_trips_through_its_text(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.from_text(cp.to_text()) == cp


def _body(size: str = "8", root: str = ROOT_B64, origin: str = ORIGIN, rest: str = "") -> str:
    return f"{origin}\n{size}\n{root}\n{rest}"


MALFORMED_BODIES: dict[str, str] = {
    "empty": "",
    "two lines": f"{ORIGIN}\n8\n",
    "no final newline": _body().rstrip("\n"),
    "leading zero": _body(size="08"),
    "zero with leading zero": _body(size="00"),
    "negative": _body(size="-1"),
    "plus sign": _body(size="+8"),
    "leading space": _body(size=" 8"),
    "trailing space": _body(size="8 "),
    "underscore": _body(size="1_000"),
    "hexadecimal": _body(size="0x8"),
    "Arabic-Indic digit": _body(size="\u0668"),
    "fullwidth digit": _body(size="\uff18"),
    "empty size": _body(size=""),
    "above uint64": _body(size=str(MAX_TREE_SIZE + 1)),
    "huge size": _body(size="9" * 5000),
    "bad base64": _body(root="!" + ROOT_B64[1:]),
    "unpadded base64": _body(root=ROOT_B64.rstrip("=")),
    "url-safe base64": _body(root=base64.urlsafe_b64encode(b"\xfb" * 32).decode()),
    "non-canonical base64": _body(root=ROOT_B64[:-2] + "9="),
    "31-byte root": _body(root=base64.b64encode(ROOT[:31]).decode()),
    "33-byte root": _body(root=base64.b64encode(ROOT + b"\x00").decode()),
    "hex root": _body(root=ROOT.hex()),
    "empty origin": _body(origin=""),
    "carriage return in origin": _body(origin=ORIGIN + "\r"),
    "empty extension line": _body(rest="\n"),
    "empty line between extensions": _body(rest="a\n\nb\n"),
    "tab in extension": _body(rest="a\tb\n"),
}


@pytest.mark.parametrize("text", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_body_is_rejected(text: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.from_text(text)


def test_base_body_of_the_malformed_cases_parses() -> None:
    assert Checkpoint.from_text(_body()) == CP
    assert Checkpoint.from_text(_body(size="0")).size == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": -1},
        {"size": MAX_TREE_SIZE + 1},
        {"size": True},
        {"root": ROOT[:31]},
        {"root": ROOT + b"\x00"},
        {"origin": ""},
        {"origin": "two\nlines"},
        {"extensions": ("",)},
        {"extensions": ("two\nlines",)},
    ],
    ids=[
        "negative size",
        "size above uint64",
        "bool size",
        "31-byte root",
        "33-byte root",
        "empty origin",
        "newline in origin",
        "empty extension",
        "newline in extension",
    ],
)
def test_checkpoint_value_refuses_invalid_fields(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"origin": ORIGIN, "size": 8, "root": ROOT, **kwargs}
    with pytest.raises(MalformedCheckpoint):
        Checkpoint(**fields)


def test_origin_need_not_be_a_valid_key_name() -> None:
    assert Checkpoint.from_text(_body(origin="a log+with spaces")).origin == "a log+with spaces"


# --- signing and opening -------------------------------------------------------------------


def test_signed_checkpoint_opens_to_the_same_checkpoint() -> None:
    data = sign_checkpoint(CP, [LOG])
    assert data == sign_note(CP.to_text(), [LOG])
    cp, note = open_checkpoint(data, [LOG.verifier])
    assert cp == CP
    assert isinstance(note, Note) and note.text == CP.to_text()
    assert [s.name for s in note.signatures] == [ORIGIN]


def test_extensions_survive_signing_and_opening() -> None:
    cp = Checkpoint(ORIGIN, 8, ROOT, extensions=("timestamp 1700000000", "x"))
    assert open_checkpoint(sign_checkpoint(cp, [LOG]), [LOG.verifier])[0] == cp


def test_expected_origin_that_matches_is_accepted() -> None:
    cp, _ = open_checkpoint(sign_checkpoint(CP, [LOG]), [LOG.verifier], origin=ORIGIN)
    assert cp == CP


def test_expected_origin_that_differs_is_rejected() -> None:
    with pytest.raises(NoteVerificationError, match="origin"):
        open_checkpoint(sign_checkpoint(CP, [LOG]), [LOG.verifier], origin="other.example/log")


def test_checkpoint_signed_only_by_a_key_of_another_name_is_rejected() -> None:
    data = sign_checkpoint(CP, [WITNESS])
    with pytest.raises(NoteVerificationError, match="not signed by a trusted key of that name"):
        open_checkpoint(data, [WITNESS.verifier])


def test_trusted_witness_signature_does_not_stand_in_for_an_untrusted_log_key() -> None:
    data = sign_checkpoint(CP, [LOG, WITNESS])
    with pytest.raises(NoteVerificationError, match="not signed by a trusted key of that name"):
        open_checkpoint(data, [WITNESS.verifier])


def test_log_and_witness_signatures_are_both_returned_when_trusted() -> None:
    data = sign_checkpoint(CP, [LOG, WITNESS])
    _, note = open_checkpoint(data, [LOG.verifier, WITNESS.verifier])
    assert [s.name for s in note.signatures] == [ORIGIN, WITNESS.name]


def test_checkpoint_signed_by_same_name_impostor_key_is_rejected() -> None:
    with pytest.raises(NoteVerificationError, match="not signed by any trusted key"):
        open_checkpoint(sign_checkpoint(CP, [LOG_IMPOSTOR]), [LOG.verifier])


def test_checkpoint_with_tampered_size_is_rejected() -> None:
    data = sign_checkpoint(CP, [LOG]).replace(b"\n8\n", b"\n9\n", 1)
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_checkpoint(data, [LOG.verifier])


def test_malformed_note_is_a_form_error() -> None:
    data = sign_checkpoint(CP, [LOG]).replace(b"\n\n", b"\n", 1)
    with pytest.raises(MalformedNote):
        open_checkpoint(data, [LOG.verifier])


def test_trusted_note_that_is_not_a_checkpoint_is_a_form_error() -> None:
    data = sign_note(f"{ORIGIN}\n08\n{ROOT_B64}\n", [LOG])
    with pytest.raises(MalformedCheckpoint):
        open_checkpoint(data, [LOG.verifier])


def test_untrusted_note_text_is_not_parsed_before_verification() -> None:
    data = sign_note("not a checkpoint\n", [WITNESS])
    with pytest.raises(NoteVerificationError, match="not signed by any trusted key"):
        open_checkpoint(data, [LOG.verifier])


# -- does a later checkpoint extend an earlier one ----------------------------------------------

LEAVES = [merkle.leaf_hash(b"event %d" % n) for n in range(7)]


def tree(size: int, origin: str = "example.com/log") -> Checkpoint:
    return Checkpoint(origin, size, merkle.root_from_leaf_hashes(LEAVES[:size]))


def consistency(size1: int, size2: int) -> list[bytes]:
    ranges = merkle.consistency_proof_ranges(size1, size2)
    return [merkle.root_from_leaf_hashes(LEAVES[start:end]) for start, end in ranges]


def test_a_longer_tree_of_the_same_log_extends_with_its_consistency_proof() -> None:
    asked: list[tuple[int, int]] = []

    def prove(size1: int, size2: int) -> list[bytes]:
        asked.append((size1, size2))
        return consistency(size1, size2)

    assert list(check_extends(tree(3), tree(7), prove)) == consistency(3, 7)
    assert asked == [(3, 7)]


def test_the_same_tree_extends_itself_without_asking_for_a_proof() -> None:
    assert check_extends(tree(4), tree(4), lambda m, n: pytest.fail("no proof needed")) == ()


@pytest.mark.parametrize(
    ("earlier", "later", "reason"),
    [
        (tree(3, "example.com/other"), tree(7), NotExtended.OTHER_LOG),
        (tree(7), tree(3), NotExtended.SHRANK),
        (tree(4), Checkpoint("example.com/log", 4, bytes(32)), NotExtended.FORKED),
        (tree(3), Checkpoint("example.com/log", 7, bytes(32)), NotExtended.UNPROVEN),
        (tree(0), tree(7), NotExtended.UNPROVEN),
        (tree(0), tree(0), NotExtended.UNPROVEN),
    ],
    ids=["other-log", "shrank", "forked", "other-root", "from-empty", "empty-to-empty"],
)
def test_what_does_not_extend_says_how(earlier: Checkpoint, later: Checkpoint, reason: str) -> None:
    with pytest.raises(NotExtended) as refused:
        check_extends(earlier, later, lambda m, n: consistency(m, n) if m else [])
    assert refused.value.reason == reason


def test_an_altered_proof_does_not_show_extension() -> None:
    proof = consistency(3, 7)
    proof[0] = bytes(32)
    with pytest.raises(NotExtended, match="consistency") as refused:
        check_extends(tree(3), tree(7), lambda m, n: proof)
    assert refused.value.reason == NotExtended.UNPROVEN
