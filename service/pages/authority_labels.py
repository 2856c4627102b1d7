"""The words of the authority's desk: the drafting form's labels and hints, the board's
sections, the acts' buttons, and each event of an order's timeline as a sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from custody.order_document import (
    ADDRESSEE_TYPES,
    AUTHORITY_TYPES,
    DATA_CATEGORIES,
    EMERGENCY_ADDRESSEE_TYPES,
    KINDS,
    LEGAL_BASES,
    LISTED_OFFENCES,
    TARGET_TYPES,
)
from custody.order_enforcing import ANSWERS, REFUSAL_GROUNDS, RESTRICTIONS
from custody.verify.report import event_label
from service.order_page import (
    ADDRESSEE_TYPE_LABELS,
    AUTHORITY_TYPE_LABELS,
    DATA_CATEGORY_LABELS,
    EMERGENCY_CATEGORY_LABELS,
    INSTRUMENT_LABELS,
    KIND_LABELS,
    LISTED_OFFENCE_LABELS,
    TARGET_TYPE_LABELS,
)
from service.pages.display import GROUND_LABELS

SECTIONS: Mapping[str, dict[str, str]] = {
    "overdue": {
        "title": "Overdue",
        "empty": "No order is overdue.",
        "hint": "Still owed past their deadline: seek enforcement, close or withdraw them.",
    },
    "due_soon": {
        "title": "Due soon",
        "empty": "No deadline or hold ends in the next two days.",
        "hint": "A deadline or a hold that ends within two days.",
    },
    "not_received": {
        "title": "Not yet received by the provider",
        "empty": "The providers received every order served.",
        "hint": "Their period runs from the provider's receipt; the notice may be sent again.",
    },
    "awaiting_answer": {
        "title": "Awaiting your answer",
        "empty": "No objection or request for clarification awaits an answer.",
        "hint": "The provider objected or asked for clarification.",
    },
    "approval": {
        "title": "Awaiting approval",
        "empty": "No order awaits approval.",
        "hint": "Submitted, to be approved (or sent back) by an approver who did not write it.",
    },
    "drafts": {
        "title": "Drafts",
        "empty": "No saved draft.",
        "hint": "Saved, not yet submitted for approval.",
    },
    "all": {"title": "All orders", "empty": "No orders in your cases.", "hint": ""},
}
ACT_LABELS = {
    "drafted": "Draft saved",
    "revised": "Draft changed",
    "submit": "Submit for approval",
    "validate": "Validate the order",
    "approve": "Approve and serve the order",
    "send_back": "Send back to the drafter",
    "withdraw": "Withdraw the order",
    "resend": "Send the notice of service again",
    "extend": "Extend the hold",
    "confirm_production_request": "Confirm that a production request follows",
    "answer_objection": "Answer the objection",
    "answer_clarification": "Answer the request for clarification",
    "seek_enforcement": "Record that enforcement is sought",
    "close": "Close the order",
    "record_enforcing_answer": "Record the enforcing authority's answer",
    "record_user_information": "Record whether the user was informed",
    "restrict_data": "Record that the data were deleted or restricted",
}
REFUSAL_GROUND_LABELS = {
    "immunity_or_privilege": "Immunity or privilege, or rules on press freedom (Art 12(1)(a))",
    "fundamental_rights": "Manifest breach of a fundamental right (Art 12(1)(b))",
    "ne_bis_in_idem": "Ne bis in idem (Art 12(1)(c))",
    "no_dual_criminality": "Not an offence in the enforcing State (Art 12(1)(d))",
}
ENFORCING_ANSWER_LABELS = {
    "no_ground": "No ground for refusal",
    "ground": "A ground for refusal",
    "conditions": "The data may be used under conditions",
}
RESTRICTION_LABELS = {"deleted": "Deleted", "restricted": "Restricted"}
assert set(REFUSAL_GROUND_LABELS) == set(REFUSAL_GROUNDS)
assert set(ENFORCING_ANSWER_LABELS) == set(ANSWERS)
assert set(RESTRICTION_LABELS) == set(RESTRICTIONS)
assert set(LISTED_OFFENCE_LABELS) == set(LISTED_OFFENCES)

# The options of the form's choices, in the document's order.
KIND_OPTIONS = [(k, KIND_LABELS[k]) for k in KINDS]
INSTRUMENT_OPTIONS = [(i, INSTRUMENT_LABELS[i]) for i in LEGAL_BASES]
AUTHORITY_TYPE_OPTIONS = [(t, AUTHORITY_TYPE_LABELS[t]) for t in AUTHORITY_TYPES]
TARGET_TYPE_OPTIONS = [(t, TARGET_TYPE_LABELS[t]) for t in TARGET_TYPES]
CATEGORY_OPTIONS = [(c, DATA_CATEGORY_LABELS[c]) for c in DATA_CATEGORIES]
EMERGENCY_OPTIONS = list(EMERGENCY_CATEGORY_LABELS.items())
ADDRESSEE_TYPE_OPTIONS = [(t, ADDRESSEE_TYPE_LABELS[t]) for t in ADDRESSEE_TYPES]
EMERGENCY_ADDRESSEE_TYPE_OPTIONS = [
    (t, ADDRESSEE_TYPE_LABELS[t]) for t in EMERGENCY_ADDRESSEE_TYPES
]
LISTED_OFFENCE_OPTIONS = [
    (c, f"{LISTED_OFFENCE_LABELS[c]} ({LISTED_OFFENCES[c]})") for c in LISTED_OFFENCES
]

# Each form field's label, by the document path it writes.
FIELD_LABELS = {
    "reference": "Reference",
    "case": "Case",
    "provider": "Addressee provider",
    "kind": "Kind of order",
    "language": "Language of the order",
    "legal_basis": "Legal basis",
    "legal_basis.instrument": "Instrument",
    "legal_basis.citation": "Provision cited",
    "issuing_authority": "Issuing authority",
    "validating_authority": "Validating authority",
    "offence": "Offence",
    "offence.description": "Description of the offence",
    "offence.provision": "Provision defining the offence",
    "offence.max_penalty_years": "Maximum custodial sentence in years",
    "offence.listed_category": "Offence listed in Art 5(4)(b)-(c)",
    "offence.annex_iv_category": "Category in Annex IV",
    "offence_state": "State where the offence was committed",
    "residence_state": "State where the person concerned resides",
    "facts": "Facts",
    "link": "Link between the data and the offence",
    "necessity_and_proportionality": "Necessity and proportionality",
    "targets": "Targets",
    "data_categories": "Data concerned",
    "time_range.start": "From",
    "time_range.end": "To",
    "time_range": "Time range",
    "preservation_days": "Days to preserve the data",
    "emergency.flag": "Emergency",
    "emergency.category": "Kind of emergency",
    "emergency.justification": "Why it is an emergency",
    "confidentiality.no_user_notice": "The user must not be told",
    "confidentiality.until": "Until",
    "confidentiality.reasons": "Why the user is not told",
    "enforcing_authority": "Enforcing authority",
    "enforcing_authority.state": "Enforcing State",
    "enforcing_authority.notification_url": "The address the enforcing authority's notice goes to",
    "addressee": "Addressee",
    "emergency_addressee": "Addressee in an emergency",
    "receiving_authority": "Receiving authority",
    "receiving_authority.name": "Name of the receiving authority",
    "receiving_authority.contact": "Contact of the receiving authority",
    "custodian": "Custodian of the data",
    "system_location": "Location of the system",
    "mla_request_intended": "Request for mutual assistance",
    "linked_order": "Linked order",
}
ADDRESSEE_FIELD_LABELS = {"type": "Type", "name": "Name", "state": "State", "contact": "Contact"}
AUTHORITY_FIELD_LABELS = {
    "name": "Name",
    "type": "Type",
    "file_number": "File number",
    "contact": "Contact",
    "state": "State it acts for",
}
TARGET_FIELD_LABELS = {
    "type": "Type",
    "value": "Identifier",
    "port": "Source port",
    "time": "Time of use (UTC)",
}
_TARGET = re.compile(r"^targets\[(\d+)\]\.?(.*)$")
_CATEGORY = re.compile(r"^data_categories\[(\d+)\]$")


def field_label(path: str) -> str:
    """The words a fault of ``path`` is named by: the field's label, with its part."""
    if path in FIELD_LABELS:
        return FIELD_LABELS[path]
    part, _, name = path.partition(".")
    if part in ("issuing_authority", "validating_authority") and name in AUTHORITY_FIELD_LABELS:
        return f"{AUTHORITY_FIELD_LABELS[name]} of the {FIELD_LABELS[part].lower()}"
    if part in ("addressee", "emergency_addressee") and name in ADDRESSEE_FIELD_LABELS:
        return f"{ADDRESSEE_FIELD_LABELS[name]} of the {FIELD_LABELS[part].lower()}"
    if part == "enforcing_authority" and name:
        return f"The enforcing authority's {name.replace('_', ' ')}"
    target = _TARGET.match(path)
    if target:
        number = int(target.group(1)) + 1
        name = target.group(2)
        label = TARGET_FIELD_LABELS.get(name, name)
        return f"Target {number}" + (f", {label[:1].lower()}{label[1:]}" if name else "")
    if _CATEGORY.match(path):
        return FIELD_LABELS["data_categories"]
    return path.replace("_", " ").replace(".", ": ").capitalize() if path else "The order"


