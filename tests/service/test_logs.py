"""Tests of the server's log lines (service/process_logs.py): one JSON object per line, each
carrying the id of the request it was written for (echoed in ``X-Request-Id``), one access line
per request; and no token, token hash, salt or private key in any line, through a whole
working session of the API, a key rotation, and ``custos serve`` under gunicorn."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from custody.principals import token_hash
from service import create_app
from service.process_logs import JsonFormatter, RequestIdFilter
from storage.deployment import rotate_key
from storage.sql.schema import evidence_documents, order_texts, orders, principal_names
from tests.conftest import Home, bearer
from tests.factories import in_case, order_document

FIELDS = {"time", "level", "logger", "message", "request_id"}
ACCESS = "custos.access"


@dataclass
class CapturedLog:
    """Every line the root logger's JSON handler wrote, as the server would write them."""

    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, start: int = 0) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text[start:].splitlines()]


@pytest.fixture
def captured() -> Iterator[CapturedLog]:
    log = CapturedLog()
    handler = logging.StreamHandler(log.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield log
    root.removeHandler(handler)
    root.setLevel(level)


@dataclass
class Session:
    """A client whose every request is checked: its lines are JSON and carry its id."""

    client: FlaskClient
    log: CapturedLog
    tokens: dict[str, str] = field(default_factory=dict)

    def call(
        self, method: str, path: str, who: str | None = None, status: int = 200, **kwargs: Any
    ) -> TestResponse:
        headers = {**kwargs.pop("headers", {}), **(bearer(self.tokens[who]) if who else {})}
        start = len(self.log.text)
        # Buffered: the body is read and the response closed at once, as a server does.
        response = self.client.open(path, method=method, headers=headers, buffered=True, **kwargs)
        assert response.status_code == status, response.get_data(as_text=True)
        request_id = response.headers["X-Request-Id"]
        lines = self.log.lines(start)
        for line in lines:
            assert set(line) >= FIELDS, line
            assert line["request_id"] == request_id, line
        access = [line for line in lines if line["logger"] == ACCESS]
        assert len(access) == 1, lines
        assert access[0]["method"] == method
        assert access[0]["path"] == path.split("?")[0]
        assert access[0]["status"] == status
        assert access[0]["duration_ms"] >= 0
        return response


def secrets_in(home: Home, tokens: list[str]) -> list[str]:
    """Every form in which a secret could leak: tokens, their hashes, salts, key files."""
    found = list(tokens)
    for token in tokens:
        digest = token_hash(token)
        found += [digest.hex(), base64.b64encode(digest).decode()]
    with home.deployment.engine.connect() as connection:
        salts = [
            bytes(salt)
            for table in (evidence_documents, order_texts, orders, principal_names)
            for salt in connection.execute(select(table.c.salt)).scalars()
        ]
    for salt in salts:
        found += [
            salt.hex(),
            base64.b64encode(salt).decode(),
            base64.urlsafe_b64encode(salt).decode(),
        ]
    for pem in home.config.keys_dir.glob("*.pem"):
        text = pem.read_text()
        found += [line for line in text.splitlines() if line and not line.startswith("-----")]
    return found


def test_no_token_hash_salt_or_key_reaches_a_line_and_each_carries_its_request_id(
    home: Home, captured: CapturedLog
) -> None:
    deployment = home.deployment
    principals = deployment.principals
    operator = principals.get("operator").actor
    session = Session(create_app({"TESTING": True}, deployment=deployment).test_client(), captured)
    session.tokens["operator"] = home.operator_token
    for name, role in (("alice", "examiner"), ("pat", "authority"), ("judith", "approver")):
        session.tokens[name] = principals.add(name, role, operator)[1]
    in_case(deployment, "C-1", "alice", "pat", "judith")
    in_case(deployment, "CASE-1", "pat", "judith")

    isp = session.call(
        "POST",
        "/v1/providers",
        "operator",
        201,
        json={
            "name": "Example ISP",
            "jurisdiction": "IE",
            "legal_representative": "ISP Legal",
            "contact": "lawful-requests@isp.example",
        },
    ).get_json()["id"]
    session.tokens["isp"] = principals.add("isp", "provider", operator, provider_id=isp)[1]

    opened = session.call(
        "POST",
        "/v1/evidence",
        "alice",
        201,
        json={"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "image"},
    )
    evidence_id = opened.get_json()["id"]
    session.call("PUT", opened.get_json()["upload"], "alice", 201, data=b"image bytes")
    session.call(
        "POST",
        f"/v1/evidence/{evidence_id}/events",
        "alice",
        201,
        json={"type": "evidence.noted", "text": "found under the desk"},
    )
    session.call("GET", f"/v1/evidence/{evidence_id}/content?purpose=review", "alice")

    order_id = session.call("POST", "/v1/orders", "pat", 201, json=order_document(isp)).get_json()[
        "id"
    ]
    session.call("POST", f"/v1/orders/{order_id}/submit", "pat", json={})
    session.call("POST", f"/v1/orders/{order_id}/approve", "judith", json={})
    session.call("GET", f"/v1/provider/orders/{order_id}", "isp")
    session.call(
        "POST",
        f"/v1/provider/orders/{order_id}/request-clarification",
        "isp",
        json={"question": "Which mailbox exactly?"},
    )
    session.call(
        "POST",
        f"/v1/orders/{order_id}/answer-clarification",
        "pat",
        json={"answer": "The one named in the order."},
    )

    wrong = "not-a-token-but-it-might-be-someone's"
    session.tokens["wrong"] = wrong
    session.call("GET", "/v1/evidence", "wrong", 401)

    rotate_key(deployment, operator)
    # The next request reloads the ring, and its warning about unencrypted keys carries its id.
    session.call("GET", "/v1/log/checkpoint")

    lines = captured.lines()
    assert any(line["logger"] != ACCESS and line["request_id"] for line in lines)
    with_principal = [line for line in lines if line.get("principal")]
    assert {line["principal"] for line in with_principal} >= {principals.get("alice").id}
    leaks = secrets_in(home, list(session.tokens.values()))
    assert len(leaks) > 4 * len(session.tokens)  # salts and keys were found, too
    for secret in leaks:
        assert secret not in captured.text


def test_a_well_formed_request_id_is_kept_and_any_other_replaced(
    client: FlaskClient, captured: CapturedLog
) -> None:
    session = Session(client, captured)

    kept = session.call("GET", "/healthz", headers={"X-Request-Id": "lb-7f3a.2_x-1"})
    too_long = session.call("GET", "/healthz", headers={"X-Request-Id": "a" * 129})
    odd = session.call("GET", "/healthz", headers={"X-Request-Id": '", "level": "ERROR'})
    fresh = [session.call("GET", "/healthz").headers["X-Request-Id"] for _ in range(2)]

    assert kept.headers["X-Request-Id"] == "lb-7f3a.2_x-1"
    assert too_long.headers["X-Request-Id"] != "a" * 129
    assert '"' not in odd.headers["X-Request-Id"]
    assert fresh[0] != fresh[1]


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_forwarded_client_is_logged_only_behind_a_trusted_proxy(
    home: Home, captured: CapturedLog, proxies: int
) -> None:
    config = replace(home.config, trust_proxy=proxies)
    app = create_app({"TESTING": True}, deployment=replace(home.deployment, config=config))
    session = Session(app.test_client(), captured)

    session.call(
        "GET",
        "/healthz",
        headers={"X-Forwarded-For": "198.51.100.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )

    (access,) = [line for line in captured.lines() if line["logger"] == ACCESS]
    assert access["remote_addr"] == ("198.51.100.9" if proxies else "10.0.0.2")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def start_serve(home: Home, port: int, log_file: Path) -> subprocess.Popen[bytes]:
    """``custos serve`` with 2 workers on ``home``, its stderr in ``log_file``, with the
    default log format."""
    env = {**os.environ, "CUSTOS_HOME": str(home.config.home)}
    env.pop("CUSTOS_LOG_FORMAT", None)
    with log_file.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=Path(__file__).parents[2],
        )


def test_custos_serve_writes_json_lines_only_and_its_own_access_line(
    home: Home, tmp_path: Path
) -> None:
    operator = home.deployment.principals.get("operator").actor
    _, token = home.deployment.principals.add("alice", "examiner", operator)
    in_case(home.deployment, "C-1", "alice")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_file = tmp_path / "stderr"
    server = start_serve(home, port, log_file)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        status, headers, _ = get(
            f"{base}/v1/evidence", {"Authorization": f"Bearer {token}", "X-Request-Id": "serve-1"}
        )
        metrics = get(f"{base}/metrics")[2].decode()
        run = home.config.home / "run"
        metrics_folders = list(run.iterdir())
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = server.communicate(timeout=60)
    written = log_file.read_text()
    lines = [json.loads(line) for line in written.splitlines()]

    assert status == 200 and headers["X-Request-Id"] == "serve-1"
    assert stdout == b""  # gunicorn's own access log is off
    assert {"gunicorn.error", ACCESS} <= {line["logger"] for line in lines}
    assert all(set(line) >= FIELDS for line in lines)
    (access,) = [line for line in lines if line["request_id"] == "serve-1"]
    assert access["status"] == 200
    assert access["principal"] == home.deployment.principals.get("alice").id
    assert token not in written
    assert 'route="/v1/evidence",status="200"' in metrics
    assert len(metrics_folders) == 1 and not any(run.iterdir())


def workers_of(master: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def test_a_worker_replaced_while_serving_leaves_the_server_and_its_metrics_working(
    home: Home, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_serve(home, port, tmp_path / "stderr")
    run = home.config.home / "run"
    try:
        deadline = time.monotonic() + 60
        while len(workers_of(server.pid)) < 2 or not any(run.iterdir()):
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.2)
        first = workers_of(server.pid)
        os.kill(min(first), signal.SIGTERM)  # gunicorn replaces a worker that stops
        while len(workers_of(server.pid) - first) < 1 or len(workers_of(server.pid)) < 2:
            assert server.poll() is None and time.monotonic() < deadline, "no new worker"
            time.sleep(0.2)
        answers = []
        for _ in range(10):  # both workers, the new one included, answer
            while True:
                try:
                    answers.append(get(f"{base}/metrics")[0])
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, "server gone"
                    time.sleep(0.2)
        assert server.poll() is None
        assert answers == [200] * 10
        assert len(list(run.iterdir())) == 1  # the run's metrics folder is still there
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert not any(run.iterdir())


@pytest.mark.parametrize("configured", [False, True])
def test_query_strings_stay_out_of_the_access_log_unless_configured(
    home: Home, captured: CapturedLog, configured: bool
) -> None:
    config = replace(home.config, log_query_strings=configured)
    app = create_app({"TESTING": True}, deployment=replace(home.deployment, config=config))
    session = Session(app.test_client(), captured, {"op": home.operator_token})

    session.call("GET", "/v1/evidence?case=OPERATION-NIGHTJAR&limit=5", "op")

    (access,) = [line for line in captured.lines() if line["logger"] == ACCESS]
    assert ("NIGHTJAR" in captured.text) is configured
    assert ("query" in access) is configured
