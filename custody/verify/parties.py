"""Step (11) of the exhibit checklist: the names of the people and providers the events mention.

An event names who acted by a principal's id (``pr_…``), never by a name: names are personal
data, and the ledger keeps none (ARCHITECTURE.md, Commitments). A ``custos/exhibit/v3``
bundle carries, under ``parties/<id>/``, each principal's events (``principal.created`` first,
then ``principal.named``, ``principal.revoked``) with their proofs and head statement, and the
display name and salt that open each ``name_commitment`` among them; and, for a provider's
principal, the provider's events (``provider.registered``, which records its name). So the
names the report shows are the ones the ledger committed to, and the last one given.

Standard library and the verifier's own modules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from custody.checkpoint import Checkpoint
from custody.commitment import commitment
from custody.event_types import NAMING_EVENTS
from custody.verify.archive import Archive, PartyMembers
from custody.verify.chain import (
    CheckFailed,
    NotApplicable,
    PinnedKeys,
    check_chain,
    check_head,
    check_inclusion,
    read_events,
)
from custody.verify.formats import LeafEvent, MalformedMember, parse_opening
from custody.verify.results import PartyResult

__all__ = ["check_parties", "mentioned_principals"]

_PRINCIPAL_ID = re.compile(r"pr_[0-9a-f]{16}")
_PROVIDER_ID = re.compile(r"prv_[0-9a-f]{16}")
PRINCIPAL_FIRST = ("principal.created",)
PROVIDER_FIRST = ("provider.registered",)


def mentioned_principals(events: Iterable[LeafEvent]) -> set[str]:
    """The principals who acted in ``events`` (the system's own acts name none)."""
    return {event.actor_id for event in events if _PRINCIPAL_ID.fullmatch(event.actor_id)}


def check_parties(
    keys: PinnedKeys, archive: Archive, checkpoint: Checkpoint, mentioned: set[str]
) -> tuple[list[PartyResult], str]:
    """Every principal in ``mentioned`` has its record in the bundle, and so has the provider
    of each such principal of a provider; each record's events pass steps 3 to 5 (subject
    ``principal:<id>`` or ``provider:<id>``), and each display name opens the commitment of
    its event. Returns the parties, and what was established."""
    index = archive.index
    if index.version < 3:
        raise NotApplicable(
            f"a {index.format} bundle carries no names: people are shown by their ids"
        )
    missing = sorted(mentioned - set(archive.parties))
    if missing:
        raise CheckFailed(
            f"the bundle's events name {_count(len(missing), 'principal')} whose record it does "
            f"not carry ({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}): "
            "who acted cannot be named"
        )
    entered: list[tuple[int, PartyResult]] = []  # each with the index of its first event
    for party_id, members in sorted(archive.parties.items()):
        if _PRINCIPAL_ID.fullmatch(party_id):
            entered.append(_principal(keys, archive, checkpoint, party_id, members))
        elif _PROVIDER_ID.fullmatch(party_id):
            entered.append(_provider(keys, archive, checkpoint, party_id, members))
    # In the order they entered the ledger: the same for every reading of the same history,
    # whatever their (random) ids.
    parties = [party for _, party in sorted(entered, key=lambda pair: pair[0])]
    known = {party.id for party in parties}
    for party in parties:
        if party.provider is not None and party.provider not in known:
            raise CheckFailed(
                f"principal {party.id} acts for provider {party.provider}, whose record the "
                "bundle does not carry"
            )
    people = sum(1 for party in parties if party.kind == "principal")
    named = sum(1 for party in parties if party.kind == "principal" and party.name)
    providers = len(parties) - people
    return parties, (
        f"{_count(people, 'principal')} ({named} with a display name, each opening the salted "
        f"commitment of its {' or '.join(NAMING_EVENTS)}) and {_count(providers, 'provider')} "
        "(named by its provider.registered), each record's events proven in the checkpoint, "
        "chained, and complete by its signed head statement"
    )


def _principal(
    keys: PinnedKeys,
    archive: Archive,
    checkpoint: Checkpoint,
    party_id: str,
    members: PartyMembers,
) -> tuple[int, PartyResult]:
    events = _subject_events(keys, archive, checkpoint, "principal", party_id, members)
    created = events[0].data
    names = _names(party_id, events, members.names)
    role, provider = created.get("role"), created.get("provider")
    return events[0].index, PartyResult(
        id=party_id,
        kind="principal",
        name=names[-1] if names else "",
        role=role if isinstance(role, str) else "",
        provider=provider if isinstance(provider, str) else None,
    )


def _provider(
    keys: PinnedKeys,
    archive: Archive,
    checkpoint: Checkpoint,
    party_id: str,
    members: PartyMembers,
) -> tuple[int, PartyResult]:
    events = _subject_events(keys, archive, checkpoint, "provider", party_id, members)
    if members.names:
        raise CheckFailed(f"provider {party_id} has names/ members; only principals have")
    name = events[0].data.get("name")
    return events[0].index, PartyResult(
        id=party_id, kind="provider", name=name if isinstance(name, str) else ""
    )


def _subject_events(
    keys: PinnedKeys,
    archive: Archive,
    checkpoint: Checkpoint,
    kind: str,
    party_id: str,
    members: PartyMembers,
) -> list[LeafEvent]:
    """The record's events, once they pass steps 3 to 5 as an item's would."""
    subject = f"{kind}:{party_id}"
    first = PRINCIPAL_FIRST if kind == "principal" else PROVIDER_FIRST
    events, unreadable = read_events(members.subject.events)
    checks: tuple[tuple[int, Callable[[], object]], ...] = (
        (
            3,
            lambda: check_inclusion(
                members.subject.events, members.subject.proofs, checkpoint, archive.checkpoint
            ),
        ),
        (4, lambda: check_chain(events, unreadable, subject, first)),
        (5, lambda: check_head(members.subject.head or b"", keys, subject, events, checkpoint)),
    )
    for number, check in checks:
        try:
            check()
        except CheckFailed as exc:
            raise CheckFailed(
                f"{kind} {party_id}, as in step {number}: {exc.message}", exc.event_index
            ) from None
    return events


def _names(party_id: str, events: Sequence[LeafEvent], names: Mapping[int, bytes]) -> list[str]:
    """The display names that open the ``name_commitment`` of each naming event, in order."""
    naming = {
        event.index: event
        for event in events
        if event.type in NAMING_EVENTS and "name_commitment" in event.data
    }
    for extra in sorted(set(names) - set(naming)):
        raise CheckFailed(
            f"parties/{party_id}/names/{extra:020d} names no event of principal {party_id} "
            "that commits to a display name",
            extra,
        )
    opened = []
    for at, event in naming.items():
        member = names.get(at)
        if member is None:
            raise CheckFailed(
                f"the display name committed to by event {at} ({event.type}) of principal "
                f"{party_id} is not in the bundle",
                at,
            )
        try:
            opening = parse_opening(member)
        except MalformedMember as exc:
            raise CheckFailed(
                f"the display name of event {at} of principal {party_id} is malformed: {exc}", at
            ) from None
        recorded = event.data.get("name_commitment")
        computed = commitment(opening.salt, opening.text.encode("utf-8"))
        if recorded != computed:
            raise CheckFailed(
                f"the display name given for event {at} ({event.type}) of principal "
                f"{party_id} does not match its name_commitment: SHA-256 over the bundle's "
                f"salt and name is {computed}, but the event commits to {recorded}: the name "
                "or the salt is not the one recorded",
                at,
            )
        opened.append(opening.text)
    return opened


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"
