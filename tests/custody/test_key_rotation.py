"""Tests of rotating the service key (custody/key_rotation.py), called directly: only an
admin rotates, and the ``key.rotated`` event is custody's."""

from __future__ import annotations

import pytest

from custody.errors import Forbidden
from custody.events import SYSTEM, Event
from custody.key_rotation import rotate_key
from storage.deployment import Deployment


@pytest.mark.parametrize("role", ["examiner", "authority", "approver", "court"])
def test_a_non_admin_may_not_rotate_the_key(deployment: Deployment, role: str) -> None:
    operator = deployment.principals.get("operator").actor
    member, _ = deployment.principals.add("member", role, operator)
    keys_before = [k.verifier_key for k in deployment.keys.keys]
    size = deployment.ledger.size()
    files = sorted(p.name for p in deployment.config.keys_dir.iterdir())

    with pytest.raises(Forbidden, match=f"the {role} role may not rotate the service key"):
        rotate_key(deployment.key_file, deployment.ledger, member.actor)

    assert [k.verifier_key for k in deployment.keys.keys] == keys_before
    assert deployment.ledger.size() == size
    assert sorted(p.name for p in deployment.config.keys_dir.iterdir()) == files


def test_the_system_actor_may_not_rotate_the_key(deployment: Deployment) -> None:
    with pytest.raises(Forbidden):
        rotate_key(deployment.key_file, deployment.ledger, SYSTEM)


def test_an_admin_rotates_the_key_with_one_key_rotated_event(deployment: Deployment) -> None:
    operator = deployment.principals.get("operator").actor
    old = deployment.keys.current.verifier_key

    done = rotate_key(deployment.key_file, deployment.ledger, operator)

    event = Event.decode(deployment.ledger.entry(done.index))
    assert event.type == "key.rotated" and event.actor == operator
    assert event.data == {"old": old, "new": done.new_key} and done.old_key == old
    ring = deployment.keys
    assert ring.current.verifier_key == done.new_key
    assert [k.retired_at for k in ring.keys] == [done.index, None]
    # The hand-over checkpoint covers the event, signed at once.
    assert deployment.ledger.checkpoint().size > done.index
