"""Schemathesis over the whole API: every operation that the OpenAPI document lists is called,
in process, with requests generated from the document, and must answer as the document says.

schemathesis's own pytest loader (``schemathesis.pytest.from_fixture``) does not work with
pytest 9.2, so each operation is driven here by its Hypothesis strategy.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from custody.order_document import PRESERVATION, PRODUCTION
from custody.principals import ROLES
from service import create_app
from storage.deployment import Deployment
from tests.conftest import Home, add_provider, bearer
from tests.factories import SEIZURE, in_case, order_document

OPENAPI = "/v1/openapi.json"
# Examples for the whole API, shared among its operations, so that the test takes about as
# long however many there are: some 15 s on each database, on two cores. `make soak` asks for
# more with CUSTOS_SCHEMATHESIS_REQUESTS (two valid requests for each invalid one).
REQUESTS = int(os.environ.get("CUSTOS_SCHEMATHESIS_REQUESTS") or 450)
BUDGET = {GenerationMode.POSITIVE: REQUESTS * 2 // 3, GenerationMode.NEGATIVE: REQUESTS // 3}
FEWEST_EXAMPLES = 3
PHYSICAL = {
    "kind": "physical",
    "case": "C-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}
DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "D-1", "description": "an image"}


def status_is_listed(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Below 500, a status is listed by itself: ``default`` stands for 500 and 503 only."""
    status = response.status_code
    if status < 500 and str(status) not in case.operation.definition.raw["responses"]:
        raise AssertionError(f"{case.operation.label} answered {status}, which it does not list")
    return None


