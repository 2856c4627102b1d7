"""The authority's desk through the Flask test client: drafting from the form (every field at
fault at once, beside its field, what was typed kept), the preview, the approvals inbox and
its four-eyes rule, the board, the answers, the downloads, and who may reach what: an order
outside the principal's cases is 404 as in the API, and a provider is refused the desk."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import TestResponse

from custody.note import open_note
from service.pages import order_form
from tests.factories import in_case
from tests.service.pages.desks import Browser, pages_app, signed_in
from tests.service.test_orders_api import Site, build_site

NEW = "/authority/orders/new"


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    yield from build_site(tmp_path, sqlite_url)


def person(site: Site, name: str) -> Browser:
    return signed_in(pages_app(site), site, name)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def form_data(values: dict[str, str]) -> dict[str, Any]:
    """The drafting form as a browser sends it: the ticked categories under one name."""
    data: dict[str, Any] = {k: v for k, v in values.items() if not k.startswith("data_categories.")}
    data["data_categories"] = [
        k.removeprefix("data_categories.") for k in values if k.startswith("data_categories.")
    ]
    return data


def draft_form(site: Site, **changes: Any) -> dict[str, Any]:
    return form_data(order_form.values_from_document(site.document(**changes)))


def save_draft(browser: Browser, data: dict[str, Any]) -> TestResponse:
    return browser.form(NEW, NEW, data)


def drafted(site: Site, who: str = "alice", **changes: Any) -> tuple[Browser, str]:
    browser = person(site, who)
    saved = save_draft(browser, draft_form(site, **changes))
    assert saved.status_code == 303, text(saved)
    match = re.search(r"/authority/orders/(ord_[0-9a-f]{16})", saved.headers["Location"])
    assert match
    return browser, match.group(1)


def act(browser: Browser, order_id: str, step: str, **data: str) -> TestResponse:
    page = f"/authority/orders/{order_id}"
    return browser.form(page, f"{page}/{step}", data)


# -- the drafting form ------------------------------------------------------------------------


def test_the_form_s_values_give_back_the_document_they_were_taken_from(site: Site) -> None:
    document = site.document()

    values = order_form.values_from_document(document)
    rebuilt = order_form.document_of(values)

    assert rebuilt == {
        **document,
        "emergency": {"flag": False},
        "confidentiality": {"no_user_notice": False},
    }


def test_every_invalid_field_is_reported_at_once_beside_it_and_what_was_typed_is_kept(
    site: Site,
) -> None:
    browser = person(site, "alice")
    data = draft_form(site)
    data["issuing_authority.type"] = ""  # required
    data["targets[1].time"] = ""  # an ip target needs its time of use
    data["offence.max_penalty_years"] = "three"
    size = site.deployment.ledger.size()

    response = save_draft(browser, data)

    page = text(response)
    assert response.status_code == 422
    assert "There is a problem" in page
    for field, words in (
        ("issuing-authority-type", "Type of the issuing authority: required"),
        ("targets-1-time", "Target 2, time of use (UTC): required for an ip target"),
        ("offence-max-penalty-years", "Maximum custodial sentence in years: from 0 to 100"),
    ):
        assert f'<a href="#f-{field}">{words}' in page
        assert f'id="f-{field}-error"' in page
    assert 'value="payme-now@northwind.example"' in page or data["targets[0].value"] in page
    assert 'value="three"' in page
    assert site.deployment.ledger.size() == size


def test_a_draft_is_saved_then_previewed_as_the_provider_will_see_it(site: Site) -> None:
    browser, order_id = drafted(site)

    page = text(browser.get(f"/authority/orders/{order_id}?done=drafted"))

    assert "Done: draft saved" in page
    assert "What the provider will see" in page
    assert "The order as it will be signed" in page
    assert "Not signed yet" in page
    assert "<dt>Answer due by</dt><dd>Set when the order is served</dd>" in page
    assert "<dt>Approved by</dt><dd>Not yet</dd>" in page
    assert html.escape(site.document()["facts"]) in page
    assert "Submit for approval" in page and "Change the draft" in page


def test_a_draft_is_changed_and_an_emptied_part_is_removed(site: Site) -> None:
    browser, order_id = drafted(site)
    data = draft_form(site, reference="PO-2026-0099")
    data["time_range.start"] = data["time_range.end"] = ""

    saved = browser.form(
        f"/authority/orders/{order_id}/edit", f"/authority/orders/{order_id}/edit", data
    )

    assert saved.status_code == 303
    document = site.show(order_id)["document"]
    assert document["reference"] == "PO-2026-0099" and document["time_range"] is None


def test_a_new_order_starts_from_an_earlier_one_without_its_reference(site: Site) -> None:
    browser, order_id = drafted(site)

    page = text(browser.get(f"{NEW}?from={order_id}"))

    assert "Started from order PO-2026-0017" in page
    assert 'name="reference" value=""' in page
    assert site.document()["legal_basis"]["citation"] in page


def test_the_addressee_where_the_data_go_and_the_budapest_facts_are_drafted_and_shown(
    site: Site,
) -> None:
    browser = person(site, "alice")
    data = draft_form(site)
    data.update(
        {
            "addressee.type": "legal_representative",
            "addressee.name": "Northwind Legal Ltd",
            "addressee.state": "IE",
            "addressee.contact": "lawful@northwind.example",
            "receiving_authority.name": "Lisbon Cybercrime Unit",
            "receiving_authority.contact": "unit@pj.example",
            "custodian": "Northwind's mail platform",
            "system_location": "Dublin data centre",
            "mla_request_intended": "no",
            "linked_order": "PP-2026-0003",
        }
    )

    saved = save_draft(browser, data)

    assert saved.status_code == 303, text(saved)
    order_id = saved.headers["Location"].split("/")[3].split("?")[0]
    document = site.show(order_id)["document"]
    assert document["addressee"] == {
        "type": "legal_representative",
        "name": "Northwind Legal Ltd",
        "state": "IE",
        "contact": "lawful@northwind.example",
    }
    assert document["receiving_authority"]["name"] == "Lisbon Cybercrime Unit"
    assert (document["mla_request_intended"], document["linked_order"]) == (False, "PP-2026-0003")
    preview = text(browser.get(f"/authority/orders/{order_id}"))
    for words in (
        "Northwind Legal Ltd, Legal representative in IE",
        "Lisbon Cybercrime Unit; unit@pj.example",
        "Dublin data centre",
        "<dt>Request for mutual assistance</dt><dd>Not intended</dd>",
    ):
        assert words in preview
    edit = text(browser.get(f"/authority/orders/{order_id}/edit"))
    assert 'value="no" checked' in edit  # a "no" said stays said
    again = text(browser.get(f"{NEW}?from={order_id}"))
    assert 'value="Northwind Legal Ltd"' in again


def test_the_preview_warns_of_what_would_bar_issuing_it(site: Site) -> None:
    browser, order_id = drafted(
        site,
        legal_basis={"instrument": "eu_2023_1543_epoc", "citation": "Art 5"},
        data_categories=["content"],
        offence={"description": "fraud", "provision": "s. 1", "max_penalty_years": 2},
    )

    page = text(browser.get(f"/authority/orders/{order_id}"))

    assert "Before this order can be issued" in page and "Art 5(4)" in page


# -- approval ---------------------------------------------------------------------------------


def test_the_drafter_has_no_approve_button_and_a_forged_approval_is_403(site: Site) -> None:
    judge, order_id = drafted(site, who="judge")
    assert act(judge, order_id, "submit").status_code == 303
    size = site.deployment.ledger.size()

    own = text(judge.get(f"/authority/orders/{order_id}"))
    inbox = text(judge.get("/authority/approvals"))
    forged = act(judge, order_id, "approve")

    assert "Approve and serve the order" not in own
    assert "you wrote it" in inbox
    assert forged.status_code == 403
    assert site.deployment.ledger.size() == size
    other = person(site, "judge2")
    assert "Approve and serve the order" in text(other.get(f"/authority/orders/{order_id}"))
    assert act(other, order_id, "approve").status_code == 303
    assert site.show(order_id)["state"] == "served"


def test_an_approver_sends_a_draft_back_with_a_reason_the_drafter_reads(site: Site) -> None:
    alice, order_id = drafted(site)
    act(alice, order_id, "submit")
    judge = person(site, "judge")

    without = act(judge, order_id, "send-back")
    sent = act(judge, order_id, "send-back", reason="Name the account's creation date.")

    assert without.status_code == 422 and 'id="send-back-reason-error"' in text(without)
    assert sent.status_code == 303
    page = text(alice.get(f"/authority/orders/{order_id}"))
    assert "Order sent back to its drafter, by judge" in page
    assert "Name the account&#39;s creation date." in page
    assert site.show(order_id)["state"] == "draft"


# -- the board, the answers, the timeline ------------------------------------------------------


def test_the_board_shows_orders_by_where_they_stand(site: Site) -> None:
    fresh = site.served()
    objected = site.served()
    site.provider_acts(objected, "object", ground="data_not_held")
    late = site.served()
    site.provider_reads(late)
    site.clock.advance(timedelta(days=9, hours=12).total_seconds())
    alice = person(site, "alice")
    draft = site.draft()

    board = text(alice.get("/authority/orders"))

    def section(title: str) -> str:
        start = board.index(f">{title}</h2>")
        end = board.find("<h2", start + 1)
        return board[start : end if end > 0 else None]

    assert fresh in section("Not yet received by the provider")
    assert objected in section("Awaiting your answer")
    assert late in section("Due soon") and "left" in section("Due soon")
    assert draft in section("Drafts")
    site.clock.advance(timedelta(days=2).total_seconds())
    overdue = text(person(site, "alice").get("/authority/orders/list/overdue"))
    assert late in overdue and "Overdue" in overdue


def test_the_authority_answers_an_objection_and_the_timeline_names_who_acted(
    site: Site,
) -> None:
    operator = site.deployment.principals.get("operator").actor
    site.deployment.principals.name("alice", "Ana Ribeiro", operator)
    order_id = site.served()
    site.provider_acts(order_id, "object", ground="data_not_held")
    alice = person(site, "alice")

    empty = act(alice, order_id, "answer-objection")
    answered = act(alice, order_id, "answer-objection", answer="The mailbox is yours.")

    assert empty.status_code == 422 and "There is a problem" in text(empty)
    assert answered.status_code == 303
    page = text(alice.get(f"/authority/orders/{order_id}"))
    assert "Order drafted, by Ana Ribeiro" in page or "drafted, by Ana Ribeiro" in page
    assert "The data are not held by or on behalf of the provider" in page
    assert "The mailbox is yours." in page
    assert "by isp" in page


def test_an_act_the_state_forbids_is_409_and_changes_nothing(site: Site) -> None:
    alice, order_id = drafted(site)
    size = site.deployment.ledger.size()

    refused = act(alice, order_id, "close")

    assert refused.status_code == 409 and "What is possible now" in text(refused)
    assert site.deployment.ledger.size() == size


# -- downloads --------------------------------------------------------------------------------


def test_an_issued_order_downloads_as_its_printable_page_and_its_signed_note(site: Site) -> None:
    order_id = site.served()
    alice = person(site, "alice")

    printable = alice.get(f"/authority/orders/{order_id}/printable")
    note = alice.get(f"/authority/orders/{order_id}/order-note.txt")

    assert (
        printable.status_code == 200
        and "style-src 'unsafe-inline'" in (printable.headers["Content-Security-Policy"])
    )
    assert "PO-2026-0017" in text(printable)
    assert note.headers["Content-Disposition"].startswith("attachment")
    assert open_note(note.data, site.deployment.keys.verifiers).text.startswith("custos/order/v1\n")


def test_a_draft_has_no_download_yet(site: Site) -> None:
    alice, order_id = drafted(site)

    assert alice.get(f"/authority/orders/{order_id}/order-note.txt").status_code == 404


# -- who may reach what -----------------------------------------------------------------------


def test_an_order_outside_the_principal_s_cases_is_404_on_every_page(site: Site) -> None:
    in_case(site.deployment, "CASE-ALICE", "alice", "judge")
    order_id = site.served(case="CASE-ALICE")
    bob = person(site, "bob")
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(bob.get("/authority/orders")))
    assert token
    size = site.deployment.ledger.size()
    base = f"/authority/orders/{order_id}"

    reads = [
        bob.get(base),
        bob.get(f"{base}/edit"),
        bob.get(f"{base}/printable"),
        bob.get(f"{base}/order-note.txt"),
        bob.get(f"{NEW}?from={order_id}"),
    ]
    writes = [
        bob.client.post(f"{base}/{step}", data={"csrf_token": token.group(1), "reason": "x"})
        for step in ("withdraw", "close", "send-back")
    ]
    api = site.client.get(f"/v1/orders/{order_id}", headers=site.headers["bob"])

    assert [r.status_code for r in reads + writes] == [404] * 8 == [api.status_code] * 8
    assert order_id not in text(bob.get("/authority/orders/list/all"))
    assert site.deployment.ledger.size() == size


def test_a_provider_cannot_reach_the_authority_s_desk(site: Site) -> None:
    order_id = site.served()
    isp = person(site, "isp")
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(isp.get("/provider/orders")))
    assert token

    pages = [
        isp.get(path)
        for path in (
            "/authority/orders",
            "/authority/approvals",
            NEW,
            f"/authority/orders/{order_id}",
            f"/authority/orders/{order_id}/order-note.txt",
        )
    ]
    forged = isp.client.post(
        f"/authority/orders/{order_id}/withdraw", data={"csrf_token": token.group(1)}
    )

    assert [p.status_code for p in pages] == [403] * 5
    assert forged.status_code == 403
    assert site.show(order_id)["state"] == "served"


def test_each_role_of_the_desk_lands_on_its_home(site: Site) -> None:
    alice = pages_app(site).test_client()
    from tests.service.pages.desks import Browser as Person
    from tests.service.pages.desks import token_of

    authority = Person(alice)
    landed = authority.sign_in(token_of(site, "alice"))
    judge = Person(pages_app(site).test_client())
    judged = judge.sign_in(token_of(site, "judge"))

    assert landed.headers["Location"].endswith("/authority/orders")
    assert judged.headers["Location"].endswith("/authority/approvals")


def test_every_authority_page_the_pages_benchmark_times_answers(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benchmark runs as a script, its folder first on the path.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3] / "bench"))
    from bench.bench_pages import authority_pages

    orders = [site.served(), site.served()]
    alice = person(site, "alice")

    timed = authority_pages(alice.client, orders, len(orders))

    assert len(timed) == 6
    for name, client, paths, _ in timed:
        for n in range(len(orders)):
            assert client.get(paths(n)).status_code == 200, name
