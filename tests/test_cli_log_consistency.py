"""Tests of ``custos log consistency`` (commands/log.py): a checkpoint kept earlier by a court or a
witness is shown to be a prefix of today's log, on the local home and against a server over
HTTP, and every way it can fail to be one exits non-zero."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import main
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.note import NoteSigner
from storage.deployment import Deployment, initialise
from tests.conftest import TEST_ORIGIN, Home, make_config


def grow(deployment: Deployment, entries: int = 3) -> bytes:
    """Append ``entries`` events and sign a checkpoint that covers them; return its note."""
    operator = deployment.principals.get("operator").actor
    for _ in range(entries):
        deployment.principals.add(f"witness-{os.urandom(4).hex()}", "court", operator)
    return deployment.ledger.checkpoint(covering=deployment.ledger.size() - 1).note


@pytest.fixture
def known(home: Home, tmp_path: Path) -> Path:
    """A checkpoint a court kept, after which the log grew."""
    path = tmp_path / "known-checkpoint"
    path.write_bytes(grow(home.deployment, 2))
    grow(home.deployment, 5)
    return path


def forged(home: Home, tmp_path: Path, size: int, root: bytes) -> Path:
    """A checkpoint signed with the log's own key over a tree the log never had."""
    note = sign_checkpoint(
        Checkpoint(TEST_ORIGIN, size, root), [home.deployment.keys.current.signer]
    )
    path = tmp_path / "forged-checkpoint"
    path.write_bytes(note)
    return path


def consistency(runner: CliRunner, known: Path, *extra: str) -> Result:
    return runner.invoke(main, ["log", "consistency", "--known-checkpoint", str(known), *extra])


def verdict(result: Result) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def home_key(home: Home) -> str:
    return home.deployment.keys.current.verifier_key


# -- on the local home ---------------------------------------------------------------------------


def test_a_checkpoint_kept_earlier_is_a_prefix_of_todays_log(
    runner: CliRunner, home: Home, known: Path
) -> None:
    result = consistency(runner, known, "--json")

    assert result.exit_code == 0, result.output
    found = verdict(result)
    today = home.deployment.ledger.checkpoint()
    assert found["consistent"] is True and found["problem"] is None
    assert found["known"]["size"] < found["today"]["size"] == today.size
    assert found["proof"], "a proof between different sizes has hashes"
    assert found["keys"]["source"] == "home"
    assert found["keys"]["trusted"] == [home_key(home)]


def test_the_text_verdict_says_consistent_and_names_the_keys(
    runner: CliRunner, home: Home, known: Path
) -> None:
    result = consistency(runner, known)

    assert result.exit_code == 0, result.output
    assert "CONSISTENT: the known checkpoint" in result.stdout
    assert "this home's own keys" in result.stdout and home_key(home) in result.stdout


def test_todays_own_checkpoint_is_a_prefix_of_itself(
    runner: CliRunner, home: Home, tmp_path: Path
) -> None:
    path = tmp_path / "today"
    path.write_bytes(grow(home.deployment))

    found = verdict(consistency(runner, path, "--json"))

    assert found["consistent"] is True and found["known"] == found["today"]


