"""The court's pages through the Flask test client: the items it may read, their bundles
and custody reports, and the offline-verification page with its downloads."""

from __future__ import annotations

import io
import zipfile

import pytest

from service import create_app
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import in_case
from tests.service.pages.desks import Browser, browser


@pytest.fixture
def court(home: Home) -> tuple[Deployment, Browser, str]:
    deployment = home.deployment
    people = deployment.principals
    operator = people.get("operator").actor
    examiner = people.add("eva", "examiner", operator)[0].actor
    _, token = people.add("clerk", "court", operator)
    in_case(deployment, "C-9", "eva", "clerk")
    metadata = {"kind": "digital", "case": "C-9", "exhibit": "USB-1", "description": "stick"}
    item = deployment.intake.open_session(metadata, examiner).id
    deployment.intake.receive(item, io.BytesIO(b"usb image " * 100), examiner)
    person = browser(create_app({"TESTING": True}, deployment=deployment))
    assert person.sign_in(token).status_code == 303
    return deployment, person, item


def test_the_court_lists_the_items_by_name_and_filters_by_case(
    court: tuple[Deployment, Browser, str],
) -> None:
    _, person, item = court

    listed = person.get("/court/items").get_data(as_text=True)
    other_case = person.get("/court/items?case=C-1").get_data(as_text=True)

    assert "USB-1" in listed and item in listed
    assert item not in other_case


def test_the_court_downloads_an_item_s_exhibit_bundle(
    court: tuple[Deployment, Browser, str],
) -> None:
    _, person, item = court

    response = person.get(f"/court/items/{item}/bundle")

    assert response.status_code == 200 and response.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert "bundle.json" in names and "report.html" in names


def test_the_custody_report_is_a_page_of_its_own_with_only_inline_style(
    court: tuple[Deployment, Browser, str],
) -> None:
    _, person, item = court

    response = person.get(f"/court/items/{item}/report")

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "USB-1" in response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "script-src" not in policy


def test_an_unknown_item_is_404(court: tuple[Deployment, Browser, str]) -> None:
    _, person, _ = court

    assert person.get("/court/items/ev_0000000000000000").status_code == 404
    assert person.get("/court/items/nonsense/bundle").status_code == 404


def test_the_verification_page_offers_the_keys_and_the_one_file_verifier(
    court: tuple[Deployment, Browser, str],
) -> None:
    deployment, person, _ = court

    page = person.get("/verify").get_data(as_text=True)
    keys = person.get("/verify/keys.txt")
    verifier = person.get("/verify/custos-verify.py")

    current = deployment.keys.current.verifier_key
    assert current in page and keys.get_data(as_text=True).split() == [current]
    assert verifier.status_code == 200
    assert verifier.data.startswith(b"#!/usr/bin/env python3\n")
    assert b"custody.verify.bundle" in verifier.data


def test_a_provider_may_not_use_the_court_pages(home: Home) -> None:
    deployment = home.deployment
    operator = deployment.principals.get("operator").actor
    provider = deployment.providers.add(
        {"name": "ISP", "jurisdiction": "IE", "legal_representative": "L", "contact": "c"},
        operator,
    )
    _, token = deployment.principals.add("isp", "provider", operator, provider.id)
    person = browser(create_app({"TESTING": True}, deployment=deployment))
    person.sign_in(token)

    assert person.get("/court/items").status_code == 403


def test_the_item_page_and_its_report_name_the_examiner(
    court: tuple[Deployment, Browser, str],
) -> None:
    deployment, person, item = court
    operator = deployment.principals.get("operator").actor
    deployment.principals.name("eva", "Eva Lindqvist", operator)
    deployment.principals.name("clerk", "Clerk of the Court", operator)

    page = person.get(f"/court/items/{item}").get_data(as_text=True)
    report = person.get(f"/court/items/{item}/report").get_data(as_text=True)

    examiner = deployment.principals.get("eva")
    assert "Received by" in page and "Eva Lindqvist" in page and examiner.id in page
    assert "Signed in as <strong>Clerk of the Court</strong>" in page
    assert "Eva Lindqvist" in report
