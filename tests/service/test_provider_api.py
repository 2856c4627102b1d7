"""Tests of the provider API: a provider sees and answers only the orders served on it, and
its responses come in as evidence, with a receipt, exactly as an upload to intake does."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from marshmallow import Schema
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from custody.events import Actor
from custody.note import open_note
from custody.note_types import ORDER_TYPE
from custody.order_document import PRESERVATION, PRODUCTION
from custody.verify.receipt import verify_receipt
from service import create_app, order_page
from service.evidence import IngestedSchema, UploadSessionSchema
from service.orders import OrderActedSchema, OrderPageSchema
from service.pages.display import local_time
from service.provider_api import ProviderOrderDetailSchema
from storage.deployment import Deployment
from storage.sql.schema import upload_sessions
from tests.conftest import Home, add_provider, bearer
from tests.factories import in_case, order_document

CONTENT = b"subscriber,registered\nsuspect@example.com,2024-05-01\n" * 200
UNKNOWN_ORDER = "ord_0000000000000000"
UNKNOWN_EVIDENCE = "ev_0000000000000000"


@dataclass
class Site:
    """A deployment with an authority, an approver, and two providers with a principal each."""

    deployment: Deployment
    client: FlaskClient
    authority: Actor
    approver: Actor
    own: str
    other: str
    tokens: dict[str, str]

    def headers(self, who: str = "own") -> dict[str, str]:
        return bearer(self.tokens[who])

    def order(
        self, provider: str | None = None, kind: str = PRODUCTION, until: str = "served"
    ) -> str:
        """A new order for ``provider`` (the caller's own by default), served unless ``until``
        stops it as a draft or pending approval."""
        desk = self.deployment.orders
        document = order_document(provider or self.own, kind)
        order_id = desk.draft(document, self.authority).stored.id
        if until != "draft":
            desk.act(order_id, "submit", {}, self.authority)
            if until != "pending_approval":
                desk.act(order_id, "approve", {}, self.approver)
        return order_id

    def post(
        self, order_id: str, action: str, body: dict[str, Any] | None = None, who: str = "own"
    ) -> TestResponse:
        return self.client.post(
            f"/v1/provider/orders/{order_id}/{action}", json=body or {}, headers=self.headers(who)
        )

    def acknowledged(self, provider: str | None = None, kind: str = PRODUCTION) -> str:
        """A new order, read and acknowledged by its provider."""
        order_id = self.order(provider, kind)
        who = "other" if provider == self.other else "own"
        self.show(order_id, who)
        assert self.post(order_id, "acknowledge", who=who).status_code == 200
        return order_id

    def open_response(self, order_id: str, who: str = "own") -> str:
        response = self.post(order_id, "responses", {"description": "subscriber records"}, who)
        assert response.status_code == 201, response.get_json()
        upload: str = response.get_json()["upload"]
        return upload

    def show(self, order_id: str, who: str = "own") -> dict[str, Any]:
        response = self.client.get(f"/v1/provider/orders/{order_id}", headers=self.headers(who))
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body


def build_site(home: Home) -> Site:
    deployment = home.deployment
    principals = deployment.principals
    operator = principals.get("operator").actor
    own, other = add_provider(deployment, "Own ISP"), add_provider(deployment, "Other ISP")
    added = {
        "authority": principals.add("prosecutor", "authority", operator),
        "approver": principals.add("judge", "approver", operator),
        "examiner": principals.add("alice", "examiner", operator),
        "own": principals.add("own-isp", "provider", operator, provider_id=own.id),
        "other": principals.add("other-isp", "provider", operator, provider_id=other.id),
    }
    # The orders' case (and so the responses'), with the authority's people in it.
    in_case(deployment, "CASE-1", "prosecutor", "judge", "alice")
    app = create_app({"TESTING": True}, deployment=deployment)
    return Site(
        deployment=deployment,
        client=app.test_client(),
        authority=added["authority"][0].actor,
        approver=added["approver"][0].actor,
        own=own.id,
        other=other.id,
        tokens={who: token for who, (_, token) in added.items()},
    )


@pytest.fixture
def site(home: Home) -> Site:
    return build_site(home)


@pytest.fixture
def site_on_each_database(home_on_each_database: Home) -> Iterator[Site]:
    yield build_site(home_on_each_database)


def repr_digest(content: bytes) -> dict[str, str]:
    return {
        "Repr-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(content).digest()).decode()}:"
    }


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["detail"]
    return body


def assert_documented(schema: type[Schema], body: dict[str, Any]) -> None:
    """The body is what the OpenAPI document says: the schema it names loads it as is."""
    assert schema().validate(body) == {}


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must leave as it was."""

    ledger_size: int
    records: tuple[str, ...]
    sessions: int


def snapshot(deployment: Deployment) -> Snapshot:
    records = tuple(r.id for r in deployment.evidence.list(None, None, 1000, None))
    with deployment.evidence.engine.connect() as connection:
        sessions = connection.execute(select(func.count()).select_from(upload_sessions))
        return Snapshot(deployment.ledger.size(), records, sessions.scalar_one())


def list_all(site: Site, who: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit}
    while True:
        response = site.client.get(
            "/v1/provider/orders", query_string=query, headers=site.headers(who)
        )
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["items"]) <= limit
        assert_documented(OrderPageSchema, page)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


