"""Need-to-know by case: for each role, every evidence, order and bundle route and the court's
pages, on an item (or order) of a case the caller is in and on one of a case it is not in.

The world has two cases, A and B. Each role has one principal in A only: a member (examiner,
authority, approver) or, for the court, a grant of A. An admin is in neither: it manages
memberships and reads no evidence. What the caller's role may do on an item of A answers as
it always did (2xx, or 403 for a role the route is not for); the same on B answers 404,
exactly as another provider's order does for a provider, and changes nothing.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from custody.disclosure import FINDINGS_READERS
from custody.principals import Principal
from service import create_app
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import add_provider, bearer, make_config
from tests.factories import SEIZURE, in_case, order_document
from tests.service.pages.desks import Browser, browser

ROLES = ("examiner", "authority", "approver", "court", "admin")
NAMES = {
    "examiner": "alice",
    "authority": "ann",
    "approver": "judge",
    "court": "clerk",
    "admin": "admin2",
}
# The principals of case B, who put its items and orders there.
B_EXAMINER, B_AUTHORITY, B_APPROVER = "bob", "barry", "bea"
CONTENT = b"seized disk image " * 1000


@dataclass
class World:
    deployment: Deployment
    app: Flask
    client: FlaskClient
    principals: dict[str, Principal]
    tokens: dict[str, str]
    provider_id: str

    def headers(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])

    def item(self, case: str, kind: str = "digital") -> str:
        """A new item of ``case``, taken in by that case's examiner."""
        examiner = self.principals["alice" if case == "A" else B_EXAMINER].actor
        intake = self.deployment.intake
        if kind == "physical":
            metadata = {
                "kind": "physical",
                "case": case,
                "exhibit": "P-1",
                "description": "a phone",
                "seizure": SEIZURE,
            }
            return intake.register_physical(metadata, examiner).event.subject.id
        metadata = {"kind": "digital", "case": case, "exhibit": "E-1", "description": "image"}
        session = intake.open_session(metadata, examiner)
        intake.receive(session.id, io.BytesIO(CONTENT), examiner)
        return session.id

    def order(self, case: str, state: str = "draft") -> str:
        """A new order of ``case``, drafted by that case's authority (and approved by its
        approver for ``served``)."""
        authority = self.principals["ann" if case == "A" else B_AUTHORITY].actor
        approver = self.principals["judge" if case == "A" else B_APPROVER].actor
        desk = self.deployment.orders
        document = order_document(self.provider_id, case=case)
        order_id = desk.draft(document, authority).stored.id
        if state in ("pending", "served"):
            desk.act(order_id, "submit", {}, authority)
        if state == "served":
            desk.act(order_id, "approve", {}, approver)
        return order_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("cases")
    config = make_config(tmp, f"sqlite:///{tmp / 'home' / 'custos.db'}")
    initialise(config).deployment.close()
    deployment = open_deployment(config)
    app = create_app({"TESTING": True}, deployment=deployment)
    operator = deployment.principals.get("operator")
    provider = add_provider(deployment, "Own ISP")
    principals: dict[str, Principal] = {"operator": operator}
    tokens: dict[str, str] = {}
    people = [(NAMES[role], role) for role in ROLES]
    people += [(B_EXAMINER, "examiner"), (B_AUTHORITY, "authority"), (B_APPROVER, "approver")]
    people += [("clerk-b", "court")]
    for name, role in people:
        principal, token = deployment.principals.add(name, role, operator.actor)
        principals[name], tokens[name] = principal, token
    in_case(deployment, "A", "alice", "ann", "judge", "clerk")
    in_case(deployment, "B", B_EXAMINER, B_AUTHORITY, B_APPROVER, "clerk-b")
    yield World(deployment, app, app.test_client(), principals, tokens, provider.id)
    deployment.close()


# -- the matrix ------------------------------------------------------------------------------

Prepare = Callable[[World, str], dict[str, str]]


