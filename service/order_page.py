"""An issued order as a printable HTML page that a provider's lawyer can read.

The page is rendered from the signed ``custos/order/v1`` note, so it shows what was signed,
and from the order's view for what changes after service (its state and deadline). It is
self-contained: one inline style sheet (with print rules), no script, nothing fetched from
elsewhere, and every value from the order HTML-escaped, its invisible characters (bidi
controls ...) shown as escapes (``custody.verify.escaping``). The note's signature lines close the
page with each key's name and key ID, so the reader can match them to the service key
(``/v1/log/key``) and check the note itself, which the page reproduces in full.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from custody.errors import IntegrityError
from custody.note import MalformedNote, Note
from custody.note_types import ORDER_TYPE
from custody.verify.escaping import escape_html

# Sent with the page: it may use its inline style sheet, and nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

KIND_LABELS = {
    "production": "Production order",
    "preservation": "Preservation order",
    "partial_traffic_disclosure": "Order for the expedited partial disclosure of traffic data",
}
INSTRUMENT_LABELS = {
    "un_cybercrime_art25": "UN Convention against Cybercrime, Article 25 "
    "(expedited preservation of stored electronic data)",
    "un_cybercrime_art26": "UN Convention against Cybercrime, Article 26 "
    "(expedited preservation and partial disclosure of traffic data)",
    "un_cybercrime_art27": "UN Convention against Cybercrime, Article 27 (production order)",
    "budapest_art16": "Budapest Convention, Article 16 "
    "(expedited preservation of stored computer data)",
    "budapest_art17": "Budapest Convention, Article 17 "
    "(expedited preservation and partial disclosure of traffic data)",
    "budapest_art18": "Budapest Convention, Article 18 (production order)",
    "budapest_protocol2_art6": "Second Additional Protocol to the Budapest Convention, "
    "Article 6 (request for domain name registration information)",
    "budapest_protocol2_art7": "Second Additional Protocol to the Budapest Convention, "
    "Article 7 (disclosure of subscriber information)",
    "eu_2023_1543_epoc": "Regulation (EU) 2023/1543, European Production Order (EPOC)",
    "eu_2023_1543_epoc_pr": "Regulation (EU) 2023/1543, European Preservation Order (EPOC-PR)",
    "national_law": "National law",
}
AUTHORITY_TYPE_LABELS = {
    "judge": "Judge",
    "court": "Court",
    "prosecutor": "Prosecutor",
    "other": "Other competent authority",
}
TARGET_TYPE_LABELS = {
    "account": "Account",
    "email": "E-mail address",
    "phone": "Telephone number",
    "ip": "IP address",
    "device_id": "Device identifier",
    "domain": "Domain name",
    "other": "Other identifier",
}
DATA_CATEGORY_LABELS = {
    "subscriber": "Subscriber data",
    "identification_only": "Data requested for the sole purpose of identifying the user",
    "traffic": "Traffic data",
    "content": "Content data",
    "domain_registration": "Domain name registration data",
}
EMERGENCY_CATEGORY_LABELS = {
    "threat_to_life": "Imminent threat to the life of a person",
    "threat_to_physical_integrity": "Imminent threat to the physical integrity of a person",
    "threat_to_safety": "Imminent threat to the safety of a person",
    "threat_to_critical_infrastructure": "Imminent threat to a critical infrastructure",
}
LISTED_OFFENCE_LABELS = {
    "non_cash_payment_fraud": "Non-cash payment fraud",
    "child_sexual_abuse": "Child sexual abuse and exploitation",
    "attacks_against_information_systems": "Attacks against information systems",
    "terrorism": "Terrorist offences",
}
ADDRESSEE_TYPE_LABELS = {
    "designated_establishment": "Designated establishment",
    "legal_representative": "Legal representative",
    "establishment": "Establishment (in an emergency)",
}

_STYLE = """
@page { size: A4; margin: 18mm 16mm; }
body { font: 11pt/1.45 Georgia, "Times New Roman", serif; color: #000; background: #fff;
  max-width: 46em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 18pt; margin: 0 0 .2em; }
