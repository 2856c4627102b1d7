"""Tests of the order desk (custody/order_desk.py) over a real deployment, on SQLite and on
PostgreSQL: four-eyes approval, the signed order note and the commitments events carry,
refusals that change nothing, deadlines, the sweep, what a provider sees, responses taken in
as evidence, notices and list paging.

The transition table itself is tested in test_orders.py, the clock arithmetic in
test_order_deadlines.py; here every step goes through the desk and the database.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from custody.errors import BadRequest, Conflict, CustosError, Forbidden, Invalid, NotFound
from custody.events import SYSTEM, Actor, Event, format_time
from custody.note import open_note
from custody.note_types import NOTICE_TYPE, ORDER_TYPE
from custody.notices import PENDING, Notice, NoticeDelivery
from custody.order_desk import Acted, OrderDesk, StoredOrder, document_commitment
from custody.order_document import PRESERVATION, PRODUCTION, OrderDocument
from custody.orders import OrderState, allowed_actions, deadline, order_document_text
from custody.principals import Principal
from custody.providers import Provider
from storage.deployment import Deployment, initialise, open_deployment
from storage.sql.schema import order_texts
from tests.conftest import FakeClock, add_provider, make_config
from tests.factories import EMAIL, EMERGENCY, FACTS, IP, full_order_document, in_case

DETAILS = "Disclosure would breach the third country's secrecy of correspondence."
QUESTION = "Which of the two mailboxes on the account is meant?"
ANSWER = "Only the mailbox named in the order; the alias is out of scope."
REASON = "The suspect was identified by other means."
ISP_URL = "https://isp.example/custos/notices"
# Every key an order event's data may hold: identifiers, states, codes, deadlines, digests.
EVENT_KEYS = {
    "order",
    "state",
    "document_commitment",
    "due",
    "ground",
    "days",
    "evidence",
    "received_via",
    "revision",
    "production_order",
    "notice_index",
}
COMMITMENT_KEYS = {f"{name}_commitment" for name in ("details", "question", "answer", "reason")}
DAY = 24 * 3600.0


@dataclass
class Bench:
    """A deployment on a fake clock with the people an order passes through."""

    deployment: Deployment
    clock: FakeClock
    authority: Principal
    approver: Principal
    approver2: Principal
    isp: Provider  # has a notification URL
    mailco: Provider  # has none
    isp_staff: Principal
    mailco_staff: Principal

    @property
    def desk(self) -> OrderDesk:
        return self.deployment.orders

    def draft(
        self,
        kind: str = PRODUCTION,
        provider: Provider | None = None,
        by: Actor | None = None,
        **changes: Any,
    ) -> StoredOrder:
        document = full_order_document((provider or self.isp).id, kind, **changes)
        return self.desk.draft(document, by or self.authority.actor).stored

    def pending(self, kind: str = PRODUCTION, **changes: Any) -> StoredOrder:
        stored = self.draft(kind, **changes)
        return self.act(stored, "submit").stored

    def served(self, kind: str = PRODUCTION, **changes: Any) -> StoredOrder:
        stored = self.pending(kind, **changes)
        self.clock.advance(3600)
        return self.act(stored, "approve", by=self.approver.actor).stored

    def received(self, kind: str = PRODUCTION, **changes: Any) -> StoredOrder:
        """Served, then read by its provider: the read is its receipt."""
        stored = self.served(kind, **changes)
        staff = self.staff_of(stored)
        return self.desk.get_for_provider(stored.id, staff.actor, staff.provider_id)

    def acknowledged(self, kind: str = PRODUCTION, **changes: Any) -> StoredOrder:
        return self.answer(self.served(kind, **changes), "acknowledge").stored

    def act(
        self,
        stored: StoredOrder,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        by: Actor | None = None,
    ) -> Acted:
        """An act of the authority's (or ``by``)."""
        return self.desk.act(stored.id, action, data or {}, by or self.authority.actor)

    def answer(
        self,
        stored: StoredOrder,
        action: str,
        data: Mapping[str, Any] | None = None,
        *,
        staff: Principal | None = None,
    ) -> Acted:
        """An act of the provider's staff (the order's own provider unless ``staff``)."""
        staff = staff or self.staff_of(stored)
        return self.desk.act(
            stored.id, action, data or {}, staff.actor, provider_id=staff.provider_id
        )

    def staff_of(self, stored: StoredOrder) -> Principal:
        return (
            self.isp_staff if stored.order.document.provider == self.isp.id else self.mailco_staff
        )

    def reload(self, stored: StoredOrder) -> StoredOrder:
        return self.desk.get(stored.id, self.authority.actor)

    def event_types(self, stored: StoredOrder) -> list[str]:
        return [entry.event.type for entry in self.desk.timeline(stored)]


def add_principal(
    deployment: Deployment, name: str, role: str, provider_id: str | None = None
) -> Principal:
    operator = deployment.principals.get("operator").actor
    principal, _ = deployment.principals.add(name, role, operator, provider_id)
    return principal


@pytest.fixture
def bench(tmp_path: Path, database_url: str, clock: FakeClock) -> Iterator[Bench]:
    config = make_config(tmp_path, database_url)
    initialise(config).deployment.close()
    deployment = open_deployment(config, clock=clock)
    isp = add_provider(deployment, "Example ISP", notification_url=ISP_URL)
    mailco = add_provider(deployment, "Mail Co")
    bench = Bench(
        deployment=deployment,
        clock=clock,
        authority=add_principal(deployment, "alice", "authority"),
        approver=add_principal(deployment, "bruno", "approver"),
        approver2=add_principal(deployment, "carla", "approver"),
        isp=isp,
        mailco=mailco,
        isp_staff=add_principal(deployment, "isp-desk", "provider", isp.id),
        mailco_staff=add_principal(deployment, "mail-desk", "provider", mailco.id),
    )
    # The orders' cases, with the authority and the approvers in them.
    for case in ("CASE-1", "CASE-7", "CASE-8"):
        in_case(deployment, case, "alice", "bruno", "carla")
    yield bench
    deployment.close()


