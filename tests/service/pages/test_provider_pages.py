"""The provider's pages through the Flask test client: the same rules as the provider API
(another provider's order is 404), the inbox's filters and pages, the answers, and response
files sent with the plain form or the script's raw body, with their receipts."""

from __future__ import annotations

import hashlib
import io
import re

import pytest

from service import create_app
from tests.conftest import Home, add_provider
from tests.service.pages.desks import Browser, browser, csrf_of
from tests.service.test_provider_api import Site, build_site

CONTENT = b"subscriber records\n" * 100


@pytest.fixture
def site(home: Home) -> Site:
    return build_site(home)


@pytest.fixture
def site_on_each_database(home_on_each_database: Home) -> Site:
    return build_site(home_on_each_database)


def provider(site: Site, who: str = "own", **settings: object) -> Browser:
    deployment = site.deployment
    if settings:
        from dataclasses import replace

        from storage.config import with_overrides

        deployment = replace(deployment, config=with_overrides(deployment.config, **settings))
    person = browser(create_app({"TESTING": True}, deployment=deployment))
    assert person.sign_in(site.tokens[who]).status_code == 303
    return person


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def send_file(person: Browser, order_id: str, content: bytes, **fields: str) -> object:
    """The plain form: the CSRF token first, then the fields, then the file, as browsers do."""
    token = csrf_of(person.get(f"/provider/orders/{order_id}"))
    data = {"csrf_token": token, **fields, "file": (io.BytesIO(content), "records.csv")}
    return person.client.post(
        f"/provider/orders/{order_id}/responses", data=data, content_type="multipart/form-data"
    )


def test_another_provider_s_order_is_404_on_every_page_as_in_the_api(site: Site) -> None:
    theirs = site.acknowledged(provider=site.other)
    person = provider(site)
    token = csrf_of(person.get("/provider/orders"))
    size = site.deployment.ledger.size()

    pages = [
        person.get(f"/provider/orders/{theirs}"),
        person.client.post(f"/provider/orders/{theirs}/acknowledge", data={"csrf_token": token}),
        person.client.post(
            f"/provider/orders/{theirs}/object",
            data={"csrf_token": token, "ground": "incomplete"},
        ),
        person.client.post(
            f"/provider/orders/{theirs}/responses/announce",
            data={"csrf_token": token, "description": "x"},
        ),
    ]
    api = site.client.get(f"/v1/provider/orders/{theirs}", headers=site.headers())

    assert [p.status_code for p in pages] == [404, 404, 404, 404] == [api.status_code] * 4
    assert all("Not found" in text(p) for p in pages)
    assert site.deployment.ledger.size() == size


def test_an_order_not_yet_served_is_404_on_the_pages(site: Site) -> None:
    pending = site.order(until="pending_approval")

    assert provider(site).get(f"/provider/orders/{pending}").status_code == 404


def test_the_inbox_lists_only_the_provider_s_orders_with_their_state_and_deadline(
    site: Site,
) -> None:
    own = site.order()
    theirs = site.order(provider=site.other)

    page = text(provider(site).get("/provider/orders"))

    assert own in page and theirs not in page
    assert "Orders served on Own ISP" in page
    # Regulation 2023/1543 Art 10: the period runs from the provider's receipt, which its
    # first opening of the order records; the inbox alone is no receipt.
    assert "Served, awaiting acknowledgement" in page
    assert "Runs from when you first open it" in page


def test_the_inbox_filters_by_state_and_pages(site: Site) -> None:
    acknowledged = site.acknowledged()
    served = [site.order() for _ in range(26)]
    person = provider(site)

    only_acknowledged = text(person.get("/provider/orders?state=acknowledged"))
    first = text(person.get("/provider/orders"))
    cursor = re.search(r"cursor=([^&\"]+)", first)
    assert cursor is not None
    second = text(person.get(f"/provider/orders?cursor={cursor.group(1)}"))

    assert acknowledged in only_acknowledged and served[0] not in only_acknowledged
    shown_first = set(re.findall(r"ord_[0-9a-f]{16}", first))
    shown_second = set(re.findall(r"ord_[0-9a-f]{16}", second))
    assert len(shown_first) == 25 and shown_first.isdisjoint(shown_second)
    assert shown_first | shown_second == {acknowledged, *served}


