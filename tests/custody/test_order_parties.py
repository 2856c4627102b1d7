"""Who an order involves and what its document says about them: validation as an act
(Regulation (EU) 2023/1543 Art 4), the languages an order may be in (Art 9), the addressee,
the emergency addressee and the receiving authority (Annex I), the confidentiality order's
reasons and informing the user (Art 13), and the custodian, the system's location and the
mutual assistance request to follow (Budapest Art 29(2)(d), (f)).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from custody.errors import BadRequest, Conflict, FieldErrors, Forbidden
from custody.events import Actor
from custody.order_deadlines import Place
from custody.order_document import OrderDocument
from custody.orders import (
    Order,
    OrderState,
    ServiceTerms,
    allowed_actions,
    apply,
    draft_order,
    order_document_text,
)
from custody.providers import languages_of
from tests.custody.test_order_deadlines import SERVICE, received, served, utc
from tests.custody.test_order_enforcing import BERLIN_PROSECUTOR, EU_TRAFFIC
from tests.custody.test_orders import APPROVER, AUTHORITY, EMERGENCY, act, document
from tests.factories import order_document

VALIDATOR = Actor(id="pr_judge", role="validator")
EU_EPOC = {"legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"}}
POLICE = {
    "name": "Polícia Judiciária, Lisbon",
    "type": "other",
    "file_number": "PJ-2026-17",
    "contact": "pj.lisbon@example.org",
    "state": "PT",
}
PROSECUTOR = {
    "name": "Public Prosecutor, Lisbon",
    "type": "prosecutor",
    "file_number": "17/26.0",
    "contact": "dp.lisbon@example.org",
    "state": "PT",
}
BERLIN_ESTABLISHMENT = {
    "type": "designated_establishment",
    "name": "Example ISP Deutschland GmbH",
    "state": "DE",
    "contact": "legal@isp.example",
}


def pending(**changes: Any) -> Order:
    order, _, _ = draft_order(document(**changes), AUTHORITY, SERVICE - timedelta(days=1))
    return apply(order, "submit", AUTHORITY, SERVICE - timedelta(days=1))[0]


# -- validation as an act (Art 4) ---------------------------------------------------------------


def test_art_4_an_eu_order_from_the_police_is_validated_before_it_is_issued() -> None:
    """A police authority may issue an EU order for subscriber data only once a prosecutor
    (or a judge or court) validated it: approval waits for the validator's act."""
    order = pending(**EU_EPOC, issuing_authority=POLICE, validating_authority=PROSECUTOR)
    assert order.document.needs_validation()
    # The approver may send it back or withdraw it meanwhile, not approve it.
    assert allowed_actions(order, SERVICE, by=APPROVER) == ["send_back", "withdraw"]
    assert allowed_actions(order, SERVICE, by=VALIDATOR) == ["validate"]
    with pytest.raises(Conflict, match=r"awaits its validation \(Art 4\)") as refused:
        apply(order, "approve", APPROVER, SERVICE)
    assert refused.value.allowed_actions == ["send_back", "withdraw"]
    validated, event, _ = apply(order, "validate", VALIDATOR, SERVICE)
    assert event == "order.validated" and validated.state is OrderState.PENDING_APPROVAL
    assert validated.validated_by == VALIDATOR.id
    assert allowed_actions(validated, SERVICE, by=VALIDATOR) == []
    issued, event, _ = apply(validated, "approve", APPROVER, SERVICE + timedelta(hours=1))
    assert event == "order.served" and issued.state is OrderState.SERVED
    assert '"validated_by":"pr_judge"' in order_document_text(issued)


def test_art_4_a_validated_order_is_not_adapted_into_an_unvalidated_revision() -> None:
    """An adaptation is the approver's act alone: it may not serve a text that Art 4 wants
    validated, whether the order needed validation or its revision would."""
    needing = pending(**EU_EPOC, issuing_authority=POLICE, validating_authority=PROSECUTOR)
    validated = apply(needing, "validate", VALIDATOR, SERVICE)[0]
    issued = apply(validated, "approve", APPROVER, SERVICE)[0]
    revised = document(**EU_EPOC, issuing_authority=POLICE, validating_authority=PROSECUTOR)

    assert "adapt" not in allowed_actions(issued, SERVICE, by=APPROVER)
    with pytest.raises(Conflict, match=r"validated under Art 4 is not adapted"):
        apply(issued, "adapt", APPROVER, SERVICE + timedelta(days=1), {"document": revised})
    by_judge = apply(pending(**EU_EPOC), "approve", APPROVER, SERVICE)[0]
    assert "adapt" in allowed_actions(by_judge, SERVICE, by=APPROVER)
    with pytest.raises(BadRequest, match=r"would need validation \(Art 4\)"):
        apply(by_judge, "adapt", APPROVER, SERVICE + timedelta(days=1), {"document": revised})


