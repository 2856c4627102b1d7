"""Providers, orders, committed order texts and the notice outbox on SQL (and the outbox
policy's storage, which the alerts' outbox shares)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError

from custody.errors import StorageError
from custody.events import format_time
from custody.interfaces import AppendTransaction
from custody.notices import PENDING, Notice
from custody.order_deadlines import OrderClock, Period, PeriodRule, Place
from custody.order_desk import StoredOrder
from custody.order_document import OrderDocument
from custody.order_enforcing import EnforcingReview
from custody.orders import Order, deadline
from custody.providers import Provider
from storage.sql.database import WRITE
from storage.sql.ledger import connection_of
from storage.sql.schema import notices, order_texts, orders, providers

_US = timedelta(microseconds=1)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _clock_json(clock: OrderClock | None) -> dict[str, Any] | None:
    if clock is None:
        return None
    return {
        "served_at": format_time(clock.served_at),
        "period": clock.period.as_json(),
        "place": clock.place.as_json(),
        "rule": clock.rule.value,
        "received_at": _time(clock.received_at),
        "received_via": clock.received_via,
        "suspended_since": _time(clock.suspended_since),
        "suspended_for_us": clock.suspended_for // _US,
        "open_ended": clock.open_ended,
        "fixed_due": _time(clock.fixed_due),
    }


def _clock(data: Mapping[str, Any] | None) -> OrderClock | None:
    if data is None:
        return None
    served_at = _parse(data["served_at"])
    assert served_at is not None
    if "period_us" in data:
        return _legacy_clock(served_at, data)
    return OrderClock(
        served_at=served_at,
        period=Period(**data["period"]),
        place=Place(**data["place"]),
        rule=PeriodRule(data["rule"]),
        received_at=_parse(data["received_at"]),
        received_via=data["received_via"],
        suspended_since=_parse(data["suspended_since"]),
        suspended_for=data["suspended_for_us"] * _US,
        open_ended=data["open_ended"],
        fixed_due=_parse(data["fixed_due"]),
    )


def _legacy_clock(served_at: datetime, data: Mapping[str, Any]) -> OrderClock:
    """A clock stored before deadlines ran from receipt: its period ran, exactly, from
    service, so it reads back as received at service under the exact rule, and every
    deadline it showed stays the same."""
    period = data["period_us"] * _US
    whole_days, rest = divmod(period, timedelta(days=1))
    spec = Period(days=whole_days) if not rest else Period(hours=period // timedelta(hours=1))
    return OrderClock(
        served_at=served_at,
        period=spec,
        rule=PeriodRule.EXACT,
        received_at=served_at,
        received_via="service",
        suspended_since=_parse(data["paused_since"]),
        suspended_for=data["paused_for_us"] * _US,
    )


def _review_json(review: EnforcingReview | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "place": review.place.as_json(),
        "emergency": review.emergency,
        "received_at": _time(review.received_at),
        "answer": review.answer,
        "answered_at": _time(review.answered_at),
        "in_time": review.in_time,
        "restriction_owed": review.restriction_owed,
        "restricted": review.restricted,
    }


def _review(data: Mapping[str, Any] | None) -> EnforcingReview | None:
    if data is None:
        return None
    return EnforcingReview(
        place=Place(**data["place"]),
        emergency=data["emergency"],
        received_at=_parse(data["received_at"]),
        answer=data["answer"],
        answered_at=_parse(data["answered_at"]),
        in_time=data["in_time"],
        restriction_owed=data["restriction_owed"],
        restricted=data["restricted"],
    )


def order_json(order: Order) -> str:
    return _dump(
        {
            "id": order.id,
            "document": order.document.as_json(),
            "state": order.state.value,
            "drafted_by": order.drafted_by,
            "drafted_at": format_time(order.drafted_at),
            "revised_by": list(order.revised_by),
            "approved_by": order.approved_by,
            "clock": _clock_json(order.clock),
            "first_read_at": _time(order.first_read_at),
            "revision": order.revision,
            "resume_state": None if order.resume_state is None else order.resume_state.value,
            "extensions": order.extensions,
            "enforcement_sought_at": _time(order.enforcement_sought_at),
            "responses": order.responses,
            "enforcing": _review_json(order.enforcing),
            "validated_by": order.validated_by,
            "user_informed_at": _time(order.user_informed_at),
        }
    )


@lru_cache(maxsize=2048)
def order_from_json(text: str) -> Order:
    """The order a stored record holds. Orders are immutable, so the same record text gives
    the same object: lists read the same orders again and again, and building a document
    from JSON (validating every field) is the cost of reading one."""
    return _order_from_json(text)


def _order_from_json(text: str) -> Order:
    data = json.loads(text)
    drafted_at = _parse(data["drafted_at"])
    assert drafted_at is not None
    return Order(
        id=data["id"],
        document=OrderDocument.from_json(data["document"]),
        state=data["state"],
        drafted_by=data["drafted_by"],
        drafted_at=drafted_at,
        revised_by=tuple(data["revised_by"]),
        approved_by=data["approved_by"],
        clock=_clock(data["clock"]),
        first_read_at=_parse(data["first_read_at"]),
        revision=data.get("revision", 1),
        resume_state=data.get("resume_state"),
        extensions=data.get("extensions", 0),
        enforcement_sought_at=_parse(data.get("enforcement_sought_at")),
        responses=data.get("responses", 0),
        enforcing=_review(data.get("enforcing")),
        validated_by=data.get("validated_by"),
        user_informed_at=_parse(data.get("user_informed_at")),
    )


class _Sql:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        try:
            options = WRITE if write else {}
            with self.engine.connect().execution_options(**options) as c, c.begin():
                yield c
        except SQLAlchemyError as exc:
            raise StorageError(f"order store failed: {exc}") from exc

    def _rows(self, query: Any, tx: AppendTransaction | None = None) -> list[Any]:
        if tx is not None:
            return list(connection_of(tx).execute(query))
        with self._connect() as c:
            return list(c.execute(query))


class SqlProviderStore(_Sql):
    """``custody.providers.ProviderStore`` on SQLite or PostgreSQL."""

    def insert(self, tx: AppendTransaction, provider: Provider) -> None:
        connection_of(tx).execute(
            insert(providers).values(
                id=provider.id, name=provider.name, record=_dump(provider.as_json())
            )
        )

    def get(self, provider_id: str) -> Provider | None:
        rows = self._rows(select(providers.c.record).where(providers.c.id == provider_id))
        return _provider(rows[0].record) if rows else None

    def by_name(self, name: str, tx: AppendTransaction | None = None) -> Provider | None:
        rows = self._rows(select(providers.c.record).where(providers.c.name == name), tx)
        return _provider(rows[0].record) if rows else None

    def list(self, limit: int | None = None, after: str | None = None) -> list[Provider]:
        query = select(providers.c.record).order_by(providers.c.name)
        if after is not None:
            query = query.where(providers.c.name > after)
        if limit is not None:
            query = query.limit(limit)
        return [_provider(r.record) for r in self._rows(query)]


def _provider(text: str) -> Provider:
    data = json.loads(text)
    created_at = _parse(data.pop("created_at"))
    assert created_at is not None
    return Provider(**data, created_at=created_at)


_ORDER_COLUMNS = (orders.c.record, orders.c.seq, orders.c.salt, orders.c.note)


def _stored(row: Any) -> StoredOrder:
    note = None if row.note is None else bytes(row.note)
    return StoredOrder(order_from_json(row.record), row.seq, bytes(row.salt), note)


def _columns(order: Order) -> dict[str, Any]:
    return {
        "provider_id": order.document.provider,
        "case_ref": order.document.case,
        "state": order.state.value,
        "due": _time(deadline(order)),
        "record": order_json(order),
    }


_WINDOW_PAGES = 8
"""How many pages of orders in ``seq`` order a filtered list reads before it asks an index."""
_BY_INDEX = frozenset({"provider", "after"})
"""Filters that read in ``seq`` order from an index already (a provider's inbox): no window."""


def _conditions(dialect: str) -> dict[str, ColumnElement[bool]]:
    """Each filter's condition. On PostgreSQL a scope's cases are one array parameter: a
    list of a hundred cases made each statement's text long and new, which the driver and
    the server then parsed and planned anew each time."""
    if dialect == "postgresql":
        cases = orders.c.case_ref == any_(bindparam("cases", type_=postgresql.ARRAY(String)))
    else:
        cases = orders.c.case_ref.in_(bindparam("cases", expanding=True))
    return {
        "states": orders.c.state.in_(bindparam("states", expanding=True)),
        "provider": orders.c.provider_id == bindparam("provider"),
        "case": orders.c.case_ref == bindparam("case"),
        "cases": cases,
        "due": orders.c.due < bindparam("due"),
        "due_from": orders.c.due >= bindparam("due_from"),
        "after": orders.c.seq > bindparam("after"),
    }


@lru_cache(maxsize=64)
def _list_query(filters: frozenset[str], dialect: str) -> Any:
    """The list statement for the filters given, built once each (lists are the hot read:
    building a statement costs about as much as running it)."""
    conditions = _conditions(dialect)
    query = select(*_ORDER_COLUMNS).order_by(orders.c.seq).limit(bindparam("limit"))
    for name in sorted(filters):
        query = query.where(conditions[name])
    return query


@lru_cache(maxsize=64)
def _window_query(filters: frozenset[str], dialect: str) -> Any:
    """The next ``:window`` orders after ``:after`` in ``seq`` order, each with whether it
    passes the filters, and the columns of the first ``:limit`` that pass (NULL for the
    rest): one short range of the ``seq`` index, and only the records shown read.

    A planner given ``state = 'served'`` or a scope's cases picks that index, reads every
    order it matches (most of them, on a busy desk) and sorts them all to show a page; in
    ``seq`` order the page is usually among the first few dozen orders."""
    conditions = _conditions(dialect)
    passes = and_(*(conditions[name] for name in sorted(filters - {"after"})))
    window = (
        select(orders.c.seq)
        .where(conditions["after"])
        .order_by(orders.c.seq)
        .limit(bindparam("window"))
        .subquery("window")
    )
    flagged = (
        select(
            window.c.seq,
            sql_case((passes, 1), else_=0).label("passes"),
        )
        .join_from(window, orders, orders.c.seq == window.c.seq)
        .subquery("flagged")
    )
    counted = select(
        flagged.c.seq,
        flagged.c.passes,
        func.sum(flagged.c.passes).over(order_by=flagged.c.seq).label("passed"),
    ).subquery("counted")
    shown = and_(counted.c.passes == 1, counted.c.passed <= bindparam("limit"))
    return (
        select(counted.c.seq, counted.c.passes, orders.c.record, orders.c.salt, orders.c.note)
        .select_from(counted.outerjoin(orders, and_(orders.c.seq == counted.c.seq, shown)))
        .order_by(counted.c.seq)
    )


def _window(c: Connection, given: Mapping[str, Any], limit: int) -> tuple[list[Any], int, bool]:
    """The orders of the next ``_WINDOW_PAGES`` pages in ``seq`` order that pass the
    filters, at most ``limit`` of them; the window's last ``seq``; and whether it reached
    the last order. One statement, which reads only the records shown."""
    window = limit * _WINDOW_PAGES
    params = {**given, "after": given.get("after", -1), "window": window, "limit": limit}
    query = _window_query(frozenset(given) | {"after"}, c.dialect.name)
    rows = c.execute(query, params).all()
    kept = [row for row in rows if row.record is not None]
    last = rows[-1].seq if rows else params["after"]
    return kept, last, len(rows) < window


class SqlOrderStore(_Sql):
    """``custody.order_desk.OrderStore`` on SQLite or PostgreSQL."""

    def insert(self, tx: AppendTransaction, stored: StoredOrder) -> None:
        connection_of(tx).execute(
            insert(orders).values(
                id=stored.id,
                seq=stored.seq,
                salt=stored.salt,
                note=stored.note,
                **_columns(stored.order),
            )
        )

    def update(self, tx: AppendTransaction, order: Order, note: bytes | None = None) -> None:
        values = _columns(order)
        if note is not None:
            values["note"] = note
        connection_of(tx).execute(update(orders).where(orders.c.id == order.id).values(**values))

    def get(self, order_id: str, tx: AppendTransaction | None = None) -> StoredOrder | None:
        rows = self._rows(select(*_ORDER_COLUMNS).where(orders.c.id == order_id), tx)
        return _stored(rows[0]) if rows else None

    def list(
        self,
        *,
        states: Sequence[str] | None = None,
        provider: str | None = None,
        case: str | None = None,
        cases: Sequence[str] | None = None,
        due_before: datetime | None = None,
        due_from: datetime | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> list[StoredOrder]:
        values = {
            "states": None if states is None else list(states),
            "provider": provider,
            "case": case,
            "cases": None if cases is None else list(cases),
            "due": None if due_before is None else format_time(due_before),
            "due_from": None if due_from is None else format_time(due_from),
            "after": after,
        }
        given = {name: value for name, value in values.items() if value is not None}
        with self._connect() as c:
            if set(given) <= _BY_INDEX:
                query = _list_query(frozenset(given), c.dialect.name)
                rows = c.execute(query, {**given, "limit": limit}).all()
                return [_stored(r) for r in rows]
            rows, last, exhausted = _window(c, given, limit)
            if len(rows) < limit and not exhausted:  # sparse: by its index, after the window
                rest = {**given, "after": last}
                query = _list_query(frozenset(rest), c.dialect.name)
                rows += c.execute(query, {**rest, "limit": limit - len(rows)}).all()
        return [_stored(r) for r in rows]

    def save_text(
        self,
        tx: AppendTransaction,
        ledger_index: int,
        order_id: str,
        field: str,
        salt: bytes,
        text: str,
    ) -> None:
        connection_of(tx).execute(
            insert(order_texts).values(
                ledger_index=ledger_index, field=field, order_id=order_id, salt=salt, text=text
            )
        )

    def texts(self, order_id: str) -> dict[int, dict[str, str]]:
        query = select(order_texts.c.ledger_index, order_texts.c.field, order_texts.c.text).where(
            order_texts.c.order_id == order_id
        )
        result: dict[int, dict[str, str]] = {}
        for row in self._rows(query):
            result.setdefault(row.ledger_index, {})[row.field] = row.text
        return result


def _notice(row: Any) -> Notice:
    return Notice(
        id=row.id,
        order_id=row.order_id,
        provider_id=row.provider_id,
        event=row.event,
        ledger_index=row.ledger_index,
        revision=row.revision,
        addressee=row.addressee,
        url=row.url,
        note=bytes(row.note),
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )


class SqlOutbox(_Sql):
    """``custody.outbox.OutboxStore`` over a table of messages with the outbox's columns
    (``id``, ``state``, ``attempts``, ``next_attempt_at``, ``delivered_at``, ``last_error``)."""

    table: Table

    def message(self, row: Any) -> Any:
        """The message a row holds."""
        raise NotImplementedError

    def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Any]:
        table = self.table
        claimed = []
        with self._connect(write=True) as c:
            due = c.execute(
                select(table)
                .where(table.c.state == PENDING, table.c.next_attempt_at <= now)
                .order_by(table.c.next_attempt_at, table.c.id)
                .limit(limit)
            ).all()
            for row in due:
                # Moved only if nobody moved it since we read it: a lease of our own.
                moved = c.execute(
                    update(table)
                    .where(
                        table.c.id == row.id,
                        table.c.state == PENDING,
                        table.c.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=lease_until)
                )
                if moved.rowcount == 1:
                    claimed.append(self.message(row))
        return claimed

    def record_attempt(self, message: Any) -> None:
        with self._connect(write=True) as c:
            c.execute(
                update(self.table)
                .where(self.table.c.id == message.id)
                .values(
                    state=message.state,
                    attempts=message.attempts,
                    next_attempt_at=message.next_attempt_at,
                    delivered_at=message.delivered_at,
                    last_error=message.last_error,
                )
            )


class SqlNoticeStore(SqlOutbox):
    """``custody.notices.NoticeStore`` on SQLite or PostgreSQL."""

    table = notices

    def message(self, row: Any) -> Notice:
        return _notice(row)

    def add(self, tx: AppendTransaction, notice: Notice) -> None:
        connection_of(tx).execute(
            insert(notices).values(
                order_id=notice.order_id,
                provider_id=notice.provider_id,
                event=notice.event,
                ledger_index=notice.ledger_index,
                revision=notice.revision,
                addressee=notice.addressee,
                url=notice.url,
                note=notice.note,
                created_at=notice.created_at,
                state=notice.state,
                attempts=notice.attempts,
                next_attempt_at=notice.next_attempt_at,
                delivered_at=notice.delivered_at,
                last_error=notice.last_error,
            )
        )

    def for_order(self, order_id: str) -> list[Notice]:
        query = select(notices).where(notices.c.order_id == order_id).order_by(notices.c.id)
        return [_notice(r) for r in self._rows(query)]
