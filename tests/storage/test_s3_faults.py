"""S3 faults, injected: throttling, 5xx answers and hung requests are retried with backoff, and
what still fails fails cleanly (StorageError; 503 with Retry-After over HTTP), leaving no record,
no event and no staged object.

The faults come from a small HTTP proxy of our own in front of moto's server: it answers the
requests it is told to with ``503 SlowDown`` or ``500 InternalError``, or holds them past the
client's read timeout, and forwards the rest. The ledger and manifests' store of the deployment
talks to moto directly; the ingest's store talks through the proxy, with short timeouts.
"""

from __future__ import annotations

import http.client
import io
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from custody.errors import StorageError
from custody.events import Actor
from custody.intake import Intake, IntakeSettings
from custody.scrub import scrub_objects
from service import create_app
from storage.config import ConfigError, load_config
from storage.deployment import Deployment, initialise
from storage.s3 import S3ObjectStore
from tests.conftest import bearer, make_config
from tests.factories import in_case

REGION = "us-east-1"
BUCKET = "custos-faults"
TIMEOUT = 1.0  # the faulty store's connect and read timeout
HANG = 3 * TIMEOUT  # how long a hung request is held before its connection is closed
ATTEMPTS = 3
DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}
_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect"}


class FaultyProxy:
    """Forwards S3 requests to ``upstream``, except those it was told to fault.

    ``inject`` queues one fault (or ``None``: forward) per coming request; ``fail_all`` faults
    every request until ``heal``. A ``truncate`` fault forwards the request and then sends only
    half of the answer's body before closing the connection.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._plan: deque[str | None] = deque()
        self._always: str | None = None
        self._only = ""
        self.faulted = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_request(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._next(self.command, self.path)
                if fault in _ERRORS:
                    self._error(*_ERRORS[fault])
                elif fault == "hang":
                    time.sleep(HANG)
                    self.close_connection = True
                else:
                    self._forward(body, truncate=fault == "truncate")

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_request

            def _error(self, status: int, code: str, message: str) -> None:
                xml = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><RequestId>fault</RequestId></Error>"
                ).encode()
                payload = b"" if self.command == "HEAD" else xml
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes, truncate: bool) -> None:
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    headers["Content-Length"] = str(len(body))
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                finally:
                    connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP | {"server", "date"}:
                        self.send_header(name, value)
                length = answer.getheader("Content-Length", "0")
                self.send_header(
                    "Content-Length", length if self.command == "HEAD" else str(len(data))
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data[: len(data) // 2] if truncate else data)
                if truncate:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _next(self, method: str, path: str) -> str | None:
        with self._lock:
            if self._plan:
                fault = self._plan.popleft()
            else:
                fault = self._always if f"{method} {path}".startswith(self._only) else None
            if fault is not None:
                self.faulted += 1
            return fault

    def inject(self, *faults: str | None) -> None:
        with self._lock:
            self._plan.extend(faults)

    def fail_all(self, fault: str, only: str = "") -> None:
        """Fault every request (``only`` those whose ``METHOD /path`` starts so)."""
        with self._lock:
            self._always, self._only = fault, only

    def heal(self) -> None:
        with self._lock:
            self._plan.clear()
            self._always, self._only = None, ""

    @property
    def pending(self) -> int:
        return len(self._plan)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    nowhere = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        yield server.get_host_and_port()
        server.stop()


@pytest.fixture(scope="module")
def proxy(moto_server: tuple[str, int]) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(moto_server)
    yield faulty
    faulty.close()


@dataclass
class Site:
    deployment: Deployment
    intake: Intake  # the deployment's intake, but storing through the proxy
    faulty: S3ObjectStore
    examiner: Actor
    examiner_token: str
    client: Any  # boto3, straight to moto: what is really in the bucket
    prefix: str

    def staged(self) -> list[str]:
        staging = f"{self.prefix}staging/"
        versions = self.client.list_object_versions(Bucket=BUCKET, Prefix=staging)
        uploads = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=staging)
        return [v["Key"] for v in versions.get("Versions", [])] + [
            u["Key"] for u in uploads.get("Uploads", [])
        ]


@pytest.fixture
def site(
    tmp_path: Path, sqlite_url: str, moto_server: tuple[str, int], proxy: FaultyProxy
) -> Iterator[Site]:
    endpoint = "http://{}:{}".format(*moto_server)
    prefix = f"t-{os.urandom(6).hex()}/"
    config = make_config(
        tmp_path,
        sqlite_url,
        store=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=endpoint,
        s3_region=REGION,
    )
    deployment = initialise(config).deployment
    faulty = S3ObjectStore(
        BUCKET,
        prefix,
        endpoint_url=proxy.url,
        region=REGION,
        max_attempts=ATTEMPTS,
        timeout=TIMEOUT,
    )
    intake = Intake(
        deployment.evidence, deployment.ledger, faulty, IntakeSettings(), deployment.cases
    )
    operator = deployment.principals.get("operator").actor
    examiner, token = deployment.principals.add("alice", "examiner", operator)
    in_case(deployment, "C-1", "alice")
    client = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    proxy.heal()
    yield Site(deployment, intake, faulty, examiner.actor, token, client, prefix)
    proxy.heal()
    deployment.close()


def nothing_recorded(site: Site, ledger_size: int) -> None:
    """No record, no event, no staged object."""
    assert site.deployment.evidence.list(None, None, 10, None) == []
    assert site.deployment.ledger.size() == ledger_size
    assert site.staged() == []


# -- transient faults are retried ----------------------------------------------------------


@pytest.mark.parametrize("fault", ["slowdown", "internal", "hang"])
def test_an_ingest_succeeds_through_transient_faults(
    site: Site, proxy: FaultyProxy, fault: str
) -> None:
    content = os.urandom(200_000)
    session = site.intake.open_session(DIGITAL, site.examiner)
    # Every other request fails once: the staged upload and the checks and copy of the
    # commit each meet a fault and are tried again.
    proxy.inject(*[fault, None] * 3)

    done = site.intake.receive(session.id, io.BytesIO(content), site.examiner)

    assert proxy.pending == 0
    assert site.faulty.get(done.record.storage_key or "") == content
    assert site.deployment.evidence.get(session.id) == done.record
    report = scrub_objects(site.deployment.evidence, site.faulty, site.deployment.keys)
    assert report.ok and report.warnings == [], [str(f) for f in report.findings]
    assert site.staged() == []


# -- persistent faults fail cleanly ----------------------------------------------------------


@pytest.mark.parametrize("fault", ["internal", "hang"])
def test_an_ingest_fails_cleanly_when_faults_persist_and_can_be_sent_again(
    site: Site, proxy: FaultyProxy, fault: str
) -> None:
    content = os.urandom(100_000)
    session = site.intake.open_session(DIGITAL, site.examiner)
    size = site.deployment.ledger.size()
    proxy.fail_all(fault)
    faulted = proxy.faulted

    with pytest.raises(StorageError):
        site.intake.receive(session.id, io.BytesIO(content), site.examiner)

    assert proxy.faulted - faulted == ATTEMPTS  # tried, retried, then given up
    nothing_recorded(site, size)
    proxy.heal()
    done = site.intake.receive(session.id, io.BytesIO(content), site.examiner)
    assert site.faulty.get(done.record.storage_key or "") == content


def test_persistent_faults_are_503_with_retry_after_over_http(
    site: Site, proxy: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site.deployment, "intake", site.intake)
    client = create_app({"TESTING": True}, deployment=site.deployment).test_client()
    headers = bearer(site.examiner_token)
    opened = client.post("/v1/evidence", json=DIGITAL, headers=headers)
    assert opened.status_code == 201
    size = site.deployment.ledger.size()
    proxy.fail_all("slowdown")

    response = client.put(opened.get_json()["upload"], data=b"bytes", headers=headers)

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["status"] == 503
    nothing_recorded(site, size)


# -- reads -------------------------------------------------------------------------------------


def test_a_read_cut_off_mid_stream_is_a_storage_error_and_a_scrub_finding(
    site: Site, proxy: FaultyProxy
) -> None:
    session = site.intake.open_session(DIGITAL, site.examiner)
    done = site.intake.receive(session.id, io.BytesIO(os.urandom(100_000)), site.examiner)
    key = done.record.storage_key or ""

    proxy.fail_all("truncate", only=f"GET /{BUCKET}/{site.prefix}blobs/")
    with pytest.raises(StorageError):
        site.faulty.get(key)
    report = scrub_objects(site.deployment.evidence, site.faulty, site.deployment.keys)
    problems = [(f.evidence_id, f.problem.split(":")[0]) for f in report.findings]
    assert (done.record.id, "blob unreadable") in problems


# -- settings ----------------------------------------------------------------------------------


def test_retry_settings_come_from_the_environment_and_are_checked(tmp_path: Path) -> None:
    config = load_config(tmp_path, {"CUSTOS_S3_MAX_ATTEMPTS": "7", "CUSTOS_S3_TIMEOUT": "2.5"})
    assert (config.s3_max_attempts, config.s3_timeout) == (7, 2.5)
    for bad in ({"CUSTOS_S3_MAX_ATTEMPTS": "0"}, {"CUSTOS_S3_TIMEOUT": "-1"}):
        with pytest.raises(ConfigError):
            load_config(tmp_path, bad)
    store = S3ObjectStore("bucket", max_attempts=7, timeout=2.5, region=REGION)
    meta = store.client.meta.config
    assert meta.retries == {"mode": "standard", "total_max_attempts": 7}
    assert (meta.connect_timeout, meta.read_timeout) == (2.5, 2.5)
