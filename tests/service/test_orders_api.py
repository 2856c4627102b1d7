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
from datetime import datetime, timedelta
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
from tests.factories import EMERGENCY, order_document

DAY = 24 * 3600
MISSING = "ord_0000000000000000"
# What a served production order allows, whoever may act: the authority withdraws it, the
# provider acknowledges, objects or asks.
SERVED_ALLOWS = ["withdraw", "acknowledge", "object", "request_clarification"]
PATHS = (
    "submit",
    "approve",
    "withdraw",
    "extend",
    "answer-objection",
    "answer-clarification",
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

    assert assert_problem(response, 409)["allowed_actions"] == ["approve", "withdraw"]
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
    assert parse_time(approved["due"]) - parse_time(approved["served_at"]) == timedelta(days=10)
    assert approved["allowed_actions"] == SERVED_ALLOWS
    assert [e["type"] for e in site.show(order_id)["timeline"]] == [
        "order.drafted",
        "order.submitted",
        "order.served",
    ]


def test_an_emergency_order_is_due_eight_hours_after_service(site: Site) -> None:
    approved = site.show(site.served(emergency=EMERGENCY))

    assert approved["emergency"] is True
    assert parse_time(approved["due"]) - parse_time(approved["served_at"]) == timedelta(hours=8)


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


def test_an_order_is_withdrawn_from_every_open_state_and_then_nothing_is_allowed(
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
        assert withdrawn["allowed_actions"] == []
        assert site.show(order_id)["timeline"][-1]["texts"] == {
            "reason": f"no longer needed ({state})"
        }

    order_id = orders["served"]
    before, size = site.show(order_id), site.deployment.ledger.size()
    for path in PATHS:
        body = {"answer": "yes"} if path.startswith("answer") else {}
        refused = site.post(order_id, path, "judge2", **body)
        assert assert_problem(refused, 409)["allowed_actions"] == []
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
    preservation = site.served("preservation")
    production = site.served()
    before = site.show(preservation)

    extended = site.act(preservation, "extend", days=30)
    again = site.act(preservation, "extend")
    refused = site.post(production, "extend", days=30)

    assert parse_time(extended["due"]) - parse_time(before["due"]) == timedelta(days=30)
    assert parse_time(again["due"]) - parse_time(extended["due"]) == timedelta(days=90)
    assert assert_problem(refused, 409)["allowed_actions"] == SERVED_ALLOWS


def test_an_extension_out_of_range_or_mistyped_is_422_and_changes_nothing(site: Site) -> None:
    order_id = site.served("preservation")
    before, size = site.show(order_id), site.deployment.ledger.size()

    for body in ({"days": 0}, {"days": 91}, {"days": "ten"}, {"days": True}, {"weeks": 2}):
        assert_problem(site.post(order_id, "extend", **body), 422)

    assert site.deployment.ledger.size() == size
    assert site.show(order_id) == before


def test_an_answered_objection_restarts_the_clock_and_keeps_the_answer(site: Site) -> None:
    order_id = site.served()
    site.provider_acts(order_id, "object", ground="insufficient_information")
    site.clock.advance(2 * DAY)
    objected = site.show(order_id)
    assert objected["state"] == "objected"
    assert objected["clock_paused"] is True and objected["due"] is None

    answered = site.act(order_id, "answer-objection", answer="The mailbox is the one named.")

    assert answered["state"] == "acknowledged"
    assert answered["clock_paused"] is False
    served_at = parse_time(answered["served_at"])
    assert parse_time(answered["due"]) - served_at == timedelta(days=12)
    entry = site.show(order_id)["timeline"][-1]
    assert entry["type"] == "order.objection_answered"
    assert entry["texts"] == {"answer": "The mailbox is the one named."}
    assert "The mailbox" not in json.dumps(entry["data"])


def test_an_answered_clarification_request_leads_on_to_acknowledged(site: Site) -> None:
    order_id = site.served()
    site.provider_acts(order_id, "request_clarification", question="Which time zone?")

    answered = site.act(order_id, "answer-clarification", answer="UTC.")

    assert answered["state"] == "acknowledged"
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
        # No notifier runs in tests: the delivery is recorded as the notifier would after its
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

    def ids(query: str) -> list[str]:
        response = site.client.get(f"/v1/orders?{query}", headers=site.headers["judge"])
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("") == [draft, elsewhere, served, acknowledged, preserved, objected]
    assert ids("status=draft") == [draft, elsewhere]
    assert ids(f"provider={other.id}") == [elsewhere]
    assert ids("case=CASE-2") == [elsewhere]
    assert ids(f"status=draft&provider={site.provider_id}&case=CASE-1") == [draft]
    assert ids("overdue=true") == []

    site.clock.advance(11 * DAY)

    assert ids("overdue=true") == [served, acknowledged]
    assert ids("overdue=true&status=acknowledged") == [acknowledged]
    assert ids("overdue=true&status=objected") == []
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
        "60 days from service",
        "ord_1111111111111111",
        "pt-PT",
        site.actors["alice"].id,
        site.actors["judge"].id,
        view["served_at"],
        view["due"],
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
