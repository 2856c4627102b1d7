"""The ledger on real storage (SQLite and PostgreSQL): appends, proofs, tiles, checkpoints."""

from __future__ import annotations

import struct

import pytest

from custody import merkle
from custody.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from custody.errors import BadRequest, IntegrityError, NotFound
from custody.events import Actor, Event, InvalidEvent, NewEvent, Subject
from custody.ledger import Ledger
from storage.deployment import open_deployment
from tests.conftest import FakeClock, Home

EXAMINER = Actor("pr_examiner", "examiner")


def noted(item: str, n: int = 0) -> NewEvent:
    return NewEvent("evidence.noted", EXAMINER, Subject("evidence", item), {"n": n})


def all_leaf_hashes(ledger: Ledger) -> list[bytes]:
    return [e.leaf_hash for e in ledger.store.entries(0, ledger.size())]


def test_appends_get_dense_indexes_from_zero_and_chain_prev(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    start = ledger.size()  # init recorded the operator
    first = ledger.append(noted("e1"))
    other = ledger.append(noted("e2"))
    second = ledger.append(noted("e1", 1))
    assert [first.index, other.index, second.index] == [start, start + 1, start + 2]
    assert first.event.prev is None
    assert second.event.prev == first.leaf_hash.hex()
    assert Event.decode(ledger.entry(second.index)) == second.event


def test_batch_appends_are_one_transaction_all_or_nothing(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    before = ledger.size()
    with pytest.raises(InvalidEvent), ledger.recording() as recorder:
        recorder.add(noted("e1"))
        recorder.add(NewEvent("evidence.noted", EXAMINER, Subject("e", "1"), {"t": "x" * 70_000}))
    assert ledger.size() == before
    placed = ledger.append_batch([noted("e1", i) for i in range(5)])
    assert [p.index for p in placed] == list(range(before, before + 5))
    assert [p.event.prev for p in placed[1:]] == [p.leaf_hash.hex() for p in placed[:-1]]


def test_stored_nodes_give_the_rfc6962_root_at_every_size(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    for batch in (1, 2, 5, 1, 30, 64):
        ledger.append_batch([noted(f"e{i % 3}", i) for i in range(batch)])
    leaves = all_leaf_hashes(ledger)
    for size in range(len(leaves) + 1):
        assert ledger.root(size) == merkle.root_from_leaf_hashes(leaves[:size])


def test_inclusion_and_consistency_proofs_verify(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    ledger.append_batch([noted(f"e{i % 5}", i) for i in range(40)])
    leaves = all_leaf_hashes(ledger)
    size = len(leaves)
    root = ledger.root(size)
    for index in range(size):
        proof = ledger.inclusion_proof(index, size)
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
    for old in range(1, size + 1):
        proof = ledger.consistency_proof(old, size)
        merkle.verify_consistency(old, size, proof, ledger.root(old), root)


@pytest.mark.parametrize(("index", "tree_size"), [(5, 5), (-1, 3), (0, 0), (0, 10_000)])
def test_impossible_inclusion_requests_are_bad_requests(
    home: Home, index: int, tree_size: int
) -> None:
    ledger = home.deployment.ledger
    ledger.append_batch([noted("e1", i) for i in range(4)])
    with pytest.raises(BadRequest):
        ledger.inclusion_proof(index, tree_size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (1, 10_000)])
def test_impossible_consistency_requests_are_bad_requests(
    home: Home, size1: int, size2: int
) -> None:
    ledger = home.deployment.ledger
    ledger.append_batch([noted("e1", i) for i in range(4)])
    with pytest.raises(BadRequest):
        ledger.consistency_proof(size1, size2)


def test_hash_tiles_hold_the_nodes_of_every_eighth_level(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    ledger.append_batch([noted(f"e{i % 7}", i) for i in range(600)])
    leaves = all_leaf_hashes(ledger)  # 601 with the operator's event
    assert ledger.hash_tile(0, 0) == b"".join(leaves[:256])
    assert ledger.hash_tile(0, 2, 89) == b"".join(leaves[512:601])
    level8 = [merkle.root_from_leaf_hashes(leaves[i * 256 : (i + 1) * 256]) for i in range(2)]
    assert ledger.hash_tile(1, 0, 2) == b"".join(level8)
    with pytest.raises(NotFound):
        ledger.hash_tile(0, 2)  # the full tile does not exist yet
    with pytest.raises(NotFound):
        ledger.hash_tile(1, 0, 3)


def test_entry_bundles_frame_each_leaf_with_its_uint16_length(home: Home) -> None:
    ledger = home.deployment.ledger
    ledger.append_batch([noted("e1", i) for i in range(3)])
    bundle = ledger.entry_bundle(0, 4)
    leaves = []
    while bundle:
        (length,) = struct.unpack(">H", bundle[:2])
        leaves.append(bundle[2 : 2 + length])
        bundle = bundle[2 + length :]
    assert leaves == [ledger.entry(i) for i in range(4)]


def test_checkpoint_is_signed_kept_and_copied_to_the_object_store(
    home_on_each_database: Home,
) -> None:
    deployment = home_on_each_database.deployment
    ledger = deployment.ledger
    ledger.append(noted("e1"))
    kept = ledger.checkpoint(covering=ledger.size() - 1)
    checkpoint, _ = open_checkpoint(kept.note, deployment.keys.verifiers, ledger.origin)
    assert (checkpoint.size, checkpoint.root) == (ledger.size(), ledger.root(ledger.size()))
    assert ledger.kept_checkpoint(kept.size).note == kept.note
    assert deployment.objects.get(f"checkpoints/{kept.size}") == kept.note


def test_a_stored_checkpoint_copy_of_another_root_is_never_adopted(home: Home) -> None:
    """A restore from an older backup can leave checkpoints/N of a lost history in the store;
    signing size N again must not keep that note for this ledger's different root."""
    deployment = home.deployment
    ledger = deployment.ledger
    ledger.append(noted("e1"))
    size = ledger.size() + 1
    other_root = bytes(32)
    forged = sign_checkpoint(
        Checkpoint(ledger.origin, size, other_root), [deployment.keys.current.signer]
    )
    deployment.objects.put(f"checkpoints/{size}", forged)
    ledger.append(noted("e2"))

    with pytest.raises(IntegrityError, match=f"checkpoints/{size}"):
        ledger.checkpoint(covering=size - 1)
    assert ledger.store.checkpoint(size) is None


def test_checkpoints_are_signed_at_most_once_per_interval_unless_needed(
    home: Home, clock: FakeClock
) -> None:
    deployment = open_deployment(home.config, clock=clock)
    ledger = deployment.ledger
    first = ledger.checkpoint()
    ledger.append(noted("e1"))
    assert ledger.checkpoint() == first  # grown, but the interval has not passed
    clock.advance(1.0)
    second = ledger.checkpoint()
    assert second.size == first.size + 1
    ledger.append(noted("e1", 1))
    needed = ledger.checkpoint(covering=ledger.size() - 1)  # a caller needs it now
    assert needed.size == second.size + 1
    clock.advance(5)
    assert ledger.checkpoint() == needed  # not grown: nothing new to sign
    assert [k.size for k in ledger.store.checkpoints()] == [first.size, second.size, needed.size]
    deployment.close()


def test_an_unknown_checkpoint_size_is_not_found(home: Home) -> None:
    with pytest.raises(NotFound):
        home.deployment.ledger.kept_checkpoint(999)


def test_another_process_appending_does_not_confuse_the_cached_frontier(
    home_on_each_database: Home,
) -> None:
    first = home_on_each_database.deployment
    second = open_deployment(first.config)
    try:
        first.ledger.append(noted("e1"))
        second.ledger.append_batch([noted("e2", i) for i in range(3)])
        first.ledger.append(noted("e1", 1))
        leaves = all_leaf_hashes(first.ledger)
        assert first.ledger.root(len(leaves)) == merkle.root_from_leaf_hashes(leaves)
    finally:
        second.close()


@pytest.mark.parametrize(
    "event",
    [
        NewEvent("evidence.relabelled", EXAMINER, Subject("evidence", "e1"), {}),
        NewEvent("evidence.noted", EXAMINER, Subject("order", "e1"), {}),
    ],
    ids=["type-not-in-the-register", "subject-of-another-kind"],
)
def test_append_refuses_what_the_event_register_does_not_list(
    home_on_each_database: Home, event: NewEvent
) -> None:
    ledger = home_on_each_database.deployment.ledger
    before = ledger.size()
    with pytest.raises(InvalidEvent, match=r"custody\.event_types"):
        ledger.append(event)
    with pytest.raises(InvalidEvent), ledger.recording() as recorder:
        recorder.add(noted("e1"))
        recorder.add(event)
    assert ledger.size() == before
