"""Tests of the Prometheus metrics (service/metrics.py): requests and latency by route template
and status, problems by status, ingested bytes, the ledger's size read at scrape time, and
every worker's counts added up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Home, bearer
from tests.factories import in_case
from tests.service.test_evidence_api import upload

CHECKPOINT = "/v1/log/checkpoint"
ITEM = "/v1/evidence/<evidence_id>"
MISSING_ITEM = "/v1/evidence/ev_0000000000000000"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, status: str, method: str = "GET") -> float:
    return value(samples, "custos_http_requests_total", method=method, route=route, status=status)


def examiner(home: Home) -> dict[str, str]:
    operator = home.deployment.principals.get("operator").actor
    return bearer(home.deployment.principals.add("alice", "examiner", operator)[1])


def test_requests_are_counted_by_route_template_method_and_status(
    home: Home, client: FlaskClient
) -> None:
    headers = examiner(home)
    for _ in range(2):
        client.get(CHECKPOINT)
    client.get(MISSING_ITEM, headers=headers)
    client.get("/no/such/ev_1234")

    samples = scrape(client)

    assert requests(samples, CHECKPOINT, "200") == 2
    assert requests(samples, ITEM, "404") == 1
    assert requests(samples, "unmatched", "404") == 1
    labels = {"method": "GET", "route": CHECKPOINT, "status": "200"}
    assert value(samples, "custos_http_request_duration_seconds_count", **labels) == 2
    assert value(samples, "custos_http_request_duration_seconds_bucket", le="+Inf", **labels) == 2
    # Paths never become labels: no id appears anywhere.
    assert not any("ev_" in v for _, pairs in samples for _, v in pairs)


def test_problem_responses_are_counted_by_status(home: Home, client: FlaskClient) -> None:
    client.get("/v1/evidence")
    client.get(MISSING_ITEM, headers=examiner(home))
    client.get(MISSING_ITEM, headers=bearer("not-a-token"))

    samples = scrape(client)

    assert value(samples, "custos_http_problems_total", status="401") == 2
    assert value(samples, "custos_http_problems_total", status="404") == 1


def test_ingested_bytes_add_up_each_upload(home: Home, client: FlaskClient) -> None:
    headers = examiner(home)
    in_case(home.deployment, "CASE-1", "alice")
    upload(client, headers, b"first image")
    upload(client, headers, b"a second, longer image", exhibit="E-2")

    samples = scrape(client)

    assert value(samples, "custos_ingested_bytes_total") == len(b"first image") + len(
        b"a second, longer image"
    )


def test_ledger_size_gauge_is_the_ledger_size_at_scrape_time(
    home: Home, client: FlaskClient
) -> None:
    before = value(scrape(client), "custos_ledger_size")
    examiner(home)  # principal.created: one more entry, appended outside the app

    assert before == home.deployment.ledger.size() - 1
    assert value(scrape(client), "custos_ledger_size") == home.deployment.ledger.size()


# As gunicorn does: imports, then a fork; each worker builds its app after the fork. One
# worker answers 3 requests and exits, another answers 4 and then a scrape.
WORKERS = """
import os
from service import create_app


def serve(requests):
    client = create_app({"TESTING": True}).test_client()
    for _ in range(requests):
        assert client.get("/v1/log/checkpoint").status_code == 200
    return client


pid = os.fork()
if pid == 0:
    serve(3)
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
print(serve(4).get("/metrics").get_data(as_text=True))
"""


def test_a_scrape_adds_up_every_worker_in_multiprocess_mode(home: Home, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {
        **os.environ,
        "CUSTOS_HOME": str(home.config.home),
        "CUSTOS_DATABASE_URL": home.config.database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }

    done = subprocess.run(
        [sys.executable, "-c", WORKERS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    samples = parse(done.stdout)

    assert requests(samples, CHECKPOINT, "200") == 7
    assert value(samples, "custos_ledger_size") == home.deployment.ledger.size()
