"""Hostile input to every parser: arbitrary bytes, text and JSON, and mutations of valid
inputs, must raise nothing but the parser's own documented errors (issue 6, item 6), and a
verifier must refuse every mutation of what a key signed or a proof proves.

Each test names the errors its parser documents; any other exception, such as a ``KeyError``,
``TypeError``, ``UnicodeDecodeError``, ``binascii.Error`` or ``RecursionError`` escaping a
parser, fails the test. A parser of unsigned input may accept a mutant, for it may be another
valid input (:func:`raises_only`); a verifier may not, unless the mutant is the original or
decodes to the same value (:func:`refuses`). Mutations work on what each format is
made of: bytes and lines for notes and proofs, members and values for JSON documents, so that
the fuzzing reaches past the first syntax check into the field checks behind it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from custody.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint, sign_checkpoint
from custody.digests import http_digest, parse_http_digest
from custody.errors import CustosError
from custody.events import Event, InvalidEvent
from custody.merkle import (
    InvalidProof,
    NodeId,
    append_leaves,
    consistency_proof_ranges,
    hashes_for_ranges,
    inclusion_proof_ranges,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from custody.note import (
    MalformedNote,
    Note,
    NoteSigner,
    NoteVerificationError,
    NoteVerifier,
    open_note,
    sign_note,
)
from custody.order_document import OrderDocument
from custody.receipt import MalformedReceipt, Receipt, ReceiptBundle
from custody.verify import ExhibitVerification, verify_bundle
from custody.verify.archive import open_archive
from custody.verify.errors import VerificationError
from custody.verify.receipt import verify_receipt
from storage.deployment import initialise, open_deployment
from tests.conftest import add_provider, make_config
from tests.custody.test_verify_receipt import KEY, LOG, ORIGIN, make_bundle, receipt_for
from tests.factories import in_case, order_document

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VERIFIER = LOG.verifier

# -- strategies --------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Fragments that mean something to the formats under test, so insertions hit their syntax.
SYNTAX = [
    b"\n",
    b"\n\n",
    b" ",
    b"\xe2\x80\x94 ",  # the em dash of a signature line
    b"+",
    b"=",
    b":",
    b",",
    b"\x00",
    b"\xff",
    b"\\ud800",
    b'"',
    b"{",
    b"[",
    b"9" * 25,
    b"-1",
]


@st.composite
def byte_mutants(draw: DrawFn, original: bytes) -> bytes:
    """``original`` after one to four edits: a flipped byte, an insertion, a deletion, a
    truncation, or a line dropped, repeated or swapped."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "line")))
        at = draw(st.integers(0, len(data)))
        if edit == "flip" and data:
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from(SYNTAX) | st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "line":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            how = draw(st.sampled_from(("drop", "repeat", "swap")))
            if how == "drop":
                del lines[i]
            elif how == "repeat":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


# Characters a signed note's text may hold: no control character but newline, no surrogate.
NOTE_CHARACTERS = st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n +=:")


