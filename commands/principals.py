"""``custos principal`` and ``custos key``: who may act, and the service signing key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from commands.common import (
    Group,
    acting_principal,
    as_option,
    deployment,
    emit,
    emit_table,
    json_option,
)
from custody.events import format_time
from custody.principals import ROLES, Unauthenticated

if TYPE_CHECKING:
    from custody.principals import Principal


def principal_json(p: Principal) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "display_name": p.display_name,
        "role": p.role,
        "provider": p.provider_id,
        "email": p.email,
        "created_at": p.created_at.isoformat(),
        "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None,
    }


def _standing(revoked_at: str | None) -> str:
    return f"revoked {revoked_at[:16].replace('T', ' ')}" if revoked_at else "active"


@click.group(cls=Group)
def principal() -> None:
    """Principals and their tokens."""


@principal.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--provider", "provider_id", help="Provider id (role provider only).")
@click.option("--email", help="E-mail address for alerts (local@domain), if any.")
@click.option(
    "--display-name",
    help='How people read the principal ("Dr Ana Ruiz"); the ledger records a commitment.',
)
@as_option
@json_option
@click.pass_context
def principal_add(
    ctx: click.Context,
    name: str,
    role: str,
    provider_id: str | None,
    email: str | None,
    display_name: str | None,
    as_name: str,
    as_json: bool,
) -> None:
    """Add a principal; prints its bearer token once."""
    with deployment(ctx) as dep:
        admin = acting_principal(dep, as_name)
        added, token = dep.principals.add(
            name, role, admin.actor, provider_id, email, display_name=display_name
        )
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
        emit_table(
            as_json,
            (principal_json(p) for p in dep.principals.list()),
            ("NAME", "DISPLAY NAME", "ROLE", "ID", "STATE"),
            lambda p: (
                p["name"],
                p["display_name"] or "-",
                p["role"],
                p["id"],
                _standing(p["revoked_at"]),
            ),
            "no principals",
        )


@principal.command("name")
@click.argument("name")
@click.argument("display_name")
@as_option
@json_option
@click.pass_context
def principal_name(
    ctx: click.Context, name: str, display_name: str, as_name: str, as_json: bool
) -> None:
    """Give a principal a display name (principal.named; the ledger records a commitment)."""
    with deployment(ctx) as dep:
        admin = acting_principal(dep, as_name)
        named = dep.principals.name(name, display_name, admin.actor)
        emit(as_json, principal_json(named), f"{named.name} is now named {display_name}")


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


@click.group(cls=Group)
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