h2 { font-size: 12.5pt; border-bottom: 1px solid #444; margin: 1.4em 0 .5em; }
h3 { font-size: 11pt; margin: .8em 0 .2em; }
dl { display: grid; grid-template-columns: 14em 1fr; gap: .25em 1em; margin: 0; }
dt { font-weight: bold; }
dd { margin: 0; }
dd .text, dd ul { margin: 0; }
dd ul { padding-left: 1.2em; }
.alert { font-weight: bold; border: 2px solid #000; padding: .3em .5em; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: .3em 0 .8em; }
.subtitle { margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #666; padding: .25em .4em; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
pre { font: 8.5pt/1.3 "DejaVu Sans Mono", Menlo, monospace; white-space: pre-wrap;
  overflow-wrap: anywhere; border: 1px solid #999; padding: .5em; }
.mono { font-family: "DejaVu Sans Mono", Menlo, monospace; overflow-wrap: anywhere; }
@media print {
  body { margin: 0; max-width: none; }
  section, tr, dl { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def _e(value: object) -> str:
    return escape_html(value)


def _label(labels: Mapping[str, str], value: object) -> str:
    return _e(labels.get(str(value), value))


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; each value is HTML already escaped by the caller."""
    return (
        "<dl>" + "".join(f"<dt>{_e(name)}</dt><dd>{value}</dd>" for name, value in pairs) + "</dl>"
    )


def _text(value: object) -> str:
    return f'<p class="text">{_e(value)}</p>'


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _authority(authority: Mapping[str, Any] | None) -> str:
    if authority is None:
        return "<p>The order names no validating authority.</p>"
    return _rows(
        [
            ("Name", _e(authority.get("name"))),
            ("Type", _label(AUTHORITY_TYPE_LABELS, authority.get("type"))),
            ("File number", _e(authority.get("file_number"))),
            ("Contact", _e(authority.get("contact"))),
        ]
    )


def _addressees(doc: Mapping[str, Any]) -> str:
    """Whom of the provider the order is addressed to (Annex I), and in an emergency."""
    rows = []
    for key, title in (("addressee", "Addressed to"), ("emergency_addressee", "In an emergency")):
        part = doc.get(key)
        if part:
            rows.append(
                (
                    title,
                    f"{_e(part.get('name'))}, {_label(ADDRESSEE_TYPE_LABELS, part.get('type'))}"
                    f" in {_e(part.get('state'))}; {_e(part.get('contact'))}",
                )
            )
    return (
        _rows(rows) if rows else "<p>The provider (no establishment or representative named).</p>"
    )


def _transfer(doc: Mapping[str, Any]) -> str:
    """Where the data go, and the Budapest Art 29(2)(d) and (f) facts where given."""
    receiving = doc.get("receiving_authority")
    rows = [
        (
            "Receiving authority",
            f"{_e(receiving.get('name'))}; {_e(receiving.get('contact'))}"
            if receiving
            else "The issuing authority",
        ),
        ("Return channel", _e(doc.get("return_channel"))),
    ]
    if doc.get("custodian"):
        rows.append(("Custodian of the data", _e(doc["custodian"])))
    if doc.get("system_location"):
        rows.append(("Location of the system", _e(doc["system_location"])))
    if doc.get("mla_request_intended") is not None:
        rows.append(
            (
                "Request for mutual assistance",
                "Will follow" if doc["mla_request_intended"] else "Not intended",
            )
        )
    return _rows(rows)


def _enforcing(doc: Mapping[str, Any]) -> str:
    enforcing = doc.get("enforcing_authority")
    if not enforcing:
        return "<p>The order names no enforcing authority.</p>"
    return _rows(
        [
            ("Name", _e(enforcing.get("name"))),
            ("State", _e(enforcing.get("state"))),
            ("Contact", _e(enforcing.get("contact"))),
        ]
    )


def _targets(targets: Iterable[Mapping[str, Any]]) -> str:
    head = "<tr><th>#</th><th>Type</th><th>Identifier</th><th>Port</th><th>Time of use</th></tr>"
    body = "".join(
        f"<tr><td>{i}</td><td>{_label(TARGET_TYPE_LABELS, t.get('type'))}</td>"
        f'<td class="mono">{_e(t.get("value"))}</td><td>{_e(t.get("port"))}</td>'
        f"<td>{_e(t.get('time'))}</td></tr>"
        for i, t in enumerate(targets, 1)
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _offence_rows(doc: Mapping[str, Any], offence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The offence's threshold facts (Art 5(4)) and places (Art 8(2)), those given."""
    rows = []
    if offence.get("max_penalty_years") is not None:
        rows.append(("Maximum sentence", f"{_e(offence['max_penalty_years'])} years"))
    if offence.get("listed_category"):
        rows.append(("Listed offence", _label(LISTED_OFFENCE_LABELS, offence["listed_category"])))
    if offence.get("annex_iv_category"):
        rows.append(("Category in Annex IV", _e(offence["annex_iv_category"])))
    if doc.get("offence_state"):
        rows.append(("Committed in", _e(doc["offence_state"])))
    if doc.get("residence_state"):
        rows.append(("The person resides in", _e(doc["residence_state"])))
    return rows


def _minute(moment: str | None, zone: str = "UTC") -> str | None:
    """A time as people read it: to the minute, in ``zone`` (the signed note keeps the exact
    time)."""
    from service.pages.display import local_time  # the pages import this module

    return local_time(moment, zone) if moment else moment


def _deadline(issued: Mapping[str, Any], view: Mapping[str, Any]) -> tuple[str, str]:
    name = "Preserve until" if issued.get("kind") == "preservation" else "Answer due by"
    if view.get("due"):
        due, zone = _minute(view["due"]), view.get("time_zone")
        if not view.get("due_local") or not zone or zone == "UTC":
            return name, _e(due)
        return name, f"{_e(due)} ({_e(_minute(view['due'], zone))}, {_e(zone)})"
    if view.get("hold_until_answered"):
        return name, "Until the production request that the authority confirmed is answered"
    if view.get("clock_paused"):
        return name, "Suspended until the authority answers the request for clarification"
    if view.get("served_at") and not view.get("received"):
        return name, "Not yet received by the provider: the period runs from its receipt"
    if not view.get("served_at") and not issued.get("served_at"):
        return name, "Set when the order is served"
    return name, "Nothing is owed now"


def _signatures(note: Note) -> str:
    head = "<tr><th>Key name</th><th>Key ID (fingerprint)</th><th>Signature line</th></tr>"
    body = "".join(
        f'<tr><td class="mono">{_e(s.name)}</td><td class="mono">{_e(s.key_hash.hex())}</td>'
        f'<td class="mono">{_e(s.line().rstrip())}</td></tr>'
        for s in note.signatures
    )
    return (
        "<p>The order was issued as the signed note reproduced below. Each signature is an "
        "Ed25519 signature of the note's text; the key ID is the first 4 bytes of SHA-256 over "
        "the key name, a newline, 0x01 and the public key, so it identifies the service key "
        'published at <span class="mono">/v1/log/key</span>.</p>'
        f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"
        f"<pre>{_e(note.to_bytes().decode('utf-8'))}</pre>"
    )


def _issued(note: bytes) -> tuple[Note, dict[str, Any]]:
    """The parsed note and the order it signs (its text after the type line)."""
    try:
        parsed = Note.from_bytes(note)
        kind, _, body = parsed.text.partition("\n")
        issued = json.loads(body)
    except (MalformedNote, ValueError):
        raise IntegrityError("the stored order note is not a signed note") from None
    if kind != ORDER_TYPE or not isinstance(issued, dict):
        raise IntegrityError(f"the stored order note is not a {ORDER_TYPE} note")
    return parsed, issued


def render_order_page(note: bytes, view: Mapping[str, Any]) -> str:
    """The page of an issued order: ``note`` is its signed ``custos/order/v1`` note, ``view``
    its ``OrderDesk.view`` (for the state and deadline, which change after service)."""
    title, alert, sections = order_document_html(note, view)
    _, doc = _issued(note)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_e(doc.get("language") or "en")}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{title}</h1>"
        f'<p class="subtitle">Order <span class="mono">{_e(doc.get("id"))}</span>, '
        f"served {_e(_minute(doc.get('served_at')))}</p>{alert}</header>"
        + sections
        + "</body></html>\n"
    )


def order_document_html(
    note: bytes, view: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    """What was signed, as escaped HTML for a page to embed: the order's title, its
    emergency alert (or nothing) and its sections, the signature and the note last.

    ``names`` gives the name of each provider and principal id the order names; a named one
    is shown by its name, its id beside it, small."""
    parsed, doc = _issued(note)
    return issued_order_html(doc, view, names, parsed)


def issued_order_html(
    doc: Mapping[str, Any],
    view: Mapping[str, Any],
    names: Mapping[str, str] | None = None,
    note: Note | None = None,
) -> tuple[str, str, str]:
    """``order_document_html`` of the body of a ``custos/order/v1`` note (``issued_order``);
    without its signed ``note`` (a draft's preview), the signature section says that the
    order is signed when it is approved."""
    known = names or {}

    def who(value: object) -> str:
        if value is None:
            return ""
        name = known.get(str(value))
        if name is None:
            return f'<span class="mono">{_e(value)}</span>'
        return f'{_e(name)} <span class="mono id">{_e(value)}</span>'

    basis = doc.get("legal_basis") or {}
    offence = doc.get("offence") or {}
    emergency = doc.get("emergency") or {}
    confidentiality = doc.get("confidentiality") or {}
    time_range = doc.get("time_range")
    kind = _label(KIND_LABELS, doc.get("kind"))
    categories = "".join(
        f"<li>{_label(DATA_CATEGORY_LABELS, c)}</li>" for c in doc.get("data_categories") or []
    )
    sections = [
        _section(
            "The order",
            _rows(
                [
                    ("Order", f'<span class="mono">{_e(doc.get("id"))}</span>'),
                    ("Reference", _e(doc.get("reference"))),
                    ("Case", _e(doc.get("case"))),
                    ("Kind", kind),
                    ("Addressee provider", who(doc.get("provider"))),
                    ("Drafted by", who(doc.get("drafted_by"))),
                    ("Revised by", ", ".join(map(who, doc.get("revised_by") or [])) or "No one"),
                    ("Approved by", who(doc.get("approved_by")) or "Not yet"),
                    ("Served at", _e(_minute(doc.get("served_at")) or "Not yet")),
                    _deadline(doc, view),
                    ("State", _e(str(view.get("state", "")).replace("_", " "))),
                    ("Language", _e(doc.get("language"))),
                ]
            ),
        ),
        _section(
            "Legal basis",
            _rows(
                [
                    ("Instrument", _label(INSTRUMENT_LABELS, basis.get("instrument"))),
                    ("Citation", _e(basis.get("citation"))),
                ]
            ),
        ),
        _section("Issuing authority", _authority(doc.get("issuing_authority"))),
        _section("Validating authority", _authority(doc.get("validating_authority"))),
        _section("Addressee", _addressees(doc)),
        _section("Enforcing authority", _enforcing(doc)),
        _section(
            "Offence",
            _rows(
                [
                    ("Description", _text(offence.get("description"))),
                    ("Provision", _e(offence.get("provision"))),
                    *_offence_rows(doc, offence),
                ]
            ),
        ),
        _section(
            "Grounds",
            "<h3>Facts</h3>"
            + _text(doc.get("facts"))
            + "<h3>Link between the data and the offence</h3>"
            + _text(doc.get("link"))
            + "<h3>Necessity and proportionality</h3>"
            + _text(doc.get("necessity_and_proportionality")),
        ),
        _section("Targets", _targets(doc.get("targets") or [])),
        _section(
            "Data concerned",
            _rows(
                [
                    ("Categories", f"<ul>{categories}</ul>"),
                    (
                        "Time range",
                        f"From {_e(time_range.get('start'))} to {_e(time_range.get('end'))}"
                        if time_range
                        else "Not limited by the order",
                    ),
                    (
                        "Preservation period",
                        f"{_e(doc['preservation_days'])} days from receipt"
                        if doc.get("preservation_days") is not None
                        else "Not a preservation order",
                    ),
                    ("Linked order", _e(doc.get("linked_order") or "None")),
                ]
            ),
        ),
        _section("Where the data go", _transfer(doc)),
        _section(
            "Emergency",
            _rows(
                [
                    ("Emergency", "Yes" if emergency.get("flag") else "No"),
                    ("Category", _label(EMERGENCY_CATEGORY_LABELS, emergency.get("category"))),
                    ("Justification", _text(emergency.get("justification"))),
                ]
            )
            if emergency.get("flag")
            else "<p>No: this is not an emergency order.</p>",
        ),
        _section(
            "Confidentiality",
            _rows(
                [
                    (
                        "Notice to the user",
                        "Must not be given" if confidentiality.get("no_user_notice") else "Allowed",
                    ),
                    ("Until", _e(_minute(confidentiality.get("until")) or "Not limited")),
                    *(
                        [("Reasons", _text(confidentiality["reasons"]))]
                        if confidentiality.get("reasons")
                        else []
                    ),
                ]
            )
            if confidentiality.get("no_user_notice")
            else "<p>The order does not bar notice to the user.</p>",
        ),
        _section(
            "Signature",
            _signatures(note)
            if note is not None
            else "<p>Not signed yet: the order is signed, with this text, when an approver "
            "approves it.</p>",
        ),
    ]
    title = f"{kind} {_e(doc.get('reference'))}"
    alert = (
        f'<p class="alert">Emergency order: '
        f"{_label(EMERGENCY_CATEGORY_LABELS, emergency.get('category'))}</p>"
        if emergency.get("flag")
        else ""
    )
    return title, alert, "".join(sections)
