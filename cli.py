"""The ``custos`` command: thin, it parses, calls the same objects the API uses, and prints.

Every command takes ``--json`` (one JSON object per result per line). Local commands act as
the principal named by ``--as`` (default ``operator``, the admin ``custos init`` creates).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import click

from custody.audit import audit_ledger
from custody.bundle import EXPORT_ROLES
from custody.case_export import ExhibitMaterial, InvalidMaterial, case_document
from custody.digests import (
    parse_expected,
)
from custody.errors import CustosError
from custody.events import Actor, Subject
from custody.evidence import ACTS, require_role
from custody.order_desk import StoredOrder
from custody.orders import OrderState
from custody.principals import ROLES, Principal
from custody.providers import Provider
from custody.verify.__main__ import verify_command
from service.backends import (
    Evidence,
    LocalEvidence,
    LocalOrders,
    Orders,
    Progress,
    RemoteEvidence,
    RemoteOrders,
)
from service.client import CustosClient
from storage.config import load_config, with_overrides
from storage.deployment import OPERATOR, Deployment, initialise, open_deployment, rotate_key
from storage.webhooks import notice_delivery

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
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the API under gunicorn."""
    from service.wsgi import serve as run

    with deployment(ctx):
        pass  # fail fast, before forking workers, if the home is not usable
    run(ctx.obj["home"], host, port, workers)


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
@as_option
@json_option
@click.pass_context
def export(
    ctx: click.Context,
    evidence_ids: tuple[str, ...],
    output: Path,
    with_content: bool,
    known_checkpoint: Path | None,
    output_format: str,
    as_name: str,
    as_json: bool,
) -> None:
    """Write an exhibit bundle for a court to verify offline (custos/exhibit/v1), or an item's
    provenance as CASE JSON-LD."""
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
    text = (
        f"{output}  {len(summary.items)} item(s), {len(summary.members)} members, "
        f"checkpoint {summary.checkpoint_size}{accessed}"
    )
    emit(as_json, {**summary.as_json(), "path": str(output)}, text)


@main.command()
@json_option
@click.pass_context
def audit(ctx: click.Context, as_json: bool) -> None:
    """Recompute the whole ledger and check every kept checkpoint; exit 1 on any finding."""
    with deployment(ctx) as dep:
        report = audit_ledger(dep.ledger.store, dep.objects, dep.keys)
    summary = {
        "ok": report.ok,
        "size": report.size,
        "subjects": report.subjects,
        "nodes": report.nodes,
        "checkpoints": report.checkpoints,
        "findings": [{"index": f.index, "problem": f.problem} for f in report.findings],
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    elif report.ok:
        click.echo(
            f"ok: {report.size} entries, {report.subjects} subjects, {report.nodes} nodes, "
            f"{report.checkpoints} checkpoints"
        )
    else:
        for finding in report.findings:
            click.echo(f"FAIL {finding}", err=True)
    if not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
