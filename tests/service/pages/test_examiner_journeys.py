"""The examiner's journeys in a real browser (Chromium through Playwright) against the real
server: an item registered, transferred (the receiver confirming in their own session) and
sealed; an artifact uploaded whose receipt the one-file verifier checks offline; and an
examiner of another case, for whom the item does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage.deployment import open_deployment
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
CASE = "CASE-2026-0417"


def signed_in_page(chromium: Any, site: Demo, name: str) -> Any:
    """A page of a browser context of its own (a person's own session), signed in."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(site.sign_in_link(name))
    page.get_by_role("button", name="Continue to sign in").click()
    return page


def open_act(page: Any, title: str) -> None:
    page.locator("summary", has_text=title).click()


def test_an_item_is_registered_transferred_confirmed_and_sealed(
    chromium: Any, demo_site: Demo
) -> None:
    site = demo_site
    eva = signed_in_page(chromium, site, "eva.examiner")
    assert eva.get_by_role("heading", level=1).inner_text() == "Your cases"
    screenshot(eva, "examiner-cases")
    eva.get_by_role("link", name=CASE).click()
    screenshot(eva, "examiner-case")

    eva.get_by_role("link", name="Register a physical item").click()
    eva.get_by_label("Exhibit number").fill("EX-04 phone")
    eva.get_by_label("Description").fill("iPhone 13, IMEI 356789104512345, screen cracked")
    eva.get_by_label("When seized").fill("2026-01-05T07:15")
    eva.get_by_label("Where seized").fill("Rua das Flores 12, Lisbon")
    eva.get_by_label("Seized by").fill("Inspector M. Santos")
    eva.get_by_label("Under what authority").fill("Search warrant 417/26.3JGLSB-B")
    eva.get_by_label("Packaging").fill("Evidence bag PJ-88214")
    screenshot(eva, "examiner-register")
    eva.get_by_role("button", name="Register the item").click()
    assert eva.get_by_role("heading", level=1).inner_text() == "EX-04 phone"
    item_url = eva.url

    open_act(eva, "Transfer to another custodian")
    eva.get_by_label("Handed over by").fill("Eva Lindqvist, imaging lab")
    eva.get_by_label("Receiving custodian").select_option(label="Rui Custódio (rui.custodian)")
    eva.get_by_label("Where", exact=True).fill("Room B-12")
    eva.get_by_label("Why", exact=True).fill("storage until trial")
    eva.get_by_role("button", name="Record the transfer").click()
    assert "In transfer to Rui Custódio" in eva.inner_text("main")
    assert eva.locator("summary", has_text="Seal").count() == 0  # in transit: no seal

    rui = signed_in_page(chromium, site, "rui.custodian")
    rui.goto(item_url)
    open_act(rui, "Confirm receipt")
    rui.get_by_label("Where received").fill("Evidence store, Lisbon, shelf 5")
    rui.get_by_label("Yes").check()
    rui.get_by_role("button", name="Confirm receipt").click()
    assert "Recorded: receipt confirmed" in rui.inner_text("main")

    open_act(rui, "Seal")
    rui.get_by_label("Seal number").fill("SEAL-000777")
    rui.get_by_role("button", name="Record the seal").click()

    eva.goto(item_url)
    timeline = eva.locator("ol.custody").inner_text()
    screenshot(eva, "examiner-item")
    assert "Sealed (seal SEAL-000777)" in eva.inner_text("main")
    for expected in (
        "Registered (physical item) by Eva Lindqvist",
        "Transferred by Eva Lindqvist",
        "To\nRui Custódio",
        "Receipt confirmed by Rui Custódio",
        "Seal intact on receipt\nyes",
        "Sealed by Rui Custódio",
        "SEAL-000777",
    ):
        assert expected in timeline, expected


def test_an_uploaded_artifact_s_receipt_verifies_offline(
    chromium: Any, demo_site: Demo, tmp_path: Path
) -> None:
    site = demo_site
    eva = signed_in_page(chromium, site, "eva.examiner")
    eva.get_by_role("link", name=CASE).click()
    eva.get_by_role("link", name="Upload an artifact").click()
    artifact = tmp_path / "router-logs.tar"
    artifact.write_bytes(b"router log 2026-01-03T02:14Z 203.0.113.77\n" * 2000)

    eva.get_by_label("Exhibit number").fill("EX-05 router logs")
    eva.get_by_label("Description").fill("Logs exported from the hospital's edge router")
    eva.get_by_label("Acquisition tool and version (optional)").fill("tar 1.34")
    eva.get_by_label("File", exact=True).set_input_files(str(artifact))
    screenshot(eva, "examiner-upload")
    eva.get_by_role("button", name="Upload and hash").click()

    assert "Received. The file was hashed" in eva.inner_text("main")
    sha256 = __import__("hashlib").sha256(artifact.read_bytes()).hexdigest()
    assert sha256 in eva.inner_text("main")
    screenshot(eva, "examiner-receipt")
    with eva.expect_download() as download:
        eva.get_by_role("link", name="Download the receipt").click()
    receipt = tmp_path / "receipt.json"
    download.value.save_as(receipt)

    verifier, keys = one_file_verifier(tmp_path, eva, site.url)
    checked = run_verifier(verifier, keys, "receipt", str(receipt), "--artifact", str(artifact))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_examiner_of_another_case_gets_404_for_this_case_s_item(
    chromium: Any, demo_site: Demo
) -> None:
    site = demo_site
    deployment = open_deployment(site.config)
    try:
        operator = deployment.principals.get("operator").actor
        other, _ = deployment.principals.add("otto.other", "examiner", operator)
        values = {"reference": "CASE-2026-0999", "title": "Another case", "authority": "DPP"}
        deployment.cases.open(values, other.actor)
    finally:
        deployment.close()
    otto = signed_in_page(chromium, site, "otto.other")

    response = otto.goto(f"{site.url}/examiner/items/{site.seeded.items['disk']}")

    assert response is not None and response.status == 404
    assert "EX-02" not in otto.inner_text("main")
    otto.goto(f"{site.url}/examiner/cases")
    assert CASE not in otto.inner_text("main") and "CASE-2026-0999" in otto.inner_text("main")