def test_pinned_keys_are_trusted_instead_of_the_homes(
    runner: CliRunner, home: Home, known: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "court.keys"
    key_file.write_text(home_key(home) + "\n")

    by_value = consistency(runner, known, "--key", home_key(home), "--json")
    by_file = consistency(runner, known, "--key", f"@{key_file}")

    assert by_value.exit_code == 0 and verdict(by_value)["keys"]["source"] == "pinned"
    assert by_file.exit_code == 0 and "pinned with --key" in by_file.stdout


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("forked", "the consistency proof from"),
        ("larger-than-today", "a log never shrinks"),
        ("bad-signature", "not one these keys signed"),
        ("another-logs-key", "not one these keys signed"),
        ("not-a-checkpoint", "not one these keys signed"),
    ],
)
def test_a_known_checkpoint_that_is_not_a_prefix_exits_non_zero(
    runner: CliRunner, home: Home, known: Path, tmp_path: Path, case: str, said: str
) -> None:
    kept = home.deployment.ledger.kept_checkpoint(
        int(known.read_text(encoding="utf-8").splitlines()[1])
    )
    today = home.deployment.ledger.checkpoint()
    if case == "forked":
        path = forged(home, tmp_path, kept.size, bytes(32))
    elif case == "larger-than-today":
        path = forged(home, tmp_path, today.size + 10, today.root)
    elif case == "bad-signature":
        note = bytearray(kept.note)
        note[-10] ^= 0x01  # inside the base64 signature
        path = tmp_path / "tampered"
        path.write_bytes(bytes(note))
    elif case == "another-logs-key":
        # A second deployment with the same origin but its own key: a log that forked off
        # with a different signer.
        config = make_config(
            tmp_path / "other", f"sqlite:///{tmp_path / 'other' / 'home' / 'custos.db'}"
        )
        other = initialise(config).deployment
        try:
            path = tmp_path / "other-checkpoint"
            path.write_bytes(grow(other))
        finally:
            other.close()
    else:
        path = tmp_path / "garbage"
        path.write_bytes(b"not a checkpoint\n")

    result = consistency(runner, path, "--json")

    assert result.exit_code == 1, result.output
    found = verdict(result)
    assert found["consistent"] is False and said in found["problem"]
    text = consistency(runner, path)
    assert text.exit_code == 1 and "NOT CONSISTENT: " in text.stdout


def test_a_wrong_pinned_key_exits_non_zero(runner: CliRunner, known: Path) -> None:
    stranger = NoteSigner(TEST_ORIGIN, Ed25519PrivateKey.generate()).verifier.verifier_key()

    result = consistency(runner, known, "--key", stranger, "--json")

    assert result.exit_code == 1, result.output
    assert "not one these keys signed" in verdict(result)["problem"]


def test_a_malformed_pinned_key_is_a_usage_error(runner: CliRunner, known: Path) -> None:
    result = consistency(runner, known, "--key", "not-a-key")

    assert result.exit_code == 2 and "--key" in result.output


# -- against a server over HTTP ------------------------------------------------------------------


def test_against_a_server_the_verdict_says_the_key_came_from_the_server(
    runner: CliRunner, home: Home, known: Path, server_url: str
) -> None:
    result = consistency(runner, known, "--server", server_url)
    as_json = consistency(runner, known, "--server", server_url, "--json")

    assert result.exit_code == 0, result.output
    assert "CONSISTENT: " in result.stdout
    assert f"fetched from {server_url} itself, not pinned" in result.stdout
    found = verdict(as_json)
    assert found["consistent"] is True and found["log"] == server_url
    assert found["keys"] == {
        "source": "server",
        "note": found["keys"]["note"],
        "trusted": [home_key(home)],
    }


def test_against_a_server_pinned_keys_are_preferred(
    runner: CliRunner, home: Home, known: Path, server_url: str
) -> None:
    result = consistency(runner, known, "--server", server_url, "--key", home_key(home), "--json")

    assert result.exit_code == 0, result.output
    found = verdict(result)
    assert found["consistent"] is True and found["keys"]["source"] == "pinned"
    assert found["today"]["size"] == home.deployment.ledger.checkpoint().size


def test_against_a_server_a_forked_checkpoint_exits_non_zero(
    runner: CliRunner, home: Home, known: Path, server_url: str, tmp_path: Path
) -> None:
    fork = forged(home, tmp_path, 3, bytes(range(32)))

    result = consistency(runner, fork, "--server", server_url, "--key", home_key(home))

    assert result.exit_code == 1, result.output
    assert "NOT CONSISTENT: the consistency proof from 3 to " in result.stdout


def test_an_unreachable_server_fails_cleanly(runner: CliRunner, known: Path) -> None:
    result = consistency(runner, known, "--server", "http://127.0.0.1:9")

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "cannot reach the server" in result.output