@dataclass(frozen=True)
class Trace:
    """What a refused action must leave exactly as it was."""

    ledger_size: int
    stored: StoredOrder | None
    texts: Mapping[int, Mapping[str, str]]
    notices: tuple[Notice, ...]
    evidence: tuple[str, ...]


def trace(b: Bench, order_id: str) -> Trace:
    desk = b.desk
    return Trace(
        b.deployment.ledger.size(),
        desk.store.get(order_id),
        desk.store.texts(order_id),
        tuple(desk.notices.for_order(order_id)),
        tuple(r.id for r in b.deployment.evidence.list(None, None, 1000, None)),
    )


def commitment_of(salt: bytes, text: str) -> str:
    return hashlib.sha256(salt + text.encode("utf-8")).hexdigest()


# -- the document and four-eyes approval --------------------------------------------------------


def test_a_drafted_order_keeps_every_field_of_its_document(bench: Bench) -> None:
    sent = full_order_document(bench.isp.id, emergency=EMERGENCY)
    acted = bench.desk.draft(sent, bench.authority.actor)
    stored = bench.reload(acted.stored)
    assert stored.order.document == OrderDocument.from_json(sent)
    assert stored.order.state is OrderState.DRAFT
    assert stored.order.drafted_by == bench.authority.id
    assert stored.seq == acted.event.index
    assert acted.event.event.type == "order.drafted"


def test_no_author_of_an_order_may_approve_it_but_another_approver_may(bench: Bench) -> None:
    b = bench
    drafted_by_approver = b.draft(by=b.approver.actor)
    b.act(drafted_by_approver, "submit", by=b.approver.actor)
    revised_by_approver = b.draft()
    revised = b.desk.revise(
        revised_by_approver.id, {"facts": "Revised facts.", "linked_order": None}, b.approver.actor
    ).stored
    assert revised.order.revised_by == (b.approver.id,)
    assert revised.order.document.facts == "Revised facts."
    assert revised.order.document.linked_order is None  # null removes (RFC 7396)
    b.act(revised_by_approver, "submit")
    for stored in (drafted_by_approver, revised_by_approver):
        before = trace(b, stored.id)
        with pytest.raises(Forbidden, match="four-eyes"):
            b.act(stored, "approve", by=b.approver.actor)
        assert trace(b, stored.id) == before
        served = b.act(stored, "approve", by=b.approver2.actor).stored
        assert served.order.state is OrderState.SERVED
        assert served.order.approved_by == b.approver2.id
    assert b.reload(revised_by_approver).order.authors == (b.authority.id, b.approver.id)


def test_approval_stores_a_signed_order_note_of_the_order_text(bench: Bench) -> None:
    draft = bench.draft()
    with pytest.raises(NotFound):
        bench.desk.document_note(draft)
    served = bench.served()
    stored = bench.reload(served)
    note = bench.desk.document_note(stored)
    assert note == served.note
    opened = open_note(note, bench.deployment.keys.verifiers)
    assert opened.text == order_document_text(stored.order)
    assert opened.text.split("\n", 1)[0] == ORDER_TYPE
    issued = json.loads(opened.text.split("\n")[1])
    assert issued["approved_by"] == bench.approver.id
    assert issued["drafted_by"] == bench.authority.id
    assert issued["served_at"] == format_time(stored.order.served_at)  # type: ignore[arg-type]


def test_every_event_commits_to_the_order_text_and_carries_no_text(bench: Bench) -> None:
    """Each event's document commitment is SHA-256(salt || the order's text at that event);
    free text is kept beside the order and only its commitment enters the ledger."""
    b = bench
    stored = b.draft()
    steps: list[Acted] = [
        b.desk.revise(stored.id, {"facts": FACTS + " Revised."}, b.authority.actor),
        b.act(stored, "submit"),
        b.act(stored, "approve", by=b.approver.actor),
        b.answer(stored, "object", {"ground": "third_country_law_conflict", "details": DETAILS}),
        b.act(stored, "answer_objection", {"answer": ANSWER}),
        b.answer(stored, "request_clarification", {"question": QUESTION}),
        b.act(stored, "answer_clarification", {"answer": ANSWER + " Again."}),
        b.act(stored, "withdraw", {"reason": REASON}),
    ]
    salt = steps[0].stored.salt
    for acted in steps:
        assert acted.event.event.data["document_commitment"] == document_commitment(
            salt, acted.stored.order
        )
        assert acted.event.event.data["document_commitment"] == commitment_of(
            salt, order_document_text(acted.stored.order)
        )
    final = b.reload(stored)
    note_text = open_note(b.desk.document_note(final), b.deployment.keys.verifiers).text
    timeline = b.desk.timeline(final)
    service = next(i for i, e in enumerate(timeline) if e.event.type == "order.served")
    for entry in timeline[service:]:
        assert entry.event.data["document_commitment"] == commitment_of(salt, note_text)

    secrets = (EMAIL, IP, FACTS, DETAILS, QUESTION, ANSWER, REASON)
    for entry in b.deployment.ledger.subject_entries(f"order:{stored.id}"):
        leaf = entry.leaf.decode("utf-8")
        assert not [s for s in secrets if s in leaf]
        keys = set(Event.decode(entry.leaf).data)
        assert keys <= EVENT_KEYS | COMMITMENT_KEYS

    with b.deployment.engine.connect() as connection:
        salts = {
            (row.ledger_index, row.field): bytes(row.salt)
            for row in connection.execute(select(order_texts))
        }
    texts = {e.index: dict(e.texts) for e in timeline if e.texts}
    assert sorted(texts.values(), key=str) == sorted(
        [
            {"details": DETAILS},
            {"answer": ANSWER},
            {"question": QUESTION},
            {"answer": ANSWER + " Again."},
            {"reason": REASON},
        ],
        key=str,
    )
    for entry in timeline:
        for name, text in entry.texts.items():
            digest = entry.event.data[f"{name}_commitment"]
            assert digest == commitment_of(salts[(entry.index, name)], text)
    assert b.desk.timeline(final, for_provider=True)[0].event.type == "order.served"


