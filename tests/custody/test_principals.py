"""Tests of who may add and revoke principals (custody/principals.py), called directly, as
the HTTP API and the CLI call it: the rule is the domain's, not an edge's."""

from __future__ import annotations

import pytest

from custody.commitment import commitment
from custody.errors import BadRequest, Forbidden, NotFound
from custody.events import SYSTEM, Event
from custody.principals import ROLES
from storage.deployment import Deployment
from tests.conftest import Home


def ledger_and_names(deployment: Deployment) -> tuple[int, list[str]]:
    return deployment.ledger.size(), [p.name for p in deployment.principals.list()]


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("admin", "provider")])
def test_only_an_admin_adds_or_revokes_principals(deployment: Deployment, role: str) -> None:
    operator = deployment.principals.get("operator").actor
    member, _ = deployment.principals.add("member", role, operator)
    before = ledger_and_names(deployment)

    with pytest.raises(Forbidden, match=f"the {role} role may not add principals"):
        deployment.principals.add("newcomer", "examiner", member.actor)
    with pytest.raises(Forbidden, match=f"the {role} role may not revoke principals"):
        deployment.principals.revoke("operator", member.actor)

    assert ledger_and_names(deployment) == before
    assert deployment.principals.get("operator").active


def test_an_admin_adds_and_revokes_principals(deployment: Deployment) -> None:
    operator = deployment.principals.get("operator").actor

    added, _ = deployment.principals.add("alice", "examiner", operator)
    revoked = deployment.principals.revoke("alice", operator)

    assert added.role == "examiner" and not revoked.active


def test_the_system_creates_the_first_admin_only(deployment: Deployment) -> None:
    # `custos init` created the operator through the system actor; nothing more is allowed.
    before = ledger_and_names(deployment)

    with pytest.raises(Forbidden, match="principals exist"):
        deployment.principals.add("second", "admin", SYSTEM)
    with pytest.raises(Forbidden, match="only the first admin"):
        deployment.principals.add("someone", "examiner", SYSTEM)
    with pytest.raises(Forbidden):
        deployment.principals.revoke("operator", SYSTEM)

    assert ledger_and_names(deployment) == before


def test_the_first_admin_of_an_empty_deployment_is_the_systems_act(
    deployment: Deployment,
) -> None:
    events = [Event.decode(deployment.ledger.entry(i)) for i in range(deployment.ledger.size())]
    [created] = [e for e in events if e.type == "principal.created"]
    assert created.actor == SYSTEM and created.data["role"] == "admin"


def principal_events(deployment: Deployment, principal_id: str) -> list[Event]:
    entries = deployment.ledger.subject_entries(f"principal:{principal_id}")
    return [Event.decode(entry.leaf) for entry in entries]


def test_a_display_name_is_committed_to_at_creation_never_recorded(
    deployment: Deployment,
) -> None:
    operator = deployment.principals.get("operator").actor

    added, _ = deployment.principals.add("ana", "examiner", operator, display_name="Dr Ana Ruiz")

    [created] = principal_events(deployment, added.id)
    [named] = deployment.principals.names(added.id)
    assert created.data["name_commitment"] == commitment(named.salt, b"Dr Ana Ruiz")
    assert named.ledger_index == deployment.ledger.subject_entries(f"principal:{added.id}")[0].index
    assert b"Ana" not in deployment.ledger.entry(named.ledger_index)
    assert deployment.principals.get("ana").display_name == "Dr Ana Ruiz"
    assert deployment.principals.get("ana").shown_as == "Dr Ana Ruiz"


def test_a_principal_without_a_display_name_commits_to_none(deployment: Deployment) -> None:
    operator = deployment.principals.get("operator").actor

    added, _ = deployment.principals.add("bob", "court", operator)

    [created] = principal_events(deployment, added.id)
    assert "name_commitment" not in created.data
    assert deployment.principals.names(added.id) == []
    assert added.shown_as == "bob"


def test_an_admin_names_an_existing_principal_with_a_principal_named_event(
    deployment: Deployment,
) -> None:
    operator = deployment.principals.get("operator").actor
    added, _ = deployment.principals.add("cara", "examiner", operator, display_name="Cara")

    named = deployment.principals.name("cara", "Cara O'Neill", operator)

    assert named.display_name == "Cara O'Neill"
    assert deployment.principals.get("cara").display_name == "Cara O'Neill"
    events = principal_events(deployment, added.id)
    assert [e.type for e in events] == ["principal.created", "principal.named"]
    first, second = deployment.principals.names(added.id)
    assert (first.name, second.name) == ("Cara", "Cara O'Neill")
    assert events[1].data == {"name_commitment": commitment(second.salt, b"Cara O'Neill")}


@pytest.mark.parametrize(
    "display_name",
    ["", " padded", "padded ", "line\nbreak", "bell\x07", "rtl\u202eoverride", "x" * 201],
)
def test_a_display_name_that_cannot_be_shown_plainly_is_refused_and_nothing_changes(
    deployment: Deployment, display_name: str
) -> None:
    operator = deployment.principals.get("operator").actor
    deployment.principals.add("dan", "examiner", operator)
    before = ledger_and_names(deployment)

    with pytest.raises(BadRequest, match="display name"):
        deployment.principals.add("eve", "examiner", operator, display_name=display_name)
    with pytest.raises(BadRequest, match="display name"):
        deployment.principals.name("dan", display_name, operator)

    assert ledger_and_names(deployment) == before
    assert deployment.principals.get("dan").display_name is None


def test_only_an_admin_names_principals(deployment: Deployment) -> None:
    operator = deployment.principals.get("operator").actor
    member, _ = deployment.principals.add("fay", "examiner", operator)
    before = ledger_and_names(deployment)

    with pytest.raises(Forbidden, match="may not name principals"):
        deployment.principals.name("fay", "Fay", member.actor)
    with pytest.raises(NotFound):
        deployment.principals.name("nobody", "Nobody", operator)

    assert ledger_and_names(deployment) == before


def test_display_names_are_kept_with_their_salts_on_each_database(
    home_on_each_database: Home,
) -> None:
    people = home_on_each_database.deployment.principals
    operator = people.get("operator").actor

    added, _ = people.add("gus", "court", operator, display_name="Gus Ó Briain")
    people.name("gus", "Judge Gus Ó Briain", operator)

    names = people.names(added.id)
    assert [n.name for n in names] == ["Gus Ó Briain", "Judge Gus Ó Briain"]
    assert all(len(n.salt) == 32 for n in names) and names[0].salt != names[1].salt
    assert people.get("gus").display_name == "Judge Gus Ó Briain"
    assert [p.display_name for p in people.list() if p.name == "gus"] == ["Judge Gus Ó Briain"]
