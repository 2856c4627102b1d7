"""Cases: the records that evidence items and orders belong to, and who may know of them.

A case has a reference (what items and orders name it by), a title, the authority it belongs
to, and is opened and perhaps closed. Its members (a principal and its role in the case) read
and act on its items and orders; a court reads what a grant gives it (the whole case, or named
exhibits of it) for one proceeding, until the grant's end; an admin manages memberships and
grants but reads no evidence unless it makes itself a member, which the ledger records like
every other change of a case. To anyone else the case's items and orders do not exist
(NotFound), exactly as another provider's order does not exist for a provider.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from custody.commitment import commit, commitment
from custody.errors import Conflict, FieldErrors, Forbidden, NotFound
from custody.events import SYSTEM, Actor, NewEvent, Subject, format_time
from custody.interfaces import AppendTransaction
from custody.ledger import Appended, Ledger

# Who opens cases; who may be a member of one; the roles a member has in it.
CASE_OPENERS = ("examiner", "authority")
MEMBER_ROLES = ("examiner", "authority", "approver", "validator", "admin")
CASE_ROLES = ("lead", "member")
# Who manages the members and grants of any case (a case's leads manage those of theirs).
CASE_ADMINS = ("admin",)
# Who reads a case through a grant, for a proceeding, rather than as a member.
GRANTEE_ROLES = ("court",)
MAX_EXHIBITS = 1000

_CASE_ID = re.compile(r"^cs_[0-9a-f]{16}$")
_GRANT_ID = re.compile(r"^gr_[0-9a-f]{16}$")


def new_case_id() -> str:
    return "cs_" + secrets.token_hex(8)


def is_case_id(value: str) -> bool:
    return bool(_CASE_ID.match(value))


@dataclass(frozen=True)
class Case:
    """A case as kept. ``title_salt`` is the salt of the title's commitment in the ledger:
    the title may name people, so the ledger carries only its salted SHA-256."""

    id: str
    reference: str
    title: str
    authority: str
    opened_at: str
    opened_by: str
    title_salt: bytes
    closed_at: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "title": self.title,
            "authority": self.authority,
            "opened_at": self.opened_at,
            "opened_by": self.opened_by,
            "closed_at": self.closed_at,
        }


@dataclass(frozen=True)
class Member:
    principal_id: str
    role: str
    added_at: str

    def as_json(self) -> dict[str, Any]:
        return {"principal": self.principal_id, "role": self.role, "added_at": self.added_at}


@dataclass(frozen=True)
class Grant:
    """A court's access to a case for one proceeding, until ``ends_at``: to the whole case,
    or to the items ``exhibits`` names."""

    id: str
    case_id: str
    court_id: str
    proceeding: str
    ends_at: datetime
    granted_at: str
    exhibits: tuple[str, ...] = ()

    def active(self, now: datetime) -> bool:
        return now < self.ends_at

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "court": self.court_id,
            "proceeding": self.proceeding,
            "ends_at": format_time(self.ends_at),
            "granted_at": self.granted_at,
            "exhibits": list(self.exhibits) or None,
        }


@dataclass(frozen=True)
class Scope:
    """What one caller may know of: every case (the system itself), or the cases (by
    reference) it is a member of or granted whole, and the items granted to it singly."""

    everything: bool = False
    cases: frozenset[str] = field(default_factory=frozenset)
    items: frozenset[str] = field(default_factory=frozenset)

    def covers(self, case_ref: str, evidence_id: str | None = None) -> bool:
        return self.everything or case_ref in self.cases or evidence_id in self.items

    @property
    def empty(self) -> bool:
        return not self.everything and not self.cases and not self.items


class CaseStore(Protocol):
    """Cases, members and grants; writes go through the ledger's append transaction."""

    def insert(self, tx: AppendTransaction, case: Case) -> None:
        """Insert a case; Conflict if its reference is taken."""

    def close(self, tx: AppendTransaction, case_id: str, at: str) -> None: ...

    def get(self, case_id: str, tx: AppendTransaction | None = None) -> Case | None: ...

    def by_reference(self, reference: str, tx: AppendTransaction | None = None) -> Case | None: ...

    def list(
        self, principal_id: str | None, now: datetime, limit: int, after: str | None
    ) -> Sequence[Case]:
        """Cases by reference, after the cursor; with ``principal_id`` those it is a member of
        or holds a grant in that runs at ``now``."""

    def members(self, case_id: str, tx: AppendTransaction | None = None) -> Sequence[Member]: ...

    def add_member(self, tx: AppendTransaction, case_id: str, member: Member) -> None: ...

    def remove_member(self, tx: AppendTransaction, case_id: str, principal_id: str) -> None: ...

    def grants(self, case_id: str) -> Sequence[Grant]: ...

    def add_grant(self, tx: AppendTransaction, grant: Grant) -> None: ...

    def end_grant(self, tx: AppendTransaction, grant_id: str, at: datetime) -> None: ...

    def grant(self, grant_id: str, tx: AppendTransaction | None = None) -> Grant | None: ...

    def item_case(self, evidence_id: str, tx: AppendTransaction | None = None) -> str | None:
        """The reference of the case the item belongs to, if the item exists."""

    def memberships(self, principal_id: str) -> Sequence[tuple[Case, Member]]:
        """The cases the principal is a member of, by reference, each with its membership."""

    def grants_to(self, court_id: str) -> Sequence[tuple[Case, Grant]]:
        """Every grant to the court, running or ended, by case reference, with its case."""

    def scope_of(self, principal_id: str, now: datetime) -> tuple[set[str], set[str]]:
        """The references of the cases the principal is a member of or granted whole (a grant
        running at ``now``), and the evidence ids granted to it singly."""


