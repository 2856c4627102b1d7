"""The interfaces others build on stay as they are: the OpenAPI document, the ``--json``
output of every ``custos`` command and the text it prints for people, compared with golden
copies in ``tests/snapshots/`` (``cli.json``; ``cli.txt``, one section per command run).

One scripted scenario runs every command once (a few twice: locally and with ``--server``) on
a fresh home; it runs once with ``--json`` and once as a person runs it. What differs between
runs (ids, tokens, times, digests, keys, signatures, proofs, paths under the temporary folder,
durations) is replaced by a placeholder that names its kind, so a golden still pins every key,
every list's length and the shape of every value, and every line a person reads.

The JSON goldens were taken once from the code before the CLI was split into ``commands/``;
no test or make target rewrites them. After a deliberate interface change, rewrite them by hand
with ``CUSTOS_WRITE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_interfaces_unchanged.py``
(the run writes the files and fails, so it cannot pass unnoticed) and review the diff.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from werkzeug.serving import WSGIRequestHandler, make_server

from cli import main
from custody.orders import OrderState
from service import create_app
from storage.config import load_config
from storage.deployment import Deployment, open_deployment
from tests.conftest import FakeClock
from tests.factories import SEIZURE, order_document

SNAPSHOTS = Path(__file__).parent / "snapshots"
WRITE = os.environ.get("CUSTOS_WRITE_SNAPSHOTS") == "1"
ORIGIN = "snapshot.custos.invalid/ledger"
CONTENT = b"the bytes of a seized disk image\n" * 64
SEIZED = tuple(f"--seizure-{name}={value}" for name, value in SEIZURE.items())

# Commands the scenario cannot run in-process: ``serve`` forks gunicorn and never returns;
# ``witness serve`` serves until interrupted (tests/custody/test_witness.py serves it).
NOT_RUN = {"serve", "witness serve"}

# -- normalisation --------------------------------------------------------------------------

_WHOLE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "<date>"),
    (re.compile(r"custos_[A-Za-z0-9_-]{20,}"), "<token>"),
    (re.compile(r"[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*"), "<verifier-key>"),
    (re.compile(r"(ev|ord|pr|prv|cs|gr)_[0-9a-f]{16}"), r"<\1-id>"),
    (re.compile(r"[0-9a-f]{16,}"), "<hex>"),
    # Base64 of random bytes has upper and lower case letters (a path or a name has not both).
    (re.compile(r"(?=.*[A-Z])(?=.*[a-z])[A-Za-z0-9+/_-]{16,}={0,2}"), "<base64>"),
]
_INSIDE: list[tuple[re.Pattern[str], str]] = [
    # Secrets in URLs first: the base64 pattern below would take part of a path with them.
    (re.compile(r"(?<=/sign-in/link/)[A-Za-z0-9_-]{40,}"), "<link-secret>"),
    (re.compile(r"(?<=[?&]secret=)[A-Z2-7]{16,}"), "<totp-secret>"),
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"custos_[A-Za-z0-9_-]{20,}"), "<token>"),
    (re.compile(r"\b(ev|ord|pr|prv|cs|gr)_[0-9a-f]{16}\b"), r"<\1-id>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}"), "<base64>"),
    (re.compile(r"\+[0-9a-f]{8}\b"), "+<key-hash>"),  # a verifier key's name+hash
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
]
# A duration depends on the run itself; a step names other such numbers (a zip's length moves
# with the digits of the times inside it).
VOLATILE = frozenset({"seconds"})


def normalise_text(text: str, tmp: str) -> str:
    text = text.replace(tmp, "<tmp>")
    if "\n\u2014 " in text:  # a signed note: its body lines, then its signatures
        return "<signed-note>"
    for pattern, placeholder in _WHOLE:
        if pattern.fullmatch(text):
            return pattern.sub(placeholder, text) if "\\1" in placeholder else placeholder
    for pattern, placeholder in _INSIDE:
        text = pattern.sub(placeholder, text)
    return text


def normalise(value: Any, tmp: str, volatile: frozenset[str] = VOLATILE, key: str = "") -> Any:
    """``value`` with what varies between runs replaced by placeholders of its kind."""
    if isinstance(value, dict):
        return {k: normalise(v, tmp, volatile, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, tmp, volatile, key) for v in value]
    if isinstance(value, str):
        return normalise_text(value, tmp)
    if key in volatile and isinstance(value, int | float) and not isinstance(value, bool):
        return f"<{type(value).__name__}>"
    return value


# -- the scenario ---------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


# Numbers in the text for people that depend on the run itself, as ``VOLATILE`` names them in
# the JSON: how long a step took, and a zip's length (it moves with the digits of its times).
_VOLATILE_TEXT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bin \d+(\.\d+)? s\b"), "in <seconds> s"),
    (re.compile(r"\b\d+ bytes, from\b"), "<int> bytes, from"),
]


def normalise_lines(text: str, tmp: str) -> str:
    """Text for people with what varies between runs replaced, as ``normalise`` does."""
    text = normalise_text(text, tmp)
    for pattern, placeholder in _VOLATILE_TEXT:
        text = pattern.sub(placeholder, text)
    return text


class Scenario:
    """Runs commands on one home and keeps each one's exit code and normalised output: with
    ``--json``, or (``for_people``) the text a person reads, while the JSON objects the
    commands would print are still handed back to the scenario."""

    def __init__(self, tmp: Path, for_people: bool = False) -> None:
        self.tmp = tmp
        self.for_people = for_people
        self.runner = CliRunner()
        self.steps: dict[str, dict[str, Any]] = {}
        self.commands: set[str] = set()
        self.emitted: list[dict[str, Any]] = []

    def run(
        self, label: str, *argv: str, exit_code: int = 0, volatile: frozenset[str] = VOLATILE
    ) -> list[dict[str, Any]]:
        assert label not in self.steps, label
        self.emitted = []
        result = self.runner.invoke(main, [*argv] if self.for_people else [*argv, "--json"])
        assert result.exit_code == exit_code, (label, result.output, result.exception)
        step: dict[str, Any] = {
            "argv": [normalise_text(a, str(self.tmp)) for a in argv],
            "exit_code": result.exit_code,
        }
        if self.for_people:
            step["text"] = normalise_lines(result.stdout, str(self.tmp))
            lines = self.emitted
        else:
            lines = [json.loads(line) for line in result.stdout.splitlines()]
            step["output"] = normalise(lines, str(self.tmp), volatile)
        self.steps[label] = step
        words = [a for a in argv if not a.startswith("-")]
        self.commands.add(" ".join(words[:2]) if words[0] in GROUPS else words[0])
        return lines

    def record_emitted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Keep what each command hands to ``emit`` and ``emit_table`` (and prints as text)."""
        import commands.common

        emit, emit_table = commands.common.emit, commands.common.emit_table

        def recording_emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
            self.emitted.append(obj)
            emit(as_json, obj, text)

        def recording_table(as_json: bool, items: Any, *rest: Any) -> None:
            listed = list(items)
            self.emitted.extend(listed)
            emit_table(as_json, listed, *rest)

        for name, module in list(sys.modules.items()):
            if name.startswith("commands."):
                if getattr(module, "emit", None) is emit:
                    monkeypatch.setattr(module, "emit", recording_emit)
                if getattr(module, "emit_table", None) is emit_table:
                    monkeypatch.setattr(module, "emit_table", recording_table)

    def one(
        self, label: str, *argv: str, exit_code: int = 0, volatile: frozenset[str] = VOLATILE
    ) -> dict[str, Any]:
        lines = self.run(label, *argv, exit_code=exit_code, volatile=volatile)
        if self.for_people and not lines:
            return {}  # a command that prints without emit (the verifiers, audit)
        [line] = lines
        return line


