"""Tests of bearer-token authentication (service/auth.py, custody/principals.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from custody.principals import Unauthenticated
from storage.deployment import Deployment
from storage.sql.schema import principals
from tests.conftest import Home, bearer

ENTRY = "/v1/log/entries/0"


@pytest.fixture
def examiner_token(deployment: Deployment) -> str:
    operator = deployment.principals.get("operator")
    _, token = deployment.principals.add("alice", "examiner", operator.actor)
    return token


def assert_unauthorized(response: TestResponse) -> None:
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json(force=True)
    assert body["status"] == 401 and body["title"] and body["type"] and body["detail"]


def test_a_valid_token_is_accepted(client: FlaskClient, examiner_token: str) -> None:
    assert client.get(ENTRY, headers=bearer(examiner_token)).status_code == 200


def test_the_operator_token_from_init_is_accepted(client: FlaskClient, home: Home) -> None:
    assert client.get(ENTRY, headers=bearer(home.operator_token)).status_code == 200


def test_the_bearer_scheme_is_case_insensitive(client: FlaskClient, examiner_token: str) -> None:
    # RFC 9110 section 11.1: the authentication scheme is case-insensitive.
    headers = {"Authorization": f"bearer {examiner_token}"}

    assert client.get(ENTRY, headers=headers).status_code == 200


def test_a_revoked_token_fails_at_once(
    client: FlaskClient, deployment: Deployment, examiner_token: str
) -> None:
    assert client.get(ENTRY, headers=bearer(examiner_token)).status_code == 200

    deployment.principals.revoke("alice", deployment.principals.get("operator").actor)

    assert_unauthorized(client.get(ENTRY, headers=bearer(examiner_token)))


def test_revocation_is_a_ledger_event(deployment: Deployment, examiner_token: str) -> None:
    size = deployment.ledger.size()

    revoked = deployment.principals.revoke("alice", deployment.principals.get("operator").actor)

    assert deployment.ledger.size() == size + 1
    last = deployment.ledger.entry(size)
    assert b'"type":"principal.revoked"' in last
    assert revoked.id.encode() in last
    with pytest.raises(Unauthenticated):
        deployment.principals.authenticate(examiner_token)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Token {token}",
        "Basic {token}",
        "Basic YWxpY2U6c2VjcmV0",  # alice:secret
        "{token}",
        "Bearer {token}x",
        "Bearer custos_",
    ],
)
def test_anything_but_a_known_bearer_token_is_unauthorized(
    client: FlaskClient, examiner_token: str, authorization: str | None
) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=examiner_token)

    assert_unauthorized(client.get(ENTRY, headers=headers))


def test_a_token_is_stored_only_as_its_sha256(deployment: Deployment, examiner_token: str) -> None:
    with deployment.engine.connect() as connection:
        rows = connection.execute(select(principals)).mappings().all()

    alice = next(row for row in rows if row["name"] == "alice")
    assert bytes(alice["token_hash"]) == hashlib.sha256(examiner_token.encode()).digest()
    for row in rows:
        assert all(examiner_token not in str(value) for value in row.values())


def test_no_token_appears_in_the_database_files(
    deployment: Deployment, home: Home, examiner_token: str
) -> None:
    database = Path(deployment.engine.url.database or "")
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    assert database in files
    contents = b"".join(p.read_bytes() for p in files)

    for token in (examiner_token, home.operator_token):
        assert token.encode() not in contents
        secret = token.removeprefix("custos_").encode()
        assert secret not in contents
