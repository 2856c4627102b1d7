"""``custos log`` and ``custos audit``: the custody ledger, its proofs, the consistency witness,
and the whole-ledger audit."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from commands.common import (
    Command,
    Group,
    deployment,
    emit,
    failure,
    json_option,
    warn_unencrypted_keys,
)
from commands.progress import ScrubBar, ScrubLines
from custody.checkpoint import (
    Checkpoint,
    MalformedCheckpoint,
    NotExtended,
    check_extends,
    open_checkpoint,
)
from custody.errors import CustosError
from custody.note import MalformedNote, NoteVerificationError, NoteVerifier

if TYPE_CHECKING:
    # What a command needs only when it runs (SQLAlchemy, the stores, the bundle writers)
    # is imported there, so that ``custos --help`` and the offline commands start at once.
    from custody.scrub import ScrubReport


@click.group(cls=Group)
def log() -> None:
    """The custody ledger."""


@log.command("checkpoint")
@json_option
@click.pass_context
def log_checkpoint(ctx: click.Context, as_json: bool) -> None:
    """Print the current signed checkpoint."""
    with deployment(ctx) as dep:
        kept = dep.ledger.checkpoint()
        note = kept.note.decode()
        emit(as_json, {"size": kept.size, "root": kept.root.hex(), "note": note}, note.rstrip())


@log.command("key")
@json_option
@click.pass_context
def log_key(ctx: click.Context, as_json: bool) -> None:
    """Print the current verifier key alone on one line."""
    from storage.config import load_config
    from storage.keyfiles import open_keyring

    try:
        keys = open_keyring(load_config(ctx.obj["home"]))()
        vkey = keys.current.verifier_key
    except CustosError as exc:
        raise failure(exc) from None
    emit(as_json, {"key": vkey, "origin": keys.origin}, vkey)


@log.command("keys")
@json_option
@click.pass_context
def log_keys(ctx: click.Context, as_json: bool) -> None:
    """Print every verifier key of the log, oldest first, each after a comment saying where it
    is valid: the output is a key file to pin (``--key @FILE`` skips the comments)."""
    with deployment(ctx) as dep:
        periods = dep.keys.periods()
        if as_json:
            for period in periods:
                emit(True, {"origin": dep.keys.origin, **period.as_json()}, "")
            return
        click.echo(
            f"# {dep.keys.origin}: {len(periods)} key{'s' if len(periods) != 1 else ''}, oldest "
            "first; each verifies the notes placed (by ledger index) where it was current"
        )
        for period in periods:
            click.echo(f"# valid {period.describe()}")
            click.echo(period.verifier_key)


@log.command("prove")
@click.option("--index", required=True, type=click.IntRange(min=0))
@click.option("--tree-size", type=click.IntRange(min=1), help="Default: the current size.")
@json_option
@click.pass_context
def log_prove(ctx: click.Context, index: int, tree_size: int | None, as_json: bool) -> None:
    """Print the inclusion proof of one entry."""
    with deployment(ctx) as dep:
        size = tree_size or dep.ledger.size()
        hashes = [base64.b64encode(h).decode() for h in dep.ledger.inclusion_proof(index, size)]
        text = f"index {index} in tree of size {size}, root {dep.ledger.root(size).hex()}\n"
        emit(
            as_json,
            {"index": index, "tree_size": size, "hashes": hashes},
            text + "\n".join(hashes),
        )


# -- log consistency: is a checkpoint kept earlier a prefix of today's log? ----------------------


@dataclass(frozen=True)
class LogSource:
    """What ``log consistency`` reads from a log, the local home's or a server's alike."""

    where: str
    keys: Callable[[], list[NoteVerifier]]
    checkpoint: Callable[[], bytes]
    prove: Callable[[int, int], list[bytes]]
    keys_from: str
    keys_said: str


@contextmanager
def log_source(ctx: click.Context, server: str | None) -> Iterator[LogSource]:
    if not server:
        with deployment(ctx) as dep:
            yield LogSource(
                where=str(dep.config.home),
                keys=lambda: dep.keys.verifiers,
                checkpoint=lambda: dep.ledger.checkpoint().note,
                prove=dep.ledger.consistency_proof,
                keys_from="home",
                keys_said="this home's own keys; pin the key you hold with --key",
            )
        return
    from commands.client import CustosClient

    client = CustosClient(server, "")  # the log's checkpoints, keys and proofs are public

    def fetch(path: str) -> bytes:
        chunks: list[bytes] = []
        client.download(path, {}, chunks.append)
        return b"".join(chunks)

    def keys() -> list[NoteVerifier]:
        try:
            return [NoteVerifier.from_key(k) for k in fetch("/v1/log/key").decode().split()]
        except (UnicodeDecodeError, MalformedNote) as exc:
            raise click.ClickException(f"{server} sent a malformed verifier key: {exc}") from None

    def prove(size1: int, size2: int) -> list[bytes]:
        proof = client.json("GET", "/v1/log/proofs/consistency", {"from": size1, "to": size2})
        try:
            return [base64.b64decode(h, validate=True) for h in proof["hashes"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise click.ClickException(f"{server} sent a malformed proof: {exc}") from None

    yield LogSource(
        where=server,
        keys=keys,
        checkpoint=lambda: fetch("/v1/log/checkpoint"),
        prove=prove,
        keys_from="server",
        keys_said=(
            f"fetched from {server} itself, not pinned: this shows only that the server agrees "
            "with itself; pin the key you obtained separately with --key"
        ),
    )


class NotAPrefix(Exception):
    """The known checkpoint is not shown to be a prefix of today's log; the message says why."""


