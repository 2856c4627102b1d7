"""Group commit (custody/ledger.py): writers of one process that arrive while an append
transaction is open share its commit, and one that fails takes back only its own writes;
writers that need a checkpoint at the same moment, in threads or in separate processes, share
one signature, and every receipt verifies against the checkpoint it names. Run on SQLite and
on PostgreSQL: the database is where separate processes meet."""

from __future__ import annotations

import io
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

import custody.ledger
from custody.audit import audit_ledger
from custody.events import Actor, NewEvent, Subject
from custody.interfaces import KeptCheckpoint
from custody.verify.receipt import verify_receipt
from storage.config import Config
from storage.deployment import Deployment, open_deployment
from tests.conftest import Home
from tests.factories import in_case

WRITERS = 6
PROCESSES = 3
THREADS = 3
INGESTS_EACH = 4
DIGITAL = {"kind": "digital", "case": "CASE-G", "exhibit": "G-1", "description": "group"}


@contextmanager
def counting_signatures() -> Iterator[list[int]]:
    """Count the checkpoints this process signs (their sizes), wherever it signs them."""
    signed: list[int] = []
    real = custody.ledger.sign_checkpoint

    def sign(checkpoint: Any, signers: Any) -> bytes:
        signed.append(checkpoint.size)
        note: bytes = real(checkpoint, signers)
        return note

    custody.ledger.sign_checkpoint = sign  # type: ignore[assignment]
    try:
        yield signed
    finally:
        custody.ledger.sign_checkpoint = real


def _note(deployment: Deployment, subject: str) -> int:
    actor = Actor("pr_group", "examiner")
    event = NewEvent("evidence.noted", actor, Subject("evidence", subject), {"text": subject})
    return deployment.ledger.append(event).index


def _fresh_ledger(deployment: Deployment) -> custody.ledger.Ledger:
    """A second ledger on the same stores, as another worker has: nothing cached."""
    return custody.ledger.Ledger(
        deployment.ledger.store, deployment.objects, deployment.keys, group_window=0.0
    )


class Refused(Exception):
    pass


def test_writers_arriving_during_an_append_share_its_commit_and_a_failure_stays_its_own(
    home_on_each_database: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = home_on_each_database.deployment
    ledger = deployment.ledger
    transactions = []
    appending = ledger.store.appending

    def counted() -> Any:
        transactions.append(1)
        return appending()

    monkeypatch.setattr(ledger.store, "appending", counted)
    before = ledger.size()
    actor = Actor("pr_group", "examiner")
    inside = threading.Event()

    def note(text: str) -> NewEvent:
        return NewEvent("evidence.noted", actor, Subject("evidence", f"ev_{text}"), {"text": text})

    def first() -> None:
        with ledger.recording() as recorder:
            recorder.add(note("first"))
            inside.set()
            deadline = time.monotonic() + 60
            while ledger._waiting < WRITERS and time.monotonic() < deadline:
                time.sleep(0.01)

    def writer(number: int) -> str:
        try:
            with ledger.recording() as recorder:
                recorder.add(note(f"w{number}"))
                if number == 2:
                    recorder.flush()  # its entries are written, then taken back
                    raise Refused()
        except Refused:
            return "refused"
        return "appended"

    leader = threading.Thread(target=first)
    leader.start()
    assert inside.wait(60)
    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(writer, range(WRITERS)))
    leader.join(60)

    assert len(transactions) == 1  # one transaction, one commit, for every writer
    assert outcomes.count("refused") == 1
    texts = [json.loads(ledger.entry(i))["data"]["text"] for i in range(before, ledger.size())]
    assert sorted(texts) == sorted(["first", *(f"w{n}" for n in range(WRITERS) if n != 2)])
    assert audit_ledger(ledger.store, deployment.objects, deployment.keys).ok


