"""Rotating the service key: an admin's act, recorded as ``key.rotated``.

The new key is made first and kept out of the ring; the event that names the old and the new
key is appended; only then does the ring retire the old key at that event's index and take the
new one, and the hand-over checkpoint is signed at once with both (ARCHITECTURE.md, Keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from custody.events import Actor, NewEvent, Subject
from custody.evidence import require_role
from custody.keys import KeyRing
from custody.ledger import Ledger
from custody.principals import ADMINS

SERVICE_KEY = Subject("key", "service")


@dataclass(frozen=True)
class NewKey:
    """A key made but not yet in the ring: ``handle`` is the store's name for it."""

    handle: str
    verifier_key: str


class KeyStore(Protocol):
    """Where a deployment keeps its key ring."""

    def __call__(self) -> KeyRing:
        """The ring as it is now."""

    def generate(self) -> NewKey:
        """Make and keep a new key, outside the ring."""

    def install(self, key: NewKey, retire_current_at: int) -> None:
        """Retire the current key at ledger index ``retire_current_at`` and make ``key`` the
        current one."""


@dataclass(frozen=True)
class Rotation:
    old_key: str
    new_key: str
    index: int


def rotate_key(keys: KeyStore, ledger: Ledger, by: Actor) -> Rotation:
    """Add a new current key and retire the old one at its ``key.rotated`` event (admins
    only). Running servers see the new ring when the store changes; the hand-over checkpoint
    is signed here, before any server signs past it."""
    require_role(by.role, ADMINS, "rotate the service key")
    new = keys.generate()
    old_key = keys().current.verifier_key
    appended = ledger.append(
        NewEvent("key.rotated", by, SERVICE_KEY, {"old": old_key, "new": new.verifier_key})
    )
    keys.install(new, retire_current_at=appended.index)
    ledger.checkpoint(covering=appended.index)
    return Rotation(old_key, new.verifier_key, appended.index)
