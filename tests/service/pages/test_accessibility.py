"""axe-core on every page a person reads: every GET route of the pages, listed from the app's
URL map, in a real browser against the real server; no serious or critical violation."""

from __future__ import annotations

from typing import Any

import pytest

from service import create_app
from storage.deployment import open_deployment
from tests.service.pages.browser import Demo, chromium, demo, demo_site, sign_in_with_code

pytestmark = pytest.mark.slow
__all__ = ["chromium", "demo_site"]

# GET routes that answer a file to save, not a page to read.
DOWNLOADS = {
    "pages.static",
    "pages.provider.receipt_download",
    "pages.verify.keys",
    "pages.verify.verifier",
    "pages.court.bundle",
    "pages.examiner.bundle",
    "pages.examiner.receipt",
    "pages.authority.note",
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
        "pages.admin.principals": ("operator", "/admin/principals"),
        "pages.admin.new_principal": ("operator", "/admin/principals/new"),
        "pages.admin.principal": ("operator", "/admin/principals/eva.examiner"),
        "pages.admin.confirm_revoke": ("operator", "/admin/principals/rui.custodian/revoke"),
        "pages.admin_providers.providers": ("operator", "/admin/providers"),
        "pages.admin_providers.new_provider": ("operator", "/admin/providers/new"),
        # The authority's desk: the board, its lists, drafting, a draft's preview, an order
        # awaiting approval, a served one and its printable page.
        "pages.authority.board": ("ana.ribeiro", "/authority/orders"),
        "pages.authority.listing": ("ana.ribeiro", "/authority/orders/list/all"),
        "pages.authority.approvals": ("ana.ribeiro", "/authority/approvals"),
        "pages.authority.new": ("ana.ribeiro", "/authority/orders/new"),
        "pages.authority.edit": ("ana.ribeiro", f"/authority/orders/{seeded.orders['draft']}/edit"),
        "pages.authority.order": ("ana.ribeiro", f"/authority/orders/{seeded.orders['draft']}"),
        "pages.authority.order (awaiting approval)": (
            "ana.ribeiro",
            f"/authority/orders/{seeded.orders['submitted']}",
        ),
        "pages.authority.order (objected)": (
            "ana.ribeiro",
            f"/authority/orders/{seeded.orders['objected']}",
        ),
        "pages.authority.printable": (
            "ana.ribeiro",
            f"/authority/orders/{seeded.orders['objected']}/printable",
        ),
        **examiner_paths(site),
    }