@dataclass
class Witnessed:
    """What ``log consistency`` found, as far as it got."""

    known: Checkpoint | None = None
    today: Checkpoint | None = None
    proof: list[bytes] = field(default_factory=list)
    problem: str | None = None


def witness_consistency(
    known_note: bytes, verifiers: list[NoteVerifier], source: LogSource, seen: Witnessed
) -> None:
    """Check, against ``verifiers`` only, that the known checkpoint is signed, of the same log
    as today's, no larger, and that an RFC 9162 consistency proof leads from it to today's.
    Fills ``seen`` as it goes; raises NotAPrefix at the first thing that does not hold."""
    try:
        seen.known, _ = open_checkpoint(known_note, verifiers)
    except (MalformedNote, MalformedCheckpoint, NoteVerificationError) as exc:
        raise NotAPrefix(f"the known checkpoint is not one these keys signed: {exc}") from None
    try:
        seen.today, _ = open_checkpoint(source.checkpoint(), verifiers, origin=seen.known.origin)
    except (MalformedNote, MalformedCheckpoint, NoteVerificationError) as exc:
        raise NotAPrefix(f"today's checkpoint is not one these keys signed: {exc}") from None
    known, today = seen.known, seen.today

    def prove(size1: int, size2: int) -> list[bytes]:
        # From an empty tree there is no proof (RFC 9162 2.1.4): none is asked for.
        seen.proof = source.prove(size1, size2) if size1 > 0 else []
        return seen.proof

    try:
        check_extends(known, today, prove)
    except NotExtended as exc:
        if exc.reason == NotExtended.SHRANK:
            raise NotAPrefix(
                f"the known checkpoint has {known.size} entries, today's log only {today.size}: "
                "a log never shrinks, so either the known checkpoint is of a fork or the log "
                "was cut back"
            ) from None
        raise NotAPrefix(
            f"the consistency proof from {known.size} to {today.size} entries fails ({exc}): "
            "today's log does not extend the known checkpoint"
        ) from None