GROUPS = {name for name, c in main.commands.items() if isinstance(c, click.Group)}


def every_command() -> set[str]:
    found = set()
    for name, command in main.commands.items():
        if isinstance(command, click.Group):
            found |= {f"{name} {sub}" for sub in command.commands}
        else:
            found.add(name)
    return found - NOT_RUN


@pytest.fixture
def serve_home() -> Iterator[Callable[[Path], str]]:
    """Serves a home's API on 127.0.0.1 once the scenario has made the home; gives its URL."""
    running: list[tuple[Any, threading.Thread, Deployment]] = []

    def start(home: Path) -> str:
        deployment = open_deployment(load_config(home))
        app = create_app({"TESTING": True}, deployment=deployment)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        running.append((server, thread, deployment))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread, deployment in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        deployment.close()


def play(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve_home: Callable[[Path], str],
    for_people: bool = False,
) -> Scenario:
    for name in list(os.environ):
        if name.startswith("CUSTOS_"):
            monkeypatch.delenv(name)
    home = tmp / "home"
    monkeypatch.setenv("CUSTOS_HOME", str(home))
    # Every checkpoint asked for covers the whole log then, however slow the machine.
    monkeypatch.setenv("CUSTOS_CHECKPOINT_INTERVAL", "0")
    s = Scenario(tmp, for_people)
    if for_people:
        s.record_emitted(monkeypatch)

    # -- a deployment and its people
    s.one("init", "init", "--origin", ORIGIN)
    s.one("init again", "init")
    for name, role in (
        ("alice", "examiner"),
        ("judge", "approver"),
        ("clerk", "court"),
        ("ana", "authority"),
        ("temp", "examiner"),
    ):
        s.one(f"principal add {name}", "principal", "add", name, "--role", role)
    provider = s.one(
        "provider add",
        *("provider", "add", "MailCo", "--jurisdiction", "IE"),
        *("--legal-representative", "MailCo Legal Ltd", "--contact", "lawful@mailco.example"),
    )
    s.run("provider list", "provider", "list")
    s.one(
        "principal add provider",
        "principal",
        "add",
        "mailco",
        "--role",
        "provider",
        "--provider",
        provider["id"],
    )
    s.one("principal revoke", "principal", "revoke", "temp")
    s.run("principal list", "principal", "list")
    monkeypatch.setenv("CUSTOS_PUBLIC_URL", "https://custos.example.org")
    s.one("principal login-link", "principal", "login-link", "clerk")
    s.one("principal totp", "principal", "totp", "judge")
    monkeypatch.delenv("CUSTOS_PUBLIC_URL")

    # -- cases: the items' (C-1) and the orders' (CASE-1)
    s.one(
        "case open",
        *("case", "open", "C-1", "--title", "Harbour Street burglary"),
        *("--authority", "Public Prosecutor", "--as", "alice"),
    )
    s.one("case add-member", "case", "add-member", "C-1", "judge", "--as", "alice")
    s.one(
        "case grant",
        *("case", "grant", "C-1", "clerk", "--proceeding", "Trial 1/26"),
        *("--until", "2099-01-01T00:00:00+00:00", "--as", "alice"),
    )
    s.run("case list", "case", "list", "--as", "alice")
    s.one("case show", "case", "show", "C-1", "--as", "alice")
    s.one(
        "case open for orders",
        *("case", "open", "CASE-1", "--title", "Mailbox fraud"),
        *("--authority", "Public Prosecutor", "--as", "ana"),
    )
    s.one("case add-member for orders", "case", "add-member", "CASE-1", "judge", "--as", "ana")

    # -- evidence on the local home
    image = tmp / "disk.E01"
    image.write_bytes(CONTENT)
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    alice = ("--as", "alice")
    ingested = s.one(
        "ingest",
        *("ingest", str(image), "--case", "C-1", "--exhibit", "HD-1", *alice),
        *("--acquired-by", "Alice", "--tool", "ewfacquire 20140608"),
        *("--acquired-at", "2026-11-27T09:00:00Z", "--expect", f"sha256:{sha256}"),
    )
    item = ingested["id"]
    s.one(
        "evidence register",
        *("evidence", "register", "--case", "C-1", "--exhibit", "BOX-1", *alice),
        *("--description", "A sealed bag with a phone", *SEIZED),
    )
    s.run("evidence list", "evidence", "list", *alice)
    s.one("evidence show", "evidence", "show", item, *alice)
    s.one(
        "evidence event",
        *("evidence", "event", item, "transferred", *alice),
        *("-f", "from=Alice", "-f", "to=alice", "-f", "location=Lab 2", "-f", "reason=imaging"),
    )
    s.run("evidence custody", "evidence", "custody", item, *alice)
    s.one(
        "evidence download",
        "evidence",
        "download",
        item,
        "--purpose",
        "review",
        "-o",
        str(tmp / "copy.E01"),
        *alice,
    )

    # -- the log
    key = s.one("log key", "log", "key")["key"]
    checkpoint = s.one("log checkpoint", "log", "checkpoint")
    known = tmp / "known.checkpoint"
    known.write_text(checkpoint["note"], encoding="utf-8")
    s.one("log prove", "log", "prove", "--index", "1")
    receipt = tmp / "receipt.json"
    receipt.write_text(json.dumps(ingested["receipt"]), encoding="utf-8")
    s.one("verify-receipt", "verify-receipt", str(receipt), "--key", key)
    s.one("key rotate", "key", "rotate")
    s.one(
        "log consistency",
        "log",
        "consistency",
        "--known-checkpoint",
        str(known),
        "--key",
        key,
    )

    # -- court
    clerk = ("--as", "clerk")
    bundle = tmp / "exhibit.zip"
    s.one("export", "export", item, "-o", str(bundle), "--known-checkpoint", str(known), *clerk)
    s.one("export case", "export", item, "--format", "case", "-o", str(tmp / "case.json"), *clerk)
    new_key = s.one("log key after rotation", "log", "key")["key"]
    s.run("log keys", "log", "keys")
    s.one("witness init", "witness", "init", "--dir", str(tmp / "witness"), "--name", "w.example")
    s.one("verify", "verify", str(bundle), "--key", key, "--key", new_key)
    s.one("report", "report", item, "-o", str(tmp / "report.html"), *clerk)
    grants = s.one("case show with the grant", "case", "show", "C-1", "--as", "alice")["grants"]
    s.one("case end-grant", "case", "end-grant", "C-1", grants[0]["id"], "--as", "alice")
    s.one("case remove-member", "case", "remove-member", "C-1", "judge", "--as", "alice")

    # -- orders: drafted and served through the domain 30 days ago, so one is overdue
    clock = FakeClock()
    clock.now = datetime.now(UTC) - timedelta(days=30)
    past = open_deployment(load_config(home), clock=clock)
    try:
        principals = {p.name: p.actor for p in past.principals.list()}
        served_order = past.orders.draft(
            order_document(provider["id"]), principals["ana"]
        ).stored.id
        past.orders.act(served_order, "submit", {}, principals["ana"])
        past.orders.act(served_order, "approve", {}, principals["judge"])
        drafted = past.orders.draft(order_document(provider["id"]), principals["ana"])
        assert drafted.stored.order.state is OrderState.DRAFT
    finally:
        past.close()
    ana = ("--as", "ana")
    s.run("orders list", "orders", "list", *ana)
    s.one("orders show", "orders", "show", served_order, *ana)
    s.run("orders sweep", "orders", "sweep")

    # -- the same through a server
    server = serve_home(home)
    token = s.one("principal add for the server", "principal", "add", "bob", "--role", "examiner")
    bob = ("--server", server, "--token", token["token"])
    s.one(
        "case open for the server",
        *("case", "open", "C-2", "--title", "Bag in the river"),
        *("--authority", "Public Prosecutor", "--as", "bob"),
    )
    on_server = s.one(
        "ingest --server", "ingest", str(image), "--case", "C-2", "--exhibit", "HD-2", *bob
    )
    s.one(
        "evidence register --server",
        "evidence",
        "register",
        "--case",
        "C-2",
        "--exhibit",
        "BOX-2",
        "--description",
        "A bag",
        *SEIZED,
        *bob,
    )
    s.run("evidence list --server", "evidence", "list", "--case", "C-2", *bob)
    s.one("evidence show --server", "evidence", "show", on_server["id"], *bob)
    s.one(
        "evidence event --server",
        "evidence",
        "event",
        on_server["id"],
        "noted",
        "-f",
        "text=seal intact",
        *bob,
    )
    s.run("evidence custody --server", "evidence", "custody", on_server["id"], *bob)
    s.one(
        "evidence download --server",
        "evidence",
        "download",
        on_server["id"],
        "--purpose",
        "review",
        "-o",
        str(tmp / "copy2.E01"),
        *bob,
    )
    s.one(
        "export --server",
        "export",
        on_server["id"],
        "-o",
        str(tmp / "exhibit2.zip"),
        *bob,
        volatile=VOLATILE | {"size"},
    )
    ana_token = s.one(
        "principal add authority for the server", "principal", "add", "ann", "--role", "authority"
    )["token"]
    s.one("case add-member ann", "case", "add-member", "CASE-1", "ann", "--as", "ana")
    s.run("orders list --server", "orders", "list", "--server", server, "--token", ana_token)
    s.one(
        "orders show --server",
        "orders",
        "show",
        served_order,
        "--server",
        server,
        "--token",
        ana_token,
    )
    s.one(
        "log consistency --server",
        "log",
        "consistency",
        "--known-checkpoint",
        str(known),
        "--server",
        server,
    )

    s.one("case close", "case", "close", "C-2", "--as", "bob")

    # -- audit last, over everything above
    s.one("audit", "audit")
    s.run("audit --objects", "audit", "--objects")
    s.one("principal name", "principal", "name", "alice", "Alice Examiner")
    return s


