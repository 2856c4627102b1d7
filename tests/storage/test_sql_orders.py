"""Tests of storage/sql/orders.py on SQLite and PostgreSQL: orders, their committed texts,
providers and the notice outbox, driven through the stores themselves (the desk that uses them
is tested in tests/custody/test_order_desk.py)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine

from custody.errors import StorageError
from custody.notices import DELIVERED, FAILED, PENDING, Notice
from custody.order_deadlines import OrderClock, Period, PeriodRule, Place
from custody.order_desk import StoredOrder
from custody.order_document import PRESERVATION, PRODUCTION, OrderDocument
from custody.orders import Order, OrderState, deadline, new_order_id
from custody.providers import Provider, new_provider_id
from storage.sql.database import create_database_engine, migrate
from storage.sql.ledger import SqlLedgerStore
from storage.sql.orders import (
    SqlNoticeStore,
    SqlOrderStore,
    SqlProviderStore,
    order_from_json,
    order_json,
)
from tests.factories import EMERGENCY, full_order_document

PROVIDER = "prv_00000000000000aa"
OTHER_PROVIDER = "prv_00000000000000bb"
# Times with microseconds and an offset other than UTC: both must survive exactly.
DRAFTED = datetime(2026, 3, 2, 9, 0, 0, 123457, tzinfo=timezone(timedelta(hours=1)))
SERVED = datetime(2026, 3, 4, 17, 30, 15, 999999, tzinfo=UTC)


@dataclass
class Stores:
    engine: Engine
    ledger: SqlLedgerStore
    orders: SqlOrderStore
    notices: SqlNoticeStore
    providers: SqlProviderStore


@pytest.fixture
def stores(database_url: str) -> Iterator[Stores]:
    engine = create_database_engine(database_url)
    migrate(engine)
    yield Stores(
        engine,
        SqlLedgerStore(engine),
        SqlOrderStore(engine),
        SqlNoticeStore(engine),
        SqlProviderStore(engine),
    )
    engine.dispose()


def make_order(
    kind: str = PRODUCTION,
    *,
    provider: str = PROVIDER,
    state: OrderState = OrderState.DRAFT,
    served_at: datetime | None = None,
    **changes: Any,
) -> Order:
    document = OrderDocument.from_json(full_order_document(provider, kind, **changes))
    clock = None
    if served_at is not None:
        clock = OrderClock(
            served_at=served_at,
            period=Period(days=10),
            rule=PeriodRule.EXACT,
            received_at=served_at,
            received_via="notice",
        )
    return Order(
        id=new_order_id(),
        document=document,
        state=state,
        drafted_by="pr_author",
        drafted_at=DRAFTED,
        clock=clock,
    )


def insert(stores: Stores, order: Order, seq: int) -> StoredOrder:
    stored = StoredOrder(order, seq=seq, salt=secrets.token_bytes(32))
    with stores.ledger.appending() as tx:
        stores.orders.insert(tx, stored)
    return stored


def update(stores: Stores, order: Order, note: bytes | None = None) -> None:
    with stores.ledger.appending() as tx:
        stores.orders.update(tx, order, note)


# -- orders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": PRODUCTION, "emergency": EMERGENCY},
        {"kind": PRESERVATION, "preservation_days": 45},
    ],
    ids=["emergency production", "preservation"],
)
def test_an_order_survives_insert_get_and_update_exactly(
    stores: Stores, changes: dict[str, Any]
) -> None:
    order = make_order(**changes)
    document = order.document
    assert document.validating_authority is not None
    assert document.time_range is not None
    assert document.confidentiality.until is not None
    assert document.targets[1].port == 51234
    stored = insert(stores, order, seq=7)
    assert stores.orders.get(order.id) == stored

    note = b"custos/order/v1\n{}\n\n\xe2\x80\x94 signature\n"
    clock = OrderClock(
        served_at=SERVED,
        period=Period(days=10),
        place=Place("Europe/Berlin", "DE", "BY"),
        received_at=SERVED + timedelta(minutes=3, microseconds=7),
        received_via="read",
        suspended_for=timedelta(hours=5, microseconds=3),
        fixed_due=SERVED + timedelta(days=30, microseconds=9),
    )
    served = replace(
        order,
        state=OrderState.SERVED,
        revised_by=("pr_reviser", "pr_second"),
        approved_by="pr_approver",
        clock=clock,
        first_read_at=SERVED + timedelta(microseconds=1),
    )
    update(stores, served, note)
    got = stores.orders.get(order.id)
    assert got == StoredOrder(served, 7, stored.salt, note)
    assert got is not None and got.order.clock is not None
    assert got.order.clock.served_at == SERVED
    assert got.order.clock == clock
    assert got.order.drafted_at == DRAFTED

    objected = replace(
        served,
        state=OrderState.OBJECTED,
        clock=clock.suspended(SERVED + timedelta(days=2, microseconds=5)),
        resume_state=OrderState.ACKNOWLEDGED,
        revision=3,
        extensions=2,
        enforcement_sought_at=SERVED + timedelta(days=11),
    )
    update(stores, objected)  # no note: the one signed at service stays
    assert stores.orders.get(order.id) == StoredOrder(objected, 7, stored.salt, note)


def test_an_order_stored_before_deadlines_ran_from_receipt_keeps_its_deadline() -> None:
    """A record written by an earlier version (its clock ran, exactly, from service) reads
    back received at service under the exact rule: every deadline it showed stays."""
    order = make_order(state=OrderState.SERVED, served_at=SERVED)
    record = json.loads(order_json(order))
    record["clock"] = {
        "served_at": "2026-03-02T09:00:00.000000Z",
        "period_us": 10 * 86400 * 10**6,
        "paused_since": None,
        "paused_for_us": 3 * 3600 * 10**6,
    }
    for name in ("revision", "resume_state", "extensions", "enforcement_sought_at"):
        del record[name]
    old = order_from_json(json.dumps(record))
    assert old.clock is not None
    assert old.clock.received_via == "service"
    assert deadline(old) == datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
    emergency = dict(record["clock"], period_us=8 * 3600 * 10**6, paused_for_us=0)
    old = order_from_json(json.dumps({**record, "clock": emergency}))
    assert deadline(old) == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert old.revision == 1 and old.resume_state is None


def test_an_order_written_in_a_transaction_that_fails_is_not_stored(stores: Stores) -> None:
    order = make_order()
    with pytest.raises(RuntimeError), stores.ledger.appending() as tx:
        stores.orders.insert(tx, StoredOrder(order, 3, secrets.token_bytes(32)))
        stores.orders.save_text(tx, 4, order.id, "details", secrets.token_bytes(32), "why")
        assert stores.orders.get(order.id, tx) is not None
        raise RuntimeError("the event could not be appended")
    assert stores.orders.get(order.id) is None
    assert stores.orders.texts(order.id) == {}


def test_an_order_id_or_seq_is_stored_once(stores: Stores) -> None:
    stored = insert(stores, make_order(), seq=1)
    with pytest.raises(StorageError):
        insert(stores, stored.order, seq=2)
    with pytest.raises(StorageError):
        insert(stores, make_order(), seq=1)
    assert stores.orders.list() == [stored]


def test_list_pages_by_seq_and_filters_by_state_provider_case_and_due(stores: Stores) -> None:
    ten_days = timedelta(days=10)
    soon = SERVED - timedelta(days=20)  # due ten days before SERVED
    made = {
        "draft": insert(stores, make_order(), seq=40),
        "served early": insert(stores, make_order(state=OrderState.SERVED, served_at=soon), seq=10),
        "served late": insert(
            stores, make_order(state=OrderState.SERVED, served_at=SERVED), seq=30
        ),
        "other provider": insert(
            stores,
            make_order(provider=OTHER_PROVIDER, state=OrderState.SERVED, served_at=soon),
            seq=20,
        ),
        "other case": insert(stores, make_order(case="CASE-8"), seq=50),
    }
    paused = make_order(state=OrderState.OBJECTED, served_at=soon)
    assert paused.clock is not None
    paused = replace(paused, clock=paused.clock.suspended(soon + timedelta(hours=1)))
    made["paused"] = insert(stores, paused, seq=60)

    def names(found: list[StoredOrder]) -> list[str]:
        by_id = {stored.id: name for name, stored in made.items()}
        return [by_id[stored.id] for stored in found]

    everything = ["served early", "other provider", "served late", "draft", "other case", "paused"]
    assert names(stores.orders.list()) == everything
    pages, after = [], None
    while page := stores.orders.list(limit=4, after=after):
        pages.append(names(page))
        after = page[-1].seq
    assert pages == [everything[:4], everything[4:]]
    assert names(stores.orders.list(after=30)) == ["draft", "other case", "paused"]

    served = ["served early", "other provider", "served late"]
    assert names(stores.orders.list(states=["served"])) == served
    assert names(stores.orders.list(states=["draft", "objected"])) == [
        "draft",
        "other case",
        "paused",
    ]
    assert names(stores.orders.list(states=[])) == []
    assert names(stores.orders.list(provider=OTHER_PROVIDER)) == ["other provider"]
    assert names(stores.orders.list(case="CASE-8")) == ["other case"]
    assert names(stores.orders.list(states=["served"], provider=PROVIDER, case="CASE-7")) == [
        "served early",
        "served late",
    ]
    # The running deadline: unserved and paused orders have none.
    assert names(stores.orders.list(due_before=SERVED)) == ["served early", "other provider"]
    assert names(stores.orders.list(due_before=soon + ten_days)) == []
    assert names(stores.orders.list(due_before=SERVED + ten_days + timedelta(microseconds=1))) == (
        served
    )


def test_committed_texts_are_kept_per_event_and_field(stores: Stores) -> None:
    order, other = make_order(), make_order()
    text = "Olá — the third country's law forbids it: 北京 §3"
    with stores.ledger.appending() as tx:
        stores.orders.save_text(tx, 11, order.id, "details", secrets.token_bytes(32), text)
        stores.orders.save_text(tx, 11, order.id, "reason", secrets.token_bytes(32), "r")
        stores.orders.save_text(tx, 15, order.id, "answer", secrets.token_bytes(32), "a")
        stores.orders.save_text(tx, 12, other.id, "question", secrets.token_bytes(32), "q")
    assert stores.orders.texts(order.id) == {
        11: {"details": text, "reason": "r"},
        15: {"answer": "a"},
    }
    assert stores.orders.texts(other.id) == {12: {"question": "q"}}
    with pytest.raises(StorageError), stores.ledger.appending() as tx:
        stores.orders.save_text(tx, 11, order.id, "details", secrets.token_bytes(32), "again")
    assert stores.orders.texts(order.id)[11]["details"] == text


# -- providers ------------------------------------------------------------------------------------


def make_provider(name: str, url: str | None = None) -> Provider:
    return Provider(
        id=new_provider_id(),
        name=name,
        jurisdiction="IE",
        legal_representative=f"{name} Legal",
        contact="lawful-requests@isp.example",
        created_at=SERVED,
        notification_url=url,
    )


def test_providers_are_stored_whole_and_named_once(stores: Stores) -> None:
    isp = make_provider("Example ISP", "https://isp.example/custos")
    mail = make_provider("Mail Co")
    with stores.ledger.appending() as tx:
        stores.providers.insert(tx, mail)
        stores.providers.insert(tx, isp)
        assert stores.providers.by_name("Mail Co", tx) == mail
    assert stores.providers.get(isp.id) == isp
    assert stores.providers.get(mail.id) == mail
    assert stores.providers.get("prv_0000000000000000") is None
    assert stores.providers.by_name("Example ISP") == isp
    assert stores.providers.by_name("example isp") is None
    assert stores.providers.list() == [isp, mail]
    with pytest.raises(StorageError), stores.ledger.appending() as tx:
        stores.providers.insert(tx, make_provider("Mail Co"))
    assert stores.providers.list() == [isp, mail]


def test_providers_are_listed_a_page_at_a_time_after_a_name(stores: Stores) -> None:
    names = ["Zeta Telecom", "Ärzte Netz", "alpha mail", "Alpha Mail", "Ω Cloud", "Mail Co"]
    with stores.ledger.appending() as tx:
        for name in names:
            stores.providers.insert(tx, make_provider(name))
    whole = [p.name for p in stores.providers.list()]

    paged: list[str] = []
    after = None
    while batch := stores.providers.list(2, after):
        paged += [p.name for p in batch]
        after = batch[-1].name

    assert sorted(whole) == sorted(names)
    assert paged == whole  # the database's own name order, each name once


# -- the notice outbox ----------------------------------------------------------------------------


def make_notice(order_id: str, index: int, due: datetime) -> Notice:
    return Notice(
        order_id=order_id,
        provider_id=PROVIDER,
        event="order.served",
        ledger_index=index,
        url="https://isp.example/custos",
        note=b"custos/notice/v1\n{}\n\n\xe2\x80\x94 sig\n",
        created_at=due - timedelta(microseconds=7),
        next_attempt_at=due,
    )


def add_notices(stores: Stores, notices: list[Notice]) -> list[Notice]:
    with stores.ledger.appending() as tx:
        for notice in notices:
            stores.notices.add(tx, notice)
    found: list[Notice] = []
    for order_id in dict.fromkeys(n.order_id for n in notices):
        found.extend(stores.notices.for_order(order_id))
    return found


def test_a_notice_is_stored_whole(stores: Stores) -> None:
    order_id = new_order_id()
    sent = [make_notice(order_id, 5, SERVED), make_notice(order_id, 9, SERVED)]
    kept = add_notices(stores, sent)
    assert [replace(n, id=None) for n in kept] == sent
    assert kept[0].id is not None and kept[1].id is not None
    assert kept[0].id < kept[1].id
    assert stores.notices.for_order(new_order_id()) == []


def test_claim_due_leases_each_due_notice_to_one_claimer(stores: Stores) -> None:
    now = SERVED
    lease = now + timedelta(minutes=5)
    first, second, later = add_notices(
        stores,
        [
            make_notice(new_order_id(), 1, now - timedelta(seconds=2)),
            make_notice(new_order_id(), 2, now - timedelta(seconds=1)),
            make_notice(new_order_id(), 3, now + timedelta(minutes=1)),
        ],
    )
    assert [n.id for n in stores.notices.claim_due(now, lease, 1)] == [first.id]
    assert [n.id for n in stores.notices.claim_due(now, lease, 10)] == [second.id]
    assert stores.notices.claim_due(now, lease, 10) == []
    later_on = now + timedelta(minutes=2)
    assert [n.id for n in stores.notices.claim_due(later_on, lease, 10)] == [later.id]
    # Each lease runs out at its end, and only then is the notice due again.
    assert stores.notices.claim_due(lease - timedelta(microseconds=1), lease, 10) == []
    next_lease = lease + timedelta(minutes=5)
    again = stores.notices.claim_due(lease, next_lease, 10)
    assert {n.id for n in again} == {first.id, second.id, later.id}
    assert stores.notices.for_order(first.order_id)[0].next_attempt_at == next_lease


def test_a_delivered_or_failed_notice_is_never_claimed_again(stores: Stores) -> None:
    delivered, failed, pending = add_notices(
        stores, [make_notice(new_order_id(), i, SERVED) for i in range(3)]
    )
    done = replace(
        delivered, state=DELIVERED, attempts=1, next_attempt_at=None, delivered_at=SERVED
    )
    stores.notices.record_attempt(done)
    gave_up = replace(failed, state=FAILED, attempts=8, next_attempt_at=None, last_error="HTTP 503")
    stores.notices.record_attempt(gave_up)
    retry = replace(
        pending, attempts=1, next_attempt_at=SERVED + timedelta(seconds=30), last_error="timeout"
    )
    stores.notices.record_attempt(retry)
    assert stores.notices.for_order(delivered.order_id) == [done]
    assert stores.notices.for_order(failed.order_id) == [gave_up]
    assert stores.notices.for_order(pending.order_id) == [retry]
    later = SERVED + timedelta(days=1)
    assert [n.id for n in stores.notices.claim_due(later, later, 10)] == [pending.id]
    assert stores.notices.for_order(pending.order_id)[0].state == PENDING


def test_concurrent_claims_never_share_a_notice(stores: Stores) -> None:
    add_notices(stores, [make_notice(new_order_id(), i, SERVED) for i in range(24)])
    lease = SERVED + timedelta(minutes=5)
    claims: list[list[int | None]] = [[], [], []]
    start = threading.Barrier(len(claims))

    def claim(mine: list[int | None]) -> None:
        start.wait()
        while found := stores.notices.claim_due(SERVED, lease, 3):
            mine.extend(n.id for n in found)

    threads = [threading.Thread(target=claim, args=(mine,)) for mine in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [i for mine in claims for i in mine]
    assert len(every) == len(set(every)) == 24


def state_of(n: int) -> OrderState:
    """Order n's state: served first in a dense run, objected now and then, three drafts
    late (outside the first window of a small page), acknowledged for the rest."""
    if n < 30:
        return OrderState.SERVED
    if n % 9 == 0:
        return OrderState.OBJECTED
    if 60 <= n < 63:
        return OrderState.DRAFT
    return OrderState.ACKNOWLEDGED


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_a_filtered_list_pages_through_exactly_the_orders_it_matches(
    stores: Stores, limit: int
) -> None:
    made: dict[int, tuple[OrderState, str]] = {}
    for n in range(72):
        state, case = state_of(n), f"CASE-{n % 3}"
        served = None if state is OrderState.DRAFT else SERVED
        insert(stores, make_order(state=state, served_at=served, case=case), seq=n)
        made[n] = (state.value, case)
    filters: list[dict[str, Any]] = [
        {"states": ["served"]},
        {"states": ["draft"]},
        {"states": ["objected", "draft"]},
        {"cases": ["CASE-0", "CASE-2"]},
        {"states": ["acknowledged"], "cases": ["CASE-1"]},
        {"states": ["draft"], "case": "CASE-1"},
        {"states": ["served"], "provider": PROVIDER},
    ]
    for given in filters:
        expected = [
            n
            for n, (state, case) in made.items()
            if state in given.get("states", [state])
            and case in given.get("cases", [case])
            and case == given.get("case", case)
        ]
        seen: list[int] = []
        after = None
        while True:
            page = stores.orders.list(**given, limit=limit, after=after)
            assert len(page) <= limit
            seen += [stored.seq for stored in page]
            if len(page) < limit:
                break
            after = page[-1].seq
        assert seen == expected, given