# -- reading -----------------------------------------------------------------------------------


def test_the_list_shows_only_the_callers_own_served_orders(site: Site) -> None:
    mine = [site.order() for _ in range(3)]
    site.order(until="draft")
    site.order(until="pending_approval")
    theirs = site.order(site.other)
    size = site.deployment.ledger.size()

    listed = list_all(site, "own", limit=2)

    assert [o["id"] for o in listed] == mine
    assert {o["state"] for o in listed} == {"served"}
    # Listing is not receipt: until the provider reads an order, no period runs.
    assert all(o["provider"] == site.own and not o["received"] for o in listed)
    assert all(o["due"] is None for o in listed)
    assert [o["id"] for o in list_all(site, "other", limit=50)] == [theirs]
    # Listing is not reading an order: no order.read, and no document (targets) to read.
    assert site.deployment.ledger.size() == size
    assert not any("document" in o for o in listed)


def test_a_malformed_list_query_is_400(site: Site) -> None:
    for query in (
        {"cursor": "not base64!"},
        {"cursor": base64.urlsafe_b64encode(b"-1").decode()},
        {"cursor": base64.urlsafe_b64encode(b"9" * 30).decode()},
        {"limit": 0},
        {"limit": "many"},
    ):
        response = site.client.get(
            "/v1/provider/orders", query_string=query, headers=site.headers()
        )

        assert_problem(response, 400)


def test_the_first_read_is_recorded_once_and_is_the_receipt_that_starts_the_clock(
    site: Site,
) -> None:
    """Regulation (EU) 2023/1543 Art 10(2): the period runs from receipt; with no notice
    delivered before, the provider's first read is its receipt."""
    order_id = site.order()
    size = site.deployment.ledger.size()

    first = site.show(order_id)
    again = site.show(order_id)
    document = site.client.get(f"/v1/provider/orders/{order_id}/document", headers=site.headers())

    assert document.status_code == 200
    assert site.deployment.ledger.size() == size + 1
    assert first["first_read_at"] is not None and again["first_read_at"] == first["first_read_at"]
    assert again["due"] == first["due"] and first["state"] == "served"
    assert first["received_via"] == "read" and first["due"] is not None
    # The provider sees the order from its service on, not how it was drafted.
    assert [e["type"] for e in again["timeline"]] == ["order.served", "order.read"]
    assert again["timeline"][1]["index"] == size


def test_the_document_is_the_signed_order_note_and_reading_it_is_the_first_read(
    site: Site,
) -> None:
    order_id = site.order()
    size = site.deployment.ledger.size()

    response = site.client.get(f"/v1/provider/orders/{order_id}/document", headers=site.headers())

    assert response.status_code == 200 and response.mimetype == "text/plain"
    note = open_note(response.get_data(), [site.deployment.keys.current.signer.verifier])
    assert note.text.startswith(ORDER_TYPE + "\n")
    issued = json.loads(note.text.split("\n", 1)[1])
    assert issued["id"] == order_id and issued["approved_by"] == site.approver.id
    assert site.deployment.ledger.size() == size + 1
    assert [e["type"] for e in site.show(order_id)["timeline"]] == ["order.served", "order.read"]


