"""Seed a realistic demonstration deployment and print a sign-in link for each role.

    python3 tools/demo.py --home var/demo --public-url http://127.0.0.1:8080

(what ``make demo`` runs before it serves the home). Everything is done through the domain,
exactly as the API and the CLI do it: a case with evidence items and custody acts, two
providers, and production and preservation orders in several states, one of them overdue.
The seeding runs on a clock that starts three weeks ago and moves forward, so the ledger's
times are in order and the overdue order really is overdue now.

The browser tests seed their deployments with :func:`seed` too.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from custody.events import Actor, format_time  # noqa: E402
from service.evidence import load_intake  # noqa: E402
from storage.config import ConfigError, load_config, with_overrides  # noqa: E402
from storage.deployment import Deployment, initialise, open_deployment  # noqa: E402

CASE = "CASE-2026-0417"
SECOND_FACTOR_ROLES = ("admin", "approver")
PEOPLE = (
    # name, role, provider (for provider principals), display name
    ("ana.ribeiro", "authority", None, "Ana Ribeiro"),
    ("judge.costa", "approver", None, "Judge Marta Costa"),
    ("eva.examiner", "examiner", None, "Eva Lindqvist"),
    ("rui.custodian", "examiner", None, "Rui Custódio"),
    ("northwind.compliance", "provider", "Northwind Mail", "Northwind compliance desk"),
    ("clerk.lisbon", "court", None, "Clerk of the Lisbon Court"),
)


class MovingClock:
    """A clock that starts in the past and is moved forward by the seeding, never back."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def move_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)

    def catch_up(self) -> None:
        """Move to the real time (the seeding ends in the present)."""
        self.move_to(datetime.now(UTC))


@dataclass
class Seeded:
    """What the seeding made: principals' tokens, orders by what they show, items."""

    tokens: dict[str, str] = field(default_factory=dict)
    orders: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    second_factors: dict[str, str] = field(default_factory=dict)