def checkpoint_json(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    return {"size": checkpoint.size, "root": base64.b64encode(checkpoint.root).decode()}


@log.command("consistency")
@click.option(
    "--known-checkpoint",
    "known_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint (signed note) kept earlier, e.g. by a court or a witness.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY|@FILE",
    help="Trust only this verifier key (or the keys in FILE, one per line); repeat. "
    "Default: the home's keys, or with --server the keys the server sends.",
)
@click.option("--server", envvar="CUSTOS_SERVER", help="Check a server's log (CUSTOS_SERVER).")
@json_option
@click.pass_context
def log_consistency(
    ctx: click.Context, known_path: Path, keys: tuple[str, ...], server: str | None, as_json: bool
) -> None:
    """Show that a checkpoint kept earlier is a prefix of today's log; exit 1 if it is not."""
    from custody.verify.__main__ import UsageError as PinnedKeyError
    from custody.verify.__main__ import read_pinned_keys
    from custody.verify.receipt import pinned_verifiers

    known_note = known_path.read_bytes()
    try:
        pinned = pinned_verifiers(read_pinned_keys(keys)) if keys else None
    except PinnedKeyError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from None
    seen = Witnessed()
    try:
        with log_source(ctx, server) as source:
            verifiers = pinned or source.keys()
            keys_from = "pinned" if pinned else source.keys_from
            keys_said = "pinned with --key" if pinned else source.keys_said
            try:
                witness_consistency(known_note, verifiers, source, seen)
            except NotAPrefix as exc:
                seen.problem = str(exc)
    except CustosError as exc:
        raise failure(exc) from None
    report = {
        "consistent": seen.problem is None,
        "problem": seen.problem,
        "log": source.where,
        "origin": seen.known.origin if seen.known else None,
        "known": checkpoint_json(seen.known),
        "today": checkpoint_json(seen.today),
        "proof": [base64.b64encode(h).decode() for h in seen.proof],
        "keys": {
            "source": keys_from,
            "note": keys_said,
            "trusted": [v.verifier_key() for v in verifiers],
        },
    }
    lines = [f"keys trusted ({keys_said}):", *(f"  {v.verifier_key()}" for v in verifiers)]
    for label, checkpoint in (("known checkpoint", seen.known), ("today's checkpoint", seen.today)):
        if checkpoint is not None:
            root = base64.b64encode(checkpoint.root).decode()
            lines.append(f"{label + ':':<20} size {checkpoint.size}, root {root}")
    if seen.problem is None:
        assert seen.known is not None and seen.today is not None
        lines.append(
            f"CONSISTENT: the known checkpoint (size {seen.known.size}) is a prefix of today's "
            f"log at {source.where} (size {seen.today.size}); the consistency proof has "
            f"{len(seen.proof)} hashes"
        )
    else:
        lines.append(f"NOT CONSISTENT: {seen.problem}")
    emit(as_json, report, "\n".join(lines))
    if seen.problem is not None:
        sys.exit(1)


def scrub_json(report: ScrubReport, seconds: float) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "records": report.records,
        "blobs": report.blobs,
        "bytes": report.bytes_read,
        "manifests": report.manifests,
        "seconds": round(seconds, 3),
        "findings": [f.as_json() for f in report.findings],
        "warnings": [w.as_json() for w in report.warnings],
    }


@click.command(cls=Command)
@click.option(
    "--objects",
    "with_objects",
    is_flag=True,
    help="Also re-read every blob and manifest and check every recorded digest.",
)
@json_option
@click.pass_context
def audit(ctx: click.Context, with_objects: bool, as_json: bool) -> None:
    """Recompute the whole ledger and check every kept checkpoint (with --objects, every stored
    blob and manifest too) and that the deployment's files are private; exit 1 on any
    finding."""
    from custody.audit import audit_ledger
    from custody.scrub import scrub_objects
    from storage.private_files import wider_paths

    scrub: ScrubReport | None = None
    with deployment(ctx) as dep:
        warn_unencrypted_keys(dep.config)
        wide = wider_paths(dep.config)
        report = audit_ledger(dep.ledger.store, dep.objects, dep.keys)
        if with_objects:
            progress = ScrubLines() if as_json else ScrubBar()
            started = time.perf_counter()
            try:
                scrub = scrub_objects(dep.evidence, dep.objects, dep.keys, progress=progress)
            finally:
                progress.close()
            seconds = time.perf_counter() - started
    ok = report.ok and (scrub is None or scrub.ok) and not wide
    summary: dict[str, Any] = {
        "ok": ok,
        "size": report.size,
        "subjects": report.subjects,
        "nodes": report.nodes,
        "checkpoints": report.checkpoints,
        "findings": [{"index": f.index, "problem": f.problem} for f in report.findings],
        "wide_paths": [w.as_json() for w in wide],
    }
    if scrub is not None:
        summary["objects"] = scrub_json(scrub, seconds)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    elif report.ok:
        click.echo(
            f"ok: {report.size} entries, {report.subjects} subjects, {report.nodes} nodes, "
            f"{report.checkpoints} checkpoints"
        )
    for finding in [] if as_json else report.findings:
        click.echo(f"FAIL {finding}", err=True)
    for path in [] if as_json else wide:
        click.echo(f"FAIL {path} (other accounts may read it)", err=True)
    if scrub is not None and not as_json:
        mib = scrub.bytes_read / 2**20
        if scrub.ok:
            click.echo(
                f"ok: {scrub.records} records, {scrub.blobs} blobs ({mib:,.1f} MiB read in "
                f"{seconds:.1f} s), {scrub.manifests} manifests"
            )
        for problem in scrub.findings:
            click.echo(f"FAIL {problem}", err=True)
        for warning in scrub.warnings:
            click.echo(f"WARN {warning}", err=True)
    if not ok:
        sys.exit(1)