def test_the_document_as_html_is_a_printable_page_of_the_signed_order(site: Site) -> None:
    order_id = site.order()
    view = site.show(order_id)

    response = site.client.get(
        f"/v1/provider/orders/{order_id}/document",
        query_string={"format": "html"},
        headers=site.headers(),
    )

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "PO-2026-0017" in page and "suspect@example.com" in page
    # The deadline as people read it: to the minute (the provider's zone is UTC here).
    assert f"<dd>{local_time(view['due'])}</dd>" in page
    assert_problem(
        site.client.get(
            f"/v1/provider/orders/{order_id}/document",
            query_string={"format": "pdf"},
            headers=site.headers(),
        ),
        400,
    )


def test_the_printable_deadline_is_in_utc_and_the_provider_s_zone_to_the_minute() -> None:
    view = {
        "due": "2026-12-17T23:59:59.999999+00:00",
        "due_local": "2026-12-18T00:59:59.999999+01:00",
        "time_zone": "Europe/Berlin",
    }

    assert order_page._deadline({"kind": "production"}, view) == (
        "Answer due by",
        "17 Dec 2026, 23:59 UTC (18 Dec 2026, 00:59 CET, Europe/Berlin)",
    )
    assert order_page._deadline({"kind": "preservation"}, {**view, "time_zone": "UTC"}) == (
        "Preserve until",
        "17 Dec 2026, 23:59 UTC",
    )


# -- who may reach an order ----------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/provider/orders/{id}", None),
    ("GET", "/v1/provider/orders/{id}/document", None),
    ("GET", "/v1/provider/orders/{id}/document?format=html", None),
    ("POST", "/v1/provider/orders/{id}/acknowledge", {}),
    ("POST", "/v1/provider/orders/{id}/object", {"ground": "data_not_held"}),
    ("POST", "/v1/provider/orders/{id}/request-clarification", {"question": "Which account?"}),
    ("POST", "/v1/provider/orders/{id}/confirm-preservation", {}),
    ("POST", "/v1/provider/orders/{id}/no-data", {}),
    ("POST", "/v1/provider/orders/{id}/complete", {}),
    ("POST", "/v1/provider/orders/{id}/responses", {"description": "subscriber records"}),
    ("PUT", "/v1/provider/orders/{id}/responses/{ev}/content", CONTENT),
]


def call(
    site: Site, method: str, template: str, body: Any, who: str, **values: str
) -> TestResponse:
    kwargs: dict[str, Any] = {"headers": site.headers(who)}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    return site.client.open(template.format(**values), method=method, **kwargs)


def unreachable_order(site: Site, which: str) -> tuple[str, str]:
    """An order the own provider may not know of, and an upload session id to go with it."""
    if which == "another provider's":
        order_id = site.acknowledged(site.other)
        return order_id, site.open_response(order_id, who="other").split("/")[-2]
    if which == "unknown":
        return UNKNOWN_ORDER, UNKNOWN_EVIDENCE
    if which == "malformed":
        return "nonsense", UNKNOWN_EVIDENCE
    return site.order(until=which), UNKNOWN_EVIDENCE


def test_an_order_the_provider_may_not_know_of_is_404_on_every_endpoint(site: Site) -> None:
    unreachable = {
        which: unreachable_order(site, which)
        for which in ("another provider's", "draft", "pending_approval", "unknown", "malformed")
    }
    stored = {which: site.deployment.orders.store.get(o) for which, (o, _) in unreachable.items()}
    before = snapshot(site.deployment)

    for which, (order_id, evidence_id) in unreachable.items():
        for method, template, body in ENDPOINTS:
            response = call(site, method, template, body, "own", id=order_id, ev=evidence_id)

            assert response.status_code == 404, (which, template)
            assert "allowed_actions" not in assert_problem(response, 404)

    assert snapshot(site.deployment) == before
    for which, (order_id, _) in unreachable.items():
        assert site.deployment.orders.store.get(order_id) == stored[which]


