"""custody.sign_in through its SQL store: links, sessions, their ends, only hashes stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from custody.errors import Forbidden
from custody.principals import Unauthenticated
from custody.sign_in import secret_hash
from storage.deployment import Deployment, initialise, open_deployment
from storage.sql.schema import sessions, sign_in_links
from tests.conftest import FakeClock, make_config


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    config = make_config(tmp_path, database_url)
    initialise(config).deployment.close()
    opened = open_deployment(config, clock=FakeClock())
    yield opened
    opened.close()


def test_a_link_opens_one_session_and_is_kept_only_as_a_hash(deployment: Deployment) -> None:
    sign_in = deployment.sign_in
    _, link, _ = sign_in.make_link("operator", deployment.principals.get("operator").actor)

    principal, session = sign_in.with_link(link)

    assert principal.name == "operator"
    assert sign_in.resume(session) == principal
    with pytest.raises(Unauthenticated, match="used already"):
        sign_in.with_link(link)
    with deployment.engine.connect() as connection:
        links = [bytes(r.secret_hash) for r in connection.execute(select(sign_in_links))]
        kept = [bytes(r.secret_hash) for r in connection.execute(select(sessions))]
    assert links == [secret_hash(link)] and kept == [secret_hash(session)]


def test_a_link_of_a_revoked_principal_opens_nothing(deployment: Deployment) -> None:
    operator = deployment.principals.get("operator").actor
    deployment.principals.add("clerk", "court", operator)
    _, link, _ = deployment.sign_in.make_link("clerk", operator)
    deployment.principals.revoke("clerk", operator)

    with pytest.raises(Unauthenticated):
        deployment.sign_in.with_link(link)
    with pytest.raises(Unauthenticated, match="revoked"):
        deployment.sign_in.make_link("clerk", operator)


def test_an_idle_session_ends_and_is_deleted(deployment: Deployment) -> None:
    clock = deployment.ledger.clock
    assert isinstance(clock, FakeClock)
    _, session = deployment.sign_in.with_token(_operator_token(deployment))
    clock.advance(30 * 60)

    with pytest.raises(Unauthenticated):
        deployment.sign_in.resume(session)
    with deployment.engine.connect() as connection:
        assert connection.execute(select(sessions)).first() is None


def test_ended_sessions_are_cleared_when_new_ones_begin(deployment: Deployment) -> None:
    clock = deployment.ledger.clock
    assert isinstance(clock, FakeClock)
    token = _operator_token(deployment)
    deployment.sign_in.with_token(token)
    clock.advance(31 * 60)

    deployment.sign_in.with_token(token)

    with deployment.engine.connect() as connection:
        assert len(list(connection.execute(select(sessions)))) == 1


def _operator_token(deployment: Deployment) -> str:
    operator = deployment.principals.get("operator").actor
    _, token = deployment.principals.add("admin2", "admin", operator)
    return token


def test_only_an_admin_makes_a_sign_in_link_or_enrols_a_second_factor(
    deployment: Deployment,
) -> None:
    operator = deployment.principals.get("operator").actor
    clerk = deployment.principals.add("clerk", "court", operator)[0].actor

    with pytest.raises(Forbidden):
        deployment.sign_in.make_link("clerk", clerk)
    with pytest.raises(Forbidden):
        deployment.sign_in.enrol_totp("clerk", clerk)
