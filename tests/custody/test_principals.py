"""Tests of who may add and revoke principals (custody/principals.py), called directly, as
the HTTP API and the CLI call it: the rule is the domain's, not an edge's."""

from __future__ import annotations

import pytest

from custody.errors import Forbidden
from custody.events import SYSTEM, Event
from custody.principals import ROLES
from storage.deployment import Deployment


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
