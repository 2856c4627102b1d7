"""The ``custos`` command: thin, it parses, calls the same objects the API uses, and prints.

Every command takes ``--json`` (one JSON object per result per line). Local commands act as
the principal named by ``--as`` (default ``operator``, the admin ``custos init`` creates).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from custody.audit import audit_ledger
from custody.bundle import EXPORT_ROLES
from custody.case_export import ExhibitMaterial, InvalidMaterial, case_document
from custody.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint
from custody.digests import (
    parse_expected,
)
from custody.errors import CustosError
from custody.events import Actor, Subject
from custody.evidence import ACTS, require_role
from custody.merkle import InvalidProof, verify_consistency
from custody.note import MalformedNote, NoteVerificationError, NoteVerifier
from custody.order_desk import StoredOrder
from custody.orders import OrderState
from custody.principals import ROLES, Principal
from custody.providers import Provider
from custody.scrub import BlobCheck, ScrubPlan, ScrubReport, scrub_objects
from custody.verify.__main__ import UsageError as PinnedKeyError
from custody.verify.__main__ import read_pinned_keys, verify_command
from custody.verify.receipt import pinned_verifiers
from custody.verify.report import render_report
from service.client import CustosClient
from storage.config import load_config, with_overrides
from storage.deployment import OPERATOR, Deployment, initialise, open_deployment, rotate_key
from storage.webhooks import notice_delivery

if TYPE_CHECKING:
    # Loaded by the commands that use them: they bring Flask and the API's schemas.
    from service.backends import Evidence, Orders, Progress

F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B")


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")(
        command
    )


def as_option(command: F) -> F:
    return click.option(
        "--as", "as_name", default=OPERATOR, show_default=True, help="Principal to act as."
    )(command)


def emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(obj, sort_keys=True) if as_json else text)


@contextmanager
def deployment(ctx: click.Context) -> Iterator[Deployment]:
    try:
        opened = open_deployment(load_config(ctx.obj["home"]))
    except CustosError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield opened
    except CustosError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        opened.close()


def acting_admin(dep: Deployment, name: str) -> Principal:
    principal = dep.principals.get(name)
    if not principal.active or principal.role != "admin":
        raise click.ClickException(f"{name!r} is not an active admin")
    return principal


def principal_json(p: Principal) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "role": p.role,
        "provider": p.provider_id,
        "created_at": p.created_at.isoformat(),
        "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None,
    }


@click.group()
@click.option(
    "--home",
    envvar="CUSTOS_HOME",
    default="./var",
    show_default=True,
    help="Deployment home (CUSTOS_HOME).",
)
@click.pass_context
def main(ctx: click.Context, home: str) -> None:
    """Custos: evidence preservation with a verifiable chain of custody."""
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@main.command()
@click.option("--origin", help="Log origin, e.g. custos.example.org/ledger (fixed once set).")
@click.option(
    "--store", help="Object store: file://PATH or s3://BUCKET/PREFIX (created or checked)."
)
@json_option
@click.pass_context
def init(ctx: click.Context, origin: str | None, store: str | None, as_json: bool) -> None:
    """Create a deployment (config, database, key, operator); running it again changes nothing."""
    try:
        config = load_config(ctx.obj["home"])
        if store:
            config = with_overrides(config, store=store)
        result = initialise(config, origin)
    except CustosError as exc:
        raise click.ClickException(str(exc)) from None
    dep = result.deployment
    try:
        key = dep.keys.current.verifier_key
        info = {
            "home": str(dep.config.home),
            "origin": dep.keys.origin,
            "key": key,
            "created": result.created,
            "operator_token": result.operator_token,
        }
        lines = [
            f"home:   {dep.config.home}",
            f"origin: {dep.keys.origin}",
            f"key:    {key}",
        ]
        if result.operator_token:
            lines.append(f"operator token (shown once, keep it safe): {result.operator_token}")
        elif not result.created:
            lines.append("already initialised; nothing changed")
        emit(as_json, info, "\n".join(lines))
    finally:
        dep.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a client may send or take nothing before it is cut off "
    "(default: CUSTOS_REQUEST_TIMEOUT, 30).",
)
@click.option(
    "--worker-timeout",
    default=120,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds a worker may hang (not reading an upload) before it is restarted.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    request_timeout: float | None,
    worker_timeout: int,
) -> None:
    """Serve the API under gunicorn."""
    import os
    import shutil
    import tempfile

    from service.metrics import MULTIPROC_DIR
    from service.wsgi import serve as run

    with deployment(ctx) as dep:
        config = dep.config  # fail fast, before forking workers, if the home is not usable
    # Each worker counts into its own files in a folder fresh for this run, and a scrape adds
    # them all up (service.metrics); a folder left by a killed run is never read again.
    (config.home / "run").mkdir(exist_ok=True)
    os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="metrics-", dir=config.home / "run")
    master = os.getpid()
    try:
        run(
            ctx.obj["home"],
            host,
            port,
            workers,
            timeout=worker_timeout,
            log_format=config.log_format,
            request_timeout=request_timeout or config.request_timeout,
        )
    finally:
        # Workers are forked inside run() and leave through here too (their SystemExit
        # unwinds this frame): only the master, once its workers are gone, removes the
        # folder, or a worker that stops early would take it from one still booting.
        if os.getpid() == master:
            shutil.rmtree(os.environ.pop(MULTIPROC_DIR), ignore_errors=True)


@main.group()
def principal() -> None:
    """Principals and their tokens."""


@principal.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--provider", "provider_id", help="Provider id (role provider only).")
@as_option
@json_option
@click.pass_context
def principal_add(
    ctx: click.Context, name: str, role: str, provider_id: str | None, as_name: str, as_json: bool
) -> None:
    """Add a principal; prints its bearer token once."""
    with deployment(ctx) as dep:
        admin = acting_admin(dep, as_name)
        added, token = dep.principals.add(name, role, admin.actor, provider_id)
        emit(
            as_json,
            {**principal_json(added), "token": token},
            f"{added.name} ({added.role}) id {added.id}\ntoken (shown once): {token}",
        )


@principal.command("list")
@json_option
@click.pass_context
def principal_list(ctx: click.Context, as_json: bool) -> None:
    """List principals."""
    with deployment(ctx) as dep:
        for p in dep.principals.list():
            state = "active" if p.active else f"revoked {p.revoked_at:%Y-%m-%d %H:%M}"
            emit(as_json, principal_json(p), f"{p.name:<24} {p.role:<10} {p.id}  {state}")


@principal.command("revoke")
@click.argument("name")
@as_option
@json_option
@click.pass_context
def principal_revoke(ctx: click.Context, name: str, as_name: str, as_json: bool) -> None:
    """Revoke a principal's token at once."""
    with deployment(ctx) as dep:
        admin = acting_admin(dep, as_name)
        revoked = dep.principals.revoke(name, admin.actor)
        emit(as_json, principal_json(revoked), f"revoked {revoked.name}")


