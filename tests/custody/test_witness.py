"""Tests of the witness (custody/witness.py, ``custos witness``) and of cosignature/v1
(custody/verify/cosignature.py): C2SP tlog-witness and tlog-cosignature."""

from __future__ import annotations

import base64
import hashlib
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli import main
from commands.witness import make_server
from custody import merkle
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.note import Note, NoteSigner
from custody.verify.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosigned_message,
    verify_cosignatures,
)
from custody.witness import SIZE_CONTENT_TYPE, Witness
from custody.witnessing import WitnessClient, WitnessEndpoint
from storage.config import ConfigError
from storage.deployment import Deployment
from tests.conftest import make_config

ORIGIN = "log.agency.example/custody"
LOG = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
NOW = 1_800_000_000


def leaves(n: int, fork: int | None = None) -> list[bytes]:
    """Leaf hashes of a log of ``n`` entries (with entry ``fork`` replaced: another history)."""
    return [merkle.leaf_hash(f"entry {i}{'*' if i == fork else ''}".encode()) for i in range(n)]


def signed(hashes: list[bytes], signer: NoteSigner = LOG, origin: str = ORIGIN) -> bytes:
    root = merkle.root_from_leaf_hashes(hashes)
    return sign_checkpoint(Checkpoint(origin, len(hashes), root), [signer])


def consistency(hashes: list[bytes], size1: int) -> list[bytes]:
    ranges = merkle.consistency_proof_ranges(size1, len(hashes))
    return [merkle.root_from_leaf_hashes(hashes[lo:hi]) for lo, hi in ranges]


def request(old: int, proof: list[bytes], note: bytes) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n".encode() + note


@pytest.fixture
def signer() -> CosignatureSigner:
    return CosignatureSigner("witness.bar.example", Ed25519PrivateKey.generate())


@pytest.fixture
def witness(signer: CosignatureSigner, tmp_path: Path) -> Witness:
    return Witness(signer, {ORIGIN: [LOG.verifier]}, tmp_path / "state", clock=lambda: NOW)


def cosigned_by(answer_body: bytes, note: bytes, signer: CosignatureSigner) -> int | None:
    text = Note.from_bytes(note).text
    signature = Note.from_bytes(note + answer_body).signatures[-1]
    return signer.verifier.verify(text, signature)


# -- cosignature/v1 --------------------------------------------------------------------------------


def test_a_cosignature_key_id_and_message_are_as_the_spec_says(signer: CosignatureSigner) -> None:
    public = signer.verifier.public_key
    expected_id = hashlib.sha256(b"witness.bar.example\n\x04" + public).digest()[:4]
    note = signed(leaves(3))
    text = Note.from_bytes(note).text

    signature = signer.sign(text, NOW)

    assert signer.verifier.key_hash == expected_id == signature.key_hash
    assert signature.signature[:8] == NOW.to_bytes(8, "big")
    assert cosigned_message(text, NOW) == f"cosignature/v1\ntime {NOW}\n{text}".encode()
    vkey = signer.verifier.verifier_key()
    assert vkey == (
        f"witness.bar.example+{expected_id.hex()}+" + base64.b64encode(b"\x04" + public).decode()
    )
    assert CosignatureVerifier.from_key(vkey) == signer.verifier
    assert signer.verifier.verify(text, signature) == NOW


def test_a_cosignature_of_another_checkpoint_or_time_does_not_verify(
    signer: CosignatureSigner,
) -> None:
    text = Note.from_bytes(signed(leaves(3))).text
    other = Note.from_bytes(signed(leaves(4))).text
    signature = signer.sign(text, NOW)
    moved = type(signature)(
        signature.name, signature.key_hash, (NOW + 1).to_bytes(8, "big") + signature.signature[8:]
    )

    assert signer.verifier.verify(other, signature) is None
    assert signer.verifier.verify(text, moved) is None
    assert verify_cosignatures(text, [signature, signature], [signer.verifier]).times == {
        f"{signer.name}+{signer.verifier.key_hash.hex()}": NOW
    }


def test_a_log_key_is_not_a_witness_key() -> None:
    with pytest.raises(ValueError, match="cosignature/v1"):
        CosignatureVerifier.from_key(LOG.verifier.verifier_key())


