"""A backup taken as docs/operations.md says, while the deployment is open and in use, restores
into a new home where ``custos audit`` passes and the ledger has the size and root it had when
the backup was taken; the evidence's bytes come back too. On SQLite the database is copied with
SQLite's online backup API; on PostgreSQL with ``pg_dump`` and ``pg_restore``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cli import main
from service import create_app
from storage.config import CONFIG_FILE, load_config
from storage.deployment import open_deployment
from tests.conftest import Home, bearer, require
from tests.factories import in_case, order_document
from tests.service.test_evidence_api import upload

CONTENT = b"seized laptop image " * 1000


def make_history(home: Home) -> tuple[str, str]:
    """Principals, a provider, an ingest, a custody act and a served order; returns the item's
    id and the examiner's name."""
    deployment = home.deployment
    principals = deployment.principals
    operator = principals.get("operator").actor
    examiner = principals.add("alice", "examiner", operator)[1]
    authority = principals.add("pat", "authority", operator)[0].actor
    approver = principals.add("judith", "approver", operator)[0].actor
    in_case(deployment, "CASE-1", "alice", "pat", "judith")
    isp = deployment.providers.add(
        {
            "name": "Example ISP",
            "jurisdiction": "IE",
            "legal_representative": "ISP Legal",
            "contact": "lawful-requests@isp.example",
        },
        operator,
    )
    client = create_app({"TESTING": True}, deployment=deployment).test_client()
    item = upload(client, bearer(examiner), CONTENT)
    sealed = client.post(
        f"/v1/evidence/{item['id']}/events",
        json={"type": "evidence.sealed", "seal": "S-0042"},
        headers=bearer(examiner),
    )
    assert sealed.status_code == 201
    order_id = deployment.orders.draft(order_document(isp.id), authority).stored.id
    deployment.orders.act(order_id, "submit", {}, authority)
    deployment.orders.act(order_id, "approve", {}, approver)
    return item["id"], "alice"