def write_golden(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    pytest.fail(f"CUSTOS_WRITE_SNAPSHOTS=1: wrote {path}; review it and run again without")


def compare(name: str, actual: Any) -> None:
    path = SNAPSHOTS / name
    text = json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if WRITE:
        write_golden(path, text)
    golden = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(golden, dict) and isinstance(actual, dict):
        for label in sorted(golden.keys() | actual.keys()):
            assert actual.get(label) == golden.get(label), f"{name}: {label!r} changed"
    assert actual == golden


def test_every_command_s_json_output_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_home: Callable[[Path], str]
) -> None:
    scenario = play(tmp_path, monkeypatch, serve_home)

    assert scenario.commands == every_command(), "a command the scenario does not run"
    compare("cli.json", scenario.steps)


def people_text(steps: dict[str, dict[str, Any]]) -> str:
    """The steps as one readable file: per step its label, the command and what it printed."""
    sections = []
    for label, step in steps.items():
        command = " ".join(shlex.quote(a) for a in step["argv"])
        status = "" if step["exit_code"] == 0 else f"\n(exit {step['exit_code']})"
        sections.append(f"## {label}\n$ custos {command}\n{step['text'].rstrip()}{status}\n")
    return "\n".join(sections)


def test_every_command_s_text_for_people_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_home: Callable[[Path], str]
) -> None:
    """What a person reads: tables and sentences, never a Python dict, ``None`` or raw JSON;
    every command's text pinned in ``tests/snapshots/cli.txt``."""
    scenario = play(tmp_path, monkeypatch, serve_home, for_people=True)

    assert scenario.commands == every_command(), "a command the scenario does not run"
    text = people_text(scenario.steps)
    for label, step in scenario.steps.items():
        printed = step["text"]
        # A cron job (the sweep) says nothing when there is nothing to do; the rest always do.
        assert printed.strip() or label == "orders sweep", f"{label}: prints nothing for people"
        assert not re.search(r"\bNone\b|\{'|^\s*[\[{]\"", printed, re.M), (label, printed)
    path = SNAPSHOTS / "cli.txt"
    if WRITE:
        write_golden(path, text)
    golden = path.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            golden.splitlines(keepends=True), text.splitlines(keepends=True), "golden", "now"
        )
    )
    assert text == golden, f"cli.txt changed:\n{diff}"


