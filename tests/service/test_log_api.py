"""Tests of the log API (service/log_api.py): checkpoints, keys, proofs and tiles are public;
entries need a token, and a provider may not read them."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from custody import merkle
from custody.checkpoint import Checkpoint, open_checkpoint
from custody.errors import BadRequest, StorageError
from custody.events import SYSTEM, NewEvent, Subject
from custody.note import NoteSigner, NoteVerificationError, NoteVerifier
from service import create_app
from service.log_api import parse_tile_index
from storage.deployment import Deployment, open_deployment, rotate_key
from tests.conftest import (
    TEST_ORIGIN,
    FakeClock,
    Home,
    _home,
    add_provider,
    bearer,
    make_config,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def home(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> Iterator[Home]:
    """Here the deployment's ledger reads the settable test clock, so that a test decides
    when the checkpoint interval has passed."""
    yield from _home(make_config(tmp_path, sqlite_url), clock)


def grow(deployment: Deployment, count: int) -> None:
    """Append ``count`` events in one batch."""
    start = deployment.ledger.size()
    deployment.ledger.append_batch(
        [
            NewEvent(
                "evidence.noted", SYSTEM, Subject("evidence", f"n{start + i}"), {"n": start + i}
            )
            for i in range(count)
        ]
    )


def assert_problem(response: TestResponse, status: int) -> dict[str, object]:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str) and body[member]
    return body  # type: ignore[no-any-return]


@pytest.fixture
def examiner_token(deployment: Deployment) -> str:
    operator = deployment.principals.get("operator")
    _, token = deployment.principals.add("eve", "examiner", operator.actor)
    return token


@pytest.fixture
def provider_token(deployment: Deployment) -> str:
    operator = deployment.principals.get("operator")
    isp = add_provider(deployment)
    _, token = deployment.principals.add("pv-user", "provider", operator.actor, provider_id=isp.id)
    return token


def split_bundle(bundle: bytes) -> list[bytes]:
    """Undo the C2SP entry bundle framing: big-endian uint16 length, then the entry."""
    entries, at = [], 0
    while at < len(bundle):
        (length,) = struct.unpack(">H", bundle[at : at + 2])
        entries.append(bundle[at + 2 : at + 2 + length])
        at += 2 + length
    assert at == len(bundle)
    return entries


def served_verifiers(client: FlaskClient) -> list[NoteVerifier]:
    response = client.get("/v1/log/key")
    assert response.status_code == 200
    return [NoteVerifier.from_key(line) for line in response.get_data(as_text=True).splitlines()]


def served_checkpoint(
    client: FlaskClient, verifiers: list[NoteVerifier], clock: FakeClock
) -> Checkpoint:
    """The checkpoint served once the checkpoint interval has passed."""
    clock.advance(2)
    response = client.get("/v1/log/checkpoint")
    assert response.status_code == 200
    checkpoint, _ = open_checkpoint(response.data, verifiers, TEST_ORIGIN)
    return checkpoint


# -- checkpoints and keys ------------------------------------------------------------------


def test_checkpoint_is_a_signed_note_over_the_ledger_root(
    client: FlaskClient, deployment: Deployment, clock: FakeClock
) -> None:
    grow(deployment, 4)
    key = client.get("/v1/log/key").get_data(as_text=True).strip()
    clock.advance(2)

    response = client.get("/v1/log/checkpoint")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    checkpoint, note = open_checkpoint(response.data, [NoteVerifier.from_key(key)], TEST_ORIGIN)
    assert checkpoint.size == deployment.ledger.size() == 5
    assert checkpoint.root == deployment.ledger.root(5)
    assert [s.name for s in note.signatures] == [TEST_ORIGIN]


def test_checkpoint_is_not_accepted_under_another_key(client: FlaskClient) -> None:
    impostor = NoteSigner(TEST_ORIGIN, Ed25519PrivateKey.generate()).verifier

    with pytest.raises(NoteVerificationError):
        open_checkpoint(client.get("/v1/log/checkpoint").data, [impostor], TEST_ORIGIN)


def test_key_lists_the_current_verifier_key_on_one_line(
    client: FlaskClient, deployment: Deployment
) -> None:
    response = client.get("/v1/log/key")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == deployment.keys.current.verifier_key + "\n"


def test_the_keys_say_which_is_current_and_since_when(home: Home, clock: FakeClock) -> None:
    before = home.deployment
    client = create_app({"TESTING": True}, deployment=before).test_client()
    first = client.get("/v1/log/key")
    assert first.headers["Custos-Key-Since"] == "0"
    old_key = before.keys.current.verifier_key
    operator = before.principals.get("operator")

    _, new_key, rotated_at = rotate_key(before, operator.actor)
    after = open_deployment(home.config, clock=clock)
    try:
        client = create_app({"TESTING": True}, deployment=after).test_client()
        current = client.get("/v1/log/key")
        listed = client.get("/v1/log/keys")
    finally:
        after.close()

    assert current.get_data(as_text=True).splitlines()[0] == new_key
    assert current.headers["Custos-Key-Since"] == str(rotated_at)
    assert listed.status_code == 200
    assert listed.json == {
        "origin": TEST_ORIGIN,
        "keys": [
            {"key": old_key, "since": None, "until": rotated_at, "current": False},
            {"key": new_key, "since": rotated_at, "until": None, "current": True},
        ],
    }


def test_key_rotation_lists_both_keys_and_hands_over_in_one_checkpoint(
    home: Home, clock: FakeClock
) -> None:
    before = home.deployment
    old_client = create_app({"TESTING": True}, deployment=before).test_client()
    [old_key] = served_verifiers(old_client)
    assert served_checkpoint(old_client, [old_key], clock).size == 1
    operator = before.principals.get("operator")

    _, new_key_text, rotated_at = rotate_key(before, operator.actor)
    after = open_deployment(home.config, clock=clock)
    try:
        client = create_app({"TESTING": True}, deployment=after).test_client()
        listed = served_verifiers(client)
        assert [v.verifier_key() for v in listed] == [new_key_text, old_key.verifier_key()]
        new_key = listed[0]

        clock.advance(2)
        handover = client.get("/v1/log/checkpoint").data
        by_old, old_note = open_checkpoint(handover, [old_key], TEST_ORIGIN)
        by_new, new_note = open_checkpoint(handover, [new_key], TEST_ORIGIN)
        assert by_old == by_new
        assert by_old.size == rotated_at + 1
        assert old_note.signatures != new_note.signatures

        grow(after, 1)
        clock.advance(2)
        later = client.get("/v1/log/checkpoint").data
        checkpoint, note = open_checkpoint(later, listed, TEST_ORIGIN)
        assert checkpoint.size == rotated_at + 2
        assert len(note.signatures) == 1
        open_checkpoint(later, [new_key], TEST_ORIGIN)
        with pytest.raises(NoteVerificationError):
            open_checkpoint(later, [old_key], TEST_ORIGIN)
    finally:
        after.close()


def test_kept_checkpoint_is_returned_byte_identical(
    client: FlaskClient, deployment: Deployment
) -> None:
    grow(deployment, 2)
    kept = deployment.ledger.checkpoint()

    response = client.get(f"/v1/log/checkpoints/{kept.size}")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.data == kept.note


def test_checkpoint_never_signed_at_a_size_is_not_found(
    client: FlaskClient, deployment: Deployment
) -> None:
    grow(deployment, 3)
    deployment.ledger.checkpoint()

    assert_problem(client.get("/v1/log/checkpoints/2"), 404)
    assert_problem(client.get("/v1/log/checkpoints/99"), 404)


def test_checkpoint_at_an_impossible_size_is_not_found(client: FlaskClient) -> None:
    for size in (2**63 - 1, 2**63, 2**64):
        assert_problem(client.get(f"/v1/log/checkpoints/{size}"), 404)


# -- proofs --------------------------------------------------------------------------------


def test_inclusion_proof_by_index_verifies_against_the_checkpoint(
    client: FlaskClient, deployment: Deployment, clock: FakeClock
) -> None:
    grow(deployment, 6)
    checkpoint = served_checkpoint(client, served_verifiers(client), clock)

    for index in range(checkpoint.size):
        response = client.get(f"/v1/log/proofs/inclusion?index={index}&tree_size={checkpoint.size}")
        assert response.status_code == 200
        body = response.get_json()
        assert (body["index"], body["tree_size"]) == (index, checkpoint.size)
        proof = [base64.b64decode(h) for h in body["hashes"]]
        leaf = merkle.leaf_hash(deployment.ledger.entry(index))
        merkle.verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root)


def test_inclusion_proof_by_leaf_hash_finds_the_index(
    client: FlaskClient, deployment: Deployment, clock: FakeClock
) -> None:
    grow(deployment, 6)
    checkpoint = served_checkpoint(client, served_verifiers(client), clock)
    leaf = merkle.leaf_hash(deployment.ledger.entry(4))

    response = client.get(
        f"/v1/log/proofs/inclusion?leaf_hash={leaf.hex()}&tree_size={checkpoint.size}"
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["index"] == 4
    proof = [base64.b64decode(h) for h in body["hashes"]]
    merkle.verify_inclusion(leaf, 4, checkpoint.size, proof, checkpoint.root)


def test_inclusion_proof_of_an_unknown_leaf_hash_is_not_found(client: FlaskClient) -> None:
    assert_problem(client.get(f"/v1/log/proofs/inclusion?leaf_hash={'ab' * 32}&tree_size=1"), 404)


def test_inclusion_proof_of_a_leaf_after_the_tree_is_a_bad_request(
    client: FlaskClient, deployment: Deployment
) -> None:
    grow(deployment, 3)
    leaf = merkle.leaf_hash(deployment.ledger.entry(3))

    assert_problem(client.get(f"/v1/log/proofs/inclusion?leaf_hash={leaf.hex()}&tree_size=2"), 400)


def test_consistency_proofs_verify_between_every_pair_of_sizes(
    client: FlaskClient, deployment: Deployment
) -> None:
    grow(deployment, 8)
    roots = {n: deployment.ledger.root(n) for n in range(1, 10)}

    for size1 in range(1, 10):
        for size2 in range(size1, 10):
            response = client.get(f"/v1/log/proofs/consistency?from={size1}&to={size2}")
            assert response.status_code == 200
            body = response.get_json()
            assert (body["from"], body["to"]) == (size1, size2)
            proof = [base64.b64decode(h) for h in body["hashes"]]
            merkle.verify_consistency(size1, size2, proof, roots[size1], roots[size2])


@pytest.mark.parametrize(
    "query",
    [
        "index=3&tree_size=3",  # index >= tree_size
        "index=0&tree_size=0",
        "index=0&tree_size=4",  # beyond the log
        "index=-1&tree_size=3",
        "index=0&tree_size=-1",
        "index=one&tree_size=3",
        "index=0&tree_size=1.5",
        "index=0",  # no tree size
        "tree_size=3",  # neither index nor leaf_hash
        f"index=0&leaf_hash={'ab' * 32}&tree_size=3",  # both
        "leaf_hash=xyz&tree_size=3",
        f"leaf_hash={'ab' * 31}&tree_size=3",
    ],
)
def test_impossible_inclusion_proof_requests_are_bad_requests(
    client: FlaskClient, deployment: Deployment, query: str
) -> None:
    grow(deployment, 2)

    assert_problem(client.get(f"/v1/log/proofs/inclusion?{query}"), 400)


@pytest.mark.parametrize(
    "query",
    [
        "from=3&to=2",  # from > to
        "from=0&to=2",  # from an empty tree
        "from=1&to=4",  # beyond the log
        "from=-1&to=2",
        "from=1&to=-2",
        "from=a&to=2",
        "from=1",
        "to=2",
        "",
    ],
)
def test_impossible_consistency_proof_requests_are_bad_requests(
    client: FlaskClient, deployment: Deployment, query: str
) -> None:
    grow(deployment, 2)

    assert_problem(client.get(f"/v1/log/proofs/consistency?{query}"), 400)


def test_validation_problem_says_which_parameter_is_wrong(client: FlaskClient) -> None:
    body = assert_problem(client.get("/v1/log/proofs/consistency?from=0&to=1"), 400)

    assert "from" in str(body["detail"])
    assert {"field": "from", "reason": "Must be greater than or equal to 1."} in body["errors"]  # type: ignore[operator]


# -- tiles ---------------------------------------------------------------------------------


def leaf_hashes(deployment: Deployment, start: int, end: int) -> bytes:
    return b"".join(merkle.leaf_hash(deployment.ledger.entry(i)) for i in range(start, end))


def test_partial_level_zero_tile_is_the_leaf_hashes(
    client: FlaskClient, deployment: Deployment
) -> None:
    grow(deployment, 4)

    response = client.get("/v1/log/tile/0/000.p/5")

    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert "immutable" in response.headers["Cache-Control"]
    assert response.data == leaf_hashes(deployment, 0, 5)
    assert client.get("/v1/log/tile/0/000.p/3").data == leaf_hashes(deployment, 0, 3)


def test_full_tiles_and_the_level_above(
    client: FlaskClient, deployment: Deployment, examiner_token: str
) -> None:
    grow(deployment, 257)  # 258 entries: one full level-0 tile and two leaves of the next

    full = client.get("/v1/log/tile/0/000")
    assert full.status_code == 200
    assert full.data == leaf_hashes(deployment, 0, 256)
    assert client.get("/v1/log/tile/0/001.p/2").data == leaf_hashes(deployment, 256, 258)

    # Level 1 holds Merkle level 8: the root of each full 256-leaf tile.
    upper = client.get("/v1/log/tile/1/000.p/1")
    assert upper.status_code == 200
    assert upper.data == deployment.ledger.root(256)

    bundle = client.get("/v1/log/tile/entries/000", headers=bearer(examiner_token))
    assert bundle.status_code == 200
    assert split_bundle(bundle.data) == [deployment.ledger.entry(i) for i in range(256)]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/log/tile/0/000",  # 3 leaves: no full tile yet
        "/v1/log/tile/0/000.p/4",
        "/v1/log/tile/0/001.p/1",
        "/v1/log/tile/1/000.p/1",
        "/v1/log/tile/0/x001/234",
    ],
)
def test_tile_that_does_not_exist_yet_is_not_found(
    client: FlaskClient, deployment: Deployment, path: str
) -> None:
    grow(deployment, 2)

    assert_problem(client.get(path), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/log/tile/0/67",
        "/v1/log/tile/0/000.p/0",
        "/v1/log/tile/0/000.p/256",
        "/v1/log/tile/0/x000/001",
        "/v1/log/tile/entries/000.p/08",
    ],
)
def test_malformed_tile_path_is_a_bad_request(
    client: FlaskClient, examiner_token: str, path: str
) -> None:
    assert_problem(client.get(path, headers=bearer(examiner_token)), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/log/tile/0/" + "x999/" * 8 + "000.p/1",
        # The last full tiles below and above 2**63 leaves (the stores' signed 64-bit bound).
        "/v1/log/tile/0/x036/x028/x797/x018/x963/966",
        "/v1/log/tile/0/x036/x028/x797/x018/x963/967",
        "/v1/log/tile/7/x036/x028/x797/x018/x963/966",
        "/v1/log/tile/8/000.p/1",
        "/v1/log/tile/99999/000.p/1",
        "/v1/log/tile/entries/" + "x999/" * 8 + "000.p/1",
    ],
)
def test_tile_beyond_any_possible_log_is_not_found(
    client: FlaskClient, examiner_token: str, path: str
) -> None:
    assert_problem(client.get(path, headers=bearer(examiner_token)), 404)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("000", (0, 256)),
        ("067", (67, 256)),
        ("x001/234", (1234, 256)),
        ("x001/x234/067", (1234067, 256)),
        ("067.p/8", (67, 8)),
        ("x001/234.p/255", (1234, 255)),
    ],
)
def test_parse_tile_index_reads_c2sp_paths(path: str, expected: tuple[int, int]) -> None:
    assert parse_tile_index(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "67",
        "1234",
        "0000",
        "x001/234.p/0",
        "000.p/256",
        "000.p/08",
        "000.p/",
        "x000/001",
        "x1/234",
        "001/234",
        "x001/",
        "/000",
        "000/",
        "abc",
        "",
        "000\n",
        "\u0660\u0666\u0667",  # Arabic-Indic digits: not the one canonical path
    ],
)
def test_parse_tile_index_rejects_malformed_paths(path: str) -> None:
    with pytest.raises(BadRequest):
        parse_tile_index(path)


# -- entries -------------------------------------------------------------------------------


def test_entry_is_the_exact_leaf_bytes(
    client: FlaskClient, deployment: Deployment, examiner_token: str
) -> None:
    grow(deployment, 2)

    for index in range(deployment.ledger.size()):
        response = client.get(f"/v1/log/entries/{index}", headers=bearer(examiner_token))
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.data == deployment.ledger.entry(index)


def test_entry_beyond_the_log_is_not_found(
    client: FlaskClient, deployment: Deployment, examiner_token: str
) -> None:
    size = deployment.ledger.size()

    assert_problem(client.get(f"/v1/log/entries/{size}", headers=bearer(examiner_token)), 404)
    for index in (2**63 - 2, 2**63 - 1, 2**63, 2**64):
        assert_problem(client.get(f"/v1/log/entries/{index}", headers=bearer(examiner_token)), 404)


def test_entry_bundle_frames_each_leaf_with_its_uint16_length(
    client: FlaskClient, deployment: Deployment, examiner_token: str
) -> None:
    grow(deployment, 3)
    size = deployment.ledger.size()

    response = client.get(f"/v1/log/tile/entries/000.p/{size}", headers=bearer(examiner_token))

    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    leaves = [deployment.ledger.entry(i) for i in range(size)]
    assert split_bundle(response.data) == leaves
    assert response.data[:2] == struct.pack(">H", len(leaves[0]))
    partial = client.get("/v1/log/tile/entries/000.p/2", headers=bearer(examiner_token))
    assert split_bundle(partial.data) == leaves[:2]
    assert_problem(client.get("/v1/log/tile/entries/000", headers=bearer(examiner_token)), 404)


@pytest.mark.parametrize("path", ["/v1/log/entries/0", "/v1/log/tile/entries/000.p/1"])
def test_entries_without_a_token_are_unauthorized(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/v1/log/entries/0", "/v1/log/tile/entries/000.p/1"])
def test_entries_with_a_wrong_token_are_unauthorized(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=bearer("custos_" + "A" * 43))

    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("path", ["/v1/log/entries/0", "/v1/log/tile/entries/000.p/1"])
def test_a_provider_may_not_read_entries(
    client: FlaskClient, provider_token: str, path: str
) -> None:
    assert_problem(client.get(path, headers=bearer(provider_token)), 403)


def test_a_provider_may_read_the_public_log(client: FlaskClient, provider_token: str) -> None:
    headers = bearer(provider_token)

    assert client.get("/v1/log/checkpoint", headers=headers).status_code == 200
    assert client.get("/v1/log/tile/0/000.p/1", headers=headers).status_code == 200


def test_public_endpoints_need_no_token(client: FlaskClient) -> None:
    for path in (
        "/v1/log/checkpoint",
        "/v1/log/key",
        "/v1/log/checkpoints/1",
        "/v1/log/tile/0/000.p/1",
        "/v1/log/proofs/inclusion?index=0&tree_size=1",
        "/v1/log/proofs/consistency?from=1&to=1",
    ):
        assert client.get(path).status_code == 200, path


# -- error shape ---------------------------------------------------------------------------


def test_wrong_method_is_a_problem_that_lists_the_allowed_methods(client: FlaskClient) -> None:
    response = client.post("/v1/log/checkpoint")

    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_unknown_path_is_a_not_found_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/log/nothing-here"), 404)


def test_storage_failure_is_a_503_that_does_not_reveal_internals(
    client: FlaskClient, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_: object) -> None:
        raise StorageError("ledger read failed: (psycopg.OperationalError) host db-7.internal")

    monkeypatch.setattr(deployment.ledger, "checkpoint", unavailable)

    response = client.get("/v1/log/checkpoint")

    body = assert_problem(response, 503)
    assert "db-7.internal" not in response.get_data(as_text=True)
    assert "psycopg" not in str(body["detail"])
    assert response.headers["Retry-After"]


def test_log_text_endpoints_name_their_charset_once(client: FlaskClient) -> None:
    for path in ("/v1/log/checkpoint", "/v1/log/key"):
        response = client.get(path)
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8", path
