"""Concurrent appends from threads and from separate processes never fork, skip or repeat."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest

from custody.audit import audit_ledger
from custody.events import Actor, NewEvent, Subject
from storage.config import Config
from storage.deployment import open_deployment
from tests.conftest import Home

PROCESSES = 4
APPENDS_EACH = 500


def _append_many(config: Config, worker: int, count: int) -> list[int]:
    deployment = open_deployment(config)
    actor = Actor(f"pr_worker{worker}", "examiner")
    try:
        return [
            deployment.ledger.append(
                NewEvent("evidence.noted", actor, Subject("evidence", f"e{i % 7}"), {"w": worker})
            ).index
            for i in range(count)
        ]
    finally:
        deployment.close()


def _assert_dense_and_audited(home: Home, indexes: list[int]) -> None:
    deployment = home.deployment
    # Index 0 is the operator's principal.created event from `custos init`.
    assert sorted(indexes) == list(range(1, 1 + len(indexes)))
    assert deployment.ledger.size() == 1 + len(indexes)
    deployment.ledger.checkpoint(covering=deployment.ledger.size() - 1)
    report = audit_ledger(deployment.ledger.store, deployment.objects, deployment.keys)
    assert report.ok, report.findings[:5]
    assert report.size == 1 + len(indexes)


@pytest.mark.slow
def test_four_processes_appending_500_each_leave_a_dense_audited_log(
    home_on_each_database: Home,
) -> None:
    config = home_on_each_database.config
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.starmap(_append_many, [(config, w, APPENDS_EACH) for w in range(PROCESSES)])
    _assert_dense_and_audited(home_on_each_database, [i for r in results for i in r])


def test_threads_sharing_one_ledger_never_repeat_an_index(home_on_each_database: Home) -> None:
    ledger = home_on_each_database.deployment.ledger
    actor = Actor("pr_t", "examiner")

    def work(worker: int) -> list[int]:
        return [
            ledger.append(
                NewEvent("evidence.noted", actor, Subject("evidence", f"e{i % 3}"), {"w": worker})
            ).index
            for i in range(50)
        ]

    with ThreadPoolExecutor(4) as pool:
        indexes = [i for chunk in pool.map(work, range(4)) for i in chunk]
    _assert_dense_and_audited(home_on_each_database, indexes)