# -- refusals change nothing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An order brought to a state, then an attempt that must fail with ``error``."""

    prepare: Callable[[Bench], StoredOrder]
    attempt: Callable[[Bench, StoredOrder], object]
    error: type[CustosError]


def _served_with_an_examiner(b: Bench) -> StoredOrder:
    add_principal(b.deployment, "eve", "examiner")
    return b.served()


def _examiner_withdraws(b: Bench, s: StoredOrder) -> object:
    examiner = b.deployment.principals.get("eve")
    return b.desk.act(s.id, "withdraw", {}, examiner.actor)


REFUSALS: dict[str, Refusal] = {
    "authority acknowledges": Refusal(
        Bench.served, lambda b, s: b.act(s, "acknowledge"), Forbidden
    ),
    "provider withdraws": Refusal(
        Bench.served, lambda b, s: b.answer(s, "withdraw", {"reason": REASON}), Forbidden
    ),
    "authority approves": Refusal(Bench.pending, lambda b, s: b.act(s, "approve"), Forbidden),
    "authority expires": Refusal(Bench.served, lambda b, s: b.act(s, "expire"), Forbidden),
    "examiner withdraws": Refusal(_served_with_an_examiner, _examiner_withdraws, Forbidden),
    "provider revises": Refusal(
        Bench.draft,
        lambda b, s: b.desk.revise(s.id, {"facts": "x"}, b.isp_staff.actor),
        Forbidden,
    ),
    "provider reads with the authority's desk": Refusal(
        Bench.served, lambda b, s: b.desk.get(s.id, b.isp_staff.actor), Forbidden
    ),
    "another provider acknowledges": Refusal(
        Bench.served, lambda b, s: b.answer(s, "acknowledge", staff=b.mailco_staff), NotFound
    ),
    "another provider objects with text": Refusal(
        Bench.served,
        lambda b, s: b.answer(
            s, "object", {"ground": "other", "details": DETAILS}, staff=b.mailco_staff
        ),
        NotFound,
    ),
    "provider acknowledges a pending order": Refusal(
        Bench.pending, lambda b, s: b.answer(s, "acknowledge"), NotFound
    ),
    "another provider reads": Refusal(
        Bench.served,
        lambda b, s: b.desk.get_for_provider(s.id, b.mailco_staff.actor, b.mailco.id),
        NotFound,
    ),
    "unknown order": Refusal(
        Bench.served,
        lambda b, s: b.desk.act("ord_ffffffffffffffff", "withdraw", {}, b.authority.actor),
        NotFound,
    ),
    "submit a served order": Refusal(Bench.served, lambda b, s: b.act(s, "submit"), Conflict),
    "acknowledge twice": Refusal(
        Bench.acknowledged, lambda b, s: b.answer(s, "acknowledge"), Conflict
    ),
    "extend a production order": Refusal(
        Bench.served, lambda b, s: b.act(s, "extend", {"days": 5}), Conflict
    ),
    "revise a served order": Refusal(
        Bench.served,
        lambda b, s: b.desk.revise(s.id, {"facts": "x"}, b.authority.actor),
        Conflict,
    ),
    "expire before the deadline": Refusal(
        Bench.served, lambda b, s: b.desk.act(s.id, "expire", {}, SYSTEM), Conflict
    ),
    "answer an objection never made": Refusal(
        Bench.acknowledged,
        lambda b, s: b.act(s, "answer_objection", {"answer": ANSWER}),
        Conflict,
    ),
    "object with an unknown ground": Refusal(
        Bench.served,
        lambda b, s: b.answer(s, "object", {"ground": "too_busy", "details": DETAILS}),
        BadRequest,
    ),
    "object on other grounds without details": Refusal(
        Bench.served, lambda b, s: b.answer(s, "object", {"ground": "other"}), BadRequest
    ),
    "ask without a question": Refusal(
        Bench.served, lambda b, s: b.answer(s, "request_clarification", {}), BadRequest
    ),
    "extend a hold past 90 days": Refusal(
        lambda b: b.served(PRESERVATION),
        lambda b, s: b.act(s, "extend", {"days": 91}),
        BadRequest,
    ),
    "respond naming no evidence": Refusal(
        Bench.acknowledged,
        lambda b, s: b.answer(s, "respond", {"evidence": "nope"}),
        BadRequest,
    ),
    "an unknown action": Refusal(Bench.served, lambda b, s: b.act(s, "cancel"), BadRequest),
    "revise with a faulty field": Refusal(
        Bench.draft,
        lambda b, s: b.desk.revise(s.id, {"targets": []}, b.authority.actor),
        Invalid,
    ),
    "revise to an unknown provider": Refusal(
        Bench.draft,
        lambda b, s: b.desk.revise(s.id, {"provider": "prv_0000000000000000"}, b.authority.actor),
        Invalid,
    ),
}


