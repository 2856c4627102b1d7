"""Signing in to the pages: the session cookie, its timeouts, sign-in links, CSRF, the rate
limit, and the wall between the pages (cookie only) and the API (bearer only)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from custody.sign_in import secret_hash
from storage.sql.schema import sessions
from tests.conftest import bearer
from tests.service.pages.desks import browser, csrf_of, pages_app, signed_in, token_of
from tests.service.test_orders_api import Site, build_site

PUBLIC = "https://custos.example.org"


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url)


@pytest.fixture
def site_on_each_database(tmp_path: Path, database_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, database_url)


def session_cookie(response: object) -> str:
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]  # type: ignore[attr-defined]
    found = [c for c in cookies if c.startswith("custos_session=")]
    assert found, cookies
    return found[-1]


def test_signing_in_with_a_token_sets_an_httponly_strict_cookie_and_opens_the_desk(
    site: Site,
) -> None:
    person = browser(pages_app(site))

    response = person.sign_in(token_of(site, "isp"))

    assert response.status_code == 303 and response.headers["Location"] == "/provider/orders"
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    inbox = person.get("/provider/orders")
    assert inbox.status_code == 200
    assert "Signed in as <strong>isp</strong>" in inbox.get_data(as_text=True)


def test_behind_tls_the_cookie_is_secure(site: Site) -> None:
    person = browser(pages_app(site, public_url=PUBLIC))

    token = csrf_of(person.get("/sign-in", base_url=PUBLIC))
    response = person.client.post(
        "/sign-in",
        data={"csrf_token": token, "token": token_of(site, "isp")},
        base_url=PUBLIC,
        headers={"Referer": PUBLIC + "/sign-in"},
    )

    assert response.status_code == 303
    assert "Secure" in session_cookie(response)


def test_only_the_hash_of_a_session_secret_is_stored(site_on_each_database: Site) -> None:
    site = site_on_each_database
    app = pages_app(site)
    person = signed_in(app, site, "isp")
    secret = _session_secret(person, app)

    with site.deployment.engine.connect() as connection:
        stored = [bytes(row.secret_hash) for row in connection.execute(select(sessions))]

    assert stored == [hashlib.sha256(secret.encode()).digest()] == [secret_hash(secret)]
    assert all(secret.encode() not in value for value in stored)


def _session_secret(person: object, app: object) -> str:
    """The session secret the browser's cookie carries (signed, not encrypted)."""
    from flask.sessions import SecureCookieSessionInterface

    cookie = person.client.get_cookie("custos_session")  # type: ignore[attr-defined]
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)  # type: ignore[arg-type]
    assert serializer is not None and cookie is not None
    data = serializer.loads(cookie.value)
    secret: str = data["sid"]
    return secret


def test_a_session_ends_after_thirty_idle_minutes(site: Site) -> None:
    person = signed_in(pages_app(site), site, "isp")
    site.clock.advance(29 * 60)
    assert person.get("/provider/orders").status_code == 200

    site.clock.advance(30 * 60 + 1)
    response = person.get("/provider/orders")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=/provider/orders")


def test_a_session_in_use_ends_twelve_hours_after_sign_in(site: Site) -> None:
    person = signed_in(pages_app(site), site, "isp")
    for _ in range(12 * 3 - 1):  # a request every 20 minutes, for 11 h 40 min
        site.clock.advance(20 * 60)
        assert person.get("/provider/orders").status_code == 200

    site.clock.advance(20 * 60)

    assert person.get("/provider/orders").status_code == 302


def test_revoking_a_principal_ends_its_sessions_at_once(site: Site) -> None:
    app = pages_app(site)
    person = signed_in(app, site, "isp")
    assert person.get("/provider/orders").status_code == 200

    site.deployment.principals.revoke("isp", site.deployment.principals.get("operator").actor)

    assert person.get("/provider/orders").status_code == 302


def test_signing_out_ends_the_session_even_for_a_copied_cookie(site: Site) -> None:
    app = pages_app(site)
    person = signed_in(app, site, "isp")
    cookie = person.client.get_cookie("custos_session")
    assert cookie is not None

    response = person.form("/provider/orders", "/sign-out", {})
    assert response.status_code == 303
    thief = browser(app)
    thief.client.set_cookie("custos_session", cookie.value)

    assert thief.get("/provider/orders").status_code == 302
    with site.deployment.engine.connect() as connection:
        assert connection.execute(select(sessions)).first() is None


