"""Fixtures for each real part: a temporary home, a deployment on SQLite and on PostgreSQL,
an app and its client, and a CLI runner.

PostgreSQL comes from ``CUSTOS_TEST_DATABASE_URL`` (``.ci/run`` sets it). Each test gets its
own schema there, dropped afterwards. Under ``CI=true`` a test that needs PostgreSQL fails
instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import WSGIRequestHandler, make_server

from custody.providers import Provider
from service import create_app
from storage.config import Config
from storage.deployment import Deployment, initialise

IN_CI = os.environ.get("CI", "").lower() == "true"

# A property test checks what a value does, never how long it took: hypothesis's per-example
# deadline would fail a correct example on a loaded machine.
settings.register_profile("custos", deadline=None)
settings.load_profile("custos")
TEST_ORIGIN = "test.custos.invalid/ledger"


def require(condition: bool, reason: str) -> None:
    """Skip a test that lacks a tool, except in CI, where that is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


class FakeClock:
    """A settable clock: ``clock()`` is now, ``clock.advance(seconds)`` moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _postgres_reachable(url: str) -> bool:
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    url = os.environ.get("CUSTOS_TEST_DATABASE_URL", "")
    require(bool(url), "CUSTOS_TEST_DATABASE_URL is not set (PostgreSQL tests)")
    require(_postgres_reachable(url), f"PostgreSQL at {url} is not reachable")
    return url


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(postgres_base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(postgres_base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'custos.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'home' / 'custos.db'}"


def make_config(tmp_path: Path, database_url: str, **overrides: object) -> Config:
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "origin": TEST_ORIGIN,
        "database_url": database_url,
        "checkpoint_interval": 1.0,
        # The listeners that stand for providers' notification endpoints run on 127.0.0.1,
        # which the operator of a local setup allows in the same way.
        "outbound_allow": ("127.0.0.1",),
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


@dataclass
class Home:
    """An initialised deployment and its operator's token."""

    deployment: Deployment
    operator_token: str

    @property
    def config(self) -> Config:
        return self.deployment.config


def _home(config: Config, clock: FakeClock | None) -> Iterator[Home]:
    result = initialise(config)
    result.deployment.close()
    assert result.operator_token is not None
    from storage.deployment import open_deployment

    deployment = open_deployment(config, clock=clock) if clock else open_deployment(config)
    yield Home(deployment, result.operator_token)
    deployment.close()


@pytest.fixture
def home(tmp_path: Path, sqlite_url: str) -> Iterator[Home]:
    """A deployment on SQLite with the real clock."""
    yield from _home(make_config(tmp_path, sqlite_url), None)


@pytest.fixture
def home_on_each_database(tmp_path: Path, database_url: str) -> Iterator[Home]:
    """A deployment, once on SQLite and once on PostgreSQL."""
    yield from _home(make_config(tmp_path, database_url), None)


@pytest.fixture
def deployment(home: Home) -> Deployment:
    return home.deployment


@pytest.fixture
def app(home: Home) -> Flask:
    return create_app({"TESTING": True}, deployment=home.deployment)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(home: Home, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose ``custos`` acts on the test home."""
    monkeypatch.setenv("CUSTOS_HOME", str(home.config.home))
    monkeypatch.setenv("CUSTOS_DATABASE_URL", home.config.database_url)
    return CliRunner()


def add_provider(deployment: Deployment, name: str = "Example ISP", **fields: str) -> Provider:
    """Register a provider as the operator (admin)."""
    operator = deployment.principals.get("operator").actor
    values = {
        "name": name,
        "jurisdiction": "IE",
        "legal_representative": f"{name} Legal",
        "contact": "lawful-requests@isp.example",
        **fields,
    }
    return deployment.providers.add(values, operator)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def server_url(home: Home) -> Iterator[str]:
    """The real app over real HTTP on 127.0.0.1, served from a background thread (for the
    CLI's --server paths)."""
    app = create_app({"TESTING": True}, deployment=home.deployment)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