@main.group()
def provider() -> None:
    """Service providers: the addressees of orders."""


@provider.command("add")
@click.argument("name")
@click.option("--jurisdiction", required=True, help="Where the provider is established, e.g. IE.")
@click.option("--legal-representative", required=True)
@click.option("--contact", required=True, help="Where lawful requests go (e-mail, address).")
@click.option("--notification-url", help="http(s) URL that receives signed notices of orders.")
@as_option
@json_option
@click.pass_context
def provider_add(
    ctx: click.Context,
    name: str,
    jurisdiction: str,
    legal_representative: str,
    contact: str,
    notification_url: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Register a provider (recorded as provider.registered); prints its id."""
    fields = {
        "name": name,
        "jurisdiction": jurisdiction,
        "legal_representative": legal_representative,
        "contact": contact,
        "notification_url": notification_url,
    }
    with deployment(ctx) as dep:
        admin = acting_admin(dep, as_name)
        added = dep.providers.add(fields, admin.actor)
        emit(as_json, added.as_json(), f"{added.name} ({added.jurisdiction}) id {added.id}")


def provider_line(p: Provider) -> str:
    return f"{p.name:<24} {p.jurisdiction:<6} {p.id}  {p.notification_url or ''}".rstrip()


@provider.command("list")
@json_option
@click.pass_context
def provider_list(ctx: click.Context, as_json: bool) -> None:
    """List providers."""
    with deployment(ctx) as dep:
        for p in dep.providers.list():
            emit(as_json, p.as_json(), provider_line(p))


@main.group()
def key() -> None:
    """The service signing key."""


@key.command("rotate")
@as_option
@json_option
@click.pass_context
def key_rotate(ctx: click.Context, as_name: str, as_json: bool) -> None:
    """Add a new signing key; the next checkpoint is signed by the old and the new key."""
    with deployment(ctx) as dep:
        admin = acting_admin(dep, as_name)
        old, new, index = rotate_key(dep, admin.actor)
        emit(
            as_json,
            {"old": old, "new": new, "index": index},
            f"old key: {old}\nnew key: {new}\n"
            f"key.rotated at index {index}; the hand-over checkpoint carries both signatures",
        )


@main.group()
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
    with deployment(ctx) as dep:
        vkey = dep.keys.current.verifier_key
        emit(as_json, {"key": vkey, "origin": dep.keys.origin}, vkey)


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


# -- evidence: on the local home, or against a server -----------------------------------------


def server_options(command: F) -> F:
    command = click.option("--server", envvar="CUSTOS_SERVER", help="Server URL (CUSTOS_SERVER).")(
        command
    )
    command = click.option("--token", envvar="CUSTOS_TOKEN", help="Bearer token (CUSTOS_TOKEN).")(
        command
    )
    return as_option(json_option(command))


@contextmanager
def api_backend(
    ctx: click.Context,
    server: str | None,
    token: str | None,
    as_name: str,
    local: Callable[[Deployment, Actor], B],
    remote: Callable[[CustosClient], B],
) -> Iterator[B]:
    """The server's API when ``--server`` is given, else the local home as ``--as``."""
    try:
        if server:
            if not token:
                raise click.UsageError("--server needs --token (or CUSTOS_TOKEN)")
            yield remote(CustosClient(server, token))
            return
        with deployment(ctx) as dep:
            principal = dep.principals.get(as_name)
            if not principal.active:
                raise click.ClickException(f"{as_name!r} is revoked")
            yield local(dep, principal.actor)
    except CustosError as exc:
        raise click.ClickException(str(exc)) from None


def evidence_backend(
    ctx: click.Context, server: str | None, token: str | None, as_name: str
) -> AbstractContextManager[Evidence]:
    from service.backends import LocalEvidence, RemoteEvidence

    return api_backend(ctx, server, token, as_name, LocalEvidence, RemoteEvidence)


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Progress]:
    """A progress bar on standard error (shown on a terminal; silent otherwise)."""
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def intake_metadata(kind: str, case: str, exhibit: str, **optional: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"kind": kind, "case": case, "exhibit": exhibit}
    acquisition = {
        k: optional.pop(k) for k in ("tool", "acquired_by", "acquired_at") if optional.get(k)
    }
    if acquisition:
        metadata["acquisition"] = acquisition
    metadata.update({k: v for k, v in optional.items() if v})
    return metadata


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--case", required=True)
@click.option(
    "--exhibit",
    required=True,
    help="Exhibit number (with several files: a prefix, -1, -2 ... added).",
)
@click.option("--description", help="Default: the file name.")
@click.option("--parent", help="The exhibit this one was derived from (evidence id).")
@click.option("--acquired-by")
@click.option("--acquired-at", help="RFC 3339 time of acquisition.")
@click.option("--tool", help="Acquisition tool and version.")
@click.option("--authority", help="Warrant or order reference.")
@click.option(
    "--expect", multiple=True, help="ALG:HEX the acquisition recorded (sha256, sha1, md5 ...)."
)
@server_options
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[Path, ...],
    case: str,
    exhibit: str,
    description: str | None,
    parent: str | None,
    acquired_by: str | None,
    acquired_at: str | None,
    tool: str | None,
    authority: str | None,
    expect: tuple[str, ...],
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Ingest files: hashed as they stream in, signed, stored write-once, one ledger event each."""
    try:
        expected = dict(parse_expected(e) for e in expect)
    except CustosError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None
    if expected and len(paths) > 1:
        raise click.BadParameter("--expect applies to a single file", param_hint="--expect")
    with evidence_backend(ctx, server, token, as_name) as backend:
        for number, path in enumerate(paths, start=1):
            metadata = intake_metadata(
                "digital",
                case,
                exhibit if len(paths) == 1 else f"{exhibit}-{number}",
                description=description or path.name,
                parent=parent,
                acquired_by=acquired_by,
                acquired_at=acquired_at,
                tool=tool,
                authority=authority,
            )
            with progress_bar(path.stat().st_size, path.name) as progress:
                try:
                    done = backend.ingest(path, metadata, expected, progress)
                except CustosError as exc:
                    raise click.ClickException(f"{path}: {exc}; nothing was recorded") from None
            text = (
                f"{done['id']}  sha256:{done['digests']['sha256']}  "
                f"ledger index {done['ledger_index']}  {path}"
            )
            emit(as_json, {**done, "path": str(path)}, text)


@main.group()
def evidence() -> None:
    """Evidence items: list, show, custody history, acts, download, physical items."""


@evidence.command("register")
@click.option("--case", required=True)
@click.option("--exhibit", required=True)
@click.option("--description", required=True)
@click.option("--parent")
@click.option("--authority")
@server_options
@click.pass_context
def evidence_register(
    ctx: click.Context,
    case: str,
    exhibit: str,
    description: str,
    parent: str | None,
    authority: str | None,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Register a physical item (a seized device, a document): no bytes, the same custody."""
    metadata = intake_metadata(
        "physical", case, exhibit, description=description, parent=parent, authority=authority
    )
    with evidence_backend(ctx, server, token, as_name) as backend:
        done = backend.register(metadata)
    emit(as_json, done, f"{done['id']}  physical  ledger index {done['ledger_index']}")


