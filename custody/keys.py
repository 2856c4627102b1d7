"""The service's signing keys: one current Ed25519 key, and older ones kept for verification.

Every signed object is a C2SP signed note whose key name is the log origin (ARCHITECTURE.md,
Keys). Rotation retires the current key at the index of its ``key.rotated`` event; the first
checkpoint signed after that event carries the old key's signature beside the new one, so a
verifier that pinned the old key can follow the hand-over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from custody.note import NoteSigner, NoteVerifier


@dataclass(frozen=True)
class ServiceKey:
    """A key of the ring; ``retired_at`` is the ledger index of its ``key.rotated`` event."""

    signer: NoteSigner
    retired_at: int | None = None

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier.verifier_key()


@dataclass(frozen=True)
class KeyPeriod:
    """Where a key of the ring verifies notes: from the ``key.rotated`` that brought it in
    (``since``; None for the first key) to before the one that retired it (``until``; None
    for the current key). A note's place is a ledger index (docs/bundle.md, step 2)."""

    verifier_key: str
    since: int | None
    until: int | None

    def describe(self) -> str:
        start = "from the start" if self.since is None else f"from index {self.since}"
        if self.until is None:
            return f"{start}, current"
        return f"{start} to before index {self.until} (retired by key.rotated at {self.until})"

    def as_json(self) -> dict[str, object]:
        return {"key": self.verifier_key, "since": self.since, "until": self.until}


class KeyRing:
    """The ordered keys of a deployment, oldest first; the last unretired one signs."""

    def __init__(self, keys: Sequence[ServiceKey]) -> None:
        active = [k for k in keys if k.retired_at is None]
        if len(active) != 1:
            raise ValueError(f"a key ring needs exactly one current key, found {len(active)}")
        if active[0] is not keys[-1]:
            raise ValueError("the current key must be the newest")
        names = {k.signer.name for k in keys}
        if len(names) != 1:
            raise ValueError(f"all keys must carry the log origin as their name, found {names}")
        self.keys = tuple(keys)

    @property
    def origin(self) -> str:
        return self.current.signer.name

    @property
    def current(self) -> ServiceKey:
        return self.keys[-1]

    @property
    def verifiers(self) -> list[NoteVerifier]:
        """Every key's verifier, newest first: notes signed by any of them are ours."""
        return [k.signer.verifier for k in reversed(self.keys)]

    def periods(self) -> list[KeyPeriod]:
        """Every key with where it is valid, oldest first."""
        periods, since = [], None
        for key in self.keys:
            periods.append(KeyPeriod(key.verifier_key, since, key.retired_at))
            since = key.retired_at
        return periods

    def signer_at(self, index: int) -> NoteSigner:
        """The key that was current when the event at ledger ``index`` was recorded: the
        oldest not yet retired by then (a key signs until its ``key.rotated`` event)."""
        for key in self.keys:
            if key.retired_at is None or index < key.retired_at:
                return key.signer
        return self.current.signer

    def checkpoint_signers(self, size: int, last_kept_size: int) -> list[NoteSigner]:
        """Who signs a checkpoint of ``size`` when the newest kept one has ``last_kept_size``.

        The current key always; a retired key too while no kept checkpoint covers its
        ``key.rotated`` event yet and this one does.
        """
        handing_over = [
            k.signer
            for k in self.keys
            if k.retired_at is not None and last_kept_size <= k.retired_at < size
        ]
        return [self.current.signer, *handing_over]
