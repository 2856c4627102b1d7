"""The order desk: drafting, serving and answering orders, each step one ledger event.

Every change reads the order inside the ledger's append transaction, applies the transition
table of ``custody.orders`` and writes the order, any committed text, the notice to the
provider and the event together, so a refused action (403, 404, 409) changes nothing in the
database or the ledger. Providers reach an order only when it is addressed to them and has
been served; for anyone else it does not exist (NotFound).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from custody.alerts import Alerts
from custody.cases import Cases, Scope
from custody.commitment import commit, commitment, new_salt
from custody.errors import BadRequest, Conflict, Invalid, NotFound
from custody.events import SYSTEM, Actor, Event, NewEvent, Subject, format_time
from custody.evidence import EvidenceRecord, UploadSession, require_role
from custody.intake import Ingested, Intake
from custody.interfaces import AppendTransaction
from custody.ledger import Appended, Ledger, Recorder
from custody.note import sign_note
from custody.notices import (
    ENFORCING_AUTHORITY,
    ENFORCING_NOTIFY_EVENTS,
    NOTIFY_EVENTS,
    RECEIPT_EVENTS,
    Notice,
    NoticeStore,
    enforcing_notice_text,
    notice_text,
)
from custody.order_deadlines import PeriodRule
from custody.order_document import OrderDocument
from custody.orders import (
    AWAITING_ANSWER,
    DRAFTED_EVENT,
    ENFORCING_RECEIVED_EVENT,
    HOLDING,
    READ_EVENT,
    RECEIVED_EVENT,
    Order,
    OrderState,
    ServiceTerms,
    allowed_actions,
    apply,
    check_may,
    check_released,
    deadline,
    draft_order,
    expired,
    is_order_id,
    issue_faults,
    issued_order,
    order_document_text,
    order_event_data,
    overdue,
    record_enforcing_receipt,
    record_first_read,
    record_receipt,
    revise_draft,
    withheld,
)
from custody.outbound import OutboundPolicy
from custody.providers import ProviderStore

# The issuing side: who reads orders and acts on them (each act is further bound to its party).
AUTHORITY_ROLES = ("authority", "approver", "validator")
PROVIDER_ROLES = ("provider",)
# Free text an action carries: kept beside the order, committed to in the event.
COMMITTED_FIELDS = ("details", "question", "answer", "reason")
# What a provider sees: orders from service on, and their events from service on.
UNSERVED = (OrderState.DRAFT, OrderState.PENDING_APPROVAL)
SERVED_STATES = tuple(s for s in OrderState if s not in UNSERVED)
_INTERNAL_EVENTS = ("order.drafted", "order.revised", "order.submitted")
# The states a preservation hold may end in; closed, withdrawn and expired orders keep their
# old deadline but never lapse, so the sweep does not read them again and again.
_EXPIRABLE = [s.value for s in HOLDING]


@dataclass(frozen=True)
class StoredOrder:
    """An order as kept: ``seq`` is the ledger index of its ``order.drafted`` event (the list
    order and cursor), ``salt`` the salt of its document commitment, ``note`` the signed
    ``custos/order/v1`` note from service on."""

    order: Order
    seq: int
    salt: bytes
    note: bytes | None = None

    @property
    def id(self) -> str:
        return self.order.id


class OrderStore(Protocol):
    """Orders and their committed texts; writes go through the append transaction."""

    def insert(self, tx: AppendTransaction, stored: StoredOrder) -> None: ...

    def update(self, tx: AppendTransaction, order: Order, note: bytes | None = None) -> None:
        """Store the order's new state (and, at service, its signed note)."""

    def get(self, order_id: str, tx: AppendTransaction | None = None) -> StoredOrder | None: ...

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
    ) -> Sequence[StoredOrder]:
        """Orders by ``seq``, after the cursor; ``cases`` keeps those of the cases it names
        (by reference), ``due_before`` those whose running deadline lies before it,
        ``due_from`` those whose running deadline lies at or after it."""

    def save_text(
        self,
        tx: AppendTransaction,
        ledger_index: int,
        order_id: str,
        field: str,
        salt: bytes,
        text: str,
    ) -> None: ...

    def texts(self, order_id: str) -> Mapping[int, Mapping[str, str]]:
        """The committed texts of the order's events: ledger index -> field -> text."""


