"""An independent check of the live log API with Go's sumdb/note and sumdb/tlog.

``tests/go/checker`` (Go, no shared code with the server) fetches the signed checkpoint, the
hash tiles, every entry bundle and many inclusion and consistency proofs from a real HTTP
server and recomputes them with ``golang.org/x/mod/sumdb``. A pass means two independent
RFC 6962 / C2SP implementations agree; a tampered server must make it fail.

The checker is built once per session with Debian's ``golang-go`` and
``golang-golang-x-mod-dev`` (GOPATH mode, no network). Without them the tests skip, and
under ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from werkzeug.serving import WSGIRequestHandler, make_server

from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.events import Actor, NewEvent, Subject
from custody.note import NoteSigner
from service import create_app
from tests.conftest import Home, require

REPO = Path(__file__).resolve().parents[2]
GO_X_MOD = Path("/usr/share/gocode/src/golang.org/x/mod")
CHECKER_TIMEOUT = 120  # seconds; a run over 1,000 entries takes about one

ALICE = Actor(id="alice", role="custodian")
BOB = Actor(id="bob", role="examiner")


@pytest.fixture(scope="session")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built once with Debian's Go and x/mod in GOPATH mode."""
    go = shutil.which("go")
    require(go is not None, "`go` is not on PATH (apt-get install golang-go)")
    require(
        GO_X_MOD.is_dir(),
        f"{GO_X_MOD} is missing (apt-get install golang-golang-x-mod-dev)",
    )
    assert go is not None
    build = tmp_path_factory.mktemp("go-checker")
    binary = build / "checker"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"/usr/share/gocode:{build / 'gopath'}",
        "GOCACHE": str(build / "cache"),
        "GOFLAGS": "",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), "./tests/go/checker"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"go build failed:\n{result.stdout}{result.stderr}"
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _QuietHandler(WSGIRequestHandler):
    """No access log: a checker run makes thousands of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def live_url(home: Home) -> Iterator[str]:
    """The real app over real HTTP on 127.0.0.1, served from a background thread."""
    app = create_app({"TESTING": True}, deployment=home.deployment)
    server = make_server(
        "127.0.0.1", _free_port(), app, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="custos-live", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def run_checker(
    checker: Path, url: str, home: Home, *, vkey: str | None = None, old: Path | None = None
) -> Run:
    args = [
        str(checker),
        "-url",
        url,
        "-vkey",
        vkey or home.deployment.keys.current.verifier_key,
        "-token",
        home.operator_token,
    ]
    if old is not None:
        args += ["-old-checkpoint", str(old)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=CHECKER_TIMEOUT)
    run = Run(result.returncode, result.stdout.strip(), result.stderr.strip())
    print(f"checker on {url} (old checkpoint: {old}): {run}")  # shown when a test fails
    return run


def append_events(home: Home, count: int, *, batch: int = 500, tag: str = "") -> None:
    """Append ``count`` events through the real ledger, over a few subjects so that most
    events chain to their subject's previous one through ``prev``."""
    ledger = home.deployment.ledger
    done = 0
    while done < count:
        events = []
        for i in range(done, min(count, done + batch)):
            # Registered types only: the ledger refuses any other (custody.event_types).
            kind, verb = (("evidence", "noted"), ("order", "read"), ("principal", "created"))[i % 3]
            events.append(
                NewEvent(
                    type=f"{kind}.{verb}",
                    actor=ALICE if i % 2 else BOB,
                    subject=Subject(kind=kind, id=f"{tag}{kind}-{i % 7}"),
                    data={"n": i, "note": f"event {i} of {count}", "tags": [tag, i % 5]},
                )
            )
        appended = ledger.append_batch(events)
        assert [a.index for a in appended] == list(
            range(appended[0].index, appended[0].index + len(events))
        )
        done += len(events)