# -- add-checkpoint --------------------------------------------------------------------------------


def test_the_witness_cosigns_a_first_checkpoint_and_then_one_that_extends_it(
    witness: Witness, signer: CosignatureSigner
) -> None:
    history = leaves(11)
    first, second = signed(history[:5]), signed(history)

    one = witness.add_checkpoint(request(0, [], first))
    two = witness.add_checkpoint(request(5, consistency(history, 5), second))

    assert (one.status, two.status) == (200, 200)
    assert cosigned_by(one.body, first, signer) == NOW
    assert cosigned_by(two.body, second, signer) == NOW
    assert witness.latest(ORIGIN)[0] == 11


def test_the_witness_refuses_a_log_it_does_not_follow(witness: Witness) -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())

    answer = witness.add_checkpoint(request(0, [], signed(leaves(3), other, other.name)))

    assert answer.status == 404


def test_the_witness_refuses_a_checkpoint_without_a_signature_of_the_log(
    witness: Witness,
) -> None:
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())

    answer = witness.add_checkpoint(request(0, [], signed(leaves(3), impostor)))

    assert answer.status == 403
    assert witness.latest(ORIGIN)[0] == 0


def test_the_witness_refuses_an_old_size_beyond_the_checkpoint(witness: Witness) -> None:
    assert witness.add_checkpoint(request(4, [], signed(leaves(3)))).status == 400


def test_the_witness_says_its_size_when_old_is_not_it(witness: Witness) -> None:
    history = leaves(9)
    assert witness.add_checkpoint(request(0, [], signed(history[:4]))).status == 200

    answer = witness.add_checkpoint(request(2, consistency(history, 2), signed(history)))

    assert (answer.status, answer.content_type, answer.body) == (409, SIZE_CONTENT_TYPE, b"4\n")


def test_the_witness_refuses_an_inconsistent_checkpoint(witness: Witness) -> None:
    history = leaves(9)
    assert witness.add_checkpoint(request(0, [], signed(history[:4]))).status == 200
    fork = leaves(9, fork=1)  # another history: entry 1 rewritten

    answer = witness.add_checkpoint(request(4, consistency(fork, 4), signed(fork)))

    assert answer.status == 422
    assert witness.latest(ORIGIN)[0] == 4


def test_the_witness_refuses_a_split_view_of_the_same_size(witness: Witness) -> None:
    assert witness.add_checkpoint(request(0, [], signed(leaves(6)))).status == 200

    answer = witness.add_checkpoint(request(6, [], signed(leaves(6, fork=2))))

    assert (answer.status, answer.body) == (409, b"6\n")


def test_the_witness_refuses_the_replay_of_an_older_checkpoint(witness: Witness) -> None:
    history = leaves(8)
    older = signed(history[:3])
    assert witness.add_checkpoint(request(0, [], older)).status == 200
    assert (
        witness.add_checkpoint(request(3, consistency(history, 3), signed(history))).status == 200
    )

    answer = witness.add_checkpoint(request(3, [], older))

    assert (answer.status, answer.body) == (409, b"8\n")


def test_a_restarted_witness_remembers_what_it_cosigned(
    signer: CosignatureSigner, tmp_path: Path
) -> None:
    history = leaves(7)
    state = tmp_path / "state"
    before = Witness(signer, {ORIGIN: [LOG.verifier]}, state)
    assert before.add_checkpoint(request(0, [], signed(history))).status == 200

    after = Witness(signer, {ORIGIN: [LOG.verifier]}, state)  # a new process, same folder

    assert after.latest(ORIGIN) == (7, merkle.root_from_leaf_hashes(history))
    fork = leaves(7, fork=0)
    assert after.add_checkpoint(request(0, [], signed(fork))).status == 409
    assert after.add_checkpoint(request(7, [], signed(fork))).status == 409


