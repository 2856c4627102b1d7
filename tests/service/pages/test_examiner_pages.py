"""The examiner's desk through the Flask test client: cases and search within the person's
cases only, the item page with its timeline, each act's form (offered only when the item's
state allows it, refused by the domain when forged), registering and uploading items."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, replace
from typing import Any

import pytest
from werkzeug.test import TestResponse

from custody.acts import ACT_FIELDS
from custody.events import Event
from custody.verify.receipt import verify_receipt
from service import create_app
from storage.config import with_overrides
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import ACT_BODIES, CUSTODIAN, SEIZURE, in_case
from tests.service.pages.desks import Browser, browser, csrf_of

CONTENT = b"disk image block\n" * 4096


@dataclass
class Desk:
    deployment: Deployment
    tokens: dict[str, str]
    case_id: str
    item: str  # a physical item of C-1, in custody
    artifact: str  # a digital item of C-1

    def person(self, name: str, **settings: Any) -> Browser:
        deployment = self.deployment
        if settings:
            deployment = replace(deployment, config=with_overrides(deployment.config, **settings))
        person = browser(create_app({"TESTING": True}, deployment=deployment))
        assert person.sign_in(self.tokens[name]).status_code == 303
        return person

    def actor(self, name: str) -> Any:
        return self.deployment.principals.get(name).actor

    def events(self, evidence_id: str) -> list[str]:
        entries = self.deployment.ledger.subject_entries(f"evidence:{evidence_id}")
        return [Event.decode(e.leaf).type for e in entries]

    def register(self, exhibit: str) -> str:
        metadata = {
            "kind": "physical",
            "case": "C-1",
            "exhibit": exhibit,
            "description": "a phone",
            "seizure": dict(SEIZURE),
        }
        appended = self.deployment.intake.register_physical(metadata, self.actor("eva"))
        return appended.event.subject.id


@pytest.fixture
def desk(home: Home) -> Desk:
    deployment = home.deployment
    people = deployment.principals
    operator = people.get("operator").actor
    tokens = {}
    for name, role, shown in (
        ("eva", "examiner", "Eva Lindqvist"),
        (CUSTODIAN, "examiner", "Alice Custodian"),
        ("judy", "approver", "Judge Judy Costa"),
        ("otto", "examiner", "Otto Other"),
    ):
        tokens[name] = people.add(name, role, operator, display_name=shown)[1]
    case_id = in_case(deployment, "C-1", "eva", CUSTODIAN, "judy")
    in_case(deployment, "C-2", "otto")
    examiner = people.get("eva").actor
    metadata = {
        "kind": "physical",
        "case": "C-1",
        "exhibit": "EX-01 phone",
        "description": "Pixel 7, cracked screen",
        "seizure": dict(SEIZURE),
    }
    item = deployment.intake.register_physical(metadata, examiner).event.subject.id
    digital = {"kind": "digital", "case": "C-1", "exhibit": "EX-02 image", "description": "dd"}
    artifact = deployment.intake.open_session(digital, examiner).id
    deployment.intake.receive(artifact, io.BytesIO(CONTENT), examiner)
    return Desk(deployment, tokens, case_id, item, artifact)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def act_forms(page: str) -> set[str]:
    """The acts whose forms a page offers, by their address's last part."""
    return set(re.findall(r'action="/examiner/items/ev_[0-9a-f]+/acts/([a-z_]+)"', page))


def post_act(person: Browser, evidence_id: str, slug: str, data: dict[str, str]) -> TestResponse:
    return person.form(
        f"/examiner/items/{evidence_id}", f"/examiner/items/{evidence_id}/acts/{slug}", data
    )


# -- cases and search ------------------------------------------------------------------------


def test_the_cases_page_lists_the_person_s_cases_only(desk: Desk) -> None:
    page = text(desk.person("eva").get("/examiner/cases"))

    assert "C-1" in page and "C-2" not in page


def test_an_examiner_signs_in_to_the_cases_page(desk: Desk) -> None:
    person = browser(create_app({"TESTING": True}, deployment=desk.deployment))

    response = person.sign_in(desk.tokens["eva"])

    assert response.headers["Location"].endswith("/examiner/cases")


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("EX-01", ("item",)),
        ("cracked SCREEN", ("item",)),
        ("c-1", ("item", "artifact")),
        (hashlib.sha256(CONTENT).hexdigest()[:20], ("artifact",)),
    ],
)
def test_the_search_finds_items_by_case_exhibit_description_or_digest(
    desk: Desk, query: str, found: tuple[str, ...]
) -> None:
    page = text(desk.person("eva").get("/examiner/cases", query_string={"q": query}))

    listed = set(re.findall(r"/examiner/items/(ev_[0-9a-f]{16})", page))
    assert listed == {getattr(desk, name) for name in found}


