"""The SQL case store on SQLite and PostgreSQL: who may know of what (``scope_of``), the lists
of a principal's cases, and grants that run out or name exhibits."""

from __future__ import annotations

import io
from datetime import timedelta

from custody.events import Actor
from tests.conftest import Home
from tests.factories import in_case


def test_scope_and_lists_follow_memberships_and_running_grants(
    home_on_each_database: Home,
) -> None:
    deployment = home_on_each_database.deployment
    operator = deployment.principals.get("operator").actor

    def add(name: str, role: str) -> Actor:
        return deployment.principals.add(name, role, operator)[0].actor

    alice, bob = add("alice", "examiner"), add("bob", "examiner")
    court, other_court = add("clerk", "court"), add("clerk-2", "court")
    first = in_case(deployment, "C-1", "alice")
    second = in_case(deployment, "C-2", "bob", "alice")
    metadata = {"kind": "digital", "case": "C-2", "exhibit": "E-1", "description": "image"}
    session = deployment.intake.open_session(metadata, bob)
    item = deployment.intake.receive(session.id, io.BytesIO(b"bytes"), bob).record.id
    now = deployment.ledger.clock()
    cases = deployment.cases
    cases.grant_court(
        first, {"court": "clerk", "proceeding": "p", "ends_at": now + timedelta(days=1)}, alice
    )
    ended = cases.grant_court(
        second, {"court": "clerk", "proceeding": "q", "ends_at": now + timedelta(days=1)}, bob
    )
    cases.end_grant(second, ended.id, bob)
    cases.grant_court(
        second,
        {
            "court": "clerk-2",
            "proceeding": "r",
            "ends_at": now + timedelta(days=1),
            "exhibits": [item],
        },
        bob,
    )
    store = cases.store

    assert store.scope_of(alice.id, now) == ({"C-1", "C-2"}, set())
    assert store.scope_of(bob.id, now) == ({"C-2"}, set())
    assert store.scope_of(court.id, deployment.ledger.clock()) == ({"C-1"}, set())
    assert store.scope_of(other_court.id, now) == (set(), {item})
    assert store.scope_of(other_court.id, now + timedelta(days=2)) == (set(), set())
    later = deployment.ledger.clock()
    assert [c.reference for c in store.list(alice.id, later, 10, None)] == ["C-1", "C-2"]
    assert [c.reference for c in store.list(alice.id, later, 10, "C-1")] == ["C-2"]
    assert [c.reference for c in store.list(court.id, later, 10, None)] == ["C-1"]
    assert [c.reference for c in store.list(None, later, 1, None)] == ["C-1"]
    assert store.item_case(item) == "C-2" and store.item_case("ev_0000000000000000") is None
    assert [r.id for r in deployment.handling.list(other_court, None, None, 10, None)] == [item]