@st.composite
def text_mutants(draw: DrawFn, original: str) -> str:
    """``original`` after character and line edits, still the text of a signable note (it
    ends in a newline and holds no control character), so that a pinned key can sign it and
    the parser behind the signature check gets to read it."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(("insert", "delete", "replace", "line")))
        at = draw(st.integers(0, len(text)))
        if edit == "insert":
            text = text[:at] + draw(st.text(NOTE_CHARACTERS, min_size=1, max_size=6)) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif edit == "replace":
            text = text[:at] + draw(st.text(NOTE_CHARACTERS, max_size=30)) + "\n"
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text if text.endswith("\n") else text + "\n"


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for name, member in value.items():
            yield from _paths(member, (*path, name))
    elif isinstance(value, list):
        for i, member in enumerate(value):
            yield from _paths(member, (*path, i))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def json_mutants(draw: DrawFn, original: Any) -> Any:
    """``original`` (parsed JSON) after one to three edits, each at any member or element: its
    value replaced by another JSON value, a string edited, a member or element removed, or one
    added."""
    value = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        target = _at(value, path)
        edit = draw(st.sampled_from(("replace", "edit", "remove", "add")))
        if edit == "edit" and isinstance(target, str):
            at = draw(st.integers(0, len(target)))
            new: Any = (
                target[:at] + draw(st.text(max_size=3)) + target[at + draw(st.integers(0, 2)) :]
            )
        elif edit == "add" and isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(JSON_VALUES)
            continue
        elif edit == "add" and isinstance(target, list):
            target.append(draw(JSON_VALUES))
            continue
        elif edit == "remove" and path:
            del _at(value, path[:-1])[path[-1]]
            continue
        else:
            new = draw(JSON_VALUES)
        if path:
            _at(value, path[:-1])[path[-1]] = new
        else:
            value = new
    return value


def raises_only(allowed: tuple[type[BaseException], ...], parse: Callable[[], object]) -> None:
    """Run a parser of unsigned input: a value or an error it documents is an answer, any
    other error propagates and fails the test."""
    with contextlib.suppress(*allowed):
        parse()


def refuses(
    allowed: tuple[type[BaseException], ...], verify: Callable[[], object], *, same: bool
) -> None:
    """Assert that ``verify`` refuses its input with an error it documents (any other error
    propagates and fails the test). ``same`` says the input is the original, or decodes to
    the same value: that one may pass."""
    try:
        verify()
    except allowed:
        return
    assert same, "a mutated or arbitrary input was accepted"


def same_note(data: bytes, original: bytes) -> bool:
    """Whether ``data`` decodes to the very note ``original`` is: the same text and set of
    signatures (a repeated signature line is read once)."""
    return isinstance(meaning(data), tuple) and meaning(data) == meaning(original)


def meaning(member: bytes) -> object:
    """What the verifier reads in a member: a signed note's text and set of signatures (it
    reads a repeated signature line once), any other member's bytes."""
    try:
        note = Note.from_bytes(member)
    except MalformedNote:
        return member
    return note.text, frozenset(note.signatures)


# -- signed notes -----------------------------------------------------------------------------

NOTE_ERRORS = (MalformedNote, NoteVerificationError)
VALID_NOTE = sign_note("custos/manifest/v1\nid ev_0123456789abcdef\n", [LOG])


@FUZZ
@given(st.binary(max_size=300) | st.sampled_from(SYNTAX).map(lambda b: b * 50))
def test_open_note_refuses_arbitrary_bytes_with_note_errors(data: bytes) -> None:
    refuses(NOTE_ERRORS, lambda: open_note(data, [VERIFIER]), same=False)


@FUZZ
@given(byte_mutants(VALID_NOTE))
def test_open_note_refuses_mutated_notes_with_note_errors(data: bytes) -> None:
    refuses(NOTE_ERRORS, lambda: open_note(data, [VERIFIER]), same=same_note(data, VALID_NOTE))


@FUZZ
@given(
    st.text(max_size=80) | byte_mutants(KEY.encode()).map(lambda b: b.decode("utf-8", "replace"))
)
def test_verifier_key_parsing_raises_only_malformed_note(key: str) -> None:
    raises_only((MalformedNote,), lambda: NoteVerifier.from_key(key))


@FUZZ
@given(byte_mutants(LOG.signer_key().encode()).map(lambda b: b.decode("utf-8", "replace")))
def test_signer_key_parsing_raises_only_malformed_note(key: str) -> None:
    raises_only((MalformedNote,), lambda: NoteSigner.from_signer_key(key))


# -- checkpoints ------------------------------------------------------------------------------

CHECKPOINT = Checkpoint(ORIGIN, 11, leaf_hash(b"root"), ("extension line",))
CHECKPOINT_ERRORS = (MalformedCheckpoint, *NOTE_ERRORS)


@FUZZ
@given(st.text(max_size=200) | text_mutants(CHECKPOINT.to_text()))
def test_checkpoint_text_parsing_raises_only_malformed_checkpoint(text: str) -> None:
    raises_only((MalformedCheckpoint,), lambda: Checkpoint.from_text(text))


SIGNED_CHECKPOINT = sign_checkpoint(CHECKPOINT, [LOG])


@FUZZ
@given(byte_mutants(SIGNED_CHECKPOINT))
def test_open_checkpoint_refuses_mutated_checkpoints_with_its_errors(data: bytes) -> None:
    same = same_note(data, SIGNED_CHECKPOINT)
    refuses(CHECKPOINT_ERRORS, lambda: open_checkpoint(data, [VERIFIER], ORIGIN), same=same)


