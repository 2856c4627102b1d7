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
