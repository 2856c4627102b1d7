"""The provider's and the court's journeys in a real browser (Chromium through Playwright)
against the real server, and what they download verified with the one-file verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.service.pages.browser import (
    Demo,
    chromium,
    demo_site,
    one_file_verifier,
    run_verifier,
    screenshot,
)

pytestmark = pytest.mark.slow
__all__ = ["chromium", "demo_site"]


def sign_in(page: Any, site: Demo, name: str) -> None:
    page.goto(site.sign_in_link(name))
    page.get_by_role("button", name="Continue to sign in").click()


def test_provider_journey_from_a_sign_in_link_to_a_verified_receipt(
    chromium: Any, demo_site: Demo, tmp_path: Path
) -> None:
    site = demo_site
    order_id = site.seeded.orders["served"]
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    sign_in(page, site, "northwind.compliance")
    assert page.get_by_role("heading", level=1).inner_text() == "Orders served on Northwind Mail"
    assert page.locator("tr.overdue").count() == 1  # the seeded overdue order, marked
    screenshot(page, "provider-inbox")

    page.get_by_role("link", name="PO-2026-0110").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Production order PO-2026-0110"
    assert "Served, awaiting acknowledgement" in page.inner_text("main")
    page.get_by_role("button", name="Acknowledge receipt").click()
    assert "Done: acknowledge receipt" in page.inner_text("main")

    # An objection missing its details is sent back with the error, and what was chosen kept.
    page.get_by_label("Other (explain below)").check()
    page.get_by_role("button", name="Send the objection").click()
    assert "There is a problem" in page.inner_text("main")
    assert page.get_by_label("Other (explain below)").is_checked()
    page.get_by_label("The order does not contain sufficient information to execute it").check()
    page.get_by_label("Details").fill("No account at Northwind matches the identifiers given.")
    screenshot(page, "provider-objection")
    page.get_by_role("button", name="Send the objection").click()
    assert "Objected, awaiting the authority" in page.inner_text("main")

    site.api(
        "POST",
        f"/v1/orders/{order_id}/answer-objection",
        "ana.ribeiro",
        {"answer": "The mailbox is payme-now@northwind.example; it is on your service."},
    )
    page.reload()
    assert "The mailbox is payme-now@northwind.example" in page.inner_text("main")

    # With the script: the file goes up as a raw body with a progress bar.
    content = b"subscriber: payme-now\ncreated: 2025-11-30\n" * 1000
    upload = tmp_path / "subscriber.csv"
    upload.write_bytes(content)
    page.get_by_label("Description").fill("Subscriber records of payme-now")
    page.get_by_label("File").set_input_files(str(upload))
    page.get_by_role("button", name="Send the file").click()
    page.wait_for_url("**/provider/receipts/**")
    assert "Received. The file is preserved" in page.inner_text("main")
    screenshot(page, "provider-receipt")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the receipt").click()
    receipt = tmp_path / "receipt.json"
    download.value.save_as(receipt)

    verifier, keys = one_file_verifier(tmp_path, page, site.url)
    screenshot(page, "verify-offline")
    checked = run_verifier(verifier, keys, "receipt", str(receipt))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    page.goto(f"{site.url}/provider/orders/{order_id}")
    page.get_by_role("button", name="Declare the production complete").click()
    assert "Produced (complete)" in page.inner_text("main")
    # Only the objection sent without its details was refused (422, the page said why).
    assert [e for e in errors if "status of 422" not in e] == []


def test_a_provider_without_javascript_sends_a_file_with_the_plain_form(
    chromium: Any, demo_site: Demo, tmp_path: Path
) -> None:
    site = demo_site
    order_id = site.seeded.orders["acknowledged"]
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, site, "northwind.compliance")
    page.goto(f"{site.url}/provider/orders/{order_id}")
    upload = tmp_path / "logs.txt"
    upload.write_bytes(b"login 2026-01-03T02:14Z 203.0.113.77\n" * 500)

    page.get_by_label("Description").fill("Login records")
    page.get_by_label("File").set_input_files(str(upload))
    page.get_by_role("button", name="Send the file").click()

    assert "/provider/receipts/" in page.url
    assert "Received. The file is preserved" in page.inner_text("main")
    sha256 = __import__("hashlib").sha256(upload.read_bytes()).hexdigest()
    assert sha256 in page.inner_text("main")
    context.close()


def test_court_journey_from_sign_in_to_a_verified_bundle(
    chromium: Any, demo_site: Demo, tmp_path: Path
) -> None:
    site = demo_site
    page = chromium.new_page(viewport={"width": 1200, "height": 900})

    sign_in(page, site, "clerk.lisbon")
    assert page.get_by_role("heading", level=1).inner_text() == "Evidence items"
    screenshot(page, "court-items")
    page.get_by_role("link", name="EX-02 disk image", exact=True).click()
    screenshot(page, "court-item")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the exhibit bundle").click()
    bundle = tmp_path / "exhibit.zip"
    download.value.save_as(bundle)
    page.get_by_role("link", name="Read the custody report").click()
    assert "VERIFIED" in page.inner_text("body").upper()
    screenshot(page, "court-report")

    verifier, keys = one_file_verifier(tmp_path, page, site.url)
    checked = run_verifier(verifier, keys, str(bundle))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_authority_journey_from_a_draft_with_faults_to_an_order_served_and_due(
    chromium: Any, demo_site: Demo
) -> None:
    """Draft with two invalid fields, both reported at once; fix them; preview; submit; a
    second person (the approver, with the second factor) approves; the drafter had no approve
    button and its forged approval is refused; the board shows the order served and due."""
    import pyotp

    site = demo_site
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    sign_in(page, site, "ana.ribeiro")
    assert page.get_by_role("heading", level=1).inner_text() == "Orders"
    screenshot(page, "authority-board")

    page.get_by_role("link", name="Draft a new order").click()
    page.fill("#f-reference", "PO-2026-0120")
    page.select_option("#f-case", "CASE-2026-0417")
    page.select_option("#f-provider", label="Northwind Mail")
    page.check("#f-kind-production")
    page.select_option("#f-legal-basis-instrument", "un_cybercrime_art27")
    page.fill("#f-legal-basis-citation", "Code of Criminal Procedure, art. 189")
    page.fill("#f-issuing-authority-name", "Investigating judge, Lisbon Criminal Court")
    # The issuing authority's type is left unchosen.
    page.fill("#f-issuing-authority-file-number", "417/26.3JGLSB")
    page.fill("#f-issuing-authority-contact", "jic.lisboa@tribunais.example.org")
    page.fill("#f-offence-description", "Ransomware extortion of a hospital")
    page.fill("#f-offence-provision", "Penal Code, art. 223")
    page.fill("#f-facts", "The hospital's records system was encrypted on 3 January 2026.")
    page.fill("#f-link", "The ransom note names the mailbox below.")
    page.fill("#f-necessity-and-proportionality", "One identifier, for two months.")
    page.select_option("#f-targets-0-type", "email")
    page.fill("#f-targets-0-value", "payme-now@northwind.example")
    page.select_option("#f-targets-1-type", "ip")
    page.fill("#f-targets-1-value", "203.0.113.77")  # with no time of use
    page.check("#f-data-categories-subscriber-box")
    page.get_by_role("button", name="Save the draft").click()

    summary = page.locator(".error-summary").inner_text()
    assert "Type of the issuing authority: required" in summary
    assert "Target 2, time of use (UTC): required for an ip target" in summary
    assert page.locator("#f-issuing-authority-type-error").is_visible()
    assert page.locator("#f-targets-1-time-error").is_visible()
    assert page.input_value("#f-targets-1-value") == "203.0.113.77"  # kept as typed
    screenshot(page, "authority-draft-errors")

    page.select_option("#f-issuing-authority-type", "judge")
    page.fill("#f-targets-1-time", "2026-01-03T02:14")
    page.get_by_role("button", name="Save the draft").click()
    assert "Done: draft saved" in page.inner_text("main")
    assert "What the provider will see" in page.inner_text("main")
    assert "203.0.113.77" in page.locator(".document").inner_text()
    screenshot(page, "authority-preview")
    order_url = page.url.split("?")[0]
    page.get_by_role("button", name="Submit for approval").click()
    assert "Awaiting approval" in page.inner_text("main")
    assert page.get_by_role("button", name="Approve and serve the order").count() == 0
    token = page.locator("input[name=csrf_token]").first.input_value()
    forged = page.request.post(f"{order_url}/approve", form={"csrf_token": token})
    assert forged.status == 403

    judge = chromium.new_page(viewport={"width": 1200, "height": 900})
    judge.goto(site.sign_in_link("judge.costa"))
    judge.get_by_role("button", name="Continue to sign in").click()
    judge.get_by_label("Code").fill(
        pyotp.parse_uri(site.seeded.second_factors["judge.costa"]).now()
    )
    judge.get_by_role("button", name="Sign in").click()
    assert judge.get_by_role("heading", level=1).inner_text() == "Orders awaiting approval"
    screenshot(judge, "authority-approvals")
    judge.get_by_role("link", name="PO-2026-0120").click()
    judge.get_by_role("button", name="Approve and serve the order").click()
    assert "Done: approve and serve the order" in judge.inner_text("main")
    judge.close()

    page.goto(f"{site.url}/authority/orders")
    not_received = page.locator(
        "section", has=page.get_by_role("heading", name="Not yet received by the provider")
    )
    row = not_received.locator("tr", has_text="PO-2026-0120")
    assert "Served, awaiting acknowledgement" in row.inner_text()
    assert "Runs from the provider's receipt" in row.inner_text()
    site.api("GET", f"/v1/provider/orders/{order_url.rsplit('/', 1)[1]}", "northwind.compliance")
    page.goto(f"{site.url}/authority/orders/list/all")
    listed = page.locator("tr", has_text="PO-2026-0120").inner_text()
    assert "Served, awaiting acknowledgement" in listed and " left)" in listed
    assert "Not yet received" not in listed
    page.get_by_role("link", name="PO-2026-0120").click()
    main = page.inner_text("main")
    assert "Answer due by" in main and " left)" in main
    assert "Order served on the provider, by Judge Marta Costa" in main
    screenshot(page, "authority-order")