def sign_now(home: Home) -> int:
    """Force a checkpoint at the current size, so the server hands out exactly that one."""
    ledger = home.deployment.ledger
    size = ledger.size()
    kept = ledger.checkpoint(covering=size - 1)
    assert kept.size == size
    return size


def assert_ok(run: Run, size: int) -> None:
    assert run.returncode == 0, str(run)
    assert run.stdout.startswith("ok: "), str(run)
    assert f"checkpoint size={size}," in run.stdout, str(run)
    assert f"{size} entries checked" in run.stdout, str(run)


def assert_fails(run: Run, *fragments: str) -> None:
    assert run.returncode == 1, str(run)
    assert run.stdout.startswith("FAIL: "), str(run)
    for fragment in fragments:
        assert fragment in run.stdout, str(run)


# Sizes around the C2SP tile edges: 256 entries per tile, a level-1 hash every 256 leaves.
# A level-2 tile needs more than 65,536 entries, about 30 s to append and check, so it is
# left out (sizes 65,535, 65,536, 65,537, 65,793 and 70,000 passed when run by hand).
# The ledger's own first event (the operator's principal.created) is entry 0, so size is
# 1 + the events appended.
@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 513, 1000])
def test_go_checker_accepts_log_at_tile_edge_sizes(
    checker: Path, home: Home, live_url: str, size: int
) -> None:
    assert home.deployment.ledger.size() == 1
    append_events(home, size - 1)
    assert sign_now(home) == size
    assert_ok(run_checker(checker, live_url, home), size)


def test_go_checker_accepts_log_with_hash_tiles_served_as_partial_then_full(
    checker: Path, home: Home, live_url: str
) -> None:
    # Check at 300 (partial second tile), grow past the tile edge, check again at 600:
    # the tiles and proofs at the new size must agree with the first run's view.
    append_events(home, 299, tag="a")
    assert_ok(run_checker(checker, live_url, home), sign_now(home))
    append_events(home, 300, tag="b")
    assert_ok(run_checker(checker, live_url, home), sign_now(home))


def test_go_checker_accepts_consistency_from_an_older_checkpoint(
    checker: Path, home: Home, live_url: str, tmp_path: Path
) -> None:
    ledger = home.deployment.ledger
    append_events(home, 99, tag="old")
    old_size = sign_now(home)
    old_note = ledger.checkpoint().note
    assert old_size == 100
    saved = tmp_path / "old-checkpoint"
    saved.write_bytes(old_note)

    append_events(home, 500, tag="new")
    new = ledger.checkpoint(covering=ledger.size() - 1)
    assert new.size == 600

    run = run_checker(checker, live_url, home, old=saved)
    assert_ok(run, 600)


def test_go_checker_accepts_older_checkpoint_at_the_same_size(
    checker: Path, home: Home, live_url: str, tmp_path: Path
) -> None:
    append_events(home, 40)
    sign_now(home)
    saved = tmp_path / "same"
    saved.write_bytes(home.deployment.ledger.checkpoint().note)
    assert_ok(run_checker(checker, live_url, home, old=saved), 41)


def test_go_checker_rejects_a_corrupted_merkle_leaf_node(
    checker: Path, home: Home, live_url: str
) -> None:
    append_events(home, 299)
    size = sign_now(home)
    assert_ok(run_checker(checker, live_url, home), size)

    with home.deployment.engine.begin() as connection:
        changed = connection.execute(
            text("UPDATE ledger_entries SET leaf_hash = :h WHERE idx = 5"),
            {"h": b"\x42" * 32},
        ).rowcount
    assert changed == 1

    run = run_checker(checker, live_url, home)
    # Tile 0/000 is full and covered by level-1 hash 0, so Go's TileHashReader (x/mod
    # 0.7.0) never authenticates it for the root; the checker's own tile-by-tile comparison
    # with the tree rebuilt from the entries catches it.
    assert_fails(run, "tiles: /v1/log/tile/0/000 differs from the tile recomputed")


