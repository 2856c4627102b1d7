"""``custos principal`` and ``custos key``: who may act, and the service signing key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from commands.common import acting_principal, as_option, deployment, emit, json_option
from custody.events import format_time
from custody.principals import ROLES, Unauthenticated

if TYPE_CHECKING:
    from custody.principals import Principal


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
        admin = acting_principal(dep, as_name)
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
        admin = acting_principal(dep, as_name)
        revoked = dep.principals.revoke(name, admin.actor)
        emit(as_json, principal_json(revoked), f"revoked {revoked.name}")


@principal.command("login-link")
@click.argument("name")
@as_option
@json_option
@click.pass_context
def principal_login_link(ctx: click.Context, name: str, as_name: str, as_json: bool) -> None:
    """Print a sign-in link for NAME's pages: it works once, within 15 minutes.

    The link is built from the configured public URL (CUSTOS_PUBLIC_URL), so the person
    never handles a raw token."""
    with deployment(ctx) as dep:
        acting = acting_principal(dep, as_name)
        public_url = dep.config.public_url
        if not public_url:
            raise click.ClickException(
                "set public_url in custos.toml (or CUSTOS_PUBLIC_URL): the address people "
                "reach Custos at, from which the link is built"
            )
        try:
            principal, secret, expires_at = dep.sign_in.make_link(name, acting.actor)
        except Unauthenticated as exc:
            raise click.ClickException(str(exc)) from None
    url = f"{public_url.rstrip('/')}/sign-in/link/{secret}"
    found = {
        "name": principal.name,
        "role": principal.role,
        "url": url,
        "expires_at": format_time(expires_at),
    }
    emit(as_json, found, url)


@click.group()
def key() -> None:
    """The service signing key."""


@key.command("rotate")
@as_option
@json_option
@click.pass_context
def key_rotate(ctx: click.Context, as_name: str, as_json: bool) -> None:
    """Add a new signing key; the next checkpoint is signed by the old and the new key."""
    from storage.deployment import rotate_key

    with deployment(ctx) as dep:
        admin = acting_principal(dep, as_name)
        old, new, index = rotate_key(dep, admin.actor)
        emit(
            as_json,
            {"old": old, "new": new, "index": index},
            f"old key: {old}\nnew key: {new}\n"
            f"key.rotated at index {index}; the hand-over checkpoint carries both signatures",
        )


@principal.command("totp")
@click.argument("name")
@as_option
@json_option
@click.pass_context
def principal_totp(ctx: click.Context, name: str, as_name: str, as_json: bool) -> None:
    """Enrol NAME for a second factor (TOTP, RFC 6238): print, once, the otpauth:// URI to
    give to their authenticator app. Any earlier enrolment stops working."""
    with deployment(ctx) as dep:
        acting = acting_principal(dep, as_name)
        try:
            principal, uri = dep.sign_in.enrol_totp(name, acting.actor)
        except Unauthenticated as exc:
            raise click.ClickException(str(exc)) from None
    emit(as_json, {"name": principal.name, "role": principal.role, "otpauth_uri": uri}, uri)