@pytest.mark.parametrize(
    "body",
    [b"", b"old x\n\n", b"old 01\n\nx", b"old 1\nnot base64!\n\n", b"\xff\xfe", b"old 0\n"],
)
def test_a_malformed_request_is_refused_with_400(witness: Witness, body: bytes) -> None:
    assert witness.add_checkpoint(body).status == 400


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def served(witness: Witness) -> Iterator[int]:
    server = make_server(witness, "127.0.0.1", 0, "/witness")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def post(port: int, path: str, body: bytes) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_the_witness_answers_over_http_as_the_spec_says(
    served: int, signer: CosignatureSigner
) -> None:
    history = leaves(5)
    note = signed(history)

    status, _, body = post(served, "/witness/add-checkpoint", request(0, [], note))
    conflict = post(served, "/witness/add-checkpoint", request(0, [], note))
    missing = post(served, "/elsewhere/add-checkpoint", request(0, [], note))

    assert status == 200 and cosigned_by(body, note, signer) == NOW
    assert conflict == (409, SIZE_CONTENT_TYPE, b"5\n")
    assert missing[0] == 404


def test_custos_witness_init_prints_the_key_to_pin_once(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = str(tmp_path / "witness")

    first = runner.invoke(main, ["witness", "init", "--dir", folder, "--name", "w.example"])
    again = runner.invoke(main, ["witness", "init", "--dir", folder, "--name", "w.example"])
    other = runner.invoke(main, ["witness", "init", "--dir", folder, "--name", "x.example"])

    assert first.exit_code == 0 and first.output == again.output
    assert CosignatureVerifier.from_key(first.output.strip()).name == "w.example"
    assert other.exit_code != 0 and "w.example" in other.output
    assert (tmp_path / "witness" / "witness-key.pem").stat().st_mode & 0o077 == 0


# -- the log's side --------------------------------------------------------------------------------


def grow(deployment: Deployment, n: int) -> None:
    operator = deployment.principals.get("operator").actor
    for i in range(n):
        deployment.principals.add(f"user-{deployment.ledger.size()}-{i}", "examiner", operator)


def test_the_log_learns_a_witness_s_size_from_its_409_and_keeps_its_cosignature(
    deployment: Deployment, signer: CosignatureSigner, tmp_path: Path
) -> None:
    log_verifier = deployment.keys.current.signer.verifier
    witness = Witness(signer, {deployment.keys.origin: [log_verifier]}, tmp_path / "w")
    endpoint = WitnessEndpoint("http://127.0.0.1:9/w", signer.verifier)

    def post(url: str, body: bytes) -> tuple[int, str, bytes]:
        answer = witness.add_checkpoint(body)
        return answer.status, answer.content_type, answer.body

    grow(deployment, 2)
    earlier = deployment.ledger.checkpoint(covering=deployment.ledger.size() - 1)
    assert witness.add_checkpoint(b"old 0\n\n" + earlier.note).status == 200  # sent by another
    grow(deployment, 3)
    deployment.ledger.checkpoint(covering=deployment.ledger.size() - 1)  # the newest
    client = WitnessClient(deployment.ledger, deployment.cosignatures, endpoint, post)

    assert client.submit()  # old 0 gets a 409 with the witness's size, then the proof from it

    kept = deployment.ledger.checkpoint()
    assert client.size == kept.size > earlier.size
    served = deployment.cosignatures.cosigned(kept)
    note = Note.from_bytes(served)
    assert verify_cosignatures(note.text, note.signatures, [signer.verifier]).times
    assert not client.submit()  # nothing newer: nothing sent


def test_a_witness_that_cannot_be_reached_leaves_the_checkpoint_as_it_was(
    deployment: Deployment, signer: CosignatureSigner
) -> None:
    def unreachable(url: str, body: bytes) -> tuple[int, str, bytes]:
        raise ConnectionRefusedError(f"nothing listens at {url}")

    endpoint = WitnessEndpoint("http://127.0.0.1:9/w", signer.verifier)
    client = WitnessClient(deployment.ledger, deployment.cosignatures, endpoint, unreachable)
    grow(deployment, 1)

    with pytest.raises(OSError):
        client.submit()

    kept = deployment.ledger.checkpoint()
    assert deployment.cosignatures.cosigned(kept) == kept.note


@pytest.mark.parametrize(
    "entry",
    ["http://w.example/p", "ftp://w.example/p KEY", "http://w.example/p not-a-key"],
)
def test_a_malformed_witness_setting_is_refused(tmp_path: Path, entry: str) -> None:
    with pytest.raises(ConfigError, match="witnesses"):
        make_config(tmp_path, f"sqlite:///{tmp_path / 'db'}", witnesses=(entry,))
