"""Repeated failed authentications are rate-limited per client address (service/auth.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.auth import FAILED_AUTHENTICATIONS, FailedAuthentications
from storage.config import ConfigError, load_config
from storage.deployment import Deployment
from tests.conftest import bearer

ENTRY = "/v1/log/entries/0"
LIMIT = 3
WRONG = bearer("custos_not-a-token-anyone-holds")


class Seconds:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def limited(app: Flask, seconds: Seconds) -> FlaskClient:
    """A client of an app that allows LIMIT failures a minute, on a clock the test moves."""
    app.extensions[FAILED_AUTHENTICATIONS] = FailedAuthentications(LIMIT, clock=seconds)
    return app.test_client()


@pytest.fixture
def token(deployment: Deployment) -> str:
    operator = deployment.principals.get("operator")
    return deployment.principals.add("alice", "examiner", operator.actor)[1]


def fail(client: FlaskClient, times: int, address: str = "127.0.0.1") -> list[int]:
    """Present a wrong token ``times`` times from ``address``; returns the statuses."""
    return [
        client.get(ENTRY, headers=WRONG, environ_base={"REMOTE_ADDR": address}).status_code
        for _ in range(times)
    ]


def assert_too_many(response: TestResponse) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == 429 and body["title"] and body["type"] and body["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_a_client_that_failed_too_often_gets_429_with_retry_after(limited: FlaskClient) -> None:
    assert fail(limited, LIMIT) == [401] * LIMIT

    assert_too_many(limited.get(ENTRY, headers=WRONG))


def test_a_blocked_client_is_refused_even_with_a_valid_token(
    limited: FlaskClient, token: str
) -> None:
    fail(limited, LIMIT)

    assert_too_many(limited.get(ENTRY, headers=bearer(token)))


def test_the_limit_lifts_once_the_failures_are_a_minute_old(
    limited: FlaskClient, token: str, seconds: Seconds
) -> None:
    fail(limited, LIMIT)
    seconds.advance(30)
    assert_too_many(limited.get(ENTRY, headers=bearer(token)))  # refused tries do not count

    seconds.advance(31)

    assert limited.get(ENTRY, headers=bearer(token)).status_code == 200


def test_at_most_the_limit_of_failures_fit_in_any_minute(
    limited: FlaskClient, seconds: Seconds
) -> None:
    fail(limited, 1)
    seconds.advance(50)
    fail(limited, LIMIT - 1)
    assert_too_many(limited.get(ENTRY, headers=WRONG))
    seconds.advance(11)  # the first failure left the window; the others are still in it

    assert fail(limited, 2) == [401, 429]


def test_successful_authentications_do_not_count(limited: FlaskClient, token: str) -> None:
    successes = [limited.get(ENTRY, headers=bearer(token)).status_code for _ in range(3 * LIMIT)]
    failures = fail(limited, LIMIT - 1)

    assert successes == [200] * 3 * LIMIT
    assert failures == [401] * (LIMIT - 1)
    assert limited.get(ENTRY, headers=bearer(token)).status_code == 200


def test_requests_without_a_token_do_not_count(limited: FlaskClient, token: str) -> None:
    assert [limited.get(ENTRY).status_code for _ in range(3 * LIMIT)] == [401] * 3 * LIMIT

    assert limited.get(ENTRY, headers=bearer(token)).status_code == 200


def test_failures_are_counted_per_client_address(limited: FlaskClient, token: str) -> None:
    fail(limited, LIMIT, address="192.0.2.1")

    blocked = limited.get(ENTRY, headers=bearer(token), environ_base={"REMOTE_ADDR": "192.0.2.1"})
    other = limited.get(ENTRY, headers=bearer(token), environ_base={"REMOTE_ADDR": "192.0.2.2"})

    assert_too_many(blocked)
    assert other.status_code == 200


def test_public_routes_still_answer_a_blocked_client(limited: FlaskClient) -> None:
    fail(limited, LIMIT)

    assert limited.get("/v1/log/checkpoint").status_code == 200


def test_the_limit_is_the_configured_number_of_failures_a_minute(client: FlaskClient) -> None:
    default = load_config(Path("unused"), environ={}).auth_failures_per_minute

    assert fail(client, default) == [401] * default
    assert_too_many(client.get(ENTRY, headers=WRONG))


def test_a_limit_of_zero_turns_rate_limiting_off(app: Flask, seconds: Seconds) -> None:
    app.extensions[FAILED_AUTHENTICATIONS] = FailedAuthentications(0, clock=seconds)

    assert set(fail(app.test_client(), 50)) == {401}


def test_only_the_most_recently_failing_clients_are_remembered(seconds: Seconds) -> None:
    failures = FailedAuthentications(1, clock=seconds, max_clients=2)
    for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        failures.failed(client)

    assert failures.retry_after("192.0.2.1") is None  # forgotten, to bound the memory used
    assert failures.retry_after("192.0.2.3") == 60


def test_the_limit_comes_from_the_environment(tmp_path: Path) -> None:
    environ = {"CUSTOS_AUTH_FAILURES_PER_MINUTE": "5"}

    assert load_config(tmp_path, environ=environ).auth_failures_per_minute == 5
    assert load_config(tmp_path, environ={}).auth_failures_per_minute == 20
    with pytest.raises(ConfigError, match="auth_failures_per_minute"):
        load_config(tmp_path, environ={"CUSTOS_AUTH_FAILURES_PER_MINUTE": "-1"})


def test_every_authenticated_operation_documents_429_with_retry_after(client: FlaskClient) -> None:
    spec = client.get("/v1/openapi.json").get_json()
    operations = [
        operation
        for methods in spec["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and operation.get("security")
    ]

    assert operations
    for operation in operations:
        documented = operation["responses"]["429"]
        assert "application/problem+json" in documented["content"]
        assert documented["headers"]["Retry-After"]["required"] is True