def target_paths(rows: int) -> list[str]:
    return [f"targets[{i}].{name}" for i in range(rows) for name in TARGET_FIELD_LABELS]


def category_paths() -> list[str]:
    return [f"data_categories.{c}" for c in DATA_CATEGORIES]


def event_line(entry: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """An event of the order's timeline as people read it: what happened and who did it."""
    what = event_label(entry["type"])
    actor = entry["actor"]
    who = "Custos" if actor["role"] == "system" else names.get(actor["id"], actor["id"])
    data = entry.get("data") or {}
    details = []
    if data.get("ground") and entry["type"] == "order.objected":
        details.append(GROUND_LABELS.get(data["ground"], data["ground"]))
    if data.get("ground") and entry["type"] == "order.enforcing_answered":
        details.append(REFUSAL_GROUND_LABELS.get(data["ground"], data["ground"]))
    if data.get("answer") in ENFORCING_ANSWER_LABELS:
        details.append(ENFORCING_ANSWER_LABELS[data["answer"]])
    if data.get("days"):
        details.append(f"by {data['days']} days")
    if data.get("measure") in RESTRICTION_LABELS:
        details.append(RESTRICTION_LABELS[data["measure"]].lower())
    line = f"{what}, by {who}"
    return line + (f": {'; '.join(details)}" if details else "")