CHECKS = [
    not_a_server_error,
    status_is_listed,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture
def api(home_on_each_database: Home) -> Flask:
    """The app as a client meets it: an unhandled error is a 500 answer, not a raised one."""
    return create_app(deployment=home_on_each_database.deployment)


@pytest.fixture
def tokens(home_on_each_database: Home) -> dict[str, str]:
    """A principal of each role (the provider's bound to a provider on record), so that each
    operation meets callers it serves and callers it refuses."""
    deployment = home_on_each_database.deployment
    operator = deployment.principals.get("operator").actor
    isp = add_provider(deployment)
    tokens = {
        role: deployment.principals.add(
            f"schemathesis-{role}", role, operator, isp.id if role == "provider" else None
        )[1]
        for role in ROLES
    }
    put_in_cases(deployment, "schemathesis")
    return tokens


def put_in_cases(deployment: Deployment, prefix: str) -> None:
    """The items' case (C-1) and the orders' (CASE-1), with each role's principal in them."""
    people = [f"{prefix}-{role}" for role in ("examiner", "authority", "approver", "court")]
    in_case(deployment, "C-1", *people)
    in_case(deployment, "CASE-1", *people)


def existing_orders(deployment: Deployment) -> dict[str, list[Any]]:
    """Orders in the states the order views tell apart (a draft, one awaiting approval, a
    served one, an acknowledged one, a preservation order), addressed to the provider whose
    principal calls the provider API, and that provider."""
    principals = {p.role: p for p in deployment.principals.list()}
    provider_id = principals["provider"].provider_id
    assert provider_id is not None
    desk = deployment.orders
    authority, approver = principals["authority"].actor, principals["approver"].actor
    isp = principals["provider"].actor
    steps = {
        "draft": [],
        "pending": [("submit", authority)],
        "served": [("submit", authority), ("approve", approver)],
        "acknowledged": [("submit", authority), ("approve", approver), ("acknowledge", isp)],
    }
    orders = []
    for kind in (PRODUCTION, PRESERVATION):
        for actions in steps.values():
            document = order_document(provider_id, kind)
            order_id = desk.draft(document, authority).stored.id
            for action, actor in actions:
                by_provider = provider_id if actor is isp else None
                desk.act(order_id, action, {}, actor, provider_id=by_provider)
            orders.append(order_id)
    return {"order_id": orders, "provider_id": [provider_id]}


@pytest.fixture
def examiner_token(tokens: dict[str, str]) -> str:
    return tokens["examiner"]


def existing_values(client: FlaskClient, token: str) -> dict[str, list[Any]]:
    """Parameter values, by name, that name something that exists, since generated ones
    seldom do: an item in each state the evidence views tell apart (physical, digital with
    its content, digital still waiting for it), and entries, tiles, sizes of the ledger."""
    headers = bearer(token)
    physical = client.post("/v1/evidence", json=PHYSICAL, headers=headers).get_json()
    ingested = client.post("/v1/evidence", json=DIGITAL, headers=headers).get_json()
    uploaded = client.put(ingested["upload"], data=b"acquired bytes", headers=headers)
    waiting = client.post("/v1/evidence", json=DIGITAL, headers=headers).get_json()
    assert uploaded.status_code == 201
    size = int(client.get("/v1/log/checkpoint").get_data(as_text=True).splitlines()[1])
    return {
        "evidence_id": [physical["id"], ingested["id"], waiting["id"]],
        "size": [size],
        "level": [0],
        "index": [0, f"000.p/{size}"],
        "tree_size": [size],
        "from": [1],
        "to": [size],
    }


def operations(api: Flask) -> Iterator[APIOperation]:
    for result in schemathesis.openapi.from_wsgi(OPENAPI, api).get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation whose definition schemathesis cannot read
        yield result.ok()


def cases(
    operation: APIOperation, mode: GenerationMode, existing: dict[str, list[Any]]
) -> SearchStrategy[Case]:
    """Requests for ``operation``: as generated, and (valid ones) with each combination of
    the existing values that its parameters take."""
    generated = operation.as_strategy(mode)
    path = [p.name for p in operation.path_parameters if p.name in existing]
    query = [p.name for p in operation.query if p.name in existing]
    if mode is GenerationMode.NEGATIVE or not path + query:
        return generated
    combinations = [
        dict(zip(path + query, values, strict=True))
        for values in product(*(existing[name] for name in path + query))
    ]
    return st.one_of(
        generated,
        *(
            operation.as_strategy(
                mode,
                path_parameters={name: values[name] for name in path} or None,
                query={name: values[name] for name in query} or None,
            )
            for values in combinations
        ),
    )


def can_be_negated(operation: APIOperation) -> bool:
    """Whether an invalid request exists: without parameters or a body there is none."""
    return any(True for _ in operation.iter_parameters()) or len(operation.body) > 0


def test_every_operation_answers_as_documented(
    api: Flask, tokens: dict[str, str], home_on_each_database: Home
) -> None:
    existing = existing_values(api.test_client(), tokens["examiner"])
    existing.update(existing_orders(home_on_each_database.deployment))
    all_operations = list(operations(api))
    failures: dict[str, str] = {}
    made = 0
    for operation in all_operations:
        for mode, budget in BUDGET.items():
            if mode is GenerationMode.NEGATIVE and not can_be_negated(operation):
                continue
            examples = max(FEWEST_EXAMPLES, budget // len(all_operations))

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            )
            @given(
                case=cases(operation, mode, existing), token=st.sampled_from(list(tokens.values()))
            )
            def call(case: Case, token: str) -> None:
                nonlocal made
                made += 1
                case.call_and_validate(headers=bearer(token), checks=CHECKS)

            try:
                call()
            except Exception as failure:  # each operation is reported, not just the first
                failures[f"{operation.label} ({mode.value})"] = str(failure)

    print(f"schemathesis: {made} requests over {len(all_operations)} operations")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"),
    [
        # A cursor that decodes to digits beyond any ledger index, or to no index at all.
        ("GET", f"/v1/evidence?cursor={_cursor('9' * 30)}", None, 400, "cursor"),
        ("GET", f"/v1/evidence?cursor={_cursor('-1')}", None, 400, "cursor"),
        # U+0000 in a field that a PostgreSQL column holds.
        ("GET", "/v1/evidence?case=C%00", None, 400, "NUL"),
        ("POST", "/v1/evidence", {**PHYSICAL, "exhibit": "P\x00"}, 422, "NUL"),
        # A lone surrogate escape, which no UTF-8 text (so no signed note) can hold.
        ("POST", "/v1/evidence", {**PHYSICAL, "description": "\ud800"}, 400, "surrogate"),
        (
            "POST",
            "/v1/evidence/{id}/events",
            {"type": "evidence.noted", "text": "\udc00"},
            400,
            "surrogate",
        ),
    ],
)
def test_inputs_that_generation_rarely_makes_are_client_errors(
    api: Flask, examiner_token: str, method: str, path: str, body: object, status: int, named: str
) -> None:
    client = api.test_client()
    item = client.post("/v1/evidence", json=PHYSICAL, headers=bearer(examiner_token)).get_json()

    response = client.open(
        path.replace("{id}", item["id"]),
        method=method,
        json=body,
        headers=bearer(examiner_token),
    )

    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert named in response.get_data(as_text=True)
