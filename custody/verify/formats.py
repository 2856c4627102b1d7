"""The text formats inside an exhibit bundle (docs/bundle.md): their one definition, written
by custody.bundle and parsed strictly here.

Each parser accepts exactly what a conforming writer produces and raises MalformedMember,
saying what is wrong, on anything else: a C2SP ``tlog-proof`` (c2sp.org/tlog-proof@v1), the
bundle's consistency proof (``c2sp.org/custos-consistency@v1``), the ``custos/head/v1``
statement, the index ``bundle.json``, an order's document salt, a disclosed text with its
salt (an opening) and a custody event leaf.
Parsing says nothing about truth: whether a proof proves, or a signature verifies, is for the
verifier's steps. Each value object writes itself (``to_bytes``, ``to_text``, ``to_json``) in
the one form its parser accepts.

Standard library only: this module is part of the offline verifier. An event's bytes are
bound to the ledger by their leaf hash, so only their meaning is read here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from custody.commitment import SALT_SIZE
from custody.event_types import EVENT_VERSION
from custody.json_codec import canonical_json, strict_loads
from custody.merkle import HASH_SIZE, leaf_hash
from custody.note_types import HEAD_TYPE, json_note_body, json_note_text
from custody.verify.errors import VerifierError

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_V1",
    "BUNDLE_FORMAT_V2",
    "CONSISTENCY_HEADER",
    "HEAD_TYPE",
    "KEY_FOLDER",
    "KEY_SUBJECT",
    "MAX_PROOF_HASHES",
    "NO_EVENT_HASH",
    "SALT_SIZE",
    "TLOG_PROOF_HEADER",
    "BundleIndex",
    "ConsistencyProof",
    "HeadStatement",
    "LeafEvent",
    "MalformedMember",
    "Opening",
    "TlogProof",
    "is_evidence_id",
    "member_index",
    "parse_bundle_index",
    "parse_consistency",
    "parse_event",
    "parse_head",
    "parse_opening",
    "parse_salt",
    "parse_tlog_proof",
    "salt_member",
]

BUNDLE_FORMAT = "custos/exhibit/v3"
"""The format Custos writes: v2, and the disclosed findings and notes of its items
(``items/<id>/disclosed/``) and the names of the people and providers its events mention
(``parties/``)."""
BUNDLE_FORMAT_V2 = "custos/exhibit/v2"
"""The format Custos wrote before bundles carried disclosures and names; still verified."""
BUNDLE_FORMAT_V1 = "custos/exhibit/v1"
"""The format Custos wrote before bundles carried the key history; still verified."""
FORMATS = (BUNDLE_FORMAT, BUNDLE_FORMAT_V2, BUNDLE_FORMAT_V1)
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
CONSISTENCY_HEADER = "c2sp.org/custos-consistency@v1"
KEY_SUBJECT = "key:service"
"""The ledger subject of the service key's history: its ``key.rotated`` events."""
KEY_FOLDER = "log/key/"
"""Where a bundle holds the key history: its head, events and proofs, as an item's."""
NO_EVENT_HASH = "0" * 64
"""``last_leaf_hash`` of a head statement counting no event (``last_index`` is then 0)."""
MAX_PROOF_HASHES = 64
"""Longest RFC 9162 proof of a tree of at most 2**64 - 1 leaves."""
MAX_TREE_SIZE = 2**64 - 1