def test_each_refused_action_changes_nothing(bench: Bench) -> None:
    """403, 404, 409, 400 and 422 leave the ledger, the order, its texts, its notices and
    the evidence as they were; a 409 lists what the order allows now. Since a refusal changes
    nothing, the orders prepared in one state serve every case that needs that state."""
    prepared: dict[Callable[[Bench], StoredOrder], StoredOrder] = {}
    for name, case in REFUSALS.items():
        if case.prepare not in prepared:
            prepared[case.prepare] = case.prepare(bench)
        stored = prepared[case.prepare]
        before = trace(bench, stored.id)
        try:
            case.attempt(bench, stored)
        except CustosError as exc:
            refused = exc
        else:
            pytest.fail(f"{name}: not refused")
        # The kind of refusal (a field's own fault is a BadRequest, a document's an Invalid).
        assert isinstance(refused, case.error), f"{name}: {refused!r}"
        assert trace(bench, stored.id) == before, name
        if isinstance(refused, Conflict):
            # What the refused caller may do now: one party's share of the order's actions.
            now = bench.clock()
            callers = (bench.authority, bench.approver, bench.isp_staff, bench.mailco_staff)
            # The sweep's system actor takes only ``expire``, which no order to produce allows.
            shares = [allowed_actions(stored.order, now, by=c.actor) for c in callers]
            shares.append(allowed_actions(stored.order, now, by=SYSTEM))
            assert refused.allowed_actions in shares, name


def test_a_refused_draft_or_provider_records_nothing(bench: Bench) -> None:
    size = bench.deployment.ledger.size()
    providers = bench.deployment.providers.list()
    with pytest.raises(Invalid, match="targets"):
        bench.desk.draft(full_order_document(bench.isp.id, targets=[]), bench.authority.actor)
    with pytest.raises(Invalid, match="provider"):
        bench.desk.draft(full_order_document("prv_0000000000000000"), bench.authority.actor)
    with pytest.raises(Forbidden):
        bench.desk.draft(full_order_document(bench.isp.id), bench.isp_staff.actor)
    with pytest.raises(Conflict, match="exists already"):
        add_provider(bench.deployment, "Mail Co", jurisdiction="PT")
    assert bench.deployment.ledger.size() == size
    assert bench.desk.list(bench.authority.actor) == []
    assert bench.deployment.providers.list() == providers


# -- deadlines ----------------------------------------------------------------------------------


def test_art_10_a_production_order_runs_ten_days_from_its_receipt_or_eight_hours(
    bench: Bench,
) -> None:
    """Regulation (EU) 2023/1543 Art 10(2), 10(4) with 1182/71 Art 3: the clock starts at
    the provider's receipt (here its first read), not at approval. The provider keeps UTC
    and has no country: only Saturdays and Sundays are days off."""
    pending = bench.pending()
    bench.clock.advance(5 * DAY)  # Thursday 3 December 2026, 12:00 UTC
    acted = bench.act(pending, "approve", by=bench.approver.actor)
    order = acted.stored.order
    assert order.served_at == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert deadline(order) is None
    assert "due" not in acted.event.event.data
    view = bench.desk.view(bench.reload(pending))
    assert (view["received"], view["due"]) == (False, None)
    assert "resend" in view["allowed_actions"]
    bench.clock.advance(DAY)  # read on Friday 4 December: day 1 is the 5th, day 10 the 14th
    read = bench.desk.get_for_provider(pending.id, bench.isp_staff.actor, bench.isp.id)
    assert deadline(read.order) == datetime(2026, 12, 14, 23, 59, 59, 999999, tzinfo=UTC)
    shown = bench.desk.view(read, by=bench.isp_staff.actor)
    assert (shown["received"], shown["received_via"]) == (True, "read")
    assert shown["due"] == "2026-12-14T23:59:59.999999Z"
    last = bench.desk.timeline(read)[-1].event
    assert (last.type, last.data["received_via"], last.data["due"]) == (
        "order.read",
        "read",
        "2026-12-14T23:59:59.999999Z",
    )

    emergency = bench.received(emergency=EMERGENCY).order
    assert emergency.received_at == datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    assert deadline(emergency) == datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def test_art_10_6_only_a_clarification_request_suspends_the_deadline(bench: Bench) -> None:
    """Acknowledged on Saturday 28 November 13:00: due Tuesday 8 December at the end of the
    day. A clarification request stops the clock for three days; an Annex III objection
    stops nothing."""
    served = bench.acknowledged()
    assert deadline(served.order) == datetime(2026, 12, 8, 23, 59, 59, 999999, tzinfo=UTC)
    bench.clock.advance(2 * DAY)
    asked = bench.answer(served, "request_clarification", {"question": QUESTION}).stored
    assert deadline(asked.order) is None
    view = bench.desk.view(bench.reload(served))
    assert (view["due"], view["clock_paused"], view["overdue"]) == (None, True, False)
    assert (
        view["remaining_seconds"]
        == (datetime(2026, 12, 8, 23, 59, 59, 999999, tzinfo=UTC) - bench.clock()).total_seconds()
    )
    bench.clock.advance(3 * DAY)
    resumed = bench.act(served, "answer_clarification", {"answer": ANSWER})
    assert resumed.stored.order.state is OrderState.ACKNOWLEDGED
    assert resumed.event.event.data["due"] == "2026-12-11T23:59:59.999999Z"

    objected = bench.answer(served, "object", {"ground": "incomplete"}).stored
    assert deadline(objected.order) == datetime(2026, 12, 11, 23, 59, 59, 999999, tzinfo=UTC)
    assert bench.desk.view(bench.reload(served))["clock_paused"] is False


