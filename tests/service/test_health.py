"""Tests of liveness and readiness (service/health.py): /healthz answers whatever storage does;
/readyz is 200 while the database, the object store and the signing key are usable, and 503
naming what is not, without saying why (that goes to the log)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service import create_app
from tests.conftest import Home

READY = {"database": "ok", "object_store": "ok", "signing_key": "ok"}


def not_ready(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"].isdigit()
    body: dict[str, Any] = response.get_json()
    return body


@contextmanager
def moved_away(path: Path) -> Iterator[None]:
    """``path`` renamed for the duration (a folder or file gone), then put back."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    try:
        yield
    finally:
        if path.is_dir():
            shutil.rmtree(path)
        aside.rename(path)


def test_liveness_answers_without_touching_anything(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_names_each_check_on_each_database(home_on_each_database: Home) -> None:
    client = create_app(
        {"TESTING": True}, deployment=home_on_each_database.deployment
    ).test_client()
    client.get("/v1/log/checkpoint")  # the store now holds a checkpoint that the database names

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": READY}


def test_not_ready_without_the_database_while_still_alive(home: Home, client: FlaskClient) -> None:
    database = home.config.home / "custos.db"
    # Closing every connection folds the WAL into the file, so the file alone is the database.
    home.deployment.engine.dispose()
    with moved_away(database):
        try:
            body = not_ready(client.get("/readyz"))
            alive = client.get("/healthz")
        finally:
            # The engine made an empty database in its place: close it, remove it.
            home.deployment.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                database.with_name(database.name + suffix).unlink(missing_ok=True)

    assert body["checks"] == {**READY, "database": "failed"}
    assert "database" in body["detail"]
    assert str(home.config.home) not in body["detail"]
    assert alive.status_code == 200
    assert client.get("/readyz").status_code == 200


def test_not_ready_when_the_store_folder_is_gone(home: Home, client: FlaskClient) -> None:
    assert client.get("/v1/log/checkpoint").status_code == 200

    with moved_away(home.config.home / "objects"):
        body = not_ready(client.get("/readyz"))

    assert body["checks"] == {**READY, "object_store": "failed"}
    assert client.get("/readyz").status_code == 200


def test_not_ready_when_the_signing_key_cannot_be_loaded(home: Home) -> None:
    client = create_app({"TESTING": True}, deployment=home.deployment).test_client()

    with moved_away(home.config.keys_dir):
        body = not_ready(client.get("/readyz"))

    assert body["checks"] == {**READY, "signing_key": "failed"}
    assert client.get("/readyz").status_code == 200


def test_health_endpoints_are_documented_and_public(client: FlaskClient) -> None:
    paths = client.get("/v1/openapi.json").get_json()["paths"]

    assert set(paths["/healthz"]["get"]["responses"]) >= {"200"}
    assert set(paths["/readyz"]["get"]["responses"]) >= {"200", "503"}
    assert "security" not in paths["/healthz"]["get"]
    assert "security" not in paths["/readyz"]["get"]