def test_a_digest_is_found_as_the_command_line_writes_it(desk: Desk) -> None:
    query = "sha256:" + hashlib.sha256(CONTENT).hexdigest().upper()

    page = text(desk.person("eva").get("/examiner/cases", query_string={"q": query}))

    assert desk.artifact in page and desk.item not in page


def test_the_search_finds_nothing_of_another_case(desk: Desk) -> None:
    page = text(desk.person("otto").get("/examiner/cases", query_string={"q": "EX-0"}))

    assert desk.item not in page and desk.artifact not in page
    assert "No item of your cases matches" in page


def test_the_case_page_lists_its_items_members_and_says_who_reads_orders(desk: Desk) -> None:
    page = text(desk.person("eva").get(f"/examiner/cases/{desk.case_id}"))

    assert "EX-01 phone" in page and "EX-02 image" in page
    assert "Alice Custodian" in page and "Judge Judy Costa" in page
    assert "read by its authorities and approvers" in page


def test_another_case_and_its_items_are_404(desk: Desk) -> None:
    person = desk.person("otto")
    item = f"/examiner/items/{desk.item}"

    assert person.get(f"/examiner/cases/{desk.case_id}").status_code == 404
    assert person.get(item).status_code == 404
    assert person.get(f"/examiner/items/{desk.artifact}/bundle").status_code == 404
    assert person.get(f"/examiner/items/{desk.artifact}/receipt.json").status_code == 404
    token = csrf_of(person.get("/examiner/cases"))
    forged = person.client.post(f"{item}/acts/sealed", data={"csrf_token": token, "seal": "S-1"})
    assert forged.status_code == 404
    assert desk.events(desk.item) == ["evidence.registered"]


def test_a_provider_or_a_court_may_not_use_the_examiner_s_desk(desk: Desk) -> None:
    operator = desk.deployment.principals.get("operator").actor
    desk.tokens["clerk"] = desk.deployment.principals.add("clerk", "court", operator)[1]

    assert desk.person("clerk").get("/examiner/cases").status_code == 403


# -- the item page -----------------------------------------------------------------------------


def test_the_item_page_shows_the_seizure_digests_timeline_and_receipt(desk: Desk) -> None:
    person = desk.person("eva")

    physical = text(person.get(f"/examiner/items/{desk.item}"))
    digital = text(person.get(f"/examiner/items/{desk.artifact}"))

    assert SEIZURE["location"] in physical and SEIZURE["packaging"] in physical
    assert "Registered (physical item)" in physical and "Eva Lindqvist" in physical
    assert hashlib.sha256(CONTENT).hexdigest() in digital
    assert "custos/receipt/v1" in digital and "Download the exhibit bundle" in digital


def test_findings_show_to_an_examiner_and_not_to_an_approver(desk: Desk) -> None:
    desk.deployment.handling.record_act(
        desk.item, "evidence.examined", ACT_BODIES["evidence.examined"], desk.actor("eva")
    )

    examiner = text(desk.person("eva").get(f"/examiner/items/{desk.item}"))
    approver = text(desk.person("judy").get(f"/examiner/items/{desk.item}"))

    assert "a private diary" in examiner
    assert "a private diary" not in approver and "Findings (salted SHA-256 commitment)" in approver


def test_times_are_shown_in_the_zone_the_reader_chose(desk: Desk) -> None:
    person = desk.person("eva")

    refused = person.form("/examiner/cases", "/examiner/time-zone", {"zone": "Mars/Olympus"})
    chosen = person.form("/examiner/cases", "/examiner/time-zone", {"zone": "Asia/Tokyo"})
    page = text(person.get(f"/examiner/items/{desk.item}"))

    assert refused.status_code == 422 and "Mars/Olympus" in text(refused)
    assert chosen.status_code == 303
    assert "JST" in page and "Times are in Asia/Tokyo" in page


def test_the_court_s_item_page_shares_the_timeline(desk: Desk) -> None:
    operator = desk.deployment.principals.get("operator").actor
    desk.tokens["clerk"] = desk.deployment.principals.add("clerk", "court", operator)[1]
    in_case(desk.deployment, "C-1", "clerk")
    desk.deployment.handling.record_act(
        desk.item, "evidence.sealed", {"seal": "S-0042"}, desk.actor("eva")
    )

    page = text(desk.person("clerk").get(f"/court/items/{desk.item}"))

    assert "Custody timeline" in page and "S-0042" in page and "Eva Lindqvist" in page


# -- the act forms -----------------------------------------------------------------------------

# The acts a fresh item (in custody, nothing pending) allows an examiner.
FRESH = {"transferred", "checked_out", "examined", "noted", "sealed", "hold_set"}