@dataclass(frozen=True)
class TimelineEntry:
    index: int
    event: Event
    texts: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        data = dict(self.event.data)
        for name in ("order", "document_commitment"):
            data.pop(name, None)
        return {
            "index": self.index,
            "type": self.event.type,
            "time": self.event.time,
            "actor": self.event.actor.as_json(),
            "state": data.pop("state", None),
            "data": data,
            "texts": dict(self.texts),
        }


@dataclass(frozen=True)
class Acted:
    """The order after an action and the event that recorded it."""

    stored: StoredOrder
    event: Appended


@dataclass(frozen=True)
class SweepReport:
    expired: Sequence[Acted]
    overdue: Sequence[StoredOrder]


def document_commitment(salt: bytes, order: Order) -> str:
    """SHA-256 over the order's salt and its ``custos/order/v1`` text, as the events carry."""
    return commitment(salt, order_document_text(order).encode("utf-8"))


def _fixed_summary(order: Order) -> dict[str, Any]:
    """What an order's summary holds whatever the time. Orders are immutable and stored ones
    are read again and again, so it is built once per order object (a fresh copy each call)."""
    fixed: dict[str, Any] | None = order.__dict__.get("_fixed_summary")
    if fixed is None:
        due = deadline(order)
        clock = order.clock
        zone = clock.place.zone if clock else None
        fixed = {
            "id": order.id,
            "reference": order.document.reference,
            "case": order.document.case,
            "kind": order.document.kind,
            "provider": order.document.provider,
            "emergency": order.document.emergency.flag,
            "state": order.state.value,
            "drafted_by": order.drafted_by,
            "drafted_at": format_time(order.drafted_at),
            "revised_by": order.revised_by,
            "validated_by": order.validated_by,
            "approved_by": order.approved_by,
            "served_at": format_time(order.served_at) if order.served_at else None,
            "first_read_at": format_time(order.first_read_at) if order.first_read_at else None,
            "received_at": format_time(clock.received_at) if clock and clock.received_at else None,
            "received_via": clock.received_via if clock else None,
            "due": format_time(due) if due else None,
            "due_local": due.astimezone(zone).isoformat() if due and zone else None,
            "time_zone": clock.place.time_zone if clock else None,
            "period": clock.period.as_json() if clock else None,
            "period_rule": clock.rule.value if clock else None,
            "clock_paused": bool(clock and clock.suspended_since),
            "hold_until_answered": bool(clock and clock.open_ended),
            "revision": order.revision,
            "extensions": order.extensions,
            "enforcement_sought_at": format_time(order.enforcement_sought_at)
            if order.enforcement_sought_at
            else None,
            "enforcing_review": _review_summary(order),
            "user_informed_at": format_time(order.user_informed_at)
            if order.user_informed_at
            else None,
        }
        object.__setattr__(order, "_fixed_summary", fixed)
    return {**fixed, "revised_by": list(fixed["revised_by"])}