def an_item(kind: str = "digital") -> Prepare:
    return lambda w, case: {"ev": w.item(case, kind)}


def an_order(state: str = "draft") -> Prepare:
    return lambda w, case: {"id": w.order(case, state)}


def a_draft_body(w: World, case: str) -> dict[str, Any]:
    return order_document(w.provider_id, case=case)


def an_intake_body(w: World, case: str) -> dict[str, Any]:
    return {"kind": "physical", "case": case, "exhibit": "P-9", "description": "a laptop",
            "seizure": SEIZURE}  # fmt: skip


EVIDENCE_READERS = ("examiner", "authority", "approver", "court", "admin")
ACTORS = ("examiner", "approver")
EXPORTERS = ("examiner", "court")
AUTHORITIES = ("authority", "approver")

# (name, method, path, body (or a function of the world and the case), prepare, roles, success)
ROUTES: list[tuple[str, str, str, Any, Prepare, tuple[str, ...], int]] = [
    ("item", "GET", "/v1/evidence/{ev}", None, an_item(), EVIDENCE_READERS, 200),
    ("custody", "GET", "/v1/evidence/{ev}/custody", None, an_item(), EVIDENCE_READERS, 200),
    ("manifest", "GET", "/v1/evidence/{ev}/manifest", None, an_item(), EVIDENCE_READERS, 200),
    ("receipt", "GET", "/v1/evidence/{ev}/receipt", None, an_item(), EVIDENCE_READERS, 200),
    (
        "content",
        "GET",
        "/v1/evidence/{ev}/content?purpose=review",
        None,
        an_item(),
        EVIDENCE_READERS,
        200,
    ),
    (
        "act",
        "POST",
        "/v1/evidence/{ev}/events",
        {"type": "evidence.noted", "text": "seen"},
        an_item("physical"),
        ACTORS,
        201,
    ),
    ("item bundle", "GET", "/v1/evidence/{ev}/bundle", None, an_item(), EXPORTERS, 200),
    (
        "disclosures",
        "GET",
        "/v1/evidence/{ev}/disclosures",
        None,
        an_item(),
        FINDINGS_READERS,
        200,
    ),
    (
        "bundle",
        "POST",
        "/v1/bundles",
        lambda w, values: {"evidence_ids": [values["ev"]]},
        an_item(),
        EXPORTERS,
        200,
    ),
    ("order", "GET", "/v1/orders/{id}", None, an_order(), AUTHORITIES, 200),
    ("revise", "PATCH", "/v1/orders/{id}", {"facts": "more"}, an_order(), AUTHORITIES, 200),
    ("submit", "POST", "/v1/orders/{id}/submit", {}, an_order(), AUTHORITIES, 200),
    ("approve", "POST", "/v1/orders/{id}/approve", {}, an_order("pending"), ("approver",), 200),
    ("withdraw", "POST", "/v1/orders/{id}/withdraw", {}, an_order("served"), AUTHORITIES, 200),
    ("resend", "POST", "/v1/orders/{id}/resend", {}, an_order("served"), AUTHORITIES, 200),
    (
        "adapt",
        "POST",
        "/v1/orders/{id}/adapt",
        {"document": {"facts": "adapted facts"}},
        an_order("served"),
        ("approver",),
        200,
    ),
    ("document", "GET", "/v1/orders/{id}/document", None, an_order("served"), AUTHORITIES, 200),
]


def expected(
    role: str, allowed: tuple[str, ...], success: int, in_own_case: bool, path: str
) -> int:
    # Approving and adapting are an approver's: the route lets an authority through, the
    # order's rules refuse it (403), once the order is found in the caller's cases.
    refused_by_the_order = path.endswith(("/approve", "/adapt")) and role == "authority"
    # Findings and notes: any principal reaches the route; who may read them is the item's
    # rule (403), once the item is found in the caller's cases.
    refused_by_the_item = path.endswith("/disclosures")
    member = in_own_case and role != "admin"  # an admin is a member of neither case
    if (refused_by_the_order or refused_by_the_item) and not member:
        return 404
    if role not in allowed:
        return 403
    if role == "admin" or not in_own_case:
        return 404
    return success


