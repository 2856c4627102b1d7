"""Tests of custody acts, content access and disposal (custody/handling.py).

The same rules over HTTP (status codes, validation) are in tests/service/test_evidence_api.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from custody.acts import ACTS
from custody.audit import audit_ledger
from custody.errors import Conflict, Forbidden, IntegrityError, NotFound
from custody.events import SYSTEM, Actor, Event
from custody.evidence import CustodyState, EvidenceRecord
from storage.deployment import Deployment, initialise, open_deployment
from storage.sql.schema import evidence_documents
from tests.conftest import make_config
from tests.factories import ACT_BODIES, CUSTODIAN, SEIZURE, in_case

DIGITAL = {"kind": "digital", "case": "CASE-1", "exhibit": "E-1", "description": "disk image"}
PHYSICAL = {
    "kind": "physical",
    "case": "CASE-1",
    "exhibit": "P-1",
    "description": "a laptop",
    "seizure": SEIZURE,
}
CONTENT = b"\x00\x01 image " * 20_000
assert set(ACT_BODIES) == set(ACTS)


def add_principal(deployment: Deployment, name: str, role: str) -> Actor:
    operator = deployment.principals.get("operator")
    principal, _ = deployment.principals.add(name, role, operator.actor)
    return principal.actor


@pytest.fixture
def examiner(deployment: Deployment) -> Actor:
    alice = add_principal(deployment, "alice", "examiner")
    in_case(deployment, "CASE-1", "alice")
    return alice


@pytest.fixture
def approver(deployment: Deployment, examiner: Actor) -> Actor:
    judge = add_principal(deployment, "judge", "approver")
    in_case(deployment, "CASE-1", "judge")
    return judge


def ingest(
    deployment: Deployment, by: Actor, content: bytes = CONTENT, exhibit: str = "E-1"
) -> EvidenceRecord:
    session = deployment.intake.open_session({**DIGITAL, "exhibit": exhibit}, by)
    return deployment.intake.receive(session.id, io.BytesIO(content), by).record


def act(
    deployment: Deployment,
    record: EvidenceRecord,
    name: str,
    by: Actor,
    **overrides: str,
) -> Event:
    done = deployment.handling.record_act(record.id, name, {**ACT_BODIES[name], **overrides}, by)
    return done.event.event


def state(deployment: Deployment, evidence_id: str) -> CustodyState:
    return deployment.handling.get(evidence_id, SYSTEM).state


def last_event(deployment: Deployment) -> Event:
    return Event.decode(deployment.ledger.entry(deployment.ledger.size() - 1))


def blob_path(deployment: Deployment, record: EvidenceRecord) -> Path:
    assert record.storage_key is not None
    return deployment.config.home / "objects" / record.storage_key


def assert_refused(
    deployment: Deployment,
    record: EvidenceRecord,
    name: str,
    by: Actor,
    data: Mapping[str, Any] | None = None,
) -> Conflict:
    """The act is refused with a Conflict and changes neither the ledger nor the state."""
    size, before = deployment.ledger.size(), state(deployment, record.id)
    with pytest.raises(Conflict) as refused:
        deployment.handling.record_act(record.id, name, data or ACT_BODIES[name], by)
    assert deployment.ledger.size() == size
    assert state(deployment, record.id) == before
    return refused.value


# -- each act ------------------------------------------------------------------------------------

# (acts that must come first, the act, the state it leaves)
SEQUENCES = [
    # A transfer is pending until its custodian (here the examiner, ``CUSTODIAN``) confirms.
    ([], "evidence.transferred", CustodyState(transfer_pending_to=CUSTODIAN)),
    (["evidence.transferred"], "evidence.received", CustodyState()),
    ([], "evidence.checked_out", CustodyState(checked_out_to="carol")),
    (["evidence.checked_out"], "evidence.checked_in", CustodyState()),
    ([], "evidence.examined", CustodyState()),
    ([], "evidence.noted", CustodyState()),
    ([], "evidence.sealed", CustodyState(sealed=True, seal="S-0042")),
    (["evidence.sealed"], "evidence.unsealed", CustodyState()),
    ([], "evidence.hold_set", CustodyState(on_hold=True)),
    (["evidence.hold_set"], "evidence.hold_released", CustodyState()),
    ([], "evidence.disposed", CustodyState(disposed=True)),
]


@pytest.mark.parametrize(
    ("before", "name", "after"), SEQUENCES, ids=[s[1].split(".")[1] for s in SEQUENCES]
)
def test_each_act_is_one_event_chained_to_the_items_last(
    deployment: Deployment,
    examiner: Actor,
    approver: Actor,
    before: list[str],
    name: str,
    after: CustodyState,
) -> None:
    record = ingest(deployment, examiner)
    for earlier in before:
        act(deployment, record, earlier, examiner)
    previous = deployment.ledger.subject_entries(f"evidence:{record.id}")[-1]
    by = approver if name == "evidence.disposed" else examiner

    event = act(deployment, record, name, by)

    assert event.type == name
    assert event.actor == by
    assert event.prev == previous.leaf_hash.hex()
    if after.transfer_pending_to is not None:
        after = replace(after, transfer_pending_to=examiner.id)
    assert state(deployment, record.id) == after
    visible = {k: v for k, v in ACT_BODIES[name].items() if k not in ("findings", "text")}
    if name == "evidence.transferred":  # the custodian is recorded by its id
        visible["to"] = examiner.id
    assert visible.items() <= event.data.items()


def test_a_physical_item_takes_the_same_acts(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    appended = deployment.intake.register_physical(PHYSICAL, examiner)
    record = deployment.handling.get(appended.event.subject.id, examiner)
    acts = ("evidence.sealed", "evidence.hold_set", "evidence.transferred", "evidence.received")

    for name in acts:
        act(deployment, record, name, examiner)

    assert state(deployment, record.id) == CustodyState(sealed=True, seal="S-0042", on_hold=True)
    types = [
        Event.decode(e.leaf).type
        for e in deployment.ledger.subject_entries(f"evidence:{record.id}")
    ]
    assert types == ["evidence.registered", *acts]
    assert Event.decode(appended.leaf).data["seizure"] == SEIZURE | {
        "at": "2026-11-27T09:30:00.000000Z"
    }


@pytest.mark.parametrize(
    ("name", "field"), [("evidence.examined", "findings"), ("evidence.noted", "text")]
)
def test_findings_and_notes_are_committed_to_never_written_to_the_ledger(
    deployment: Deployment, examiner: Actor, name: str, field: str
) -> None:
    record = ingest(deployment, examiner)

    event = act(deployment, record, name, examiner)

    text = ACT_BODIES[name][field].encode()
    leaf = deployment.ledger.entry(deployment.ledger.size() - 1)
    assert text not in leaf and field not in event.data
    with deployment.engine.connect() as connection:
        row = connection.execute(
            select(evidence_documents).where(evidence_documents.c.evidence_id == record.id)
        ).one()
    assert row.text == text and len(row.salt) == 32
    assert row.ledger_index == deployment.ledger.size() - 1
    assert event.data[f"{field}_commitment"] == hashlib.sha256(row.salt + text).hexdigest()


def test_an_unknown_act_is_not_found(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)
    size = deployment.ledger.size()

    with pytest.raises(NotFound):
        deployment.handling.record_act(record.id, "evidence.accessed", {}, examiner)
    with pytest.raises(NotFound):
        deployment.handling.record_act(
            "ev_0000000000000000", "evidence.noted", {"text": "x"}, examiner
        )

    assert deployment.ledger.size() == size


# -- the state rules -------------------------------------------------------------------------


def test_a_sealed_item_cannot_be_checked_out(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)
    act(deployment, record, "evidence.sealed", examiner)

    refused = assert_refused(deployment, record, "evidence.checked_out", examiner)

    assert refused.allowed_actions is not None
    assert "evidence.checked_out" not in refused.allowed_actions
    assert "evidence.unsealed" in refused.allowed_actions


def test_a_sealed_item_is_not_examined(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)
    act(deployment, record, "evidence.sealed", examiner)

    assert_refused(deployment, record, "evidence.examined", examiner)


def test_an_item_is_checked_in_only_when_checked_out(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner)

    assert_refused(deployment, record, "evidence.checked_in", examiner)
    act(deployment, record, "evidence.checked_out", examiner)
    assert_refused(deployment, record, "evidence.checked_out", examiner)
    assert_refused(deployment, record, "evidence.transferred", examiner)
    act(deployment, record, "evidence.checked_in", examiner)
    assert state(deployment, record.id) == CustodyState()


def test_states_combine_sealed_and_on_hold(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)

    act(deployment, record, "evidence.sealed", examiner)
    act(deployment, record, "evidence.hold_set", examiner)

    assert state(deployment, record.id) == CustodyState(sealed=True, seal="S-0042", on_hold=True)
    assert_refused(deployment, record, "evidence.hold_set", examiner)
    assert_refused(deployment, record, "evidence.sealed", examiner)


def test_nothing_is_allowed_after_disposal(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    record = ingest(deployment, examiner)
    act(deployment, record, "evidence.disposed", approver)

    for name in ACTS:
        refused = assert_refused(deployment, record, name, approver)
        assert refused.allowed_actions == []
    with pytest.raises(Conflict):
        deployment.handling.read_content(record.id, examiner, "review")


def test_an_item_on_hold_or_checked_out_is_not_disposed(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    held = ingest(deployment, examiner, content=b"held")
    out = ingest(deployment, examiner, content=b"out")
    act(deployment, held, "evidence.hold_set", examiner)
    act(deployment, out, "evidence.checked_out", examiner)

    assert_refused(deployment, held, "evidence.disposed", approver)
    assert_refused(deployment, out, "evidence.disposed", approver)

    assert blob_path(deployment, held).read_bytes() == b"held"
    assert blob_path(deployment, out).read_bytes() == b"out"


def test_only_an_approver_disposes(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)
    size = deployment.ledger.size()

    with pytest.raises(Forbidden):
        act(deployment, record, "evidence.disposed", examiner)

    assert deployment.ledger.size() == size
    assert state(deployment, record.id) == CustodyState()
    assert blob_path(deployment, record).exists()


def test_an_item_under_retention_is_not_disposed(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, retention_days=30)
    initialise(config).deployment.close()
    deployment = open_deployment(config)
    try:
        examiner = add_principal(deployment, "alice", "examiner")
        approver = add_principal(deployment, "judge", "approver")
        in_case(deployment, "CASE-1", "alice", "judge")
        record = ingest(deployment, examiner)

        assert_refused(deployment, record, "evidence.disposed", approver)

        assert blob_path(deployment, record).read_bytes() == CONTENT
    finally:
        deployment.close()


# -- shared blobs, holds and disposal ---------------------------------------------------------


def test_a_hold_on_one_record_keeps_the_bytes_another_record_shares(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    kept = ingest(deployment, examiner, exhibit="E-1")
    disposed = ingest(deployment, examiner, exhibit="E-2")
    assert kept.storage_key == disposed.storage_key
    act(deployment, kept, "evidence.hold_set", examiner)

    event = act(deployment, disposed, "evidence.disposed", approver)

    assert event.data["content_deleted"] is False
    assert blob_path(deployment, kept).read_bytes() == CONTENT
    _, _, chunks = deployment.handling.read_content(kept.id, examiner, "review")
    assert b"".join(chunks) == CONTENT


def test_the_shared_blob_goes_only_when_the_last_record_is_disposed_without_a_hold(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    first = ingest(deployment, examiner, exhibit="E-1")
    second = ingest(deployment, examiner, exhibit="E-2")
    act(deployment, first, "evidence.hold_set", examiner)
    act(deployment, second, "evidence.disposed", approver)
    assert blob_path(deployment, first).exists()

    act(deployment, first, "evidence.hold_released", examiner)
    assert blob_path(deployment, first).exists()
    event = act(deployment, first, "evidence.disposed", approver)

    assert event.data["content_deleted"] is True
    assert not blob_path(deployment, first).exists()
    assert audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys).ok


def test_disposing_both_records_without_holds_deletes_the_blob_at_the_second(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    first = ingest(deployment, examiner, exhibit="E-1")
    second = ingest(deployment, examiner, exhibit="E-2")

    assert act(deployment, first, "evidence.disposed", approver).data["content_deleted"] is False
    assert blob_path(deployment, second).exists()
    assert act(deployment, second, "evidence.disposed", approver).data["content_deleted"] is True
    assert not blob_path(deployment, second).exists()


def test_a_hold_released_on_one_record_keeps_another_records_hold_on_the_blob(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    first = ingest(deployment, examiner, exhibit="E-1")
    second = ingest(deployment, examiner, exhibit="E-2")
    act(deployment, first, "evidence.hold_set", examiner)
    act(deployment, second, "evidence.hold_set", examiner)

    act(deployment, first, "evidence.hold_released", examiner)
    act(deployment, first, "evidence.disposed", approver)

    assert blob_path(deployment, second).read_bytes() == CONTENT
    assert state(deployment, second.id).on_hold


# -- reading content ---------------------------------------------------------------------------


def test_reading_content_records_the_access_before_the_first_byte(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner)
    size = deployment.ledger.size()

    _, access, chunks = deployment.handling.read_content(record.id, examiner, "court copy")

    assert deployment.ledger.size() == size + 1  # before any byte was read
    event = last_event(deployment)
    assert (event.type, event.actor, event.data) == (
        "evidence.accessed",
        examiner,
        {"purpose": "court copy", "digests": {"sha256": hashlib.sha256(CONTENT).hexdigest()}},
    )
    assert access.index == size
    assert b"".join(chunks) == CONTENT
    assert deployment.ledger.size() == size + 1


def test_every_read_is_recorded(deployment: Deployment, examiner: Actor) -> None:
    record = ingest(deployment, examiner)

    for purpose in ("one", "two", "three"):
        _, _, chunks = deployment.handling.read_content(record.id, examiner, purpose)
        assert b"".join(chunks) == CONTENT

    events = [
        Event.decode(e.leaf) for e in deployment.ledger.subject_entries(f"evidence:{record.id}")
    ]
    assert [e.data["purpose"] for e in events if e.type == "evidence.accessed"] == [
        "one",
        "two",
        "three",
    ]


def test_a_physical_item_has_no_content_to_read(deployment: Deployment, examiner: Actor) -> None:
    appended = deployment.intake.register_physical(PHYSICAL, examiner)
    size = deployment.ledger.size()

    with pytest.raises(Conflict):
        deployment.handling.read_content(appended.event.subject.id, examiner, "look")

    assert deployment.ledger.size() == size


def corrupt(path: Path) -> None:
    """Flip one byte of a stored (read-only) blob, keeping its size."""
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupted_blob_fails_the_read_before_any_access_and_records_the_failure(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner)
    corrupt(blob_path(deployment, record))
    size = deployment.ledger.size()

    with pytest.raises(IntegrityError):
        deployment.handling.read_content(record.id, examiner, "review")

    assert deployment.ledger.size() == size + 1
    failed = Event.decode(deployment.ledger.entry(size))
    assert failed.type == "evidence.integrity_failed"
    assert failed.data["algorithms"] == ["sha256"]
    assert failed.data["size"] == failed.data["expected_size"] == len(CONTENT)


def test_bytes_corrupted_after_the_access_end_the_stream_short(
    deployment: Deployment, examiner: Actor
) -> None:
    record = ingest(deployment, examiner)
    _, _, chunks = deployment.handling.read_content(record.id, examiner, "review")
    corrupt(blob_path(deployment, record))

    received = bytearray()
    with pytest.raises(IntegrityError):
        for chunk in chunks:
            received += chunk

    assert len(received) < len(CONTENT)  # never a complete-looking copy
    assert last_event(deployment).type == "evidence.integrity_failed"


def test_a_disposal_racing_an_ingest_of_the_same_bytes_never_leaves_a_dangling_record(
    deployment: Deployment, examiner: Actor, approver: Actor
) -> None:
    from custody.errors import StorageError

    first = ingest(deployment, examiner, exhibit="E-1")
    record_second = deployment.intake._record

    def dispose_first_then_record(*args: Any, **kwargs: Any) -> Any:
        # The second upload's blob is committed (it existed); the first record's disposal
        # deletes it before the second record is written.
        act(deployment, first, "evidence.disposed", approver)
        deployment.intake._record = record_second  # type: ignore[method-assign]
        return record_second(*args, **kwargs)

    deployment.intake._record = dispose_first_then_record  # type: ignore[method-assign]
    size_before = deployment.ledger.size()
    with pytest.raises(StorageError, match="disposed of during the upload"):
        ingest(deployment, examiner, exhibit="E-2")
    assert deployment.ledger.size() == size_before + 1  # only the disposal
    again = ingest(deployment, examiner, exhibit="E-2")  # the upload is simply sent again
    assert blob_path(deployment, again).read_bytes() == CONTENT
    assert audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys).ok
