"""Offline verification of an exhibit bundle (``custos/exhibit/v3``, docs/bundle.md).

A court, the defence or an expert witness checks an exhibit's whole chain of custody from the
bundle alone, trusting nothing but the verifier keys they pinned beforehand: a key found only
inside the bundle is never trusted. The procedure is the numbered checklist
:data:`BUNDLE_CHECKS` of docs/bundle.md. :func:`verify_bundle` runs it with each step tagged
by its number; the steps live in ``archive`` (1), here (2, 8), ``chain`` (3 to 5, for the item
and for its order), ``item`` (6, 7, 9, 10) and ``parties`` (11), so the code can be read
against the printed report line by line.

Every step reports, for the bundle or for each item: passed, failed (naming the item and the
event at fault) or skipped. A step that needs another's result is not run when that one did
not pass, and says so; the others still run, so one fault does not hide another.

Imports only the standard library, ``cryptography`` (through custody.note) and the
verifier's own modules.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from custody.checkpoint import Checkpoint, NotExtended, check_extends
from custody.note import MalformedNote, Note
from custody.verify.archive import Archive, ArchiveError, open_archive
from custody.verify.chain import (
    CheckFailed,
    NotApplicable,
    PinnedKeys,
    check_chain,
    check_head,
    check_inclusion,
    key_id,
    read_events,
)
from custody.verify.cosignature import CosignatureVerifier, verify_cosignatures
from custody.verify.errors import PinnedKeyError
from custody.verify.formats import (
    BUNDLE_FORMAT_V1,
    KEY_SUBJECT,
    LeafEvent,
    MalformedMember,
    parse_consistency,
)
from custody.verify.history import (
    KEY_ROTATED,
    MalformedHistory,
    checkpoint_place,
    key_validity,
)
from custody.verify.item import (
    INTAKE_EVENTS,
    Digested,
    ItemState,
    check_bytes,
    check_disclosures,
    check_manifest,
    check_order,
    digest,
    read_file,
)
from custody.verify.parties import check_parties, mentioned_principals
from custody.verify.receipt import pinned_verifiers
from custody.verify.results import (
    FAIL,
    NOT_APPLICABLE,
    NOT_RUN,
    PASS,
    SKIPPED,
    ExhibitVerification,
    ItemResult,
    PartyResult,
    StepResult,
)

__all__ = ["BUNDLE_CHECKS", "verify_bundle"]

BUNDLE_CHECKS: tuple[str, ...] = (
    "the archive is well formed and bounded",
    "the checkpoint is signed by a pinned key",
    "every event's inclusion proof verifies against the checkpoint",
    "the events belong to the item and their prev chain runs unbroken",
    "the signed head statement matches the last event and the count",
    "the manifest is signed by a pinned key and matches the ingest event",
    "the artifact's bytes match every digest of the ingest event",
    "the checkpoint is consistent with the court's earlier one and cosigned by its witnesses",
    "the order document, the order's events and the receipt verify",
    "the disclosed findings and notes open the commitments of their events",
    "the names of the people and providers match their ledger records",
)
"""The numbered steps of docs/bundle.md; step (n) is ``BUNDLE_CHECKS[n - 1]``."""


def verify_bundle(
    bundle: bytes | str | os.PathLike[str],
    keys: Sequence[str],
    *,
    artifact: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    known_checkpoint: bytes | None = None,
    witnesses: Sequence[str] = (),
    min_witnesses: int = 0,
    max_age: int | None = None,
    now: float | None = None,
) -> ExhibitVerification:
    """Verify an exhibit bundle (its bytes, or a path) against pinned verifier keys.

    ``artifact`` is a file the court holds (or several), each checked against the digests
    recorded at intake of the item whose SHA-256 it has (step 7); ``known_checkpoint`` a
    checkpoint it kept earlier, which the bundle's must extend (step 8). ``witnesses`` are
    the witness keys the court pinned: with ``min_witnesses`` K, step 8 fails unless K of
    them cosigned the checkpoint; with ``max_age`` (seconds), unless the newest of their
    cosignatures is at most that old at ``now`` (default: the clock). Returns every step's
    result; ``ok`` is true only when none failed, and ``raise_if_failed()`` raises
    ExhibitVerificationFailed unless so. Raises PinnedKeyError (a ValueError) if a pinned key or
    witness key is malformed or fewer witnesses are pinned than K, OSError if a file cannot be
    read.

    The steps, in order (docs/bundle.md, the verification checklist):

    (1) the archive is well formed and bounded; (2) ``checkpoint`` is signed by a pinned key
    named as its origin; for each item, (3) each event's inclusion proof, (4) the events'
    subject and ``prev`` chain, (5) the signed head statement, (6) the signed manifest
    against the ingest event, (7) the artifact's digests; (8) consistency with a known
    checkpoint; (9) for a provider's response, the order document, the order's events (as in
    3 to 5), its ``order.responded`` naming the item, and the receipt; (10) the disclosed
    findings and notes against their events' commitments; (11) the names of the principals
    and providers the events mention, against their records (as in 3 to 5) and commitments.
    """
    run = _Run(PinnedKeys(pinned_verifiers(keys)))
    witnessing = _Witnessing(
        [_witness_key(key) for key in witnesses],
        min_witnesses,
        max_age,
        time.time() if now is None else now,
    )
    if min_witnesses > len(witnessing.pinned):
        raise PinnedKeyError(
            f"{min_witnesses} witnesses are asked for, but {len(witnessing.pinned)} are pinned"
        )

    # (1): the archive is well formed and bounded
    try:
        archive = open_archive(bundle if isinstance(bundle, bytes) else Path(bundle))
    except ArchiveError as exc:
        run.failed(1, None, CheckFailed(str(exc)))
        for number in range(2, len(BUNDLE_CHECKS) + 1):
            run.not_run(number, None, 1)
        return run.result([], None, "Nothing was verified: the archive was refused (step 1).")
    try:
        if artifact is None:
            artifacts: list[str | os.PathLike[str]] = []
        elif isinstance(artifact, (str, os.PathLike)):
            artifacts = [artifact]
        else:
            artifacts = list(artifact)
        return _verify_archive(run, archive, artifacts, known_checkpoint, witnessing)
    finally:
        archive.close()


def _verify_archive(
    run: _Run,
    archive: Archive,
    artifacts: Sequence[str | os.PathLike[str]],
    known: bytes | None,
    witnessing: _Witnessing,
) -> ExhibitVerification:
    more = archive.unread_count - len(archive.unread)
    unread = f"; not read, as not in the layout: {', '.join(archive.unread)}" + (
        f" and {more} more" if more else ""
    )
    run.passed(
        1,
        None,
        f"a ZIP of {archive.member_count} members for {len(archive.items)} item(s), each "
        "member's local header agreeing with its directory entry, the members one after "
        "another from the first byte to the directory and nothing after the end record: "
        "relative, unique names, no links, every member within its size and compression limits"
        + (unread if archive.unread else ""),
    )

    # (2): the checkpoint is signed by a pinned key named as its origin
    checkpoint: Checkpoint | None = run.step(2, None, lambda: _check_checkpoint(run, archive))

    items = [
        _verify_item(run, archive, ItemState(i, m), checkpoint) for i, m in archive.items.items()
    ]

    # (7): the artifact's bytes (given, or in the bundle) match every digest
    _check_artifacts(run, archive, items, artifacts)

    # (8): consistency with the court's earlier checkpoint
    if checkpoint is None:
        run.not_run(8, None, 2)
    else:
        run.step(8, None, lambda: _check_history(run.keys, archive, checkpoint, known, witnessing))

    # (11): the names of the people and providers the events mention match their records
    parties: list[PartyResult] = []
    if checkpoint is None:
        run.not_run(11, None, 2)
    else:
        mentioned = _mentioned(archive, items)
        parties = (
            run.step(11, None, lambda: check_parties(run.keys, archive, checkpoint, mentioned))
            or []
        )

    return run.result(
        [item.result() for item in items],
        checkpoint,
        " ".join(item.completeness for item in items),
        parties,
    )


def _mentioned(archive: Archive, items: Sequence[ItemState]) -> set[str]:
    """The principals who acted in the bundle's events: its items', their orders' and the
    key history's."""
    events: list[LeafEvent] = [event for item in items for event in item.events]
    for item in items:
        if item.members.order is not None:
            events.extend(read_events(item.members.order.events)[0])
    if archive.key_history is not None:
        events.extend(read_events(archive.key_history.events)[0])
    return mentioned_principals(events)