def test_extending_a_preservation_order_adds_days_to_its_hold(bench: Bench) -> None:
    """UN Art 25(2): 30 days from receipt on Saturday 28 November: day 30 is Monday
    28 December; 20 days more end on Sunday 17 January 2027, so Monday 18 January; 30 more
    (the order's own period) end on Tuesday 16 February 2027."""
    served = bench.acknowledged(PRESERVATION)
    assert deadline(served.order) == datetime(2026, 12, 28, 23, 59, 59, 999999, tzinfo=UTC)
    bench.clock.advance(20 * DAY)
    extended = bench.act(served, "extend", {"days": 20})
    assert deadline(extended.stored.order) == datetime(2027, 1, 18, 23, 59, 59, 999999, tzinfo=UTC)
    assert extended.event.event.data["days"] == 20
    again = bench.act(served, "extend")  # the order's own period, by default
    assert again.event.event.data["due"] == "2027-02-16T23:59:59.999999Z"


def test_list_overdue_only_returns_the_orders_owed_past_their_deadline(bench: Bench) -> None:
    """An Annex III objection leaves the order owed; an order not yet received owes nothing."""
    b = bench
    unanswered = b.received()
    acknowledged = b.acknowledged()
    objected = b.received()
    b.answer(objected, "object", {"ground": "incomplete"})
    no_data = b.acknowledged()
    b.answer(no_data, "no_data")
    never_received = b.served()
    b.clock.advance(11 * DAY)
    recent = b.received()
    assert [s.id for s in b.desk.list(b.authority.actor, overdue_only=True)] == [
        unanswered.id,
        acknowledged.id,
        objected.id,
    ]
    only_acknowledged = b.desk.list(b.authority.actor, overdue_only=True, state="acknowledged")
    assert [s.id for s in only_acknowledged] == [acknowledged.id]
    assert b.desk.list(b.authority.actor, overdue_only=True, state="draft") == []
    assert b.desk.view(b.reload(recent))["overdue"] is False
    assert b.desk.view(b.reload(never_received))["overdue"] is False
    assert b.desk.view(b.reload(unanswered))["overdue"] is True


# -- the sweep ------------------------------------------------------------------------------------


def test_the_sweep_ends_lapsed_holds_and_leaves_late_orders_open(bench: Bench) -> None:
    """Late compliance: an order to produce past its deadline, acknowledged or not, is listed
    as overdue and stays open; a preservation hold that ended is ``order.expired``."""
    b = bench
    unanswered = b.received()
    acknowledged = b.acknowledged()
    held = [b.received(PRESERVATION, preservation_days=1) for _ in range(3)]
    b.answer(held[1], "acknowledge")
    b.answer(held[2], "confirm_preservation")
    size = b.deployment.ledger.size()
    not_yet = b.desk.sweep()
    assert (not_yet.expired, not_yet.overdue) == ([], [])
    assert b.deployment.ledger.size() == size
    b.clock.advance(11 * DAY)
    due_later = b.received()

    report = b.desk.sweep()
    expired = {acted.stored.id for acted in report.expired}
    assert expired == {s.id for s in held}
    for acted in report.expired:
        assert acted.event.event.type == "order.expired"
        assert acted.event.event.actor == SYSTEM
        assert b.reload(acted.stored).order.state is OrderState.EXPIRED
    assert [s.id for s in report.overdue] == [unanswered.id, acknowledged.id]
    assert b.reload(unanswered).order.state is OrderState.SERVED
    assert b.reload(acknowledged).order.state is OrderState.ACKNOWLEDGED
    assert b.reload(due_later).order.state is OrderState.SERVED

    size = b.deployment.ledger.size()
    again = b.desk.sweep()
    assert again.expired == []
    assert [s.id for s in again.overdue] == [unanswered.id, acknowledged.id]
    assert b.deployment.ledger.size() == size
    late = b.answer(unanswered, "acknowledge").stored  # late compliance is still compliance
    assert late.order.state is OrderState.ACKNOWLEDGED