def test_art_4_an_order_its_issuer_may_issue_alone_is_not_validated() -> None:
    judge = pending(**EU_EPOC)  # the factory's issuer is a judge
    prosecutor = pending(**EU_EPOC, issuing_authority=PROSECUTOR)
    national = pending(issuing_authority=POLICE)
    for order in (judge, prosecutor, national):
        assert not order.document.needs_validation()
        with pytest.raises(Conflict, match=r"may issue the order alone \(Art 4\)"):
            apply(order, "validate", VALIDATOR, SERVICE)
        assert apply(order, "approve", APPROVER, SERVICE)[0].state is OrderState.SERVED
    assert '"validated_by"' not in order_document_text(
        apply(judge, "approve", APPROVER, SERVICE)[0]
    )


def test_art_4_only_a_validator_who_did_not_write_the_order_validates_it() -> None:
    order = pending(**EU_EPOC, issuing_authority=POLICE, validating_authority=PROSECUTOR)
    for by in (AUTHORITY, APPROVER):
        with pytest.raises(Forbidden):
            apply(order, "validate", by, SERVICE)
    author = Actor(id=AUTHORITY.id, role="validator")
    with pytest.raises(Forbidden, match="four-eyes"):
        apply(order, "validate", author, SERVICE)
    assert "validate" not in allowed_actions(order, SERVICE, by=author)


# -- languages (Art 9) ----------------------------------------------------------------------------


def test_art_9_an_eu_order_is_in_an_official_language_of_the_enforcing_state() -> None:
    """The enforcing State is Germany: German is accepted, Portuguese is not unless the
    provider declared it accepts it."""
    portuguese = {**EU_TRAFFIC, "language": "pt-PT"}
    assert served(**EU_TRAFFIC).state is OrderState.SERVED
    with pytest.raises(BadRequest, match=r"language pt-PT .* de \(Regulation .* Art 9\)"):
        served(**portuguese)
    accepts = ServiceTerms(place=Place("Europe/Dublin", "IE"), languages=("en", "pt"))
    assert served(terms=accepts, **portuguese).state is OrderState.SERVED


def test_art_9_without_an_enforcing_authority_the_providers_country_decides() -> None:
    """An EU order for subscriber data to an Irish provider: Irish or English."""
    assert served(**EU_EPOC, language="en").state is OrderState.SERVED
    assert served(**EU_EPOC, language="ga").state is OrderState.SERVED
    with pytest.raises(BadRequest, match="Art 9"):
        served(**EU_EPOC, language="fr")
    nowhere = ServiceTerms(place=Place())
    assert served(terms=nowhere, **EU_EPOC, language="fr").state is OrderState.SERVED
    assert served(language="fr").state is OrderState.SERVED  # not an EU order


def test_art_9_an_adapted_revision_is_checked_too() -> None:
    order = served(**EU_EPOC, language="en")
    changed = document(**EU_EPOC, language="fr")
    with pytest.raises(BadRequest, match="Art 9"):
        act(order, "adapt", SERVICE + timedelta(days=1), {"document": changed})


def test_a_provider_names_the_languages_it_accepts_as_bcp_47_tags() -> None:
    assert languages_of(None) == () and languages_of(["en", "pt-BR"]) == ("en", "pt-BR")
    for bad in ("en", ["english"], ["en", "en"], [7]):
        with pytest.raises(BadRequest, match="languages"):
            languages_of(bad)


# -- Annex I: addressee, emergency addressee, receiving authority ----------------------------------


