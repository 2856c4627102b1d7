"""A second factor for some roles: a TOTP code (RFC 6238) after the token or the link."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask

from cli import main
from service import create_app
from tests.service.pages.desks import Browser, browser, token_of
from tests.service.test_orders_api import Site, build_site


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url)


def app_requiring(site: Site, *roles: str) -> Flask:
    deployment = site.deployment
    config = replace(deployment.config, totp_roles=tuple(roles))
    return create_app({"TESTING": True}, deployment=replace(deployment, config=config))


def enrolled(site: Site, name: str) -> pyotp.TOTP:
    _, uri = site.deployment.sign_in.enrol_totp(
        name, site.deployment.principals.get("operator").actor
    )
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0])


def code_now(site: Site, totp: pyotp.TOTP, steps: int = 0) -> str:
    return totp.at(site.clock().timestamp() + 30 * steps)


def enter(person: Browser, code: str) -> object:
    return person.form("/sign-in/second-factor", "/sign-in/second-factor", {"code": code})


def test_a_role_with_a_second_factor_signs_in_only_with_the_code(site: Site) -> None:
    totp = enrolled(site, "judge")
    person = browser(app_requiring(site, "approver"))

    first = person.sign_in(token_of(site, "judge"))
    assert first.status_code == 303
    assert first.headers["Location"] == "/sign-in/second-factor"
    assert person.get("/desk").status_code == 302  # no session yet
    wrong = enter(person, "000000" if code_now(site, totp) != "000000" else "111111")
    right = enter(person, code_now(site, totp))

    assert wrong.status_code == 401  # type: ignore[attr-defined]
    assert right.status_code == 303  # type: ignore[attr-defined]
    assert person.get("/desk").status_code == 200


def test_a_code_is_good_once(site: Site) -> None:
    totp = enrolled(site, "judge")
    app = app_requiring(site, "approver")
    first, second = browser(app), browser(app)
    first.sign_in(token_of(site, "judge"))
    second.sign_in(token_of(site, "judge"))
    code = code_now(site, totp)

    assert enter(first, code).status_code == 303  # type: ignore[attr-defined]
    replayed = enter(second, code)

    assert replayed.status_code == 401  # type: ignore[attr-defined]
    assert "used already" in replayed.get_data(as_text=True)  # type: ignore[attr-defined]


def test_codes_of_the_next_and_previous_steps_are_accepted_no_further(site: Site) -> None:
    totp = enrolled(site, "judge")
    app = app_requiring(site, "approver")
    outcomes = []
    for steps in (-2, 2, 1):
        person = browser(app)
        person.sign_in(token_of(site, "judge"))
        outcomes.append(enter(person, code_now(site, totp, steps)).status_code)  # type: ignore[attr-defined]

    assert outcomes == [401, 401, 303]


def test_the_code_must_come_within_five_minutes_of_the_first_factor(site: Site) -> None:
    totp = enrolled(site, "judge")
    person = browser(app_requiring(site, "approver"))
    person.sign_in(token_of(site, "judge"))
    site.clock.advance(301)

    response = person.form("/sign-in", "/sign-in/second-factor", {"code": code_now(site, totp)})

    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
    assert person.get("/desk").status_code == 302


def test_a_role_that_needs_a_second_factor_and_has_none_cannot_sign_in(site: Site) -> None:
    person = browser(app_requiring(site, "approver"))

    response = person.sign_in(token_of(site, "judge"))

    assert response.status_code == 403
    assert "custos principal totp judge" in response.get_data(as_text=True)


def test_other_roles_sign_in_without_a_code(site: Site) -> None:
    person = browser(app_requiring(site, "approver"))

    assert person.sign_in(token_of(site, "isp")).headers["Location"] == "/provider/orders"


def test_wrong_codes_count_against_the_sign_in_limit(site: Site) -> None:
    enrolled(site, "judge")
    app = app_requiring(site, "approver")
    person = browser(app)
    person.sign_in(token_of(site, "judge"))
    statuses = {enter(person, "123456").status_code for _ in range(25)}  # type: ignore[attr-defined]

    assert 429 in statuses


def test_totp_enrols_and_prints_the_otpauth_uri(runner: CliRunner, home: object) -> None:
    runner.invoke(main, ["principal", "add", "judge", "--role", "approver"], catch_exceptions=False)

    result = runner.invoke(main, ["principal", "totp", "judge"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("otpauth://totp/Custos:judge?secret=")
