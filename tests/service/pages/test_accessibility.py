"""axe-core on every page a person reads: every GET route of the pages, listed from the app's
URL map, in a real browser against the real server; no serious or critical violation."""

from __future__ import annotations

from typing import Any

import pytest

from service import create_app
from storage.deployment import open_deployment
from tests.service.pages.browser import Demo, chromium, demo_site

pytestmark = pytest.mark.slow
__all__ = ["chromium", "demo_site"]

# GET routes that answer a file to save, not a page to read.
DOWNLOADS = {
    "pages.static",
    "pages.provider.receipt_download",
    "pages.verify.keys",
    "pages.verify.verifier",
    "pages.court.bundle",
}
SERIOUS = ("serious", "critical")


def page_paths(site: Demo) -> dict[str, tuple[str | None, str]]:
    """Each page's endpoint: who reads it (None: signed out) and a path to it."""
    seeded = site.seeded
    return {
        "pages.sign_in.home": ("clerk.lisbon", "/"),
        "pages.sign_in.form": (None, "/sign-in"),
        "pages.sign_in.link": (None, "/sign-in/link/not-a-real-link"),
        "pages.sign_in.signed_in": ("eva.examiner", "/desk"),
        # An approver's link leads to the code's page: the first factor is all it has given.
        "pages.sign_in.second_factor_form": ("judge.costa", "/sign-in/second-factor"),
        "pages.provider.inbox": ("northwind.compliance", "/provider/orders"),
        "pages.provider.order": (
            "northwind.compliance",
            f"/provider/orders/{seeded.orders['emergency']}",
        ),
        "pages.provider.receipt": (
            "northwind.compliance",
            f"/provider/receipts/{seeded.items['response']}",
        ),
        "pages.court.items": ("clerk.lisbon", "/court/items"),
        "pages.court.item": ("clerk.lisbon", f"/court/items/{seeded.items['disk']}"),
        "pages.court.report": ("clerk.lisbon", f"/court/items/{seeded.items['disk']}/report"),
        "pages.verify.guide": ("clerk.lisbon", "/verify"),
    }


def get_endpoints(site: Demo) -> set[str]:
    deployment = open_deployment(site.config)
    try:
        app = create_app({"TESTING": True}, deployment=deployment)
        return {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("pages.") and "GET" in (rule.methods or ())
        }
    finally:
        deployment.close()


def serious_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def test_every_page_route_is_checked(demo_site: Demo) -> None:
    unchecked = get_endpoints(demo_site) - DOWNLOADS - set(page_paths(demo_site))

    assert unchecked == set(), "add these pages to page_paths (or DOWNLOADS)"


def signed_in_context(chromium: Any, site: Demo, name: str | None) -> Any:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    if name is not None:
        page = context.new_page()
        page.goto(site.sign_in_link(name))
        page.get_by_role("button", name="Continue to sign in").click()
        page.close()
    return context


def test_no_page_has_a_serious_or_critical_accessibility_violation(
    chromium: Any, demo_site: Demo
) -> None:
    found: dict[str, list[str]] = {}
    contexts: dict[str | None, Any] = {}
    for endpoint, (who, path) in sorted(page_paths(demo_site).items()):
        if who not in contexts:
            contexts[who] = signed_in_context(chromium, demo_site, who)
        page = contexts[who].new_page()
        response = page.goto(demo_site.url + path)
        assert response is not None and response.status == 200, (endpoint, path)
        found[endpoint] = serious_violations(page)
        page.close()

    assert {k: v for k, v in found.items() if v} == {}


def test_pages_with_errors_are_accessible_too(chromium: Any, demo_site: Demo) -> None:
    context = signed_in_context(chromium, demo_site, "northwind.compliance")
    page = context.new_page()
    page.goto(f"{demo_site.url}/provider/orders/{demo_site.seeded.orders['emergency']}")
    page.get_by_role("button", name="Send the objection").click()  # no ground chosen
    assert "There is a problem" in page.inner_text("main")
    form_errors = serious_violations(page)
    missing = page.goto(f"{demo_site.url}/provider/orders/ord_0000000000000000")
    assert missing is not None and missing.status == 404

    assert (form_errors, serious_violations(page)) == ([], [])
