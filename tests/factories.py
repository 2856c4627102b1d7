"""What many tests build the same way: a valid body for each custody act, a seizure, cases with
their members, order documents, and the checks of a ``custos`` command's result."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from click.testing import Result

from custody.cases import CASE_OPENERS, GRANTEE_ROLES
from custody.errors import Conflict
from custody.order_document import PARTIAL_TRAFFIC_DISCLOSURE, PRESERVATION, PRODUCTION

if TYPE_CHECKING:
    from storage.deployment import Deployment

# -- custody acts ----------------------------------------------------------------------------

# The examiner most tests act as; a transfer's receiving custodian must be a member of the
# item's case, so the bodies below hand items to this one.
CUSTODIAN = "alice"

# A valid body for each act (the fields each act requires, and some optional ones).
ACT_BODIES: dict[str, dict[str, str]] = {
    "evidence.transferred": {
        "from": "lab",
        "to": CUSTODIAN,
        "location": "B2",
        "reason": "storage",
    },
    "evidence.received": {"location": "vault B2", "seal_intact": "yes"},
    "evidence.checked_out": {"to": "carol", "purpose": "imaging", "authority": "W-17"},
    "evidence.checked_in": {"by": "carol", "condition": "intact", "location": "vault B2"},
    "evidence.examined": {
        "tool": "X-Ways",
        "version": "21.0",
        "purpose": "triage",
        "location": "lab 3",
        "findings": "a private diary",
    },
    "evidence.noted": {"text": "smells of smoke"},
    "evidence.sealed": {"seal": "S-0042"},
    "evidence.unsealed": {"reason": "examination", "seal": "S-0042"},
    "evidence.hold_set": {"authority": "court order 9"},
    "evidence.hold_released": {"authority": "court order 10"},
    "evidence.disposed": {"authority": "retention ended", "method": "secure erase"},
}

# What registering a physical item records of its seizure (custody.acts.SEIZURE_FIELDS).
SEIZURE: dict[str, str] = {
    "at": "2026-11-27T09:30:00Z",
    "location": "14 Harbour Street, flat 2",
    "by": "DC Ines Moreira",
    "authority": "search warrant W-17",
    "packaging": "evidence bag EB-331, sealed S-0041",
}

# -- cases -----------------------------------------------------------------------------------


def in_case(deployment: Deployment, reference: str, *names: str) -> str:
    """Put the principals ``names`` in the case ``reference`` (opened, if it is not yet, by
    the first examiner or authority among them): members, or for a court a grant of the
    whole case for a year. Returns the case's id."""
    principals = [deployment.principals.get(name) for name in names]
    operator = deployment.principals.get("operator").actor
    case = deployment.cases.store.by_reference(reference)
    if case is None:
        opener = next(p for p in principals if p.role in CASE_OPENERS)
        values = {"reference": reference, "title": f"{reference} title", "authority": "DPP"}
        try:
            case, _ = deployment.cases.open(values, opener.actor)
        except Conflict:  # another process opened it first
            case = deployment.cases.store.by_reference(reference)
            assert case is not None
    members = {m.principal_id for m in deployment.cases.store.members(case.id)}
    for principal in principals:
        if principal.role in GRANTEE_ROLES:
            grant = {
                "court": principal.name,
                "proceeding": f"trial of {reference}",
                "ends_at": deployment.ledger.clock() + timedelta(days=365),
            }
            deployment.cases.grant_court(case.id, grant, operator)
        elif principal.id not in members:
            deployment.cases.add_member(case.id, principal.name, "member", operator)
            members.add(principal.id)
    return case.id


# -- order documents -------------------------------------------------------------------------

