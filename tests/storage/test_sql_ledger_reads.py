"""The ledger store's shared reads (``reads_together``), on SQLite and PostgreSQL: one
connection for all of a context's reads, each read seeing what was committed before it, and
the connection returned to the pool as it was lent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event

from custody.events import Actor, NewEvent, Subject
from tests.conftest import Home

SUBJECT = Subject("evidence", "e1")


def noted(n: int) -> NewEvent:
    return NewEvent("evidence.noted", Actor("pr_t", "examiner"), SUBJECT, {"n": n})


def test_reads_together_share_one_connection_and_see_each_append(
    home_on_each_database: Home,
) -> None:
    ledger = home_on_each_database.deployment.ledger
    store = ledger.store
    checkouts: list[Any] = []
    event.listen(store.engine, "checkout", lambda *args: checkouts.append(args[0]))
    ledger.append(noted(0))
    checkouts.clear()

    with store.reads_together():
        before = len(store.subject_entries(SUBJECT.key))
        appended = ledger.append(noted(1))  # on a connection of its own, committed
        after = store.subject_entries(SUBJECT.key)
        size = store.size()
        reads = list(checkouts)

    assert (before, len(after), after[-1].index, size) == (1, 2, appended.index, ledger.size())
    # Two checkouts: the shared reads' and the append's own.
    assert len(reads) == 2
    assert len({id(c) for c in reads}) == 2


def test_each_thread_reads_on_its_own_connection(home_on_each_database: Home) -> None:
    store = home_on_each_database.deployment.ledger.store
    home_on_each_database.deployment.ledger.append(noted(0))

    def read(_: int) -> int:
        with store.reads_together():
            return len(store.subject_entries(SUBJECT.key)) + store.size()

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(read, range(8)))

    assert len(set(counts)) == 1


def test_the_shared_connection_goes_back_as_it_came(home_on_each_database: Home) -> None:
    """On PostgreSQL it reads in autocommit, and is back out of it for the next borrower."""
    store = home_on_each_database.deployment.ledger.store
    with store.reads_together():
        store.size()
    connection = store.engine.raw_connection()
    try:
        driver = connection.driver_connection
        if store.engine.dialect.name == "postgresql":
            assert driver is not None and driver.autocommit is False
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1
    finally:
        connection.close()