def test_writers_waiting_at_once_share_one_checkpoint_signature(
    home_on_each_database: Home,
) -> None:
    deployment = home_on_each_database.deployment
    indexes = [_note(deployment, f"ev_{n}") for n in range(WRITERS)]
    ledger = _fresh_ledger(deployment)
    start = threading.Barrier(WRITERS)

    def wait_for_checkpoint(index: int) -> KeptCheckpoint:
        start.wait()
        return ledger.checkpoint(covering=index)

    with counting_signatures() as signed, ThreadPoolExecutor(WRITERS) as pool:
        kept = list(pool.map(wait_for_checkpoint, indexes))
    assert signed == [deployment.ledger.size()]
    assert {k.size for k in kept} == {deployment.ledger.size()}
    assert ledger.store.checkpoint(kept[0].size) == kept[0]


def _append_then_wait(config: Config, subject: str, start: Any, done: Any) -> None:
    """In its own process: append, wait until every process has, then ask for a checkpoint
    covering its entry; report the checkpoint's size and the signatures made here."""
    deployment = open_deployment(config)
    try:
        index = _note(deployment, subject)
        start.wait(60)
        with counting_signatures() as signed:
            kept = deployment.ledger.checkpoint(covering=index)
        done.put((index, kept.size, len(signed)))
    finally:
        deployment.close()


def test_writers_in_separate_processes_share_one_signer_through_the_database(
    home_on_each_database: Home,
) -> None:
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(PROCESSES), context.Queue()
    config = home_on_each_database.config
    processes = [
        context.Process(target=_append_then_wait, args=(config, f"ev_p{n}", start, done))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    results = [done.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    size = home_on_each_database.deployment.ledger.size()
    assert sum(signatures for _, _, signatures in results) == 1
    assert {kept for _, kept, _ in results} == {size}
    assert all(index < size for index, _, _ in results)


def _ingest_many(config: Config, worker: int) -> list[bytes]:
    """In its own process: several threads ingest items; returns their receipt bundles."""
    deployment = open_deployment(config)
    try:
        operator = deployment.principals.get("operator").actor
        examiner, _ = deployment.principals.add(f"examiner{worker}", "examiner", operator)
        in_case(deployment, DIGITAL["case"], examiner.name)

        def ingest(thread: int) -> list[bytes]:
            bundles = []
            for number in range(INGESTS_EACH):
                content = f"worker {worker} thread {thread} item {number}\n".encode() * 500
                session = deployment.intake.open_session(
                    {**DIGITAL, "exhibit": f"G-{worker}-{thread}-{number}"}, examiner.actor
                )
                done = deployment.intake.receive(
                    session.id, io.BytesIO(content), examiner.actor, content_length=len(content)
                )
                bundles.append(done.receipt.to_json())
            return bundles

        with ThreadPoolExecutor(THREADS) as pool:
            return [b for chunk in pool.map(ingest, range(THREADS)) for b in chunk]
    finally:
        deployment.close()


@pytest.mark.slow
def test_many_writers_each_get_a_receipt_that_verifies_against_the_checkpoint_it_names(
    home_on_each_database: Home,
) -> None:
    config = home_on_each_database.config
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        bundles = [
            b
            for r in pool.starmap(_ingest_many, [(config, w) for w in range(PROCESSES)])
            for b in r
        ]
    deployment = home_on_each_database.deployment
    keys = [v.verifier_key() for v in deployment.keys.verifiers]
    assert len(bundles) == PROCESSES * THREADS * INGESTS_EACH
    named: set[int] = set()
    for bundle in bundles:
        report = verify_receipt(bundle, keys)
        kept = deployment.ledger.kept_checkpoint(report.tree_size)
        assert kept.root == report.root and kept.root == deployment.ledger.root(report.tree_size)
        named.add(report.tree_size)
    # Each checkpoint is kept, and none was signed twice for the same size.
    sizes = [k.size for k in deployment.ledger.store.checkpoints()]
    assert named <= set(sizes) and len(sizes) == len(set(sizes))