def test_go_checker_rejects_a_corrupted_level_one_tile_hash(
    checker: Path, home: Home, live_url: str
) -> None:
    # Merkle level 8, node 0 is the first hash of tile 1/000: the root folded from the
    # tiles no longer matches the signed checkpoint.
    append_events(home, 599)
    sign_now(home)
    with home.deployment.engine.begin() as connection:
        changed = connection.execute(
            text("UPDATE ledger_nodes SET hash = :h WHERE level = 8 AND idx = 0"),
            {"h": b"\x33" * 32},
        ).rowcount
    assert changed == 1
    run = run_checker(checker, live_url, home)
    assert_fails(run, "tiles: downloaded inconsistent tile")


def test_go_checker_rejects_a_corrupted_interior_node(
    checker: Path, home: Home, live_url: str
) -> None:
    # An interior node below tile height (level 3) is not served in any tile, only in
    # proofs: leaves 24..31 have node (3, 2) (leaves 16..23) in their inclusion proofs.
    append_events(home, 299)
    size = sign_now(home)
    with home.deployment.engine.begin() as connection:
        changed = connection.execute(
            text("UPDATE ledger_nodes SET hash = :h WHERE level = 3 AND idx = 2"),
            {"h": b"\x17" * 32},
        ).rowcount
    assert changed == 1
    assert size == 300
    run = run_checker(checker, live_url, home)
    assert_fails(run, "inclusion proof index=24 tree_size=300")


def test_go_checker_rejects_a_tampered_entry(checker: Path, home: Home, live_url: str) -> None:
    append_events(home, 299)
    sign_now(home)
    with home.deployment.engine.begin() as connection:
        leaf = connection.execute(
            text("SELECT leaf FROM ledger_entries WHERE idx = 7")
        ).scalar_one()
        forged = bytes(leaf).replace(b'"n":6', b'"n":9')
        assert forged != bytes(leaf)
        connection.execute(
            text("UPDATE ledger_entries SET leaf = :leaf WHERE idx = 7"), {"leaf": forged}
        )
    run = run_checker(checker, live_url, home)
    assert_fails(run, "entry 7's leaf hash is not the stored hash")


def test_go_checker_rejects_a_checkpoint_under_another_pinned_key(
    checker: Path, home: Home, live_url: str
) -> None:
    append_events(home, 10)
    sign_now(home)
    stranger = NoteSigner(home.deployment.ledger.origin, Ed25519PrivateKey.generate())
    run = run_checker(checker, live_url, home, vkey=stranger.verifier.verifier_key())
    # The server does not list that key, so the checker refuses before opening the note.
    assert_fails(run, "does not list the pinned verifier key")


def test_go_checker_rejects_an_old_checkpoint_signed_by_another_key(
    checker: Path, home: Home, live_url: str, tmp_path: Path
) -> None:
    ledger = home.deployment.ledger
    append_events(home, 10)
    size = sign_now(home)
    stranger = NoteSigner(ledger.origin, Ed25519PrivateKey.generate())
    forged = sign_checkpoint(Checkpoint(ledger.origin, size, ledger.root(size)), [stranger])
    saved = tmp_path / "forged"
    saved.write_bytes(forged)
    run = run_checker(checker, live_url, home, old=saved)
    assert_fails(run, "old checkpoint", "signature does not verify")


def test_go_checker_rejects_a_split_view_old_checkpoint(
    checker: Path, home: Home, live_url: str, tmp_path: Path
) -> None:
    # An earlier checkpoint, correctly signed by the log's own key, for a different tree of
    # the same size: the log showed someone another history.
    ledger = home.deployment.ledger
    append_events(home, 20)
    size = sign_now(home)
    signer = home.deployment.keys.current.signer
    other = sign_checkpoint(Checkpoint(ledger.origin, size, b"\x99" * 32), [signer])
    saved = tmp_path / "split"
    saved.write_bytes(other)
    run = run_checker(checker, live_url, home, old=saved)
    assert_fails(run, "split view")
