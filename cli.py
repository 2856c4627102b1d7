"""The ``custos`` command: thin, it parses, calls the same objects the API uses, and prints.

Every command takes ``--json`` (one JSON object per result per line). Local commands act as
the principal named by ``--as`` (default ``operator``, the admin ``custos init`` creates).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from custody.audit import audit_ledger
from custody.errors import CustosError
from custody.principals import ROLES, Principal
from storage.config import load_config
from storage.deployment import OPERATOR, Deployment, initialise, open_deployment, rotate_key

F = TypeVar("F", bound=Callable[..., Any])


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
@json_option
@click.pass_context
def init(ctx: click.Context, origin: str | None, as_json: bool) -> None:
    """Create a deployment (config, database, key, operator); running it again changes nothing."""
    try:
        result = initialise(load_config(ctx.obj["home"]), origin)
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
            f"old key: {old}\nnew key: {new}\nkey.rotated at index {index}; restart servers",
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