@evidence.command("list")
@click.option("--case")
@click.option("--exhibit")
@server_options
@click.pass_context
def evidence_list(
    ctx: click.Context,
    case: str | None,
    exhibit: str | None,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """List items, oldest first."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        for item in backend.list(case, exhibit):
            state = "disposed" if item["state"]["disposed"] else ""
            text = f"{item['id']}  {item['kind']:<8}  {item['case']}  {item['exhibit']}  {state}"
            emit(as_json, item, text.rstrip())


@evidence.command("show")
@click.argument("evidence_id")
@server_options
@click.pass_context
def evidence_show(
    ctx: click.Context,
    evidence_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """One item: its description, digests, state and the acts its state allows."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        item = backend.show(evidence_id)
    emit(as_json, item, json.dumps(item, indent=2, sort_keys=True))


@evidence.command("custody")
@click.argument("evidence_id")
@server_options
@click.pass_context
def evidence_custody(
    ctx: click.Context,
    evidence_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """The item's custody history: every event, in ledger order."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        history = backend.custody(evidence_id)
    for event in history["events"]:
        who = f"{event['actor']['id']} ({event['actor']['role']})"
        details = ", ".join(f"{k}={v}" for k, v in sorted(event["data"].items()))
        text = f"#{event['index']:<6} {event['time']}  {event['type']:<26} {who}  {details}"
        emit(as_json, event, text)


@evidence.command("event")
@click.argument("evidence_id")
@click.argument("act", type=click.Choice([a.split(".", 1)[1] for a in ACTS]))
@click.option(
    "--field", "-f", "fields", multiple=True, metavar="NAME=VALUE", help="An event field; repeat."
)
@server_options
@click.pass_context
def evidence_event(
    ctx: click.Context,
    evidence_id: str,
    act: str,
    fields: tuple[str, ...],
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Record a custody act, e.g. ``event ev_.. transferred -f from=A -f to=B ...``."""
    data = {}
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
        data[name] = value
    with evidence_backend(ctx, server, token, as_name) as backend:
        done = backend.act(evidence_id, f"evidence.{act}", data)
    event = done["event"]
    emit(as_json, done, f"#{event['index']} {event['type']}  now: {done['state']}")


@evidence.command("download")
@click.argument("evidence_id")
@click.option("--purpose", required=True, help="Why: recorded in the evidence.accessed event.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@server_options
@click.pass_context
def evidence_download(
    ctx: click.Context,
    evidence_id: str,
    purpose: str,
    output: Path,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Download an item's bytes (recorded as evidence.accessed), re-checking its digests."""
    with evidence_backend(ctx, server, token, as_name) as backend:
        size = int(backend.show(evidence_id).get("size") or 0)
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as out, progress_bar(size, output.name) as progress:
                done = backend.download(evidence_id, purpose, out, progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
    emit(as_json, {**done, "path": str(output)}, f"{output}  sha256:{done['digests']['sha256']}")


# -- orders: sweep on the local home; list and show also against a server ----------------------


@main.group()
def orders() -> None:
    """Production and preservation orders: deadlines swept, listed, shown."""


def order_line(order: dict[str, Any]) -> str:
    due = order["due"] or "-"
    return f"{order['id']}  {order['reference']}  {order['provider']}  {order['state']}  due {due}"


@orders.command("sweep")
@json_option
@click.pass_context
def orders_sweep(ctx: click.Context, as_json: bool) -> None:
    """Expire the orders that lapsed unanswered, list those still owed past their deadline,
    and deliver the notices due to providers."""
    with deployment(ctx) as dep:
        report = dep.orders.sweep()
        found: list[tuple[str, StoredOrder]] = [
            *(("expired", acted.stored) for acted in report.expired),
            *(("overdue", stored) for stored in report.overdue),
        ]
        for outcome, stored in found:
            view = dep.orders.summary(stored)
            emit(as_json, {"sweep": outcome, **view}, f"{outcome:<8} {order_line(view)}")
        # One pass over the notices due: a failed one is not due again until its retry time.
        sent = notice_delivery(dep).deliver_due(limit=sys.maxsize)
        if sent.attempted:
            counts = ", ".join(f"{n} {what}" for what, n in sent.as_json().items())
            emit(as_json, {"sweep": "notices", **sent.as_json()}, f"notices  {counts}")


def orders_backend(
    ctx: click.Context, server: str | None, token: str | None, as_name: str
) -> AbstractContextManager[Orders]:
    from service.backends import LocalOrders, RemoteOrders

    return api_backend(ctx, server, token, as_name, LocalOrders, RemoteOrders)


@orders.command("list")
@click.option("--status", type=click.Choice([s.value for s in OrderState]))
@click.option("--provider", help="Provider id.")
@click.option("--case")
@click.option("--overdue", is_flag=True, help="Only orders still owed past their deadline.")
@server_options
@click.pass_context
def orders_list(
    ctx: click.Context,
    status: str | None,
    provider: str | None,
    case: str | None,
    overdue: bool,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """List orders, oldest first (authority or approver)."""
    with orders_backend(ctx, server, token, as_name) as backend:
        for order in backend.list(status, provider, case, overdue):
            late = "  OVERDUE" if order["overdue"] else ""
            emit(as_json, order, f"{order_line(order)}  case {order['case']}{late}")


@orders.command("show")
@click.argument("order_id")
@server_options
@click.pass_context
def orders_show(
    ctx: click.Context,
    order_id: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """One order: its document, state, deadline, allowed actions, timeline and notices."""
    with orders_backend(ctx, server, token, as_name) as backend:
        order = backend.show(order_id)
    emit(as_json, order, json.dumps(order, indent=2, sort_keys=True))


@main.command(
    "verify-receipt",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def verify_receipt(args: tuple[str, ...]) -> None:
    """Verify a receipt file offline against pinned keys: FILE --key VKEY [--key ...] [--json]."""
    sys.exit(verify_command("receipt", list(args), prog="custos verify-receipt"))


def case_export(dep: Deployment, by: Actor, evidence_id: str) -> dict[str, Any]:
    """The item's provenance as a CASE/UCO JSON-LD document."""
    require_role(by.role, EXPORT_ROLES, "export exhibits")
    record = dep.handling.get(evidence_id)
    entries = dep.ledger.subject_entries(Subject("evidence", record.id).key)
    material = ExhibitMaterial(record, [(e.index, e.leaf) for e in entries], dep.ledger.origin)
    try:
        return case_document(material)
    except InvalidMaterial as exc:
        raise click.ClickException(f"{evidence_id}: {exc}") from None


@main.command()
@click.argument("evidence_ids", metavar="EVIDENCE_ID...", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--with-content", is_flag=True, help="Include the bytes (recorded as evidence.accessed)."
)
@click.option(
    "--known-checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint kept earlier: the bundle proves the log extends it.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["exhibit", "case"]),
    default="exhibit",
    show_default=True,
    help="exhibit: the bundle docs/bundle.md describes; case: CASE/UCO JSON-LD of one item.",
)
@server_options
@click.pass_context
def export(
    ctx: click.Context,
    evidence_ids: tuple[str, ...],
    output: Path,
    with_content: bool,
    known_checkpoint: Path | None,
    output_format: str,
    server: str | None,
    token: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Write an exhibit bundle for a court to verify offline (custos/exhibit/v1), or an item's
    provenance as CASE JSON-LD; with --server, an item's bundle as that server makes it."""
    if server:
        if known_checkpoint or output_format != "exhibit":
            raise click.UsageError("with --server: one item's exhibit, without --known-checkpoint")
        remote_export(server, token, evidence_ids, output, with_content, as_json)
        return
    if output_format == "case" and (len(evidence_ids) > 1 or with_content or known_checkpoint):
        raise click.UsageError(
            "--format case takes one evidence id, without --with-content or --known-checkpoint"
        )
    known = known_checkpoint.read_bytes() if known_checkpoint else None
    with deployment(ctx) as dep:
        principal = dep.principals.get(as_name)
        if not principal.active:
            raise click.ClickException(f"{as_name!r} is revoked")
        partial = output.with_name(output.name + ".part")
        try:
            if output_format == "case":
                document = case_export(dep, principal.actor, evidence_ids[0])
                partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
                partial.replace(output)
                emit(as_json, {"format": "case", "path": str(output)}, str(output))
                return
            records = [dep.handling.get(evidence_id) for evidence_id in evidence_ids]
            size = sum(r.size or 0 for r in records if r.kind == "digital")
            bar: AbstractContextManager[Progress | None] = (
                progress_bar(size, output.name) if with_content else nullcontext()
            )
            with partial.open("w+b") as out, bar as progress:
                summary = dep.bundles.export(
                    evidence_ids,
                    out,
                    by=principal.actor,
                    with_content=with_content,
                    known_checkpoint=known,
                    progress=progress,
                )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(output)
    accessed = "".join(f", evidence.accessed #{i}" for i in summary.accessed)
    verified = "VERIFIED" if summary.verified else "NOT VERIFIED (see report.html)"
    text = (
        f"{output}  {len(summary.items)} item(s), {len(summary.members)} members, "
        f"checkpoint {summary.checkpoint_size}{accessed}; the service's own check: {verified}"
    )
    emit(as_json, {**summary.as_json(), "path": str(output)}, text)


def remote_export(
    server: str,
    token: str | None,
    evidence_ids: tuple[str, ...],
    output: Path,
    with_content: bool,
    as_json: bool,
) -> None:
    """``GET /v1/evidence/{id}/bundle`` into ``output`` (through ``output.part``)."""
    if len(evidence_ids) != 1:
        raise click.UsageError("with --server, export one item (the API bundles one)")
    if not token:
        raise click.UsageError("--server needs --token (or CUSTOS_TOKEN)")
    [evidence_id] = evidence_ids
    query = {"with_content": "true"} if with_content else {}
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as out:
            CustosClient(server, token).download(
                f"/v1/evidence/{evidence_id}/bundle", query, out.write
            )
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, CustosError):
            raise click.ClickException(str(exc)) from None
        raise
    partial.replace(output)
    size = output.stat().st_size
    emit(
        as_json,
        {"path": str(output), "items": [evidence_id], "server": server, "size": size},
        f"{output}  1 item(s), {size} bytes, from {server}",
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
    if known.size > today.size:
        raise NotAPrefix(
            f"the known checkpoint has {known.size} entries, today's log only {today.size}: a "
            "log never shrinks, so either the known checkpoint is of a fork or the log was cut "
            "back"
        )
    if known.size > 0:  # from an empty tree there is no proof (RFC 9162 2.1.4)
        seen.proof = source.prove(known.size, today.size)
    try:
        verify_consistency(known.size, today.size, seen.proof, known.root, today.root)
    except InvalidProof as exc:
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
        raise click.ClickException(str(exc)) from None
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


@main.command(
    "verify",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def verify_exhibit(args: tuple[str, ...]) -> None:
    """Verify an exhibit bundle offline against pinned keys: EXHIBIT.zip --key VKEY [--key ...]
    [--artifact FILE] [--known-checkpoint FILE] [--json] [--report OUT.html]."""
    sys.exit(verify_command("bundle", list(args), prog="custos verify"))


@main.command()
@click.argument("evidence_ids", metavar="EVIDENCE_ID...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML page.",
)
@as_option
@json_option
@click.pass_context
def report(
    ctx: click.Context, evidence_ids: tuple[str, ...], output: Path, as_name: str, as_json: bool
) -> None:
    """Write the items' custody report: their exhibit bundle, verified with this deployment's
    own keys, as one printable HTML page (the bundle's own report.html); exit 1 (page written)
    when it does not verify."""
    with deployment(ctx) as dep:
        principal = dep.principals.get(as_name)
        if not principal.active:
            raise click.ClickException(f"{as_name!r} is revoked")
        exported = dep.bundles.export(evidence_ids, io.BytesIO(), by=principal.actor)
    verification = exported.verification
    assert verification is not None  # exported with its report
    partial = output.with_name(output.name + ".part")
    partial.write_text(render_report(verification), encoding="utf-8")
    partial.replace(output)
    failed = sorted({step.number for step in verification.failed})
    verdict = "VERIFIED" if verification.ok else f"NOT VERIFIED (failed step {failed})"
    summary = {
        "path": str(output),
        "ok": verification.ok,
        "items": [item.evidence_id for item in verification.items],
        "failed_steps": failed,
    }
    emit(as_json, summary, f"{verdict}: {output}")
    if not verification.ok:
        sys.exit(1)


class ScrubBar:
    """``audit --objects`` progress for people: a bar of the bytes read, on standard error."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def planned(self, plan: ScrubPlan) -> None:
        label = f"reading {plan.blobs} blobs, {plan.bytes / 2**20:,.1f} MiB"
        self.bar = click.progressbar(
            length=max(plan.bytes, 1),
            label=label,
            file=sys.stderr,
            item_show_func=lambda _: f"{self.done / 2**20:,.0f} MiB",
        )

    def read(self, size: int) -> None:
        self.done += size
        self.bar.update(size)

    def checked(self, check: BlobCheck) -> None:
        pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


class ScrubLines:
    """``audit --objects --json`` progress for programs: a line for the plan and one per blob
    checked (the summary follows last)."""

    def __init__(self) -> None:
        self.done = self.total = 0

    def planned(self, plan: ScrubPlan) -> None:
        self.total = plan.bytes
        click.echo(json.dumps({"scrub": "planned", **plan.__dict__}, sort_keys=True))

    def read(self, size: int) -> None:
        self.done += size

    def checked(self, check: BlobCheck) -> None:
        line = {"scrub": "checked", **check.__dict__, "read": self.done, "total": self.total}
        click.echo(json.dumps(line, sort_keys=True))

    def close(self) -> None:
        pass


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


@main.command()
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
    blob and manifest too); exit 1 on any finding."""
    scrub: ScrubReport | None = None
    with deployment(ctx) as dep:
        report = audit_ledger(dep.ledger.store, dep.objects, dep.keys)
        if with_objects:
            progress = ScrubLines() if as_json else ScrubBar()
            started = time.perf_counter()
            try:
                scrub = scrub_objects(dep.evidence, dep.objects, dep.keys, progress=progress)
            finally:
                progress.close()
            seconds = time.perf_counter() - started
    ok = report.ok and (scrub is None or scrub.ok)
    summary: dict[str, Any] = {
        "ok": ok,
        "size": report.size,
        "subjects": report.subjects,
        "nodes": report.nodes,
        "checkpoints": report.checkpoints,
        "findings": [{"index": f.index, "problem": f.problem} for f in report.findings],
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
    if scrub is not None and not as_json:
        mib = scrub.bytes_read / 2**20
        if scrub.ok:
            click.echo(
                f"ok: {scrub.records} records, {scrub.blobs} blobs ({mib:,.1f} MiB read in "
                f"{seconds:.1f} s), {scrub.manifests} manifests"
            )
        for failure in scrub.findings:
            click.echo(f"FAIL {failure}", err=True)
        for warning in scrub.warnings:
            click.echo(f"WARN {warning}", err=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