def test_due_times_are_shown_in_the_provider_s_own_time_zone(site: Site) -> None:
    deployment = site.deployment
    operator = deployment.principals.get("operator").actor
    tokyo = add_provider(deployment, "Tokyo ISP", time_zone="Asia/Tokyo")
    _, token = deployment.principals.add("tokyo-isp", "provider", operator, provider_id=tokyo.id)
    theirs, own = site.order(provider=tokyo.id), site.order()
    person = browser(create_app({"TESTING": True}, deployment=deployment))
    assert person.sign_in(token).status_code == 303

    order_page = text(person.get(f"/provider/orders/{theirs}"))  # the first read: due is set
    inbox = text(person.get("/provider/orders"))
    own_page = text(provider(site).get(f"/provider/orders/{own}"))

    assert "Times are in Asia/Tokyo" in inbox
    assert re.search(r"<td[^>]*>\s*\d\d \w{3} \d{4}, \d\d:\d\d JST", inbox)
    assert re.search(r"\d\d:\d\d JST", order_page)
    assert "JST" not in own_page and re.search(r"\d\d:\d\d UTC", own_page)


def test_an_unknown_state_filter_is_400(site: Site) -> None:
    assert provider(site).get("/provider/orders?state=lost").status_code == 400


def test_an_objection_on_a_ground_that_needs_details_is_refused_with_the_field_named(
    site: Site,
) -> None:
    order_id = site.order()
    person = provider(site)

    response = person.form(
        f"/provider/orders/{order_id}", f"/provider/orders/{order_id}/object", {"ground": "other"}
    )

    assert response.status_code == 422
    assert 'href="#object-details"' in text(response)
    assert site.show(order_id)["state"] == "served"


def test_an_objection_is_recorded_and_does_not_stop_the_clock(site: Site) -> None:
    """Regulation 2023/1543 Art 10(5) and Annex III: the issuing authority reviews an
    objection and may set a new deadline; only a request for clarification (Art 10(6))
    suspends it."""
    order_id = site.order()
    person = provider(site)

    response = person.form(
        f"/provider/orders/{order_id}",
        f"/provider/orders/{order_id}/object",
        {"ground": "data_not_held", "details": "We never held this mailbox."},
    )

    assert response.status_code == 303
    shown = site.show(order_id)
    assert shown["state"] == "objected" and not shown["clock_paused"]
    assert "We never held this mailbox." in text(person.get(f"/provider/orders/{order_id}"))


def test_a_file_sent_with_the_plain_form_is_hashed_and_its_receipt_shown(
    site_on_each_database: Site,
) -> None:
    site = site_on_each_database
    order_id = site.acknowledged()
    person = provider(site)

    response = send_file(person, order_id, CONTENT, description="Subscriber records")

    assert response.status_code == 303, text(response)
    receipt_page = person.get(response.headers["Location"])  # type: ignore[attr-defined]
    assert hashlib.sha256(CONTENT).hexdigest() in text(receipt_page)
    assert site.show(order_id)["state"] == "produced_partial"
    evidence_id = re.search(r"ev_[0-9a-f]{16}", receipt_page.request.path).group(0)  # type: ignore[union-attr]
    record = site.deployment.evidence.get(evidence_id)
    assert record is not None and record.size == len(CONTENT)
    assert record.description["media_type"] == "text/csv"


def test_a_file_larger_than_the_api_s_body_bound_is_received_whole_from_both_forms(
    site: Site,
) -> None:
    """The page's uploads are bounded by CUSTOS_PAGE_UPLOAD_MAX_BYTES where they are read,
    not by the 1 MiB bound on every other request body."""
    content = b"subscriber,record\n" * 200_000  # 3.6 MB
    assert len(content) > site.deployment.config.max_body_bytes
    person = provider(site)
    first = site.acknowledged()

    assert send_file(person, first, content, description="all records").status_code == 303

    second = site.acknowledged()
    token = csrf_of(person.get(f"/provider/orders/{second}"))
    announced = person.client.post(
        f"/provider/orders/{second}/responses/announce",
        data={"csrf_token": token, "description": "all records"},
        headers={"X-CSRFToken": token},
    )
    assert announced.status_code == 200, text(announced)
    uploaded = person.client.put(
        announced.get_json()["upload"], data=content, headers={"X-CSRFToken": token}
    )
    assert uploaded.status_code == 200, text(uploaded)
    sizes = [r.size for r in site.deployment.evidence.newest(2)]
    assert sizes == [len(content), len(content)]