# (2): the checkpoint is signed by a pinned key named as its origin


def _check_checkpoint(run: _Run, archive: Archive) -> tuple[Checkpoint, str]:
    checkpoint, note = run.keys.open_checkpoint(archive.checkpoint, "checkpoint")
    index = archive.index
    root = base64.b64encode(checkpoint.root).decode("ascii")
    described = (index.origin, index.checkpoint_size, index.checkpoint_root)
    if described != (checkpoint.origin, checkpoint.size, root):
        raise CheckFailed(
            f"bundle.json describes the checkpoint of {index.origin} at size "
            f"{index.checkpoint_size}, root {index.checkpoint_root}, but the signed checkpoint "
            f"is of {checkpoint.origin} at size {checkpoint.size}, root {root}"
        )
    run.keys.origin = checkpoint.origin  # from here on, only this log's keys are trusted
    history = _check_key_history(run.keys, archive, checkpoint)
    note = run.keys.in_place(note, "checkpoint", checkpoint_place(checkpoint.size))
    signers = ", ".join(key_id(sig) for sig in note.signatures)
    run.keys.record(note.signatures)
    return checkpoint, (
        f"log {checkpoint.origin}, {checkpoint.size} entries, root {root}; signed by {signers}; "
        f"{history}"
    )


def _check_key_history(keys: PinnedKeys, archive: Archive, checkpoint: Checkpoint) -> str:
    """The service key's history (``log/key/``), as in steps 3 to 5: its ``key.rotated``
    events proven in the checkpoint, chained, and counted by a head statement signed by a
    key valid at the checkpoint. It then says which pinned key may sign what."""
    members = archive.key_history
    if members is None:
        return (
            f"a {BUNDLE_FORMAT_V1} bundle carries no key history: every pinned key of the log "
            "counts for every note (pin only keys that were never retired early)"
        )
    events, unreadable = read_events(members.events)
    try:
        if members.events:
            check_inclusion(members.events, members.proofs, checkpoint, archive.checkpoint)
            check_chain(events, unreadable, KEY_SUBJECT, (KEY_ROTATED,))
        keys.validity = key_validity(events, keys.of_log(checkpoint.origin))
    except MalformedHistory as exc:
        raise CheckFailed(f"the log's key history: {exc}", exc.event_index) from None
    except CheckFailed as exc:
        raise CheckFailed(f"the log's key history: {exc.message}", exc.event_index) from None
    assert members.head is not None  # step (1)
    try:
        check_head(members.head, keys, KEY_SUBJECT, events, checkpoint)
    except CheckFailed as exc:
        raise CheckFailed(
            f"the log's key history: {exc.message}; a rotation left out of the bundle would "
            "let a retired key pass",
            exc.event_index,
        ) from None
    if not events:
        return "the log's key history, complete by its signed head statement, has no rotation"
    valid = [
        f"{v.name}+{v.key_hash.hex()} {keys.validity[(v.name, v.key_hash)].describe()}"
        for v in keys.of_log(checkpoint.origin)
        if keys.validity and (v.name, v.key_hash) in keys.validity
    ]
    return (
        f"the log's key history, complete by its signed head statement, has {len(events)} "
        f"rotation{'s' if len(events) > 1 else ''} (last at index {events[-1].index}); pinned "
        f"keys: {'; '.join(valid) or 'none named by it'}"
    )


