"""A database that goes away: every request is 503 problem+json with Retry-After (never a 500),
nothing is half-done, and once the database is back the ledger audits clean and holds exactly
what it held before.

SQLite goes away when its directory does (the engine's pooled connections closed first, as a
restarted worker's would be); PostgreSQL when a TCP proxy in front of it cuts every connection
and refuses new ones, as a failover or a network partition does.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

from custody.audit import audit_ledger
from custody.errors import StorageError
from custody.events import Actor, NewEvent, Subject
from custody.interfaces import ObjectStore, StagedUpload, StoredObject
from custody.scrub import ORPHAN, scrub_objects
from service import create_app
from storage.deployment import Deployment, initialise
from tests.conftest import bearer, make_config
from tests.factories import SEIZURE, in_case

DIGITAL = {"kind": "digital", "case": "C-1", "exhibit": "E-1", "description": "disk image"}
PHYSICAL = {
    "kind": "physical",
    "case": "C-1",
    "exhibit": "P-1",
    "description": "a phone",
    "seizure": SEIZURE,
}


class Outage(Protocol):
    def attach(self, deployment: Deployment) -> None: ...

    def start(self) -> None: ...

    def end(self) -> None: ...


class SqliteDirectoryGone:
    """The database's directory disappears (an unmounted volume); new connections fail."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.away = directory.with_name(directory.name + "-away")
        self.deployment: Deployment | None = None

    def attach(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def start(self) -> None:
        assert self.deployment is not None
        self.deployment.engine.dispose()
        self.directory.rename(self.away)

    def end(self) -> None:
        if self.away.exists():
            self.away.rename(self.directory)


class CuttableTcpProxy:
    """Forwards TCP connections to ``upstream`` until ``start``: then it closes every one of
    them and closes each new one at once, until ``end``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self.down:
                    client.close()
                    continue
                server = socket.create_connection(self.upstream)
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def attach(self, deployment: Deployment) -> None:
        pass

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def start(self) -> None:
        with self._lock:
            self.down = True
            for end in self._open:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self._open.clear()

    def end(self) -> None:
        with self._lock:
            self.down = False

    def close(self) -> None:
        self.start()
        self.listener.close()


@dataclass
class Site:
    deployment: Deployment
    client: FlaskClient
    outage: Outage
    examiner: dict[str, str]
    approver: Actor

    def snapshot(self) -> tuple[int, list[str]]:
        records = self.deployment.evidence.list(None, None, 1000, None)
        return self.deployment.ledger.size(), [r.id for r in records]

    def assert_consistent(self) -> None:
        d = self.deployment
        ledger = audit_ledger(d.ledger.store, d.objects, d.keys)
        assert ledger.ok, [str(f) for f in ledger.findings]
        objects = scrub_objects(d.evidence, d.objects, d.keys)
        assert objects.ok, [str(f) for f in objects.findings]


def _site(tmp_path: Path, database_url: str, outage: Outage) -> Iterator[Site]:
    deployment = initialise(make_config(tmp_path, database_url)).deployment
    outage.attach(deployment)
    operator = deployment.principals.get("operator").actor
    _, examiner = deployment.principals.add("alice", "examiner", operator)
    approver, _ = deployment.principals.add("judge", "approver", operator)
    in_case(deployment, "C-1", "alice", "judge")
    client = create_app({"TESTING": True}, deployment=deployment).test_client()
    yield Site(deployment, client, outage, bearer(examiner), approver.actor)
    outage.end()
    deployment.close()


def _postgres_site(tmp_path: Path, postgres_url: str) -> Iterator[Site]:
    url = make_url(postgres_url)
    proxy = CuttableTcpProxy((url.host or "127.0.0.1", url.port or 5432))
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield from _site(tmp_path, through, proxy)
    proxy.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """A deployment, its app and an outage to start and end, on each database."""
    if request.param == "postgresql":
        yield from _postgres_site(tmp_path, request.getfixturevalue("postgres_url"))
        return
    directory = tmp_path / "database"
    yield from _site(
        tmp_path, f"sqlite:///{directory / 'custos.db'}", SqliteDirectoryGone(directory)
    )


@pytest.fixture
def postgres_site(tmp_path: Path, postgres_url: str) -> Iterator[Site]:
    yield from _postgres_site(tmp_path, postgres_url)


def assert_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    assert body["status"] == 503 and body["detail"] and "database" not in body["detail"]


def upload(site: Site, content: bytes) -> TestResponse:
    opened = site.client.post("/v1/evidence", json=DIGITAL, headers=site.examiner)
    assert opened.status_code == 201, opened.get_json()
    return site.client.put(opened.get_json()["upload"], data=content, headers=site.examiner)


def test_requests_while_the_database_is_away_are_503_and_change_nothing(site: Site) -> None:
    assert upload(site, b"before the outage").status_code == 201
    before = site.snapshot()

    site.outage.start()
    requests: list[Callable[[], TestResponse]] = [
        lambda: site.client.get("/v1/evidence", headers=site.examiner),
        lambda: site.client.post("/v1/evidence", json=PHYSICAL, headers=site.examiner),
        lambda: site.client.post("/v1/evidence", json=DIGITAL, headers=site.examiner),
        lambda: site.client.get("/v1/log/checkpoint"),
    ]
    for request in requests:
        assert_unavailable(request())
    site.outage.end()

    assert site.snapshot() == before
    site.assert_consistent()
    assert site.client.get("/v1/evidence", headers=site.examiner).status_code == 200
    assert upload(site, b"after the outage").status_code == 201


class LosesTheDatabaseOnCommit:
    """The object store, except that committing a blob also takes the database away: an
    outage between the bytes being stored and their record being written."""

    def __init__(self, objects: ObjectStore, outage: Outage) -> None:
        self.objects = objects
        self.outage = outage

    def stage(self) -> StagedUpload:
        staged = self.objects.stage()
        commit = staged.commit

        def commit_then_lose_the_database(key: str) -> StoredObject:
            stored = commit(key)
            self.outage.start()
            return stored

        staged.commit = commit_then_lose_the_database  # type: ignore[method-assign]
        return staged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.objects, name)


def test_a_database_lost_during_an_ingest_leaves_no_record_and_no_event(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake = site.deployment.intake
    monkeypatch.setattr(intake, "objects", LosesTheDatabaseOnCommit(intake.objects, site.outage))
    before = site.snapshot()

    response = upload(site, b"stored, never recorded")

    assert_unavailable(response)
    site.outage.end()
    assert site.snapshot() == before
    site.assert_consistent()
    # The committed blob is left without a record: the scrub's orphan, a warning only.
    d = site.deployment
    warnings = scrub_objects(d.evidence, d.objects, d.keys).warnings
    assert [w.problem for w in warnings] == [ORPHAN]


def test_a_connection_lost_inside_an_append_rolls_the_whole_append_back(
    postgres_site: Site,
) -> None:
    """PostgreSQL only: SQLite has no server, and a connection it holds keeps working."""
    site = postgres_site
    before = site.snapshot()
    events = [
        NewEvent("evidence.noted", site.approver, Subject("evidence", f"ev_{n:016x}"), {"n": n})
        for n in range(3)
    ]

    with pytest.raises(StorageError), site.deployment.ledger.recording() as recorder:
        recorder.add(events[0])
        site.outage.start()
        for event in events[1:]:
            recorder.add(event)
    site.outage.end()

    assert site.snapshot() == before
    site.assert_consistent()
    appended = site.deployment.ledger.append(events[0])
    assert appended.index == before[0]


def test_an_outage_is_a_storage_error_from_every_store(site: Site) -> None:
    """The principal store (authentication) translates no error itself: the engine's
    translation makes its outage a StorageError too, so it is 503 like the rest."""
    site.outage.start()
    with pytest.raises(StorageError):
        site.deployment.principals.get("operator")
    site.outage.end()
    assert site.deployment.principals.get("operator").name == "operator"
