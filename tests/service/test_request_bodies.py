"""Request bodies the API refuses before they cost anything: too large (413), nested too
deeply or naming a member twice (400); and the upload routes, which are bounded elsewhere."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.principals import ROLES
from service import create_app
from service.body_limit import is_upload_view
from tests.conftest import Home, add_provider, bearer
from tests.factories import SEIZURE, in_case
from tests.service.test_schemathesis import PHYSICAL, existing_orders, put_in_cases

LIMIT = 4096


@pytest.fixture
def bounded(home: Home) -> Flask:
    """The app with a body bound of 4 KiB."""
    config = replace(home.config, max_body_bytes=LIMIT)
    return create_app({"TESTING": True}, deployment=replace(home.deployment, config=config))


@pytest.fixture
def examiner(home: Home) -> str:
    operator = home.deployment.principals.get("operator").actor
    token = home.deployment.principals.add("ex", "examiner", operator)[1]
    in_case(home.deployment, "C-1", "ex")
    return token


def intake(client: FlaskClient, token: str, body: bytes, **headers: str) -> tuple[int, dict]:
    response = client.post(
        "/v1/evidence",
        data=body,
        headers={**bearer(token), "Content-Type": "application/json", **headers},
    )
    return response.status_code, response.get_json()


def test_the_body_bound_defaults_to_one_mebibyte(home: Home) -> None:
    assert home.config.max_body_bytes == 1024 * 1024


def test_a_json_body_over_the_bound_is_413_before_it_is_read(bounded: Flask, home: Home) -> None:
    body = b'{"kind": "physical", "x": [' + b"{}," * LIMIT + b"{}]}"
    status, problem = intake(bounded.test_client(), examiner, body)
    assert status == 413
    assert problem["status"] == 413


def test_a_chunked_json_body_over_the_bound_is_413(bounded: Flask, examiner: str) -> None:
    body = b'{"kind": "physical", "x": [' + b"{}," * LIMIT + b"{}]}"
    response = bounded.test_client().post(
        "/v1/evidence",
        input_stream=io.BytesIO(body),
        headers={
            **bearer(examiner),
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_a_body_within_the_bound_is_read(bounded: Flask, examiner: str) -> None:
    body = {
        "kind": "physical",
        "case": "C-1",
        "exhibit": "P-1",
        "description": "a phone",
        "seizure": SEIZURE,
    }
    status, _ = intake(bounded.test_client(), examiner, json.dumps(body).encode())
    assert status == 201


def test_an_upload_is_not_bound_by_the_body_bound(bounded: Flask, examiner: str) -> None:
    client = bounded.test_client()
    announced = {"kind": "digital", "case": "C-1", "exhibit": "D-1", "description": "image"}
    status, session = intake(client, examiner, json.dumps(announced).encode())
    assert status == 201
    response = client.put(session["upload"], data=b"x" * (4 * LIMIT), headers=bearer(examiner))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["size"] == 4 * LIMIT


def test_exactly_the_upload_routes_are_marked_as_uploads(app: Flask) -> None:
    uploads = {name for name, view in app.view_functions.items() if is_upload_view(view)}
    # The pages' uploads are bounded where they are read: the provider's response forms by
    # CUSTOS_PAGE_UPLOAD_MAX_BYTES, the examiner's by CUSTOS_PAGE_INGEST_MAX_BYTES.
    assert uploads == {
        "evidence.upload",
        "provider.response_content",
        "pages.provider.upload_form",
        "pages.provider.upload_content",
        "pages.examiner_intake.upload",
    }


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_json_nested_deeper_than_64_is_400(client: FlaskClient, examiner: str, depth: int) -> None:
    body = b'{"kind": "physical", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    status, problem = intake(client, examiner, body)
    assert status == 400
    assert "nested deeper than 64" in problem["detail"]


def test_json_nested_64_deep_is_read(client: FlaskClient, examiner: str) -> None:
    # Read, then refused by the schema for its unknown member: 422, not 400.
    body = b'{"kind": "physical", "x": ' + b"[" * 63 + b"]" * 63 + b"}"
    status, _ = intake(client, examiner, body)
    assert status == 422


def test_a_member_named_twice_is_400(client: FlaskClient, examiner: str) -> None:
    body = (
        b'{"kind": "physical", "case": "C-1", "exhibit": "P-1", "description": "a phone",'
        b' "case": "C-2"}'
    )
    status, problem = intake(client, examiner, body)
    assert status == 400
    assert "duplicate" in problem["detail"]


# -- no body makes a JSON endpoint answer 500 ------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Bodies a JSON endpoint may meet: any JSON, deep nesting, members named twice, numbers
    too long for Python's int, lone surrogates, NULs, bytes that are not UTF-8 at all."""
    depth = draw(st.integers(1, 5_000))
    kind = draw(st.sampled_from(["json", "nested", "objects", "twice", "raw", "number", "text"]))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "nested":
        return b"[" * depth + b"]" * depth
    if kind == "objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "twice":
        name = json.dumps(draw(st.sampled_from(["kind", "case", "reason", "document", "x"])))
        return f"{{{name}: {json.dumps(draw(JSON_VALUES))}, {name}: 1}}".encode()
    if kind == "number":
        return b'{"days": ' + b"9" * draw(st.integers(1, 10_000)) + b"}"
    if kind == "text":
        escape = draw(st.sampled_from(["\\ud800", "\\u0000", "\\udfff\\ud800", "\\u202e"]))
        return f'{{"reason": "{escape}", "case": "{escape}"}}'.encode()
    return draw(st.binary(max_size=64))