def _verify_item(
    run: _Run, archive: Archive, item: ItemState, checkpoint: Checkpoint | None
) -> ItemState:
    """Steps (3) to (6) and (9) for one item; (7) runs for all items together."""
    evidence_id, members = item.evidence_id, item.members.subject
    subject = f"evidence:{evidence_id}"
    events, unreadable = read_events(members.events)
    item.events = events

    # (3): every event's inclusion proof verifies against the checkpoint
    if checkpoint is None:
        run.not_run(3, evidence_id, 2)
    else:
        run.step(
            3,
            evidence_id,
            lambda: check_inclusion(members.events, members.proofs, checkpoint, archive.checkpoint),
        )

    # (4): the events belong to the item and their prev chain runs unbroken
    chained = run.step(
        4, evidence_id, lambda: check_chain(events, unreadable, subject, INTAKE_EVENTS)
    )
    first = events[0] if events else None
    if (
        first is not None
        and first.index == min(members.events)
        and first.subject == subject
        and first.type in INTAKE_EVENTS
        and first.prev is None
    ):
        item.ingest = first

    # (5): the signed head statement matches the last event and the count
    head = members.head
    assert head is not None  # step (1) requires it
    signers: tuple[str, ...] | None = None
    if checkpoint is None or not chained:
        run.not_run(5, evidence_id, 2 if checkpoint is None else 4)
    else:
        signers = run.step(
            5, evidence_id, lambda: check_head(head, run.keys, subject, events, checkpoint)
        )
    item.completeness = _completeness(evidence_id, events, checkpoint, signers)

    # (6): the manifest is signed by a pinned key of the log and matches the ingest event
    if checkpoint is None:
        run.not_run(6, evidence_id, 2)
    elif item.ingest is None:
        run.not_run(6, evidence_id, 4)
    else:
        run.step(6, evidence_id, lambda: check_manifest(run.keys, item))

    # (9): for a provider's response, the order document, its events and the receipt
    if item.manifest is None:
        run.not_run(9, evidence_id, 6)
    elif checkpoint is None:
        run.not_run(9, evidence_id, 2)
    else:
        run.step(9, evidence_id, lambda: check_order(run.keys, archive, item, checkpoint))

    # (10): the disclosed findings and notes open the commitments of their events
    if not chained:
        run.not_run(10, evidence_id, 4)
    else:
        run.step(10, evidence_id, lambda: check_disclosures(archive, item))
    return item