CASES = [
    pytest.param(route, role, case, id=f"{route[0]}-{role}-{'own' if case == 'A' else 'other'}")
    for route in ROUTES
    for role in ROLES
    for case in ("A", "B")
]


@pytest.mark.parametrize(("route", "role", "case"), CASES)
def test_each_route_answers_each_role_within_its_cases_and_404_outside(
    world: World,
    route: tuple[str, str, str, Any, Prepare, tuple[str, ...], int],
    role: str,
    case: str,
) -> None:
    _, method, template, body, prepare, allowed, success = route
    values = prepare(world, case)
    if callable(body):
        body = body(world, values)
    size = world.deployment.ledger.size()

    response = world.client.open(
        template.format(**values),
        method=method,
        headers=world.headers(NAMES[role]),
        **({} if body is None else {"json": body}),
    )

    want = expected(role, allowed, success, case == "A", template)
    assert response.status_code == want, response.get_data(as_text=True)
    if want >= 400:
        assert response.mimetype == "application/problem+json"
        assert world.deployment.ledger.size() == size


@pytest.mark.parametrize("role", ROLES)
def test_a_list_of_items_holds_only_those_of_the_caller_s_cases(world: World, role: str) -> None:
    own, other = world.item("A"), world.item("B")

    response = world.client.get("/v1/evidence?limit=500", headers=world.headers(NAMES[role]))

    assert response.status_code == 200
    listed = {item["id"] for item in response.get_json()["items"]}
    assert other not in listed
    assert (own in listed) == (role != "admin")


@pytest.mark.parametrize("role", AUTHORITIES)
def test_a_list_of_orders_holds_only_those_of_the_caller_s_cases(world: World, role: str) -> None:
    own, other = world.order("A"), world.order("B")

    response = world.client.get("/v1/orders?limit=200", headers=world.headers(NAMES[role]))

    listed = {order["id"] for order in response.get_json()["items"]}
    assert own in listed and other not in listed


@pytest.mark.parametrize("case", ["A", "B"])
def test_an_examiner_takes_items_into_its_own_cases_only(world: World, case: str) -> None:
    size = world.deployment.ledger.size()

    response = world.client.post(
        "/v1/evidence", json=an_intake_body(world, case), headers=world.headers("alice")
    )

    if case == "A":
        assert response.status_code == 201
        return
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["case"]
    assert world.deployment.ledger.size() == size


@pytest.mark.parametrize("role", AUTHORITIES)
@pytest.mark.parametrize("case", ["A", "B"])
def test_an_authority_drafts_orders_in_its_own_cases_only(
    world: World, role: str, case: str
) -> None:
    response = world.client.post(
        "/v1/orders", json=a_draft_body(world, case), headers=world.headers(NAMES[role])
    )

    assert response.status_code == (201 if case == "A" else 422), response.get_json()


# -- the court's pages -----------------------------------------------------------------------

PAGES = ["/court/items/{ev}", "/court/items/{ev}/report", "/court/items/{ev}/bundle"]


def court_browser(world: World, name: str) -> Browser:
    person = browser(world.app)
    assert person.sign_in(world.tokens[name]).status_code == 303
    return person


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("case", ["A", "B"])
def test_the_court_s_pages_show_its_granted_items_and_404_the_rest(
    world: World, page: str, case: str
) -> None:
    item = world.item(case)

    response = court_browser(world, "clerk").get(page.format(ev=item))

    assert response.status_code == (200 if case == "A" else 404)