_EVIDENCE_ID = re.compile(r"ev_[0-9a-f]{16}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_SALT_LINE = re.compile(rb"[0-9a-f]{%d}\n" % (2 * SALT_SIZE))
_HEX_SALT = re.compile(f"[0-9a-f]{{{2 * SALT_SIZE}}}")
# Lines of canonical base64 of a 32-byte hash: 43 characters, the last with its two spare bits
# zero, then "=".
_B64_HASHES = re.compile(r"(?:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n)*")
_EVENT_FIELDS = frozenset({"v", "type", "time", "actor", "subject", "prev", "data"})
_HEAD_FIELDS = frozenset(
    {"checkpoint_root", "count", "last_index", "last_leaf_hash", "subject", "tree_size"}
)
_INDEX_FIELDS = frozenset(
    {"format", "origin", "checkpoint", "items", "known_checkpoint", "with_content"}
)
# What bundle.json adds from custos/exhibit/v3 on.
_INDEX_FIELDS_V3 = _INDEX_FIELDS | {"disclosed"}
_OPENING_FIELDS = frozenset({"salt", "text"})


class MalformedMember(VerifierError, ValueError):
    """A bundle member is not in the format docs/bundle.md gives it."""


def is_evidence_id(value: object) -> bool:
    """Report whether value is an evidence id, ``ev_`` and 16 lowercase hex digits."""
    return isinstance(value, str) and _EVIDENCE_ID.fullmatch(value) is not None


def member_index(index: int) -> str:
    """A ledger index as a member name: 20 decimal digits, so names sort in ledger order."""
    return f"{index:020d}"


# -- C2SP tlog-proof -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    """An inclusion proof of the entry at ``index`` in the tree of the embedded checkpoint."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    """The signed checkpoint note, verbatim."""
    extra: bytes | None = None

    def to_bytes(self) -> bytes:
        """The proof as its member holds it."""
        extra = "" if self.extra is None else f"extra {_b64encode(self.extra)}\n"
        return (
            f"{TLOG_PROOF_HEADER}\n{extra}index {self.index}\n{_lines(self.hashes)}\n".encode(
                "ascii"
            )
            + self.checkpoint
        )


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a c2sp.org/tlog-proof@v1: the header line, an optional ``extra`` line, ``index
    N``, one base64 hash per line, an empty line, then the checkpoint note verbatim."""
    head, blank, checkpoint = data.partition(b"\n\n")
    if not blank or not checkpoint:
        raise MalformedMember("a tlog-proof needs an empty line, then its checkpoint")
    lines = _ascii(head, "the tlog-proof").split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise MalformedMember(f"the first line of a tlog-proof is {TLOG_PROOF_HEADER}")
    at = 1
    extra = None
    if len(lines) > at and lines[at].startswith("extra "):
        extra = _b64(lines[at][len("extra ") :], "the extra data")
        at += 1
    if len(lines) <= at or not lines[at].startswith("index "):
        raise MalformedMember("a tlog-proof names its entry on an 'index N' line")
    index = _decimal(lines[at][len("index ") :], "the proof's index")
    hashes = lines[at + 1 :]
    if len(hashes) > MAX_PROOF_HASHES:
        raise MalformedMember(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
    return TlogProof(index=index, hashes=_hashes(hashes), checkpoint=checkpoint, extra=extra)


# -- the consistency proof -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 section 2.1.4 proof that the tree of ``size1`` is a prefix of ``size2``'s."""

    size1: int
    size2: int
    hashes: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """The proof as the ``consistency`` member holds it."""
        head = f"{CONSISTENCY_HEADER}\nfrom {self.size1}\nto {self.size2}\n"
        return (head + _lines(self.hashes)).encode("ascii")


def parse_consistency(data: bytes) -> ConsistencyProof:
    """Parse the ``consistency`` member: its header line, ``from N``, ``to M``, then one base64
    hash per line, each line ending in a newline."""
    text = _ascii(data, "the consistency proof")
    if not text.endswith("\n"):
        raise MalformedMember("the consistency proof ends in a newline")
    lines = text[:-1].split("\n")
    if lines[0] != CONSISTENCY_HEADER:
        raise MalformedMember(f"the first line of the consistency proof is {CONSISTENCY_HEADER}")
    if len(lines) < 3 or not lines[1].startswith("from ") or not lines[2].startswith("to "):
        raise MalformedMember("the consistency proof names its sizes on 'from N' and 'to M' lines")
    hashes = lines[3:]
    if len(hashes) > MAX_PROOF_HASHES:
        raise MalformedMember(f"a consistency proof has at most {MAX_PROOF_HASHES} hashes")
    return ConsistencyProof(
        size1=_decimal(lines[1][len("from ") :], "the 'from' size"),
        size2=_decimal(lines[2][len("to ") :], "the 'to' size"),
        hashes=_hashes(hashes),
    )


# -- the head statement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadStatement:
    """How many events ``subject`` had, and which was last, as of a checkpoint."""

    subject: str
    count: int
    last_index: int
    last_leaf_hash: str
    tree_size: int
    checkpoint_root: str

    def to_text(self) -> str:
        """The note text a head statement is signed as: the type line, then RFC 8785 JSON."""
        body = {
            "checkpoint_root": self.checkpoint_root,
            "count": self.count,
            "last_index": self.last_index,
            "last_leaf_hash": self.last_leaf_hash,
            "subject": self.subject,
            "tree_size": self.tree_size,
        }
        return json_note_text(HEAD_TYPE, body)


def parse_head(text: str) -> HeadStatement:
    """Parse a ``custos/head/v1`` note text: the type line, one JSON line, a newline."""
    line = json_note_body(text, HEAD_TYPE)
    if line is None:
        raise MalformedMember(f"a head statement is the line {HEAD_TYPE}, then one JSON line")
    obj = _json_object(line.encode("utf-8"), "the head statement", _HEAD_FIELDS)
    for name in ("count", "last_index", "tree_size"):
        if not _is_int(obj[name]) or not 0 <= obj[name] <= MAX_TREE_SIZE:
            raise MalformedMember(f"the head statement's {name} is not a tree position")
    for name in ("subject", "checkpoint_root"):
        if not isinstance(obj[name], str):
            raise MalformedMember(f"the head statement's {name} is not a string")
    if not isinstance(obj["last_leaf_hash"], str) or not _HEX_HASH.fullmatch(obj["last_leaf_hash"]):
        raise MalformedMember("the head statement's last_leaf_hash is not a lowercase hex hash")
    return HeadStatement(
        subject=obj["subject"],
        count=obj["count"],
        last_index=obj["last_index"],
        last_leaf_hash=obj["last_leaf_hash"],
        tree_size=obj["tree_size"],
        checkpoint_root=obj["checkpoint_root"],
    )


# -- an order's document salt ---------------------------------------------------------------------


def salt_member(salt: bytes) -> bytes:
    """``order/salt``: the salt as lowercase hex and a newline."""
    return salt.hex().encode("ascii") + b"\n"


def parse_salt(data: bytes) -> bytes:
    """Parse ``order/salt``: the 32-byte salt of the order's document commitment, as
    lowercase hex and a newline."""
    if _SALT_LINE.fullmatch(data) is None:
        raise MalformedMember(
            f"a salt is {SALT_SIZE} bytes as {2 * SALT_SIZE} lowercase hex digits and a newline"
        )
    return bytes.fromhex(data[:-1].decode("ascii"))


# -- a disclosed text and its salt (an opening of a commitment) ------------------------------------


@dataclass(frozen=True)
class Opening:
    """What opens a salted commitment (custody.commitment): the text and its salt. A bundle
    holds one for each disclosed finding or note (``items/<id>/disclosed/<index>``) and each
    display name (``parties/<id>/names/<index>``), by the ledger index of the event that
    commits to it."""

    salt: bytes
    text: str

    def to_json(self) -> bytes:
        """The member: ``{"salt": "<64 hex>", "text": "..."}`` as RFC 8785 JSON."""
        return canonical_json({"salt": self.salt.hex(), "text": self.text})


def parse_opening(data: bytes) -> Opening:
    """Parse a disclosure or a name member: exactly a salt (lowercase hex) and a text."""
    obj = _json_object(data, "the disclosed text", _OPENING_FIELDS)
    salt, text = obj["salt"], obj["text"]
    if not isinstance(salt, str) or _HEX_SALT.fullmatch(salt) is None:
        raise MalformedMember(
            f"the disclosed salt is {SALT_SIZE} bytes as {2 * SALT_SIZE} lowercase hex digits"
        )
    if not isinstance(text, str):
        raise MalformedMember("the disclosed text is a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedMember("the disclosed text is not UTF-8 text") from None
    return Opening(bytes.fromhex(salt), text)


# -- bundle.json -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleIndex:
    """``bundle.json``: what the bundle says it holds. It is signed by nobody, so it only
    says where to look; every claim in it is checked against signed members."""

    origin: str
    checkpoint_size: int
    checkpoint_root: str
    items: tuple[str, ...]
    known_checkpoint: bool
    with_content: bool
    format: str = BUNDLE_FORMAT
    """BUNDLE_FORMAT, or an older one of FORMATS."""
    disclosed: bool = False
    """From v3: whether the bundle discloses its items' findings and notes (it does when its
    exporter may read them, custody.disclosure); always false before v3."""

    @property
    def version(self) -> int:
        """The format's version number: 1, 2 or 3."""
        return len(FORMATS) - FORMATS.index(self.format)

    def to_json(self) -> bytes:
        """``bundle.json`` as RFC 8785 JSON."""
        index: dict[str, Any] = {
            "format": self.format,
            "origin": self.origin,
            "checkpoint": {"size": self.checkpoint_size, "root": self.checkpoint_root},
            "items": list(self.items),
            "known_checkpoint": self.known_checkpoint,
            "with_content": self.with_content,
        }
        if self.version >= 3:
            index["disclosed"] = self.disclosed
        return canonical_json(index)


def parse_bundle_index(data: bytes) -> BundleIndex:
    """Parse ``bundle.json`` strictly: exactly its documented members, of their types."""
    obj = _json_object(data, "bundle.json", None)
    if obj.get("format") not in FORMATS:
        raise MalformedMember(
            f"bundle.json names format {obj.get('format')!r}, not {BUNDLE_FORMAT} "
            f"(or {BUNDLE_FORMAT_V2}, {BUNDLE_FORMAT_V1})"
        )
    fields = _INDEX_FIELDS_V3 if obj["format"] == BUNDLE_FORMAT else _INDEX_FIELDS
    _check_members(obj, f"bundle.json of {obj['format']}", fields)
    checkpoint = obj["checkpoint"]
    if (
        not isinstance(checkpoint, dict)
        or set(checkpoint) != {"size", "root"}
        or not _is_int(checkpoint["size"])
        or not isinstance(checkpoint["root"], str)
    ):
        raise MalformedMember('bundle.json\'s checkpoint is {"size": N, "root": "<base64>"}')
    items = obj["items"]
    if not isinstance(items, list) or not items or not all(is_evidence_id(i) for i in items):
        raise MalformedMember("bundle.json's items are a non-empty list of evidence ids")
    if len(set(items)) != len(items):
        raise MalformedMember("bundle.json names an item twice")
    for name in sorted(fields & {"known_checkpoint", "with_content", "disclosed"}):
        if not isinstance(obj[name], bool):
            raise MalformedMember(f"bundle.json's {name} is true or false")
    if not isinstance(obj["origin"], str):
        raise MalformedMember("bundle.json's origin is a string")
    return BundleIndex(
        origin=obj["origin"],
        checkpoint_size=checkpoint["size"],
        checkpoint_root=checkpoint["root"],
        items=tuple(items),
        known_checkpoint=obj["known_checkpoint"],
        with_content=obj["with_content"],
        format=obj["format"],
        disclosed=obj.get("disclosed", False),
    )


# -- custody events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafEvent:
    """A custody event as read from its exact leaf bytes, with its ledger index."""

    index: int
    leaf: bytes
    leaf_hash: bytes
    type: str
    time: str
    actor_id: str
    actor_role: str
    subject: str
    """``<kind>:<id>``, as the ledger indexes subjects."""
    prev: str | None
    data: dict[str, Any]


def parse_event(index: int, leaf: bytes) -> LeafEvent:
    """Read a v1 custody event leaf (ARCHITECTURE.md, Events) recorded at ``index``."""
    obj = _json_object(leaf, "the event", _EVENT_FIELDS)
    if not _is_int(obj["v"]) or obj["v"] != EVENT_VERSION:
        raise MalformedMember(f"the event is not a version {EVENT_VERSION} custody event")
    actor, subject = obj["actor"], obj["subject"]
    if not (
        isinstance(actor, dict)
        and set(actor) == {"id", "role"}
        and all(isinstance(v, str) for v in actor.values())
    ):
        raise MalformedMember('the event\'s actor is {"id": .., "role": ..}')
    if not (
        isinstance(subject, dict)
        and set(subject) == {"kind", "id"}
        and all(isinstance(v, str) for v in subject.values())
    ):
        raise MalformedMember('the event\'s subject is {"kind": .., "id": ..}')
    prev = obj["prev"]
    if prev is not None and (not isinstance(prev, str) or not _HEX_HASH.fullmatch(prev)):
        raise MalformedMember("the event's prev is null or a lowercase hex leaf hash")
    if not isinstance(obj["type"], str) or not isinstance(obj["time"], str):
        raise MalformedMember("the event's type and time are strings")
    if not isinstance(obj["data"], dict):
        raise MalformedMember("the event's data is an object")
    return LeafEvent(
        index=index,
        leaf=leaf,
        leaf_hash=leaf_hash(leaf),
        type=obj["type"],
        time=obj["time"],
        actor_id=actor["id"],
        actor_role=actor["role"],
        subject=f"{subject['kind']}:{subject['id']}",
        prev=prev,
        data=obj["data"],
    )


# -- shared ----------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _ascii(data: bytes, what: str) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMember(f"{what} holds a byte that is not ASCII") from None


def _decimal(value: str, what: str) -> int:
    if _DECIMAL.fullmatch(value) is None or int(value) > MAX_TREE_SIZE:
        raise MalformedMember(f"{what} {value!r} is not a canonical decimal tree position")
    return int(value)


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _lines(hashes: Sequence[bytes]) -> str:
    """One base64 hash per line, each line ending in a newline."""
    return "".join(_b64encode(h) + "\n" for h in hashes)


def _b64(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMember(f"{what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise MalformedMember(f"{what} is not canonical base64")
    return raw


def _hashes(lines: list[str]) -> tuple[bytes, ...]:
    """Decode one base64 hash per line (the proofs' hot path: one pattern checks them all)."""
    if _B64_HASHES.fullmatch("\n".join(lines) + "\n" if lines else ""):
        return tuple(binascii.a2b_base64(line) for line in lines)
    for n, line in enumerate(lines):
        raw = _b64(line, f"proof hash {n}")
        if len(raw) != HASH_SIZE:
            raise MalformedMember(
                f"proof hash {n} is {len(raw)} bytes, not a {HASH_SIZE}-byte hash"
            )
    raise MalformedMember("a proof hash is not in canonical base64")


def _json_object(data: bytes, what: str, fields: frozenset[str] | None) -> dict[str, Any]:
    """Decode UTF-8 JSON holding one object with exactly ``fields`` (any, if None)."""
    try:
        obj = strict_loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedMember(f"{what} is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedMember(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedMember(f"{what} is not a JSON object")
    if fields is not None:
        _check_members(obj, what, fields)
    return obj


def _check_members(obj: dict[str, Any], what: str, fields: frozenset[str]) -> None:
    if set(obj) != fields:
        missing = ", ".join(sorted(fields - set(obj))) or "none"
        unknown = ", ".join(sorted(set(obj) - fields)) or "none"
        raise MalformedMember(f"{what} has the wrong members: missing {missing}; unknown {unknown}")
