"""``custos witness``: run a witness (C2SP tlog-witness) for other parties' Custos logs.

    custos witness init --dir DIR --name NAME       create the witness key; print its key
    custos witness serve --dir DIR --log VKEY ...   answer POST <prefix>/add-checkpoint

A witness is run by someone other than the log's operator (another agency, a bar
association, a court). Its folder holds its key and, per log, the newest checkpoint it
cosigned; see custody/witness.py for what it checks.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from commands.common import Group, emit, json_option
from custody.note import MalformedNote, NoteVerifier
from custody.verify.cosignature import CosignatureSigner
from custody.witness import MAX_BODY, Witness

KEY_FILE = "witness-key.pem"
NAME_FILE = "witness.json"


@click.group(cls=Group)
def witness() -> None:
    """Run a witness that cosigns other logs' checkpoints."""


@witness.command("init")
@click.option("--dir", "folder", required=True, type=click.Path(path_type=Path), help="Its folder.")
@click.option("--name", required=True, help="The witness's key name, e.g. witness.bar.example.")
@json_option
def witness_init(folder: Path, name: str, as_json: bool) -> None:
    """Create the witness's key (once) and print its verifier key, for courts to pin."""
    signer = load_or_create(folder, name)
    vkey = signer.verifier.verifier_key()
    emit(as_json, {"name": signer.name, "key": vkey}, vkey)


@witness.command("serve")
@click.option("--dir", "folder", required=True, type=click.Path(path_type=Path), help="Its folder.")
@click.option(
    "--log",
    "logs",
    multiple=True,
    required=True,
    help="A verifier key of a log to follow (its name is the log's origin); repeat.",
)
@click.option("--listen", default="127.0.0.1:8021", show_default=True, help="HOST:PORT.")
@click.option("--prefix", default="", help="URL prefix before /add-checkpoint.")
def witness_serve(folder: Path, logs: tuple[str, ...], listen: str, prefix: str) -> None:
    """Answer POST <prefix>/add-checkpoint until interrupted."""
    signer = load_signer(folder)
    followed: dict[str, list[NoteVerifier]] = defaultdict(list)
    for vkey in logs:
        try:
            verifier = NoteVerifier.from_key(vkey)
        except MalformedNote as exc:
            raise click.BadParameter(f"{vkey!r}: {exc}", param_hint="--log") from None
        followed[verifier.name].append(verifier)
    host, _, port = listen.rpartition(":")
    server = make_server(Witness(signer, followed, folder / "logs"), host, int(port), prefix)
    click.echo(
        f"witness {signer.verifier.verifier_key()} on http://{listen}{prefix}/add-checkpoint "
        f"for {', '.join(sorted(followed))}",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def make_server(witness: Witness, host: str, port: int, prefix: str) -> ThreadingHTTPServer:
    """An HTTP server answering ``POST <prefix>/add-checkpoint`` with ``witness``."""
    path = prefix.rstrip("/") + "/add-checkpoint"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != path:
                self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._answer(400, b"a body of at most 64 KiB, with its length\n", "text/plain")
                return
            answer = witness.add_checkpoint(self.rfile.read(length))
            self._answer(answer.status, answer.body, answer.content_type)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """No line per request on standard error: the answers say enough."""

    return ThreadingHTTPServer((host, port), Handler)


def load_or_create(folder: Path, name: str) -> CosignatureSigner:
    """The witness key in ``folder``, created (0600) if there is none yet."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / KEY_FILE).exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(folder / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        (folder / NAME_FILE).write_text(json.dumps({"name": name}), encoding="utf-8")
    signer = load_signer(folder)
    if signer.name != name:
        raise click.ClickException(f"{folder} holds the witness {signer.name!r}, not {name!r}")
    return signer


def load_signer(folder: Path) -> CosignatureSigner:
    try:
        name = json.loads((folder / NAME_FILE).read_text("utf-8"))["name"]
        key = serialization.load_pem_private_key((folder / KEY_FILE).read_bytes(), None)
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(
            f"{folder} holds no witness key: run custos witness init ({exc})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise click.ClickException(f"{folder / KEY_FILE} is not an Ed25519 key")
    try:
        return CosignatureSigner(name, key)
    except MalformedNote as exc:
        raise click.ClickException(str(exc)) from None