# Requests each route refuses (400 or 422) on an order of the provider's own.
BAD_REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/provider/orders/{id}/document?format=pdf", None),
    ("POST", "/v1/provider/orders/{id}/object", {"ground": "not a ground"}),
    ("POST", "/v1/provider/orders/{id}/request-clarification", {"question": ""}),
    ("POST", "/v1/provider/orders/{id}/responses", {"description": "x", "unknown": 1}),
]


def test_another_provider_s_order_is_404_whatever_the_request_carries(site: Site) -> None:
    own, foreign = site.acknowledged(), site.acknowledged(site.other)
    before = snapshot(site.deployment)

    refused = [call(site, m, t, body, "own", id=own).status_code for m, t, body in BAD_REQUESTS]
    hidden = [call(site, m, t, body, "own", id=foreign) for m, t, body in BAD_REQUESTS]

    assert all(status in (400, 422) for status in refused), refused
    assert [response.status_code for response in hidden] == [404] * len(BAD_REQUESTS)
    assert snapshot(site.deployment) == before


def test_other_roles_are_403_even_on_an_order_they_may_read_elsewhere(site: Site) -> None:
    order_id = site.acknowledged()
    upload = site.open_response(order_id)
    before = snapshot(site.deployment)

    for role in ("examiner", "authority", "approver"):
        list_response = site.client.get("/v1/provider/orders", headers=site.headers(role))
        assert_problem(list_response, 403)
        for method, template, body in ENDPOINTS:
            ev = upload.split("/")[-2]
            response = call(site, method, template, body, role, id=order_id, ev=ev)
            assert response.status_code == 403, (role, template)

    assert snapshot(site.deployment) == before


def test_every_endpoint_needs_a_token(site: Site) -> None:
    order_id = site.order()

    assert_problem(site.client.get("/v1/provider/orders"), 401)
    for method, template, _ in ENDPOINTS:
        response = site.client.open(
            template.format(id=order_id, ev=UNKNOWN_EVIDENCE), method=method
        )
        assert_problem(response, 401)


# -- answering an order ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "before", "action", "body", "state", "event"),
    [
        (PRODUCTION, [], "acknowledge", {}, "acknowledged", "order.acknowledged"),
        (PRODUCTION, [], "object", {"ground": "data_not_stored"}, "objected", "order.objected"),
        (
            PRODUCTION,
            ["acknowledge"],
            "request-clarification",
            {"question": "Which of the two mailboxes?"},
            "clarification_requested",
            "order.clarification_requested",
        ),
        (PRESERVATION, ["acknowledge"], "confirm-preservation", {}, "preserved", "order.preserved"),
        (PRODUCTION, ["acknowledge"], "no-data", {}, "no_data", "order.no_data"),
    ],
)
def test_each_answer_moves_the_order_and_records_one_event(
    site: Site,
    kind: str,
    before: list[str],
    action: str,
    body: dict[str, Any],
    state: str,
    event: str,
) -> None:
    order_id = site.order(kind=kind)
    site.show(order_id)
    for step in before:
        assert site.post(order_id, step).status_code == 200
    size = site.deployment.ledger.size()

    response = site.post(order_id, action, body)

    assert response.status_code == 200, response.get_json()
    answered = response.get_json()
    assert (answered["id"], answered["state"]) == (order_id, state)
    assert answered["ledger_index"] == size
    assert site.deployment.ledger.size() == size + 1
    last = site.show(order_id)["timeline"][-1]
    assert (last["index"], last["type"], last["state"]) == (size, event, state)


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        (
            "object",
            {"ground": "third_country_law_conflict", "details": "Disclosure breaches s. 9 of X."},
            "details",
        ),
        ("request-clarification", {"question": "Which of the two mailboxes?"}, "question"),
    ],
)
def test_only_a_question_suspends_the_clock_and_each_keeps_its_text(
    site: Site, action: str, body: dict[str, Any], field: str
) -> None:
    """Art 10(6): a request for clarification suspends the deadline; an Annex III notice
    (an objection) does not."""
    order_id = site.order()
    running = site.show(order_id)
    assert running["due"] is not None and running["clock_paused"] is False

    response = site.post(order_id, action, body)

    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    if action == "object":
        assert after["due"] == running["due"] and after["clock_paused"] is False
    else:
        assert after["due"] is None and after["clock_paused"] is True
        assert after["remaining_seconds"] > 0
    assert after["overdue"] is False
    last = site.show(order_id)["timeline"][-1]
    assert last["texts"] == {field: body[field]}
    assert body[field] not in json.dumps(last["data"])  # the event commits to it, never holds it