def _review_summary(order: Order) -> dict[str, Any] | None:
    """The enforcing State's review of the order, as both parties see it (Arts 8, 10, 12)."""
    review = order.enforcing
    enforcing = order.document.enforcing_authority
    if review is None or enforcing is None:
        return None
    end = review.window_end

    def moment(value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    return {
        "enforcing_state": enforcing.state,
        "authority": enforcing.name,
        "period": review.period.as_json(),
        "received_at": moment(review.received_at),
        "review_until": moment(end),
        "review_until_local": end.astimezone(review.place.zone).isoformat() if end else None,
        "answer": review.answer,
        "answered_at": moment(review.answered_at),
        "in_time": review.in_time,
        "restriction_owed": review.restriction_owed,
        "restricted": review.restricted,
    }


def _receipt(before: StoredOrder, after: Order) -> dict[str, Any]:
    """What an event that records the provider's receipt adds: how, and the deadline."""
    if before.order.received_at is not None or after.clock is None or not after.clock.received:
        return {}
    due = after.clock.due
    return {"received_via": after.clock.received_via, **({"due": format_time(due)} if due else {})}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _document(data: object) -> OrderDocument:
    """The order document from JSON; fields at fault are 422 (FieldErrors), every one named
    with why."""
    try:
        return OrderDocument.from_json(data)
    except BadRequest as exc:
        raise Invalid(str(exc)) from None


class OrderDesk:
    """Drafts, serves, answers and sweeps orders; takes in a provider's responses."""

    def __init__(
        self,
        store: OrderStore,
        providers: ProviderStore,
        notices: NoticeStore,
        ledger: Ledger,
        intake: Intake,
        cases: Cases,
        *,
        on_notice: Callable[[], object] | None = None,
        period_rule: PeriodRule = PeriodRule.REGULATION_1182_71,
        alerts: Alerts | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.notices = notices
        self.ledger = ledger
        self.intake = intake
        # An order belongs to the case its document names: its members follow it.
        self.cases = cases
        # Called after a transaction that queued a notice commits (wakes the deliverer).
        self.on_notice = on_notice
        # How periods in days are counted for orders outside EU law (the issuing State's).
        self.period_rule = period_rule
        # E-mail alerts to the people an order concerns; None when alerts are off.
        self.alerts = alerts
        # Where notices to enforcing authorities may go (custody.outbound): checked when an
        # order names one, and again at each delivery.
        self.outbound = outbound or OutboundPolicy()

    # -- reading ----------------------------------------------------------------------------

    def get(self, order_id: str, by: Actor) -> StoredOrder:
        """An order as its authority sees it."""
        require_role(by.role, AUTHORITY_ROLES, "read orders")
        stored = self.store.get(order_id) if is_order_id(order_id) else None
        if stored is None or not self.cases.scope(by).covers(stored.order.document.case):
            raise NotFound(f"no order {order_id}")
        return stored

    def get_for_provider(self, order_id: str, by: Actor, provider_id: str | None) -> StoredOrder:
        """A served order of the provider's own, its first read recorded (``order.read``).

        Any other order, or one not yet served, does not exist for a provider.
        """
        stored = self.provider_order(order_id, by, provider_id)
        if stored.order.first_read_at is not None:
            return stored
        with self.ledger.recording() as recorder:
            current = self._load(order_id, recorder.tx)
            at = self.ledger.clock()
            read = record_first_read(current.order, by, at, provider_id=provider_id)
            if read is None:
                return current
            self.store.update(recorder.tx, read)
            self._record(recorder, current, read, READ_EVENT, by, at, _receipt(current, read))
        return replace(current, order=read)

    def notice_delivered(self, notice: Notice) -> None:
        """A notice of service reached the provider (its endpoint answered 2xx): the first
        such delivery is the provider's receipt unless it read or acted before
        (``order.received``). The first notice delivered to an enforcing authority is its
        receipt (``order.enforcing_received``)."""
        if notice.addressee == ENFORCING_AUTHORITY:
            self._enforcing_notice_delivered(notice)
            return
        if notice.event not in RECEIPT_EVENTS or notice.delivered_at is None:
            return
        with self.ledger.recording() as recorder:
            current = self._load(notice.order_id, recorder.tx)
            # A notice of an earlier revision is no receipt of the one that superseded it.
            if current.order.revision != notice.revision:
                return
            received = record_receipt(current.order, notice.delivered_at, "notice")
            if received is None:
                return
            self.store.update(recorder.tx, received)
            details = {"notice_index": notice.ledger_index, **_receipt(current, received)}
            self._record(
                recorder, current, received, RECEIVED_EVENT, SYSTEM, self.ledger.clock(), details
            )

    def _enforcing_notice_delivered(self, notice: Notice) -> None:
        if notice.delivered_at is None:
            return
        with self.ledger.recording() as recorder:
            current = self._load(notice.order_id, recorder.tx)
            received = record_enforcing_receipt(current.order, notice.delivered_at)
            if received is None or received.enforcing is None:
                return
            self.store.update(recorder.tx, received)
            end = received.enforcing.window_end
            details: dict[str, Any] = {"notice_index": notice.ledger_index}
            if end is not None:
                details["review_until"] = format_time(end)
            self._record(
                recorder,
                current,
                received,
                ENFORCING_RECEIVED_EVENT,
                SYSTEM,
                self.ledger.clock(),
                details,
            )

    def responses_withheld(self, stored: StoredOrder, now: datetime | None = None) -> bool:
        """Whether the provider's responses are kept from the issuing authority now, while
        the enforcing State reviews the order (Regulation (EU) 2023/1543 Art 10(3))."""
        return withheld(stored.order, now or self.ledger.clock())

    def check_released(self, order_id: object) -> None:
        """Refuse (409) to hand out the bytes of a response to ``order_id`` while the
        enforcing State's review withholds it (Regulation (EU) 2023/1543 Art 10(3)); an item
        that answers no order passes."""
        if not isinstance(order_id, str) or not is_order_id(order_id):
            return
        stored = self.store.get(order_id)
        check_released(stored.order if stored else None, self.ledger.clock())

    def provider_order(self, order_id: str, by: Actor, provider_id: str | None) -> StoredOrder:
        """A served order of the provider's own, as it stands (nothing is recorded); any
        other order, or one not yet served, does not exist for a provider (NotFound)."""
        require_role(by.role, PROVIDER_ROLES, "use the provider API")
        stored = self.store.get(order_id) if is_order_id(order_id) else None
        # An order withdrawn before service was never the provider's: no clock, never served.
        if (
            stored is None
            or provider_id is None
            or stored.order.document.provider != provider_id
            or stored.order.clock is None
        ):
            raise NotFound(f"no order {order_id}")
        return stored

    def list(
        self,
        by: Actor,
        *,
        state: str | None = None,
        provider: str | None = None,
        case: str | None = None,
        states: Sequence[str] | None = None,
        overdue_only: bool = False,
        due_before: datetime | None = None,
        due_from: datetime | None = None,
        limit: int = 50,
        after: int | None = None,
        scope: Scope | None = None,
    ) -> Sequence[StoredOrder]:
        """Orders for an authority, filtered; ``state`` keeps one state, ``states`` any of
        several, ``overdue_only`` those still owed past their deadline, ``due_before`` and
        ``due_from`` those whose running deadline or hold ends in that span. ``scope`` is
        ``by``'s own (``Cases.scope(by)``), where the caller has read it already for this
        request (a board lists several sections)."""
        require_role(by.role, AUTHORITY_ROLES, "list orders")
        wanted = [*(states or ()), *([state] if state is not None else [])]
        for name in wanted:
            if name not in OrderState.__members__.values():
                raise BadRequest(f"unknown order state {name!r}")
        states = wanted or None
        if overdue_only:
            due_before = self.ledger.clock()
            awaiting = [s.value for s in AWAITING_ANSWER]
            states = [s for s in (states or awaiting) if s in awaiting]
            if not states:
                return []
        scope = self.cases.scope(by) if scope is None else scope
        if scope.empty:
            return []
        return self.store.list(
            states=states,
            provider=provider,
            case=case,
            cases=None if scope.everything else sorted(scope.cases),
            due_before=due_before,
            due_from=due_from,
            limit=limit,
            after=after,
        )

    def list_for_provider(
        self,
        by: Actor,
        provider_id: str | None,
        *,
        state: str | None = None,
        overdue_only: bool = False,
        limit: int = 50,
        after: int | None = None,
    ) -> Sequence[StoredOrder]:
        """The served orders of the provider's own, by ``seq``; ``state`` keeps one state,
        ``overdue_only`` those still owed past their deadline."""
        require_role(by.role, PROVIDER_ROLES, "use the provider API")
        if provider_id is None:
            return []
        states = [s.value for s in SERVED_STATES]
        if state is not None:
            if state not in states:
                raise BadRequest(f"unknown order state {state!r}")
            states = [state]
        now = self.ledger.clock()
        due_before = None
        if overdue_only:
            due_before = now
            states = [s for s in states if OrderState(s) in AWAITING_ANSWER]
            if not states:
                return []

        def shown(stored: StoredOrder) -> bool:
            # Withdrawn includes orders withdrawn before service, which the provider never
            # saw; a paused clock is not overdue.
            if stored.order.clock is None:
                return False
            return not overdue_only or overdue(stored.order, now)

        # Skipped orders are read past, until the page is full.
        found: list[StoredOrder] = []
        while len(found) < limit:
            page = self.store.list(
                states=states, provider=provider_id, due_before=due_before, limit=limit, after=after
            )
            found.extend(s for s in page if shown(s))
            if len(page) < limit:
                break
            after = page[-1].seq
        return found[:limit]

    def timeline(
        self, stored: StoredOrder, *, for_provider: bool = False
    ) -> Sequence[TimelineEntry]:
        """The order's events in ledger order, with the texts they committed to.

        A provider sees the order from its service on, not how it was drafted.
        """
        texts = self.store.texts(stored.id)
        entries: list[TimelineEntry] = []
        for entry in self.ledger.subject_entries(Subject("order", stored.id).key):
            event = Event.decode(entry.leaf)
            if for_provider and event.type in _INTERNAL_EVENTS:
                continue
            entries.append(TimelineEntry(entry.index, event, texts.get(entry.index, {})))
        return entries

    def notices_of(self, stored: StoredOrder) -> Sequence[Notice]:
        return self.notices.for_order(stored.id)

    def issue_faults(self, stored: StoredOrder) -> Sequence[str]:
        """What would bar issuing the order now, on its provider's terms (nothing once it
        was issued): a draft's preview shows it before anyone submits it."""
        if stored.order.state not in UNSERVED:
            return []
        return issue_faults(stored.order.document, self._terms(stored.order))

    def document_note(self, stored: StoredOrder) -> bytes:
        """The signed ``custos/order/v1`` note; an order has one from its service on."""
        if stored.note is None:
            raise NotFound(
                f"order {stored.id} is {stored.order.state}: its document is signed at approval"
            )
        return stored.note

    def summary(
        self, stored: StoredOrder, now: datetime | None = None, by: Actor | None = None
    ) -> dict[str, Any]:
        """The order as lists show it: where it stands, its deadline and what the caller may
        do now, without its document (the targets are read, and a provider's first read
        recorded, only by fetching the order itself). ``received`` is false until the
        provider received the order; then ``due`` is its deadline or the end of its hold
        (``remaining_seconds`` while a clarification request suspends it)."""
        order = stored.order
        now = now or self.ledger.clock()
        clock = order.clock
        remaining = clock.remaining(now) if clock else None
        return {
            **_fixed_summary(order),
            "responses_withheld": withheld(order, now),
            "received": bool(clock and clock.received),
            "remaining_seconds": None if remaining is None else remaining.total_seconds(),
            "overdue": overdue(order, now),
            "allowed_actions": allowed_actions(order, now, by=by),
        }

    def view(
        self, stored: StoredOrder, now: datetime | None = None, by: Actor | None = None
    ) -> dict[str, Any]:
        """The order as JSON: its summary and its document."""
        return {**self.summary(stored, now, by), "document": stored.order.document.as_json()}

    # -- changing ---------------------------------------------------------------------------

    def draft(self, document: object, by: Actor) -> Acted:
        """A new draft (``order.drafted``) of an authority's."""
        require_role(by.role, AUTHORITY_ROLES, "draft orders")
        doc = _document(document)
        self.cases.case_for_work(by, doc.case)
        self._check_provider(doc.provider)
        self._check_destinations(doc)
        at = self.ledger.clock()
        order, event_type, details = draft_order(doc, by, at)
        with self.ledger.recording() as recorder:
            stored = StoredOrder(order, seq=recorder.next_index, salt=new_salt())
            self.store.insert(recorder.tx, stored)
            appended = self._record(recorder, stored, order, event_type, by, at, details)
        return Acted(stored, appended)

    def revise(self, order_id: str, patch: object, by: Actor) -> Acted:
        """Apply a JSON Merge Patch to a draft's document (``order.revised``)."""
        require_role(by.role, AUTHORITY_ROLES, "revise orders")
        if not isinstance(patch, Mapping) or not patch:
            raise BadRequest("the body is a JSON Merge Patch of the order document")
        self.get(order_id, by)
        with self.ledger.recording() as recorder:
            stored = self._load(order_id, recorder.tx)
            doc = _document(merge_patch(stored.order.document.as_json(), patch))
            if doc.case != stored.order.document.case:
                self.cases.case_for_work(by, doc.case, recorder.tx)
            self._check_provider(doc.provider)
            self._check_destinations(doc)
            at = self.ledger.clock()
            try:
                order, event_type, details = revise_draft(stored.order, doc, by)
            except Conflict as exc:
                # revise_draft lists every action of the state; a refusal lists those open now.
                raise Conflict(str(exc), allowed_actions(stored.order, at, by=by)) from None
            self.store.update(recorder.tx, order)
            appended = self._record(recorder, stored, order, event_type, by, at, details)
        return Acted(replace(stored, order=order), appended)

    def act(
        self,
        order_id: str,
        action: str,
        data: Mapping[str, Any],
        by: Actor,
        *,
        provider_id: str | None = None,
    ) -> Acted:
        """Take ``action`` on the order: Forbidden, NotFound or Conflict change nothing."""
        if by.role in PROVIDER_ROLES:
            self.provider_order(order_id, by, provider_id)
        elif by.role != SYSTEM.role:
            require_role(by.role, AUTHORITY_ROLES, "act on orders")
            self.get(order_id, by)
        notified = False
        with self.ledger.recording() as recorder:
            stored = self._load(order_id, recorder.tx)
            at = self.ledger.clock()
            if action == "adapt":
                adapted = self._adapted_document(stored, data)
                if adapted.case != stored.order.document.case:
                    self.cases.case_for_work(by, adapted.case, recorder.tx)
                data = {**data, "document": adapted}
            terms = self._terms(stored.order) if action in ("approve", "adapt") else None
            order, event_type, details = apply(
                stored.order, action, by, at, data, provider_id=provider_id, terms=terms
            )
            for name in COMMITTED_FIELDS:
                text = data.get(name)
                if isinstance(text, str) and text:
                    salt, digest = commit(text.encode("utf-8"))
                    self.store.save_text(
                        recorder.tx, recorder.next_index, order.id, name, salt, text
                    )
                    details[f"{name}_commitment"] = digest
            note = None
            if action in ("approve", "adapt"):
                note = sign_note(order_document_text(order), [self.ledger.keys.current.signer])
            self.store.update(recorder.tx, order, note)
            appended = self._record(recorder, stored, order, event_type, by, at, details)
            notified = self._queue_notice(recorder, order, event_type, appended, at)
        if notified and self.on_notice is not None:
            self.on_notice()
        return Acted(StoredOrder(order, stored.seq, stored.salt, note or stored.note), appended)

    def sweep(self) -> SweepReport:
        """End the preservation holds that ran out (``order.expired``); list the orders to
        produce still owed past their deadline (they stay open: late compliance)."""
        now = self.ledger.clock()
        lapsing = self.store.list(states=_EXPIRABLE, due_before=now, limit=1_000_000)
        done = []
        for stored in lapsing:
            if expired(stored.order, now):
                try:
                    done.append(self.act(stored.id, "expire", {}, SYSTEM))
                except Conflict:
                    continue  # answered, extended or withdrawn since it was listed
        owed = [s.value for s in AWAITING_ANSWER]
        still = self.store.list(states=owed, due_before=now, limit=1_000_000)
        return SweepReport(done, [s for s in still if overdue(s.order, now)])

    def queue_due_alerts(self) -> int:
        """Write the alerts of the orders still owed whose deadline is near (once per order
        and deadline); how many were written. Nothing when alerts are off."""
        if self.alerts is None:
            return 0
        now = self.ledger.clock()
        owed = [s.value for s in AWAITING_ANSWER]
        near = self.store.list(
            states=owed, due_before=now + self.alerts.due_within, limit=1_000_000
        )
        return self.alerts.queue_due_soon((s.order for s in near), now)

    # -- responses ----------------------------------------------------------------------------

    def open_response(
        self,
        order_id: str,
        metadata: Mapping[str, Any],
        by: Actor,
        provider_id: str | None,
    ) -> UploadSession:
        """Announce a response to the order: an upload session for evidence in its case.

        Refused (409) when the order's state or kind does not take a response: a preservation
        order, a closed, withdrawn or expired one, or one not yet acknowledged.
        """
        stored = self.provider_order(order_id, by, provider_id)
        order = stored.order
        check_may(order, "respond", by, self.ledger.clock(), provider_id=provider_id)
        description = metadata.get("description")
        if not isinstance(description, str) or not description.strip():
            raise Invalid("description is required")
        document = order.document
        intake: dict[str, Any] = {
            "kind": "digital",
            "case": document.case,
            "exhibit": metadata.get("exhibit") or f"{document.reference} response",
            "description": description,
            "authority": document.reference,
            "order": order.id,
            "provider": document.provider,
        }
        if metadata.get("media_type"):
            intake["media_type"] = metadata["media_type"]
        return self.intake.open_session(intake, by, roles=PROVIDER_ROLES)

    def receive_response(
        self,
        order_id: str,
        evidence_id: str,
        stream: BinaryIO,
        by: Actor,
        provider_id: str | None,
        *,
        declared: Mapping[str, str] | None = None,
        content_length: int | None = None,
    ) -> Ingested:
        """Stream a response in exactly as evidence intake does; its ``evidence.ingested``
        and the order's ``order.responded`` commit together."""
        stored = self.provider_order(order_id, by, provider_id)
        # Refuse before reading the body; the check is made again when the response commits.
        check_may(stored.order, "respond", by, self.ledger.clock(), provider_id=provider_id)
        session = self.intake.store.session(evidence_id)
        if session is not None and session.metadata.get("order") != order_id:
            raise NotFound(f"no response {evidence_id} to order {order_id}")

        def link(recorder: Recorder, record: EvidenceRecord) -> None:
            if record.description.get("order") != order_id:
                raise NotFound(f"no response {evidence_id} to order {order_id}")
            current = self._load(order_id, recorder.tx)
            at = self.ledger.clock()
            data = {"evidence": record.id}
            order, event_type, details = apply(
                current.order, "respond", by, at, data, provider_id=provider_id
            )
            self.store.update(recorder.tx, order)
            self._record(recorder, current, order, event_type, by, at, details)

        return self.intake.receive(
            evidence_id,
            stream,
            by,
            declared=declared,
            content_length=content_length,
            roles=PROVIDER_ROLES,
            within=link,
        )

    # -- shared -------------------------------------------------------------------------------

    def _load(self, order_id: str, tx: AppendTransaction) -> StoredOrder:
        stored = self.store.get(order_id, tx) if is_order_id(order_id) else None
        if stored is None:
            raise NotFound(f"no order {order_id}")
        return stored

    def _terms(self, order: Order) -> ServiceTerms:
        provider = self.providers.get(order.document.provider)
        if provider is None:
            raise Invalid(f"provider: no provider {order.document.provider}")
        return ServiceTerms(
            place=provider.place, rule=self.period_rule, languages=provider.languages
        )

    def _adapted_document(self, stored: StoredOrder, data: Mapping[str, Any]) -> OrderDocument:
        patch = data.get("document")
        if not isinstance(patch, Mapping) or not patch:
            raise BadRequest("document is a JSON Merge Patch of the served order's document")
        document = _document(merge_patch(stored.order.document.as_json(), patch))
        self._check_destinations(document)
        return document

    def _check_provider(self, provider_id: str) -> None:
        if self.providers.get(provider_id) is None:
            raise Invalid(f"provider: no provider {provider_id}")

    def _check_destinations(self, document: OrderDocument) -> None:
        """The enforcing authority's notification URL, by the outgoing-request policy."""
        enforcing = document.enforcing_authority
        if enforcing is not None and enforcing.notification_url is not None:
            try:
                self.outbound.check_registration(
                    enforcing.notification_url, "enforcing_authority.notification_url"
                )
            except BadRequest as exc:
                raise Invalid(str(exc)) from None

    def _record(
        self,
        recorder: Recorder,
        stored: StoredOrder,
        order: Order,
        event_type: str,
        by: Actor,
        at: datetime,
        details: Mapping[str, Any],
    ) -> Appended:
        data = {**order_event_data(order, document_commitment(stored.salt, order)), **details}
        appended = recorder.add(NewEvent(event_type, by, Subject("order", order.id), data), at=at)
        if self.alerts is not None:
            self.alerts.queue(recorder.tx, order, event_type, at)
        return appended

    def _queue_notice(
        self, recorder: Recorder, order: Order, event_type: str, appended: Appended, at: datetime
    ) -> bool:
        if event_type not in NOTIFY_EVENTS or order.clock is None:
            return False  # nothing to act on, or an order withdrawn before it was served
        sent = self._queue_enforcing_notice(recorder, order, event_type, appended, at)
        provider = self.providers.get(order.document.provider)
        if provider is None or provider.notification_url is None:
            return sent
        text = notice_text(
            order_id=order.id,
            provider_id=provider.id,
            event=event_type,
            state=order.state.value,
            ledger_index=appended.index,
            time=at,
            due=deadline(order),
        )
        notice = Notice(
            order_id=order.id,
            provider_id=provider.id,
            event=event_type,
            ledger_index=appended.index,
            revision=order.revision,
            url=provider.notification_url,
            note=sign_note(text, [self.ledger.keys.current.signer]),
            created_at=at,
            next_attempt_at=at,
        )
        self.notices.add(recorder.tx, notice)
        return True

    def _queue_enforcing_notice(
        self, recorder: Recorder, order: Order, event_type: str, appended: Appended, at: datetime
    ) -> bool:
        """Send the enforcing authority the order as issued, when Art 8 calls for it."""
        review = order.enforcing
        enforcing = order.document.enforcing_authority
        if event_type not in ENFORCING_NOTIFY_EVENTS or review is None or enforcing is None:
            return False
        if enforcing.notification_url is None:
            return False  # refused at issue (Art 8(1)); an adapted order may have dropped it
        text = enforcing_notice_text(
            order_id=order.id,
            event=event_type,
            ledger_index=appended.index,
            time=at,
            review=review.period.as_json(),
            issued=issued_order(order),
        )
        notice = Notice(
            order_id=order.id,
            provider_id=order.document.provider,
            event=event_type,
            ledger_index=appended.index,
            revision=order.revision,
            addressee=ENFORCING_AUTHORITY,
            url=enforcing.notification_url,
            note=sign_note(text, [self.ledger.keys.current.signer]),
            created_at=at,
            next_attempt_at=at,
        )
        self.notices.add(recorder.tx, notice)
        return True


__all__ = ["DRAFTED_EVENT", "Acted", "OrderDesk", "StoredOrder", "SweepReport"]
