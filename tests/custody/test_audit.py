"""``custos audit`` catches every way of rewriting history, and passes an honest ledger."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from cli import main
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.events import Actor, NewEvent, Subject
from custody.note import NoteSigner
from storage.deployment import Deployment
from tests.conftest import Home

ACTOR = Actor("pr_x", "examiner")


def run_audit(home: Home) -> tuple[int, dict[str, object]]:
    env = {
        "CUSTOS_HOME": str(home.config.home),
        "CUSTOS_DATABASE_URL": home.config.database_url,
    }
    result = CliRunner().invoke(main, ["audit", "--json"], env=env)
    return result.exit_code, json.loads(result.output.splitlines()[-1])


@pytest.fixture
def busy(home_on_each_database: Home) -> Home:
    """A ledger of 40 events over 4 subjects with two kept checkpoints."""
    ledger = home_on_each_database.deployment.ledger
    ledger.append_batch(
        [
            NewEvent("evidence.noted", ACTOR, Subject("evidence", f"e{i % 4}"), {"n": i})
            for i in range(20)
        ]
    )
    ledger.checkpoint(covering=ledger.size() - 1)
    ledger.append_batch(
        [
            NewEvent("evidence.noted", ACTOR, Subject("evidence", f"e{i % 4}"), {"n": i})
            for i in range(19)
        ]
    )
    ledger.checkpoint(covering=ledger.size() - 1)
    return home_on_each_database


def sql(deployment: Deployment, statement: str, **params: object) -> None:
    with deployment.engine.begin() as connection:
        connection.execute(text(statement), params)


def leaf(deployment: Deployment, index: int) -> bytes:
    return deployment.ledger.entry(index)


def test_an_honest_ledger_passes_the_audit(busy: Home) -> None:
    code, report = run_audit(busy)
    assert code == 0
    assert report["ok"] is True
    assert report["size"] == 40 and report["checkpoints"] == 2


def change_one_byte(d: Deployment) -> None:
    original = leaf(d, 7)
    sql(
        d, "UPDATE ledger_entries SET leaf = :l WHERE idx = 7", l=original.replace(b'"n":', b'"m":')
    )


def change_byte_and_hash(d: Deployment) -> None:
    from custody.merkle import leaf_hash

    forged = leaf(d, 7).replace(b'"n":6', b'"n":9')
    sql(
        d,
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h WHERE idx = 7",
        l=forged,
        h=leaf_hash(forged),
    )


def delete_a_row(d: Deployment) -> None:
    sql(d, "DELETE FROM ledger_entries WHERE idx = 7")


def swap_two_rows(d: Deployment) -> None:
    a, b = d.ledger.store.entries(7, 8)[0], d.ledger.store.entries(12, 13)[0]
    sql(
        d,
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h, subject = :s WHERE idx = 7",
        l=b.leaf,
        h=b.leaf_hash,
        s=b.subject,
    )
    sql(
        d,
        "UPDATE ledger_entries SET leaf = :l, leaf_hash = :h, subject = :s WHERE idx = 12",
        l=a.leaf,
        h=a.leaf_hash,
        s=a.subject,
    )


def replace_checkpoint_in_database(d: Deployment) -> None:
    kept = d.ledger.store.checkpoints()
    sql(d, "UPDATE checkpoints SET note = :n WHERE size = :s", n=kept[1].note, s=kept[0].size)


def replace_checkpoint_in_object_store(d: Deployment) -> None:
    kept = d.ledger.store.checkpoints()[0]
    path = Path(d.config.home, "objects", "checkpoints", str(kept.size))
    os.chmod(path, 0o644)
    forged = Checkpoint(d.ledger.origin, kept.size, b"\x01" * 32)
    path.write_bytes(sign_checkpoint(forged, [d.keys.current.signer]))


def forge_checkpoint_with_another_key(d: Deployment) -> None:
    size = d.ledger.size()
    honest = d.ledger.store.checkpoint(size)
    assert honest is not None
    other = NoteSigner(d.ledger.origin, Ed25519PrivateKey.generate())
    note = sign_checkpoint(Checkpoint(d.ledger.origin, size, honest.root), [other])
    sql(d, "UPDATE checkpoints SET note = :n WHERE size = :s", n=note, s=size)


def truncate_the_log(d: Deployment) -> None:
    sql(d, "DELETE FROM ledger_entries WHERE idx >= 35")
    sql(d, "DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > 35")
    sql(d, "UPDATE ledger_head SET size = 35")


@pytest.mark.parametrize(
    ("tamper", "first_index", "words"),
    [
        (change_one_byte, 7, "leaf bytes do not match"),
        (change_byte_and_hash, 7, "node 1/3 differs"),
        (delete_a_row, 7, "entry missing"),
        (swap_two_rows, 7, "prev"),
        (replace_checkpoint_in_database, 21, "does not state the kept size"),
        (replace_checkpoint_in_object_store, 21, "object store copy differs"),
        (forge_checkpoint_with_another_key, 40, "signature"),
        (truncate_the_log, 35, "is not its last event"),
    ],
)
def test_tampering_is_caught_and_names_the_first_bad_index(
    busy: Home, tamper: Callable[[Deployment], None], first_index: int, words: str
) -> None:
    tamper(busy.deployment)
    code, report = run_audit(busy)
    assert code == 1
    findings = report["findings"]
    assert isinstance(findings, list)
    assert findings[0]["index"] == first_index, findings
    assert words in findings[0]["problem"], findings


def test_a_truncated_log_contradicts_its_kept_checkpoint(busy: Home) -> None:
    truncate_the_log(busy.deployment)
    _, report = run_audit(busy)
    problems = [f["problem"] for f in report["findings"]]  # type: ignore[union-attr]
    assert "checkpoint 40: covers 40 entries but the log has 35" in problems


def test_audit_prints_the_first_finding_for_people(busy: Home) -> None:
    delete_a_row(busy.deployment)
    env = {"CUSTOS_HOME": str(busy.config.home), "CUSTOS_DATABASE_URL": busy.config.database_url}
    result = CliRunner().invoke(main, ["audit"], env=env)
    assert result.exit_code == 1
    assert "FAIL index 7: entry missing" in result.output


@pytest.mark.parametrize("tamper", [None, change_one_byte, delete_a_row, swap_two_rows])
def test_the_block_parallel_audit_finds_the_same_as_one_block(
    busy: Home, tamper: Callable[[Deployment], None] | None
) -> None:
    """Blocks of 4 leaves put chains, nodes and checkpoints across blocks and workers."""
    from custody.audit import audit_ledger

    deployment = busy.deployment
    if tamper is not None:
        tamper(deployment)
    store, objects, keys = deployment.ledger.store, deployment.objects, deployment.keys
    whole = audit_ledger(store, objects, keys)
    blocks = audit_ledger(store, objects, keys, block_level=2)
    assert blocks.ok == whole.ok == (tamper is None)
    if tamper is None:
        assert (blocks.size, blocks.subjects, blocks.nodes) == (
            whole.size,
            whole.subjects,
            whole.nodes,
        )
    else:
        assert blocks.first is not None and whole.first is not None
        assert blocks.first.index == whole.first.index