INVALID_ANSWERS: list[tuple[str, dict[str, Any], int]] = [
    ("object", {}, 422),
    ("object", {"ground": "not_a_ground"}, 422),
    ("object", {"ground": "other"}, 422),  # "other" needs its details
    ("object", {"ground": "third_country_law_conflict", "details": "   "}, 422),
    ("object", {"ground": "data_not_held", "extra": "field"}, 422),
    ("request-clarification", {}, 422),
    ("request-clarification", {"question": ""}, 422),
    ("request-clarification", {"question": "nul\x00"}, 422),
    ("request-clarification", {"question": "\ud800"}, 400),
]


def test_an_invalid_answer_is_refused_and_changes_nothing(site: Site) -> None:
    order_id = site.order()
    before = snapshot(site.deployment)

    for action, body, status in INVALID_ANSWERS:
        response = site.post(order_id, action, body)

        assert response.status_code == status, (action, body, response.get_json())
        assert_problem(response, status)

    assert snapshot(site.deployment) == before
    assert site.show(order_id)["state"] == "served"


def test_an_answer_the_state_forbids_is_409_with_the_allowed_actions(site: Site) -> None:
    order_id = site.acknowledged()
    before = snapshot(site.deployment)

    twice = assert_problem(site.post(order_id, "acknowledge"), 409)
    preserved = assert_problem(site.post(order_id, "confirm-preservation"), 409)
    early = assert_problem(site.post(order_id, "complete"), 409)

    assert "respond" in twice["allowed_actions"]
    assert "confirm_preservation" not in preserved["allowed_actions"]
    assert "complete" not in early["allowed_actions"]
    assert snapshot(site.deployment) == before


# -- responses -----------------------------------------------------------------------------------


