"""Tests of the provider register's API (service/providers.py): admins add providers, admins
and authorities read them, and ``Providers.add`` decides what a provider may be."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import Home, add_provider, bearer

NEW = {
    "name": "Mail Co",
    "jurisdiction": "IE",
    "legal_representative": "Mail Co Legal Ltd",
    "contact": "lawful-requests@mail.example",
    "notification_url": "https://mail.example/custos/notices",
}


@pytest.fixture
def headers(home: Home) -> dict[str, dict[str, str]]:
    """Each role's bearer header; the provider principal is bound to a provider of its own."""
    principals = home.deployment.principals
    operator = principals.get("operator").actor
    bound = add_provider(home.deployment, "Bound ISP")
    result = {"admin": bearer(home.operator_token)}
    for role in ("examiner", "authority", "approver", "court", "provider"):
        provider = bound.id if role == "provider" else None
        result[role] = bearer(principals.add(f"a-{role}", role, operator, provider)[1])
    return result


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_an_admin_registers_a_provider_and_gets_it_with_its_id(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    size = home.deployment.ledger.size()

    response = client.post("/v1/providers", json=NEW, headers=headers["admin"])

    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("prv_")
    assert {k: body[k] for k in NEW} == NEW
    assert response.headers["Location"] == f"/v1/providers/{body['id']}"
    assert client.get(response.headers["Location"], headers=headers["authority"]).get_json() == body
    assert home.deployment.ledger.size() == size + 1
    event = json.loads(home.deployment.ledger.entry(size))
    assert event["type"] == "provider.registered"
    assert event["subject"] == {"kind": "provider", "id": body["id"]}
    assert NEW["contact"] not in json.dumps(event)


def test_the_notification_url_is_optional(
    client: FlaskClient, headers: dict[str, dict[str, str]]
) -> None:
    without = {k: v for k, v in NEW.items() if k != "notification_url"}

    response = client.post("/v1/providers", json=without, headers=headers["admin"])
    explicit = client.post(
        "/v1/providers",
        json={**without, "name": "Null Co", "notification_url": None},
        headers=headers["admin"],
    )

    assert response.status_code == 201 and explicit.status_code == 201
    assert response.get_json()["notification_url"] is None
    assert explicit.get_json()["notification_url"] is None


def test_a_second_provider_of_the_same_name_is_409_and_records_nothing(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    assert client.post("/v1/providers", json=NEW, headers=headers["admin"]).status_code == 201
    size = home.deployment.ledger.size()

    response = client.post(
        "/v1/providers", json={**NEW, "jurisdiction": "NL"}, headers=headers["admin"]
    )

    assert_problem(response, 409)
    assert home.deployment.ledger.size() == size
    names = [p["name"] for p in client.get("/v1/providers", headers=headers["admin"]).json["items"]]
    assert names.count("Mail Co") == 1


def test_an_invalid_provider_is_422_naming_the_field_and_records_nothing(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    size = home.deployment.ledger.size()
    missing = {k: v for k, v in NEW.items() if k != "contact"}

    for body, field in (
        (missing, "contact"),
        ({**NEW, "colour": "blue"}, "colour"),
        ({**NEW, "jurisdiction": 7}, "jurisdiction"),
        ({**NEW, "name": "  "}, "name"),
        ({**NEW, "legal_representative": "x" * 1001}, "legal_representative"),
        ({**NEW, "notification_url": "ftp://mail.example/"}, "notification_url"),
        ({**NEW, "notification_url": "/relative"}, "notification_url"),
        ({**NEW, "name": "Mail\x00Co"}, "name"),
    ):
        response = client.post("/v1/providers", json=body, headers=headers["admin"])
        assert field in assert_problem(response, 422)["detail"], body

    assert home.deployment.ledger.size() == size


def test_a_provider_with_several_fields_at_fault_is_one_422_naming_each(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    size = home.deployment.ledger.size()
    body = {**NEW, "name": "  ", "contact": "", "notification_url": "ftp://mail.example/"}

    response = client.post("/v1/providers", json=body, headers=headers["admin"])

    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["name", "contact", "notification_url"]
    assert all(e["reason"] for e in problem["errors"])
    assert home.deployment.ledger.size() == size


def test_a_provider_body_that_is_not_a_json_object_is_400(
    client: FlaskClient, headers: dict[str, dict[str, str]]
) -> None:
    for body in (b"", b"[]", b"{oops", b'{"name": "\\ud800"}'):
        response = client.post(
            "/v1/providers", data=body, content_type="application/json", headers=headers["admin"]
        )
        assert_problem(response, 400)


def test_only_an_admin_registers_providers(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    size = home.deployment.ledger.size()

    for role in ("examiner", "authority", "approver", "court", "provider"):
        response = client.post("/v1/providers", json=NEW, headers=headers[role])
        assert_problem(response, 403)
    assert_problem(client.post("/v1/providers", json=NEW), 401)

    assert home.deployment.ledger.size() == size


def test_admins_and_authorities_read_the_register_and_no_one_else(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    added = add_provider(home.deployment, "Alpha Mail")
    path = f"/v1/providers/{added.id}"

    for role in ("admin", "authority", "approver"):
        listed = client.get("/v1/providers", headers=headers[role])
        shown = client.get(path, headers=headers[role])
        assert listed.status_code == 200 and shown.status_code == 200
        assert [p["name"] for p in listed.get_json()["items"]] == ["Alpha Mail", "Bound ISP"]
        assert shown.get_json() == added.as_json()
    for role in ("examiner", "court", "provider"):
        assert_problem(client.get("/v1/providers", headers=headers[role]), 403)
        assert_problem(client.get(path, headers=headers[role]), 403)
    assert_problem(client.get("/v1/providers"), 401)
    assert_problem(client.get(path), 401)


def test_an_unknown_provider_is_404(
    client: FlaskClient, headers: dict[str, dict[str, str]]
) -> None:
    for provider_id in ("prv_0000000000000000", "prv_nothex", "ord_0123456789abcdef", "a%00b"):
        response = client.get(f"/v1/providers/{provider_id}", headers=headers["authority"])
        assert_problem(response, 404)


def test_the_register_is_listed_by_name_a_page_at_a_time(
    client: FlaskClient, home: Home, headers: dict[str, dict[str, str]]
) -> None:
    names = ["Zeta Telecom", "Ärzte Netz", "Alpha Mail", "beta-hosting", "Mail Co", "Ω Cloud"]
    for name in names:
        add_provider(home.deployment, name)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/providers", query_string=query, headers=headers["authority"])
        assert body.status_code == 200
        page = body.get_json()
        assert len(page["items"]) <= 2
        seen += [p["name"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted([*names, "Bound ISP"])
    assert pages == 4
    whole = client.get("/v1/providers", headers=headers["admin"]).get_json()
    assert [p["name"] for p in whole["items"]] == seen  # each once, in name order
    assert whole["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [{"cursor": "%%%"}, {"cursor": "AA=="}, {"cursor": "/w=="}, {"limit": 0}, {"limit": 501}],
    ids=["not-base64", "nul-name", "not-utf8", "limit-0", "limit-501"],
)
def test_a_malformed_provider_list_query_is_400(
    client: FlaskClient, headers: dict[str, dict[str, str]], query: dict[str, Any]
) -> None:
    assert_problem(client.get("/v1/providers", query_string=query, headers=headers["admin"]), 400)
