"""The authorisation matrix of the order and provider APIs: every endpoint x every role, and
for providers their own order or another provider's, with the exact status code.

Each case gets an order of its own in the state its endpoint needs, so an allowed call
succeeds (2xx) and a refused one is refused for who the caller is, never for the state: 401
without a token, 403 for a role the endpoint is not for (and a plain authority approving),
404 for a provider reaching another provider's order. A refused call changes nothing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from custody.principals import Principal
from service import create_app
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import add_provider, bearer, make_config
from tests.factories import in_case, order_document

ROLES = (
    "anonymous",
    "admin",
    "examiner",
    "court",
    "authority",
    "approver",
    "validator",
    "provider",
    "other_provider",
)
EU_EPOC = {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"}
EU_TRAFFIC = {
    "legal_basis": EU_EPOC,
    "data_categories": ["traffic"],
    "offence": {"description": "extortion", "provision": "s. 221", "max_penalty_years": 8},
    "language": "de",
    "enforcing_authority": {
        "name": "Staatsanwaltschaft Berlin",
        "state": "DE",
        "contact": "epoc@sta-berlin.example",
        "time_zone": "Europe/Berlin",
        "notification_url": "https://enforcing.example/epoc",
    },
}
EMERGENCY = {"flag": True, "category": "threat_to_life", "justification": "Tonight."}


def document_of(provider_id: str, kind: str) -> dict[str, Any]:
    """An order document of ``kind``; ``eu_preservation`` is an EU preservation order,
    ``eu_police`` an EU order its issuer may not issue alone (Art 4), ``eu_traffic`` one sent
    to an enforcing authority (Art 8), ``eu_emergency`` the same in an emergency."""
    if kind == "eu_preservation":
        eu = {"instrument": "eu_2023_1543_epoc_pr", "citation": "Art 6"}
        return order_document(provider_id, "preservation", legal_basis=eu)
    if kind == "eu_police":
        police = {"name": "PJ", "type": "other", "file_number": "1", "contact": "pj", "state": "PT"}
        judge = {**police, "name": "Judge", "type": "judge"}
        return order_document(
            provider_id, legal_basis=EU_EPOC, issuing_authority=police, validating_authority=judge
        )
    if kind == "eu_traffic":
        return order_document(provider_id, **EU_TRAFFIC)
    if kind == "eu_emergency":
        return order_document(provider_id, **EU_TRAFFIC, emergency=EMERGENCY)
    return order_document(provider_id, kind)


@dataclass
class World:
    deployment: Deployment
    client: FlaskClient
    principals: dict[str, Principal]
    tokens: dict[str, str]
    provider_id: str

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.tokens[role])

    def order(self, state: str, kind: str = "production") -> str:
        """A new order of the provider's, brought to ``state`` through the order desk."""
        desk, p = self.deployment.orders, self.principals
        authority, approver, isp = p["authority"].actor, p["approver"].actor, p["provider"].actor
        order_id = desk.draft(document_of(self.provider_id, kind), authority).stored.id
        steps: dict[str, list[tuple[str, Any, dict[str, Any]]]] = {
            "draft": [],
            "pending_approval": [("submit", authority, {})],
            "served": [("submit", authority, {}), ("approve", approver, {})],
        }
        served = steps["served"]
        steps["acknowledged"] = [*served, ("acknowledge", isp, {})]
        steps["objected"] = [*steps["acknowledged"], ("object", isp, {"ground": "incomplete"})]
        steps["clarification_requested"] = [
            *served,
            ("request_clarification", isp, {"question": "which account?"}),
        ]
        steps["no_data"] = [*steps["acknowledged"], ("no_data", isp, {})]
        for action, actor, data in steps[state]:
            provider = self.provider_id if actor is isp else None
            desk.act(order_id, action, data, actor, provider_id=provider)
        return order_id

    def overdue(self) -> str:
        """A served order its provider received 30 days ago: its deadline has passed."""
        order_id = self.order("served")
        desk = self.deployment.orders
        with self.deployment.ledger.recording() as recorder:
            order = desk.store.get(order_id, recorder.tx).order  # type: ignore[union-attr]
            assert order.clock is not None
            month_ago = self.deployment.ledger.clock() - timedelta(days=30)
            late = replace(order, clock=order.clock.receive(month_ago, "read"))
            desk.store.update(recorder.tx, late)
        return order_id

    def response_session(self, order_id: str) -> str:
        isp = self.principals["provider"].actor
        metadata = {"description": "records"}
        session = self.deployment.orders.open_response(order_id, metadata, isp, self.provider_id)
        return session.id

    def restriction_owed(self) -> str:
        """An emergency order whose response came before the enforcing authority's ground:
        the issuing authority must delete or restrict the data (Art 10(4))."""
        order_id = self.produced_partial("eu_emergency")
        ground = {"answer": "ground", "ground": "fundamental_rights", "details": "No."}
        authority = self.principals["authority"].actor
        self.deployment.orders.act(order_id, "record_enforcing_answer", ground, authority)
        return order_id

    def produced_partial(self, kind: str = "production") -> str:
        order_id = self.order("acknowledged", kind)
        evidence_id = self.response_session(order_id)
        isp = self.principals["provider"].actor
        self.deployment.orders.receive_response(
            order_id, evidence_id, io.BytesIO(b"records"), isp, self.provider_id
        )
        return order_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("authz")
    config = make_config(tmp, f"sqlite:///{tmp / 'home' / 'custos.db'}")
    initialise(config).deployment.close()
    deployment = open_deployment(config)
    app: Flask = create_app({"TESTING": True}, deployment=deployment)
    operator = deployment.principals.get("operator")
    provider = add_provider(deployment, "Own ISP")
    other = add_provider(deployment, "Other ISP")
    principals = {"admin": operator}
    tokens = {}
    for role, name, bound in (
        ("examiner", "examiner", None),
        ("court", "court", None),
        ("authority", "authority", None),
        ("approver", "approver", None),
        ("validator", "magistrate", None),
        ("provider", "isp", provider.id),
        ("other_provider", "other-isp", other.id),
    ):
        actual = "provider" if role == "other_provider" else role
        principal, token = deployment.principals.add(name, actual, operator.actor, bound)
        principals[role], tokens[role] = principal, token
    tokens["admin"] = deployment.principals.add("admin2", "admin", operator.actor)[1]
    # The orders' case, with the authority, the approver and the validator in it.
    in_case(deployment, "CASE-1", "authority", "approver", "magistrate")
    yield World(deployment, app.test_client(), principals, tokens, provider.id)
    deployment.close()