def test_a_fresh_item_offers_only_the_acts_its_state_allows(desk: Desk) -> None:
    examiner = act_forms(text(desk.person("eva").get(f"/examiner/items/{desk.item}")))
    approver = act_forms(text(desk.person("judy").get(f"/examiner/items/{desk.item}")))

    assert examiner == FRESH
    assert approver == FRESH | {"disposed"}


def _prepare(desk: Desk, act: str) -> str:
    """An item in a state that allows ``act``."""
    handling, eva = desk.deployment.handling, desk.actor("eva")
    item = desk.register(f"EX-{act}")
    before = {
        "evidence.received": "evidence.transferred",
        "evidence.checked_in": "evidence.checked_out",
        "evidence.unsealed": "evidence.sealed",
        "evidence.hold_released": "evidence.hold_set",
    }.get(act)
    if before is not None:
        handling.record_act(item, before, ACT_BODIES[before], eva)
    return item


def _actor_of(act: str) -> str:
    return {"evidence.received": CUSTODIAN, "evidence.disposed": "judy"}.get(act, "eva")


@pytest.mark.parametrize("act", list(ACT_FIELDS))
def test_each_act_form_is_offered_when_allowed_and_records_the_act(desk: Desk, act: str) -> None:
    item = _prepare(desk, act)
    person = desk.person(_actor_of(act))
    slug = act.split(".")[1]

    offered = act_forms(text(person.get(f"/examiner/items/{item}")))
    response = post_act(person, item, slug, ACT_BODIES[act])
    page = text(person.get(response.headers["Location"]))

    assert slug in offered
    assert response.status_code == 303, text(response)
    assert desk.events(item)[-1] == act
    assert "Recorded:" in page


@pytest.mark.parametrize("act", list(ACT_FIELDS))
def test_a_forged_act_the_state_forbids_is_refused_and_changes_nothing(
    desk: Desk, act: str
) -> None:
    item = desk.register(f"EX-gone-{act}")
    desk.deployment.handling.record_act(
        item, "evidence.disposed", ACT_BODIES["evidence.disposed"], desk.actor("judy")
    )
    person = desk.person(_actor_of(act))
    before = desk.events(item)

    offered = act_forms(text(person.get(f"/examiner/items/{item}")))
    response = post_act(person, item, act.split(".")[1], ACT_BODIES[act])

    assert offered == set()
    assert response.status_code == 409
    assert "is not allowed" in text(response) and "What is possible now: nothing" in text(response)
    assert desk.events(item) == before


@pytest.mark.parametrize(
    "act", ["evidence.unsealed", "evidence.checked_in", "evidence.hold_released"]
)
def test_an_act_a_fresh_item_forbids_is_refused_with_what_is_possible(desk: Desk, act: str) -> None:
    person = desk.person("eva")

    response = post_act(person, desk.item, act.split(".")[1], ACT_BODIES[act])

    assert response.status_code == 409 and "evidence.sealed" not in desk.events(desk.item)
    assert "What is possible now:" in text(response) and "noted" in text(response)
    assert desk.events(desk.item) == ["evidence.registered"]


def test_an_examiner_s_forged_disposal_is_refused(desk: Desk) -> None:
    response = post_act(desk.person("eva"), desk.item, "disposed", ACT_BODIES["evidence.disposed"])

    assert response.status_code == 403 and "only an approver" in text(response)
    assert desk.events(desk.item) == ["evidence.registered"]


def test_only_the_custodian_named_confirms_receipt(desk: Desk) -> None:
    item = _prepare(desk, "evidence.received")
    sender = desk.person("eva")

    offered = act_forms(text(sender.get(f"/examiner/items/{item}")))
    forged = post_act(sender, item, "received", ACT_BODIES["evidence.received"])

    assert "received" not in offered
    assert forged.status_code == 403 and desk.events(item)[-1] == "evidence.transferred"


def test_every_missing_field_is_named_beside_it_and_what_was_typed_is_kept(desk: Desk) -> None:
    person = desk.person("eva")

    response = post_act(person, desk.item, "transferred", {"location": "Room B-12"})

    page = text(response)
    assert response.status_code == 422
    assert 'id="transferred-from-error"' in page and 'id="transferred-reason-error"' in page
    assert 'id="transferred-to-error"' in page
    assert 'value="Room B-12"' in page and '<details class="act" open>' in page
    assert desk.events(desk.item) == ["evidence.registered"]


def test_unsealing_names_the_seal_the_item_carries(desk: Desk) -> None:
    item = _prepare(desk, "evidence.unsealed")
    person = desk.person("eva")

    page = text(person.get(f"/examiner/items/{item}"))
    wrong = post_act(person, item, "unsealed", {"reason": "exam", "seal": "S-9999"})

    assert 'name="seal" value="S-0042"' in page
    assert wrong.status_code == 422 and "carries seal S-0042" in text(wrong)


# -- registering and uploading -------------------------------------------------------------------


