"""Tests of service.notices: the app's background thread delivers notices to providers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from custody.errors import StorageError
from custody.note import open_note
from custody.notices import DELIVERED, FAILED, DeliveryReport, Notice
from service import create_app
from service.notices import OutboxWorker
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import add_provider, make_config
from tests.custody.test_notices import Parties, parties_of
from tests.storage.test_notices import Listener, closed_port_url

WAIT = 10.0  # the most any test waits for the thread, in seconds


@pytest.fixture
def deployment(tmp_path: Path, sqlite_url: str) -> Iterator[Deployment]:
    """A deployment that retries a failed notice once, 50 ms later."""
    config = make_config(
        tmp_path,
        sqlite_url,
        notify_interval=0.05,
        notify_timeout=2.0,
        notify_max_attempts=2,
        notify_base_delay=0.05,
        notify_max_delay=0.05,
    )
    initialise(config).deployment.close()
    opened = open_deployment(config)
    yield opened
    opened.close()


@pytest.fixture
def notifying_app(deployment: Deployment) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "CUSTOS_NOTIFY": True}, deployment=deployment)
    worker: OutboxWorker = app.extensions["custos_notices"]
    yield app
    worker.stop()
    assert not worker.running


@pytest.fixture
def parties(deployment: Deployment) -> Parties:
    return parties_of(deployment)


def wait_for(notices: Callable[[], list[Notice]], state: str) -> Notice:
    """The order's one notice once it reaches ``state``, polled for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        (notice,) = notices()
        if notice.state == state or time.monotonic() > deadline:
            return notice
        time.sleep(0.01)


def test_a_served_order_notice_reaches_the_provider_through_the_background_thread(
    notifying_app: Flask, deployment: Deployment, parties: Parties
) -> None:
    with Listener() as listener:
        isp = add_provider(deployment, notification_url=listener.url)
        order_id = parties.serve_order(isp.id)

        # Serving wakes the thread: no need to wait for its next look at the outbox.
        assert listener.arrived.wait(WAIT)
        notice = wait_for(lambda: parties.notices(order_id), DELIVERED)

    assert (notice.state, notice.attempts) == (DELIVERED, 1)
    (received,) = listener.received
    assert received.body == notice.note
    note = open_note(received.body, deployment.keys.verifiers)
    assert json.loads(note.text.split("\n")[1])["order"] == order_id


def test_failed_deliveries_to_a_provider_that_is_down_are_shown_to_the_authority(
    notifying_app: Flask, deployment: Deployment, parties: Parties
) -> None:
    isp = add_provider(deployment, notification_url=closed_port_url())
    order_id = parties.serve_order(isp.id)

    notice = wait_for(lambda: parties.notices(order_id), FAILED)

    assert (notice.state, notice.attempts) == (FAILED, 2)
    # Not "connection refused": what a URL answers is not the authority's to see.
    assert notice.as_json()["last_error"].startswith("not delivered at ")
    assert notice.as_json()["delivered_at"] is None


def test_the_thread_starts_only_when_the_app_asks_for_it(deployment: Deployment) -> None:
    app = create_app({"TESTING": True}, deployment=deployment)
    assert "custos_notices" not in app.extensions
    assert deployment.orders.on_notice is None


def test_a_stopped_notice_worker_can_be_started_again_in_the_same_process(
    notifying_app: Flask,
) -> None:
    worker: OutboxWorker = notifying_app.extensions["custos_notices"]
    worker.start()  # already running: nothing changes
    assert worker.running
    worker.stop()
    assert not worker.running
    worker.start()
    assert worker.running


class FlakyDelivery:
    """A delivery whose first pass fails as a database outage would."""

    def __init__(self) -> None:
        self.passes = 0
        self.first_pass = threading.Event()
        self.second_pass = threading.Event()

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        self.passes += 1
        if self.passes == 1:
            self.first_pass.set()
            raise StorageError("order store failed: the database is restarting")
        self.second_pass.set()
        return DeliveryReport()


def test_the_thread_outlives_a_failing_pass(caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyDelivery()
    worker = OutboxWorker(flaky, interval=60)  # type: ignore[arg-type]
    worker.start()
    try:
        assert flaky.first_pass.wait(WAIT)
        worker.wake()
        assert flaky.second_pass.wait(WAIT)
        assert worker.running
    finally:
        worker.stop()
    assert "notice delivery failed" in caplog.text
