"""Tests of the ``custos`` command (cli.py and commands/), run in-process through click's
CliRunner."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import main
from custody import merkle
from custody.checkpoint import open_checkpoint
from custody.note import NoteVerifier
from service import create_app
from storage.config import load_config
from storage.deployment import Deployment, open_deployment
from tests.conftest import Home, bearer
from tests.factories import failed, json_lines, json_object, ok

TOKEN = re.compile(r"^custos_[A-Za-z0-9_-]{43,}$")


def entry_types(deployment: Deployment) -> list[str]:
    ledger = deployment.ledger
    return [json.loads(ledger.entry(i))["type"] for i in range(ledger.size())]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CUSTOS_* setting leaks in from the environment running the tests."""
    for name in list(os.environ):
        if name.startswith("CUSTOS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fresh_home(tmp_path: Path, clean_env: None) -> Path:
    return tmp_path / "fresh"


# -- init ----------------------------------------------------------------------------------


def test_init_twice_changes_nothing_the_second_time(fresh_home: Path) -> None:
    runner = CliRunner()

    first = json_object(runner.invoke(main, ["--home", str(fresh_home), "init", "--json"]))
    keys = {p.name: p.read_bytes() for p in (fresh_home / "keys").iterdir()}
    database = fresh_home / "custos.db"
    database_size = database.stat().st_size
    config_text = (fresh_home / "custos.toml").read_text()

    second = json_object(runner.invoke(main, ["--home", str(fresh_home), "init", "--json"]))
    again = ok(runner.invoke(main, ["--home", str(fresh_home), "init"]))

    assert first["created"] is True
    assert TOKEN.match(first["operator_token"])
    assert second["created"] is False
    assert not second.get("operator_token")
    assert (second["key"], second["origin"]) == (first["key"], first["origin"])
    assert {p.name: p.read_bytes() for p in (fresh_home / "keys").iterdir()} == keys
    assert database.stat().st_size == database_size
    assert (fresh_home / "custos.toml").read_text() == config_text
    assert "token" not in again.stdout
    assert first["operator_token"] not in again.output
    assert "nothing changed" in again.stdout
    deployment = open_deployment(load_config(fresh_home))
    try:
        assert entry_types(deployment) == ["principal.created"]
    finally:
        deployment.close()


def test_init_takes_the_origin_once(fresh_home: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(fresh_home)]

    first = json_object(runner.invoke(main, [*home, "init", "--origin", "ex.org/log", "--json"]))
    message = failed(runner.invoke(main, [*home, "init", "--origin", "other.org/log"]))

    assert first["origin"] == "ex.org/log"
    assert first["key"].startswith("ex.org/log+")
    assert "cannot change" in message


def test_init_rejects_an_invalid_origin(fresh_home: Path) -> None:
    message = failed(
        CliRunner().invoke(main, ["--home", str(fresh_home), "init", "--origin", "bad origin"])
    )

    assert "not a valid log origin" in message


def test_init_with_a_passphrase_encrypts_the_key(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    home = ["--home", str(fresh_home)]
    monkeypatch.setenv("CUSTOS_KEY_PASSPHRASE", "correct horse battery staple")
    ok(runner.invoke(main, [*home, "init"]))
    [pem] = (fresh_home / "keys").glob("*.pem")
    assert b"ENCRYPTED" in pem.read_bytes().split(b"\n", 1)[0]
    key = ok(runner.invoke(main, [*home, "log", "key"])).stdout

    monkeypatch.delenv("CUSTOS_KEY_PASSPHRASE")
    message = failed(runner.invoke(main, [*home, "log", "key"]))
    assert "CUSTOS_KEY_PASSPHRASE" in message
    assert "Traceback" not in message

    monkeypatch.setenv("CUSTOS_KEY_PASSPHRASE", "wrong")
    assert "cannot load the key" in failed(runner.invoke(main, [*home, "log", "key"]))

    monkeypatch.setenv("CUSTOS_KEY_PASSPHRASE", "correct horse battery staple")
    assert ok(runner.invoke(main, [*home, "log", "key"])).stdout == key


def test_a_command_on_an_uninitialised_home_says_to_run_init(fresh_home: Path) -> None:
    message = failed(CliRunner().invoke(main, ["--home", str(fresh_home), "log", "key"]))

    assert "custos init" in message


# -- principals ----------------------------------------------------------------------------


def test_principal_add_prints_a_working_token_once(runner: CliRunner, home: Home) -> None:
    added = json_object(
        runner.invoke(main, ["principal", "add", "alice", "--role", "examiner", "--json"])
    )

    assert (added["name"], added["role"], added["provider"]) == ("alice", "examiner", None)
    assert TOKEN.match(added["token"])
    assert len(base64.urlsafe_b64decode(added["token"].removeprefix("custos_") + "=")) >= 32
    deployment = open_deployment(home.config)
    try:
        client = create_app({"TESTING": True}, deployment=deployment).test_client()
        assert client.get("/v1/log/entries/0", headers=bearer(added["token"])).status_code == 200
        types = entry_types(deployment)
        assert types[-1] == "principal.created"
        last = json.loads(deployment.ledger.entry(len(types) - 1))
        assert last["subject"] == {"kind": "principal", "id": added["id"]}
        assert last["actor"]["id"] == home.deployment.principals.get("operator").id
    finally:
        deployment.close()
    listed = json_lines(runner.invoke(main, ["principal", "list", "--json"]))
    assert all("token" not in p for p in listed)


def test_principal_add_keeps_an_email_address_for_alerts_and_refuses_a_bad_one(
    runner: CliRunner, home: Home
) -> None:
    size = home.deployment.ledger.size()
    message = failed(
        runner.invoke(
            main, ["principal", "add", "bob", "--role", "court", "--email", "Bob <bob@court>"]
        )
    )
    assert "email" in message and home.deployment.ledger.size() == size

    added = json_object(
        runner.invoke(
            main,
            [
                "principal",
                "add",
                "bob",
                "--role",
                "court",
                "--email",
                "bob@court.example",
                "--json",
            ],
        )
    )

    assert added["email"] == "bob@court.example"
    assert home.deployment.principals.get("bob").email == "bob@court.example"
    # The address stays with the principal, out of the ledger.
    assert "bob@court.example" not in home.deployment.ledger.entry(size).decode()


def test_principal_add_and_name_give_a_display_name_the_ledger_commits_to(
    runner: CliRunner, home: Home
) -> None:
    size = home.deployment.ledger.size()
    add = ["principal", "add", "ana", "--role", "examiner", "--display-name", "Dr Ana Ruiz"]
    added = json_object(runner.invoke(main, [*add, "--json"]))
    named = json_object(runner.invoke(main, ["principal", "name", "ana", "Prof Ana", "--json"]))

    assert (added["display_name"], named["display_name"]) == ("Dr Ana Ruiz", "Prof Ana")
    assert home.deployment.principals.get("ana").display_name == "Prof Ana"
    events = [json.loads(home.deployment.ledger.entry(i)) for i in (size, size + 1)]
    assert [e["type"] for e in events] == ["principal.created", "principal.named"]
    assert all("name_commitment" in e["data"] and "Ana" not in json.dumps(e) for e in events)
    message = failed(runner.invoke(main, ["principal", "name", "ana", " padded"]))
    assert "display name" in message and home.deployment.ledger.size() == size + 2


def test_principal_add_of_a_duplicate_name_fails_cleanly(runner: CliRunner, home: Home) -> None:
    ok(runner.invoke(main, ["principal", "add", "alice", "--role", "examiner"]))
    size = home.deployment.ledger.size()

    message = failed(runner.invoke(main, ["principal", "add", "alice", "--role", "court"]))

    assert "alice" in message and "exists" in message
    assert home.deployment.ledger.size() == size


def test_principal_add_rejects_an_unknown_role(runner: CliRunner, home: Home) -> None:
    size = home.deployment.ledger.size()

    result = runner.invoke(main, ["principal", "add", "alice", "--role", "superuser"])

    assert result.exit_code == 2
    assert "superuser" in result.output
    assert home.deployment.ledger.size() == size


def test_principal_add_of_a_provider_needs_an_existing_provider(
    runner: CliRunner, home: Home
) -> None:
    message = failed(runner.invoke(main, ["principal", "add", "acme", "--role", "provider"]))
    assert "provider" in message

    operator = home.deployment.principals.get("operator").actor
    acme = home.deployment.providers.add(
        {
            "name": "Acme",
            "jurisdiction": "IE",
            "legal_representative": "Acme Legal",
            "contact": "legal@acme.example",
        },
        operator,
    )
    unknown = ["principal", "add", "acme", "--role", "provider", "--provider", "prv_1"]
    assert "no provider prv_1" in failed(runner.invoke(main, unknown))
    added = json_object(
        runner.invoke(
            main,
            ["principal", "add", "acme", "--role", "provider", "--provider", acme.id, "--json"],
        )
    )
    assert added["provider"] == acme.id


def test_principal_list_prints_one_object_per_line(runner: CliRunner) -> None:
    added = ["principal", "add", "alice", "--role", "examiner", "--display-name", "Alice Reis"]
    ok(runner.invoke(main, added))
    ok(runner.invoke(main, ["principal", "add", "bob", "--role", "court"]))

    listed = json_lines(runner.invoke(main, ["principal", "list", "--json"]))

    assert [(p["name"], p["role"]) for p in listed] == [
        ("operator", "admin"),
        ("alice", "examiner"),
        ("bob", "court"),
    ]
    assert all(p["revoked_at"] is None for p in listed)
    header, *rows = ok(runner.invoke(main, ["principal", "list"])).stdout.splitlines()
    assert header.split() == ["NAME", "DISPLAY", "NAME", "ROLE", "ID", "STATE"]
    assert [row.split()[:3] for row in rows] == [
        ["operator", "-", "admin"],
        ["alice", "Alice", "Reis"],
        ["bob", "-", "court"],
    ]


def test_principal_revoke_records_an_event_and_the_token_stops_working(
    runner: CliRunner, home: Home
) -> None:
    token = json_object(
        runner.invoke(main, ["principal", "add", "alice", "--role", "examiner", "--json"])
    )["token"]
    client = create_app({"TESTING": True}, deployment=home.deployment).test_client()
    assert client.get("/v1/log/entries/0", headers=bearer(token)).status_code == 200

    revoked = json_object(runner.invoke(main, ["principal", "revoke", "alice", "--json"]))

    assert revoked["name"] == "alice" and revoked["revoked_at"]
    assert entry_types(home.deployment)[-1] == "principal.revoked"
    assert client.get("/v1/log/entries/0", headers=bearer(token)).status_code == 401
    listed = json_lines(runner.invoke(main, ["principal", "list", "--json"]))
    assert [p["revoked_at"] is not None for p in listed] == [False, True]
    assert "revoked already" in failed(runner.invoke(main, ["principal", "revoke", "alice"]))
    assert "no principal" in failed(runner.invoke(main, ["principal", "revoke", "nobody"]))


@pytest.mark.parametrize(
    "command",
    [
        ["principal", "add", "mallory", "--role", "admin"],
        ["principal", "revoke", "operator"],
        ["key", "rotate"],
    ],
)
def test_a_non_admin_may_not_act_as_admin(
    runner: CliRunner, home: Home, command: list[str]
) -> None:
    ok(runner.invoke(main, ["principal", "add", "alice", "--role", "examiner"]))
    size = home.deployment.ledger.size()
    keys = sorted(p.name for p in home.config.keys_dir.iterdir())

    message = failed(runner.invoke(main, [*command, "--as", "alice"]))

    assert "the examiner role may not" in message and "admin may" in message
    assert home.deployment.ledger.size() == size
    assert sorted(p.name for p in home.config.keys_dir.iterdir()) == keys
    assert [p.name for p in home.deployment.principals.list()] == ["operator", "alice"]


def test_a_revoked_or_unknown_admin_may_not_act(runner: CliRunner, home: Home) -> None:
    ok(runner.invoke(main, ["principal", "add", "root2", "--role", "admin"]))
    ok(runner.invoke(main, ["principal", "revoke", "root2"]))
    size = home.deployment.ledger.size()

    revoked = failed(runner.invoke(main, ["key", "rotate", "--as", "root2"]))
    unknown = failed(runner.invoke(main, ["principal", "add", "x", "--role", "court", "--as", "y"]))

    assert "root2" in revoked
    assert "'y'" in unknown
    assert home.deployment.ledger.size() == size


# -- log -----------------------------------------------------------------------------------


def test_log_key_prints_the_key_alone_on_one_line(runner: CliRunner, home: Home) -> None:
    result = ok(runner.invoke(main, ["log", "key"]))

    assert result.stdout == home.deployment.keys.current.verifier_key + "\n"
    NoteVerifier.from_key(result.stdout.strip())
    obj = json_object(runner.invoke(main, ["log", "key", "--json"]))
    assert obj == {"key": result.stdout.strip(), "origin": home.deployment.keys.origin}


def test_log_checkpoint_prints_a_verifiable_checkpoint(runner: CliRunner, home: Home) -> None:
    verifier = NoteVerifier.from_key(ok(runner.invoke(main, ["log", "key"])).stdout.strip())

    text = ok(runner.invoke(main, ["log", "checkpoint"])).stdout
    obj = json_object(runner.invoke(main, ["log", "checkpoint", "--json"]))

    checkpoint, _ = open_checkpoint(text.encode(), [verifier], home.deployment.keys.origin)
    assert checkpoint.size == home.deployment.ledger.size()
    assert obj["note"] == text
    assert (obj["size"], obj["root"]) == (checkpoint.size, checkpoint.root.hex())


def test_log_prove_gives_an_inclusion_proof_that_verifies(runner: CliRunner, home: Home) -> None:
    for name in ("alice", "bob", "carol"):
        ok(runner.invoke(main, ["principal", "add", name, "--role", "court"]))
    checkpoint = json_object(runner.invoke(main, ["log", "checkpoint", "--json"]))
    size, root = checkpoint["size"], bytes.fromhex(checkpoint["root"])

    for index in range(size):
        proof = json_object(
            runner.invoke(
                main, ["log", "prove", "--index", str(index), "--tree-size", str(size), "--json"]
            )
        )
        assert (proof["index"], proof["tree_size"]) == (index, size)
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        leaf = merkle.leaf_hash(home.deployment.ledger.entry(index))
        merkle.verify_inclusion(leaf, index, size, hashes, root)

    latest = json_object(runner.invoke(main, ["log", "prove", "--index", "0", "--json"]))
    assert latest["tree_size"] == home.deployment.ledger.size()


def test_log_prove_of_an_impossible_index_fails_cleanly(runner: CliRunner, home: Home) -> None:
    size = home.deployment.ledger.size()

    message = failed(runner.invoke(main, ["log", "prove", "--index", str(size)]))
    beyond = failed(
        runner.invoke(main, ["log", "prove", "--index", "0", "--tree-size", str(size + 5)])
    )

    assert "not below tree size" in message
    assert "beyond" in beyond


# -- audit and key rotation ----------------------------------------------------------------


def test_audit_is_ok_on_a_healthy_home(runner: CliRunner, home: Home) -> None:
    ok(runner.invoke(main, ["principal", "add", "alice", "--role", "examiner"]))
    ok(runner.invoke(main, ["log", "checkpoint"]))

    text = ok(runner.invoke(main, ["audit"])).stdout
    report = json_object(runner.invoke(main, ["audit", "--json"]))

    assert text.startswith("ok:")
    assert report["ok"] is True and report["findings"] == []
    assert report["size"] == home.deployment.ledger.size()
    assert report["checkpoints"] >= 1


def test_key_rotate_then_audit_is_still_ok(
    runner: CliRunner, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_CHECKPOINT_INTERVAL", "0")
    old_key = ok(runner.invoke(main, ["log", "key"])).stdout.strip()
    ok(runner.invoke(main, ["log", "checkpoint"]))

    rotated = json_object(runner.invoke(main, ["key", "rotate", "--json"]))
    handover = json_object(runner.invoke(main, ["log", "checkpoint", "--json"]))

    assert rotated["old"] == old_key
    new_key = ok(runner.invoke(main, ["log", "key"])).stdout.strip()
    assert new_key == rotated["new"] != old_key
    assert entry_types(home.deployment)[rotated["index"]] == "key.rotated"
    assert handover["size"] == rotated["index"] + 1
    for key in (old_key, new_key):
        open_checkpoint(handover["note"].encode(), [NoteVerifier.from_key(key)])
    assert ok(runner.invoke(main, ["audit"])).stdout.startswith("ok:")
    report = json_object(runner.invoke(main, ["audit", "--json"]))
    assert report["ok"] is True and report["checkpoints"] == 2


def test_log_keys_prints_every_key_with_where_it_is_valid_ready_to_pin(
    runner: CliRunner, home: Home, tmp_path: Path
) -> None:
    old_key = ok(runner.invoke(main, ["log", "key"])).stdout.strip()
    rotated = json_object(runner.invoke(main, ["key", "rotate", "--json"]))

    text = ok(runner.invoke(main, ["log", "keys"])).stdout
    listed = json_lines(runner.invoke(main, ["log", "keys", "--json"]))

    index = rotated["index"]
    keys = [line for line in text.splitlines() if not line.startswith("#")]
    assert keys == [old_key, rotated["new"]]
    assert f"# valid from the start to before index {index}" in text
    assert f"# valid from index {index}, current" in text
    assert [(k["key"], k["since"], k["until"]) for k in listed] == [
        (old_key, None, index),
        (rotated["new"], index, None),
    ]
    pinned = tmp_path / "pinned-keys.txt"
    pinned.write_text(text, encoding="utf-8")
    from custody.verify.__main__ import read_pinned_keys

    assert read_pinned_keys([f"@{pinned}"]) == keys


def test_the_command_line_starts_without_the_web_app_or_the_s3_client() -> None:
    # Flask with every blueprint, and boto3, take most of a second to load: commands on a
    # local home with a filesystem store need neither, so they load only when used.
    probe = (
        "import sys, cli; "
        "print(sorted(m for m in ('flask', 'flask_smorest', 'boto3', 'service.app') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )

    assert loaded.stdout.strip() == "[]"


def loaded_by(home: Home, *args: str) -> tuple[str, list[str]]:
    """What ``custos ARGS`` prints, run in a fresh process, and which of the slow libraries
    (SQLAlchemy, Alembic, Flask, boto3, the holiday calendars) and of the larger parts of
    Custos (the verifier) it loaded."""
    probe = (
        "import sys\n"
        "from cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "slow = ('sqlalchemy', 'alembic', 'flask', 'boto3', 'holidays', 'custody.verify')\n"
        "print(sorted(m for m in slow if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "--home", str(home.config.home), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
        env={**os.environ, "CUSTOS_DATABASE_URL": home.config.database_url},
    )
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))


def test_help_and_log_key_start_without_the_database_or_the_web_app(home: Home) -> None:
    # SQLAlchemy and Alembic take longer to load than these commands take to run.
    help_text, for_help = loaded_by(home, "--help")
    key, for_key = loaded_by(home, "log", "key")

    assert "principal" in help_text and for_help == []
    assert key.strip() == home.deployment.keys.current.verifier_key and for_key == []


def test_log_key_reads_the_keys_without_the_database(home: Home) -> None:
    (home.config.home / "custos.db").unlink()

    key, _ = loaded_by(home, "log", "key")

    assert key.strip() == home.deployment.keys.current.verifier_key


def test_every_command_in_the_table_is_the_command_it_names() -> None:
    from cli import COMMANDS

    for name in COMMANDS:
        command = main.get_command(click.Context(main), name)

        assert command is not None and command.name == name
        assert command.short_help == COMMANDS[name][1]


def test_a_command_that_reads_the_database_checks_its_schema_without_alembic(home: Home) -> None:
    listed, loaded = loaded_by(home, "principal", "list", "--json")

    assert [json.loads(line)["name"] for line in listed.splitlines()] == ["operator"]
    assert loaded == ["sqlalchemy"]


def test_the_unencrypted_key_warning_comes_from_init_and_audit_once_and_from_nothing_else(
    tmp_path: Path,
) -> None:
    """Each process its own, as a person runs them: the warning goes to standard error, once,
    from ``init`` and ``audit``; other commands, and an ingest's progress line, never carry it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOS_")}
    env["CUSTOS_HOME"] = str(tmp_path / "home")
    image = tmp_path / "disk.dd"
    image.write_bytes(b"an image" * 1000)

    def custos(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from cli import main; main()", *args],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=Path(__file__).parents[1],
            timeout=120,
        )

    warning = "is stored unencrypted"
    first = custos("init")
    custos("principal", "add", "alice", "--role", "examiner")
    custos("case", "open", "C", "--title", "t", "--authority", "a", "--as", "alice")
    quiet = [
        custos("log", "key"),
        custos("ingest", str(image), "--case", "C", "--exhibit", "E", "--as", "alice"),
        custos("evidence", "list", "--as", "alice"),
    ]
    audit = custos("audit")

    assert first.stderr.count(warning) == 1 and warning not in first.stdout
    assert audit.stderr.count(warning) == 1 and warning not in audit.stdout
    for done in quiet:
        assert warning not in done.stderr + done.stdout


def test_every_missing_option_is_named_at_once(
    runner: CliRunner, home: Home, tmp_path: Path
) -> None:
    image = tmp_path / "disk.dd"
    image.write_bytes(b"an image")
    size = home.deployment.ledger.size()

    ingest = runner.invoke(main, ["ingest", str(image)])
    provider = runner.invoke(main, ["provider", "add", "MailCo", "--contact", "x@example.org"])
    act = runner.invoke(main, ["evidence", "event", "ev_0123456789abcdef", "transferred"])

    assert ingest.exit_code == 2
    assert "Missing, and required: '--case', '--exhibit'." in ingest.output
    assert provider.exit_code == 2
    assert "'--jurisdiction', '--legal-representative'." in provider.output
    # An act's fields are the domain's to check, every one at once (as the act table says).
    assert act.exit_code != 0 and "Missing, and required" not in act.output
    assert home.deployment.ledger.size() == size


def test_one_missing_option_or_a_request_for_help_is_as_click_says(runner: CliRunner) -> None:
    one = runner.invoke(main, ["evidence", "register", "--case", "C", "--exhibit", "E"])
    helped = runner.invoke(main, ["ingest", "--help"])

    assert one.exit_code == 2 and "Missing option '--description'" in one.output
    assert helped.exit_code == 0 and "--exhibit" in helped.output
