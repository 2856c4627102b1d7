"""The list pages run the same number of SQL statements whatever the number of rows they show:
no query per row. Each list is measured with one row and with a full page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from service import create_app
from service.evidence import load_intake
from storage.deployment import Deployment
from tests.conftest import Home
from tests.factories import SEIZURE, in_case
from tests.service.pages.desks import Browser, browser
from tests.service.test_provider_api import build_site


@contextmanager
def statements(deployment: Deployment) -> Iterator[list[str]]:
    """The SQL statements the engine runs within the block."""
    ran: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        ran.append(statement)

    event.listen(deployment.engine, "before_cursor_execute", count)
    try:
        yield ran
    finally:
        event.remove(deployment.engine, "before_cursor_execute", count)


def counted(deployment: Deployment, person: Browser, path: str) -> int:
    person.get(path)  # the first request warms what is read once per process
    with statements(deployment) as ran:
        response = person.get(path)
    assert response.status_code == 200
    return len(ran)


def rows_then_more(
    deployment: Deployment, person: Browser, path: str, add_row: Callable[[], object], more: int
) -> tuple[int, int]:
    add_row()
    one = counted(deployment, person, path)
    for _ in range(more):
        add_row()
    return one, counted(deployment, person, path)


def test_the_provider_s_inbox_runs_no_query_per_order(home: Home) -> None:
    site = build_site(home)
    person = browser(create_app({"TESTING": True}, deployment=site.deployment))
    assert person.sign_in(site.tokens["own"]).status_code == 303

    one, full = rows_then_more(site.deployment, person, "/provider/orders", site.acknowledged, 49)

    assert one == full


def test_the_court_s_item_list_runs_no_query_per_item(home: Home) -> None:
    deployment = home.deployment
    people = deployment.principals
    operator = people.get("operator").actor
    examiner = people.add("eva", "examiner", operator)[0].actor
    _, token = people.add("clerk", "court", operator)
    in_case(deployment, "C-1", "eva", "clerk")
    person = browser(create_app({"TESTING": True}, deployment=deployment))
    assert person.sign_in(token).status_code == 303
    made = iter(range(1000))

    def add_item() -> None:
        n = next(made)
        metadata = {
            "kind": "physical",
            "case": "C-1",
            "exhibit": f"EX-{n}",
            "description": "phone",
            "seizure": SEIZURE,
        }
        deployment.intake.register_physical(load_intake(metadata), examiner)

    one, full = rows_then_more(deployment, person, "/court/items", add_item, 49)

    assert one == full