def test_registering_a_physical_item_records_its_seizure(desk: Desk) -> None:
    person = desk.person("eva")
    path = f"/examiner/cases/{desk.case_id}/register"
    fields = {f"seizure.{k}": v for k, v in SEIZURE.items()} | {"seizure.at": "2026-11-27T09:30"}

    response = person.form(path, path, {"exhibit": "EX-07", "description": "a tablet", **fields})
    page = text(person.get(response.headers["Location"]))

    assert response.status_code == 303
    assert "EX-07" in page and SEIZURE["by"] in page and "27 Nov 2026, 09:30 UTC" in page


def test_a_registration_names_every_missing_field_at_once(desk: Desk) -> None:
    person = desk.person("eva")
    path = f"/examiner/cases/{desk.case_id}/register"
    size = desk.deployment.ledger.size()

    response = person.form(path, path, {"exhibit": "EX-08", "seizure.by": "DC Moreira"})

    page = text(response)
    assert response.status_code == 422
    for name in ("description", "seizure-at", "seizure-location", "seizure-packaging"):
        assert f'id="register-{name}-error"' in page, name
    assert 'value="EX-08"' in page and 'value="DC Moreira"' in page
    assert desk.deployment.ledger.size() == size


def upload(person: Browser, desk: Desk, content: bytes, **fields: str) -> TestResponse:
    path = f"/examiner/cases/{desk.case_id}/upload"
    token = csrf_of(person.get(path))
    data = {"csrf_token": token, **fields, "file": (io.BytesIO(content), "image.dd")}
    return person.client.post(path, data=data, content_type="multipart/form-data")


def test_an_uploaded_artifact_is_hashed_by_the_server_and_its_receipt_verifies(
    desk: Desk,
) -> None:
    person = desk.person("eva", page_ingest_max_bytes=4 * 1024 * 1024)
    content = b"\x00\x01 sector " * 150_000  # 1.6 MiB: more than any other request may send

    response = upload(person, desk, content, exhibit="EX-09", description="USB stick image")
    item_page = person.get(response.headers["Location"])
    evidence_id = response.headers["Location"].split("/")[3].split("?")[0]
    receipt = person.get(f"/examiner/items/{evidence_id}/receipt.json")

    assert response.status_code == 303, text(response)
    assert hashlib.sha256(content).hexdigest() in text(item_page)
    assert "Received. The file was hashed" in text(item_page)
    report = verify_receipt(receipt.data, [desk.deployment.keys.current.verifier_key])
    assert report.as_json()["digests"]["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_file_over_the_page_limit_is_refused_with_the_command_that_sends_it(
    desk: Desk,
) -> None:
    person = desk.person("eva", page_ingest_max_bytes=1024)
    size = desk.deployment.ledger.size()

    response = upload(person, desk, b"x" * 4096, exhibit="EX-10", description="big image")

    page = text(response)
    assert response.status_code == 413
    assert (
        "custos ingest image.dd --case C-1 --exhibit EX-10 --description &#39;big image&#39;"
        in page
    )
    assert desk.deployment.ledger.size() == size


def test_an_upload_without_its_session_s_token_is_refused_before_anything_is_read(
    desk: Desk,
) -> None:
    person = desk.person("eva")
    size = desk.deployment.ledger.size()

    response = person.client.post(
        f"/examiner/cases/{desk.case_id}/upload",
        data={
            "csrf_token": "forged",
            "exhibit": "x",
            "description": "x",
            "file": (io.BytesIO(b"x"), "a"),
        },
        content_type="multipart/form-data",
    )

    assert response.status_code == 403 and desk.deployment.ledger.size() == size


def test_an_upload_missing_its_description_and_file_names_both(desk: Desk) -> None:
    person = desk.person("eva")
    path = f"/examiner/cases/{desk.case_id}/upload"
    token = csrf_of(person.get(path))

    response = person.client.post(
        path,
        data={"csrf_token": token, "exhibit": "EX-11", "file": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )

    page = text(response)
    assert response.status_code == 422
    assert 'id="upload-description-error"' in page and 'id="upload-file-error"' in page
    assert 'value="EX-11"' in page


def test_the_case_page_offers_intake_to_examiners_only(desk: Desk) -> None:
    examiner = text(desk.person("eva").get(f"/examiner/cases/{desk.case_id}"))
    approver = desk.person("judy")

    assert "Register a physical item" in examiner and "Upload an artifact" in examiner
    assert "Register a physical item" not in text(approver.get(f"/examiner/cases/{desk.case_id}"))
    assert approver.get(f"/examiner/cases/{desk.case_id}/register").status_code == 403


def test_the_receipt_json_is_what_the_intake_signed(desk: Desk) -> None:
    receipt = desk.person("eva").get(f"/examiner/items/{desk.artifact}/receipt.json")

    assert json.loads(receipt.data)["receipt"].startswith("custos/receipt/v1")
