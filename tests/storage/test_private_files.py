"""The deployment's files are private: set at init, kept as files are created, named by
``custos audit`` when wider, logged (and nothing else) by ``/readyz``."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from service import create_app
from storage.config import Config
from storage.deployment import initialise, open_deployment
from storage.private_files import wider_paths
from tests.conftest import Home, make_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems give: files 0644 and folders 0755 unless told otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def fresh(tmp_path: Path, sqlite_url: str, open_umask: None) -> Iterator[Config]:
    config = make_config(tmp_path, sqlite_url)
    initialise(config).deployment.close()
    yield config


def test_init_makes_the_home_keys_database_and_wal_private(fresh: Config) -> None:
    assert mode(fresh.home) == 0o700
    assert mode(fresh.keys_dir) == 0o700
    for key_file in fresh.keys_dir.iterdir():
        assert mode(key_file) == 0o600, key_file
    assert mode(fresh.config_file) == 0o600
    assert mode(fresh.home / "custos.db") == 0o600
    assert mode(fresh.home / "objects") == 0o700
    deployment = open_deployment(fresh)
    try:
        operator = deployment.principals.get("operator").actor
        deployment.principals.add("alice", "examiner", operator)  # the WAL holds it now
        assert mode(fresh.home / "custos.db-wal") == 0o600
        assert wider_paths(fresh) == []
    finally:
        deployment.close()


def test_stored_objects_are_readable_by_their_owner_alone(home: Home, open_umask: None) -> None:
    stored = home.deployment.objects.put("blobs/sha256/" + "ab" * 32, b"evidence")
    path = home.config.home / "objects" / stored.key
    assert mode(path) == 0o400


def test_init_narrows_a_deployment_made_before(fresh: Config) -> None:
    blob = fresh.home / "objects" / "blobs" / "sha256" / ("cd" * 32)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"old")
    os.chmod(blob, 0o444)
    os.chmod(fresh.home, 0o755)
    os.chmod(fresh.home / "custos.db", 0o644)

    initialise(fresh).deployment.close()

    assert (mode(blob), mode(fresh.home), mode(fresh.home / "custos.db")) == (0o400, 0o700, 0o600)


def test_audit_names_every_path_wider_than_private(runner: CliRunner, home: Home) -> None:
    config = home.config
    os.chmod(config.home, 0o755)
    os.chmod(config.home / "custos.db", 0o644)
    blob = home.deployment.objects.put("blobs/sha256/" + "ef" * 32, b"evidence")
    os.chmod(config.home / "objects" / blob.key, 0o444)

    result = runner.invoke(main, ["audit", "--json"])

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    wide = {Path(w["path"]).name: (w["mode"], w["expected"]) for w in report["wide_paths"]}
    # SQLite gives a WAL it creates the database's mode: it may be named too.
    assert {name: modes for name, modes in wide.items() if "-" not in name} == {
        config.home.name: ("0755", "0700"),
        "custos.db": ("0644", "0600"),
        "ef" * 32: ("0444", "0400"),
    }
    assert report["ok"] is False
    text = runner.invoke(main, ["audit"])
    assert f"FAIL {config.home / 'custos.db'} is 0644, wider than 0600" in text.stderr


def test_readyz_stays_ready_and_logs_wide_paths(
    home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    os.chmod(home.config.home / "custos.db", 0o644)
    client = create_app({"TESTING": True}, deployment=home.deployment).test_client()

    with caplog.at_level(logging.WARNING, logger="custos.health"):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert "custos.db" not in response.get_data(as_text=True)
    assert any("custos.db is 0644" in r.getMessage() for r in caplog.records)