def test_the_plain_form_checks_its_csrf_token_before_it_opens_anything(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site)
    size = site.deployment.ledger.size()

    response = person.client.post(
        f"/provider/orders/{order_id}/responses",
        data={"csrf_token": "forged", "description": "x", "file": (io.BytesIO(CONTENT), "a")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 403
    assert site.deployment.ledger.size() == size
    assert site.show(order_id)["state"] == "acknowledged"


def test_a_file_larger_than_the_page_limit_is_413_and_leaves_nothing(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site, page_upload_max_bytes=1024)
    size = site.deployment.ledger.size()

    response = send_file(person, order_id, b"x" * (300 * 1024), description="too big")

    assert response.status_code == 413
    assert "at most 1.0 KiB" in text(response)
    assert site.deployment.ledger.size() == size


def test_a_file_over_the_limit_in_a_small_form_is_413_as_it_is_read(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site, page_upload_max_bytes=1024)
    size = site.deployment.ledger.size()

    response = send_file(person, order_id, b"x" * 1025, description="just too big")

    assert response.status_code == 413
    assert site.deployment.ledger.size() == size
    assert site.show(order_id)["state"] == "acknowledged"
    assert send_file(person, order_id, b"x" * 1024, description="fits").status_code == 303


def test_the_form_without_a_file_says_so(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site)
    token = csrf_of(person.get(f"/provider/orders/{order_id}"))

    response = person.client.post(
        f"/provider/orders/{order_id}/responses",
        data={"csrf_token": token, "description": "", "file": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 422
    body = text(response)
    assert 'href="#respond-file"' in body and 'href="#respond-description"' in body


def test_the_script_announces_then_sends_the_raw_body_to_the_same_intake(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site)
    token = csrf_of(person.get(f"/provider/orders/{order_id}"))

    announced = person.client.post(
        f"/provider/orders/{order_id}/responses/announce",
        data={"csrf_token": token, "description": "Subscriber records"},
        headers={"X-CSRFToken": token},
    )
    upload = announced.get_json()["upload"]
    forged = person.client.put(upload, data=CONTENT, headers={"X-CSRFToken": "forged"})
    sent = person.client.put(upload, data=CONTENT, headers={"X-CSRFToken": token})

    assert forged.status_code == 403
    assert sent.status_code == 200, text(sent)
    receipt = person.get(sent.get_json()["receipt"])
    assert hashlib.sha256(CONTENT).hexdigest() in text(receipt)


def test_a_receipt_is_shown_and_downloadable_later_and_only_to_its_provider(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site)
    sent = send_file(person, order_id, CONTENT, description="Subscriber records")
    receipt_path = sent.headers["Location"].split("?")[0]  # type: ignore[attr-defined]

    later = provider(site).get(receipt_path + "/receipt.json")
    other = provider(site, "other")

    assert later.status_code == 200 and later.mimetype == "application/json"
    assert b"custos/receipt-bundle/v1" in later.data
    assert other.get(receipt_path).status_code == 404
    assert other.get(receipt_path + "/receipt.json").status_code == 404


def test_completing_after_a_response_produces_the_order(site: Site) -> None:
    order_id = site.acknowledged()
    person = provider(site)
    send_file(person, order_id, CONTENT, description="Subscriber records")

    response = person.form(
        f"/provider/orders/{order_id}", f"/provider/orders/{order_id}/complete", {}
    )

    assert response.status_code == 303
    assert site.show(order_id)["state"] == "produced"


def test_an_action_the_state_forbids_is_409_and_names_what_is_possible(site: Site) -> None:
    order_id = site.order()
    person = provider(site)

    response = person.form(
        f"/provider/orders/{order_id}", f"/provider/orders/{order_id}/complete", {}
    )

    assert response.status_code == 409
    assert "What is possible now" in text(response)


def test_other_roles_may_not_use_the_provider_pages(site: Site) -> None:
    person = browser(create_app({"TESTING": True}, deployment=site.deployment))
    person.sign_in(site.tokens["examiner"])

    assert person.get("/provider/orders").status_code == 403