def test_the_sweep_passes_over_an_order_withdrawn_after_it_was_listed(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = bench
    withdrawn = b.received(PRESERVATION, preservation_days=1)
    lapsed = b.received(PRESERVATION, preservation_days=1)
    b.clock.advance(11 * DAY)
    listing = b.desk.store.list

    def list_then_withdraw(**filters: Any) -> Any:
        """The authority withdraws an order just after the sweep read the lapsed ones."""
        found = listing(**filters)
        if b.reload(withdrawn).order.state is OrderState.SERVED:
            b.act(withdrawn, "withdraw")
        return found

    monkeypatch.setattr(b.desk.store, "list", list_then_withdraw)
    report = b.desk.sweep()
    assert [acted.stored.id for acted in report.expired] == [lapsed.id]
    assert b.reload(withdrawn).order.state is OrderState.WITHDRAWN
    assert b.event_types(withdrawn)[-1] == "order.withdrawn"


# -- providers and what they see ------------------------------------------------------------------


def test_a_provider_sees_only_its_own_served_orders(bench: Bench) -> None:
    b = bench
    draft = b.draft()
    pending = b.pending()
    withdrawn_draft = b.draft()
    b.act(withdrawn_draft, "withdraw")
    served = b.served()
    withdrawn_after_service = b.served()
    b.act(withdrawn_after_service, "withdraw", {"reason": REASON})
    others = b.served(provider=b.mailco)

    seen = b.desk.list_for_provider(b.isp_staff.actor, b.isp.id)
    assert [s.id for s in seen] == [served.id, withdrawn_after_service.id]
    assert [s.id for s in b.desk.list_for_provider(b.mailco_staff.actor, b.mailco.id)] == [
        others.id
    ]
    page = b.desk.list_for_provider(b.isp_staff.actor, b.isp.id, limit=1)
    assert [s.id for s in page] == [served.id]
    rest = b.desk.list_for_provider(b.isp_staff.actor, b.isp.id, after=page[-1].seq)
    assert [s.id for s in rest] == [withdrawn_after_service.id]
    for hidden in (draft, pending, withdrawn_draft, others):
        size = b.deployment.ledger.size()
        with pytest.raises(NotFound):
            b.desk.get_for_provider(hidden.id, b.isp_staff.actor, b.isp.id)
        assert b.deployment.ledger.size() == size
    with pytest.raises(Forbidden):
        b.desk.list_for_provider(b.authority.actor, b.isp.id)


def test_a_providers_first_read_is_recorded_once(bench: Bench) -> None:
    served = bench.served()
    size = bench.deployment.ledger.size()
    bench.clock.advance(600)
    first = bench.desk.get_for_provider(served.id, bench.isp_staff.actor, bench.isp.id)
    assert first.order.first_read_at == bench.clock()
    assert bench.deployment.ledger.size() == size + 1
    bench.clock.advance(600)
    again = bench.desk.get_for_provider(served.id, bench.isp_staff.actor, bench.isp.id)
    assert again.order.first_read_at == first.order.first_read_at
    assert bench.deployment.ledger.size() == size + 1
    assert bench.event_types(served).count("order.read") == 1
    assert bench.reload(served).order.first_read_at == first.order.first_read_at
    assert bench.reload(served).order.state is OrderState.SERVED


# -- responses ------------------------------------------------------------------------------------


def open_response(b: Bench, stored: StoredOrder, staff: Principal | None = None) -> str:
    staff = staff or b.isp_staff
    session = b.desk.open_response(
        stored.id, {"description": "subscriber records"}, staff.actor, staff.provider_id
    )
    return session.id


def receive(b: Bench, stored: StoredOrder, evidence_id: str, stream: Any) -> Any:
    return b.desk.receive_response(stored.id, evidence_id, stream, b.isp_staff.actor, b.isp.id)


def test_a_response_is_evidence_and_an_order_event_committed_together(bench: Bench) -> None:
    b = bench
    stored = b.acknowledged()
    evidence_id = open_response(b, stored)
    size = b.deployment.ledger.size()
    ingested = receive(b, stored, evidence_id, io.BytesIO(b"subscriber: A. Suspect\n"))
    assert b.deployment.ledger.size() == size + 2
    record = ingested.record
    assert (record.id, record.case) == (evidence_id, stored.order.document.case)
    assert record.description["order"] == stored.id
    last = b.desk.timeline(stored)[-1]
    assert (last.index, last.event.type) == (ingested.ledger_index + 1, "order.responded")
    assert last.event.data["evidence"] == evidence_id
    assert b.reload(stored).order.state is OrderState.PRODUCED_PARTIAL
    b.answer(stored, "complete")
    assert b.reload(stored).order.state is OrderState.PRODUCED


class WithdrawingStream(io.BytesIO):
    """A body during whose upload the authority withdraws the order."""

    def __init__(self, b: Bench, stored: StoredOrder) -> None:
        super().__init__(b"records\n" * 1000)
        self.withdraw: Callable[[], object] | None = lambda: b.act(stored, "withdraw")

    def read(self, size: int | None = -1) -> bytes:
        if self.withdraw is not None:
            withdraw, self.withdraw = self.withdraw, None
            withdraw()
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_a_response_to_an_order_withdrawn_after_it_was_opened_is_refused(bench: Bench) -> None:
    """Withdrawn before the upload starts (refused before the body is read) or while it runs
    (refused when the response would commit): no evidence record, no order event."""
    b = bench
    before_upload, during_upload = b.acknowledged(), b.acknowledged()
    evidence_ids = [open_response(b, before_upload), open_response(b, during_upload)]
    b.act(before_upload, "withdraw", {"reason": REASON})
    before = trace(b, before_upload.id)
    with pytest.raises(Conflict) as refused:
        receive(b, before_upload, evidence_ids[0], io.BytesIO(b"records\n"))
    assert refused.value.allowed_actions == []
    assert trace(b, before_upload.id) == before

    size = b.deployment.ledger.size()
    with pytest.raises(Conflict):
        receive(b, during_upload, evidence_ids[1], WithdrawingStream(b, during_upload))
    assert b.deployment.ledger.size() == size + 1  # the withdrawal alone
    assert b.event_types(during_upload)[-1] == "order.withdrawn"
    assert b.deployment.evidence.list(None, None, 1000, None) == []
    assert [b.deployment.evidence.get(e) for e in evidence_ids] == [None, None]


def test_a_response_is_refused_to_a_preservation_order_and_before_acknowledgement(
    bench: Bench,
) -> None:
    b = bench
    preservation = b.acknowledged(PRESERVATION)
    before = trace(b, preservation.id)
    with pytest.raises(Conflict, match="preservation is not disclosure"):
        open_response(b, preservation)
    assert trace(b, preservation.id) == before

    stored = b.served()
    with pytest.raises(Conflict):
        open_response(b, stored)
    b.answer(stored, "acknowledge")
    with pytest.raises(NotFound):
        open_response(b, stored, b.mailco_staff)
    evidence_id = open_response(b, stored)
    before = trace(b, stored.id)
    with pytest.raises(NotFound):
        b.desk.receive_response(
            stored.id, evidence_id, io.BytesIO(b"x"), b.mailco_staff.actor, b.mailco.id
        )
    assert trace(b, stored.id) == before


# -- notices --------------------------------------------------------------------------------------


def test_approval_queues_one_signed_notice_naming_the_event(bench: Bench) -> None:
    pending = bench.pending()
    assert bench.desk.notices_of(pending) == []
    served = bench.act(pending, "approve", by=bench.approver.actor)
    notices = bench.desk.notices_of(served.stored)
    assert len(notices) == 1
    notice = notices[0]
    assert (notice.event, notice.state, notice.url) == ("order.served", PENDING, ISP_URL)
    assert notice.ledger_index == served.event.index
    opened = open_note(notice.note, bench.deployment.keys.verifiers)
    type_line, body, _ = opened.text.split("\n")
    assert type_line == NOTICE_TYPE
    announced = json.loads(body)
    assert announced["ledger_index"] == served.event.index
    assert announced["order"] == served.stored.id
    assert announced["provider"] == bench.isp.id
    assert announced["event"] == "order.served"
    assert announced["due"] is None  # the period runs from the provider's receipt
    assert not [s for s in (EMAIL, IP, FACTS) if s in opened.text]

    # The outbox leases it to one deliverer at a time.
    outbox = bench.desk.notices
    now = bench.clock()
    lease = now + timedelta(minutes=5)
    assert [n.id for n in outbox.claim_due(now, lease, 10)] == [notice.id]
    assert outbox.claim_due(now + timedelta(minutes=1), lease + timedelta(minutes=1), 10) == []
    assert [n.id for n in outbox.claim_due(lease, lease + timedelta(minutes=5), 10)] == [notice.id]


def test_notices_go_only_to_a_provider_with_a_url_for_what_it_must_act_on(bench: Bench) -> None:
    b = bench
    stored = b.served()
    b.answer(stored, "acknowledge")
    b.answer(stored, "object", {"ground": "incomplete"})
    b.act(stored, "answer_objection", {"answer": ANSWER})
    b.act(stored, "withdraw")
    events = [n.event for n in b.desk.notices_of(stored)]
    assert events == ["order.served", "order.objection_answered", "order.withdrawn"]

    no_url = b.served(provider=b.mailco)
    b.act(no_url, "withdraw")
    # An order withdrawn before service never was the provider's to hear of.
    draft, pending = b.draft(), b.pending()
    b.act(draft, "withdraw")
    b.act(pending, "withdraw")
    for unnotified in (no_url, draft, pending):
        assert b.desk.notices_of(unnotified) == []


# -- lists ----------------------------------------------------------------------------------------


def test_list_pages_by_seq_and_filters_by_state_provider_and_case(bench: Bench) -> None:
    b = bench
    draft = b.draft()
    served = b.served()
    other_case = b.served(case="CASE-8")
    other_provider = b.served(provider=b.mailco)
    made = [draft, served, other_case, other_provider, b.draft(reference="PO-5")]

    pages: list[list[str]] = []
    after: int | None = None
    while page := b.desk.list(b.authority.actor, limit=2, after=after):
        pages.append([s.id for s in page])
        after = page[-1].seq
    assert pages == [[s.id for s in made[:2]], [s.id for s in made[2:4]], [made[4].id]]
    assert [s.seq for s in made] == sorted(s.seq for s in made)

    def ids(**filters: Any) -> list[str]:
        return [s.id for s in b.desk.list(b.authority.actor, **filters)]

    assert ids(state="draft") == [draft.id, made[4].id]
    assert ids(state="served") == [served.id, other_case.id, other_provider.id]
    assert ids(provider=b.mailco.id) == [other_provider.id]
    assert ids(case="CASE-8") == [other_case.id]
    assert ids(case="CASE-7", provider=b.isp.id) == [draft.id, served.id, made[4].id]
    assert ids(state="closed") == []
    with pytest.raises(BadRequest):
        b.desk.list(b.authority.actor, state="lost")
    with pytest.raises(Forbidden):
        b.desk.list(b.isp_staff.actor)


# -- the enforcing State (Regulation (EU) 2023/1543 Arts 8, 10, 12) ------------------------------

ENFORCING_URL = "https://enforcing.example/epoc"


def eu_traffic(**changes: Any) -> dict[str, Any]:
    """An EU order for traffic data from a Portuguese judge, to be reviewed in Germany."""
    return {
        "legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"},
        "issuing_authority": {
            "name": "Investigating judge, Porto",
            "type": "judge",
            "file_number": "77/26.1",
            "contact": "tic.porto@example.org",
            "state": "PT",
        },
        "offence": {
            "description": "ransomware extortion",
            "provision": "Penal Code s. 221",
            "max_penalty_years": 8,
        },
        "confidentiality": {"no_user_notice": True, "reasons": "It would warn the others."},
        "language": "de",
        "enforcing_authority": {
            "name": "Staatsanwaltschaft Berlin",
            "state": "DE",
            "contact": "epoc@sta-berlin.example",
            "time_zone": "Europe/Berlin",
            "notification_url": ENFORCING_URL,
        },
        **changes,
    }


