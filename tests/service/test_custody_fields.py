"""The fields custody practice requires (custody.acts): each refused when missing, 422 naming
it, through the API; each shown in the custody report of the item's exhibit bundle. And the
acts they belong to: a transfer pending until its custodian confirms receipt, an unseal that
names the seal it breaks, a read that records the digests the bytes re-hashed to."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from custody.acts import ACT_FIELDS, SEIZURE_FIELDS
from tests.conftest import Home, bearer
from tests.factories import ACT_BODIES, SEIZURE, in_case

PHYSICAL = {
    "kind": "physical",
    "case": "C-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}
DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}
REQUIRED = [
    pytest.param(act, f.name, id=f"{act}-{f.name}")
    for act, specs in ACT_FIELDS.items()
    for f in specs
    if f.required
]


@dataclass
class Lab:
    client: FlaskClient
    alice: dict[str, str]
    bob: dict[str, str]
    approver: dict[str, str]

    def register(self, **changes: Any) -> Any:
        return self.client.post("/v1/evidence", json={**PHYSICAL, **changes}, headers=self.alice)

    def act(self, item: str, act: str, headers: dict[str, str] | None = None, **data: Any) -> Any:
        body = {"type": act, **ACT_BODIES[act], **data}
        return self.client.post(
            f"/v1/evidence/{item}/events", json=body, headers=headers or self.alice
        )

    def report(self, item: str) -> str:
        response = self.client.get(f"/v1/evidence/{item}/bundle", headers=self.alice)
        assert response.status_code == 200, response.get_data(as_text=True)
        return zipfile.ZipFile(io.BytesIO(response.data)).read("report.html").decode()


@pytest.fixture
def lab(home: Home, client: FlaskClient) -> Lab:
    people = home.deployment.principals
    operator = people.get("operator").actor
    tokens = {
        name: people.add(name, role, operator)[1]
        for name, role in (("alice", "examiner"), ("bob", "examiner"), ("judge", "approver"))
    }
    in_case(home.deployment, "C-1", "alice", "bob", "judge")
    return Lab(client, *(bearer(tokens[n]) for n in ("alice", "bob", "judge")))


def errors_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return [e["field"] for e in response.get_json()["errors"]]


@pytest.mark.parametrize(("act", "name"), REQUIRED)
def test_each_required_act_field_missing_is_422_naming_it(
    lab: Lab, home: Home, act: str, name: str
) -> None:
    item = lab.register().get_json()["id"]
    body = {"type": act, **{k: v for k, v in ACT_BODIES[act].items() if k != name}}
    by = lab.approver if act == "evidence.disposed" else lab.alice
    size = home.deployment.ledger.size()

    response = lab.client.post(f"/v1/evidence/{item}/events", json=body, headers=by)

    assert errors_of(response) == [name]
    assert home.deployment.ledger.size() == size


@pytest.mark.parametrize("name", [f.name for f in SEIZURE_FIELDS])
def test_each_seizure_field_missing_is_422_naming_it(lab: Lab, home: Home, name: str) -> None:
    size = home.deployment.ledger.size()

    response = lab.register(seizure={k: v for k, v in SEIZURE.items() if k != name})

    assert errors_of(response) == [f"seizure.{name}"]
    assert home.deployment.ledger.size() == size


def test_a_physical_item_without_its_seizure_is_422(lab: Lab) -> None:
    body = {k: v for k, v in PHYSICAL.items() if k != "seizure"}

    response = lab.client.post("/v1/evidence", json=body, headers=lab.alice)

    assert errors_of(response) == ["seizure"]


def test_a_seizure_time_without_its_offset_is_422(lab: Lab) -> None:
    response = lab.register(seizure={**SEIZURE, "at": "2026-11-27T09:30:00"})

    assert errors_of(response) == ["seizure.at"]


def test_a_transfer_is_pending_until_its_custodian_confirms_receipt(lab: Lab) -> None:
    item = lab.register().get_json()["id"]

    sent = lab.act(item, "evidence.transferred", to="bob").get_json()
    refused_other = lab.act(item, "evidence.received")
    refused_act = lab.act(item, "evidence.sealed")
    received = lab.act(item, "evidence.received", lab.bob, seal_intact="no")

    assert sent["state"]["transfer_pending_to"] is not None
    assert sent["allowed_actions"] == ["evidence.received", "evidence.noted", "evidence.hold_set"]
    assert refused_other.status_code == 403
    assert refused_act.status_code == 409
    assert received.status_code == 201, received.get_json()
    confirmed = received.get_json()
    assert confirmed["state"]["transfer_pending_to"] is None
    assert confirmed["event"]["actor"]["id"] == sent["state"]["transfer_pending_to"]
    assert confirmed["event"]["data"]["seal_intact"] == "no"


def test_a_transfer_names_a_member_of_the_case_as_its_custodian(lab: Lab) -> None:
    item = lab.register().get_json()["id"]

    response = lab.act(item, "evidence.transferred", to="nobody")

    assert errors_of(response) == ["to"]


def test_an_unseal_names_the_seal_the_item_carries(lab: Lab) -> None:
    item = lab.register().get_json()["id"]
    assert lab.act(item, "evidence.sealed", seal="S-1").status_code == 201

    wrong = lab.act(item, "evidence.unsealed", seal="S-2")
    right = lab.act(item, "evidence.unsealed", seal="S-1")

    assert errors_of(wrong) == ["seal"]
    assert right.status_code == 201
    assert right.get_json()["state"]["seal"] is None


def test_a_read_records_the_digests_the_bytes_re_hashed_to(lab: Lab) -> None:
    opened = lab.client.post("/v1/evidence", json=DIGITAL, headers=lab.alice).get_json()
    done = lab.client.put(opened["upload"], data=b"image " * 500, headers=lab.alice).get_json()

    read = lab.client.get(f"/v1/evidence/{done['id']}/content?purpose=review", headers=lab.alice)

    assert read.status_code == 200
    events = lab.client.get(f"/v1/evidence/{done['id']}/custody", headers=lab.alice).get_json()
    accessed = [e for e in events["events"] if e["type"] == "evidence.accessed"]
    assert [e["data"]["digests"] for e in accessed] == [done["digests"]]
    report = lab.report(done["id"])
    entry = _event_entry(report, "evidence.accessed")
    assert done["digests"]["sha256"] in entry


def _event_entry(report: str, event_type: str) -> str:
    """The report's timeline entry of the (first) event of ``event_type``."""
    entries = re.split(r'<li(?: class="failed")?><div class="when">', report)[1:]
    return next(e for e in entries if f">{event_type}<" in e)