@FUZZ
@given(text_mutants(CHECKPOINT.to_text()))
def test_open_checkpoint_raises_only_its_errors_on_malformed_texts_a_pinned_key_signed(
    text: str,
) -> None:
    # The text is parsed only once a pinned key signed it: sign whatever the fuzzer made. What
    # the key signed may well be another valid checkpoint.
    raises_only(CHECKPOINT_ERRORS, lambda: open_checkpoint(sign_note(text, [LOG]), [VERIFIER]))


# -- inclusion and consistency proofs ---------------------------------------------------------

PROOF_ERRORS = (InvalidProof,)
HASHES = st.binary(min_size=32, max_size=32) | st.binary(max_size=40)
NOT_HASHES = st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.floats()
SIZES = (
    st.integers(-3, 40)
    | st.integers(0, 2**70)
    | st.sampled_from([2**63, 2**64 - 1, 2**64])
    | NOT_HASHES
)
PROOFS = (
    st.lists(HASHES, max_size=70)
    | st.lists(HASHES | NOT_HASHES, max_size=8)
    | st.tuples(HASHES, HASHES)
    | HASHES
    | NOT_HASHES
)


class Tree:
    """A tree of ``size`` leaves with its nodes, for true proofs to mutate."""

    def __init__(self, size: int) -> None:
        leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
        self.leaves = leaves
        self.nodes = dict(append_leaves([], 0, leaves)[0])

    def hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        def lookup(ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
            return {i: self.nodes[i] for i in ids}

        return hashes_for_ranges(ranges, lookup)

    def root(self, size: int) -> bytes:
        return self.hashes([(0, size)])[0]


TREE = Tree(37)


@FUZZ
@given(HASHES | NOT_HASHES, SIZES, SIZES, PROOFS, HASHES | NOT_HASHES)
def test_inclusion_verification_raises_only_invalid_proof_on_arbitrary_input(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    raises_only(PROOF_ERRORS, lambda: verify_inclusion(leaf, index, size, proof, root))


@FUZZ
@given(SIZES, SIZES, PROOFS, HASHES | NOT_HASHES, HASHES | NOT_HASHES)
def test_consistency_verification_raises_only_invalid_proof_on_arbitrary_input(
    size1: Any, size2: Any, proof: Any, root1: Any, root2: Any
) -> None:
    raises_only(PROOF_ERRORS, lambda: verify_consistency(size1, size2, proof, root1, root2))


@st.composite
def hash_list_mutants(draw: DrawFn, hashes: list[bytes]) -> list[bytes]:
    """A true proof with a hash changed, removed, repeated or added."""
    mutated = list(hashes)
    edit = draw(st.sampled_from(("change", "remove", "repeat", "add")))
    at = draw(st.integers(0, len(mutated)))
    if edit == "change" and mutated:
        mutated[min(at, len(mutated) - 1)] = draw(HASHES)
    elif edit == "remove" and mutated:
        del mutated[min(at, len(mutated) - 1)]
    elif edit == "repeat" and mutated:
        mutated.insert(at, mutated[min(at, len(mutated) - 1)])
    else:
        mutated.insert(at, draw(HASHES))
    return mutated


InclusionCase = tuple[bytes, int, int, list[bytes], bytes]
ConsistencyCase = tuple[int, int, list[bytes], bytes, bytes]


@st.composite
def mutated_inclusion(draw: DrawFn) -> tuple[InclusionCase, InclusionCase]:
    """A true inclusion proof's case, and that case with its proof, index or size mutated."""
    size = draw(st.integers(1, len(TREE.leaves)))
    index = draw(st.integers(0, size - 1))
    proof = TREE.hashes(inclusion_proof_ranges(index, size))
    true = (TREE.leaves[index], index, size, proof, TREE.root(size))
    return true, (
        TREE.leaves[index],
        index + draw(st.sampled_from([0, 0, 1, -1])),
        size + draw(st.sampled_from([0, 0, 1, -1, 2**64])),
        draw(hash_list_mutants(proof)),
        TREE.root(size),
    )


@FUZZ
@given(mutated_inclusion())
def test_inclusion_verification_rejects_mutated_proofs_with_invalid_proof(
    cases: tuple[InclusionCase, InclusionCase],
) -> None:
    true, mutant = cases
    refuses(PROOF_ERRORS, lambda: verify_inclusion(*mutant), same=mutant == true)


@st.composite
def mutated_consistency(draw: DrawFn) -> tuple[ConsistencyCase, ConsistencyCase]:
    """A true consistency proof's case, and that case with its proof or sizes mutated."""
    size2 = draw(st.integers(1, len(TREE.leaves)))
    size1 = draw(st.integers(1, size2))
    proof = TREE.hashes(consistency_proof_ranges(size1, size2))
    true = (size1, size2, proof, TREE.root(size1), TREE.root(size2))
    return true, (
        size1 + draw(st.sampled_from([0, 0, 1, -1])),
        size2 + draw(st.sampled_from([0, 0, 1, -1, 2**64])),
        draw(hash_list_mutants(proof)),
        TREE.root(size1),
        TREE.root(size2),
    )


@FUZZ
@given(mutated_consistency())
def test_consistency_verification_rejects_mutated_proofs_with_invalid_proof(
    cases: tuple[ConsistencyCase, ConsistencyCase],
) -> None:
    true, mutant = cases
    refuses(PROOF_ERRORS, lambda: verify_consistency(*mutant), same=mutant == true)


# -- receipts ---------------------------------------------------------------------------------

RECEIPT_BUNDLE = make_bundle()
RECEIPT_FILE = RECEIPT_BUNDLE.to_json()
RECEIPT_TEXT = receipt_for(RECEIPT_BUNDLE.leaf).to_text()
EVENT_LEAF = RECEIPT_BUNDLE.leaf


def fails_a_check(data: bytes, *, same: bool) -> None:
    refuses((VerificationError,), lambda: verify_receipt(data, [KEY]), same=same)


def same_receipt_file(data: bytes) -> bool:
    """Whether ``data`` reads as the very receipt bundle the fuzzers mutate."""
    try:
        return ReceiptBundle.from_json(data) == RECEIPT_BUNDLE
    except MalformedReceipt:
        return False


@FUZZ
@given(st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_receipt_verification_fails_a_check_on_arbitrary_bytes_and_json(data: bytes) -> None:
    fails_a_check(data, same=False)


@FUZZ
@given(byte_mutants(RECEIPT_FILE))
def test_receipt_verification_fails_a_check_on_a_mutated_file(data: bytes) -> None:
    fails_a_check(data, same=same_receipt_file(data))


@FUZZ
@given(json_mutants(json.loads(RECEIPT_FILE)))
def test_receipt_verification_fails_a_check_on_mutated_members(value: Any) -> None:
    data = json.dumps(value).encode("utf-8", "surrogatepass")
    fails_a_check(data, same=same_receipt_file(data))


@FUZZ
@given(text_mutants(RECEIPT_TEXT))
def test_receipt_verification_fails_a_check_on_malformed_receipts_a_pinned_key_signed(
    text: str,
) -> None:
    raises_only((MalformedReceipt,), lambda: Receipt.from_text(text))
    obj = json.loads(RECEIPT_FILE)
    obj["receipt"] = sign_note(text, [LOG]).decode("utf-8")
    # Signed by the log's key, but saying something else than the leaf records.
    fails_a_check(json.dumps(obj).encode("utf-8"), same=text == RECEIPT_TEXT)


@FUZZ
@given(json_mutants(json.loads(RECEIPT_BUNDLE.leaf)))
def test_receipt_verification_fails_a_check_on_a_mutated_ingest_event(event: Any) -> None:
    # A leaf that the receipt, the checkpoint and the proof all commit to, so that the
    # fuzzed event reaches check (5).
    leaf = json.dumps(event).encode("utf-8", "surrogatepass")
    receipt = receipt_for(EVENT_LEAF, leaf_hash=leaf_hash(leaf))
    same = attested(event) == attested(json.loads(EVENT_LEAF))
    fails_a_check(make_bundle(leaf, receipt=receipt).to_json(), same=same)


def attested(event: Any) -> Any:
    """What a receipt attests of its ingest event, and check (5) compares: the version, type,
    subject kind and id, time, size and digests (a change elsewhere, the actor say, is not
    the receipt's to catch)."""
    if not isinstance(event, dict):
        return None
    subject, data = event.get("subject"), event.get("data")
    subject = subject if isinstance(subject, dict) else {}
    data = data if isinstance(data, dict) else {}
    fields = [event.get("v"), event.get("type"), subject.get("kind"), subject.get("id")]
    fields += [event.get("time"), data.get("size"), data.get("digests")]
    return json.dumps(fields, sort_keys=True)


# -- RFC 9530 digest fields -------------------------------------------------------------------

DIGEST_FIELD = http_digest({"sha256": "ab" * 32, "sha512": "cd" * 64, "md5": "ef" * 16})


@FUZZ
@given(
    st.text(max_size=120)
    | byte_mutants(DIGEST_FIELD.encode()).map(lambda b: b.decode("latin-1"))
    | st.lists(
        st.tuples(st.sampled_from(["sha-256", "SHA-512", "md5", "sha", ""]), st.text(max_size=50)),
        max_size=4,
    ).map(lambda members: ", ".join(f"{k}={v}" for k, v in members))
)
def test_digest_field_parsing_raises_only_bad_request(field: str) -> None:
    raises_only((CustosError,), lambda: parse_http_digest(field))


# -- custody events ---------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The JSON as a canonical leaf would hold it, so that Event.decode reads its fields."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")


@FUZZ
@given(
    st.binary(max_size=200)
    | byte_mutants(EVENT_LEAF)
    | st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth)
)
def test_event_decoding_raises_only_invalid_event_on_arbitrary_bytes(leaf: bytes) -> None:
    raises_only((InvalidEvent,), lambda: Event.decode(leaf))


@FUZZ
@given(json_mutants(json.loads(EVENT_LEAF)))
def test_event_decoding_raises_only_invalid_event_on_mutated_fields(event: Any) -> None:
    raises_only((InvalidEvent,), lambda: Event.decode(canonical(event)))


# -- order documents --------------------------------------------------------------------------

ORDER_DOCUMENT = order_document()


@FUZZ
@given(JSON_VALUES | json_mutants(ORDER_DOCUMENT))
def test_order_document_parsing_raises_only_bad_request(value: Any) -> None:
    raises_only((CustosError,), lambda: OrderDocument.from_json(value))


# -- exhibit bundles --------------------------------------------------------------------------


@dataclass(frozen=True)
class Exhibit:
    """A sound exhibit bundle, its members, and the log key that signed it."""

    bundle: bytes = field(repr=False)
    members: dict[str, bytes] = field(repr=False)
    key: str
    signer: NoteSigner


@pytest.fixture(scope="module")
def exhibit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exhibit]:
    """A provider's response to a production order exported with its content and a known
    checkpoint, so that the bundle holds every kind of member docs/bundle.md names."""
    tmp = tmp_path_factory.mktemp("exhibit")
    config = make_config(tmp, f"sqlite:///{tmp / 'home' / 'custos.db'}")
    initialise(config).deployment.close()
    dep = open_deployment(config)
    people = dep.principals
    operator = people.get("operator").actor
    court = people.add("clerk", "court", operator)[0].actor
    approver = people.add("judge", "approver", operator)[0].actor
    authority = people.add("prosecutor", "authority", operator)[0].actor
    isp = add_provider(dep)
    staff = people.add("isp-desk", "provider", operator, provider_id=isp.id)[0].actor
    in_case(dep, "CASE-1", "prosecutor", "judge", "clerk")  # the order's case
    known = dep.ledger.checkpoint(covering=dep.ledger.size() - 1).note
    order = dep.orders.draft(order_document(isp.id), authority).stored.id
    dep.orders.act(order, "submit", {}, authority)
    dep.orders.act(order, "approve", {}, approver)
    dep.orders.act(order, "acknowledge", {}, staff, provider_id=isp.id)
    response = dep.orders.open_response(order, {"description": "records"}, staff, isp.id).id
    dep.orders.receive_response(order, response, io.BytesIO(b"row\n" * 20), staff, isp.id)
    out = io.BytesIO()
    dep.bundles.export([response], out, by=court, with_content=True, known_checkpoint=known)
    with zipfile.ZipFile(out) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    yield Exhibit(out.getvalue(), members, dep.keys.current.verifier_key, dep.keys.current.signer)
    dep.close()


def member_names(members: Sequence[str]) -> SearchStrategy[str]:
    """Names a member may be given: another member's, a near miss, a hostile path."""
    hostile = ["../checkpoint", "/checkpoint", "items\\x", "items/./x", "items/ev_0/events/1"]
    # zipfile cuts a name at its first NUL, and cannot write the empty name that leaves, nor
    # encode a lone surrogate.
    characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    names = st.text(characters, min_size=1, max_size=40)
    return st.sampled_from([*members, *hostile]) | names


@st.composite
def rezipped_bundles(draw: DrawFn, exhibit: Exhibit) -> bytes:
    """The sound bundle with one to three of its members edited (bytes, JSON values, or a
    note's text re-signed with the log's key), dropped, renamed or joined by another (a
    duplicate name included), zipped again, stored or deflated."""
    members = dict(exhibit.members)
    extra: list[tuple[str, bytes]] = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(members)))
        data = members[name]
        edit = draw(st.sampled_from(("bytes", "json", "resign", "drop", "rename", "add")))
        if edit == "json":
            try:  # bundle.json, the events and receipt.json (unless already edited)
                parsed = json.loads(data)
            except ValueError:
                edit = "bytes"
        if edit == "bytes":
            members[name] = draw(byte_mutants(data))
        elif edit == "json":
            value = draw(json_mutants(parsed))
            members[name] = json.dumps(value).encode("utf-8", "surrogatepass")
        elif edit == "resign":
            with contextlib.suppress(MalformedNote):
                text = draw(text_mutants(Note.from_bytes(data).text))
                members[name] = sign_note(text, [exhibit.signer])
        elif edit == "drop" and len(members) > 1:
            del members[name]
        elif edit == "rename":
            members[draw(member_names(list(members)))] = members.pop(name)
        else:
            extra.append((draw(member_names(list(members))), draw(st.binary(max_size=64))))
    out = io.BytesIO()
    compression = draw(st.sampled_from((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)))
    with zipfile.ZipFile(out, "w", compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: that is the point
        for name, data in [*members.items(), *extra]:
            archive.writestr(name, data)
    return out.getvalue()


def test_a_sound_exhibit_bundle_verifies(exhibit: Exhibit) -> None:
    assert verify_bundle(exhibit.bundle, [exhibit.key]).ok


def reads_as(bundle: bytes, exhibit: Exhibit) -> bool:
    """Whether ``bundle`` (which verified) holds every member the verifier reads with the
    meaning the sound bundle's has: it may differ only in how the ZIP stores them, in
    ``report.html`` (the service's own report, which no step reads) and in members outside
    the layout, which the verifier lists as not read."""
    archive = open_archive(bundle)
    unread = {*archive.unread, "report.html"}
    archive.close()
    with zipfile.ZipFile(io.BytesIO(bundle)) as opened:  # what is not read may not inflate
        read = {
            info.filename: meaning(opened.read(info))
            for info in opened.infolist()
            if info.filename not in unread
        }
    return read == {n: meaning(d) for n, d in exhibit.members.items() if n != "report.html"}


def reports_and_refuses(bundle: bytes, exhibit: Exhibit) -> None:
    # verify_bundle raises nothing for bytes and well-formed pinned keys: it reports, and a
    # bundle that is not the sound one in what the verifier reads fails a step.
    verification = verify_bundle(bundle, [exhibit.key])
    assert isinstance(verification, ExhibitVerification)
    if verification.ok:
        assert reads_as(bundle, exhibit), "a mutated bundle verified"


@FUZZ
@given(data=st.binary(max_size=400) | st.data())
def test_bundle_verification_refuses_arbitrary_and_mutated_bytes(
    exhibit: Exhibit, data: Any
) -> None:
    bundle = data if isinstance(data, bytes) else data.draw(byte_mutants(exhibit.bundle))
    reports_and_refuses(bundle, exhibit)


@FUZZ
@given(data=st.data())
def test_bundle_verification_refuses_mutated_and_rezipped_members(
    exhibit: Exhibit, data: st.DataObject
) -> None:
    reports_and_refuses(data.draw(rezipped_bundles(exhibit)), exhibit)


def test_the_mutations_reach_past_the_first_check() -> None:
    """The valid inputs the fuzzers mutate are themselves accepted."""
    assert open_note(VALID_NOTE, [VERIFIER]).text.startswith("custos/manifest/v1")
    assert open_checkpoint(sign_checkpoint(CHECKPOINT, [LOG]), [VERIFIER])[0] == CHECKPOINT
    assert verify_receipt(RECEIPT_FILE, [KEY]).size == 123
    assert Event.decode(EVENT_LEAF).type == "evidence.ingested"
    assert OrderDocument.from_json(ORDER_DOCUMENT).reference == ORDER_DOCUMENT["reference"]
    assert set(parse_http_digest(DIGEST_FIELD)) == {"sha256", "sha512", "md5"}
    assert base64.b64decode(json.loads(RECEIPT_FILE)["leaf"]) == EVENT_LEAF