def test_the_court_s_item_list_holds_only_its_granted_items(world: World) -> None:
    own, other = world.item("A"), world.item("B")
    person = court_browser(world, "clerk")

    listed, path = "", "/court/items"
    while path:  # every page, oldest first
        text = person.get(path).get_data(as_text=True)
        listed += text
        more = re.search(r'href="([^"]*cursor=[^"]*)">Next page', text)
        path = html.unescape(more.group(1)) if more else ""

    assert own in listed and other not in listed


# -- memberships that change -------------------------------------------------------------------


def test_a_member_removed_mid_way_gets_404_on_its_next_request(world: World) -> None:
    deployment = world.deployment
    operator = deployment.principals.get("operator").actor
    token = deployment.principals.add("temp", "authority", operator)[1]
    case_id = in_case(deployment, "A", "temp")
    item, order = world.item("A"), world.order("A")
    headers = bearer(token)
    assert world.client.get(f"/v1/evidence/{item}", headers=headers).status_code == 200
    assert world.client.get(f"/v1/orders/{order}", headers=headers).status_code == 200

    removed = world.client.delete(
        f"/v1/cases/{case_id}/members/temp", headers=world.headers("admin2")
    )

    assert removed.status_code == 204
    assert world.client.get(f"/v1/evidence/{item}", headers=headers).status_code == 404
    assert world.client.get(f"/v1/orders/{order}", headers=headers).status_code == 404
    event = deployment.ledger.subject_entries(f"case:{case_id}")[-1]
    assert b'"case.member_removed"' in event.leaf


def test_an_admin_reads_evidence_only_once_it_makes_itself_a_member(world: World) -> None:
    item = world.item("A")
    headers = world.headers("admin2")
    assert world.client.get(f"/v1/evidence/{item}", headers=headers).status_code == 404
    case_id = world.deployment.cases.store.by_reference("A").id  # type: ignore[union-attr]

    added = world.client.post(
        f"/v1/cases/{case_id}/members", json={"principal": "admin2"}, headers=headers
    )

    assert added.status_code == 200, added.get_json()
    assert world.client.get(f"/v1/evidence/{item}", headers=headers).status_code == 200
    world.client.delete(f"/v1/cases/{case_id}/members/admin2", headers=headers)
    assert world.client.get(f"/v1/evidence/{item}", headers=headers).status_code == 404


def test_a_court_granted_named_exhibits_reads_those_and_no_other_of_the_case(
    world: World,
) -> None:
    operator = world.deployment.principals.get("operator").actor
    token = world.deployment.principals.add("clerk-x", "court", operator)[1]
    granted, other = world.item("B"), world.item("B")
    case_id = world.deployment.cases.store.by_reference("B").id  # type: ignore[union-attr]
    body = {
        "court": "clerk-x",
        "proceeding": "trial 7/26",
        "ends_at": "2099-01-01T00:00:00Z",
        "exhibits": [granted],
    }

    response = world.client.post(
        f"/v1/cases/{case_id}/grants", json=body, headers=world.headers(B_EXAMINER)
    )

    assert response.status_code == 201, response.get_json()
    assert world.client.get(f"/v1/evidence/{granted}", headers=bearer(token)).status_code == 200
    assert world.client.get(f"/v1/evidence/{other}", headers=bearer(token)).status_code == 404


def test_a_grant_ended_early_closes_the_case_to_the_court(world: World) -> None:
    operator = world.deployment.principals.get("operator").actor
    token = world.deployment.principals.add("clerk-y", "court", operator)[1]
    item = world.item("B")
    case_id = world.deployment.cases.store.by_reference("B").id  # type: ignore[union-attr]
    body = {"court": "clerk-y", "proceeding": "trial 8/26", "ends_at": "2099-01-01T00:00:00Z"}
    grant = world.client.post(
        f"/v1/cases/{case_id}/grants", json=body, headers=world.headers(B_EXAMINER)
    ).get_json()
    assert world.client.get(f"/v1/evidence/{item}", headers=bearer(token)).status_code == 200

    ended = world.client.delete(
        f"/v1/cases/{case_id}/grants/{grant['id']}", headers=world.headers(B_EXAMINER)
    )

    assert ended.status_code == 200
    assert world.client.get(f"/v1/evidence/{item}", headers=bearer(token)).status_code == 404


