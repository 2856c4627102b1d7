"""Tests of the authority's order API (service/orders.py) and the printable order page
(service/order_page.py), through the Flask test client over a deployment with a FakeClock.

The provider's side is acted through the order desk directly (its HTTP API is tested in
test_provider_api.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from custody.events import Actor
from custody.note import open_note
from custody.note_types import ORDER_TYPE
from custody.order_document import (
    AUTHORITY_TYPES,
    DATA_CATEGORIES,
    EMERGENCY_CATEGORIES,
    KINDS,
    LEGAL_BASES,
    TARGET_TYPES,
)
from custody.orders import OrderState
from service import create_app, order_page
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import FakeClock, Home, add_provider, bearer, make_config
from tests.factories import EMERGENCY, in_case, order_document

DAY = 24 * 3600
MISSING = "ord_0000000000000000"
# What a served production order allows, whoever may act: the authority withdraws it, the
# provider acknowledges, objects or asks.
# ``allowed_actions`` lists what the caller's role may do: the authority may withdraw a served
# order and, until the provider received it, send its notice again.
# Once served, an order to produce also records whether its user was informed (Art 13).
SERVED_ALLOWS = ["withdraw", "resend"]
INFORM = "record_user_information"
PATHS = (
    "submit",
    "approve",
    "withdraw",
    "resend",
    "adapt",
    "extend",
    "confirm-production-request",
    "answer-objection",
    "answer-clarification",
    "seek-enforcement",
    "close",
)


@dataclass
class Site:
    """A deployment on a FakeClock, its client, a provider and its principals."""

    deployment: Deployment
    client: FlaskClient
    clock: FakeClock
    provider_id: str
    headers: dict[str, dict[str, str]]
    actors: dict[str, Actor]

    def document(self, kind: str = "production", **changes: Any) -> dict[str, Any]:
        return order_document(**{"provider": self.provider_id, "kind": kind, **changes})

    def draft(self, who: str = "alice", kind: str = "production", **changes: Any) -> str:
        response = self.client.post(
            "/v1/orders", json=self.document(kind, **changes), headers=self.headers[who]
        )
        assert response.status_code == 201, response.get_json()
        order_id: str = response.get_json()["id"]
        return order_id

    def post(self, order_id: str, path: str, who: str = "alice", **body: Any) -> TestResponse:
        return self.client.post(
            f"/v1/orders/{order_id}/{path}", json=body or None, headers=self.headers[who]
        )

    def act(self, order_id: str, path: str, who: str = "alice", **body: Any) -> dict[str, Any]:
        response = self.post(order_id, path, who, **body)
        assert response.status_code == 200, response.get_json()
        result: dict[str, Any] = response.get_json()
        return result

    def served(self, kind: str = "production", **changes: Any) -> str:
        order_id = self.draft(kind=kind, **changes)
        self.act(order_id, "submit")
        self.act(order_id, "approve", "judge")
        return order_id

    def provider_reads(self, order_id: str) -> None:
        """The provider reads the order: its receipt, when nothing came first."""
        self.deployment.orders.get_for_provider(order_id, self.actors["isp"], self.provider_id)

    def provider_acts(self, order_id: str, action: str, **data: Any) -> None:
        """What the provider does, through the order desk."""
        self.deployment.orders.act(
            order_id, action, data, self.actors["isp"], provider_id=self.provider_id
        )

    def respond(self, order_id: str) -> str:
        """The provider uploads a response; its evidence id."""
        desk, isp = self.deployment.orders, self.actors["isp"]
        content = b"subscriber records"
        session = desk.open_response(
            order_id, {"description": "subscriber data"}, isp, self.provider_id
        )
        desk.receive_response(
            order_id,
            session.id,
            io.BytesIO(content),
            isp,
            self.provider_id,
            content_length=len(content),
        )
        return session.id

    def show(self, order_id: str, who: str = "alice") -> dict[str, Any]:
        response = self.client.get(f"/v1/orders/{order_id}", headers=self.headers[who])
        assert response.status_code == 200, response.get_json()
        result: dict[str, Any] = response.get_json()
        return result


def build_site(config_path: Path, database_url: str, **provider: str) -> Iterator[Site]:
    settings = make_config(config_path, database_url)
    result = initialise(settings)
    result.deployment.close()
    assert result.operator_token is not None
    clock = FakeClock()
    deployment = open_deployment(settings, clock=clock)
    home = Home(deployment, result.operator_token)
    principals = deployment.principals
    operator = principals.get("operator").actor
    isp = add_provider(deployment, **provider)
    headers = {"operator": bearer(home.operator_token)}
    actors = {}
    for name, role in (
        ("alice", "authority"),
        ("bob", "authority"),
        ("judge", "approver"),
        ("judge2", "approver"),
        ("eve", "examiner"),
        ("clerk", "court"),
        ("isp", "provider"),
    ):
        principal, token = principals.add(
            name, role, operator, isp.id if role == "provider" else None
        )
        headers[name] = bearer(token)
        actors[name] = principal.actor
    # The cases the orders and items of these tests belong to, with everyone in them.
    for case in ("CASE-1", "CASE-2", "CASE-7", "CASE-9", "CASE-42"):
        in_case(deployment, case, "alice", "bob", "judge", "judge2", "eve", "clerk")
    client = create_app({"TESTING": True}, deployment=deployment).test_client()
    yield Site(deployment, client, clock, isp.id, headers, actors)
    deployment.close()


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url)


@pytest.fixture
def site_on_each_database(tmp_path: Path, database_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, database_url)


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- drafting and revising -------------------------------------------------------------------


def test_an_authority_drafts_an_order_and_gets_its_view_with_the_event_index(site: Site) -> None:
    document = site.document()

    response = site.client.post("/v1/orders", json=document, headers=site.headers["alice"])

    assert response.status_code == 201
    body = response.get_json()
    assert body["state"] == "draft"
    assert body["drafted_by"] == site.actors["alice"].id
    assert body["allowed_actions"] == ["submit", "withdraw"]
    assert body["ledger_index"] == site.deployment.ledger.size() - 1
    assert body["document"]["facts"] == document["facts"]
    assert body["document"]["targets"][0] == {**document["targets"][0], "port": None, "time": None}
    assert response.headers["Location"] == f"/v1/orders/{body['id']}"
    event = json.loads(site.deployment.ledger.entry(body["ledger_index"]))
    assert event["type"] == "order.drafted" and event["subject"]["id"] == body["id"]
    assert document["targets"][0]["value"] not in json.dumps(event)


def test_an_order_names_who_acted_as_people_read_them(site: Site) -> None:
    operator = site.deployment.principals.get("operator").actor
    site.deployment.principals.name("alice", "Ana Ribeiro", operator)
    drafted = site.client.post("/v1/orders", json=site.document(), headers=site.headers["alice"])

    shown = site.client.get(
        f"/v1/orders/{drafted.get_json()['id']}", headers=site.headers["bob"]
    ).get_json()

    assert shown["names"] == [{"id": site.actors["alice"].id, "name": "Ana Ribeiro"}]


INVALID_DOCUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"facts": "  "}, "facts"),
    ({"targets": []}, "targets"),
    ({"legal_basis": {"instrument": "magna_carta", "citation": "c. 39"}}, "legal_basis"),
    (
        {"targets": [{"type": "ip", "value": "not-an-ip", "time": "2026-01-03T10:00:00Z"}]},
        "targets[0].value",
    ),
    ({"colour": "red"}, "colour"),
    ({"provider": "prv_0000000000000000"}, "provider"),
    ({"facts": "nul \x00 byte"}, "facts"),
]


def test_an_invalid_document_is_422_naming_the_field_and_records_nothing(site: Site) -> None:
    size = site.deployment.ledger.size()

    for changes, field in INVALID_DOCUMENTS:
        response = site.client.post(
            "/v1/orders", json=site.document(**changes), headers=site.headers["alice"]
        )
        assert field in assert_problem(response, 422)["detail"], changes

    assert site.deployment.ledger.size() == size
    assert site.client.get("/v1/orders", headers=site.headers["alice"]).get_json()["items"] == []


def test_an_invalid_document_is_one_422_naming_every_field_with_its_reason(site: Site) -> None:
    size = site.deployment.ledger.size()
    document = site.document(
        facts="",
        targets=[{"type": "ip", "value": "not-an-ip", "time": "2026-01-03T10:00:00Z"}],
    )
    del document["link"]
    document["kind"] = "seizure"

    response = site.client.post("/v1/orders", json=document, headers=site.headers["alice"])

    problem = assert_problem(response, 422)
    assert sorted(problem["errors"], key=lambda e: e["field"]) == [
        {"field": "facts", "reason": "required, as non-empty text"},
        {
            "field": "kind",
            "reason": "one of production, preservation, partial_traffic_disclosure, not 'seizure'",
        },
        {"field": "link", "reason": "required"},
        {"field": "targets[0].value", "reason": "'not-an-ip' is not an IP address"},
    ]
    for error in problem["errors"]:
        assert f"{error['field']}: {error['reason']}" in problem["detail"]
    assert site.deployment.ledger.size() == size


def test_an_invalid_patch_names_every_field_it_breaks(site: Site) -> None:
    order_id = site.draft()
    before = site.show(order_id)

    response = site.client.patch(
        f"/v1/orders/{order_id}",
        json={"facts": " ", "issuing_authority": {"type": "sheriff"}},
        headers=site.headers["alice"],
    )

    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["issuing_authority.type", "facts"]
    assert site.show(order_id) == before


def test_a_document_missing_a_required_field_is_422_naming_it(site: Site) -> None:
    document = site.document()
    del document["necessity_and_proportionality"]

    response = site.client.post("/v1/orders", json=document, headers=site.headers["alice"])

    assert "necessity_and_proportionality" in assert_problem(response, 422)["detail"]


def test_a_body_that_is_not_a_json_object_is_400(site: Site) -> None:
    for body in (b"[1, 2]", b"{not json", b'"text"', b""):
        response = site.client.post(
            "/v1/orders", data=body, content_type="application/json", headers=site.headers["alice"]
        )
        assert_problem(response, 400)


def test_a_draft_is_revised_with_a_json_merge_patch(site: Site) -> None:
    order_id = site.draft()
    patch = {"facts": "Revised facts.", "time_range": None, "offence": {"provision": "s. 222"}}

    response = site.client.patch(
        f"/v1/orders/{order_id}",
        data=json.dumps(patch),
        content_type="application/merge-patch+json",
        headers=site.headers["bob"],
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["document"]["facts"] == "Revised facts."
    assert body["document"]["time_range"] is None
    assert body["document"]["offence"] == {
        "description": "ransomware extortion",
        "provision": "s. 222",
    }
    assert body["revised_by"] == [site.actors["bob"].id]
    assert body["ledger_index"] == site.deployment.ledger.size() - 1
    assert site.show(order_id)["document"] == body["document"]
    again = site.client.patch(
        f"/v1/orders/{order_id}", json={"link": "Plain JSON too."}, headers=site.headers["bob"]
    )
    assert again.status_code == 200
    assert again.get_json()["document"]["link"] == "Plain JSON too."
    assert again.get_json()["revised_by"] == [site.actors["bob"].id]


def test_an_invalid_patch_is_422_naming_the_field_and_changes_nothing(site: Site) -> None:
    order_id = site.draft()
    before, size = site.show(order_id), site.deployment.ledger.size()

    response = site.client.patch(
        f"/v1/orders/{order_id}", json={"kind": "seizure"}, headers=site.headers["alice"]
    )

    assert "kind" in assert_problem(response, 422)["detail"]
    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_only_a_draft_is_patched_else_409_with_allowed_actions_and_nothing_changes(
    site: Site,
) -> None:
    order_id = site.draft()
    site.act(order_id, "submit")
    before, size = site.show(order_id), site.deployment.ledger.size()

    response = site.client.patch(
        f"/v1/orders/{order_id}", json={"facts": "Later facts."}, headers=site.headers["alice"]
    )

    # alice is an authority, not an approver: withdrawing is all she may do.
    assert assert_problem(response, 409)["allowed_actions"] == ["withdraw"]
    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


# -- the lifecycle ---------------------------------------------------------------------------


def test_submit_then_approve_serves_the_order_with_its_deadline(site: Site) -> None:
    order_id = site.draft()

    submitted = site.act(order_id, "submit")
    approved = site.act(order_id, "approve", "judge")

    assert submitted["state"] == "pending_approval"
    assert approved["state"] == "served"
    assert approved["approved_by"] == site.actors["judge"].id
    assert approved["ledger_index"] == site.deployment.ledger.size() - 1
    assert (approved["received"], approved["due"]) == (False, None)  # not yet received
    # the judge is an approver
    assert approved["allowed_actions"] == [*SERVED_ALLOWS, "adapt", INFORM]
    assert [e["type"] for e in site.show(order_id)["timeline"]] == [
        "order.drafted",
        "order.submitted",
        "order.served",
    ]


def test_art_10_the_deadline_runs_from_the_providers_receipt(site: Site) -> None:
    """Regulation (EU) 2023/1543 Art 10(2): ten days following receipt. Read on Saturday
    28 November 2026 at noon (the provider keeps UTC, weekends off): due at the end of
    Tuesday 8 December."""
    order_id = site.served()
    site.provider_reads(order_id)
    shown = site.show(order_id)
    assert (shown["received"], shown["received_via"]) == (True, "read")
    assert shown["received_at"] == "2026-11-28T12:00:00.000000Z"
    assert shown["due"] == "2026-12-08T23:59:59.999999Z"
    assert shown["due_local"] == "2026-12-08T23:59:59.999999+00:00"
    assert shown["allowed_actions"] == ["withdraw", INFORM]
    assert [e["type"] for e in shown["timeline"]][-1] == "order.read"


def test_art_10_4_an_emergency_order_is_due_eight_hours_after_receipt(site: Site) -> None:
    order_id = site.served(emergency=EMERGENCY)
    site.clock.advance(3600)
    site.provider_reads(order_id)
    approved = site.show(order_id)

    assert approved["emergency"] is True
    assert approved["due"] == "2026-11-28T21:00:00.000000Z"


def test_the_authority_resends_an_order_not_yet_received(site: Site) -> None:
    order_id = site.served()
    resent = site.act(order_id, "resend")
    assert resent["state"] == "served"
    assert site.show(order_id)["timeline"][-1]["type"] == "order.resent"
    site.provider_reads(order_id)
    refused = site.post(order_id, "resend")
    assert assert_problem(refused, 409)["allowed_actions"] == ["withdraw", INFORM]


def test_approval_by_an_author_or_a_plain_authority_is_403_and_changes_nothing(
    site: Site,
) -> None:
    for drafter, reviser, approver in (
        ("judge", None, "judge"),  # an approver who drafted the order
        ("alice", "judge", "judge"),  # an approver who revised it
        ("alice", None, "bob"),  # an authority, which is not an approver
    ):
        order_id = site.draft(drafter)
        if reviser is not None:
            patched = site.client.patch(
                f"/v1/orders/{order_id}", json={"facts": "More."}, headers=site.headers[reviser]
            )
            assert patched.status_code == 200
        site.act(order_id, "submit", drafter)
        before, size = site.show(order_id), site.deployment.ledger.size()

        response = site.post(order_id, "approve", approver)

        assert_problem(response, 403)
        assert site.deployment.ledger.size() == size
        assert site.show(order_id) == before
        assert site.act(order_id, "approve", "judge2")["state"] == "served"


def test_an_order_is_withdrawn_from_every_open_state_and_then_only_art_13_is_recorded(
    site: Site,
) -> None:
    orders: dict[str, str] = {}
    orders["draft"] = site.draft()
    orders["pending_approval"] = site.draft()
    site.act(orders["pending_approval"], "submit")
    orders["served"] = site.served()
    for state, steps in {
        "acknowledged": [("acknowledge", {})],
        "objected": [("object", {"ground": "incomplete"})],
        "clarification_requested": [("request_clarification", {"question": "Which mailbox?"})],
        "no_data": [("acknowledge", {}), ("no_data", {})],
    }.items():
        orders[state] = site.served()
        for action, data in steps:
            site.provider_acts(orders[state], action, **data)
    orders["preserved"] = site.served("preservation")
    site.provider_acts(orders["preserved"], "acknowledge")
    site.provider_acts(orders["preserved"], "confirm_preservation")
    orders["produced_partial"] = site.served()
    site.provider_acts(orders["produced_partial"], "acknowledge")
    site.respond(orders["produced_partial"])
    orders["produced"] = site.served()
    site.provider_acts(orders["produced"], "acknowledge")
    site.respond(orders["produced"])
    site.provider_acts(orders["produced"], "complete")
    closed = {OrderState.CLOSED, OrderState.WITHDRAWN, OrderState.EXPIRED}
    assert set(orders) == {s.value for s in OrderState} - closed

    for state, order_id in orders.items():
        assert site.show(order_id)["state"] == state
        withdrawn = site.act(order_id, "withdraw", reason=f"no longer needed ({state})")
        assert withdrawn["state"] == "withdrawn"
        # A withdrawn order to produce that was served may still record informing its user.
        after = [] if state in ("draft", "pending_approval", "preserved") else [INFORM]
        assert withdrawn["allowed_actions"] == after
        assert site.show(order_id)["timeline"][-1]["texts"] == {
            "reason": f"no longer needed ({state})"
        }

    order_id = orders["served"]
    before, size = site.show(order_id), site.deployment.ledger.size()
    for path in PATHS:
        body = {"answer": "yes"} if path.startswith("answer") else {}
        if path == "adapt":
            body = {"document": {"facts": "Adapted."}}
        refused = site.post(order_id, path, "judge2", **body)
        assert assert_problem(refused, 409)["allowed_actions"] == [INFORM]
    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_an_action_the_state_does_not_allow_is_409_and_changes_nothing(site: Site) -> None:
    order_id = site.draft()
    before, size = site.show(order_id), site.deployment.ledger.size()

    for path in ("approve", "extend", "close"):
        body = assert_problem(site.post(order_id, path, "judge"), 409)
        assert body["allowed_actions"] == ["submit", "withdraw"]
    body = assert_problem(site.post(order_id, "answer-objection", answer="No."), 409)
    assert body["allowed_actions"] == ["submit", "withdraw"]

    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_a_preservation_hold_is_extended_and_a_production_order_is_not(site: Site) -> None:
    """UN Art 25(2): 90 days from receipt on Saturday 28 November 2026 end on Friday
    26 February 2027; 30 more end on Sunday 28 March, so Monday 29 March; 90 more end on
    Saturday 26 June, so Monday 28 June."""
    preservation = site.served("preservation")
    production = site.served()
    site.provider_reads(preservation)
    before = site.show(preservation)

    extended = site.act(preservation, "extend", days=30)
    again = site.act(preservation, "extend")
    refused = site.post(production, "extend", days=30)

    assert before["due"] == "2027-02-26T23:59:59.999999Z"
    assert extended["due"] == "2027-03-29T23:59:59.999999Z"
    assert again["due"] == "2027-06-28T23:59:59.999999Z"
    assert (again["extensions"], again["hold_until_answered"]) == (2, False)
    assert assert_problem(refused, 409)["allowed_actions"] == [*SERVED_ALLOWS, INFORM]


def test_an_extension_out_of_range_or_mistyped_is_422_and_changes_nothing(site: Site) -> None:
    order_id = site.served("preservation")
    before, size = site.show(order_id), site.deployment.ledger.size()

    for body in ({"days": 0}, {"days": 91}, {"days": "ten"}, {"days": True}, {"weeks": 2}):
        assert_problem(site.post(order_id, "extend", **body), 422)

    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_annex_iii_an_objection_leaves_the_clock_running_and_its_answer_may_set_a_deadline(
    site: Site,
) -> None:
    """Regulation (EU) 2023/1543 Annex III: the notice does not stop the deadline; the
    issuing authority reviews it and may set a new one. The objection is the provider's
    receipt (Saturday 28 November 2026): due at the end of Tuesday 8 December."""
    order_id = site.served()
    site.provider_acts(order_id, "object", ground="insufficient_information")
    site.clock.advance(2 * DAY)
    objected = site.show(order_id)
    assert objected["state"] == "objected"
    assert objected["clock_paused"] is False
    assert objected["due"] == "2026-12-08T23:59:59.999999Z"

    answered = site.act(
        order_id,
        "answer-objection",
        answer="The mailbox is the one named.",
        due="2026-12-18T17:00:00+01:00",
    )

    assert answered["state"] == "served"  # where the objection found it
    assert answered["due"] == "2026-12-18T16:00:00.000000Z"
    entry = site.show(order_id)["timeline"][-1]
    assert entry["type"] == "order.objection_answered"
    assert entry["texts"] == {"answer": "The mailbox is the one named."}
    assert "The mailbox" not in json.dumps(entry["data"])


def test_an_answered_clarification_request_returns_the_order_to_where_it_stood(
    site: Site,
) -> None:
    """Only the act that names a state leads to it: answering a question on an order nobody
    acknowledged leaves it served."""
    order_id = site.served()
    site.provider_acts(order_id, "request_clarification", question="Which time zone?")

    answered = site.act(order_id, "answer-clarification", answer="UTC.")

    assert answered["state"] == "served"
    assert site.show(order_id)["timeline"][-1]["texts"] == {"answer": "UTC."}


def test_an_answer_missing_empty_or_mistyped_is_422_and_changes_nothing(site: Site) -> None:
    order_id = site.served()
    site.provider_acts(order_id, "object", ground="incomplete")
    before, size = site.show(order_id), site.deployment.ledger.size()

    for body in ({}, {"answer": "   "}, {"answer": 7}, {"reply": "no"}, {"answer": "a\x00b"}):
        assert_problem(site.post(order_id, "answer-objection", **body), 422)

    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_an_answered_order_is_closed_with_its_reason(site: Site) -> None:
    order_id = site.served("preservation")
    site.provider_acts(order_id, "acknowledge")
    site.provider_acts(order_id, "confirm_preservation")

    closed = site.act(order_id, "close", reason="Production order issued.")

    assert closed["state"] == "closed"
    assert closed["allowed_actions"] == []
    assert site.show(order_id)["timeline"][-1]["texts"] == {"reason": "Production order issued."}


def test_the_order_shows_its_responses_and_a_failed_notice(tmp_path: Path, sqlite_url: str) -> None:
    for site in build_site(tmp_path, sqlite_url, notification_url="https://isp.example/notices"):
        order_id = site.served()
        site.provider_acts(order_id, "acknowledge")
        evidence_id = site.respond(order_id)
        # No notice worker runs in tests: the delivery is recorded as the worker would after its
        # last retry failed.
        notices = site.deployment.orders.notices
        (queued,) = notices.for_order(order_id)
        notices.record_attempt(
            replace(queued, state="failed", attempts=8, next_attempt_at=None, last_error="refused")
        )

        shown = site.show(order_id)

        assert shown["state"] == "produced_partial"
        assert shown["responses"] == [evidence_id]
        (notice,) = shown["notices"]
        assert notice["event"] == "order.served"
        assert notice["url"] == "https://isp.example/notices"
        assert (notice["state"], notice["attempts"], notice["last_error"]) == (
            "failed",
            8,
            "refused",
        )
        assert [entry["type"] for entry in shown["timeline"]] == [
            "order.drafted",
            "order.submitted",
            "order.served",
            "order.acknowledged",
            "order.responded",
        ]
        assert shown["timeline"][-1]["data"]["evidence"] == evidence_id


# -- listing -----------------------------------------------------------------------------------


def test_orders_are_listed_by_state_provider_and_case_and_overdue_ones_found(
    site_on_each_database: Site,
) -> None:
    site = site_on_each_database
    other = add_provider(site.deployment, "Other Mail")
    draft = site.draft()
    elsewhere = site.draft(provider=other.id, case="CASE-2")
    served = site.served()
    acknowledged = site.served()
    site.provider_acts(acknowledged, "acknowledge")
    preserved = site.served("preservation")
    site.provider_acts(preserved, "acknowledge")
    site.provider_acts(preserved, "confirm_preservation")
    objected = site.served()
    site.provider_acts(objected, "object", ground="data_not_held")
    for order_id in (served, acknowledged, preserved, objected):
        site.provider_reads(order_id)
    never_received = site.served()

    def ids(query: str) -> list[str]:
        response = site.client.get(f"/v1/orders?{query}", headers=site.headers["judge"])
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("") == [draft, elsewhere, served, acknowledged, preserved, objected, never_received]
    assert ids("status=draft") == [draft, elsewhere]
    assert ids(f"provider={other.id}") == [elsewhere]
    assert ids("case=CASE-2") == [elsewhere]
    assert ids(f"status=draft&provider={site.provider_id}&case=CASE-1") == [draft]
    assert ids("overdue=true") == []

    site.clock.advance(11 * DAY)

    # An Annex III notice does not stop the clock; an order never received owes nothing yet.
    assert ids("overdue=true") == [served, acknowledged, objected]
    assert ids("overdue=true&status=acknowledged") == [acknowledged]
    assert ids("overdue=true&status=objected") == [objected]
    listed = site.client.get("/v1/orders?overdue=true", headers=site.headers["alice"])
    assert all(item["overdue"] for item in listed.get_json()["items"])


def test_the_list_pages_through_every_order_once_with_the_cursor(site: Site) -> None:
    drafted = [site.draft() for _ in range(5)]

    seen: list[str] = []
    cursors = []
    query = "/v1/orders?limit=2"
    while True:
        page = site.client.get(query, headers=site.headers["alice"]).get_json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursors.append(page["next_cursor"])
        query = f"/v1/orders?limit=2&cursor={page['next_cursor']}"

    assert seen == drafted
    assert len(cursors) == 2


def test_a_bad_list_query_is_400(site: Site) -> None:
    for query in (
        "status=lost",
        "limit=0",
        "limit=501",
        "cursor=%%%",
        "cursor=YWJj",
        "overdue=maybe",
    ):
        response = site.client.get(f"/v1/orders?{query}", headers=site.headers["alice"])
        assert_problem(response, 400)


# -- the issued document -------------------------------------------------------------------------


def test_the_document_is_the_signed_order_note_from_approval_on(site: Site) -> None:
    order_id = site.draft()
    path = f"/v1/orders/{order_id}/document"
    assert_problem(site.client.get(path, headers=site.headers["alice"]), 404)
    site.act(order_id, "submit")
    assert_problem(site.client.get(path, headers=site.headers["alice"]), 404)
    site.act(order_id, "approve", "judge")

    response = site.client.get(path, headers=site.headers["alice"])

    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    note = open_note(response.get_data(), site.deployment.keys.verifiers)
    kind, _, body = note.text.partition("\n")
    issued = json.loads(body)
    assert kind == ORDER_TYPE
    assert issued["id"] == order_id
    assert issued["drafted_by"] == site.actors["alice"].id
    assert issued["approved_by"] == site.actors["judge"].id
    assert issued["facts"] == site.document()["facts"]


class PageReader(HTMLParser):
    """The text of a page, its tags and every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.references += [f"{n}={v}" for n, v in attrs if n in ("src", "href", "action")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_printable_page_shows_every_field_escaped_and_the_signature(site: Site) -> None:
    facts = 'The note said <script>alert("x")</script> & more.'
    order_id = site.served(
        "preservation",
        facts=facts,
        emergency=EMERGENCY,
        confidentiality={"no_user_notice": True, "until": "2027-01-01T00:00:00Z"},
        validating_authority={
            "name": "Public Prosecutor <Lisbon>",
            "type": "prosecutor",
            "file_number": "77/26",
            "contact": "pp@example.org",
        },
        preservation_days=60,
        linked_order="ord_1111111111111111",
        language="pt-PT",
    )

    response = site.client.get(
        f"/v1/orders/{order_id}/document?format=html", headers=site.headers["alice"]
    )

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more." in html
    assert '<html lang="pt-PT">' in html
    page = PageReader()
    page.feed(html)
    text = " ".join(page.text)
    assert page.tags.isdisjoint({"script", "img", "link", "iframe", "object"})
    assert page.references == []
    assert facts in text
    key = site.deployment.keys.current.signer
    view = site.show(order_id)
    for expected in (
        order_id,
        "Legal basis",
        "UN Convention against Cybercrime, Article 25",
        "Issuing authority",
        "Investigating judge, Lisbon",
        "Validating authority",
        "Public Prosecutor <Lisbon>",
        "Offence",
        "ransomware extortion",
        "Link between the data and the offence",
        "Necessity and proportionality",
        "E-mail address",
        "suspect@example.com",
        "203.0.113.7",
        "51234",
        "Subscriber data",
        "2026-01-01T00:00:00.000000Z",
        "Imminent threat to the life of a person",
        EMERGENCY["justification"],
        "Must not be given",
        "60 days from receipt",
        "ord_1111111111111111",
        "pt-PT",
        site.actors["alice"].id,
        site.actors["judge"].id,
        view["served_at"],
        "Not yet received by the provider",
        key.name,
        key.key_hash.hex(),
    ):
        assert expected in text, expected


def test_every_value_the_domain_names_has_a_label_on_the_page() -> None:
    assert set(order_page.KIND_LABELS) == set(KINDS)
    assert set(order_page.INSTRUMENT_LABELS) == set(LEGAL_BASES)
    assert set(order_page.AUTHORITY_TYPE_LABELS) == set(AUTHORITY_TYPES)
    assert set(order_page.TARGET_TYPE_LABELS) == set(TARGET_TYPES)
    assert set(order_page.DATA_CATEGORY_LABELS) == set(DATA_CATEGORIES)
    assert set(order_page.EMERGENCY_CATEGORY_LABELS) == set(EMERGENCY_CATEGORIES)


def test_an_unknown_document_format_is_400(site: Site) -> None:
    order_id = site.served()

    response = site.client.get(
        f"/v1/orders/{order_id}/document?format=pdf", headers=site.headers["alice"]
    )

    assert_problem(response, 400)


# -- unknown orders and roles ----------------------------------------------------------------------


def test_an_unknown_order_is_404_everywhere(site: Site) -> None:
    headers = site.headers["judge"]
    size = site.deployment.ledger.size()

    for order_id in (MISSING, "ord_nothex", "ev_0000000000000000"):
        assert_problem(site.client.get(f"/v1/orders/{order_id}", headers=headers), 404)
        assert_problem(site.client.get(f"/v1/orders/{order_id}/document", headers=headers), 404)
        patch = {"facts": "x"}
        patched = site.client.patch(f"/v1/orders/{order_id}", json=patch, headers=headers)
        assert_problem(patched, 404)
        for path in PATHS:
            body = {"answer": "yes"} if path.startswith("answer") else {}
            if path == "adapt":
                body = {"document": {"facts": "Adapted."}}
            assert_problem(site.post(order_id, path, "judge", **body), 404)

    assert site.deployment.ledger.size() == size


def test_roles_other_than_authority_and_approver_get_403_and_change_nothing(site: Site) -> None:
    order_id = site.draft()
    before, size = site.show(order_id), site.deployment.ledger.size()

    for who in ("operator", "eve", "clerk", "isp"):
        headers = site.headers[who]
        posted = site.client.post("/v1/orders", json=site.document(), headers=headers)
        assert_problem(posted, 403)
        assert_problem(site.client.get("/v1/orders", headers=headers), 403)
        assert_problem(site.client.get(f"/v1/orders/{order_id}", headers=headers), 403)
        document = site.client.get(f"/v1/orders/{order_id}/document", headers=headers)
        assert_problem(document, 403)
        patch = {"facts": "x"}
        patched = site.client.patch(f"/v1/orders/{order_id}", json=patch, headers=headers)
        assert_problem(patched, 403)
        for path in PATHS:
            assert_problem(site.post(order_id, path, who), 403)

    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_the_order_api_needs_a_token(site: Site) -> None:
    order_id = site.draft()

    assert_problem(site.client.get("/v1/orders"), 401)
    assert_problem(site.client.get(f"/v1/orders/{order_id}"), 401)
    assert_problem(site.client.post(f"/v1/orders/{order_id}/submit"), 401)


def test_the_printable_page_shows_bidi_controls_in_the_order_as_escapes(site: Site) -> None:
    facts = "Account \u202etxt.exe\u202c named in the complaint."
    order_id = site.served("preservation", facts=facts, preservation_days=60)

    html = site.client.get(
        f"/v1/orders/{order_id}/document?format=html", headers=site.headers["alice"]
    ).get_data(as_text=True)

    assert "\u202e" not in html and "\u202c" not in html
    assert "Account \\u202etxt.exe\\u202c named in the complaint." in html


# -- transitions the instruments allow -------------------------------------------------------


def provider_post(site: Site, order_id: str, path: str, **body: Any) -> TestResponse:
    return site.client.post(
        f"/v1/provider/orders/{order_id}/{path}", json=body or None, headers=site.headers["isp"]
    )


def test_an_adapted_order_is_a_new_signed_revision_whose_deadline_runs_from_its_receipt(
    site: Site,
) -> None:
    """The issuing authority adapts a served order: a new signed note superseding the old
    one, served anew; its deadline runs from the provider's receipt of the revision."""
    order_id = site.served()
    site.provider_reads(order_id)
    old_note = site.client.get(f"/v1/orders/{order_id}/document", headers=site.headers["alice"])
    site.clock.advance(2 * DAY)

    adapted = site.act(order_id, "adapt", "judge", document={"facts": "Narrowed to one day."})

    assert (adapted["state"], adapted["revision"]) == ("served", 2)
    assert (adapted["received"], adapted["due"]) == (False, None)
    assert adapted["document"]["facts"] == "Narrowed to one day."
    new_note = site.client.get(f"/v1/orders/{order_id}/document", headers=site.headers["alice"])
    assert new_note.get_data() != old_note.get_data()
    issued = json.loads(new_note.get_data(as_text=True).split("\n")[1])
    assert (issued["revision"], issued["facts"]) == (2, "Narrowed to one day.")
    last = site.show(order_id)["timeline"][-1]
    assert (last["type"], last["data"]["revision"]) == ("order.adapted", 2)
    site.provider_reads(order_id)  # Monday 30 November: due at the end of Thursday 10 December
    assert site.show(order_id)["due"] == "2026-12-10T23:59:59.999999Z"


def test_an_adapted_preservation_order_keeps_its_hold(site: Site) -> None:
    order_id = site.served("preservation")
    site.provider_acts(order_id, "confirm_preservation")
    before = site.show(order_id)

    adapted = site.act(order_id, "adapt", "judge", document={"facts": "One more account."})

    assert (adapted["state"], adapted["due"]) == ("preserved", before["due"])
    assert adapted["revision"] == 2


def test_an_adaptation_keeps_the_kind_provider_and_case_and_is_the_approvers(
    site: Site,
) -> None:
    order_id = site.served()
    size = site.deployment.ledger.size()

    assert_problem(site.post(order_id, "adapt", "alice", document={"facts": "x"}), 403)
    for change in ({"kind": "preservation"}, {"case": "CASE-9"}, {"targets": []}):
        assert_problem(site.post(order_id, "adapt", "judge", document=change), 422)
    assert site.deployment.ledger.size() == size


def test_no_data_is_answered_before_acknowledging(site: Site) -> None:
    order_id = site.served()

    answered = provider_post(site, order_id, "no-data")

    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["state"] == "no_data"
    assert answered.get_json()["received_via"] == "act"


def test_annex_iii_follows_a_partial_delivery_and_its_answer_returns_there(site: Site) -> None:
    """Regulation (EU) 2023/1543 Annex III: the provider may tell the authority it cannot
    deliver the rest after delivering part."""
    order_id = site.served()
    site.provider_acts(order_id, "acknowledge")
    site.respond(order_id)

    objected = provider_post(site, order_id, "object", ground="de_facto_impossible")
    assert objected.status_code == 200, objected.get_json()
    assert objected.get_json()["state"] == "objected"
    answered = site.act(order_id, "answer-objection", answer="Deliver what remains.")
    assert answered["state"] == "produced_partial"


def test_annex_iii_follows_preservation_when_the_data_was_lost_since(site: Site) -> None:
    order_id = site.served("preservation")
    site.provider_acts(order_id, "confirm_preservation")

    objected = provider_post(site, order_id, "object", ground="data_not_stored")

    assert objected.status_code == 200, objected.get_json()
    assert site.act(order_id, "answer-objection", answer="Noted.")["state"] == "preserved"


def test_still_forbidden_transitions_are_409_with_what_the_caller_may_do(site: Site) -> None:
    order_id = site.served()
    size = site.deployment.ledger.size()

    refused = assert_problem(provider_post(site, order_id, "complete"), 409)
    assert refused["allowed_actions"] == [
        "acknowledge",
        "object",
        "request_clarification",
        "no_data",
    ]
    refused = assert_problem(site.post(order_id, "seek-enforcement", reason="Art 16"), 409)
    assert refused["allowed_actions"] == ["withdraw", "resend", INFORM]
    assert "not overdue" in refused["detail"]
    refused = assert_problem(site.post(order_id, "close"), 409)
    assert refused["allowed_actions"] == ["withdraw", "resend", INFORM]
    assert site.deployment.ledger.size() == size


def test_art_16_enforcement_is_recorded_on_an_overdue_order_that_stays_open(site: Site) -> None:
    order_id = site.served()
    site.provider_reads(order_id)  # Saturday 28 November: due at the end of Tuesday 8 December
    site.clock.advance(11 * DAY)

    sought = site.act(order_id, "seek-enforcement", reason="Art 16 procedure opened.")

    assert (sought["state"], sought["overdue"]) == ("served", True)
    assert sought["enforcement_sought_at"] == "2026-12-09T12:00:00.000000Z"
    assert site.show(order_id)["timeline"][-1]["texts"] == {"reason": "Art 16 procedure opened."}
    late = provider_post(site, order_id, "acknowledge")
    assert late.status_code == 200 and late.get_json()["state"] == "acknowledged"


# -- the law's parties over HTTP: validator (Art 4), enforcing State (Arts 8-12), user (Art 13) ---


def add_validator(site: Site) -> dict[str, str]:
    operator = site.deployment.principals.get("operator").actor
    _, token = site.deployment.principals.add("magistrate", "validator", operator)
    for case in ("CASE-1", "CASE-2", "CASE-7", "CASE-9", "CASE-42"):
        in_case(site.deployment, case, "magistrate")
    return bearer(token)


def test_art_4_an_order_from_the_police_is_approved_only_after_a_validator_validates_it(
    site: Site,
) -> None:
    from tests.custody.test_order_parties import EU_EPOC, POLICE, PROSECUTOR

    validator = add_validator(site)
    order_id = site.draft(**EU_EPOC, issuing_authority=POLICE, validating_authority=PROSECUTOR)
    site.act(order_id, "submit")
    refused = assert_problem(site.post(order_id, "approve", "judge"), 409)
    # The approver may send it back to draft, or withdraw it, but not approve it yet.
    assert refused["allowed_actions"] == ["send_back", "withdraw"]
    assert "Art 4" in refused["detail"]
    assert_problem(site.post(order_id, "validate", "judge"), 403)
    response = site.client.post(f"/v1/orders/{order_id}/validate", headers=validator)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["validated_by"] is not None
    assert response.get_json()["allowed_actions"] == []
    assert site.act(order_id, "approve", "judge")["state"] == "served"


def test_art_10_3_the_issuing_authority_gets_no_response_while_it_is_withheld(
    site: Site,
) -> None:
    from tests.custody.test_order_enforcing import EU_TRAFFIC

    order_id = site.served(**EU_TRAFFIC)
    site.provider_reads(order_id)
    site.provider_acts(order_id, "acknowledge")
    evidence_id = site.respond(order_id)
    shown = site.show(order_id)
    assert shown["responses_withheld"] is True and shown["responses"] == []
    responded = [e for e in shown["timeline"] if e["type"] == "order.responded"]
    assert [e["data"]["evidence"] for e in responded] == [None]
    assert [n["addressee"] for n in shown["notices"]] == ["enforcing_authority"]
    content = site.client.get(
        f"/v1/evidence/{evidence_id}/content?purpose=review", headers=site.headers["eve"]
    )
    assert "Art 10(3)" in assert_problem(content, 409)["detail"]

    answered = site.act(order_id, "record-enforcing-answer", answer="no_ground")
    assert answered["responses_withheld"] is False
    assert answered["enforcing_review"]["answer"] == "no_ground"
    assert site.show(order_id)["responses"] == [evidence_id]
    content = site.client.get(
        f"/v1/evidence/{evidence_id}/content?purpose=review", headers=site.headers["eve"]
    )
    assert content.status_code == 200 and content.data == b"subscriber records"


def test_art_12_the_enforcing_answer_and_the_deletion_are_checked_and_refused_over_http(
    site: Site,
) -> None:
    from tests.custody.test_order_enforcing import EU_TRAFFIC

    order_id = site.served(**EU_TRAFFIC)
    body = assert_problem(site.post(order_id, "record-enforcing-answer", answer="ground"), 422)
    assert "ground" in body["detail"]
    assert_problem(site.post(order_id, "record-enforcing-answer", answer="perhaps"), 422)
    refused = assert_problem(site.post(order_id, "restrict-data", measure="deleted"), 409)
    assert "Art 10(4)" in refused["detail"]
    assert refused["allowed_actions"] == [
        "withdraw",
        "resend",
        "record_enforcing_answer",
        "record_user_information",
    ]

    exempt = site.served(**EU_TRAFFIC, offence_state="PT", residence_state="PT")
    refused = assert_problem(site.post(exempt, "record-enforcing-answer", answer="no_ground"), 409)
    assert (
        "Art 8" in refused["detail"] and "record_enforcing_answer" not in refused["allowed_actions"]
    )


def test_art_13_the_authority_records_whether_the_user_was_informed(site: Site) -> None:
    order_id = site.served()
    assert_problem(site.post(order_id, "record-user-information", informed=True), 422)
    acted = site.act(
        order_id, "record-user-information", informed=False, details="It would warn them."
    )
    assert acted["state"] == "served"
    last = site.show(order_id)["timeline"][-1]
    assert (last["type"], last["data"]["informed"]) == ("order.user_informed", False)
    assert last["texts"] == {"details": "It would warn them."}


def test_an_approver_sends_an_order_back_to_draft_with_its_reason(site: Site) -> None:
    order_id = site.draft(who="judge")
    site.act(order_id, "submit", "judge")

    own = site.post(order_id, "send-back", "judge", reason="I wrote it.")
    without = site.post(order_id, "send-back", "judge2")
    sent = site.act(order_id, "send-back", "judge2", reason="Name the account's creation date.")

    assert_problem(own, 403)
    assert_problem(without, 422)
    assert sent["state"] == "draft" and "submit" in sent["allowed_actions"]
    last = site.show(order_id)["timeline"][-1]
    assert last["type"] == "order.sent_back"
    assert last["texts"] == {"reason": "Name the account's creation date."}
