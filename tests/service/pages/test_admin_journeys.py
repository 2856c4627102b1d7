"""The admin's journeys in a real browser (Chromium through Playwright) against the real
server: add an examiner, make them a member of a case, give them a sign-in link they sign in
with, revoke them (their open session ends at once); register a provider."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.service.pages.browser import (
    Demo,
    chromium,
    demo,
    demo_site,
    screenshot,
    sign_in_with_code,
)

pytestmark = pytest.mark.slow
__all__ = ["chromium", "demo_site"]


def items_of_case(site: Demo, token: str, case: str) -> int:
    """How many items of ``case`` the API gives the holder of ``token``."""
    request = urllib.request.Request(
        f"{site.url}/v1/evidence?case={case}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return len(json.load(answer)["items"])


def signed_in_admin(chromium: Any, site: Demo) -> Any:
    """A page of the admin's own browser, signed in with a link and a code."""
    page = chromium.new_context(viewport={"width": 1200, "height": 900}).new_page()
    sign_in_with_code(page, site, "operator")
    return page


def test_an_admin_adds_an_examiner_to_a_case_who_signs_in_with_a_link_until_revoked(
    chromium: Any, demo_site: Demo
) -> None:
    site = demo_site
    admin = signed_in_admin(chromium, site)
    assert admin.get_by_role("heading", level=1).inner_text() == "Principals"
    assert "Judge Marta Costa" in admin.inner_text("main")
    screenshot(admin, "admin-principals")

    # A form sent with mistakes says what each is, beside it, and keeps what was typed.
    admin.get_by_role("link", name="Add a principal").click()
    admin.get_by_label("Name", exact=True).fill("Lena Berg")
    admin.get_by_role("button", name="Add the principal").click()
    assert "There is a problem" in admin.inner_text("main")
    assert "Choose a role." in admin.inner_text("main")
    assert admin.get_by_label("Name", exact=True).input_value() == "Lena Berg"
    screenshot(admin, "admin-add-principal-errors")
    admin.get_by_label("Name", exact=True).fill("lena.berg")
    admin.get_by_label("Display name (optional)").fill("Lena Berg")
    admin.get_by_label("Examiner").check()
    admin.get_by_role("button", name="Add the principal").click()
    assert admin.get_by_role("heading", level=1).inner_text() == "Lena Berg is added"
    token = admin.locator("#token").input_value()
    screenshot(admin, "admin-principal-added")

    admin.get_by_role("link", name="Go to Lena Berg’s page").click()
    assert items_of_case(site, token, demo.CASE) == 0  # no case of hers yet
    admin.get_by_label("Case reference").fill(demo.CASE)
    admin.get_by_label("Member: reads and acts on its items and orders").check()
    admin.get_by_role("button", name="Add to the case").click()
    assert "Added to the case. It is recorded in the ledger" in admin.inner_text("main")
    assert "Ransomware attack on Hospital Santa Luzia" in admin.inner_text("main")
    assert items_of_case(site, token, demo.CASE) > 0
    screenshot(admin, "admin-principal")

    admin.get_by_role("button", name="Make a sign-in link").click()
    assert "This link is shown once" in admin.inner_text("main")
    link = admin.locator("#link").input_value()
    screenshot(admin, "admin-sign-in-link")

    examiner = chromium.new_context(viewport={"width": 1200, "height": 900}).new_page()
    examiner.goto(link)
    examiner.get_by_role("button", name="Continue to sign in").click()
    assert "Signed in as Lena Berg (examiner)" in examiner.inner_text("header")

    admin.goto(f"{site.url}/admin/principals/lena.berg")
    admin.get_by_role("link", name="Revoke lena.berg").click()
    assert "This cannot be undone" in admin.inner_text("main")
    screenshot(admin, "admin-revoke")
    admin.get_by_role("button", name="Revoke lena.berg").click()
    assert "Revoked: the token no longer works" in admin.inner_text("main")

    examiner.reload()
    assert "/sign-in" in examiner.url
    assert "Signed in as" not in examiner.inner_text("body")
    with pytest.raises(urllib.error.HTTPError) as refused:
        items_of_case(site, token, demo.CASE)
    assert refused.value.code == 401


def test_an_admin_registers_a_provider_after_the_url_policy_refuses_its_first_address(
    chromium: Any, demo_site: Demo
) -> None:
    site = demo_site
    admin = signed_in_admin(chromium, site)
    admin.get_by_role("link", name="Providers").click()
    admin.get_by_role("link", name="Register a provider").click()
    admin.get_by_label("Name").fill("Fabrikam Chat")
    admin.get_by_label("Jurisdiction").fill("DE")
    admin.get_by_label("Legal representative").fill("Fabrikam Legal GmbH")
    admin.get_by_label("Contact").fill("lawful@fabrikam.example")
    admin.get_by_label("Time zone (optional)").fill("Europe/Munich")
    admin.get_by_label("Country (optional)").fill("DE")
    admin.get_by_label("Subdivision (optional)").fill("BY")
    admin.get_by_label("Languages (optional)").fill("de, en")
    admin.get_by_label("Notification URL (optional)").fill("http://10.20.30.40/notices")
    admin.get_by_role("button", name="Register the provider").click()

    main = admin.inner_text("main")
    assert "There is a problem" in main and "not public" in main and "Time zone" in main
    assert admin.get_by_label("Legal representative").input_value() == "Fabrikam Legal GmbH"
    screenshot(admin, "admin-provider-errors")
    admin.get_by_label("Time zone (optional)").fill("Europe/Berlin")
    admin.get_by_label("Notification URL (optional)").fill("https://fabrikam.example/notices")
    admin.get_by_role("button", name="Register the provider").click()

    assert "Registered Fabrikam Chat" in admin.inner_text("main")
    row = admin.get_by_role("row").filter(has_text="Fabrikam Chat")
    assert "Europe/Berlin" in row.inner_text() and "DE (BY)" in row.inner_text()
    screenshot(admin, "admin-providers")