def libpq_url(sqlalchemy_url: str) -> str:
    """The URL for pg_dump and pg_restore: the same server and database, libpq's scheme."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql", query={})
    return url.render_as_string(hide_password=False)


def back_up(home: Home, backup: Path) -> None:
    """docs/operations.md, "Backups": the database first, then the objects, the keys and the
    configuration (objects are written before the rows that name them, so a store copied after
    the database holds everything that copy of the database names)."""
    backup.mkdir()
    url = home.config.database_url
    if url.startswith("sqlite"):
        # SQLite's online backup API (the sqlite3 shell's `.backup`): a consistent copy of an
        # open database, WAL included, while others keep writing.
        source = sqlite3.connect(home.config.home / "custos.db")
        copy = sqlite3.connect(backup / "custos.db")
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
    else:
        schema = make_url(url).query["options"].split("=", 1)[1]
        dump = [
            "pg_dump",
            "--format=custom",
            f"--schema={schema}",
            "--file",
            backup / "custos.dump",
        ]
        subprocess.run([*dump, libpq_url(url)], check=True)
    # Without staging/ (uploads not yet committed) and temporary files, which come and go.
    shutil.copytree(
        home.config.home / "objects",
        backup / "objects",
        ignore=shutil.ignore_patterns("staging", ".tmp-*"),
    )
    shutil.copytree(home.config.keys_dir, backup / "keys")
    shutil.copy2(home.config.config_file, backup / CONFIG_FILE)


@pytest.fixture
def restored_database(home_on_each_database: Home) -> Iterator[str | None]:
    """A fresh PostgreSQL database to restore into (dropped afterwards); None on SQLite."""
    url = home_on_each_database.config.database_url
    if url.startswith("sqlite"):
        yield None
        return
    require(shutil.which("pg_restore") is not None, "pg_dump and pg_restore are not installed")
    name = f"restore_{secrets.token_hex(6)}"
    admin = create_engine(make_url(url).set(query={}), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def restore(backup: Path, new_home: Path, database_url: str | None) -> None:
    """docs/operations.md, "Restore": the files into the new home, then the database."""
    new_home.mkdir(mode=0o700)
    for name in ("objects", "keys"):
        shutil.copytree(backup / name, new_home / name)  # modes kept, as cp -a keeps them
    shutil.copy2(backup / CONFIG_FILE, new_home / CONFIG_FILE)
    if database_url is None:
        shutil.copy2(backup / "custos.db", new_home / "custos.db")
        os.chmod(new_home / "custos.db", 0o600)
    else:
        dump = backup / "custos.dump"
        subprocess.run(
            ["pg_restore", "--no-owner", "--dbname", libpq_url(database_url), dump], check=True
        )


def forget_checkpoints_beyond(new_home: Path, size: int) -> None:
    """docs/operations.md, "Restore": the objects were copied after the database, so they may
    hold checkpoints of the events the restore lost; the restored log would reach those sizes
    with other events, so those checkpoints go."""
    for checkpoint in (new_home / "objects" / "checkpoints").iterdir():
        if int(checkpoint.name) > size:
            checkpoint.unlink()


def custos(new_home: Path, database_url: str | None, *args: str) -> Result:
    env = {"CUSTOS_HOME": str(new_home), "CUSTOS_DATABASE_URL": database_url or ""}
    return CliRunner().invoke(main, ["--home", str(new_home), *args], env=env)


class Writer:
    """Appends events and signs a checkpoint covering each, in a thread, until stopped: the
    deployment in use while the backup is taken."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        deployment = self.home.deployment
        operator = deployment.principals.get("operator").actor
        while not self._stop.is_set():
            deployment.principals.add(f"clerk-{self.written}", "court", operator)
            deployment.ledger.checkpoint(covering=deployment.ledger.size() - 1)
            self.written += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.written < count and self._thread.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert self.written >= count, "the writer stopped"

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_backup_taken_while_in_use_restores_and_passes_the_audit(
    home_on_each_database: Home,
    restored_database: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("CUSTOS_DATABASE_URL", "CUSTOS_STORE", "CUSTOS_HOME"):
        monkeypatch.delenv(variable, raising=False)
    home = home_on_each_database
    evidence_id, examiner = make_history(home)
    ledger = home.deployment.ledger
    before = ledger.size()

    with Writer(home) as writer:
        writer.wait_for(1)
        back_up(home, tmp_path / "backup")
        writer.wait_for(writer.written + 1)
    new_home = tmp_path / "restored"
    restore(tmp_path / "backup", new_home, restored_database)

    audited = custos(new_home, restored_database, "audit", "--json")
    size = json.loads(audited.stdout)["size"]
    forget_checkpoints_beyond(new_home, size)
    config = load_config(new_home, {"CUSTOS_DATABASE_URL": restored_database or ""})
    restored = open_deployment(config)
    restored_root = restored.ledger.root(size)
    # The restored log grows past the sizes the lost events had reached, and checkpoints them.
    operator = restored.principals.get("operator").actor
    while restored.ledger.size() <= ledger.size():
        restored.principals.add(f"after-{restored.ledger.size()}", "court", operator)
    restored.ledger.checkpoint(covering=restored.ledger.size() - 1)
    restored.close()
    regrown = custos(new_home, restored_database, "audit", "--json")
    copy = tmp_path / "exhibit.bin"
    downloaded = custos(
        new_home,
        restored_database,
        "evidence",
        "download",
        evidence_id,
        "--purpose",
        "restore drill",
        "-o",
        str(copy),
        "--as",
        examiner,
    )

    assert audited.exit_code == 0, audited.output
    report = json.loads(audited.stdout)
    assert report["ok"] and report["size"] == size
    # Taken while the writer wrote: some of its events, not all, and the same tree.
    assert before < size < ledger.size()
    assert restored_root == ledger.root(size)
    assert regrown.exit_code == 0, regrown.output
    assert downloaded.exit_code == 0, downloaded.output
    assert copy.read_bytes() == CONTENT