def test_a_response_is_ingested_with_a_receipt_and_the_order_completes(
    site_on_each_database: Site,
) -> None:
    site = site_on_each_database
    order_id = site.acknowledged()
    opened = site.post(order_id, "responses", {"description": "subscriber records"})
    assert opened.status_code == 201, opened.get_json()
    session = opened.get_json()
    assert_documented(UploadSessionSchema, session)
    assert session["upload"] == f"/v1/provider/orders/{order_id}/responses/{session['id']}/content"
    size = site.deployment.ledger.size()

    uploaded = site.client.put(
        session["upload"], data=CONTENT, headers={**site.headers(), **repr_digest(CONTENT)}
    )

    assert uploaded.status_code == 201, uploaded.get_json()
    body = uploaded.get_json()
    assert_documented(IngestedSchema, body)
    assert body["id"] == session["id"] and body["ledger_index"] == size
    assert body["digests"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert body["size"] == len(CONTENT) and body["case"] == "CASE-1"
    assert uploaded.headers["Repr-Digest"] == repr_digest(CONTENT)["Repr-Digest"]
    # The record's description links it to the order and the provider it came from.
    record = site.deployment.evidence.get(body["id"])
    assert record is not None
    assert record.description["order"] == order_id
    assert record.description["provider"] == site.own
    assert site.deployment.ledger.size() == size + 2  # evidence.ingested, order.responded
    report = verify_receipt(
        json.dumps(body["receipt"]).encode(), [site.deployment.keys.current.verifier_key]
    )
    assert (report.evidence_id, report.ledger_index) == (body["id"], size)
    assert dict(report.digests) == body["digests"]
    shown = site.show(order_id)
    assert_documented(ProviderOrderDetailSchema, shown)
    assert shown["state"] == "produced_partial"
    assert shown["timeline"][-1]["type"] == "order.responded"
    assert shown["timeline"][-1]["data"]["evidence"] == body["id"]

    completed = site.post(order_id, "complete")

    assert completed.status_code == 200, completed.get_json()
    assert_documented(OrderActedSchema, completed.get_json())
    assert completed.get_json()["state"] == "produced"


def test_the_provider_that_sent_a_response_re_fetches_its_receipt_and_no_other_may(
    site: Site,
) -> None:
    order_id = site.acknowledged()
    upload = site.open_response(order_id)
    sent = site.client.put(upload, data=CONTENT, headers=site.headers())
    assert sent.status_code == 201, sent.get_json()
    evidence_id = sent.get_json()["id"]

    again = site.client.get(f"/v1/evidence/{evidence_id}/receipt", headers=site.headers())
    other = site.client.get(f"/v1/evidence/{evidence_id}/receipt", headers=site.headers("other"))

    assert again.status_code == 200, again.get_json()
    report = verify_receipt(again.data, [site.deployment.keys.current.verifier_key])
    assert report.evidence_id == evidence_id
    assert_problem(other, 404)
    assert other.get_json()["detail"] == f"no evidence {evidence_id}"


def test_a_wrong_digest_is_422_and_leaves_nothing(site: Site) -> None:
    order_id = site.acknowledged()
    upload = site.open_response(order_id)
    before = snapshot(site.deployment)

    wrong = {**site.headers(), **repr_digest(b"other bytes")}
    assert_problem(site.client.put(upload, data=CONTENT, headers=wrong), 422)

    assert snapshot(site.deployment) == before
    assert site.show(order_id)["state"] == "acknowledged"
    right = {**site.headers(), **repr_digest(CONTENT)}
    assert site.client.put(upload, data=CONTENT, headers=right).status_code == 201


def test_a_response_to_a_preservation_order_is_409_and_opens_nothing(site: Site) -> None:
    order_id = site.acknowledged(kind=PRESERVATION)
    before = snapshot(site.deployment)

    response = site.post(order_id, "responses", {"description": "the preserved mailbox"})

    problem = assert_problem(response, 409)
    assert "confirm_preservation" in problem["allowed_actions"]
    assert "respond" not in problem["allowed_actions"]
    assert snapshot(site.deployment) == before


def test_a_response_after_withdrawal_is_409_and_changes_nothing(site: Site) -> None:
    order_id = site.acknowledged()
    upload = site.open_response(order_id)
    site.deployment.orders.act(order_id, "withdraw", {}, site.authority)
    before = snapshot(site.deployment)

    late = site.client.put(upload, data=CONTENT, headers={**site.headers(), **repr_digest(CONTENT)})
    another = site.post(order_id, "responses", {"description": "more records"})

    assert assert_problem(late, 409)["allowed_actions"] == []
    assert assert_problem(another, 409)["allowed_actions"] == []
    assert snapshot(site.deployment) == before
    assert site.show(order_id)["state"] == "withdrawn"


def test_a_response_session_belongs_to_its_own_order(site: Site) -> None:
    first, second = site.acknowledged(), site.acknowledged()
    upload = site.open_response(first)
    evidence_id = upload.split("/")[-2]
    before = snapshot(site.deployment)

    wrong_order = f"/v1/provider/orders/{second}/responses/{evidence_id}/content"
    response = site.client.put(wrong_order, data=CONTENT, headers=site.headers())

    assert_problem(response, 404)
    assert snapshot(site.deployment) == before
    assert site.show(second)["state"] == "acknowledged"
    assert site.client.put(upload, data=CONTENT, headers=site.headers()).status_code == 201


def test_an_announcement_is_validated(site: Site) -> None:
    order_id = site.acknowledged()
    before = snapshot(site.deployment)

    for body in ({}, {"description": " "}, {"description": "x", "case": "C-9"}):
        assert_problem(site.post(order_id, "responses", body), 422)

    assert snapshot(site.deployment) == before
