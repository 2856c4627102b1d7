"""A property test of the order lifecycle against an oracle written from docs/orders.md.

Hypothesis drives random sequences of acts (and provider reads) at random later times
through ``custody.orders.apply``. The oracle below is transcribed from the tables of
docs/orders.md, sections 2-5, not from the code's transition table: who may act, from which
state, to which state, and what the clock and the instrument allow. After every step the
code and the oracle must agree on the outcome, on the state, and on the actions each party
may take; the state never reaches a place no instrument allows; and a provider that has
received an open order always knows its deadline, the end of its hold, or, while a
clarification request suspends it, the time left.

The oracle counts UN and Budapest periods by the exact rule (configured), so their deadlines
are exact. EU periods follow Regulation 1182/71; the oracle knows only that the end lies from
N days after receipt to five days later (end of day, a weekend, a holiday-free provider), and
accepts either outcome of an act bound to the clock inside that window. Hour periods (an
emergency's 8 hours) are exact.

Two of the orders are EU orders for traffic data sent to an enforcing authority (section 1b):
the oracle lets the authority record its answer once, and record a deletion only where a
ground came, in an emergency, after the provider had delivered (no notice is delivered in
this test, so the answer is the enforcing authority's receipt and always in time). One is
issued by the police, which may not issue it alone: a validator validates it before it may
be approved (section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.errors import Conflict, Forbidden
from custody.events import SYSTEM, Actor
from custody.order_deadlines import PeriodRule, Place
from custody.orders import (
    ACTIONS,
    Order,
    OrderState,
    ServiceTerms,
    allowed_actions,
    apply,
    deadline,
    draft_order,
    record_first_read,
)
from tests.custody.test_orders import document

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AUTHORITY = Actor(id="pr_author", role="authority")
APPROVER = Actor(id="pr_approver", role="approver")
VALIDATOR = Actor(id="pr_judge", role="validator")
PROVIDER = Actor(id="pr_mailco", role="provider")
PROVIDER_ID = "prov_mailco"
PARTIES = {
    "authority": AUTHORITY,
    "validator": VALIDATOR,
    "approver": APPROVER,
    "provider": PROVIDER,
    "system": SYSTEM,
}
UNKNOWN = "unknown"

# -- docs/orders.md, section 5: the lifecycle -----------------------------------------------------
OPEN_SERVED = ("served", "acknowledged", "objected", "clarification_requested", "preserved")
ENDS = ("closed", "withdrawn", "expired")
ALL_STATES = (
    "draft",
    "pending_approval",
    "served",
    "acknowledged",
    "objected",
    "clarification_requested",
    "preserved",
    "produced_partial",
    "produced",
    "no_data",
    *ENDS,
)
# act: (who, from states, to state). "back" is the state before the objection or request;
# "same" leaves the state; "adapt" is served for an order to produce, same for a hold.
DOCS_TABLE: dict[str, tuple[str, tuple[str, ...], str]] = {
    "submit": ("authority", ("draft",), "pending_approval"),
    "validate": ("validator", ("pending_approval",), "same"),
    "approve": ("approver", ("pending_approval",), "served"),
    "send_back": ("approver", ("pending_approval",), "draft"),
    "withdraw": ("authority", tuple(s for s in ALL_STATES if s not in ENDS), "withdrawn"),
    "resend": ("authority", ("served",), "served"),
    "adapt": ("approver", (*OPEN_SERVED, "produced_partial"), "adapt"),
    "extend": ("authority", OPEN_SERVED, "same"),
    "confirm_production_request": ("authority", OPEN_SERVED, "same"),
    "acknowledge": ("provider", ("served",), "acknowledged"),
    "object": (
        "provider",
        ("served", "acknowledged", "preserved", "produced_partial"),
        "objected",
    ),
    "request_clarification": ("provider", ("served", "acknowledged"), "clarification_requested"),
    "answer_objection": ("authority", ("objected",), "back"),
    "answer_clarification": ("authority", ("clarification_requested",), "back"),
    "confirm_preservation": ("provider", ("served", "acknowledged"), "preserved"),
    "no_data": ("provider", ("served", "acknowledged"), "no_data"),
    "respond": ("provider", ("acknowledged", "produced_partial"), "produced_partial"),
    "complete": ("provider", ("produced_partial",), "produced"),
    "seek_enforcement": (
        "authority",
        ("served", "acknowledged", "objected", "produced_partial"),
        "same",
    ),
    "close": (
        "authority",
        (
            "produced",
            "no_data",
            "preserved",
            "objected",
            "served",
            "acknowledged",
            "produced_partial",
        ),
        "closed",
    ),
    "expire": ("system", OPEN_SERVED, "expired"),
}
# Section 1b: the enforcing State's review, beside the order's state, and after it ended.
REVIEWED = (
    "served",
    "acknowledged",
    "objected",
    "clarification_requested",
    "produced_partial",
    "produced",
    "no_data",
    "closed",
    "withdrawn",
)
DOCS_TABLE["record_enforcing_answer"] = ("authority", REVIEWED, "same")
DOCS_TABLE["restrict_data"] = ("authority", REVIEWED, "same")
# Section 7: informing the user (Art 13), once served, even after the order ended.
DOCS_TABLE["record_user_information"] = ("authority", REVIEWED, "same")
PRESERVATION_ONLY = {"extend", "confirm_production_request", "confirm_preservation", "expire"}
PRODUCTION_ONLY = {"respond", "complete", "seek_enforcement", "record_user_information"}
ENFORCING_ONLY = {"record_enforcing_answer", "restrict_data"}
# Who counts as each party (section 5): an approver is also an authority.
ROLES_OF = {
    "authority": ("authority", "approver"),
    "validator": ("validator",),
    "approver": ("approver",),
    "provider": ("provider",),
    "system": ("system",),
}


@dataclass
class Oracle:
    """The order as docs/orders.md describes it."""

    kind: str
    eu: bool
    days: int  # the period in days from receipt (section 2, "Periods")
    hours: int = 0  # or in hours (an emergency)
    needs_validation: bool = False  # section 5: issued by one who may not issue it alone
    validated: bool = False
    notified: bool = False  # sent to an enforcing authority (section 1b)
    emergency: bool = False
    state: str = "draft"
    before: str | None = None  # where an objection or a request found the order
    served: bool = False
    received_at: datetime | None = None
    suspended_since: datetime | None = None
    suspended: timedelta = timedelta(0)
    extra_days: int = 0
    extensions: int = 0
    open_ended: bool = False
    responses: int = 0
    enforcing_answered: bool = False
    user_informed: bool = False
    restriction_owed: bool = False
    events: list[str] = field(default_factory=list)

    @property
    def production(self) -> bool:
        return self.kind != "preservation"

    def passed(self, now: datetime) -> bool | str:
        """Whether the deadline or hold end lies before ``now``: sections 2 and 3."""
        if self.received_at is None or self.suspended_since is not None or self.open_ended:
            return False
        if self.hours:
            return now > self.received_at + timedelta(hours=self.hours) + self.suspended
        earliest = self.received_at + timedelta(days=self.days + self.extra_days) + self.suspended
        if not self.eu:
            return now > earliest  # the exact rule
        if now <= earliest:
            return False
        return True if now > earliest + timedelta(days=5) else UNKNOWN

    def overdue(self, now: datetime) -> bool | str:
        """Section 4: an order to produce still owed past its deadline."""
        owed = self.state in ("served", "acknowledged", "objected", "produced_partial")
        return self.passed(now) if self.production and owed else False

    def allows(self, act: str, now: datetime) -> bool | str:
        _, sources, _ = DOCS_TABLE[act]
        if self.state not in sources:
            return False
        if act in PRESERVATION_ONLY and self.production:
            return False
        if act in PRODUCTION_ONLY and not self.production:
            return False
        if act in ENFORCING_ONLY and not (self.notified and self.served):
            return False
        if act == "validate":
            return self.needs_validation and not self.validated
        if act == "approve":
            return self.validated or not self.needs_validation
        if act == "adapt":  # the table's row: not an order that needs validation
            return not self.needs_validation
        if act == "record_user_information":
            return self.served and not self.user_informed
        if act == "record_enforcing_answer":
            return not self.enforcing_answered
        if act == "restrict_data":
            return self.restriction_owed
        if act == "resend":
            return self.received_at is None
        if act in ("extend", "confirm_production_request"):
            if self.open_ended or (act == "confirm_production_request" and not self.eu):
                return False
            if act == "extend" and self.eu and self.extensions >= 1:
                return False
            hold = self.passed(now)
            return UNKNOWN if hold == UNKNOWN else not hold
        if act == "expire":
            return self.passed(now)
        if act == "seek_enforcement":
            return self.overdue(now)
        if act == "close" and self.state in ("served", "acknowledged", "produced_partial"):
            return self.overdue(now)
        return True

    def take(self, act: str, now: datetime) -> None:
        who, _, target = DOCS_TABLE[act]
        if who == "provider" and self.received_at is None:
            self.received_at = now  # section 2: the provider's first act is its receipt
        if act == "approve":
            self.served = True
        elif act == "validate":
            self.validated = True
        elif act == "send_back":
            self.validated = False  # section 5: the draft is validated anew once resubmitted
        elif act == "respond":
            self.responses += 1
        elif act == "record_enforcing_answer":  # the answer given is a ground (DATA)
            self.enforcing_answered = True
            self.restriction_owed = self.emergency and self.responses > 0
        elif act == "restrict_data":
            self.restriction_owed = False
        elif act == "record_user_information":
            self.user_informed = True  # DATA records that the user was informed
        elif act == "adapt" and self.production:
            self.received_at, self.suspended_since, self.suspended = None, None, timedelta(0)
            self.before = None
            self.state = "served"
            return
        elif act == "extend":
            self.extensions += 1
            self.extra_days += 30 if self.eu else self.days
        elif act == "confirm_production_request":
            self.open_ended = True
        elif act in ("object", "request_clarification"):
            self.before = self.state
            if act == "request_clarification" and self.production:
                self.suspended_since = now
        elif act in ("answer_objection", "answer_clarification"):
            if self.suspended_since is not None:
                self.suspended += now - self.suspended_since
                self.suspended_since = None
            assert self.before is not None
            self.state, self.before = self.before, None
            return
        if target not in ("same", "adapt", "back"):
            self.state = target


EU_TRAFFIC = {
    "legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"},
    "data_categories": ["traffic"],
    "offence": {"description": "extortion", "provision": "s. 221", "max_penalty_years": 8},
    "enforcing_authority": {
        "name": "Staatsanwaltschaft Berlin",
        "state": "DE",
        "contact": "epoc@sta-berlin.example",
        "time_zone": "Europe/Berlin",
        "notification_url": "https://enforcing.example/epoc",
    },
    "language": "de",
}
ORDERS = {
    "un production": ("production", False, {}),
    "eu subscriber, from the police, validated": (
        "production",
        True,
        {
            "legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"},
            "issuing_authority": {
                "name": "Polícia Judiciária",
                "type": "other",
                "file_number": "PJ-17",
                "contact": "pj@example.org",
                "state": "PT",
            },
            "validating_authority": {
                "name": "Public Prosecutor, Lisbon",
                "type": "prosecutor",
                "file_number": "17/26",
                "contact": "dp@example.org",
                "state": "PT",
            },
        },
    ),
    "eu traffic, notified": ("production", True, EU_TRAFFIC),
    "eu traffic, notified, emergency": (
        "production",
        True,
        {
            **EU_TRAFFIC,
            "emergency": {
                "flag": True,
                "category": "threat_to_life",
                "justification": "A threat to life tonight.",
            },
        },
    ),
    "eu production": (
        "production",
        True,
        {"legal_basis": {"instrument": "eu_2023_1543_epoc", "citation": "Art 5"}},
    ),
    "un preservation": ("preservation", False, {"preservation_days": 20}),
    "eu preservation": (
        "preservation",
        True,
        {"legal_basis": {"instrument": "eu_2023_1543_epoc_pr", "citation": "Art 6"}},
    ),
}
DATA: dict[str, dict[str, Any]] = {
    "send_back": {"reason": "Say which mailbox."},
    "object": {"ground": "incomplete"},
    "request_clarification": {"question": "Which mailbox?"},
    "answer_objection": {"answer": "This one."},
    "answer_clarification": {"answer": "This one."},
    "respond": {"evidence": "ev_0123456789abcdef"},
    "record_enforcing_answer": {
        "answer": "ground",
        "ground": "fundamental_rights",
        "details": "Disproportionate.",
    },
    "restrict_data": {"measure": "deleted"},
    "record_user_information": {"informed": True, "details": "Told of the remedies."},
}
ADVANCES = st.sampled_from((0, 3600, 5 * 3600, 2 * 86400, 9 * 86400, 25 * 86400, 70 * 86400))


def expected_actions(oracle: Oracle, now: datetime, party: str) -> list[str] | None:
    """What the oracle lets ``party`` do now, in ``ACTIONS`` order (None when the clock's
    window leaves an act open either way)."""
    role = PARTIES[party].role
    allowed = []
    for act in ACTIONS:
        if role not in ROLES_OF[DOCS_TABLE[act][0]]:
            continue
        verdict = oracle.allows(act, now)
        if verdict == UNKNOWN:
            return None
        if verdict:
            allowed.append(act)
    return allowed


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(name=st.sampled_from(sorted(ORDERS)), draws=st.data())
def test_random_acts_follow_the_documented_rules(name: str, draws: st.DataObject) -> None:
    """Each step is, mostly, an act the oracle allows (so that sequences go deep), else any
    act or a provider's read; the code must agree with the oracle on every one."""
    kind, eu, changes = ORDERS[name]
    doc = document(kind, **changes)
    days = doc.preservation_days or 10
    emergency = doc.emergency.flag
    oracle = Oracle(
        kind=kind,
        eu=eu,
        days=days,
        hours=8 if emergency else 0,
        notified="enforcing_authority" in changes,
        emergency=emergency,
        needs_validation="validating_authority" in changes,
    )
    now = T0
    order, _, _ = draft_order(doc, AUTHORITY, now - timedelta(days=1))
    terms = ServiceTerms(place=Place(), rule=PeriodRule.EXACT)
    for _ in range(draws.draw(st.integers(0, 30), label="steps")):
        now += timedelta(seconds=draws.draw(ADVANCES, label="advance"))
        open_now = [a for a in ACTIONS if oracle.allows(a, now) is True]
        if open_now and draws.draw(st.integers(0, 9), label="choice") < 8:
            act = draws.draw(st.sampled_from(open_now), label="act")
        else:
            act = draws.draw(st.sampled_from((*ACTIONS, "read")), label="act")
        step = _read if act == "read" else _act
        order = step(order, oracle, act, now, terms)
        assert order.state.value in ALL_STATES
        assert order.state.value == oracle.state
        for party in PARTIES:
            expected = expected_actions(oracle, now, party)
            if expected is not None:
                got = allowed_actions(order, now, by=PARTIES[party])
                assert got == expected, (party, oracle.state)
        _provider_knows_its_time(order, oracle, now)


