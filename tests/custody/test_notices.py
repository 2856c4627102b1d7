"""Tests of custody.notices: the delivery policy over the real SQL outbox.

Each test runs on SQLite and on PostgreSQL, with a fake sender and a FakeClock. Notices come
from the real order flow: an order served on a provider that has a notification URL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from custody.events import Actor, format_time
from custody.notices import (
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryReport,
    Notice,
    NoticeDelivery,
    NoticeDeliveryError,
    not_delivered,
)
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import FakeClock, add_provider, make_config
from tests.factories import in_case, order_document

US = 1e-6  # one microsecond, in seconds


@dataclass
class Parties:
    """An authority who drafts and an approver who serves, of one deployment."""

    deployment: Deployment
    author: Actor
    judge: Actor

    def serve_order(self, provider_id: str) -> str:
        """Draft, submit and approve an order on the provider: it is served."""
        desk = self.deployment.orders
        order_id = desk.draft(order_document(provider_id), self.author).stored.id
        desk.act(order_id, "submit", {}, self.author)
        desk.act(order_id, "approve", {}, self.judge)
        return order_id

    def notices(self, order_id: str) -> list[Notice]:
        desk = self.deployment.orders
        return list(desk.notices_of(desk.get(order_id, self.author)))


def parties_of(deployment: Deployment) -> Parties:
    operator = deployment.principals.get("operator").actor
    author, _ = deployment.principals.add("author", "authority", operator)
    judge, _ = deployment.principals.add("judge", "approver", operator)
    in_case(deployment, "CASE-1", "author", "judge")  # the orders' case
    return Parties(deployment, author.actor, judge.actor)


@pytest.fixture
def parties(tmp_path: Path, database_url: str, clock: FakeClock) -> Iterator[Parties]:
    """A deployment on the FakeClock, once on SQLite and once on PostgreSQL."""
    config = make_config(tmp_path, database_url)
    initialise(config).deployment.close()
    deployment = open_deployment(config, clock=clock)
    yield parties_of(deployment)
    deployment.close()


class FakeSender:
    """Records each note sent; fails while ``failures`` is above zero."""

    def __init__(self, failures: int = 0, during: Callable[[], object] | None = None) -> None:
        self.failures = failures
        self.during = during
        self.sent: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, note: bytes) -> None:
        if self.during is not None:
            self.during()
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                raise NoticeDeliveryError("HTTP 503")
            self.sent.append((url, note))


def delivery(
    parties: Parties, sender: FakeSender, clock: FakeClock, **policy: float
) -> NoticeDelivery:
    settings: dict[str, float] = {"max_attempts": 5, "base_delay": 10, "max_delay": 30}
    settings.update(policy)
    return NoticeDelivery(
        parties.deployment.orders.notices,
        sender,
        clock,
        max_attempts=int(settings["max_attempts"]),
        base_delay=settings["base_delay"],
        max_delay=settings["max_delay"],
    )


def test_due_notices_are_delivered_once_each_up_to_the_limit(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    orders = [parties.serve_order(isp.id) for _ in range(3)]
    sender = FakeSender()
    worker = delivery(parties, sender, clock)

    assert worker.deliver_due(limit=2) == DeliveryReport(delivered=2)
    assert worker.deliver_due(limit=2) == DeliveryReport(delivered=1)
    clock.advance(3600)
    assert worker.deliver_due() == DeliveryReport()

    notices = [parties.notices(order_id)[0] for order_id in orders]
    assert sender.sent == [("https://isp.example/custos", n.note) for n in notices]
    for notice in notices:
        assert (notice.state, notice.attempts, notice.last_error) == (DELIVERED, 1, None)
        assert notice.next_attempt_at is None
        assert notice.delivered_at is not None


def test_failed_attempts_are_retried_after_doubling_delays_then_marked_failed(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    order_id = parties.serve_order(isp.id)
    sender = FakeSender(failures=100)
    worker = delivery(parties, sender, clock, max_attempts=5, base_delay=10, max_delay=30)

    assert worker.deliver_due() == DeliveryReport(retried=1)
    # After failed attempt n the notice waits min(10 * 2**(n-1), 30) s: not a microsecond less.
    for delay in (10, 20, 30):
        clock.advance(delay - US)
        assert worker.deliver_due() == DeliveryReport()
        clock.advance(US)
        assert worker.deliver_due() == DeliveryReport(retried=1)
    (notice,) = parties.notices(order_id)
    assert (notice.state, notice.attempts) == (PENDING, 4)
    assert notice.last_error == not_delivered(clock.now)

    # The fifth failed attempt is the last: the notice is failed, when it failed kept.
    clock.advance(30 - US)
    assert worker.deliver_due() == DeliveryReport()
    clock.advance(US)
    assert worker.deliver_due() == DeliveryReport(failed=1)
    failed_at = clock.now
    clock.advance(86400)
    assert worker.deliver_due() == DeliveryReport()

    (notice,) = parties.notices(order_id)
    assert (notice.state, notice.attempts) == (FAILED, 5)
    assert notice.last_error == not_delivered(failed_at)
    assert (notice.next_attempt_at, notice.delivered_at) == (None, None)
    assert notice.as_json()["state"] == FAILED
    assert sender.sent == []


def test_a_retry_that_succeeds_is_delivered_and_keeps_the_earlier_error(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    order_id = parties.serve_order(isp.id)
    sender = FakeSender(failures=1)
    worker = delivery(parties, sender, clock)

    assert worker.deliver_due() == DeliveryReport(retried=1)
    failed_at = clock.now
    clock.advance(10)
    assert worker.deliver_due() == DeliveryReport(delivered=1)

    (notice,) = parties.notices(order_id)
    assert (notice.state, notice.attempts) == (DELIVERED, 2)
    assert notice.last_error == not_delivered(failed_at)
    assert len(sender.sent) == 1


def test_the_authority_sees_not_delivered_and_when_never_the_remote_answer(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    order_id = parties.serve_order(isp.id)
    worker = delivery(parties, FakeSender(failures=1), clock)

    assert worker.deliver_due() == DeliveryReport(retried=1)

    (notice,) = parties.notices(order_id)
    shown = notice.as_json()
    assert shown["last_error"] == f"not delivered at {format_time(clock.now)}"
    assert "503" not in json.dumps(shown)


def test_a_claimed_notice_is_left_alone_until_delivered_or_its_lease_lapses(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    order_id = parties.serve_order(isp.id)
    store = parties.deployment.orders.notices
    # A worker claims the notice with a lease of 60 s, then dies before it records anything.
    assert len(store.claim_due(clock(), clock() + timedelta(seconds=60), 10)) == 1
    third_sender = FakeSender()
    third = delivery(parties, third_sender, clock)
    seen_by_third: list[DeliveryReport] = []
    # The second worker takes it up once the lease lapses; while it sends, a third gets nothing.
    second_sender = FakeSender(during=lambda: seen_by_third.append(third.deliver_due()))
    second = delivery(parties, second_sender, clock)

    clock.advance(60 - US)
    assert second.deliver_due() == DeliveryReport()
    clock.advance(US)
    assert second.deliver_due() == DeliveryReport(delivered=1)

    assert seen_by_third == [DeliveryReport()]
    assert third_sender.sent == []
    assert len(second_sender.sent) == 1
    assert parties.notices(order_id)[0].state == DELIVERED


def test_two_workers_running_at_once_send_each_notice_exactly_once(
    parties: Parties, clock: FakeClock
) -> None:
    isp = add_provider(parties.deployment, notification_url="https://isp.example/custos")
    orders = [parties.serve_order(isp.id) for _ in range(6)]
    sender = FakeSender()
    workers = [delivery(parties, sender, clock) for _ in range(2)]
    start = threading.Barrier(2)
    reports: list[DeliveryReport] = []

    def run(worker: NoticeDelivery) -> None:
        start.wait()
        reports.append(worker.deliver_due())

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(r.delivered for r in reports) == 6
    notes = sorted(note for _, note in sender.sent)
    assert notes == sorted(parties.notices(order_id)[0].note for order_id in orders)
    assert all(parties.notices(order_id)[0].state == DELIVERED for order_id in orders)


@pytest.mark.parametrize(
    "policy",
    [
        {"max_attempts": 0, "base_delay": 1, "max_delay": 1},
        {"max_attempts": 1, "base_delay": 0, "max_delay": 1},
        {"max_attempts": 1, "base_delay": 2, "max_delay": 1},
    ],
)
def test_a_policy_that_could_never_deliver_is_refused(
    policy: dict[str, float], clock: FakeClock
) -> None:
    with pytest.raises(ValueError):
        NoticeDelivery(
            None,  # type: ignore[arg-type]
            FakeSender(),
            clock,
            max_attempts=int(policy["max_attempts"]),
            base_delay=policy["base_delay"],
            max_delay=policy["max_delay"],
        )