def _completeness(
    evidence_id: str,
    events: Sequence[LeafEvent],
    checkpoint: Checkpoint | None,
    signers: tuple[str, ...] | None,
) -> str:
    """The plain statement of step (5): what a proof shows, and what rests on a signature."""
    if checkpoint is None or signers is None:
        return (
            f"That no event of {evidence_id} was left out could not be established: its head "
            "statement was not verified (step 5)."
        )
    last, shown = (
        events[-1],
        (
            f"The inclusion proofs show that each of the {len(events)} events of {evidence_id} is"
            if len(events) > 1
            else f"The inclusion proof shows that the one event of {evidence_id} is"
        ),
    )
    return (
        f"{shown} in the log; no proof can show that none is missing. That none was left out "
        f"after the last, at ledger index {last.index}, up to the checkpoint of "
        f"{checkpoint.size} entries rests on the head statement signed by {', '.join(signers)}."
    )


# (7): the artifact's bytes (given, or in the bundle) match every digest


def _check_artifacts(
    run: _Run,
    archive: Archive,
    items: Sequence[ItemState],
    artifacts: Sequence[str | os.PathLike[str]],
) -> None:
    """Each of the court's artifacts goes with the item recorded with its bytes (the only
    item, or the one whose SHA-256 it has; one that is none of them fails); each
    ``content`` member with its own item."""
    given: dict[str, list[tuple[str, Digested]]] = {item.evidence_id: [] for item in items}
    algorithms = {alg for item in items for alg in item.digests}
    for artifact in artifacts:
        digested = digest(read_file(artifact), algorithms)
        what = f"the artifact {os.fspath(artifact)}"
        sha256 = digested[1].get("sha256")
        owners = [
            item.evidence_id
            for item in items
            if len(items) == 1 or item.digests.get("sha256") == sha256
        ]
        if not owners:
            run.failed(
                7, None, CheckFailed(f"{what} (SHA-256 {sha256}) is none of the bundle's items")
            )
        for owner in owners:
            given[owner].append((what, digested))
    for item in items:
        if item.ingest is None:
            run.not_run(7, item.evidence_id, 4)
            continue
        run.step(7, item.evidence_id, partial(check_bytes, archive, item, given[item.evidence_id]))


# (8): consistency with the court's earlier checkpoint, and the witnesses' cosignatures