def test_a_post_without_a_csrf_token_is_403_and_changes_nothing(site: Site) -> None:
    order_id = site.served()
    person = signed_in(pages_app(site), site, "isp")
    person.get(f"/provider/orders/{order_id}")  # the first read is recorded here
    size = site.deployment.ledger.size()

    refused = [
        person.client.post(f"/provider/orders/{order_id}/acknowledge"),
        person.client.post(f"/provider/orders/{order_id}/acknowledge", data={"csrf_token": "x"}),
        person.client.post(
            f"/provider/orders/{order_id}/object", data={"ground": "other", "details": "no"}
        ),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    assert site.deployment.ledger.size() == size
    assert site.show(order_id)["state"] == "served"


def test_a_csrf_token_of_another_session_is_refused(site: Site) -> None:
    order_id = site.served()
    app = pages_app(site)
    mallory = signed_in(app, site, "isp")
    token = csrf_of(mallory.get(f"/provider/orders/{order_id}"))
    victim = signed_in(app, site, "isp")

    response = victim.client.post(
        f"/provider/orders/{order_id}/acknowledge", data={"csrf_token": token}
    )

    assert response.status_code == 403
    assert site.show(order_id)["state"] == "served"


def test_the_api_never_takes_the_session_cookie(site: Site) -> None:
    person = signed_in(pages_app(site), site, "isp")

    response = person.get("/v1/provider/orders")

    assert response.status_code == 401


def test_the_pages_never_take_a_bearer_token(site: Site) -> None:
    response = browser(pages_app(site)).get(
        "/provider/orders", headers=bearer(token_of(site, "isp"))
    )

    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_the_api_takes_no_csrf_token(site: Site) -> None:
    order_id = site.served()

    response = site.client.post(
        f"/v1/provider/orders/{order_id}/acknowledge", headers=site.headers["isp"]
    )

    assert response.status_code == 200


def test_a_wrong_token_is_refused_and_the_form_says_so(site: Site) -> None:
    response = browser(pages_app(site)).sign_in("custos_wrong")

    assert response.status_code == 401
    assert "That token is not valid" in response.get_data(as_text=True)


def test_sign_in_failures_are_rate_limited_with_the_api_s_count(site: Site) -> None:
    app = pages_app(site, auth_failures_per_minute=3)
    person = browser(app)
    assert person.sign_in("custos_wrong1").status_code == 401
    assert (
        app.test_client().get("/v1/provider/orders", headers=bearer("custos_x")).status_code == 401
    )
    assert person.sign_in("custos_wrong2").status_code == 401

    refused = person.sign_in(token_of(site, "isp"))

    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    api = app.test_client().get("/v1/provider/orders", headers=site.headers["isp"])
    assert api.status_code == 429


def test_a_sign_in_link_works_once(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pages_app(site)
    _, secret, _ = site.deployment.sign_in.make_link(
        "isp", site.deployment.principals.get("operator").actor
    )
    first, second = browser(app), browser(app)

    landing = first.get(f"/sign-in/link/{secret}")
    assert landing.status_code == 200  # fetching the link uses nothing up
    used = first.form(f"/sign-in/link/{secret}", "/sign-in/link", {"secret": secret})
    again = second.form(f"/sign-in/link/{secret}", "/sign-in/link", {"secret": secret})

    assert used.status_code == 303 and used.headers["Location"] == "/provider/orders"
    assert first.get("/provider/orders").status_code == 200
    assert again.status_code == 401
    assert second.get("/provider/orders").status_code == 302


def test_a_sign_in_link_expires_after_fifteen_minutes(site: Site) -> None:
    app = pages_app(site)
    _, secret, expires = site.deployment.sign_in.make_link(
        "isp", site.deployment.principals.get("operator").actor
    )
    assert (expires - site.clock()).total_seconds() == 15 * 60
    site.clock.advance(15 * 60)

    response = browser(app).form(f"/sign-in/link/{secret}", "/sign-in/link", {"secret": secret})

    assert response.status_code == 401


def test_the_sign_in_page_returns_to_where_the_person_was_going(site: Site) -> None:
    order_id = site.served()
    person = browser(pages_app(site))
    redirected = person.get(f"/provider/orders/{order_id}")
    target = redirected.headers["Location"]
    page = person.get(target)

    response = person.client.post(
        "/sign-in",
        data={
            "csrf_token": csrf_of(page),
            "token": token_of(site, "isp"),
            "next": f"/provider/orders/{order_id}",
        },
    )

    assert response.headers["Location"] == f"/provider/orders/{order_id}"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_sign_in_never_sends_the_person_off_site(site: Site, target: str) -> None:
    person = browser(pages_app(site))

    response = person.form("/sign-in", "/sign-in", {"token": token_of(site, "isp"), "next": target})

    assert response.headers["Location"] == "/provider/orders"


def test_pages_send_a_strict_content_security_policy(site: Site) -> None:
    response = browser(pages_app(site)).get("/sign-in")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy


def test_login_link_prints_a_single_use_link_from_the_public_url(
    runner: CliRunner, home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_PUBLIC_URL", PUBLIC + "/")
    runner.invoke(main, ["principal", "add", "clerk", "--role", "court"], catch_exceptions=False)

    result = runner.invoke(main, ["principal", "login-link", "clerk", "--json"])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["url"].startswith(PUBLIC + "/sign-in/link/")
    assert printed["name"] == "clerk" and printed["role"] == "court"


def test_login_link_needs_a_public_url(runner: CliRunner, home: object) -> None:
    runner.invoke(main, ["principal", "add", "clerk", "--role", "court"], catch_exceptions=False)

    result = runner.invoke(main, ["principal", "login-link", "clerk"])

    assert result.exit_code != 0 and "public_url" in result.output
