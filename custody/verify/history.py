"""The service key's history, read from the log itself: which pinned key may sign what.

A log's keys change only by a ``key.rotated`` event (subject ``key:service``, data ``{"old":
<verifier key>, "new": <verifier key>}``), chained by ``prev`` like any subject's events. The
key a rotation at ledger index ``r`` retires verifies only notes placed before it, and the key
it brings in only notes placed at or after it. A note's place is a ledger index:

* a checkpoint (and a head statement, which is as of a checkpoint) of ``size`` entries is placed
  at ``size - 1``, the last entry it covers: so the retired key verifies checkpoints of at most
  ``r`` entries, which do not cover its rotation. The hand-over checkpoint, the first to cover
  the rotation, also carries the retired key's signature; it is ignored there, and the new
  key's signature on it is the one that counts;
* a manifest or a receipt is placed at its item's intake event, an order document at the
  ``order.served`` event recorded with its signature.

With no rotation in the history, every pinned key of the log is valid everywhere; after one,
a pinned key of the log that no rotation names is no key of that log at all.

Standard library and the verifier's own modules only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from custody.note import MalformedNote, NoteVerifier
from custody.verify.formats import LeafEvent

__all__ = [
    "KEY_ROTATED",
    "KeyValidity",
    "MalformedHistory",
    "checkpoint_place",
    "key_validity",
]

KEY_ROTATED = "key.rotated"

KeyIdent = tuple[str, bytes]
"""A key's name and 4-byte key hash, as a signature line names it."""


class MalformedHistory(ValueError):
    """The key history does not hold together; the message names the event."""

    def __init__(self, message: str, event_index: int) -> None:
        super().__init__(message)
        self.event_index = event_index


@dataclass(frozen=True)
class KeyValidity:
    """The places at which a key verifies notes: from ``since`` (None: from the start) to
    before ``until`` (None: still current)."""

    since: int | None
    until: int | None

    def valid_at(self, place: int) -> bool:
        return (self.since is None or place >= self.since) and (
            self.until is None or place < self.until
        )

    def describe(self) -> str:
        start = "from the start" if self.since is None else f"from index {self.since}"
        end = "still current" if self.until is None else f"retired at index {self.until}"
        return f"{start}, {end}"


def checkpoint_place(size: int) -> int:
    """The place of a checkpoint of ``size`` entries: the last index it covers."""
    return size - 1


def key_validity(
    rotations: Sequence[LeafEvent], pinned: Sequence[NoteVerifier]
) -> Mapping[KeyIdent, KeyValidity] | None:
    """The validity of each pinned key (of the log) that the history names, from its
    ``key.rotated`` events in ledger order; None when there was no rotation (every pinned key
    of the log is then valid everywhere). Raises MalformedHistory when an event is not a
    rotation, or a rotation does not retire the key the one before it brought in."""
    if not rotations:
        return None
    keys: list[tuple[NoteVerifier, int | None, int | None]] = []
    previous: NoteVerifier | None = None
    for event in rotations:
        if event.type != KEY_ROTATED:
            raise MalformedHistory(
                f"event {event.index} of the key history is a {event.type}, not a {KEY_ROTATED}",
                event.index,
            )
        old, new = (_verifier(event, name) for name in ("old", "new"))
        if previous is not None and _ident(old) != _ident(previous):
            raise MalformedHistory(
                f"the {KEY_ROTATED} at {event.index} retires {old.name}+{old.key_hash.hex()}, "
                f"not the key the rotation before it brought in "
                f"({previous.name}+{previous.key_hash.hex()})",
                event.index,
            )
        if previous is None:
            keys.append((old, None, event.index))
        else:
            verifier, since, _ = keys[-1]
            keys[-1] = (verifier, since, event.index)
        keys.append((new, event.index, None))
        previous = new
    found: dict[KeyIdent, KeyValidity] = {}
    for verifier, since, until in keys:
        for pin in pinned:
            if _ident(pin) == _ident(verifier) and pin.public_key == verifier.public_key:
                found[_ident(pin)] = KeyValidity(since, until)
    return found


def _ident(verifier: NoteVerifier) -> KeyIdent:
    return (verifier.name, verifier.key_hash)


def _verifier(event: LeafEvent, name: str) -> NoteVerifier:
    value = event.data.get(name)
    try:
        if not isinstance(value, str):
            raise MalformedNote("not a string")
        return NoteVerifier.from_key(value)
    except MalformedNote as exc:
        raise MalformedHistory(
            f"the {KEY_ROTATED} at {event.index} has no verifier key as its {name!r}: {exc}",
            event.index,
        ) from None