def deliver_notices(b: Bench) -> list[str]:
    """Deliver every due notice (each endpoint answers 2xx); the URLs they went to."""
    sent: list[str] = []
    worker = NoticeDelivery(
        b.desk.notices,
        lambda url, note: sent.append(url),
        b.clock,
        on_delivered=b.desk.notice_delivered,
        max_attempts=3,
        base_delay=1,
        max_delay=1,
    )
    worker.deliver_due()
    return sent


def test_art_8_issuing_sends_the_enforcing_authority_the_order_and_its_receipt_starts_its_days(
    bench: Bench,
) -> None:
    """Served Saturday 28 November 2026 13:00 UTC and delivered at once (14:00 in Berlin): the
    enforcing authority's ten days run Sunday 29 November to Tuesday 8 December, ending at
    midnight in Berlin, 22:59:59.999999 UTC."""
    b = bench
    stored = b.served(**eu_traffic())
    notices = b.desk.notices_of(stored)
    assert [(n.addressee, n.url) for n in notices] == [
        ("enforcing_authority", ENFORCING_URL),
        ("provider", ISP_URL),
    ]
    opened = open_note(notices[0].note, b.deployment.keys.verifiers)
    type_line, body, _ = opened.text.split("\n")
    sent = json.loads(body)
    assert type_line == NOTICE_TYPE and sent["addressee"] == "enforcing_authority"
    assert sent["review_period"] == {"days": 10}
    # It does not sign in: the notice carries the order as issued, targets and all.
    assert sent["issued"]["id"] == stored.id and sent["issued"]["targets"][0]["value"] == EMAIL
    assert b.desk.summary(b.reload(stored))["enforcing_review"]["received_at"] is None

    assert sorted(deliver_notices(b)) == sorted([ENFORCING_URL, ISP_URL])
    order = b.reload(stored)
    review = b.desk.summary(order)["enforcing_review"]
    assert review["received_at"] == "2026-11-28T13:00:00.000000Z"
    assert review["review_until"] == "2026-12-08T22:59:59.999999Z"
    assert review["review_until_local"] == "2026-12-08T23:59:59.999999+01:00"
    received = [e for e in b.desk.timeline(order) if e.event.type == "order.enforcing_received"]
    assert [e.event.data["review_until"] for e in received] == ["2026-12-08T22:59:59.999999Z"]
    # The provider's own receipt came from its own notice, its period in its own zone (UTC).
    assert order.order.received_at == b.clock.now
    assert b.desk.summary(order)["due"] == "2026-12-08T23:59:59.999999Z"