def examiner_paths(site: Demo) -> dict[str, tuple[str | None, str]]:
    """The examiner's pages: the case list with a search, the case, an item (with its act
    forms, timeline and receipt) and the intake forms."""
    deployment = open_deployment(site.config)
    try:
        case = deployment.cases.store.by_reference(demo.CASE)
    finally:
        deployment.close()
    assert case is not None
    disk = site.seeded.items["disk"]
    return {
        "pages.examiner.cases": ("eva.examiner", "/examiner/cases?q=EX-0"),
        "pages.examiner.case": ("eva.examiner", f"/examiner/cases/{case.id}"),
        "pages.examiner.item": ("eva.examiner", f"/examiner/items/{disk}"),
        "pages.examiner_intake.register": ("eva.examiner", f"/examiner/cases/{case.id}/register"),
        "pages.examiner_intake.upload_form": ("eva.examiner", f"/examiner/cases/{case.id}/upload"),
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
    checked = {endpoint.split(" ")[0] for endpoint in page_paths(demo_site)}
    unchecked = get_endpoints(demo_site) - DOWNLOADS - checked

    assert unchecked == set(), "add these pages to page_paths (or DOWNLOADS)"


def signed_in_context(chromium: Any, site: Demo, name: str | None) -> Any:
    """A browser context with one page, signed in as ``name`` (or anonymous). The sign-in
    page is left open and settled: closing it while its redirect was still in flight raced
    the session cookie and, now and then, hung Chromium's close."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    if name == "operator":  # an admin signs in with a second factor too
        sign_in_with_code(page, site, name)
    elif name is not None:
        page.goto(site.sign_in_link(name))
        page.get_by_role("button", name="Continue to sign in").click()
        page.wait_for_url(lambda url: "/sign-in/link" not in url)  # the desk, or a code
    page.wait_for_load_state()
    return context


def test_no_page_has_a_serious_or_critical_accessibility_violation(
    chromium: Any, demo_site: Demo
) -> None:
    found: dict[str, list[str]] = {}
    contexts: dict[str | None, Any] = {}
    for endpoint, (who, path) in sorted(page_paths(demo_site).items()):
        if who not in contexts:
            contexts[who] = signed_in_context(chromium, demo_site, who)
        page = contexts[who].pages[0]
        response = page.goto(demo_site.url + path)
        assert response is not None and response.status == 200, (endpoint, path)
        found[endpoint] = serious_violations(page)

    assert {k: v for k, v in found.items() if v} == {}


def test_pages_with_errors_are_accessible_too(chromium: Any, demo_site: Demo) -> None:
    page = signed_in_context(chromium, demo_site, "northwind.compliance").pages[0]
    page.goto(f"{demo_site.url}/provider/orders/{demo_site.seeded.orders['emergency']}")
    page.get_by_role("button", name="Send the objection").click()  # no ground chosen
    assert "There is a problem" in page.inner_text("main")
    form_errors = serious_violations(page)
    missing = page.goto(f"{demo_site.url}/provider/orders/ord_0000000000000000")
    assert missing is not None and missing.status == 404

    assert (form_errors, serious_violations(page)) == ([], [])


def test_the_admin_s_answers_and_forms_with_errors_are_accessible(
    chromium: Any, demo_site: Demo
) -> None:
    """The pages a form answers with (a token, a sign-in link, a second factor shown once;
    a form sent back with its errors), which no GET reaches, and a court's page."""
    page = signed_in_context(chromium, demo_site, "operator").pages[0]
    found: dict[str, list[str]] = {}
    page.goto(f"{demo_site.url}/admin/principals/new")
    page.get_by_role("button", name="Add the principal").click()
    found["new principal, with errors"] = serious_violations(page)
    page.get_by_label("Name", exact=True).fill("axe.check")
    page.get_by_label("Approver").check()
    page.get_by_role("button", name="Add the principal").click()
    found["principal added"] = serious_violations(page)
    page.get_by_role("button", name="Enrol a second factor").click()
    found["second factor"] = serious_violations(page)
    page.goto(f"{demo_site.url}/admin/principals/axe.check")
    page.get_by_role("button", name="Make a sign-in link").click()
    found["sign-in link"] = serious_violations(page)
    page.goto(f"{demo_site.url}/admin/principals/clerk.lisbon")
    page.get_by_role("button", name="Grant the case").click()
    found["court's page, grant with errors"] = serious_violations(page)
    page.goto(f"{demo_site.url}/admin/providers/new")
    page.get_by_role("button", name="Register the provider").click()
    assert "There is a problem" in page.inner_text("main")
    found["new provider, with errors"] = serious_violations(page)

    assert {k: v for k, v in found.items() if v} == {}


def test_the_examiner_s_forms_with_errors_are_accessible_too(
    chromium: Any, demo_site: Demo
) -> None:
    page = signed_in_context(chromium, demo_site, "eva.examiner").pages[0]
    page.goto(f"{demo_site.url}/examiner/items/{demo_site.seeded.items['mail']}")
    for summary in page.locator("details.act summary").all():
        summary.click()  # every act form open, as a reader may open them
    act_forms = serious_violations(page)
    page.get_by_role("button", name="Record the seal").click()  # no seal number
    assert "There is a problem" in page.inner_text("main")
    act_errors = serious_violations(page)
    page.goto(f"{demo_site.url}/examiner/cases")
    page.get_by_role("link", name=demo.CASE).click()
    page.get_by_role("link", name="Register a physical item").click()
    page.get_by_role("button", name="Register the item").click()  # nothing filled in
    assert "There is a problem" in page.inner_text("main")

    assert (act_forms, act_errors, serious_violations(page)) == ([], [], [])


def test_the_drafting_form_with_its_errors_is_accessible(chromium: Any, demo_site: Demo) -> None:
    page = signed_in_context(chromium, demo_site, "ana.ribeiro").pages[0]
    page.goto(f"{demo_site.url}/authority/orders/new")
    page.get_by_role("button", name="Save the draft").click()  # nothing filled in
    assert "There is a problem" in page.inner_text("main")
    draft_errors = serious_violations(page)
    page.goto(f"{demo_site.url}/authority/orders/{demo_site.seeded.orders['objected']}")
    page.get_by_role("button", name="Answer the objection").click()  # no answer given
    assert "There is a problem" in page.inner_text("main")

    assert (draft_errors, serious_violations(page)) == ([], [])
