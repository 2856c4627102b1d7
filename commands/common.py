"""Shared by the ``custos`` commands: the ``--json``, ``--as`` and ``--server`` options,
output, the deployment a command acts on, and the choice of the local home or a server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from custody.errors import CustosError
from custody.principals import OPERATOR

if TYPE_CHECKING:
    # What a command needs only when it runs (SQLAlchemy, the stores, the bundle writers)
    # is imported there, so that ``custos --help`` and the offline commands start at once.
    from commands.client import CustosClient
    from custody.events import Actor
    from custody.principals import Principal
    from storage.config import Config
    from storage.deployment import Deployment

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


KEY_WARNINGS = "custos.keys"
"""The logger that warns of an unencrypted key each time a process loads the key ring."""

_warned: set[str] = set()


def quiet_key_warnings(ctx: click.Context) -> None:
    """Every command loads the key ring; the unencrypted-key warning is for ``init`` and
    ``audit`` to give (``warn_unencrypted_keys``), not every command, and never on a progress
    bar's line. Called as the command line starts; the logger is as it was once the command
    is done, so a program that runs commands in its own process (a test) keeps its logs."""
    logger = logging.getLogger(KEY_WARNINGS)
    level = logger.level
    logger.setLevel(logging.ERROR)
    ctx.call_on_close(lambda: logger.setLevel(level))


def warn_unencrypted_keys(config: Config) -> None:
    """Say on standard error, once per process, which signing keys are stored unencrypted."""
    from storage.keyfiles import unencrypted_keys

    for path in unencrypted_keys(config):
        if str(path) not in _warned:
            _warned.add(str(path))
            click.echo(
                f"warning: the signing key {path} is stored unencrypted; set "
                "CUSTOS_KEY_PASSPHRASE before `custos init` to encrypt it",
                err=True,
            )


@contextmanager
def deployment(ctx: click.Context) -> Iterator[Deployment]:
    from storage.config import load_config
    from storage.deployment import open_deployment

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


def acting_principal(dep: Deployment, name: str) -> Principal:
    """The active principal ``--as`` names; what its role may do is the domain's rule."""
    principal = dep.principals.get(name)
    if not principal.active:
        raise click.ClickException(f"{name!r} is revoked")
    return principal


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
            from commands.client import CustosClient

            yield remote(CustosClient(server, token))
            return
        with deployment(ctx) as dep:
            principal = dep.principals.get(as_name)
            if not principal.active:
                raise click.ClickException(f"{as_name!r} is revoked")
            yield local(dep, principal.actor)
    except CustosError as exc:
        raise click.ClickException(str(exc)) from None