def test_the_openapi_document_is_unchanged(client: Any) -> None:
    response = client.get("/v1/openapi.json")

    assert response.status_code == 200
    compare("openapi.json", response.get_json())


def test_placeholders_keep_the_kind_of_what_they_replace() -> None:
    tmp = "/tmp/pytest-7/test0"
    raw = {
        "id": "ev_0123456789abcdef",
        "at": "2026-11-28T12:00:00.123456+00:00",
        "due": "2026-12-08",
        "token": "custos_" + "A" * 43,
        "key": "snapshot.custos.invalid/ledger+0a1b2c3d+" + base64.b64encode(b"k" * 33).decode(),
        "root": base64.b64encode(b"r" * 32).decode(),
        "sha256": "ab" * 32,
        "path": f"{tmp}/exhibit.zip",
        "size": 1234,
        "seconds": 0.25,
        "note": "origin\n1\nroot=\n\n\u2014 origin sig\n",
        "problem": f"ev_0123456789abcdef: missing at {'cd' * 20}",
        "state": "served",
        "count": 3,
    }

    assert normalise(raw, tmp) == {
        "id": "<ev-id>",
        "at": "<time>",
        "due": "<date>",
        "token": "<token>",
        "key": "<verifier-key>",
        "root": "<base64>",
        "sha256": "<hex>",
        "path": "<tmp>/exhibit.zip",
        "size": 1234,
        "seconds": "<float>",
        "note": "<signed-note>",
        "problem": "<ev-id>: missing at <hex>",
        "state": "served",
        "count": 3,
    }