def test_the_cases_routes_are_in_the_openapi_document(world: World) -> None:
    paths = world.client.get("/v1/openapi.json").get_json()["paths"]

    assert {"/v1/cases", "/v1/cases/{case_id}", "/v1/cases/{case_id}/grants"} <= set(paths)
    assert any(re.match(r"^/v1/cases/\{case_id\}/members/", p) for p in paths)


# Bodies the order actions' schemas take (the rest take none): an outsider's request must pass
# them to reach the order, and is then told it does not exist.
ACTION_BODIES: dict[str, dict[str, Any]] = {
    "adapt": {"document": {"facts": "adapted facts"}},
    "answer-objection": {"answer": "see the order"},
    "answer-clarification": {"answer": "the mail account"},
    "extend": {"days": 30},
    "send-back": {"reason": "name the date"},
    "record-enforcing-answer": {"answer": "no_ground"},
    "restrict-data": {"measure": "deleted"},
    "record-user-information": {"informed": True, "details": "by letter"},
}


def order_action_paths(app: Flask) -> list[str]:
    return sorted(
        rule.rule.rsplit("/", 1)[1]
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/orders/<order_id>/") and "POST" in (rule.methods or ())
    )


@pytest.mark.parametrize("role", AUTHORITIES)
def test_every_order_action_on_another_case_s_order_is_404(world: World, role: str) -> None:
    order = world.order("B")
    before = world.deployment.orders.store.get(order)
    size = world.deployment.ledger.size()

    for action in order_action_paths(world.app):
        response = world.client.post(
            f"/v1/orders/{order}/{action}",
            json=ACTION_BODIES.get(action, {}),
            headers=world.headers(NAMES[role]),
        )
        assert response.status_code == 404, (action, response.get_json())

    assert world.deployment.ledger.size() == size
    assert world.deployment.orders.store.get(order) == before


@pytest.mark.parametrize("role", AUTHORITIES)
def test_a_bad_body_on_another_case_s_order_or_item_is_404_not_422(world: World, role: str) -> None:
    """What a request carries is looked at only once the caller may see the order or item:
    a body no route would take answers 404 outside the caller's cases, as a good one does."""
    order, item = world.order("B"), world.item("B")
    size = world.deployment.ledger.size()
    bad = {"no such member": True}
    headers = world.headers(NAMES[role])

    answers = {
        action: world.client.post(f"/v1/orders/{order}/{action}", json=bad, headers=headers)
        for action in order_action_paths(world.app)
    }
    answers["revise"] = world.client.patch(f"/v1/orders/{order}", json=bad, headers=headers)
    answers["malformed"] = world.client.post(
        f"/v1/orders/{order}/submit", data=b"{not json", headers=headers
    )
    if role == "approver":  # an act on an item is an examiner's or an approver's
        answers["item act"] = world.client.post(
            f"/v1/evidence/{item}/events", json={"type": "no-such-act"}, headers=headers
        )

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)
    assert world.deployment.ledger.size() == size


def test_the_matrix_names_every_evidence_and_bundle_route(world: World) -> None:
    """Each route that reaches an item is in ROUTES, but the upload, which only the examiner
    who announced the item reaches (tests/service/test_evidence_api.py)."""
    named = {
        (method, re.sub(r"\{[a-z]+\}", "X", path.split("?")[0])) for _, method, path, *_ in ROUTES
    }
    served = {
        (method, re.sub(r"<[^>]+>", "X", rule.rule))
        for rule in world.app.url_map.iter_rules()
        if rule.rule.startswith(("/v1/evidence/", "/v1/bundles"))
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }

    assert served - named == {("PUT", "/v1/evidence/X/content")}
