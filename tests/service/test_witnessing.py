"""Witnessing on the real server (``custos serve``) over HTTP: the log sends its checkpoints to
several witnesses (custody/witnessing.py, service/witnessing.py), one of which cannot be
reached, keeps their cosignatures, serves the cosigned checkpoint and exports it in bundles."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import main
from commands.witness import make_server
from custody.note import Note, NoteVerifier
from custody.verify import verify_bundle
from custody.verify.cosignature import CosignatureSigner, verify_cosignatures
from custody.witness import Witness
from tests.server import Server, free_port

ORIGIN = "witnessed.custos.invalid/ledger"
DEADLINE = 60.0


def custos(home: Path, *command: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["--home", str(home), *command, "--json"])
    assert result.exit_code == 0, result.output
    reply: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return reply


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[list[tuple[CosignatureSigner, Witness, str]]]:
    """Two witnesses serving over HTTP on 127.0.0.1 (log keys added once the home exists)."""
    running = []
    for n in range(2):
        signer = CosignatureSigner(f"witness-{n}.example", Ed25519PrivateKey.generate())
        witness = Witness(signer, {}, tmp_path / f"witness-{n}")
        server = make_server(witness, "127.0.0.1", 0, f"/w{n}")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/w{n}"
        running.append((server, (signer, witness, url)))
    yield [entry for _, entry in running]
    for server, _ in running:
        server.shutdown()
        server.server_close()


def test_several_witnesses_cosign_and_one_that_is_down_delays_nothing(
    tmp_path: Path, witnesses: list[tuple[CosignatureSigner, Witness, str]]
) -> None:
    home = tmp_path / "home"
    custos(home, "init", "--origin", ORIGIN)
    log_key = str(custos(home, "log", "key")["key"])
    for _, witness, _ in witnesses:
        witness.logs[ORIGIN] = [NoteVerifier.from_key(log_key)]
    down = CosignatureSigner("down.example", Ed25519PrivateKey.generate())
    entries = [f"{url} {signer.verifier.verifier_key()}" for signer, _, url in witnesses]
    entries.append(f"http://127.0.0.1:{free_port()}/nothing {down.verifier.verifier_key()}")
    examiner = str(custos(home, "principal", "add", "alice", "--role", "examiner")["token"])
    court = str(custos(home, "principal", "add", "clerk", "--role", "court")["token"])
    opened = custos(
        home, "case", "open", "C-9", "--title", "t", "--authority", "a", "--as", "alice"
    )
    until = "2099-01-01T00:00:00+00:00"
    grant = ["case", "grant", "C-9", "clerk", "--proceeding", "trial", "--until", until]
    custos(home, *grant, "--as", "alice")
    assert opened["reference"] == "C-9"
    evidence = tmp_path / "disk.img"
    evidence.write_bytes(b"sectors " * 1000)
    item = str(
        custos(
            home, "ingest", str(evidence), "--case", "C-9", "--exhibit", "HD-9", "--as", "alice"
        )["id"]
    )
    assert examiner and court
    pinned = [signer.verifier for signer, _, _ in witnesses]

    settings = {"CUSTOS_WITNESSES": ",".join(entries), "CUSTOS_OUTBOUND_ALLOW": "127.0.0.1"}
    server = Server(home, tmp_path / "server.log", workers=1, settings=settings)
    try:
        server.wait_ready(answers=1)
        deadline = time.monotonic() + DEADLINE
        while True:
            note = server.call("GET", "/v1/log/checkpoint").body
            parsed = Note.from_bytes(note)
            cosigned = verify_cosignatures(parsed.text, parsed.signatures, pinned)
            if len(cosigned.times) == 2:
                break
            assert time.monotonic() < deadline, f"not cosigned in time:\n{server.tail()}"
            time.sleep(0.2)
        bundle = server.call("GET", f"/v1/evidence/{item}/bundle", court)
    finally:
        server.stop()

    assert bundle.status == 200, bundle.body[:300]
    size = int(parsed.text.split("\n")[1])
    assert [witness.latest(ORIGIN)[0] for _, witness, _ in witnesses] == [size, size]
    keys = [signer.verifier.verifier_key() for signer, _, _ in witnesses]
    verification = verify_bundle(bundle.body, [log_key], witnesses=keys, min_witnesses=2)
    assert verification.ok, [s.detail for s in verification.failed]
    assert "down.example" in server.tail()  # its threads said it cannot be reached, and no more