@dataclass(frozen=True)
class _Witnessing:
    """What the court asked of the witnesses: its pinned witness keys, how many of them must
    have cosigned, and how old the newest cosignature may be (seconds) at ``now``."""

    pinned: list[CosignatureVerifier]
    at_least: int
    max_age: int | None
    now: float

    @property
    def asked(self) -> bool:
        return self.at_least > 0 or self.max_age is not None


def _witness_key(key: str) -> CosignatureVerifier:
    try:
        return CosignatureVerifier.from_key(key)
    except MalformedNote as exc:
        raise PinnedKeyError(f"{key!r} is not a witness key: {exc}") from None


def _check_history(
    keys: PinnedKeys,
    archive: Archive,
    checkpoint: Checkpoint,
    court: bytes | None,
    witnessing: _Witnessing,
) -> str:
    """The court's known checkpoint (if any) is extended, and the witnesses it pinned (if it
    asked for them) cosigned the checkpoint: either stops a rewritten or split history."""
    try:
        known: str | None = _check_known(keys, archive, checkpoint, court)
    except NotApplicable:
        if not witnessing.asked:
            raise
        known = None
    if not witnessing.asked:
        assert known is not None
        return known
    witnessed = _check_witnesses(archive, witnessing)
    return witnessed if known is None else f"{known}; {witnessed}"


def _check_witnesses(archive: Archive, witnessing: _Witnessing) -> str:
    """At least K distinct pinned witnesses cosigned the bundle's checkpoint, the newest of
    them within ``max_age``. Cosignatures stop a rewritten or split history, not the replay
    of an old genuine bundle: that is what the age is for."""
    note = Note.from_bytes(archive.checkpoint)  # opened in step (2)
    cosigned = verify_cosignatures(note.text, note.signatures, witnessing.pinned)
    names = ", ".join(sorted(cosigned.times)) or "none"
    if len(cosigned.times) < witnessing.at_least:
        raise CheckFailed(
            f"the checkpoint is cosigned by {len(cosigned.times)} of the witnesses you pinned "
            f"({names}), fewer than the {witnessing.at_least} you asked for: no independent "
            "party vouches that this is the history everyone else sees"
        )
    newest = cosigned.newest
    when = "no cosignature" if newest is None else f"newest cosignature at {_utc(newest)}"
    if witnessing.max_age is not None:
        if newest is None:
            raise CheckFailed(
                "no witness you pinned cosigned the checkpoint, so nothing says how old it is "
                "(--max-age)"
            )
        age = witnessing.now - newest
        if age > witnessing.max_age:
            raise CheckFailed(
                f"the {when} is {int(age)} s old, more than the {witnessing.max_age} s you "
                "allow: the bundle may replay an old genuine history; ask for a fresh export"
            )
    return (
        f"cosigned by {len(cosigned.times)} pinned witness"
        f"{'es' if len(cosigned.times) != 1 else ''} ({names}); {when}"
    )


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_known(
    keys: PinnedKeys, archive: Archive, checkpoint: Checkpoint, court: bytes | None
) -> str:
    """The court's known checkpoint (else the bundle's) is signed by a pinned key, and the
    bundle's ``consistency`` proves the bundle's checkpoint extends it (RFC 9162 2.1.4.2)."""
    note_bytes = court if court is not None else archive.known_checkpoint
    if note_bytes is None:
        raise NotApplicable("no known checkpoint (give the one you kept with --known-checkpoint)")
    whose = "your known checkpoint" if court is not None else "the bundle's known checkpoint"
    known, note = keys.open_checkpoint(note_bytes, whose)
    if known.origin == checkpoint.origin:
        keys.record(note.signatures)

    def prove(size1: int, size2: int) -> tuple[bytes, ...]:
        if archive.consistency is None:
            raise CheckFailed(
                f"the bundle carries no consistency proof from {whose} ({known.size} entries): "
                "ask for a bundle exported with --known-checkpoint of it"
            )
        try:
            proof = parse_consistency(archive.consistency)
        except MalformedMember as exc:
            raise CheckFailed(f"the consistency proof is malformed: {exc}") from None
        if (proof.size1, proof.size2) != (size1, size2):
            raise CheckFailed(
                f"the bundle's consistency proof runs from {proof.size1} to {proof.size2} "
                f"entries, not from {whose} ({size1}) to the bundle's checkpoint ({size2})"
            )
        return proof.hashes

    try:
        check_extends(known, checkpoint, prove)
    except NotExtended as exc:
        raise CheckFailed(_not_extended(exc, whose, known, checkpoint)) from None
    if known.size == checkpoint.size:
        return f"{whose} is the bundle's checkpoint itself ({known.size} entries)"
    came_with_bundle = (
        "; it came with the bundle: give the one you kept with --known-checkpoint to check the "
        "log against your own record"
    )
    return (
        f"{whose}, of {known.size} entries, is a prefix of the bundle's tree of "
        f"{checkpoint.size} (RFC 9162 consistency proof){'' if court else came_with_bundle}"
    )