def test_the_report_shows_every_custody_field(lab: Lab) -> None:
    item = lab.register().get_json()["id"]
    steps = [
        ("evidence.sealed", lab.alice, {"seal": "S-0042"}),
        ("evidence.transferred", lab.alice, {"to": "bob", "location": "front desk"}),
        ("evidence.received", lab.bob, {"location": "vault B2", "seal_intact": "yes"}),
        ("evidence.unsealed", lab.bob, {"seal": "S-0042"}),
        ("evidence.examined", lab.bob, {"location": "lab 3"}),
        ("evidence.checked_out", lab.bob, {}),
        ("evidence.checked_in", lab.bob, {"location": "shelf 9"}),
    ]
    for act, headers, data in steps:
        response = lab.act(item, act, headers, **data)
        assert response.status_code == 201, (act, response.get_json())

    report = lab.report(item)

    registered = _event_entry(report, "evidence.registered")
    for value in SEIZURE.values():
        assert value.removesuffix("Z") in registered, value
    assert "S-0042" in _event_entry(report, "evidence.sealed")
    assert "S-0042" in _event_entry(report, "evidence.unsealed")
    received = _event_entry(report, "evidence.received")
    assert "vault B2" in received and "yes" in received
    assert "lab 3" in _event_entry(report, "evidence.examined")
    assert "shelf 9" in _event_entry(report, "evidence.checked_in")