class PrincipalLookup(Protocol):
    """How cases find the principals they name (``custody.principals.PrincipalStore``)."""

    def by_name(self, name: str, tx: AppendTransaction | None = None) -> Any: ...


class Cases:
    """Opens and closes cases, manages members and grants, and says who may know of what."""

    def __init__(self, store: CaseStore, principals: PrincipalLookup, ledger: Ledger) -> None:
        self.store = store
        self.principals = principals
        self.ledger = ledger

    # -- who may know of what ------------------------------------------------------------------

    def scope(self, by: Actor) -> Scope:
        """The cases and items ``by`` may know of now."""
        if by.role == SYSTEM.role:
            return Scope(everything=True)
        if by.role not in (*MEMBER_ROLES, *GRANTEE_ROLES):
            return Scope()
        cases, items = self.store.scope_of(by.id, self.ledger.clock())
        return Scope(cases=frozenset(cases), items=frozenset(items))

    def case_for_work(self, by: Actor, reference: str, tx: AppendTransaction | None = None) -> Case:
        """The open case ``reference`` names, for ``by`` to add an item or an order to: a
        member only. Anyone else is told the case does not exist (422 naming ``case``)."""
        case = self.store.by_reference(reference, tx)
        if case is None or (by.role != SYSTEM.role and not self._is_member(case.id, by.id, tx)):
            raise FieldErrors([("case", f"no case {reference} of yours")])
        if not case.open:
            raise Conflict(f"case {reference} is closed")
        return case

    # -- reading --------------------------------------------------------------------------------

    def get(self, case_id: str, by: Actor) -> Case:
        """A case, for its members, its courts while a grant runs, and admins."""
        case = self.store.get(case_id) if is_case_id(case_id) else None
        if case is None or not (
            by.role in CASE_ADMINS
            or self.scope(by).covers(case.reference)
            or self._granted_exhibits(case, by)
        ):
            raise NotFound(f"no case {case_id}")
        return case

    def _granted_exhibits(self, case: Case, by: Actor) -> bool:
        """Whether ``by`` is a court with a running grant of some exhibits of ``case``."""
        if by.role not in GRANTEE_ROLES:
            return False
        now = self.ledger.clock()
        return any(g.court_id == by.id and g.active(now) for g in self.store.grants(case.id))

    def list(self, by: Actor, limit: int = 50, after: str | None = None) -> Sequence[Case]:
        """Every case for an admin; the caller's own for anyone else."""
        now = self.ledger.clock()
        if by.role in CASE_ADMINS:
            return self.store.list(None, now, limit, after)
        if by.role not in (*MEMBER_ROLES, *GRANTEE_ROLES):
            return []
        return self.store.list(by.id, now, limit, after)

    def held_by(
        self, principal_id: str, by: Actor
    ) -> tuple[Sequence[tuple[Case, Member]], Sequence[tuple[Case, Grant]]]:
        """What one principal holds in cases, for an admin who manages it: its memberships,
        and (for a court) its grants, running or ended."""
        if by.role not in CASE_ADMINS:
            raise Forbidden("only an admin reads another principal's cases")
        return self.store.memberships(principal_id), self.store.grants_to(principal_id)

    def view(self, case: Case) -> dict[str, Any]:
        """The case as JSON, with its members and grants."""
        return {
            **case.as_json(),
            "members": [m.as_json() for m in self.store.members(case.id)],
            "grants": [g.as_json() for g in self.store.grants(case.id)],
        }

    # -- changing -------------------------------------------------------------------------------

    def open(self, data: Mapping[str, Any], by: Actor) -> tuple[Case, Appended]:
        """Open a case (``case.opened``) with its opener as its lead (``case.member_added``)."""
        if by.role not in CASE_OPENERS:
            raise Forbidden(f"the {by.role} role may not open cases; {', '.join(CASE_OPENERS)} may")
        values = _texts(data, ("reference", "title", "authority"))
        salt, title_commitment = commit(values["title"].encode("utf-8"))
        now = self.ledger.clock()
        case = Case(
            id=new_case_id(),
            reference=values["reference"],
            title=values["title"],
            authority=values["authority"],
            opened_at=format_time(now),
            opened_by=by.id,
            title_salt=salt,
        )
        subject = Subject("case", case.id)
        with self.ledger.recording() as recorder:
            if self.store.by_reference(case.reference, recorder.tx) is not None:
                raise Conflict(f"a case {case.reference} exists already")
            self.store.insert(recorder.tx, case)
            self.store.add_member(recorder.tx, case.id, Member(by.id, "lead", case.opened_at))
            data_opened = {
                "reference": case.reference,
                "authority": case.authority,
                "title_commitment": title_commitment,
            }
            appended = recorder.add(NewEvent("case.opened", by, subject, data_opened), at=now)
            recorder.add(
                NewEvent("case.member_added", by, subject, {"principal": by.id, "role": "lead"}),
                at=now,
            )
        return case, appended

    def add_member(self, case_id: str, name: str, role: str, by: Actor) -> Appended:
        """Make the principal ``name`` a member in ``role`` (``case.member_added``)."""
        if role not in CASE_ROLES:
            raise FieldErrors([("role", f"one of {', '.join(CASE_ROLES)}")])
        with self.ledger.recording() as recorder:
            case = self._managed(case_id, by, recorder.tx)
            principal = self.principals.by_name(name, recorder.tx)
            if principal is None or not principal.active:
                raise FieldErrors([("principal", f"no active principal {name}")])
            if principal.role not in MEMBER_ROLES:
                why = f"a {principal.role} is no member of a case (a court is granted one)"
                raise FieldErrors([("principal", why)])
            if self._is_member(case.id, principal.id, recorder.tx):
                raise Conflict(f"{name} is a member of {case.reference} already")
            at = format_time(self.ledger.clock())
            self.store.add_member(recorder.tx, case.id, Member(principal.id, role, at))
            data = {"principal": principal.id, "role": role}
            return recorder.add(NewEvent("case.member_added", by, Subject("case", case.id), data))

    def remove_member(self, case_id: str, name: str, by: Actor) -> Appended:
        """End a membership (``case.member_removed``): from the next request on, the case's
        items and orders do not exist for the former member."""
        with self.ledger.recording() as recorder:
            case = self._managed(case_id, by, recorder.tx)
            principal = self.principals.by_name(name, recorder.tx)
            if principal is None or not self._is_member(case.id, principal.id, recorder.tx):
                raise NotFound(f"{name} is no member of {case.reference}")
            self.store.remove_member(recorder.tx, case.id, principal.id)
            data = {"principal": principal.id}
            return recorder.add(NewEvent("case.member_removed", by, Subject("case", case.id), data))

    def grant_court(self, case_id: str, data: Mapping[str, Any], by: Actor) -> Grant:
        """Grant a court the case, or named exhibits of it, for a proceeding until an end
        (``case.court_granted``); a member or an admin grants."""
        values = _texts(data, ("court", "proceeding"))
        ends_at = data.get("ends_at")
        if not isinstance(ends_at, datetime) or ends_at.utcoffset() is None:
            raise FieldErrors([("ends_at", "required: an RFC 3339 time with its offset")])
        exhibits = data.get("exhibits") or ()
        if not isinstance(exhibits, Sequence) or isinstance(exhibits, str):
            raise FieldErrors([("exhibits", "a list of evidence ids")])
        if len(set(exhibits)) != len(exhibits) or len(exhibits) > MAX_EXHIBITS:
            raise FieldErrors([("exhibits", f"each item once, at most {MAX_EXHIBITS}")])
        now = self.ledger.clock()
        if ends_at <= now:
            raise FieldErrors([("ends_at", "must lie in the future")])
        with self.ledger.recording() as recorder:
            case = self._case_of(case_id, by, recorder.tx)
            if by.role not in CASE_ADMINS and not self._is_member(case.id, by.id, recorder.tx):
                raise NotFound(f"no case {case_id}")
            court = self.principals.by_name(values["court"], recorder.tx)
            if court is None or not court.active or court.role not in GRANTEE_ROLES:
                raise FieldErrors([("court", f"no active court principal {values['court']}")])
            for evidence_id in exhibits:
                if not self._in_case(evidence_id, case.reference, recorder.tx):
                    raise FieldErrors([("exhibits", f"no item {evidence_id} in {case.reference}")])
            grant = Grant(
                id="gr_" + secrets.token_hex(8),
                case_id=case.id,
                court_id=court.id,
                proceeding=values["proceeding"],
                ends_at=ends_at,
                granted_at=format_time(now),
                exhibits=tuple(exhibits),
            )
            self.store.add_grant(recorder.tx, grant)
            event = {
                "grant": grant.id,
                "court": court.id,
                "proceeding": grant.proceeding,
                "ends_at": format_time(ends_at),
                "exhibits": list(grant.exhibits) or None,
            }
            recorder.add(NewEvent("case.court_granted", by, Subject("case", case.id), event))
        return grant

    def end_grant(self, case_id: str, grant_id: str, by: Actor) -> Appended:
        """End a court's grant now (``case.grant_ended``)."""
        with self.ledger.recording() as recorder:
            case = self._case_of(case_id, by, recorder.tx)
            if by.role not in CASE_ADMINS and not self._is_member(case.id, by.id, recorder.tx):
                raise NotFound(f"no case {case_id}")
            grant = self.store.grant(grant_id, recorder.tx) if _GRANT_ID.match(grant_id) else None
            now = self.ledger.clock()
            if grant is None or grant.case_id != case.id:
                raise NotFound(f"no grant {grant_id} in {case.reference}")
            if not grant.active(now):
                raise Conflict(f"grant {grant_id} has ended already")
            self.store.end_grant(recorder.tx, grant.id, now)
            data = {"grant": grant.id}
            return recorder.add(NewEvent("case.grant_ended", by, Subject("case", case.id), data))

    def close(self, case_id: str, by: Actor) -> Appended:
        """Close a case (``case.closed``): it takes no new items; what it holds stays."""
        with self.ledger.recording() as recorder:
            case = self._managed(case_id, by, recorder.tx)
            if not case.open:
                raise Conflict(f"case {case.reference} is closed already")
            at = self.ledger.clock()
            self.store.close(recorder.tx, case.id, format_time(at))
            return recorder.add(NewEvent("case.closed", by, Subject("case", case.id), {}), at=at)

    def record_migrated(self) -> int:
        """Record ``case.opened`` and ``case.member_added`` (as the system) for each case with
        no event yet: those migration 0010 made from the old case strings, which it could not
        sign. ``custos init`` runs it after migrating; it records each case once. Returns how
        many cases it recorded."""
        recorded, after = 0, None
        while True:
            page = self.store.list(None, self.ledger.clock(), 200, after)
            for case in page:
                subject = Subject("case", case.id)
                if self.ledger.subject_entries(subject.key):
                    continue
                title = commitment(case.title_salt, case.title.encode("utf-8"))
                opened = {
                    "reference": case.reference,
                    "authority": case.authority,
                    "title_commitment": title,
                }
                events = [NewEvent("case.opened", SYSTEM, subject, opened)]
                events += [
                    NewEvent(
                        "case.member_added",
                        SYSTEM,
                        subject,
                        {"principal": m.principal_id, "role": m.role},
                    )
                    for m in self.store.members(case.id)
                ]
                with self.ledger.recording() as recorder:
                    recorder.add_all(events)
                recorded += 1
            if len(page) < 200:
                return recorded
            after = page[-1].reference

    # -- shared ---------------------------------------------------------------------------------

    def _case_of(self, case_id: str, by: Actor, tx: AppendTransaction) -> Case:
        case = self.store.get(case_id, tx) if is_case_id(case_id) else None
        if case is None:
            raise NotFound(f"no case {case_id}")
        return case

    def _managed(self, case_id: str, by: Actor, tx: AppendTransaction) -> Case:
        """A case ``by`` may manage: any, for an admin; its own, for a lead. A member who is no
        lead is refused (403); to anyone else the case does not exist."""
        case = self._case_of(case_id, by, tx)
        if by.role in CASE_ADMINS:
            return case
        role = self._role_in(case.id, by.id, tx)
        if role is None:
            raise NotFound(f"no case {case_id}")
        if role != "lead":
            raise Forbidden(f"only a lead of {case.reference} or an admin manages its members")
        return case

    def _role_in(self, case_id: str, principal_id: str, tx: AppendTransaction | None) -> str | None:
        for member in self.store.members(case_id, tx):
            if member.principal_id == principal_id:
                return member.role
        return None

    def _is_member(self, case_id: str, principal_id: str, tx: AppendTransaction | None) -> bool:
        return self._role_in(case_id, principal_id, tx) is not None

    def _in_case(self, evidence_id: str, reference: str, tx: AppendTransaction) -> bool:
        return self.store.item_case(evidence_id, tx) == reference


def _texts(data: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """The named text fields of ``data``; FieldErrors naming every one missing or wrong."""
    problems: list[tuple[str, str]] = []
    values: dict[str, str] = {}
    for name in names:
        value = data.get(name)
        if value is None:
            problems.append((name, "required"))
        elif not isinstance(value, str) or not value.strip():
            problems.append((name, "a non-empty string"))
        elif len(value) > 200 or "\x00" in value:
            problems.append((name, "at most 200 characters, no NUL"))
        else:
            values[name] = value
    if problems:
        raise FieldErrors(problems)
    return values