def _not_extended(exc: NotExtended, whose: str, known: Checkpoint, checkpoint: Checkpoint) -> str:
    """What step (8) says when the bundle's checkpoint does not extend the known one."""
    if exc.reason == NotExtended.OTHER_LOG:
        return f"{whose} is of log {known.origin}, not {checkpoint.origin}"
    if exc.reason == NotExtended.SHRANK:
        return (
            f"{whose} is of {known.size} entries, newer than the bundle's {checkpoint.size}: "
            "ask for a bundle exported with --known-checkpoint of it"
        )
    if exc.reason == NotExtended.FORKED:
        return (
            f"{whose} and the bundle's checkpoint are both of {known.size} entries but have "
            "different roots: the log forked, showing different histories to different parties"
        )
    return (
        f"{whose} ({known.size} entries) is not proven to be a prefix of the bundle's "
        f"checkpoint: {exc}; either the log forked or the proof was altered"
    )


class _Run:
    """Collects every step's result as the verification goes."""

    def __init__(self, keys: PinnedKeys) -> None:
        self.keys = keys
        self.steps: list[StepResult] = []

    def step(self, number: int, evidence_id: str | None, check: Callable[[], Any]) -> Any:
        """Run a check and record its result. Returns what it established (the first of the
        pair a check returns with its detail, else True), or None when it did not pass."""
        try:
            outcome = check()
        except NotApplicable as exc:
            self._add(number, evidence_id, SKIPPED, f"{NOT_APPLICABLE}{exc}")
            return None
        except CheckFailed as exc:
            self.failed(number, evidence_id, exc)
            return None
        value, detail = outcome if isinstance(outcome, tuple) else (True, outcome)
        self.passed(number, evidence_id, detail)
        return value

    def passed(self, number: int, evidence_id: str | None, detail: str) -> None:
        self._add(number, evidence_id, PASS, detail)

    def failed(self, number: int, evidence_id: str | None, exc: CheckFailed) -> None:
        self._add(number, evidence_id, FAIL, exc.message, exc.event_index)

    def not_run(self, number: int, evidence_id: str | None, needs: int) -> None:
        self._add(
            number, evidence_id, SKIPPED, f"{NOT_RUN}it needs step {needs}, which did not pass"
        )

    def _add(
        self,
        number: int,
        evidence_id: str | None,
        status: str,
        detail: str,
        event_index: int | None = None,
    ) -> None:
        title = BUNDLE_CHECKS[number - 1]
        self.steps.append(StepResult(number, title, status, detail, evidence_id, event_index))

    def result(
        self,
        items: list[ItemResult],
        checkpoint: Checkpoint | None,
        completeness: str,
        parties: list[PartyResult] | None = None,
    ) -> ExhibitVerification:
        """The verification; the checkpoint's figures appear only once step (2) verified it."""
        steps = sorted(self.steps, key=lambda step: step.number)  # stable: items keep order
        root = base64.b64encode(checkpoint.root).decode("ascii") if checkpoint else ""
        return ExhibitVerification(
            ok=all(step.status != FAIL for step in steps),
            steps=steps,
            items=items,
            origin=checkpoint.origin if checkpoint else "",
            checkpoint_size=checkpoint.size if checkpoint else 0,
            checkpoint_root=root,
            key_fingerprints=list(self.keys.signed),
            completeness_note=completeness,
            parties=list(parties or []),
        )
