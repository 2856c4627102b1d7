"""The admin's pages through the Flask test client: principals (add, name, sign-in links,
second factors, revoke, case memberships and courts' grants) and the provider register.

Each valid form is one ledger event, made by the domain as the API makes it, and shown; each
invalid one names every field at fault beside the field, keeps what was typed, and records
nothing; anyone but an admin is refused, and so is a form without this session's CSRF token.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from service.evidence import load_intake
from tests.factories import SEIZURE
from tests.service.pages.desks import Browser, browser, pages_app, signed_in
from tests.service.test_orders_api import Site, build_site

SIGN_IN_LINK = re.compile(r'value="(http://localhost/sign-in/link/[^"]+)"')
TOKEN = re.compile(r'id="token" class="secret" value="(custos_[^"]+)"')


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url)


@pytest.fixture
def app(site: Site) -> Flask:
    return pages_app(site)


@pytest.fixture
def admin(app: Flask, site: Site) -> Browser:
    return signed_in(app, site, "operator")


def text_of(response: TestResponse) -> str:
    return html.unescape(response.get_data(as_text=True))


def last_event(site: Site) -> dict[str, Any]:
    ledger = site.deployment.ledger
    event: dict[str, Any] = json.loads(ledger.entry(ledger.size() - 1))
    return event


def error_of(page: str, form: str, field: str) -> str:
    """The error shown beside one field of one form ('' if none)."""
    found = re.search(
        rf'id="{form}-{field}-error"><span class="visually-hidden">Error:</span> ([^<]*)</p>', page
    )
    return found.group(1) if found else ""


def value_of(page: str, form: str, field: str) -> str:
    found = re.search(rf'id="{form}-{field}" name="{field}" value="([^"]*)"', page)
    assert found, f"no field {form}-{field}"
    return html.unescape(found.group(1))


# -- principals ----------------------------------------------------------------------------------


def test_an_admin_s_desk_is_the_principals_list_with_role_provider_state_and_second_factor(
    admin: Browser, site: Site
) -> None:
    operator = site.deployment.principals.get("operator").actor
    site.deployment.principals.revoke("bob", operator)
    site.deployment.sign_in.enrol_totp("judge", operator)

    home = admin.get("/")
    listed = text_of(admin.get("/admin/principals"))

    assert home.headers["Location"] == "/admin/principals"
    rows = {
        name: row
        for row in re.findall(r"<tr>(.*?)</tr>", listed, re.S)
        for name in re.findall(r'href="/admin/principals/([^"]+)"', row)
    }
    assert set(rows) >= {"operator", "alice", "bob", "judge", "eve", "clerk", "isp"}
    assert "Revoked" in rows["bob"] and "Active" in rows["alice"]
    assert "Enrolled" in rows["judge"] and "Not enrolled" in rows["alice"]
    provider_name = site.deployment.providers.get(site.provider_id).name
    assert provider_name in rows["isp"] and "Provider" in rows["isp"]


def test_adding_a_principal_records_it_and_shows_its_token_once(admin: Browser, site: Site) -> None:
    added = admin.form(
        "/admin/principals/new",
        "/admin/principals",
        {"name": "ana.ruiz", "role": "examiner", "display_name": "Dr Ana Ruiz", "provider": ""},
    )

    assert added.status_code == 201
    page = text_of(added)
    assert "Dr Ana Ruiz is added" in page and "shown once" in page
    token = TOKEN.search(page)
    assert token is not None
    ana = site.deployment.principals.authenticate(token.group(1))
    assert (ana.name, ana.role, ana.display_name) == ("ana.ruiz", "examiner", "Dr Ana Ruiz")
    event = last_event(site)
    assert event["type"] == "principal.created" and event["subject"]["id"] == ana.id
    assert "Dr Ana Ruiz" not in json.dumps(event)  # a commitment, never the name
    shown = text_of(admin.get("/admin/principals/ana.ruiz"))
    assert "Principal created by operator" in shown and token.group(1) not in shown


def test_a_provider_principal_is_added_for_its_provider(admin: Browser, site: Site) -> None:
    added = admin.form(
        "/admin/principals/new",
        "/admin/principals",
        {"name": "isp.desk", "role": "provider", "provider": site.provider_id},
    )

    assert added.status_code == 201
    assert site.deployment.principals.get("isp.desk").provider_id == site.provider_id


def test_an_invalid_new_principal_names_every_field_at_once_keeps_the_answers_and_records_nothing(
    admin: Browser, site: Site
) -> None:
    size = site.deployment.ledger.size()
    answers = {"name": "Ana Ruiz", "display_name": " Ana", "email": "not-an-address"}

    refused = admin.form("/admin/principals/new", "/admin/principals", answers)

    assert refused.status_code == 422
    page = text_of(refused)
    assert "There is a problem" in page
    for field in ("name", "role", "display_name", "email"):
        assert error_of(page, "principal", field), field
        assert f'href="#principal-{field}"' in page
    assert error_of(page, "principal", "role") == "Choose a role."
    for field, typed in answers.items():
        assert value_of(page, "principal", field) == typed
    assert site.deployment.ledger.size() == size


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"name": "x1", "role": "provider"}, "provider", "Choose the provider"),
        ({"name": "x2", "role": "examiner", "provider": "PROVIDER"}, "provider", "choose none"),
        ({"name": "alice", "role": "examiner"}, "name", "exists already"),
        ({"name": "x3", "role": "provider", "provider": "prv_0000000000000000"}, "provider", "no"),
    ],
)
def test_a_new_principal_is_refused_beside_the_field_at_fault(
    admin: Browser, site: Site, answers: dict[str, str], field: str, message: str
) -> None:
    size = site.deployment.ledger.size()
    if answers.get("provider") == "PROVIDER":
        answers = {**answers, "provider": site.provider_id}

    refused = admin.form("/admin/principals/new", "/admin/principals", answers)

    assert refused.status_code == 422
    assert message.lower() in error_of(text_of(refused), "principal", field).lower()
    assert site.deployment.ledger.size() == size


def test_the_display_name_is_set_as_principal_named_and_a_bad_one_is_refused(
    admin: Browser, site: Site
) -> None:
    page = "/admin/principals/eve"
    size = site.deployment.ledger.size()

    refused = admin.form(page, "/admin/principals/eve/display-name", {"display_name": "Eve\tLind"})
    empty = admin.form(page, "/admin/principals/eve/display-name", {"display_name": ""})
    assert site.deployment.ledger.size() == size
    named = admin.form(page, "/admin/principals/eve/display-name", {"display_name": "Eve Lind"})

    assert refused.status_code == 422 and empty.status_code == 422
    assert "line-break" in error_of(text_of(refused), "named", "display_name")
    assert value_of(text_of(refused), "named", "display_name") == "Eve\tLind"
    assert error_of(text_of(empty), "named", "display_name") == "Enter a display name."
    assert named.status_code == 303
    assert last_event(site)["type"] == "principal.named"
    shown = text_of(admin.get(named.headers["Location"]))
    assert "<h1>Eve Lind</h1>" in shown and "(principal.named)" in shown
    assert site.deployment.principals.get("eve").display_name == "Eve Lind"


def test_a_sign_in_link_made_on_the_page_signs_its_principal_in_once(
    admin: Browser, app: Flask, site: Site
) -> None:
    made = admin.form("/admin/principals/eve", "/admin/principals/eve/sign-in-link", {})

    assert made.status_code == 201 and "shown once" in text_of(made)
    link = SIGN_IN_LINK.search(text_of(made))
    assert link is not None
    path = link.group(1).removeprefix("http://localhost")
    eve = browser(app)
    secret = path.rsplit("/", 1)[1]
    used = eve.form(path, "/sign-in/link", {"secret": secret})
    again = browser(app).form(path, "/sign-in/link", {"secret": secret})

    assert used.status_code == 303
    assert "Signed in as <strong>eve</strong>" in eve.get("/desk").get_data(as_text=True)
    assert again.status_code == 401


def test_a_sign_in_link_is_built_from_the_public_url_when_one_is_set(site: Site) -> None:
    app = pages_app(site, public_url="https://custos.example.org")
    made = signed_in(app, site, "operator")

    page = text_of(made.form("/admin/principals/eve", "/admin/principals/eve/sign-in-link", {}))

    assert 'value="https://custos.example.org/sign-in/link/' in page


def test_resetting_the_second_factor_shows_the_new_secret_once_and_the_old_one_stops(
    admin: Browser, site: Site
) -> None:
    operator = site.deployment.principals.get("operator").actor
    _, old_uri = site.deployment.sign_in.enrol_totp("judge", operator)

    reset = admin.form("/admin/principals/judge", "/admin/principals/judge/second-factor", {})

    assert reset.status_code == 201
    page = text_of(reset)
    secret = re.search(r'id="otp-secret" class="secret" value="([A-Z2-7]+)"', page)
    assert secret is not None and f"secret={secret.group(1)}" in page
    judge = site.deployment.principals.get("judge")
    assert site.deployment.sign_in.store.totp(judge.id) == secret.group(1)
    assert f"secret={secret.group(1)}" not in old_uri
    assert "Enrolled" in text_of(admin.get("/admin/principals/judge"))


def test_revoking_asks_first_then_records_it_and_ends_the_principal_s_session_at_once(
    admin: Browser, app: Flask, site: Site
) -> None:
    eve = signed_in(app, site, "eve")
    assert eve.get("/desk").status_code == 200

    confirm = admin.get("/admin/principals/eve/revoke")
    assert site.deployment.principals.get("eve").active  # asking changes nothing
    revoked = admin.form("/admin/principals/eve/revoke", "/admin/principals/eve/revoke", {})

    assert confirm.status_code == 200 and "cannot be undone" in text_of(confirm)
    assert revoked.status_code == 303
    assert last_event(site)["type"] == "principal.revoked"
    assert "Revoked" in text_of(admin.get(revoked.headers["Location"]))
    after = eve.get("/desk")
    assert after.status_code == 302 and after.headers["Location"].startswith("/sign-in")
    # A revoked principal offers no more sign-in link, and the confirmation leads back.
    assert admin.get("/admin/principals/eve/revoke").status_code == 302


# -- case memberships and grants -------------------------------------------------------------------


def test_a_principal_is_added_to_a_case_in_a_role_and_removed_from_it(
    admin: Browser, site: Site
) -> None:
    site.deployment.principals.add(
        "rui", "examiner", site.deployment.principals.get("operator").actor
    )
    page = "/admin/principals/rui"

    added = admin.form(page, "/admin/principals/rui/cases", {"case": "CASE-2", "role": "lead"})

    assert added.status_code == 303
    event = last_event(site)
    rui = site.deployment.principals.get("rui")
    assert event["type"] == "case.member_added"
    assert event["data"] == {"principal": rui.id, "role": "lead"}
    shown = text_of(admin.get(added.headers["Location"]))
    assert "(case.member_added)" in shown and "CASE-2 title" in shown
    case = site.deployment.cases.store.by_reference("CASE-2")
    assert case is not None
    removed = admin.form(page, f"/admin/principals/rui/cases/{case.id}/remove", {})
    assert removed.status_code == 303 and last_event(site)["type"] == "case.member_removed"
    assert "CASE-2 title" not in text_of(admin.get(page))


def test_an_invalid_membership_names_every_field_and_records_nothing(
    admin: Browser, site: Site
) -> None:
    size = site.deployment.ledger.size()
    page = "/admin/principals/eve"

    both = admin.form(page, "/admin/principals/eve/cases", {"case": "", "role": "owner"})
    unknown = admin.form(page, "/admin/principals/eve/cases", {"case": "NO-SUCH", "role": "member"})
    twice = admin.form(page, "/admin/principals/eve/cases", {"case": "CASE-1", "role": "member"})

    assert (both.status_code, unknown.status_code, twice.status_code) == (422, 422, 422)
    assert error_of(text_of(both), "member", "case") == "Enter the case's reference."
    assert "lead or member" in error_of(text_of(both), "member", "role")
    assert error_of(text_of(unknown), "member", "case") == "There is no case with this reference."
    assert value_of(text_of(unknown), "member", "case") == "NO-SUCH"
    assert "already" in error_of(text_of(twice), "member", "case")
    assert site.deployment.ledger.size() == size


def test_a_court_is_granted_a_case_until_the_end_of_a_day_and_the_grant_is_ended(
    admin: Browser, site: Site
) -> None:
    operator = site.deployment.principals.get("operator").actor
    site.deployment.principals.add("court2", "court", operator)
    page = "/admin/principals/court2"
    answers = {"case": "CASE-7", "proceeding": "Trial 7/27", "last_day": "2027-03-31"}

    granted = admin.form(page, "/admin/principals/court2/grants", answers)

    assert granted.status_code == 303
    event = last_event(site)
    assert event["type"] == "case.court_granted"
    assert event["data"]["ends_at"].startswith("2027-04-01T00:00:00")
    shown = text_of(admin.get(page))
    assert "Trial 7/27" in shown and "Running" in shown
    grant = re.search(r'action="(/admin/principals/court2/grants/[^"]+/end)"', shown)
    assert grant is not None
    ended = admin.form(page, grant.group(1), {})
    assert ended.status_code == 303 and last_event(site)["type"] == "case.grant_ended"
    assert "Ended" in text_of(admin.get(page))


def test_an_invalid_grant_names_every_field_at_once_and_records_nothing(
    admin: Browser, site: Site
) -> None:
    size = site.deployment.ledger.size()
    page = "/admin/principals/clerk"

    empty = admin.form(page, "/admin/principals/clerk/grants", {})
    wrong = admin.form(
        page,
        "/admin/principals/clerk/grants",
        {"case": "NOPE", "proceeding": "x" * 201, "last_day": "31/03/2027"},
    )
    past = admin.form(
        page,
        "/admin/principals/clerk/grants",
        {"case": "CASE-1", "proceeding": "Trial", "last_day": "2026-01-01"},
    )

    for refused in (empty, wrong, past):
        assert refused.status_code == 422
    assert [
        bool(error_of(text_of(empty), "grant", f)) for f in ("case", "proceeding", "last_day")
    ] == [True] * 3
    assert [
        bool(error_of(text_of(wrong), "grant", f)) for f in ("case", "proceeding", "last_day")
    ] == [True] * 3
    assert value_of(text_of(wrong), "grant", "last_day") == "31/03/2027"
    assert "future" in error_of(text_of(past), "grant", "last_day")
    assert site.deployment.ledger.size() == size


# -- providers -------------------------------------------------------------------------------------

PROVIDER = {
    "name": "Contoso Cloud",
    "jurisdiction": "NL",
    "legal_representative": "Contoso Legal",
    "contact": "lawful@contoso.example",
    "time_zone": "Europe/Amsterdam",
    "country": "NL",
    "subdivision": "",
    "languages": "nl, en",
    "notification_url": "https://contoso.example/custos/notices",
}


def test_a_provider_is_registered_with_its_place_and_notification_url(
    admin: Browser, site: Site
) -> None:
    added = admin.form("/admin/providers/new", "/admin/providers", PROVIDER)

    assert added.status_code == 303
    event = last_event(site)
    assert event["type"] == "provider.registered"
    assert event["data"] == {"name": "Contoso Cloud", "jurisdiction": "NL"}
    provider = site.deployment.providers.get(event["subject"]["id"])
    assert (provider.time_zone, provider.country, provider.languages) == (
        "Europe/Amsterdam",
        "NL",
        ("nl", "en"),
    )
    listed = text_of(admin.get(added.headers["Location"]))
    assert "Registered Contoso Cloud" in listed and "Europe/Amsterdam" in listed
    assert "https://contoso.example/custos/notices" in listed


def test_an_invalid_provider_names_every_field_at_once_with_the_url_policy_s_refusal(
    admin: Browser, site: Site
) -> None:
    size = site.deployment.ledger.size()
    answers = {
        **PROVIDER,
        "name": "",
        "contact": "",
        "time_zone": "Mars/Olympus",
        "country": "XX",
        "languages": "english!",
        "notification_url": "http://10.1.2.3/hook",
    }

    refused = admin.form("/admin/providers/new", "/admin/providers", answers)

    assert refused.status_code == 422
    page = text_of(refused)
    for field in ("name", "contact", "time_zone", "country", "languages", "notification_url"):
        assert error_of(page, "provider", field), field
    assert "public" in error_of(page, "provider", "notification_url")
    summary = re.findall(r'<li><a href="#provider-([a-z_]+)"', page)
    assert summary == ["name", "contact", "time_zone", "country", "languages", "notification_url"]
    for field in ("time_zone", "notification_url", "jurisdiction"):
        assert value_of(page, "provider", field) == answers[field]
    assert site.deployment.ledger.size() == size


def test_a_second_provider_of_the_same_name_is_refused_beside_the_name(
    admin: Browser, site: Site
) -> None:
    name = site.deployment.providers.get(site.provider_id).name
    size = site.deployment.ledger.size()

    refused = admin.form("/admin/providers/new", "/admin/providers", {**PROVIDER, "name": name})

    assert refused.status_code == 422
    assert "exists already" in error_of(text_of(refused), "provider", "name")
    assert site.deployment.ledger.size() == size


# -- who may ------------------------------------------------------------------------------------


def admin_routes(app: Flask) -> list[tuple[str, str]]:
    """Every admin route, each method, with its variables filled in."""
    filled = {"name": "eve", "case_id": "cs_0000000000000000", "grant_id": "gr_0000000000000000"}
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("pages.admin.", "pages.admin_providers.")):
            path = rule.build(filled)
            assert path is not None
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                routes.append((method, path[1]))
    return routes


def test_anyone_but_an_admin_is_refused_every_admin_page_and_form(app: Flask, site: Site) -> None:
    size = site.deployment.ledger.size()
    routes = admin_routes(app)
    assert len(routes) >= 15
    for name in ("eve", "alice", "clerk", "isp"):
        person = signed_in(app, site, name)
        token = re.search(
            r'name="csrf_token" value="([^"]+)"', person.get("/verify").get_data(as_text=True)
        )
        assert token is not None
        for method, path in routes:
            response = person.client.open(path, method=method, data={"csrf_token": token.group(1)})
            assert response.status_code == 403, (name, method, path)
    signed_out = browser(app)
    for method, path in routes:
        if method == "GET":
            response = signed_out.get(path)
            assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert site.deployment.ledger.size() == size


def test_a_forged_form_without_the_session_s_token_is_refused_and_changes_nothing(
    admin: Browser, site: Site
) -> None:
    size = site.deployment.ledger.size()

    forged = [
        admin.client.post("/admin/principals", data={"name": "mallory", "role": "admin"}),
        admin.client.post("/admin/principals/eve/revoke"),
        admin.client.post("/admin/principals/eve/cases", data={"case": "CASE-2", "role": "lead"}),
        admin.client.post("/admin/providers", data=PROVIDER),
        admin.client.post("/admin/principals/eve/sign-in-link"),
    ]

    assert [r.status_code for r in forged] == [403] * len(forged)
    assert site.deployment.ledger.size() == size
    assert site.deployment.principals.get("eve").active


def test_the_admin_s_pages_show_no_item_of_a_case(admin: Browser, site: Site) -> None:
    metadata = load_intake(
        {
            "kind": "physical",
            "case": "CASE-1",
            "exhibit": "EX-SECRET",
            "description": "the suspect's diary",
            "seizure": SEIZURE,
        }
    )
    item = site.deployment.intake.register_physical(metadata, site.actors["eve"])

    pages = [
        admin.get(path)
        for path in ("/admin/principals", "/admin/principals/eve", "/admin/providers")
    ]

    for page in pages:
        text = text_of(page)
        assert "the suspect's diary" not in text and "EX-SECRET" not in text
        assert item.event.subject.id not in text
