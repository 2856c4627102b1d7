"""Tests of the custody act table (custody/acts.py) and of Handling checking every act
against it, called directly as the CLI's local backend and the API call it."""

from __future__ import annotations

import pytest

from custody.acts import ACT_FIELDS, ACTS, check_act_fields
from custody.errors import FieldErrors
from custody.events import Actor
from custody.evidence import EvidenceRecord
from storage.deployment import Deployment
from tests.custody.test_handling import PHYSICAL, add_principal
from tests.factories import ACT_BODIES as BODIES
from tests.factories import in_case


@pytest.fixture
def examiner(deployment: Deployment) -> Actor:
    alice = add_principal(deployment, "alice", "examiner")
    in_case(deployment, "CASE-1", "alice")
    return alice


@pytest.fixture
def item(deployment: Deployment, examiner: Actor) -> EvidenceRecord:
    appended = deployment.intake.register_physical(dict(PHYSICAL), examiner)
    return deployment.handling.get(appended.event.subject.id, examiner)


def test_every_act_has_a_body_matching_its_table() -> None:
    assert set(BODIES) == set(ACTS)
    for act, body in BODIES.items():
        assert check_act_fields(act, body) == body
        required = {f.name for f in ACT_FIELDS[act] if f.required}
        assert required <= set(body), act


def test_every_invalid_field_is_reported_at_once() -> None:
    body = {"from": "", "to": 42, "reason": "x" * 501, "suspect": "J. Doe"}

    with pytest.raises(FieldErrors) as refused:
        check_act_fields("evidence.transferred", body)

    assert refused.value.errors == [
        ("from", "empty"),
        ("to", "not a string"),
        ("location", "required: where"),
        ("reason", "longer than 500 characters"),
        ("suspect", "unknown field"),
    ]
    assert "location: required" in str(refused.value)


@pytest.mark.parametrize("act", [a for a in ACTS if any(f.required for f in ACT_FIELDS[a])])
def test_handling_refuses_an_act_missing_its_required_fields(
    deployment: Deployment, examiner: Actor, item: EvidenceRecord, act: str
) -> None:
    required = [f.name for f in ACT_FIELDS[act] if f.required]
    by = add_principal(deployment, "judge", "approver") if act == "evidence.disposed" else examiner
    size = deployment.ledger.size()

    with pytest.raises(FieldErrors) as refused:
        deployment.handling.record_act(item.id, act, {}, by)

    assert [name for name, _ in refused.value.errors] == required
    assert deployment.ledger.size() == size
    assert deployment.handling.get(item.id, examiner).state == item.state


def test_a_transfer_without_a_location_is_refused(
    deployment: Deployment, examiner: Actor, item: EvidenceRecord
) -> None:
    body = {k: v for k, v in BODIES["evidence.transferred"].items() if k != "location"}

    with pytest.raises(FieldErrors, match="location"):
        deployment.handling.record_act(item.id, "evidence.transferred", body, examiner)


def test_an_examination_without_findings_is_a_field_error_not_a_crash(
    deployment: Deployment, examiner: Actor, item: EvidenceRecord
) -> None:
    body = {k: v for k, v in BODIES["evidence.examined"].items() if k != "findings"}

    with pytest.raises(FieldErrors) as refused:
        deployment.handling.record_act(item.id, "evidence.examined", body, examiner)

    assert refused.value.errors == [("findings", "required: findings")]
