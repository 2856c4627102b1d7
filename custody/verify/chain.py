"""Steps (3) to (5) of the exhibit checklist, for one ledger subject: an item or its order.

(3) every event's ``tlog-proof`` proves its leaf at its index in the bundle's checkpoint;
(4) the events are the subject's, and their ``prev`` chain runs unbroken from the first event
to the last, in ledger order; (5) the signed head statement names that last event and count
as of the checkpoint. Together they say: these events are in the log, none of the subject's
events between the first and the last is missing, and (resting on the head statement's
signature) none came after the last before the checkpoint.

A check returns a sentence saying what it established, or raises CheckFailed naming the event
at fault. Standard library and the verifier's own modules only.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256 as _sha256

from custody.checkpoint import Checkpoint, MalformedCheckpoint
from custody.merkle import NODE_PREFIX as _NODE
from custody.merkle import InvalidProof, leaf_hash
from custody.note import MalformedNote, Note, NoteSignature, NoteVerificationError, NoteVerifier
from custody.note import open_note as _open_note
from custody.verify.errors import VerifierError
from custody.verify.formats import (
    HEAD_TYPE,
    MAX_PROOF_HASHES,
    NO_EVENT_HASH,
    TLOG_PROOF_HEADER,
    LeafEvent,
    MalformedMember,
    parse_event,
    parse_head,
    parse_tlog_proof,
)
from custody.verify.history import KeyIdent, KeyValidity, checkpoint_place

__all__ = [
    "CheckFailed",
    "NotApplicable",
    "PinnedKeys",
    "check_chain",
    "check_head",
    "check_inclusion",
    "read_events",
]


class CheckFailed(VerifierError):
    """A step found the bundle at fault: what is wrong, and the event, where there is one."""

    def __init__(self, message: str, event_index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.event_index = event_index


class NotApplicable(VerifierError):
    """A step has nothing to check for this bundle or item; the message says why."""


@dataclass
class PinnedKeys:
    """The keys the court pinned, and which of them signed what the verifier opened.

    One log per bundle (ARCHITECTURE.md, Conventions): once step (2) has verified the
    checkpoint, ``origin`` is its log, and every other note is opened with that log's pinned
    keys alone (a key's name is its log's origin). A signature by a pinned key of another log
    is ignored; a note signed by nothing else fails, naming that signer.
    """

    verifiers: Sequence[NoteVerifier]
    signed: dict[str, None] = field(default_factory=dict)
    """``<name>+<key hash hex>`` of each pinned key whose signature verified, in order."""
    origin: str | None = None
    """The log whose checkpoint the bundle proves against, once step (2) verified it."""
    validity: Mapping[KeyIdent, KeyValidity] | None = None
    """Where each pinned key of the log is valid, once step (2) read the key history; None
    while it has not, or when the log never rotated its key (every key valid everywhere)."""

    def of_log(self, origin: str, place: int | None = None) -> list[NoteVerifier]:
        """The pinned keys of the log ``origin`` (valid at ``place``, if given)."""
        keys = [v for v in self.verifiers if v.name == origin]
        if place is None or self.validity is None:
            return keys
        return [v for v in keys if self.valid(v.name, v.key_hash, place)]

    def valid(self, name: str, key_hash: bytes, place: int) -> bool:
        """Whether the key history lets this key of the log sign a note placed at ``place``."""
        if self.validity is None:
            return True
        validity = self.validity.get((name, key_hash))
        return validity is not None and validity.valid_at(place)

    def open_checkpoint(self, data: bytes, what: str) -> tuple[Checkpoint, Note]:
        """Open a checkpoint with the pinned keys of the log its first line names, and no
        other; CheckFailed says why it did not open."""
        try:
            unverified = Note.from_bytes(data)
        except MalformedNote as exc:
            raise CheckFailed(f"the {what} is not a well-formed signed note: {exc}") from None
        origin = unverified.text.partition("\n")[0]
        if not self.of_log(origin):
            raise CheckFailed(
                f"the {what} is of log {origin!r}, but you pinned no key of that log (its "
                f"signers: {', '.join(key_id(sig) for sig in unverified.signatures)}); a note "
                "is trusted only under the origin of its log: pin that log's key with --key"
            )
        note = self._open(data, what, origin)
        try:
            checkpoint = Checkpoint.from_text(note.text)
        except MalformedCheckpoint as exc:
            raise CheckFailed(
                f"a pinned key signed it, but the {what} is not a checkpoint: {exc}"
            ) from None
        return checkpoint, self.in_place(note, what, checkpoint_place(checkpoint.size))

    def in_place(self, note: Note, what: str, place: int) -> Note:
        """The note with only the signatures the key history lets count at ``place`` (the
        retired key's on a hand-over checkpoint drops out); CheckFailed if none is left."""
        valid = [sig for sig in note.signatures if self.valid(sig.name, sig.key_hash, place)]
        if not valid:
            raise CheckFailed(self.out_of_place(what, note.signatures, place))
        return Note(text=note.text, signatures=tuple(valid))

    def open(self, data: bytes, what: str, place: int) -> Note:
        """Open a signed note with the pinned keys of the bundle's log only (set by step
        (2)) that its key history lets sign a note placed at ledger index ``place``;
        CheckFailed says why it did not open, naming a signer of another log, or one the
        key history does not allow there."""
        if self.origin is None:
            raise CheckFailed(f"the {what} cannot be checked without the log's checkpoint")
        note = self._open(data, what, self.origin, place)
        self.record(note.signatures)
        return note

    def _open(self, data: bytes, what: str, origin: str, place: int | None = None) -> Note:
        try:
            return _open_note(data, self.of_log(origin, place))
        except MalformedNote as exc:
            raise CheckFailed(f"the {what} is not a well-formed signed note: {exc}") from None
        except NoteVerificationError as exc:
            raise CheckFailed(self._untrusted(data, what, origin, place, exc)) from None

    def record(self, signatures: Sequence[NoteSignature]) -> None:
        self.record_ids(key_id(sig) for sig in signatures)

    def record_ids(self, ids: Iterable[str]) -> None:
        for ident in ids:
            self.signed.setdefault(ident, None)

    def _untrusted(
        self,
        data: bytes,
        what: str,
        origin: str,
        place: int | None,
        exc: NoteVerificationError,
    ) -> str:
        pinned = {(v.name, v.key_hash) for v in self.verifiers}
        signatures = Note.from_bytes(data).signatures  # well formed: open_note parsed it
        ours = [sig for sig in signatures if (sig.name, sig.key_hash) in pinned]
        of_log = [sig for sig in ours if sig.name == origin]
        if (
            place is not None
            and of_log
            and not any(self.valid(sig.name, sig.key_hash, place) for sig in of_log)
        ):
            return self.out_of_place(what, of_log, place)
        if of_log:
            return (
                f"the {what} does not match its signature by a pinned key ({exc}): it was altered"
            )
        if ours:
            return (
                f"the {what} is signed only by {', '.join(key_id(sig) for sig in ours)}, a "
                f"pinned key of another log than {origin!r}, whose checkpoint the bundle proves "
                "against: a note is trusted only under the origin of the log it belongs to, so "
                "that signature is ignored"
            )
        return (
            f"the {what} is signed only by keys you did not pin "
            f"({', '.join(key_id(sig) for sig in signatures)}); a key shipped in the bundle or "
            "named in a note is never trusted: pin the log's verifier key with --key"
        )

    def out_of_place(self, what: str, signatures: Sequence[NoteSignature], place: int) -> str:
        """Why the log's own keys do not count for a note at ``place``: what the history says."""
        said = []
        for sig in signatures:
            validity = (self.validity or {}).get((sig.name, sig.key_hash))
            said.append(
                f"{key_id(sig)} ("
                + (
                    validity.describe()
                    if validity is not None
                    else "named by no rotation in the log's key history"
                )
                + ")"
            )
        return (
            f"the {what} is placed at ledger index {place}, but it is signed only by "
            f"{', '.join(said)}: the log's key history does not let that key sign there, so "
            "its signature is not trusted (a retired key signs nothing after its key.rotated)"
        )


def key_id(sig: NoteSignature) -> str:
    return f"{sig.name}+{sig.key_hash.hex()}"


def read_events(events: Mapping[int, bytes]) -> tuple[list[LeafEvent], dict[int, str]]:
    """Parse every event leaf, in ledger order: the events read, and why the others were not."""
    parsed: list[LeafEvent] = []
    unreadable: dict[int, str] = {}
    for index in sorted(events):
        try:
            parsed.append(parse_event(index, events[index]))
        except MalformedMember as exc:
            unreadable[index] = str(exc)
    return parsed, unreadable


# (3): every event's inclusion proof verifies against the checkpoint


def check_inclusion(
    events: Mapping[int, bytes],
    proofs: Mapping[int, bytes],
    checkpoint: Checkpoint,
    checkpoint_note: bytes,
) -> str:
    """Check each event's tlog-proof: well formed, carrying ``checkpoint_note`` byte for byte,
    naming the event's index and proving its leaf hash there (RFC 9162 section 2.1.3.2)."""
    faults: list[tuple[int, str]] = []
    paths = _VerifiedPaths(checkpoint.size, checkpoint.root)
    suffix = b"\n" + checkpoint_note
    for index in sorted(events):
        try:
            data = proofs[index]
            # The form the exporter writes, read at once: header, index, hash lines, the note.
            prefix = b"%s\nindex %d\n" % (_TLOG_PROOF_HEADER, index)
            block = data[len(prefix) : len(data) - len(suffix)]
            if not (
                data.startswith(prefix)
                and data.endswith(suffix)
                and len(data) >= len(prefix) + len(suffix)
                and len(block) <= MAX_PROOF_HASHES * _LINE
                and _HASH_LINES.fullmatch(block)
            ):  # anything else is read strictly, to say what is wrong with it
                proof = parse_tlog_proof(data)
                if proof.checkpoint != checkpoint_note:
                    raise CheckFailed("its proof carries another checkpoint than the bundle's")
                if proof.index != index:
                    raise CheckFailed(f"its proof is for index {proof.index}")
                block = b"".join(base64.b64encode(h) + b"\n" for h in proof.hashes)
            paths.verify(leaf_hash(events[index]), index, block)
        except (MalformedMember, InvalidProof) as exc:
            faults.append((index, str(exc)))
        except CheckFailed as exc:
            faults.append((index, exc.message))
    if faults:
        index, why = faults[0]
        more = len(faults) - 1
        others = f" (and {more} other event{'s' if more > 1 else ''})" if more else ""
        raise CheckFailed(
            f"event {index} is not proven to be in the checkpoint's tree{others}: {why}; "
            "the event's bytes, its proof or its position were altered",
            index,
        )
    first, last = min(events), max(events)
    where = (
        f"at ledger index {first} is"
        if first == last
        else f"at ledger indexes {first} to {last} are"
    )
    return f"{_count(len(events))} {where} in the log's tree of {checkpoint.size} entries"


class _VerifiedPaths:
    """RFC 9162 section 2.1.3.2 inclusion proofs against one tree, sharing their work.

    Neighbouring leaves share most of their path to the root. Each node a verified path went
    through is remembered (its position: level and index, its hash, and the proof hashes
    that led from it to the root); a later path that reaches a remembered node with the same
    hash and the same remaining proof hashes is proven without hashing the rest again. A
    path that reaches a remembered position with another hash, or with other remaining
    hashes, is refused: in one tree each position has one hash and one path to the root.
    """

    def __init__(self, size: int, root: bytes) -> None:
        self.size = size
        self.root = root
        self.known: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    def verify(self, leaf: bytes, index: int, proof: bytes) -> None:
        """``proof`` is its hashes as canonical base64 lines (each 44 characters and a
        newline); only those a path uses are decoded."""
        if not 0 <= index < self.size:
            raise InvalidProof(f"index {index} is outside the tree of {self.size} entries")
        fn, sn, level, r = index, self.size - 1, 0, leaf
        passed: list[tuple[tuple[int, int], bytes, int]] = []
        for step in range(len(proof) // _LINE):
            sibling = binascii.a2b_base64(proof[step * _LINE : (step + 1) * _LINE])
            if sn == 0:
                raise InvalidProof("the proof is longer than the tree is deep")
            if fn & 1 or fn == sn:
                r = _sha256(_NODE + sibling + r).digest()
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
                    level += 1
            else:
                r = _sha256(_NODE + r + sibling).digest()
            fn >>= 1
            sn >>= 1
            level += 1
            known = self.known.get((level, fn))
            if known is not None:
                if known != (r, proof[(step + 1) * _LINE :]):
                    raise InvalidProof(
                        "the path does not lead to the checkpoint's root (it meets a proven "
                        "node with another hash or other siblings)"
                    )
                self._remember(passed, proof)
                return
            passed.append(((level, fn), r, step))
        if sn != 0 or r != self.root:
            raise InvalidProof("the path does not lead to the checkpoint's root")
        self._remember(passed, proof)

    def _remember(self, passed: list[tuple[tuple[int, int], bytes, int]], proof: bytes) -> None:
        for position, digest, step in passed:
            self.known[position] = (digest, proof[(step + 1) * _LINE :])


_LINE = 45
"""A proof hash line: 44 characters of base64 and a newline."""
_HASH_LINES = re.compile(rb"(?:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n)*")
_TLOG_PROOF_HEADER = TLOG_PROOF_HEADER.encode("ascii")


# (4): the events belong to the subject and their prev chain is unbroken


def check_chain(
    events: Sequence[LeafEvent],
    unreadable: Mapping[int, str],
    subject: str,
    first_types: Sequence[str],
) -> str:
    """Check that every event is about ``subject`` and chains to the one before it; the first
    is of one of ``first_types`` with no ``prev``, and no later one is."""
    if unreadable:
        index = min(unreadable)
        raise CheckFailed(f"event {index} is not a custody event: {unreadable[index]}", index)
    by_hash = {event.leaf_hash.hex(): event for event in events}
    previous: LeafEvent | None = None
    for event in events:
        if event.subject != subject:
            raise CheckFailed(
                f"event {event.index} is about {event.subject}, not {subject}", event.index
            )
        if previous is None:
            if event.prev is not None or event.type not in first_types:
                raise CheckFailed(
                    f"the first event, {event.index}, is a {event.type} with prev "
                    f"{event.prev}, not the {' or '.join(first_types)} that starts the record "
                    "(prev null): the start of the chain is missing",
                    event.index,
                )
        elif event.prev != previous.leaf_hash.hex():
            raise CheckFailed(_break(event, previous, by_hash), event.index)
        elif event.type in first_types:
            raise CheckFailed(f"event {event.index} is a second {event.type}", event.index)
        previous = event
    first, last = events[0], events[-1]
    if first is last:
        return f"the one event of {subject} is the {first.type} at {first.index}, with no prev"
    return (
        f"{_count(len(events))} of {subject}, each chained by prev to the one before, from the "
        f"{first.type} at {first.index} to the {last.type} at {last.index}"
    )


def _break(event: LeafEvent, previous: LeafEvent, by_hash: Mapping[str, LeafEvent]) -> str:
    named = by_hash.get(event.prev or "")
    if named is not None:
        return (
            f"event {event.index}'s prev names event {named.index}, not event "
            f"{previous.index} before it: the events are out of order"
        )
    if event.prev is None:
        return f"event {event.index} has no prev, but follows event {previous.index}"
    return (
        f"event {event.index}'s prev is the leaf hash {event.prev}, which is not event "
        f"{previous.index} before it nor any event in the bundle: an event of the subject "
        f"between {previous.index} and {event.index} is missing"
    )


# (5): the signed head statement matches the last event and the count


def check_head(
    head_note: bytes,
    keys: PinnedKeys,
    subject: str,
    events: Sequence[LeafEvent],
    checkpoint: Checkpoint,
) -> tuple[tuple[str, ...], str]:
    """Check the ``custos/head/v1`` statement: signed by a pinned key, about ``subject``, as of
    ``checkpoint``, naming the last of ``events`` and their count. Returns the pinned keys
    that signed it, and what it established."""
    note = keys.open(head_note, f"head statement of {subject}", checkpoint_place(checkpoint.size))
    try:
        head = parse_head(note.text)
    except MalformedMember as exc:
        raise CheckFailed(f"a pinned key signed it, but it is not a {HEAD_TYPE}: {exc}") from None
    if head.subject != subject:
        raise CheckFailed(f"the head statement is about {head.subject}, not {subject}")
    root = base64.b64encode(checkpoint.root).decode("ascii")
    if head.tree_size != checkpoint.size or head.checkpoint_root != root:
        raise CheckFailed(
            f"the head statement is as of a tree of {head.tree_size} entries with root "
            f"{head.checkpoint_root}, not the bundle's checkpoint ({checkpoint.size}, {root})"
        )
    if not events:
        if (head.count, head.last_index, head.last_leaf_hash) != (0, 0, NO_EVENT_HASH):
            raise CheckFailed(
                f"the head statement says {subject} had {_count(head.count)}, the last at index "
                f"{head.last_index}, but the bundle holds none: they were left out",
                head.last_index,
            )
        signers = tuple(key_id(sig) for sig in note.signatures)
        return signers, (
            f"signed by {', '.join(signers)}: {subject} had no event when the log had "
            f"{head.tree_size} entries"
        )
    last = events[-1]
    if head.last_index > last.index:
        raise CheckFailed(
            f"the head statement says the last event of {subject} is at index "
            f"{head.last_index} ({head.count} events), but the bundle's last is at {last.index} "
            f"({len(events)} events): events after {last.index} were left out",
            head.last_index,
        )
    if head.last_index != last.index or head.last_leaf_hash != last.leaf_hash.hex():
        raise CheckFailed(
            f"the head statement names event {head.last_index} with leaf hash "
            f"{head.last_leaf_hash} as the last, but the bundle's last is event {last.index} "
            f"with leaf hash {last.leaf_hash.hex()}",
            last.index,
        )
    if head.count != len(events):
        raise CheckFailed(
            f"the head statement counts {head.count} events of {subject}, the bundle holds "
            f"{len(events)}"
        )
    signers = tuple(key_id(sig) for sig in note.signatures)
    return signers, (
        f"signed by {', '.join(signers)}: {subject} had {_count(head.count)}, the last at index "
        f"{head.last_index}, when the log had {head.tree_size} entries"
    )


def _count(n: int) -> str:
    return "1 event" if n == 1 else f"{n} events"