def _read(order: Order, oracle: Oracle, act: str, now: datetime, terms: ServiceTerms) -> Order:
    if not oracle.served or (order.state is OrderState.WITHDRAWN and order.clock is None):
        return order
    read = record_first_read(order, PROVIDER, now, provider_id=PROVIDER_ID)
    if read is None:
        return order
    if oracle.received_at is None and oracle.state not in ENDS:
        oracle.received_at = now
    return read


def _act(order: Order, oracle: Oracle, act: str, now: datetime, terms: ServiceTerms) -> Order:
    verdict = oracle.allows(act, now)
    data = dict(DATA.get(act, {}))
    if act == "adapt":
        data["document"] = order.document
    try:
        new, event, _ = apply(
            order, act, PARTIES[DOCS_TABLE[act][0]], now, data, provider_id=PROVIDER_ID, terms=terms
        )
    except (Conflict, Forbidden):
        assert verdict in (False, UNKNOWN), f"{act} refused in {oracle.state}"
        return order
    assert verdict in (True, UNKNOWN), f"{act} allowed in {oracle.state}"
    oracle.take(act, now)
    oracle.events.append(event)
    return new


def _provider_knows_its_time(order: Order, oracle: Oracle, now: datetime) -> None:
    """Once received, an open order tells its provider when it must answer or how long it
    must hold, or (suspended) how much time is left, or that the hold lasts until answered."""
    if oracle.received_at is None or oracle.state in (*ENDS, "produced", "no_data"):
        return
    if oracle.production and oracle.state == "clarification_requested":
        assert order.clock is not None and order.clock.remaining(now) is not None
    elif oracle.open_ended:
        assert order.clock is not None and order.clock.open_ended
    else:
        assert deadline(order) is not None


def test_the_oracle_reads_the_documented_table_for_every_act() -> None:
    """The oracle names every act the code knows, and nothing more."""
    assert set(DOCS_TABLE) == set(ACTIONS)
    assert {s.value for s in OrderState} == set(ALL_STATES)
    assert replace(Oracle("production", False, 10), state="served").allows("resend", T0) is True