def test_art_8_2_no_notice_goes_to_the_enforcing_authority_of_an_exempt_order(
    bench: Bench,
) -> None:
    stored = bench.served(**eu_traffic(offence_state="PT", residence_state="PT"))
    assert [n.addressee for n in bench.desk.notices_of(stored)] == ["provider"]
    assert bench.desk.summary(stored)["enforcing_review"] is None


def test_art_8_an_enforcing_authoritys_url_is_checked_by_the_outgoing_request_policy(
    bench: Bench,
) -> None:
    inside = eu_traffic()
    inside["enforcing_authority"]["notification_url"] = "http://169.254.169.254/latest"
    with pytest.raises(Invalid, match=r"enforcing_authority\.notification_url"):
        bench.draft(**inside)


def test_art_10_3_a_response_is_withheld_from_the_issuing_authority_until_the_ten_days_end(
    bench: Bench,
) -> None:
    b = bench
    stored = b.served(**eu_traffic())
    deliver_notices(b)
    b.answer(stored, "acknowledge")
    evidence_id = open_response(b, stored)
    receive(b, stored, evidence_id, io.BytesIO(b"traffic records\n"))
    order = b.reload(stored)
    assert b.desk.summary(order)["responses_withheld"] is True
    with pytest.raises(Conflict, match=r"withheld.*Art 10\(3\)"):
        b.desk.check_released(order.id)
    # Nor does an exhibit bundle carry its bytes; nothing is recorded for the attempt.
    examiner = add_principal(b.deployment, "eve", "examiner").actor
    in_case(b.deployment, stored.order.document.case, "eve")
    size = b.deployment.ledger.size()
    with pytest.raises(Conflict, match=r"Art 10\(3\)"):
        b.deployment.bundles.export([evidence_id], io.BytesIO(), by=examiner, with_content=True)
    assert b.deployment.ledger.size() == size
    b.clock.now = datetime(2026, 12, 8, 22, 59, 59, 999999, tzinfo=UTC)
    assert b.desk.responses_withheld(order)
    b.clock.advance(1e-6)
    assert not b.desk.responses_withheld(order)
    b.desk.check_released(order.id)
    b.desk.check_released(None)  # an item that answers no order
    b.deployment.bundles.export([evidence_id], io.BytesIO(), by=examiner, with_content=True)


def test_art_12_the_authority_records_the_enforcing_authoritys_answer_with_its_text(
    bench: Bench,
) -> None:
    b = bench
    stored = b.served(**eu_traffic())
    deliver_notices(b)
    given = b.clock.now + timedelta(days=3)
    b.clock.advance(4 * DAY)
    acted = b.act(
        stored,
        "record_enforcing_answer",
        {
            "answer": "ground",
            "ground": "no_dual_criminality",
            "details": "Not an offence in Germany.",
            "given_at": given,
        },
    )
    data = acted.event.event.data
    assert (data["answer"], data["ground"], data["in_time"]) == (
        "ground",
        "no_dual_criminality",
        True,
    )
    assert data["given_at"] == format_time(given) and "details_commitment" in data
    texts = b.desk.store.texts(stored.id)[acted.event.index]
    assert texts["details"] == "Not an offence in Germany."
    assert b.desk.summary(acted.stored)["enforcing_review"]["answer"] == "ground"
    assert [n.event for n in b.desk.notices_of(stored)][-1] == "order.enforcing_answered"
    with pytest.raises(Conflict) as refused:
        b.act(stored, "record_enforcing_answer", {"answer": "no_ground"})
    assert refused.value.allowed_actions == ["withdraw", "record_user_information"]


def test_art_8_an_adapted_revision_goes_to_the_enforcing_authority_and_its_review_goes_on(
    bench: Bench,
) -> None:
    b = bench
    stored = b.served(**eu_traffic())
    deliver_notices(b)
    before = b.desk.summary(b.reload(stored))["enforcing_review"]
    b.clock.advance(DAY)
    adapted = b.act(
        stored, "adapt", {"document": {"facts": FACTS + " Adapted."}}, by=b.approver2.actor
    )
    sent = [(n.addressee, n.event) for n in b.desk.notices_of(adapted.stored)]
    assert sent[-2:] == [("enforcing_authority", "order.adapted"), ("provider", "order.adapted")]
    opened = open_note(b.desk.notices_of(adapted.stored)[-2].note, b.deployment.keys.verifiers)
    assert json.loads(opened.text.split("\n")[1])["issued"]["revision"] == 2
    deliver_notices(b)
    # The ten days still run from the first notice's receipt.
    assert b.desk.summary(b.reload(stored))["enforcing_review"] == before