PROVIDER_ID = "prov_mailco"
EMAIL = "suspect@example.com"
IP = "203.0.113.7"
FACTS = "On 3 January the victim's files were encrypted and a ransom demanded."
EMERGENCY = {
    "flag": True,
    "category": "threat_to_life",
    "justification": "The ransom note threatens the hospital's patients tonight.",
}
_BASES = {
    PRODUCTION: ("un_cybercrime_art27", "UN Convention against Cybercrime, Art 27(1)(a)"),
    PRESERVATION: ("un_cybercrime_art25", "UN Convention against Cybercrime, Art 25(1)"),
    PARTIAL_TRAFFIC_DISCLOSURE: ("un_cybercrime_art26", "UN Convention against Cybercrime, Art 26"),
}


def order_document(
    provider: str = PROVIDER_ID, kind: str = PRODUCTION, **changes: Any
) -> dict[str, Any]:
    """A valid order document of ``kind`` to ``provider`` in JSON form, with ``changes``."""
    instrument, citation = _BASES[kind]
    base: dict[str, Any] = {
        "reference": "PO-2026-0017",
        "case": "CASE-1",
        "kind": kind,
        "legal_basis": {"instrument": instrument, "citation": citation},
        "issuing_authority": {
            "name": "Investigating judge, Lisbon",
            "type": "judge",
            "file_number": "123/26.0",
            "contact": "judge.lisbon@example.org",
            "state": "PT",
        },
        "provider": provider,
        "offence": {"description": "ransomware extortion", "provision": "Penal Code s. 221"},
        "facts": FACTS,
        "link": "The ransom note named this mailbox; the attack came from this address.",
        "necessity_and_proportionality": "Only the two identifiers, for two months.",
        "targets": [
            {"type": "email", "value": EMAIL},
            {"type": "ip", "value": IP, "port": 51234, "time": "2026-01-03T10:00:00Z"},
        ],
        "data_categories": ["traffic"] if kind == PARTIAL_TRAFFIC_DISCLOSURE else ["subscriber"],
        "time_range": {"start": "2026-01-01T00:00:00Z", "end": "2026-02-28T00:00:00Z"},
    }
    base.update(changes)
    return base


def full_order_document(provider: str, kind: str = PRODUCTION, **changes: Any) -> dict[str, Any]:
    """An order document that sets every optional field its kind allows."""
    full: dict[str, Any] = {
        "reference": "PO-2026-0042",
        "case": "CASE-7",
        "legal_basis": {
            "instrument": "national_law",
            "citation": "Code of Criminal Procedure, s. 189",
        },
        "issuing_authority": {
            "name": "Public Prosecutor, Porto",
            "type": "prosecutor",
            "file_number": "77/26.1",
            "contact": "dp.porto@example.org",
        },
        "validating_authority": {
            "name": "Investigating judge, Porto",
            "type": "judge",
            "file_number": "77/26.1-J",
            "contact": "tic.porto@example.org",
        },
        "targets": [
            {"type": "email", "value": EMAIL},
            {"type": "ip", "value": IP, "port": 51234, "time": "2026-01-03T10:00:00.250000Z"},
        ],
        "data_categories": ["subscriber", "traffic"],
        "confidentiality": {"no_user_notice": True, "until": "2027-06-30T00:00:00Z"},
        "linked_order": "PR-2026-0040",
        "language": "pt-PT",
    }
    if kind == PRESERVATION:
        full["preservation_days"] = 30
    return order_document(provider, kind, **{**full, **changes})


# -- the custos command ------------------------------------------------------------------------


def ok(result: Result) -> Result:
    """``result`` of a command that succeeded."""
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def json_lines(result: Result) -> list[dict[str, Any]]:
    """The JSON objects a successful ``--json`` command printed, one per line."""
    return [json.loads(line) for line in ok(result).stdout.splitlines()]


def json_object(result: Result) -> dict[str, Any]:
    """The one JSON object a successful ``--json`` command printed."""
    [obj] = json_lines(result)
    return obj


def failed(result: Result) -> str:
    """The message of a clean CLI failure: non-zero exit, no traceback."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output
