"""The outbox workers: each server process delivers the notices due to providers and, where
alerts are on, the e-mail alerts due.

A daemon thread runs ``NoticeDelivery.deliver_due`` every ``notify_interval`` seconds, and at
once when an order change has queued a notice (the order desk's ``on_notice`` wakes it).
Another, where an SMTP server is configured, writes the alerts of deadlines near
(``OrderDesk.queue_due_alerts``) and sends the alerts due, every ``notify_interval`` seconds.
gunicorn builds the app in each worker after the fork (``service.wsgi``, no preloading), so
each worker starts its own thread; the lease on a claimed notice keeps two workers from
sending the same notice at once.

Only an app built with ``CUSTOS_NOTIFY`` true starts it: ``custos serve`` does, tests do not
unless they ask.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from custody.outbox import OutboxDelivery
from storage.alerts import alert_delivery
from storage.deployment import Deployment
from storage.notices import notice_delivery

log = logging.getLogger("custos.outbox")

# Notices attempted per deliver_due call; a full batch is followed by the next at once.
BATCH = 100
# How long stopping waits for an attempt in flight; a notice it abandons is sent again once
# its lease lapses.
STOP_TIMEOUT = 5.0


class OutboxWorker:
    """A per-process thread delivering an outbox's due messages; ``wake`` makes it look at
    once. ``prepare``, when given, runs before each pass (it may write messages)."""

    def __init__(
        self,
        delivery: OutboxDelivery[Any],
        interval: float,
        *,
        batch: int = BATCH,
        what: str = "notice",
        prepare: Callable[[], object] | None = None,
    ) -> None:
        self.delivery = delivery
        self.interval = interval
        self.batch = batch
        # What it delivers, in its thread's name and its log.
        self.what = what
        self.prepare = prepare
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Each thread has its own: one still finishing an attempt after ``stop`` must not
        # run on when a new one starts.
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread, unless it runs in this process already (a thread does not
        survive a fork, so a forked child starts its own)."""
        with self._lock:
            if self.running:
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stopping,), name=f"custos-{self.what}s", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Look for due messages now (called after a notice was queued)."""
        self._wake.set()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the thread, waiting at most ``timeout`` seconds for an attempt in flight."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self, stopping: threading.Event) -> None:
        while True:
            # Cleared before looking, so a wake during delivery brings another look at once.
            self._wake.clear()
            self._deliver_all_due(stopping)
            if stopping.is_set():
                return
            self._wake.wait(self.interval)

    def _deliver_all_due(self, stopping: threading.Event) -> None:
        try:
            if self.prepare is not None:
                self.prepare()
            while not stopping.is_set():
                report = self.delivery.deliver_due(self.batch)
                if report.attempted < self.batch:
                    return
        except Exception:
            # The thread must outlive a failing database or a bug in one pass; the messages
            # stay in the outbox and the next pass takes them up.
            log.exception("%s delivery failed; trying again in %g s", self.what, self.interval)


def init_app(app: Flask) -> None:
    """Start the app's notice worker (and alert worker, where alerts are on) when
    ``CUSTOS_NOTIFY`` is set, and wire the order desk to wake it; they stop when the process
    exits (or with ``app.extensions["custos_notices"]`` and ``["custos_alerts"]``)."""
    if not app.config.get("CUSTOS_NOTIFY"):
        return
    deployment: Deployment = app.extensions["custos"]
    interval = deployment.config.notify_interval
    worker = OutboxWorker(notice_delivery(deployment), interval)
    deployment.orders.on_notice = worker.wake
    app.extensions["custos_notices"] = worker
    worker.start()
    atexit.register(worker.stop)
    if deployment.orders.alerts is not None:
        alerts = OutboxWorker(
            alert_delivery(deployment),
            interval,
            what="alert",
            prepare=deployment.orders.queue_due_alerts,
        )
        app.extensions["custos_alerts"] = alerts
        alerts.start()
        atexit.register(alerts.stop)