def test_annex_i_the_addressee_decides_the_enforcing_state() -> None:
    """The order goes to the provider's German establishment: the enforcing authority must be
    German, and without one the order is not issued, whatever the provider's own country."""
    order = served(**EU_TRAFFIC, addressee=BERLIN_ESTABLISHMENT)
    assert order.document.addressee is not None and order.document.addressee.state == "DE"
    french = {**BERLIN_PROSECUTOR, "state": "FR", "time_zone": "Europe/Paris"}
    with pytest.raises(FieldErrors, match=r"enforcing_authority\.state: .* DE"):
        document(**{**EU_TRAFFIC, "enforcing_authority": french}, addressee=BERLIN_ESTABLISHMENT)
    portuguese_provider = ServiceTerms(place=Place("Europe/Lisbon", "PT"))
    with pytest.raises(BadRequest, match=r"established in DE.*Art 8\(1\)"):
        served(
            terms=portuguese_provider,
            **{**EU_TRAFFIC, "enforcing_authority": None},
            addressee=BERLIN_ESTABLISHMENT,
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"addressee": {**BERLIN_ESTABLISHMENT, "type": "establishment"}}, "addressee.type"),
        ({"addressee": {**BERLIN_ESTABLISHMENT, "state": "Germany"}}, "addressee.state"),
        ({"emergency_addressee": BERLIN_ESTABLISHMENT}, "emergency_addressee: needs"),
        (
            {"emergency": EMERGENCY, "emergency_addressee": {**BERLIN_ESTABLISHMENT, "name": ""}},
            "emergency_addressee.name",
        ),
        ({"receiving_authority": {"name": "PJ"}}, "receiving_authority.contact"),
        ({"custodian": ""}, "custodian"),
        ({"system_location": "x" * 1001}, "system_location"),
        ({"mla_request_intended": "yes"}, "mla_request_intended"),
        (
            {"confidentiality": {"no_user_notice": False, "reasons": "Why."}},
            "confidentiality.reasons: needs",
        ),
    ],
)
def test_the_new_parts_of_the_document_are_checked_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(FieldErrors, match=field):
        OrderDocument.from_json(order_document(**changes))


def test_an_emergency_may_go_to_any_establishment_and_the_parts_round_trip() -> None:
    changes = {
        "emergency": EMERGENCY,
        "emergency_addressee": {**BERLIN_ESTABLISHMENT, "type": "establishment"},
        "addressee": BERLIN_ESTABLISHMENT,
        "receiving_authority": {"name": "Polícia Judiciária", "contact": "pj@example.org"},
        "custodian": "Example ISP's data centre operator",
        "system_location": "Frankfurt am Main",
        "mla_request_intended": True,
    }
    doc = document(**changes)
    assert OrderDocument.from_json(doc.as_json()) == doc
    assert {name: doc.as_json()[name] for name in changes} == changes


def test_a_document_without_the_new_parts_keeps_its_json() -> None:
    """Orders issued before these parts existed keep the very text their notes signed."""
    text = document().as_json()
    for name in ("addressee", "emergency_addressee", "receiving_authority", "custodian"):
        assert name not in text
    assert "reasons" not in text["confidentiality"]


# -- Art 13: the confidentiality order's reasons, and informing the user ----------------------


def test_art_13_2_an_eu_order_keeping_the_user_uninformed_says_why() -> None:
    """Checked when the order is issued (or adapted), so that an order kept from before the
    rule still reads."""
    silent = {"no_user_notice": True}
    with pytest.raises(BadRequest, match=r"confidentiality.reasons is required.*Art 13\(2\)"):
        served(**EU_EPOC, confidentiality=silent)
    assert document(**EU_EPOC, confidentiality=silent).confidentiality.reasons is None
    reasons = {**silent, "reasons": "Telling the user would warn the other suspects."}
    assert served(**EU_EPOC, confidentiality=reasons).state is OrderState.SERVED
    assert served(confidentiality=silent).state is OrderState.SERVED  # national law


def test_art_13_informing_the_user_is_recorded_even_after_the_order_is_closed() -> None:
    order = received(served(**EU_EPOC), utc(2026, 3, 2, 10, 0))
    not_yet, event, details = act(
        order,
        "record_user_information",
        utc(2026, 3, 3),
        {"informed": False, "details": "Informing now would warn the other suspects."},
    )
    assert event == "order.user_informed" and details == {"informed": False}
    assert not_yet.state is OrderState.SERVED
    closed, _, _ = act(not_yet, "close", utc(2026, 4, 1))
    told, _, details = act(
        closed,
        "record_user_information",
        utc(2026, 5, 1),
        {"informed": True, "details": "Told by letter of the order and the remedies."},
    )
    assert told.state is OrderState.CLOSED and details == {"informed": True}
    assert told.user_informed_at == utc(2026, 5, 1)
    with pytest.raises(Conflict, match="the user was informed"):
        act(told, "record_user_information", utc(2026, 5, 2), {"informed": True, "details": "x"})


def test_art_13_the_user_is_informed_of_an_order_to_produce_once_served() -> None:
    with pytest.raises(Conflict, match="the order is pending_approval"):
        act(pending(), "record_user_information", SERVICE, {"informed": True, "details": "x"})
    withdrawn, _, _ = act(pending(), "withdraw", SERVICE)
    with pytest.raises(Conflict, match="never served"):
        act(withdrawn, "record_user_information", SERVICE, {"informed": True, "details": "x"})
