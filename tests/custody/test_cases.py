"""Cases (custody.cases): opening, members, courts' grants that end, closing, the ledger
events of each change, and migration 0010's cases made from the old case strings."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from custody.errors import Conflict, FieldErrors, Forbidden, NotFound
from custody.events import Actor, Event
from storage.deployment import Deployment, initialise, open_deployment
from storage.sql.database import _alembic_config
from tests.conftest import FakeClock, make_config
from tests.factories import in_case

DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}


@pytest.fixture
def clocked(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> Iterator[Deployment]:
    config = make_config(tmp_path, sqlite_url)
    initialise(config).deployment.close()
    deployment = open_deployment(config, clock=clock)
    yield deployment
    deployment.close()


def add(deployment: Deployment, name: str, role: str) -> Actor:
    operator = deployment.principals.get("operator").actor
    return deployment.principals.add(name, role, operator)[0].actor


def ingest(deployment: Deployment, by: Actor, case: str = "C-1") -> str:
    session = deployment.intake.open_session({**DIGITAL, "case": case}, by)
    deployment.intake.receive(session.id, io.BytesIO(b"bytes " * 100), by)
    return session.id


def case_events(deployment: Deployment, case_id: str) -> list[Event]:
    return [Event.decode(e.leaf) for e in deployment.ledger.subject_entries(f"case:{case_id}")]


def test_opening_a_case_records_it_and_its_opener_as_lead(clocked: Deployment) -> None:
    alice = add(clocked, "alice", "examiner")
    values = {"reference": "C-1", "title": "Harbour St burglary", "authority": "DPP Lisbon"}

    case, _ = clocked.cases.open(values, alice)

    opened, lead = case_events(clocked, case.id)
    assert opened.type == "case.opened" and opened.actor == alice
    assert opened.data["reference"] == "C-1" and opened.data["authority"] == "DPP Lisbon"
    # The title may name people: the ledger holds only its salted commitment.
    assert "Harbour" not in json.dumps(opened.data) and "title_commitment" in opened.data
    assert (lead.type, lead.data) == ("case.member_added", {"principal": alice.id, "role": "lead"})


@pytest.mark.parametrize("role", ["court", "admin", "approver", "provider"])
def test_only_an_examiner_or_an_authority_opens_a_case(clocked: Deployment, role: str) -> None:
    someone = Actor("pr_someone", role)

    with pytest.raises(Forbidden):
        clocked.cases.open({"reference": "C-1", "title": "t", "authority": "a"}, someone)


def test_a_case_names_every_field_it_lacks(clocked: Deployment) -> None:
    alice = add(clocked, "alice", "examiner")

    with pytest.raises(FieldErrors) as refused:
        clocked.cases.open({"title": ""}, alice)

    assert [name for name, _ in refused.value.errors] == ["reference", "title", "authority"]


def test_a_reference_is_one_case_s_only(clocked: Deployment) -> None:
    alice, bob = add(clocked, "alice", "examiner"), add(clocked, "bob", "authority")
    clocked.cases.open({"reference": "C-1", "title": "t", "authority": "a"}, alice)
    size = clocked.ledger.size()

    with pytest.raises(Conflict):
        clocked.cases.open({"reference": "C-1", "title": "u", "authority": "b"}, bob)

    assert clocked.ledger.size() == size


def test_a_court_s_grant_that_ended_closes_the_case_to_it(
    clocked: Deployment, clock: FakeClock
) -> None:
    alice, court = add(clocked, "alice", "examiner"), add(clocked, "clerk", "court")
    case_id = in_case(clocked, "C-1", "alice")
    item = ingest(clocked, alice)
    grant = {"court": "clerk", "proceeding": "trial 3/26", "ends_at": clock() + timedelta(days=2)}
    clocked.cases.grant_court(case_id, grant, alice)
    assert clocked.handling.get(item, court).id == item

    clock.advance(timedelta(days=2).total_seconds())

    with pytest.raises(NotFound):
        clocked.handling.get(item, court)
    with pytest.raises(NotFound):
        clocked.bundles.export([item], io.BytesIO(), by=court)


def test_a_grant_ends_in_the_future_and_names_items_of_its_case(
    clocked: Deployment, clock: FakeClock
) -> None:
    alice, bob = add(clocked, "alice", "examiner"), add(clocked, "bob", "examiner")
    add(clocked, "clerk", "court")
    case_id = in_case(clocked, "C-1", "alice")
    in_case(clocked, "C-2", "bob")
    foreign = ingest(clocked, bob, "C-2")

    with pytest.raises(FieldErrors) as past:
        clocked.cases.grant_court(
            case_id, {"court": "clerk", "proceeding": "p", "ends_at": clock()}, alice
        )
    with pytest.raises(FieldErrors) as other_case:
        clocked.cases.grant_court(
            case_id,
            {
                "court": "clerk",
                "proceeding": "p",
                "ends_at": clock() + timedelta(days=1),
                "exhibits": [foreign],
            },
            alice,
        )

    assert [n for n, _ in past.value.errors] == ["ends_at"]
    assert [n for n, _ in other_case.value.errors] == ["exhibits"]


def test_only_a_lead_or_an_admin_manages_members(clocked: Deployment) -> None:
    add(clocked, "alice", "examiner")
    bob = add(clocked, "bob", "examiner")
    add(clocked, "carol", "examiner")
    outsider = add(clocked, "dave", "examiner")
    case_id = in_case(clocked, "C-1", "alice", "bob")

    with pytest.raises(Forbidden):
        clocked.cases.add_member(case_id, "carol", "member", bob)
    with pytest.raises(NotFound):
        clocked.cases.add_member(case_id, "carol", "member", outsider)


def test_a_court_is_granted_a_case_not_made_a_member(clocked: Deployment) -> None:
    add(clocked, "alice", "examiner")
    add(clocked, "clerk", "court")
    case_id = in_case(clocked, "C-1", "alice")
    operator = clocked.principals.get("operator").actor

    with pytest.raises(FieldErrors) as refused:
        clocked.cases.add_member(case_id, "clerk", "member", operator)

    assert [n for n, _ in refused.value.errors] == ["principal"]


def test_a_closed_case_takes_no_new_item(clocked: Deployment) -> None:
    alice = add(clocked, "alice", "examiner")
    case_id = in_case(clocked, "C-1", "alice")
    item = ingest(clocked, alice)

    clocked.cases.close(case_id, alice)

    with pytest.raises(Conflict):
        clocked.intake.open_session(DIGITAL, alice)
    assert clocked.handling.get(item, alice).id == item
    assert case_events(clocked, case_id)[-1].type == "case.closed"


def test_a_member_removed_mid_upload_takes_nothing_in(clocked: Deployment) -> None:
    alice = add(clocked, "alice", "examiner")
    add(clocked, "bob", "examiner")
    case_id = in_case(clocked, "C-1", "bob", "alice")
    session = clocked.intake.open_session(DIGITAL, alice)
    clocked.cases.remove_member(case_id, "alice", clocked.principals.get("operator").actor)
    size = clocked.ledger.size()

    with pytest.raises(FieldErrors):
        clocked.intake.receive(session.id, io.BytesIO(b"bytes"), alice)

    assert clocked.ledger.size() == size


def test_migration_0010_makes_a_case_of_each_case_string_with_its_creators(
    clocked: Deployment,
) -> None:
    alice, bob = add(clocked, "alice", "examiner"), add(clocked, "bob", "examiner")
    add(clocked, "carol", "examiner")
    in_case(clocked, "C-1", "alice", "bob")
    in_case(clocked, "C-2", "carol")
    first, second = ingest(clocked, alice), ingest(clocked, bob)
    engine = clocked.engine
    # The deployment as it was before cases: downgrade, then upgrade as an upgrader does.
    with engine.connect() as connection:
        command.downgrade(_alembic_config(connection), "0009")  # the revision before 0010
        connection.commit()
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master")).scalars().all()
        assert "cases" not in tables
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()

    case = clocked.cases.store.by_reference("C-1")
    assert case is not None and case.title == "C-1" and case.opened_by == alice.id
    members = {m.principal_id: m.role for m in clocked.cases.store.members(case.id)}
    assert members == {alice.id: "lead", bob.id: "member"}
    # The migration signs nothing; custos init records the new case's events, once.
    size = clocked.ledger.size()
    assert clocked.cases.record_migrated() == 1
    assert clocked.cases.record_migrated() == 0
    events = case_events(clocked, case.id)
    assert [e.type for e in events] == ["case.opened", "case.member_added", "case.member_added"]
    assert events[0].actor.role == "system" and events[0].data["reference"] == "C-1"
    assert {e.data["principal"] for e in events[1:]} == {alice.id, bob.id}
    assert clocked.ledger.size() == size + 3
    # C-2 held no item: nothing made it again.
    assert clocked.cases.store.by_reference("C-2") is None
    assert {clocked.handling.get(i, alice).id for i in (first, second)} == {first, second}


def test_a_reader_s_list_pages_through_its_cases_in_ledger_order(clocked: Deployment) -> None:
    alice, bob = add(clocked, "alice", "examiner"), add(clocked, "bob", "examiner")
    in_case(clocked, "C-1", "alice")
    in_case(clocked, "C-2", "alice")
    in_case(clocked, "C-3", "bob")
    made = [ingest(clocked, alice, "C-1"), ingest(clocked, alice, "C-2")]
    made += [ingest(clocked, bob, "C-3"), ingest(clocked, alice, "C-2")]
    made += [ingest(clocked, alice, "C-1"), ingest(clocked, bob, "C-3")]
    theirs = {made[2], made[5]}

    seen: list[str] = []
    after = None
    while True:
        page = clocked.handling.list(alice, None, None, 2, after)
        seen += [record.id for record in page]
        if len(page) < 2:
            break
        after = page[-1].ledger_index

    assert seen == [item for item in made if item not in theirs]
    assert [r.id for r in clocked.handling.list(alice, "C-2", None, 10, None)] == made[1::2][:2]
    assert clocked.handling.list(alice, "C-3", None, 10, None) == []
