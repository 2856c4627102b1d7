"""The SQL evidence store's scoped list on SQLite and PostgreSQL: whatever the scope (dense,
sparse, single items, a case filter, an exhibit), paging through it with cursors gives exactly
the records the scope covers, in ledger order, each once."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from custody.cases import Scope
from custody.evidence import EvidenceRecord
from service.evidence import load_intake
from storage.sql import evidence as sql_evidence
from tests.conftest import Home
from tests.factories import SEIZURE, in_case

# Item n's case: a dense run of C-A first, then C-B every seventh item, a short run of C-C
# late, and C-D for the rest; so a window of a few pages holds none of C-C.
ITEMS = 64


def case_of(n: int) -> str:
    if n < 24:
        return "C-A"
    if n % 7 == 0:
        return "C-B"
    if 52 <= n < 56:
        return "C-C"
    return "C-D"


def every_page(
    store: sql_evidence.SqlEvidenceStore,
    limit: int,
    scope: Scope,
    case: str | None,
    exhibit: str | None,
) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page: Sequence[EvidenceRecord] = store.list(case, exhibit, limit, after, scope=scope)
        assert len(page) <= limit
        seen += [r.id for r in page]
        if len(page) < limit:
            return seen
        after = page[-1].ledger_index


@pytest.mark.parametrize("max_case_parts", [200, 1], ids=["union", "one-in"])
def test_a_scoped_list_pages_through_exactly_what_its_scope_covers(
    home_on_each_database: Home, monkeypatch: pytest.MonkeyPatch, max_case_parts: int
) -> None:
    monkeypatch.setattr(sql_evidence, "_MAX_CASE_PARTS", max_case_parts)
    deployment = home_on_each_database.deployment
    operator = deployment.principals.get("operator").actor
    examiner = deployment.principals.add("ana", "examiner", operator)[0].actor
    for reference in ("C-A", "C-B", "C-C", "C-D"):
        in_case(deployment, reference, "ana")
    records = []
    for n in range(ITEMS):
        metadata = load_intake(
            {
                "kind": "physical",
                "case": case_of(n),
                "exhibit": f"EX-{n % 5}",
                "description": f"item {n}",
                "seizure": SEIZURE,
            }
        )
        records.append(deployment.intake.register_physical(metadata, examiner).event.subject)
    store = deployment.evidence
    singles = frozenset({records[3].id, records[40].id, records[63].id})
    scopes = {
        "every case": Scope(cases=frozenset({"C-A", "C-B", "C-C", "C-D"})),
        "a sparse late case": Scope(cases=frozenset({"C-C"})),
        "two sparse cases": Scope(cases=frozenset({"C-B", "C-C"})),
        "a case and single items": Scope(cases=frozenset({"C-C"}), items=singles),
        "single items only": Scope(items=singles),
        "nothing": Scope(),
    }
    for name, scope in scopes.items():
        for case in (None, "C-C", "C-A"):
            for exhibit in (None, "EX-3"):
                expected = [
                    r.id
                    for n, r in enumerate(records)
                    if scope.covers(case_of(n), r.id)
                    and (case is None or case_of(n) == case)
                    and (exhibit is None or f"EX-{n % 5}" == exhibit)
                ]
                for limit in (1, 2, 5, 50):
                    got = every_page(store, limit, scope, case, exhibit)
                    assert got == expected, (name, case, exhibit, limit)
    assert len(every_page(store, 7, Scope(everything=True), None, None)) == ITEMS
