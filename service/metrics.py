"""Prometheus metrics at ``/metrics`` (text exposition format 0.0.4).

Requests and their latency by route (the URL rule, never the raw path, so that ids do not
become series), method and status; problem responses by status; bytes ingested; and the
ledger's size, read from the database at each scrape.

Under ``custos serve`` every gunicorn worker counts into its own files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder ``custos serve`` makes), and a scrape, whichever
worker answers it, adds up every worker's files: prometheus_client's multiprocess mode. That
mode is chosen when ``prometheus_client`` is first imported, which is why it is imported here
only when an app is built (in the worker, after ``custos serve`` has set the variable), never
when this module is.

The endpoint needs no token: it names no item, case or principal, only counts. It is for the
operator's network, not the internet (docs/operations.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app
from flask_smorest import Api, Blueprint

from custody.errors import CustosError
from custody.ledger import Ledger
from service.problems import PROBLEM_JSON
from service.process_logs import AnsweredRequest, when_answered

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "custos_metrics"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: the default buckets, and longer ones for uploads and downloads of large items.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
# Any other method a client sends is counted as "other", so that it cannot add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

log = logging.getLogger("custos.metrics")

blp = Blueprint("metrics", __name__, description="Prometheus metrics")


class LedgerSizeCollector:
    """``custos_ledger_size``: the ledger's entries, read from the database at scrape time
    (so that every worker reports the same, current value)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            size = self.ledger.size()
        except CustosError as exc:
            # The counters are still worth a scrape while the database is away.
            log.warning("ledger size unavailable: %s", exc)
            return
        yield GaugeMetricFamily("custos_ledger_size", "Entries in the custody ledger.", size)


class Metrics:
    """The app's counters, and the registry a scrape reads them from."""

    def __init__(self, ledger: Ledger) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Histogram,
            disable_created_metrics,
        )

        # The *_created series say when each series began; they double a scrape's size (and
        # multiprocess mode has none): without them, every mode reports the same series.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR) or None
        # In multiprocess mode these write to the folder's files; this registry is not read.
        self.registry = CollectorRegistry()
        self.ledger_size = LedgerSizeCollector(ledger)
        self.requests = Counter(
            "custos_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "custos_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route and "
            "status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.problems = Counter(
            "custos_http_problems",
            "Problem (RFC 9457) responses, by status.",
            ["status"],
            registry=self.registry,
        )
        self.ingested_bytes = Counter(
            "custos_ingested_bytes",
            "Bytes of evidence and provider responses ingested (answered 201).",
            registry=self.registry,
        )
        if self.multiprocess_dir is None:
            self.registry.register(self.ledger_size)

    def count_request(self, answered: AnsweredRequest, seconds: float) -> None:
        """Count an answered request (called once its response is done, maybe outside it)."""
        method = answered.method if answered.method in _METHODS else "other"
        labels = (method, answered.route or UNMATCHED, str(answered.status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def scrape_registry(self) -> CollectorRegistry:
        """What a scrape reports: every worker's counters and the ledger's size."""
        if self.multiprocess_dir is None:
            return self.registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(self.ledger_size)
        return registry


def _metrics() -> Metrics:
    metrics: Metrics = current_app.extensions[EXTENSION]
    return metrics


def count_ingested(size: int) -> None:
    """Count the bytes of an upload that was just ingested."""
    _metrics().ingested_bytes.inc(size)


def _count_problem(response: Response) -> Response:
    if response.mimetype == PROBLEM_JSON:
        _metrics().problems.labels(str(response.status_code)).inc()
    return response


@blp.route("/metrics")
@blp.response(
    200,
    {"type": "string"},
    content_type="text/plain",
    description="Prometheus text exposition format 0.0.4",
)
def metrics() -> Response:
    """Counters of requests, latency, problems and ingested bytes, and the ledger's size."""
    from prometheus_client import generate_latest

    return Response(generate_latest(_metrics().scrape_registry()), content_type=EXPOSITION)


def init_app(app: Flask, ledger: Ledger, api: Api) -> None:
    """Count every request of the app, and serve the counts at ``/metrics``."""
    counts = app.extensions[EXTENSION] = Metrics(ledger)
    app.after_request(_count_problem)
    when_answered(app, counts.count_request)
    api.register_blueprint(blp)