def order_document(provider_id: str, reference: str, **changes: Any) -> dict[str, Any]:
    """A production order of the kind an investigating judge issues."""
    document: dict[str, Any] = {
        "reference": reference,
        "case": CASE,
        "kind": "production",
        "legal_basis": {
            "instrument": "un_cybercrime_art27",
            "citation": "Code of Criminal Procedure, art. 189; UN Convention, art. 27",
        },
        "issuing_authority": {
            "name": "Investigating judge, Lisbon Criminal Court",
            "type": "judge",
            "file_number": "417/26.3JGLSB",
            "contact": "jic.lisboa@tribunais.example.org",
        },
        "provider": provider_id,
        "offence": {
            "description": "Ransomware extortion of a hospital",
            "provision": "Penal Code, art. 223",
        },
        "facts": "On 3 January 2026 the hospital's records system was encrypted and a ransom "
        "note left on every server. The note named a mailbox for the payment instructions.",
        "link": "The ransom note names the mailbox below; the intrusion came from the address "
        "below at the time given.",
        "necessity_and_proportionality": "Only the subscriber data of two identifiers, for "
        "the two months around the attack, are asked for.",
        "targets": [
            {"type": "email", "value": "payme-now@northwind.example"},
            {"type": "ip", "value": "203.0.113.77", "port": 51234, "time": "2026-01-03T02:14:00Z"},
        ],
        "data_categories": ["subscriber"],
        "time_range": {"start": "2025-12-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
    }
    document.update(changes)
    return document


def seed(deployment: Deployment, clock: MovingClock) -> Seeded:
    """Fill an initialised deployment (opened on ``clock``) with the demonstration's data."""
    seeded = Seeded()
    operator = deployment.principals.get("operator").actor
    for name, jurisdiction in (("Northwind Mail", "IE"), ("Contoso Cloud", "NL")):
        provider = deployment.providers.add(
            {
                "name": name,
                "jurisdiction": jurisdiction,
                "legal_representative": f"{name} Legal Department",
                "contact": f"lawful-requests@{name.split()[0].lower()}.example",
            },
            operator,
        )
        seeded.providers[name] = provider.id
    actors: dict[str, Actor] = {}
    for name, role, provider_name, display_name in PEOPLE:
        provider_id = seeded.providers[provider_name] if provider_name else None
        principal, token = deployment.principals.add(
            name, role, operator, provider_id, display_name=display_name
        )
        seeded.tokens[name] = token
        actors[name] = principal.actor

    for name in ("operator", "judge.costa"):
        seeded.second_factors[name] = deployment.sign_in.enrol_totp(name, operator)[1]
    _seed_case(deployment, clock, actors)
    _seed_evidence(deployment, clock, actors, seeded)
    _seed_orders(deployment, clock, actors, seeded)
    clock.catch_up()
    return seeded


def _seed_case(deployment: Deployment, clock: MovingClock, actors: dict[str, Actor]) -> None:
    """The case everything belongs to: opened by the examiner, with the authority, the
    approver and the evidence store's custodian as members, granted to the court."""
    case, _ = deployment.cases.open(
        {
            "reference": CASE,
            "title": "Ransomware attack on Hospital Santa Luzia",
            "authority": "Lisbon Public Prosecutor's Office",
        },
        actors["eva.examiner"],
    )
    for name in ("ana.ribeiro", "judge.costa", "rui.custodian"):
        deployment.cases.add_member(case.id, name, "member", actors["eva.examiner"])
    deployment.cases.grant_court(
        case.id,
        {
            "court": "clerk.lisbon",
            "proceeding": "Lisbon Criminal Court, case 417/26.3JGLSB",
            "ends_at": datetime.now(UTC) + timedelta(days=365),
        },
        actors["eva.examiner"],
    )
    clock.advance(minutes=30)


def _seed_evidence(
    deployment: Deployment, clock: MovingClock, actors: dict[str, Actor], seeded: Seeded
) -> None:
    examiner = actors["eva.examiner"]
    laptop = deployment.intake.register_physical(
        load_intake(
            {
                "kind": "physical",
                "case": CASE,
                "exhibit": "EX-01 laptop",
                "description": "Lenovo ThinkPad T14, serial PF-3K9Q2L, seized at the suspect's "
                "home",
                "seizure": {
                    "at": format_time(clock() - timedelta(hours=4)),
                    "location": "Rua das Flores 12, 3rd floor, Lisbon",
                    "by": "Inspector M. Santos, Polícia Judiciária",
                    "authority": "Search warrant 417/26.3JGLSB-B",
                    "packaging": "Evidence bag PJ-88213, sealed SEAL-000417",
                },
            }
        ),
        examiner,
    )
    seeded.items["laptop"] = laptop.event.subject.id
    clock.advance(hours=3)
    deployment.handling.record_act(
        seeded.items["laptop"],
        "evidence.sealed",
        {"seal": "SEAL-000417", "reason": "seized"},
        examiner,
    )
    clock.advance(hours=20)
    images = (
        ("disk", "EX-02 disk image", "Forensic image of EX-01's SSD (E01)", b"EWF\x00" * 4096),
        ("mail", "EX-03 mailbox export", "Export of the suspect's webmail", b"From: x\n" * 2048),
    )
    for key, exhibit, description, content in images:
        metadata = {"kind": "digital", "case": CASE, "exhibit": exhibit, "description": description}
        if key == "disk":
            metadata["parent"] = seeded.items["laptop"]
        session = deployment.intake.open_session(load_intake(metadata), examiner)
        deployment.intake.receive(session.id, io.BytesIO(content), examiner)
        seeded.items[key] = session.id
        clock.advance(hours=2)
    deployment.handling.record_act(
        seeded.items["disk"],
        "evidence.transferred",
        {
            "from": "eva.examiner",
            "to": "rui.custodian",
            "location": "Room B-12",
            "reason": "storage after imaging",
        },
        examiner,
    )
    clock.advance(minutes=40)
    deployment.handling.record_act(
        seeded.items["disk"],
        "evidence.received",
        {"location": "Evidence store, Lisbon, shelf 4", "seal_intact": "yes"},
        actors["rui.custodian"],
    )


def _seed_orders(
    deployment: Deployment, clock: MovingClock, actors: dict[str, Actor], seeded: Seeded
) -> None:
    desk = deployment.orders
    authority, judge = actors["ana.ribeiro"], actors["judge.costa"]
    isp = actors["northwind.compliance"]
    northwind = seeded.providers["Northwind Mail"]

    def served(key: str, reference: str, **changes: Any) -> str:
        drafted = desk.draft(order_document(northwind, reference, **changes), authority)
        order_id = drafted.stored.id
        desk.act(order_id, "submit", {}, authority)
        desk.act(order_id, "approve", {}, judge)
        seeded.orders[key] = order_id
        return order_id

    def provider(order_id: str, action: str, **data: Any) -> None:
        desk.act(order_id, action, data, isp, provider_id=northwind)

    now = datetime.now(UTC)
    # Served and acknowledged three weeks ago, never answered since: overdue now.
    overdue = served("overdue", "PO-2026-0101")
    clock.advance(hours=5)
    provider(overdue, "acknowledge")
    clock.advance(days=6)
    answered = served("produced", "PO-2026-0102")
    provider(answered, "acknowledge")
    clock.advance(days=1)
    session = desk.open_response(answered, {"description": "Subscriber records"}, isp, northwind)
    desk.receive_response(
        answered, session.id, io.BytesIO(b"subscriber,records\n" * 64), isp, northwind
    )
    seeded.items["response"] = session.id
    provider(answered, "complete")
    clock.advance(days=5)
    preservation = served(
        "preserved",
        "PP-2026-0031",
        kind="preservation",
        legal_basis={"instrument": "un_cybercrime_art25", "citation": "UN Convention, art. 25"},
        preservation_days=90,
        data_categories=["content"],
    )
    provider(preservation, "acknowledge")
    provider(preservation, "confirm_preservation")
    clock.advance(days=3)
    objected = served("objected", "PO-2026-0107")
    provider(
        objected,
        "object",
        ground="insufficient_information",
        details="The order names no account identifier we can match.",
    )
    clock.move_to(now - timedelta(hours=30))
    acknowledged = served("acknowledged", "PO-2026-0108")
    provider(acknowledged, "acknowledge")
    clock.move_to(now - timedelta(hours=2))
    served(
        "emergency",
        "EPO-2026-0009",
        emergency={
            "flag": True,
            "category": "threat_to_life",
            "justification": "A second ransom note threatens the hospital's patients tonight.",
        },
    )
    clock.move_to(now - timedelta(minutes=40))
    served("served", "PO-2026-0110")
    # The authority's desk: a draft still being written, and one awaiting approval.
    clock.move_to(now - timedelta(minutes=20))
    draft = desk.draft(order_document(northwind, "PO-2026-0111"), authority).stored.id
    seeded.orders["draft"] = draft
    submitted = desk.draft(order_document(northwind, "PO-2026-0112"), authority).stored.id
    desk.act(submitted, "submit", {}, authority)
    seeded.orders["submitted"] = submitted


def _links(deployment: Deployment, public_url: str, names: list[str]) -> dict[str, str]:
    links = {}
    for name in names:
        operator = deployment.principals.get("operator").actor
        _, secret, _ = deployment.sign_in.make_link(name, operator)
        links[name] = f"{public_url.rstrip('/')}/sign-in/link/{secret}"
    return links


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a new, empty home")
    parser.add_argument("--public-url", default="http://127.0.0.1:8080")
    args = parser.parse_args(argv)
    if args.home.exists() and any(args.home.iterdir()):
        print(f"demo: {args.home} is not empty; remove it to seed a new demo", file=sys.stderr)
        return 1
    settings = {"public_url": args.public_url, "totp_roles": SECOND_FACTOR_ROLES}
    config = with_overrides(load_config(args.home, environ={}), **settings)
    try:
        initialise(config, origin="demo.custos.example/log").deployment.close()
        config = load_config(args.home, environ={})
        clock = MovingClock(datetime.now(UTC) - timedelta(days=21))
        deployment = open_deployment(config, clock=clock)
    except ConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    try:
        seeded = seed(deployment, clock)
        links = _links(deployment, args.public_url, [name for name, *_ in PEOPLE])
    finally:
        deployment.close()
    print(
        f"Seeded {args.home}: case {CASE}, {len(seeded.items)} items, {len(seeded.orders)} orders."
    )
    print("Sign-in links (each works once, within 15 minutes; `custos principal login-link NAME`")
    print("prints a new one):")
    for (name, role, _, _), link in zip(PEOPLE, links.values(), strict=True):
        print(f"  {role:<10} {name:<22} {link}")
    roles = " and ".join(SECOND_FACTOR_ROLES)
    print(f"The {roles} roles also give a code: add these to an authenticator app:")
    for name, uri in seeded.second_factors.items():
        print(f"  {name:<22} {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