# What each endpoint needs: (method, path template, body, how to make the order, success).
# ``{id}`` is the prepared order, ``{ev}`` a response session of it, ``{pv}`` the provider.
Prepare = Callable[[World], dict[str, str]]


def order_in(state: str, kind: str = "production") -> Prepare:
    return lambda w: {"id": w.order(state, kind), "pv": w.provider_id}


def with_session(w: World) -> dict[str, str]:
    order_id = w.order("acknowledged")
    return {"id": order_id, "ev": w.response_session(order_id), "pv": w.provider_id}


def nothing(w: World) -> dict[str, str]:
    return {"pv": w.provider_id}


def provider_document(w: World) -> dict[str, Any]:
    return order_document(w.provider_id)


NEW_PROVIDER = {
    "name": "New ISP",
    "jurisdiction": "FR",
    "legal_representative": "New ISP Legal",
    "contact": "legal@new-isp.example",
}
AUTHORITIES = ("authority", "approver")
# A validator reads the orders it may be asked to validate.
ORDER_READERS = (*AUTHORITIES, "validator")
PROVIDER_ONLY = ("provider",)

# (name, method, path, body or a function of the world, prepare, roles allowed, success)
ENDPOINTS: list[tuple[str, str, str, Any, Prepare, tuple[str, ...], int]] = [
    ("draft", "POST", "/v1/orders", provider_document, nothing, AUTHORITIES, 201),
    ("list", "GET", "/v1/orders", None, nothing, ORDER_READERS, 200),
    ("show", "GET", "/v1/orders/{id}", None, order_in("draft"), ORDER_READERS, 200),
    ("patch", "PATCH", "/v1/orders/{id}", {"facts": "more"}, order_in("draft"), AUTHORITIES, 200),
    ("submit", "POST", "/v1/orders/{id}/submit", {}, order_in("draft"), AUTHORITIES, 200),
    (
        "approve",
        "POST",
        "/v1/orders/{id}/approve",
        {},
        order_in("pending_approval"),
        ("approver",),
        200,
    ),
    (
        "send-back",
        "POST",
        "/v1/orders/{id}/send-back",
        {"reason": "name the date"},
        order_in("pending_approval"),
        ("approver",),
        200,
    ),
    ("withdraw", "POST", "/v1/orders/{id}/withdraw", {}, order_in("served"), AUTHORITIES, 200),
    (
        "extend",
        "POST",
        "/v1/orders/{id}/extend",
        {"days": 30},
        order_in("served", "preservation"),
        AUTHORITIES,
        200,
    ),
    (
        "answer-objection",
        "POST",
        "/v1/orders/{id}/answer-objection",
        {"answer": "see the order"},
        order_in("objected"),
        AUTHORITIES,
        200,
    ),
    (
        "answer-clarification",
        "POST",
        "/v1/orders/{id}/answer-clarification",
        {"answer": "the mail account"},
        order_in("clarification_requested"),
        AUTHORITIES,
        200,
    ),
    ("close", "POST", "/v1/orders/{id}/close", {}, order_in("no_data"), AUTHORITIES, 200),
    ("resend", "POST", "/v1/orders/{id}/resend", {}, order_in("served"), AUTHORITIES, 200),
    (
        "adapt",
        "POST",
        "/v1/orders/{id}/adapt",
        {"document": {"facts": "adapted facts"}},
        order_in("served"),
        ("approver",),
        200,
    ),
    (
        "confirm-production-request",
        "POST",
        "/v1/orders/{id}/confirm-production-request",
        {},
        order_in("served", "eu_preservation"),
        AUTHORITIES,
        200,
    ),
    (
        "seek-enforcement",
        "POST",
        "/v1/orders/{id}/seek-enforcement",
        {"reason": "Art 16"},
        lambda w: {"id": w.overdue(), "pv": w.provider_id},
        AUTHORITIES,
        200,
    ),
    (
        "document",
        "GET",
        "/v1/orders/{id}/document",
        None,
        order_in("served"),
        ORDER_READERS,
        200,
    ),
    (
        "validate",
        "POST",
        "/v1/orders/{id}/validate",
        {},
        order_in("pending_approval", "eu_police"),
        ("validator",),
        200,
    ),
    (
        "record-enforcing-answer",
        "POST",
        "/v1/orders/{id}/record-enforcing-answer",
        {"answer": "no_ground"},
        order_in("served", "eu_traffic"),
        AUTHORITIES,
        200,
    ),
    (
        "restrict-data",
        "POST",
        "/v1/orders/{id}/restrict-data",
        {"measure": "deleted"},
        lambda w: {"id": w.restriction_owed()},
        AUTHORITIES,
        200,
    ),
    (
        "record-user-information",
        "POST",
        "/v1/orders/{id}/record-user-information",
        {"informed": True, "details": "Told of the order and the remedies."},
        order_in("served"),
        AUTHORITIES,
        200,
    ),
    ("add provider", "POST", "/v1/providers", NEW_PROVIDER, nothing, ("admin",), 201),
    ("providers", "GET", "/v1/providers", None, nothing, ("admin", *AUTHORITIES), 200),
    (
        "provider",
        "GET",
        "/v1/providers/{pv}",
        None,
        nothing,
        ("admin", *AUTHORITIES),
        200,
    ),
    ("provider list", "GET", "/v1/provider/orders", None, nothing, PROVIDER_ONLY, 200),
    (
        "provider show",
        "GET",
        "/v1/provider/orders/{id}",
        None,
        order_in("served"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "provider document",
        "GET",
        "/v1/provider/orders/{id}/document",
        None,
        order_in("served"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "acknowledge",
        "POST",
        "/v1/provider/orders/{id}/acknowledge",
        {},
        order_in("served"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "object",
        "POST",
        "/v1/provider/orders/{id}/object",
        {"ground": "data_not_held"},
        order_in("acknowledged"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "request-clarification",
        "POST",
        "/v1/provider/orders/{id}/request-clarification",
        {"question": "which account?"},
        order_in("served"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "confirm-preservation",
        "POST",
        "/v1/provider/orders/{id}/confirm-preservation",
        {},
        order_in("acknowledged", "preservation"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "no-data",
        "POST",
        "/v1/provider/orders/{id}/no-data",
        {},
        order_in("acknowledged"),
        PROVIDER_ONLY,
        200,
    ),
    (
        "complete",
        "POST",
        "/v1/provider/orders/{id}/complete",
        {},
        lambda w: {"id": w.produced_partial()},
        PROVIDER_ONLY,
        200,
    ),
    (
        "open response",
        "POST",
        "/v1/provider/orders/{id}/responses",
        {"description": "subscriber records"},
        order_in("acknowledged"),
        PROVIDER_ONLY,
        201,
    ),
    (
        "upload response",
        "PUT",
        "/v1/provider/orders/{id}/responses/{ev}/content",
        b"subscriber records",
        with_session,
        PROVIDER_ONLY,
        201,
    ),
]


def expected(role: str, allowed: tuple[str, ...], success: int, path: str) -> int:
    if role == "anonymous":
        return 401
    if role == "other_provider" and "provider" in allowed:
        # Another provider's order does not exist for it; its own list is simply its own.
        return 404 if "{id}" in path else success
    if role in allowed:
        return success
    return 403


CASES = [
    pytest.param(endpoint, role, id=f"{endpoint[0]}-{role}")
    for endpoint in ENDPOINTS
    for role in ROLES
]


@pytest.mark.parametrize(("endpoint", "role"), CASES)
def test_each_endpoint_answers_each_role_with_the_exact_status(
    world: World, endpoint: tuple[str, str, str, Any, Prepare, tuple[str, ...], int], role: str
) -> None:
    _, method, template, body, prepare, allowed, success = endpoint
    values = prepare(world)
    path = template.format(**values)
    headers = world.headers(role)
    if callable(body):
        body = body(world)
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["content_type"] = "application/octet-stream"
    elif body is not None:
        kwargs["json"] = body
    size = world.deployment.ledger.size()
    order_id = values.get("id")
    before = world.deployment.orders.store.get(order_id) if order_id else None

    response = world.client.open(path, method=method, **kwargs)

    want = expected(role, allowed, success, template)
    assert response.status_code == want, response.get_data(as_text=True)
    if want >= 400:
        assert response.mimetype == "application/problem+json"
        assert world.deployment.ledger.size() == size
        if order_id:
            assert world.deployment.orders.store.get(order_id) == before


def test_the_matrix_names_every_route_the_app_serves(world: World) -> None:
    """Each endpoint of the matrix is served, and each served order or provider route is in
    the matrix (a route taking the action as a variable covers each action it serves)."""
    app = world.client.application
    example = {"id": "ord_0123456789abcdef", "ev": "ev_0123456789abcdef", "pv": "prv_0"}
    paths = [(m, t.format(**example)) for _, m, t, *_ in ENDPOINTS]
    served = [
        (method, re.compile("^" + re.sub(r"<[^>]+>", "[^/]+", rule.rule) + "$"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/v1/orders", "/v1/provider"))
        for method in sorted(rule.methods or ())
        if method not in ("HEAD", "OPTIONS")
    ]
    unserved = [(m, p) for m, p in paths if not any(m == sm and r.match(p) for sm, r in served)]
    untested = [
        (sm, r.pattern) for sm, r in served if not any(m == sm and r.match(p) for m, p in paths)
    ]
    assert unserved == []
    assert untested == []