def json_operations(app: Flask) -> dict[tuple[str, str], set[str]]:
    """Every operation whose OpenAPI request body is JSON, (method, path template), and the
    statuses it documents."""
    spec = app.test_client().get("/v1/openapi.json").get_json()
    found = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if any(t == "application/json" or t.endswith("+json") for t in content):
                found[method.upper(), path] = set(operation["responses"])
    return found


KNOWN_HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,  # a RecursionError in Python's parser
    b'{"reason": ' + b"9" * 5_000 + b"}",  # beyond Python's int conversion limit
    b'{"reason": "a", "reason": "b"}',
    b'{"reason": "\\ud800"}',
    b"\xff\xfe{}",
    b'{"reason": 1.5e999}',
]


@dataclass
class FuzzTarget:
    """The app, its JSON operations with the statuses each documents, a token of each role,
    and ids that exist for the path parameters."""

    client: FlaskClient
    operations: dict[tuple[str, str], set[str]]
    tokens: list[str]
    values: dict[str, list[str]]

    def call(self, operation: tuple[str, str], body: bytes, token: str, pick: int = 0) -> None:
        method, path = operation
        for name, choices in self.values.items():
            path = path.replace(f"{{{name}}}", choices[pick % len(choices)])
        response = self.client.open(
            path,
            method=method,
            data=body,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status_code < 500, (method, path, body[:200], response.get_data())
        assert str(response.status_code) in self.operations[operation], (method, path, body[:200])


@pytest.fixture
def fuzz_target(home: Home) -> FuzzTarget:
    deployment = home.deployment
    app = create_app(deployment=deployment)  # unhandled errors answer 500 rather than raise
    operator = deployment.principals.get("operator").actor
    isp = add_provider(deployment)
    tokens = [
        deployment.principals.add(
            f"fuzz-{role}", role, operator, isp.id if role == "provider" else None
        )[1]
        for role in ROLES
    ]
    put_in_cases(deployment, "fuzz")
    orders = existing_orders(deployment)
    client = app.test_client()
    item = client.post(
        "/v1/evidence",
        json={**PHYSICAL, "case": "C-1"},
        headers=bearer(tokens[ROLES.index("examiner")]),
    ).get_json()["id"]
    values = {"order_id": orders["order_id"], "evidence_id": [item], "provider_id": [isp.id]}
    operations = json_operations(app)
    assert len(operations) >= 10, operations
    return FuzzTarget(client, operations, tokens, values)


def test_known_hostile_bodies_answer_below_500_on_every_json_endpoint(
    fuzz_target: FuzzTarget,
) -> None:
    for operation in fuzz_target.operations:
        for body in KNOWN_HOSTILE:
            for token in fuzz_target.tokens:
                fuzz_target.call(operation, body, token)


def test_no_json_endpoint_answers_500_to_any_body_and_each_answer_is_documented(
    fuzz_target: FuzzTarget,
) -> None:
    @settings(
        max_examples=40 * len(fuzz_target.operations),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        operation=st.sampled_from(sorted(fuzz_target.operations)),
        body=hostile_bodies(),
        token=st.sampled_from(fuzz_target.tokens),
        pick=st.integers(0, 20),
    )
    def answers_below_500(operation: tuple[str, str], body: bytes, token: str, pick: int) -> None:
        fuzz_target.call(operation, body, token, pick)

    answers_below_500()
