"""The principals API: admins add principals, with an e-mail address for alerts, and list them;
every faulty field is named at once and nothing changes."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from service.principals import NewPrincipalAnswerSchema, PrincipalListSchema, PrincipalSchema
from tests.conftest import Home, add_provider, bearer
from tests.service.test_provider_api import assert_documented, assert_problem


def test_an_admin_adds_a_principal_with_an_email_address_and_gets_its_token_once(
    client: FlaskClient, home: Home
) -> None:
    admin = bearer(home.operator_token)
    provider = add_provider(home.deployment)

    response = client.post(
        "/v1/principals",
        json={
            "name": "isp-officer",
            "role": "provider",
            "provider": provider.id,
            "email": "officer@isp.example",
        },
        headers=admin,
    )
    listed = client.get("/v1/principals", headers=admin).get_json()

    assert response.status_code == 201, response.get_json()
    added = response.get_json()
    assert_documented(NewPrincipalAnswerSchema, added)
    assert (added["email"], added["provider"]) == ("officer@isp.example", provider.id)
    assert client.get("/v1/log/checkpoint", headers=bearer(added["token"])).status_code == 200
    assert_documented(PrincipalListSchema, listed)
    assert [p["email"] for p in listed["items"] if p["name"] == "isp-officer"] == [
        "officer@isp.example"
    ]
    assert all("token" not in p for p in listed["items"])


def test_every_faulty_field_is_named_at_once_and_nothing_changes(
    client: FlaskClient, home: Home
) -> None:
    size = home.deployment.ledger.size()

    response = client.post(
        "/v1/principals",
        json={"name": "Not Valid", "role": "superuser", "email": "someone at example"},
        headers=bearer(home.operator_token),
    )

    body = assert_problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"name", "role", "email"}
    assert home.deployment.ledger.size() == size


def test_only_an_admin_adds_or_lists_principals(client: FlaskClient, home: Home) -> None:
    operator = home.deployment.principals.get("operator").actor
    _, token = home.deployment.principals.add("clerk", "court", operator)

    added = client.post(
        "/v1/principals", json={"name": "x", "role": "court"}, headers=bearer(token)
    )
    listed = client.get("/v1/principals", headers=bearer(token))

    assert (added.status_code, listed.status_code) == (403, 403)


def test_an_admin_gives_a_display_name_at_creation_and_later(
    client: FlaskClient, home: Home
) -> None:
    admin = bearer(home.operator_token)

    added = client.post(
        "/v1/principals",
        json={"name": "ana", "role": "examiner", "display_name": "Dr Ana Ruiz"},
        headers=admin,
    )
    renamed = client.put(
        "/v1/principals/ana/display-name", json={"display_name": "Prof Ana Ruiz"}, headers=admin
    )
    listed = client.get("/v1/principals", headers=admin).get_json()

    assert added.status_code == 201, added.get_json()
    assert added.get_json()["display_name"] == "Dr Ana Ruiz"
    assert renamed.status_code == 200, renamed.get_json()
    assert_documented(PrincipalSchema, renamed.get_json())
    assert [p["display_name"] for p in listed["items"] if p["name"] == "ana"] == ["Prof Ana Ruiz"]
    principal_id = added.get_json()["id"]
    events = home.deployment.ledger.subject_entries(f"principal:{principal_id}")
    assert [json.loads(e.leaf)["type"] for e in events] == ["principal.created", "principal.named"]
    assert all(b"Ana" not in e.leaf for e in events)


def test_a_display_name_that_cannot_be_recorded_is_named_and_nothing_changes(
    client: FlaskClient, home: Home
) -> None:
    admin = bearer(home.operator_token)
    home.deployment.principals.add("ben", "court", home.deployment.principals.get("operator").actor)
    size = home.deployment.ledger.size()

    created = client.post(
        "/v1/principals",
        json={"name": "cy", "role": "court", "display_name": "line\nbreak"},
        headers=admin,
    )
    renamed = client.put(
        "/v1/principals/ben/display-name", json={"display_name": ""}, headers=admin
    )
    unknown = client.put(
        "/v1/principals/nobody/display-name", json={"display_name": "Nobody"}, headers=admin
    )

    assert [e["field"] for e in assert_problem(created, 422)["errors"]] == ["display_name"]
    assert [e["field"] for e in assert_problem(renamed, 422)["errors"]] == ["display_name"]
    assert_problem(unknown, 404)
    assert home.deployment.ledger.size() == size


def test_only_an_admin_names_principals(client: FlaskClient, home: Home) -> None:
    operator = home.deployment.principals.get("operator").actor
    _, token = home.deployment.principals.add("clerk", "court", operator)

    renamed = client.put(
        "/v1/principals/clerk/display-name", json={"display_name": "Me"}, headers=bearer(token)
    )

    assert renamed.status_code == 403
    assert home.deployment.principals.get("clerk").display_name is None
